//! Serf tags in memberlist node meta: `0xff | msgpack map` (protocol ≥ 3), or the raw `role` tag
//! for protocol < 3.

use std::collections::BTreeMap;

use crate::wire::error::DecodeResult;
use crate::wire::msgpack::{Decoder, Dialect, Encoder, Field, GoString};

/// Marks meta that holds a tag map rather than a legacy role string.
pub const TAG_MAGIC_BYTE: u8 = 0xff;

/// A node's tags; sorted, so equal tags always encode to equal bytes (Go's random map order makes
/// its peers see spurious updates; ours never cause them).
pub type Tags = BTreeMap<GoString, GoString>;

/// Node meta for `tags`. A nil or empty map gives `ff 80`, as in Go.
pub fn encode_tags(tags: &Tags, dialect: Dialect) -> Vec<u8> {
    let mut out = vec![TAG_MAGIC_BYTE];
    tags.encode(&mut Encoder::new(&mut out, dialect));
    out
}

/// Reads tags from node meta. Meta that is empty or lacks the magic byte is a legacy role:
/// `{"role": meta}`.
pub fn decode_tags(meta: &[u8]) -> DecodeResult<Tags> {
    match meta.split_first() {
        Some((&TAG_MAGIC_BYTE, rest)) => {
            Tags::decode(&mut Decoder::new(rest)).map_err(|e| e.at_base(1))
        }
        _ => Ok(Tags::from([(GoString::from("role"), GoString::from(meta))])),
    }
}

/// Node meta for serf protocol < 3, which only carries the `role` tag, raw.
pub fn encode_role_meta(tags: &Tags) -> Vec<u8> {
    tags.get(&GoString::from("role"))
        .map(|r| r.0.clone())
        .unwrap_or_default()
}
