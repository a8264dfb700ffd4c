//! The UDP packet pipeline.
//!
//! Sending, innermost first: message or compound → compression (only if shorter) → CRC header
//! (peers with protocol max ≥ 5) → encryption (AAD = label) → label header. Receiving undoes the
//! same steps in reverse, then [`flatten`] opens compounds and compressed messages.

use std::borrow::Cow;

use super::keyring::NONCE_LEN;
use super::options::WireOptions;
use super::{compound, compress, crc, label, MessageType};
use crate::wire::error::{DecodeError, DecodeResult, ErrorKind};

/// The size Go reads a packet into; larger datagrams cannot come from Go peers.
pub const MAX_PACKET_SIZE: usize = 65536;
/// Compound and compression nesting deeper than this is refused (Go never nests more than 2).
const MAX_NESTING: usize = 4;

/// Wraps `payload` (one message or a compound) for sending. `nonce` is asked for only when the
/// packet is encrypted.
pub fn encode(
    opts: &WireOptions,
    payload: &[u8],
    with_crc: bool,
    nonce: impl FnOnce() -> [u8; NONCE_LEN],
) -> Vec<u8> {
    let mut buf = Cow::Borrowed(payload);
    if opts.compression {
        let compressed = compress::wrap(&buf, opts.dialect);
        if compressed.len() < buf.len() {
            buf = Cow::Owned(compressed);
        }
    }
    if with_crc {
        buf = Cow::Owned(crc::wrap(&buf));
    }
    if let Some(keyring) = opts.sealing_keyring() {
        buf = Cow::Owned(keyring.encrypt(opts.encryption_version, &nonce(), &buf, &opts.label));
    }
    if opts.label.is_empty() {
        return buf.into_owned();
    }
    let mut out = label::header(&opts.label);
    out.extend_from_slice(&buf);
    out
}

/// Removes label, encryption and CRC from a received packet, returning the message or compound
/// inside.
pub fn decode<'a>(opts: &WireOptions, packet: &'a [u8]) -> DecodeResult<Cow<'a, [u8]>> {
    if packet.is_empty() {
        return Err(DecodeError::new(ErrorKind::Empty, 0));
    }
    let body = label::strip(packet, &opts.label)?;
    let base = packet.len() - body.len();
    let plain = match &opts.keyring {
        Some(keyring) => match keyring.decrypt(body, &opts.label) {
            Ok(plain) => Cow::Owned(plain),
            Err(_) if !opts.verify_incoming => Cow::Borrowed(body),
            // Too short for a version, nonce and tag: not an encrypted packet at all.
            Err(e) if e.is_incomplete() => {
                return Err(DecodeError::new(ErrorKind::NotEncrypted, base))
            }
            Err(e) => return Err(e.at_base(base)),
        },
        None => Cow::Borrowed(body),
    };
    Ok(match plain {
        Cow::Borrowed(b) => Cow::Borrowed(crc::unwrap(b).map_err(|e| e.at_base(base))?),
        Cow::Owned(b) => Cow::Owned(crc::unwrap(&b)?.to_vec()),
    })
}

/// The messages found in a packet once compounds and compression are opened.
#[derive(Debug, Default)]
pub struct Flattened<'a> {
    /// Each message, type byte first, in packet order.
    pub messages: Vec<Cow<'a, [u8]>>,
    /// Compound parts cut off by the end of the packet.
    pub truncated_parts: usize,
    /// Parts that could not be opened; the other parts are still delivered, as in Go.
    pub errors: Vec<DecodeError>,
}

/// Opens compound and compressed messages (recursively, as Go does) down to single messages.
///
/// Everything decompressed from one packet, at any depth, counts against a single
/// [`compress::MAX_PACKET_DECOMPRESSED`] budget: nesting compounds of compressed parts must not
/// multiply a 64 KiB datagram into gigabytes.
pub fn flatten(payload: &[u8]) -> Flattened<'_> {
    let mut out = Flattened::default();
    let mut budget = compress::MAX_PACKET_DECOMPRESSED;
    flatten_into(Cow::Borrowed(payload), 0, &mut budget, &mut out);
    out
}

fn flatten_into<'a>(buf: Cow<'a, [u8]>, depth: usize, budget: &mut usize, out: &mut Flattened<'a>) {
    let nested_too_deep = || DecodeError::new(ErrorKind::TooDeep { limit: MAX_NESTING }, 0);
    match buf.first().map(|b| MessageType::try_from(*b)) {
        Some(Ok(MessageType::Compound)) if depth >= MAX_NESTING => {
            out.errors.push(nested_too_deep())
        }
        Some(Ok(MessageType::Compress)) if depth >= MAX_NESTING => {
            out.errors.push(nested_too_deep())
        }
        Some(Ok(MessageType::Compound)) => match buf {
            Cow::Borrowed(b) => open_compound(b, depth, budget, out, Cow::Borrowed),
            Cow::Owned(b) => {
                open_compound(&b, depth, budget, out, |part| Cow::Owned(part.to_vec()))
            }
        },
        Some(Ok(MessageType::Compress)) => match compress::unwrap(&buf, *budget) {
            Ok(inner) => {
                *budget -= inner.len();
                flatten_into(Cow::Owned(inner), depth + 1, budget, out)
            }
            Err(e) => out.errors.push(e),
        },
        Some(_) => out.messages.push(buf),
        None => out.errors.push(DecodeError::new(ErrorKind::Empty, 0)),
    }
}

fn open_compound<'a, 'b>(
    buf: &'b [u8],
    depth: usize,
    budget: &mut usize,
    out: &mut Flattened<'a>,
    to_cow: impl Fn(&'b [u8]) -> Cow<'a, [u8]>,
) {
    match compound::decode(buf) {
        Ok(parts) => {
            out.truncated_parts += parts.truncated;
            for part in parts.parts {
                flatten_into(to_cow(part), depth + 1, budget, out);
            }
        }
        Err(e) => out.errors.push(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::msgpack::Dialect;

    /// A compress message whose output is `len` bytes: a user message (type 8) of zeros.
    fn bomb(len: usize) -> Vec<u8> {
        let mut msg = vec![0u8; len];
        msg[0] = MessageType::User as u8;
        compress::wrap(&msg, Dialect::GOSSIP)
    }

    fn total(flat: &Flattened<'_>) -> usize {
        flat.messages.iter().map(|m| m.len()).sum()
    }

    #[test]
    fn a_single_bomb_stops_at_the_cap() {
        let b = bomb(4 << 20);
        assert!(b.len() < 8 << 10, "the bomb is small: {}", b.len());
        let flat = flatten(&b);
        assert!(flat.messages.is_empty());
        assert_eq!(flat.errors.len(), 1);
        // Exactly the cap is still fine.
        let exact = bomb(compress::MAX_PACKET_DECOMPRESSED);
        let flat = flatten(&exact);
        assert_eq!(total(&flat), compress::MAX_PACKET_DECOMPRESSED);
    }

    #[test]
    fn nested_bombs_share_one_budget_per_packet() {
        // A compound of compressed compounds of compressed 256 KiB messages: without a shared
        // budget this 48 KiB datagram would expand to 2 x 50 x 256 KiB = 25 MiB.
        let leaf = bomb(256 << 10);
        let inner = compound::encode(&vec![&leaf[..]; 50]);
        let middle = compress::wrap(&inner, Dialect::GOSSIP);
        let parts = 2;
        let packet = compound::encode(&vec![&middle[..]; parts]);
        assert!(
            packet.len() < MAX_PACKET_SIZE,
            "fits a datagram: {}",
            packet.len()
        );
        let flat = flatten(&packet);
        assert!(
            total(&flat) + inner.len() <= compress::MAX_PACKET_DECOMPRESSED,
            "decompressed {} bytes of messages",
            total(&flat)
        );
        assert!(flat.errors.len() >= parts - 1, "the rest is refused");
        // Nothing is lost below the budget: a legitimate compressed compound opens fully.
        let small = bomb(1000);
        let ok = compress::wrap(&compound::encode(&[&small[..]; 10]), Dialect::GOSSIP);
        let flat = flatten(&ok);
        assert_eq!(flat.messages.len(), 10);
        assert!(flat.errors.is_empty());
    }
}
