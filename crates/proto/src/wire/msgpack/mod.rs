//! go-msgpack compatibility: every convention of HashiCorp's msgpack handles lives here, not in
//! the message definitions.
//!
//! * [`Encoder`] writes exactly what the Go handle writes for a given [`Dialect`].
//! * [`Decoder`] reads tolerantly, as the Go decoders do.
//! * [`Field`] says how each Go type maps onto msgpack; [`go_struct!`](crate::go_struct) turns a
//!   field list into a struct encoded as Go encodes structs.

mod decode;
mod encode;
mod field;
mod value;

pub use decode::{Decoder, Int, MAX_DEPTH};
pub use encode::{Dialect, Encoder, Flavor, IntFormat};
pub use field::{keys_sorted, Bytes, Field, GoString};
pub use value::Value;

use crate::wire::error::{DecodeResult, ErrorKind};

/// Encodes one value with the given dialect.
pub fn to_vec<T: Field>(value: &T, dialect: Dialect) -> Vec<u8> {
    let mut out = Vec::new();
    value.encode(&mut Encoder::new(&mut out, dialect));
    out
}

/// Encodes `type byte + value`, the shape of every memberlist and serf message.
pub fn to_vec_typed<T: Field>(msg_type: u8, value: &T, dialect: Dialect) -> Vec<u8> {
    let mut out = vec![msg_type];
    value.encode(&mut Encoder::new(&mut out, dialect));
    out
}

/// Decodes exactly one value; trailing bytes are ignored, as Go ignores them after a UDP message.
pub fn from_slice<T: Field>(buf: &[u8]) -> DecodeResult<T> {
    T::decode(&mut Decoder::new(buf))
}

/// Decodes one value that must use the whole buffer.
pub fn from_slice_exact<T: Field>(buf: &[u8]) -> DecodeResult<T> {
    let mut dec = Decoder::new(buf);
    let v = T::decode(&mut dec)?;
    if dec.remaining() != 0 {
        return Err(dec.error(ErrorKind::Malformed("trailing bytes after the value")));
    }
    Ok(v)
}
