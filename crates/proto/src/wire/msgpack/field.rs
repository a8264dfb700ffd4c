//! How each Go type is written and read: the [`Field`] trait and its implementations.

use std::collections::BTreeMap;
use std::fmt;

use super::{Decoder, Encoder, Value};
use crate::wire::error::DecodeResult;

/// A Go type that appears in wire structs: how it is encoded, decoded, reflected, and whether it
/// counts as empty for `omitempty`.
pub trait Field: Sized + Default {
    fn encode(&self, enc: &mut Encoder<'_>);
    fn decode(dec: &mut Decoder<'_>) -> DecodeResult<Self>;
    /// Go's notion of "empty" for `omitempty` fields.
    fn is_empty(&self) -> bool;
    /// A generic view of the value, for comparisons against test vectors and for diagnostics.
    fn to_value(&self) -> Value;
}

/// A Go `string`. Go does not validate UTF-8, so the bytes are kept as received.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GoString(pub Vec<u8>);

impl GoString {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The text, when it is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// The text with invalid UTF-8 sequences replaced, borrowed when it is valid.
    pub fn as_str_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }

    /// The text with invalid UTF-8 sequences replaced, for display.
    pub fn to_string_lossy(&self) -> String {
        self.as_str_lossy().into_owned()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for GoString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_string_lossy(), f)
    }
}

impl fmt::Display for GoString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_string_lossy())
    }
}

impl From<&str> for GoString {
    fn from(s: &str) -> Self {
        GoString(s.as_bytes().to_vec())
    }
}

impl From<String> for GoString {
    fn from(s: String) -> Self {
        GoString(s.into_bytes())
    }
}

impl From<&[u8]> for GoString {
    fn from(s: &[u8]) -> Self {
        GoString(s.to_vec())
    }
}

impl PartialEq<str> for GoString {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for GoString {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

/// A Go `[]byte`. Where Go distinguishes a nil slice (msgpack nil) from an empty one, the field
/// type is `Option<Bytes>`.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes(pub Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes(")?;
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Self {
        Bytes(v)
    }
}

impl From<&[u8]> for Bytes {
    fn from(v: &[u8]) -> Self {
        Bytes(v.to_vec())
    }
}

impl<const N: usize> From<[u8; N]> for Bytes {
    fn from(v: [u8; N]) -> Self {
        Bytes(v.to_vec())
    }
}

impl Field for GoString {
    fn encode(&self, enc: &mut Encoder<'_>) {
        enc.str(&self.0);
    }
    fn decode(dec: &mut Decoder<'_>) -> DecodeResult<Self> {
        Ok(GoString(dec.bytes()?.to_vec()))
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    fn to_value(&self) -> Value {
        Value::Str(self.0.clone())
    }
}

impl Field for Bytes {
    fn encode(&self, enc: &mut Encoder<'_>) {
        enc.bytes(&self.0);
    }
    fn decode(dec: &mut Decoder<'_>) -> DecodeResult<Self> {
        Ok(Bytes(dec.bytes()?.to_vec()))
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    fn to_value(&self) -> Value {
        Value::Bytes(self.0.clone())
    }
}

macro_rules! unsigned_field {
    ($($t:ty),*) => {$(
        impl Field for $t {
            fn encode(&self, enc: &mut Encoder<'_>) {
                enc.uint(*self as u64);
            }
            fn decode(dec: &mut Decoder<'_>) -> DecodeResult<Self> {
                dec.integer(stringify!($t))
            }
            fn is_empty(&self) -> bool {
                *self == 0
            }
            fn to_value(&self) -> Value {
                Value::Uint(*self as u64)
            }
        }
    )*};
}
unsigned_field!(u8, u16, u32, u64);

macro_rules! signed_field {
    ($($t:ty),*) => {$(
        impl Field for $t {
            fn encode(&self, enc: &mut Encoder<'_>) {
                enc.int(*self as i64);
            }
            fn decode(dec: &mut Decoder<'_>) -> DecodeResult<Self> {
                dec.integer(stringify!($t))
            }
            fn is_empty(&self) -> bool {
                *self == 0
            }
            fn to_value(&self) -> Value {
                Value::Int(*self as i64)
            }
        }
    )*};
}
signed_field!(i32, i64);

impl Field for bool {
    fn encode(&self, enc: &mut Encoder<'_>) {
        enc.bool(*self);
    }
    fn decode(dec: &mut Decoder<'_>) -> DecodeResult<Self> {
        dec.bool()
    }
    fn is_empty(&self) -> bool {
        !*self
    }
    fn to_value(&self) -> Value {
        Value::Bool(*self)
    }
}

impl Field for f64 {
    fn encode(&self, enc: &mut Encoder<'_>) {
        enc.float(*self);
    }
    fn decode(dec: &mut Decoder<'_>) -> DecodeResult<Self> {
        dec.float()
    }
    fn is_empty(&self) -> bool {
        *self == 0.0
    }
    fn to_value(&self) -> Value {
        Value::Float(*self)
    }
}

/// Most elements reserved up front for a decoded array, whatever count it declares.
const PREALLOCATE_LIMIT: usize = 64;

/// A Go pointer, slice or map that may be nil: `None` is msgpack nil.
impl<T: Field> Field for Option<T> {
    fn encode(&self, enc: &mut Encoder<'_>) {
        match self {
            Some(v) => v.encode(enc),
            None => enc.nil(),
        }
    }
    fn decode(dec: &mut Decoder<'_>) -> DecodeResult<Self> {
        if dec.try_nil() {
            Ok(None)
        } else {
            T::decode(dec).map(Some)
        }
    }
    fn is_empty(&self) -> bool {
        self.as_ref().is_none_or(T::is_empty)
    }
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::Nil, T::to_value)
    }
}

/// A Go slice (other than `[]byte`), written as a msgpack array.
impl<T: Field> Field for Vec<T> {
    fn encode(&self, enc: &mut Encoder<'_>) {
        enc.array_len(self.len());
        for item in self {
            item.encode(enc);
        }
    }
    fn decode(dec: &mut Decoder<'_>) -> DecodeResult<Self> {
        dec.nested(|dec| {
            let n = dec.array_len()?;
            // The count is only a claim until the elements are read: reserve a bounded amount.
            let mut out = Vec::with_capacity(n.min(PREALLOCATE_LIMIT));
            for _ in 0..n {
                out.push(T::decode(dec)?);
            }
            Ok(out)
        })
    }
    fn is_empty(&self) -> bool {
        Vec::is_empty(self)
    }
    fn to_value(&self) -> Value {
        Value::Array(self.iter().map(T::to_value).collect())
    }
}

/// A Go map. Go writes maps in random order; we write them sorted so that equal maps always give
/// equal bytes (tags in node meta depend on that).
impl<K: Field + Ord, V: Field> Field for BTreeMap<K, V> {
    fn encode(&self, enc: &mut Encoder<'_>) {
        enc.map_len(self.len());
        for (k, v) in self {
            k.encode(enc);
            v.encode(enc);
        }
    }
    fn decode(dec: &mut Decoder<'_>) -> DecodeResult<Self> {
        dec.nested(|dec| {
            let n = dec.map_len()?;
            let mut out = BTreeMap::new();
            for _ in 0..n {
                let k = K::decode(dec)?;
                out.insert(k, V::decode(dec)?);
            }
            Ok(out)
        })
    }
    fn is_empty(&self) -> bool {
        BTreeMap::is_empty(self)
    }
    fn to_value(&self) -> Value {
        Value::Map(
            self.iter()
                .map(|(k, v)| (k.to_value(), v.to_value()))
                .collect(),
        )
    }
}

/// Whether `keys` are in strictly ascending byte order, as Go emits struct fields. Used at compile
/// time by [`go_struct!`](crate::go_struct).
pub const fn keys_sorted(keys: &[&str]) -> bool {
    let mut i = 1;
    while i < keys.len() {
        let (a, b) = (keys[i - 1].as_bytes(), keys[i].as_bytes());
        let mut j = 0;
        loop {
            if j == a.len() && j < b.len() {
                break;
            }
            if j == b.len() || a[j] > b[j] {
                return false;
            }
            if a[j] < b[j] {
                break;
            }
            j += 1;
        }
        i += 1;
    }
    true
}

/// Declares a Go struct as it travels on the wire: a msgpack map keyed by Go field name, with the
/// keys listed (and emitted) in ascending byte order, `[omitempty]` fields left out when empty,
/// unknown keys skipped on decode. The key order is checked at compile time.
#[macro_export]
macro_rules! go_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* $key:literal => $field:ident : $ty:ty $([$omit:ident])? ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Default)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        const _: () = assert!(
            $crate::wire::msgpack::keys_sorted(&[$($key),*]),
            concat!("keys of ", stringify!($name), " must be in ascending byte order")
        );

        impl $crate::wire::msgpack::Field for $name {
            fn encode(&self, enc: &mut $crate::wire::msgpack::Encoder<'_>) {
                let present = [$( !$crate::go_struct!(@omitted self.$field $(; $omit)?) ),*];
                enc.map_len(present.iter().filter(|p| **p).count());
                let mut present = present.iter();
                $(
                    if *present.next().unwrap_or(&true) {
                        enc.str($key.as_bytes());
                        $crate::wire::msgpack::Field::encode(&self.$field, enc);
                    }
                )*
            }

            fn decode(
                dec: &mut $crate::wire::msgpack::Decoder<'_>,
            ) -> $crate::wire::DecodeResult<Self> {
                dec.nested(|dec| {
                    let mut out = Self::default();
                    for _ in 0..dec.map_len()? {
                        let key = dec.bytes()?;
                        $(
                            if key == $key.as_bytes() {
                                out.$field = $crate::wire::msgpack::Field::decode(dec)
                                    .map_err(|e| e.in_field($key))?;
                                continue;
                            }
                        )*
                        dec.skip()?;
                    }
                    Ok(out)
                })
            }

            fn is_empty(&self) -> bool {
                false
            }

            fn to_value(&self) -> $crate::wire::msgpack::Value {
                $crate::wire::msgpack::Value::Map(vec![$(
                    (
                        $crate::wire::msgpack::Value::Str($key.as_bytes().to_vec()),
                        $crate::wire::msgpack::Field::to_value(&self.$field),
                    ),
                )*])
            }
        }
    };
    (@omitted $e:expr) => { false };
    (@omitted $e:expr; omitempty) => { $crate::wire::msgpack::Field::is_empty(&$e) };
}
