//! The compression wrapper (type 9): `09 | compress{Algo: 0, Buf: lzw(message)}`.

use super::bodies::Compress;
use super::lzw;
use super::MessageType;
use crate::wire::error::{DecodeError, DecodeResult, ErrorKind};
use crate::wire::msgpack::{self, Bytes, Decoder, Dialect, Field};

/// The only algorithm memberlist defines.
pub const LZW_ALGO: u8 = 0;
/// Largest decompressed UDP payload accepted. Go's receive buffer is 64 KiB, so nothing legitimate
/// comes near this; it stops decompression bombs.
pub const MAX_PACKET_DECOMPRESSED: usize = 1 << 20;
/// Largest decompressed stream accepted (memberlist's own limit since 0.6).
pub const MAX_STREAM_DECOMPRESSED: usize = 40 << 20;

/// Wraps `message` in a compress message.
pub fn wrap(message: &[u8], dialect: Dialect) -> Vec<u8> {
    let body = Compress {
        algo: LZW_ALGO,
        buf: Bytes(lzw::compress(message)),
    };
    msgpack::to_vec_typed(MessageType::Compress as u8, &body, dialect)
}

/// Decompresses the body of a compress message read from `dec` (positioned after the type byte).
pub fn decode_body(dec: &mut Decoder<'_>, max_output: usize) -> DecodeResult<Vec<u8>> {
    let start = dec.position();
    let msg = Compress::decode(dec)?;
    if msg.algo != LZW_ALGO {
        return Err(DecodeError::new(
            ErrorKind::CompressionAlgo(msg.algo),
            start,
        ));
    }
    lzw::decompress(&msg.buf, max_output).map_err(|e| DecodeError::new(e.into(), start))
}

/// Decompresses a whole compress message (type byte included).
pub fn unwrap(buf: &[u8], max_output: usize) -> DecodeResult<Vec<u8>> {
    if buf.first() != Some(&(MessageType::Compress as u8)) {
        return Err(DecodeError::new(
            ErrorKind::Malformed("not a compress message"),
            0,
        ));
    }
    decode_body(&mut Decoder::new(&buf[1..]), max_output).map_err(|e| e.at_base(1))
}
