//! The memberlist packet layers around messages: compound messages, the CRC wrapper, the label
//! header and LZW compression with its message wrapper.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use serf_proto::wire::memberlist::{self as ml, compound, compress, crc, label, lzw};
use serf_proto::wire::ErrorKind;

use crate::strategies::{blob, gossip_dialect};
use crate::support::{config, ok, prefixes_fail};

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn compound_round_trip(parts in vec(vec(any::<u8>(), 0..64), 0..24)) {
        let bytes = compound::encode(&parts);
        let got = ok(compound::decode(&bytes), "compound", &bytes)?;
        prop_assert_eq!(got.truncated, 0);
        prop_assert_eq!(got.parts.len(), parts.len());
        for (got, want) in got.parts.iter().zip(&parts) {
            prop_assert_eq!(*got, &want[..]);
        }
        // A strict prefix either fails or reports the parts it cut off.
        for k in 0..bytes.len() {
            if let Ok(p) = compound::decode(&bytes[..k]) {
                prop_assert!(p.truncated > 0, "prefix {} of {}", k, hex::encode(&bytes));
                prop_assert_eq!(p.parts.len() + p.truncated, parts.len());
                for (got, want) in p.parts.iter().zip(&parts) {
                    prop_assert_eq!(*got, &want[..]);
                }
            }
        }
    }

    #[test]
    fn compound_encode_all(n in 0usize..700, len in 0usize..4) {
        let parts: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8; len]).collect();
        let compounds = compound::encode_all(&parts);
        prop_assert_eq!(compounds.len(), n.div_ceil(compound::MAX_PARTS));
        let mut all = Vec::new();
        for c in &compounds {
            let got = ok(compound::decode(c), "compound", c)?;
            prop_assert_eq!(got.truncated, 0);
            all.extend(got.parts.iter().map(|p| p.to_vec()));
        }
        prop_assert_eq!(all, parts);
    }

    /// CRC: round trip; any single bit flipped after the type byte is caught; strict prefixes of
    /// at least the header's length are refused, shorter ones are not CRC'd at all.
    #[test]
    fn crc_round_trip(inner in blob(), flip in any::<usize>()) {
        let wrapped = crc::wrap(&inner);
        prop_assert_eq!(wrapped.len(), inner.len() + crc::OVERHEAD);
        prop_assert_eq!(ok(crc::unwrap(&wrapped), "crc", &wrapped)?, &inner[..]);
        let mut corrupted = wrapped.clone();
        let bit = flip % ((corrupted.len() - 1) * 8);
        corrupted[1 + bit / 8] ^= 1 << (bit % 8);
        prop_assert!(
            matches!(
                crc::unwrap(&corrupted),
                Err(e) if matches!(e.kind, ErrorKind::CrcMismatch { .. })
            ),
            "bit {} flipped in {}", bit, hex::encode(&wrapped)
        );
        for k in 0..wrapped.len() {
            let got = crc::unwrap(&wrapped[..k]);
            if k < crc::OVERHEAD {
                prop_assert_eq!(got.ok(), Some(&wrapped[..k]));
            } else {
                prop_assert!(got.is_err(), "prefix {}", k);
            }
        }
    }

    /// Label header: split gives the label and the rest back, strip checks it, a cut header is
    /// refused.
    #[test]
    fn label_round_trip(
        lbl in vec(any::<u8>(), 1..=255),
        rest in blob(),
        other in vec(any::<u8>(), 1..8),
    ) {
        let mut buf = label::header(&lbl);
        prop_assert_eq!(buf.len(), label::overhead(&lbl));
        buf.extend_from_slice(&rest);
        let (got, tail) = ok(label::split(&buf), "label", &buf)?;
        prop_assert_eq!(got, &lbl[..]);
        prop_assert_eq!(tail, &rest[..]);
        prop_assert_eq!(ok(label::strip(&buf, &lbl), "strip", &buf)?, &rest[..]);
        if other != lbl {
            prop_assert!(label::strip(&buf, &other).is_err());
        }
        prop_assert!(label::strip(&buf, b"").is_err());
        prop_assert_eq!(label::split(&[]).ok(), Some((&[][..], &[][..])));
        for k in 1..2 + lbl.len() {
            prop_assert!(label::split(&buf[..k]).is_err(), "prefix {}", k);
        }
        // No label: nothing is added, and unlabeled input has the empty label.
        prop_assert!(label::header(b"").is_empty());
        prop_assert_eq!(label::overhead(b""), 0);
        if rest.first() != Some(&(ml::MessageType::HasLabel as u8)) {
            prop_assert_eq!(label::split(&rest).ok(), Some((&[][..], &rest[..])));
            prop_assert_eq!(label::strip(&rest, b"").ok(), Some(&rest[..]));
            if !lbl.is_empty() {
                prop_assert!(label::strip(&rest, &lbl).is_err());
            }
        }
    }

    /// LZW: round trip, the output limit is exact, strict prefixes are refused; and the compress
    /// message wrapper around it.
    #[test]
    fn lzw_round_trip(
        input in prop_oneof![
            4 => vec(any::<u8>(), 0..600),
            2 => vec(select(b"ab\0".to_vec()), 0..3000),
            // Enough distinct codes to fill the dictionary and force a reset.
            1 => vec(any::<u8>(), 4000..6000),
        ],
        d in gossip_dialect(),
    ) {
        let packed = lzw::compress(&input);
        prop_assert_eq!(ok(lzw::decompress(&packed, input.len()), "lzw", &packed)?, input.clone());
        prop_assert_eq!(ok(lzw::decompress(&packed, usize::MAX), "lzw", &packed)?, input.clone());
        if !input.is_empty() {
            prop_assert_eq!(
                lzw::decompress(&packed, input.len() - 1),
                Err(lzw::LzwError::TooLarge { limit: input.len() - 1 })
            );
        }
        prefixes_fail(&packed, "lzw", |b| lzw::decompress(b, input.len()))?;
        let wrapped = compress::wrap(&input, d);
        prop_assert_eq!(wrapped[0], ml::MessageType::Compress as u8);
        let unwrapped = ok(compress::unwrap(&wrapped, input.len()), "compress", &wrapped)?;
        prop_assert_eq!(unwrapped, input.clone());
        prefixes_fail(&wrapped, "compress", |b| compress::unwrap(b, input.len()))?;
    }
}
