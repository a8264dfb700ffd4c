//! The tolerant msgpack decoder: accepts every encoding the Go decoders accept (str8, bin, any
//! integer width, nil for zero values) and never allocates more than the input can justify.

use super::Value;
use crate::wire::error::{DecodeError, DecodeResult, ErrorKind};

/// Deepest nesting accepted; real messages nest at most four levels.
pub const MAX_DEPTH: usize = 32;

/// Reads msgpack values from a byte slice, tracking the offset for error reports.
#[derive(Clone)]
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    depth: usize,
}

/// A decoded integer before it is narrowed to a Go type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Int {
    Unsigned(u64),
    Signed(i64),
}

impl Int {
    pub fn as_i128(self) -> i128 {
        match self {
            Int::Unsigned(v) => v as i128,
            Int::Signed(v) => v as i128,
        }
    }
}

impl<'a> Decoder<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Decoder {
            buf,
            pos: 0,
            depth: 0,
        }
    }

    /// Offset of the next byte to read.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn error(&self, kind: ErrorKind) -> DecodeError {
        DecodeError::new(kind, self.pos)
    }

    /// Takes `n` raw bytes (used for length-prefixed payloads outside msgpack too).
    pub fn take(&mut self, n: usize) -> DecodeResult<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.error(ErrorKind::Truncated {
                needed: n - self.remaining(),
            }));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn byte(&mut self) -> DecodeResult<u8> {
        Ok(self.take(1)?[0])
    }

    pub fn peek(&self) -> DecodeResult<u8> {
        self.buf
            .get(self.pos)
            .copied()
            .ok_or_else(|| self.error(ErrorKind::Truncated { needed: 1 }))
    }

    fn be(&mut self, n: usize) -> DecodeResult<u64> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | *b as u64))
    }

    fn unexpected(&self, marker: u8, expected: &'static str) -> DecodeError {
        // Point at the marker itself, which was already consumed.
        DecodeError::new(
            ErrorKind::UnexpectedMarker { marker, expected },
            self.pos.saturating_sub(1),
        )
    }

    /// Consumes a nil if one is next; Go decodes nil into any type's zero value.
    pub fn try_nil(&mut self) -> bool {
        if self.buf.get(self.pos) == Some(&0xc0) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub fn bool(&mut self) -> DecodeResult<bool> {
        match self.byte()? {
            0xc2 | 0x00 | 0xc0 => Ok(false),
            0xc3 | 0x01 => Ok(true),
            m => Err(self.unexpected(m, "bool")),
        }
    }

    /// Any integer encoding; `nil` reads as zero.
    pub fn int(&mut self) -> DecodeResult<Int> {
        let m = self.byte()?;
        Ok(match m {
            0x00..=0x7f => Int::Unsigned(m as u64),
            0xe0..=0xff => Int::Signed(m as i8 as i64),
            0xc0 => Int::Unsigned(0),
            0xcc => Int::Unsigned(self.be(1)?),
            0xcd => Int::Unsigned(self.be(2)?),
            0xce => Int::Unsigned(self.be(4)?),
            0xcf => Int::Unsigned(self.be(8)?),
            0xd0 => Int::Signed(self.be(1)? as u8 as i8 as i64),
            0xd1 => Int::Signed(self.be(2)? as u16 as i16 as i64),
            0xd2 => Int::Signed(self.be(4)? as u32 as i32 as i64),
            0xd3 => Int::Signed(self.be(8)? as i64),
            _ => return Err(self.unexpected(m, "integer")),
        })
    }

    /// An integer narrowed to `T`, rejecting negative values for unsigned targets and overflow,
    /// as the Go decoders do.
    pub fn integer<T: TryFrom<i128>>(&mut self, target: &'static str) -> DecodeResult<T> {
        let start = self.pos;
        let v = self.int()?.as_i128();
        T::try_from(v)
            .map_err(|_| DecodeError::new(ErrorKind::IntegerOverflow { value: v, target }, start))
    }

    /// float64 (or float32, or an integer, which Go also accepts for float fields).
    pub fn float(&mut self) -> DecodeResult<f64> {
        match self.peek()? {
            0xca => {
                self.pos += 1;
                Ok(f32::from_bits(self.be(4)? as u32) as f64)
            }
            0xcb => {
                self.pos += 1;
                Ok(f64::from_bits(self.be(8)?))
            }
            _ => Ok(self.int()?.as_i128() as f64),
        }
    }

    /// A string or byte slice in any encoding (raw/str family, str8, bin); nil reads as empty.
    pub fn bytes(&mut self) -> DecodeResult<&'a [u8]> {
        let m = self.byte()?;
        let len = match m {
            0xa0..=0xbf => (m & 0x1f) as usize,
            0xc0 => 0,
            0xd9 | 0xc4 => self.be(1)? as usize,
            0xda | 0xc5 => self.be(2)? as usize,
            0xdb | 0xc6 => self.be(4)? as usize,
            _ => return Err(self.unexpected(m, "string or bytes")),
        };
        self.checked_len(len, 1)?;
        self.take(len)
    }

    /// Refuses a declared length whose elements (each at least `min_size` bytes) cannot fit in what
    /// is left, before anything is allocated for it.
    fn checked_len(&self, len: usize, min_size: usize) -> DecodeResult<usize> {
        if len.saturating_mul(min_size) > self.remaining() {
            return Err(self.error(ErrorKind::LengthExceedsInput {
                len,
                available: self.remaining(),
            }));
        }
        Ok(len)
    }

    /// A map header; nil reads as an empty map.
    pub fn map_len(&mut self) -> DecodeResult<usize> {
        let m = self.byte()?;
        let len = match m {
            0x80..=0x8f => (m & 0x0f) as usize,
            0xc0 => 0,
            0xde => self.be(2)? as usize,
            0xdf => self.be(4)? as usize,
            _ => return Err(self.unexpected(m, "map")),
        };
        self.checked_len(len, 2)
    }

    /// An array header; nil reads as an empty array.
    pub fn array_len(&mut self) -> DecodeResult<usize> {
        let m = self.byte()?;
        let len = match m {
            0x90..=0x9f => (m & 0x0f) as usize,
            0xc0 => 0,
            0xdc => self.be(2)? as usize,
            0xdd => self.be(4)? as usize,
            _ => return Err(self.unexpected(m, "array")),
        };
        self.checked_len(len, 1)
    }

    /// Runs `f` one nesting level deeper, refusing pathological nesting.
    pub fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> DecodeResult<T>) -> DecodeResult<T> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error(ErrorKind::TooDeep { limit: MAX_DEPTH }));
        }
        self.depth += 1;
        let out = f(self);
        self.depth -= 1;
        out
    }

    /// Skips one value of any type (unknown struct keys).
    pub fn skip(&mut self) -> DecodeResult<()> {
        self.value().map(drop)
    }

    /// Decodes one value of any type into a generic tree.
    pub fn value(&mut self) -> DecodeResult<Value> {
        let m = self.peek()?;
        Ok(match m {
            0xc0 => {
                self.pos += 1;
                Value::Nil
            }
            0xc2 | 0xc3 => Value::Bool(self.bool()?),
            0xca | 0xcb => Value::Float(self.float()?),
            0xa0..=0xbf | 0xd9..=0xdb => Value::Str(self.bytes()?.to_vec()),
            0xc4..=0xc6 => Value::Bytes(self.bytes()?.to_vec()),
            0x80..=0x8f | 0xde | 0xdf => self.nested(|d| {
                let n = d.map_len()?;
                let mut entries = Vec::with_capacity(n.min(64));
                for _ in 0..n {
                    entries.push((d.value()?, d.value()?));
                }
                Ok(Value::Map(entries))
            })?,
            0x90..=0x9f | 0xdc | 0xdd => self.nested(|d| {
                let n = d.array_len()?;
                let mut items = Vec::with_capacity(n.min(64));
                for _ in 0..n {
                    items.push(d.value()?);
                }
                Ok(Value::Array(items))
            })?,
            0xd4..=0xd8 | 0xc7..=0xc9 => {
                return Err(self.error(ErrorKind::UnexpectedMarker {
                    marker: m,
                    expected: "a non-extension value",
                }))
            }
            _ => match self.int()? {
                Int::Unsigned(v) => Value::Uint(v),
                Int::Signed(v) => Value::Int(v),
            },
        })
    }
}
