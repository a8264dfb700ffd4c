//! The label header (type 244, memberlist 0.3+): `f4 | len:u8 | label`, in front of packets and
//! at the start of streams, so that clusters sharing a network ignore each other's traffic.

use super::MessageType;
use crate::wire::error::{DecodeError, DecodeResult, ErrorKind};

/// Longest label that fits the one-byte length.
pub const MAX_LEN: usize = 255;

/// The header bytes for `label`, empty when there is no label.
pub fn header(label: &[u8]) -> Vec<u8> {
    if label.is_empty() {
        return Vec::new();
    }
    assert!(label.len() <= MAX_LEN, "labels are at most 255 bytes");
    let mut out = Vec::with_capacity(2 + label.len());
    out.push(MessageType::HasLabel as u8);
    out.push(label.len() as u8);
    out.extend_from_slice(label);
    out
}

/// Bytes the header adds for `label`.
pub fn overhead(label: &[u8]) -> usize {
    if label.is_empty() {
        0
    } else {
        2 + label.len()
    }
}

/// Splits a buffer into `(label, rest)`; an unlabeled buffer has the empty label.
pub fn split(buf: &[u8]) -> DecodeResult<(&[u8], &[u8])> {
    if buf.first() != Some(&(MessageType::HasLabel as u8)) {
        return Ok((&[], buf));
    }
    let len = *buf
        .get(1)
        .ok_or(DecodeError::new(ErrorKind::Truncated { needed: 1 }, 1))? as usize;
    if len == 0 {
        return Err(DecodeError::new(ErrorKind::EmptyLabel, 1));
    }
    if buf.len() < 2 + len {
        return Err(DecodeError::new(
            ErrorKind::Truncated {
                needed: 2 + len - buf.len(),
            },
            buf.len(),
        ));
    }
    Ok((&buf[2..2 + len], &buf[2 + len..]))
}

/// Strips the label and checks it equals the configured one (an unlabeled buffer has label "").
pub fn strip<'a>(buf: &'a [u8], expected: &[u8]) -> DecodeResult<&'a [u8]> {
    let (label, rest) = split(buf)?;
    if label != expected {
        return Err(DecodeError::new(
            ErrorKind::LabelMismatch {
                got: String::from_utf8_lossy(label).into_owned(),
                want: String::from_utf8_lossy(expected).into_owned(),
            },
            0,
        ));
    }
    Ok(rest)
}
