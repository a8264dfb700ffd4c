//! Compound messages (type 7): several messages in one UDP packet.
//!
//! Layout: `07 | count:u8 | len_1:u16be … len_count:u16be | body_1 … body_count`.

use super::MessageType;
use crate::wire::error::{DecodeError, DecodeResult, ErrorKind};

/// Most parts one compound can hold (the count is one byte).
pub const MAX_PARTS: usize = 255;
/// Bytes a compound adds around its parts: the type and count bytes.
pub const HEADER_OVERHEAD: usize = 2;
/// Bytes each part adds: its length.
pub const PART_OVERHEAD: usize = 2;

/// Builds one compound message from at most [`MAX_PARTS`] parts of at most 65535 bytes each.
pub fn encode<P: AsRef<[u8]>>(parts: &[P]) -> Vec<u8> {
    assert!(
        parts.len() <= MAX_PARTS,
        "compound messages hold at most 255 parts"
    );
    let body: usize = parts.iter().map(|p| p.as_ref().len()).sum();
    let mut out = Vec::with_capacity(HEADER_OVERHEAD + PART_OVERHEAD * parts.len() + body);
    out.push(MessageType::Compound as u8);
    out.push(parts.len() as u8);
    for part in parts {
        let len =
            u16::try_from(part.as_ref().len()).expect("compound parts are at most 65535 bytes");
        out.extend_from_slice(&len.to_be_bytes());
    }
    for part in parts {
        out.extend_from_slice(part.as_ref());
    }
    out
}

/// Builds as many compounds as needed for any number of parts, as memberlist's gossip does.
pub fn encode_all<P: AsRef<[u8]>>(parts: &[P]) -> Vec<Vec<u8>> {
    parts.chunks(MAX_PARTS).map(encode).collect()
}

/// The parts of a compound message, borrowed from the packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parts<'a> {
    pub parts: Vec<&'a [u8]>,
    /// Parts whose declared length ran past the end of the packet. Go processes the complete parts
    /// and only warns about these.
    pub truncated: usize,
}

/// Splits a compound message (including its type byte).
pub fn decode(buf: &[u8]) -> DecodeResult<Parts<'_>> {
    if buf.first() != Some(&(MessageType::Compound as u8)) {
        return Err(DecodeError::new(
            ErrorKind::Malformed("not a compound message"),
            0,
        ));
    }
    let count = *buf
        .get(1)
        .ok_or(DecodeError::new(ErrorKind::Truncated { needed: 1 }, 1))? as usize;
    let lengths_end = HEADER_OVERHEAD + PART_OVERHEAD * count;
    if buf.len() < lengths_end {
        return Err(DecodeError::new(
            ErrorKind::Truncated {
                needed: lengths_end - buf.len(),
            },
            buf.len(),
        ));
    }
    let mut parts = Vec::with_capacity(count);
    let mut offset = lengths_end;
    for i in 0..count {
        let at = HEADER_OVERHEAD + PART_OVERHEAD * i;
        let len = u16::from_be_bytes([buf[at], buf[at + 1]]) as usize;
        if offset + len > buf.len() {
            return Ok(Parts {
                truncated: count - i,
                parts,
            });
        }
        parts.push(&buf[offset..offset + len]);
        offset += len;
    }
    Ok(Parts {
        parts,
        truncated: 0,
    })
}
