//! The CRC header (type 12): `0c | crc32:u32be | inner`, CRC-32/IEEE over `inner`. Sent on UDP
//! to peers whose protocol max is at least 5.

use super::MessageType;
use crate::wire::error::{DecodeError, DecodeResult, ErrorKind};

/// Bytes the header adds.
pub const OVERHEAD: usize = 5;

/// Prefixes `inner` with its CRC header.
pub fn wrap(inner: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(OVERHEAD + inner.len());
    out.push(MessageType::HasCrc as u8);
    out.extend_from_slice(&crc32fast::hash(inner).to_be_bytes());
    out.extend_from_slice(inner);
    out
}

/// If `buf` carries a CRC header, checks it and returns what it protects; otherwise returns `buf`.
/// As in Go, only a buffer of at least 5 bytes starting with 0x0c counts as CRC'd.
pub fn unwrap(buf: &[u8]) -> DecodeResult<&[u8]> {
    if buf.len() < OVERHEAD || buf[0] != MessageType::HasCrc as u8 {
        return Ok(buf);
    }
    let expected = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
    let inner = &buf[OVERHEAD..];
    let actual = crc32fast::hash(inner);
    if actual != expected {
        return Err(DecodeError::new(
            ErrorKind::CrcMismatch { expected, actual },
            1,
        ));
    }
    Ok(inner)
}
