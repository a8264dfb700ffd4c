//! Msgpack values at every encoding boundary: strings and byte slices at each length marker in
//! both flavors, arrays and maps at fix/16/32, integers at every width; the exact header Go
//! writes, and the round trip.

use std::collections::BTreeMap;

use serf_proto::wire::memberlist::compound;
use serf_proto::wire::msgpack::{self, Bytes, Dialect, Flavor, GoString, IntFormat};

/// The header the encoder must write for a string or byte slice of `n` bytes (what Go writes:
/// raw family only in gossip; str8 for strings and bin for byte slices in RPC).
fn expected_str_header(n: usize, flavor: Flavor, is_bytes: bool) -> Vec<u8> {
    let sized = |m8: u8, m16: u8, m32: u8| {
        if n <= 0xff {
            vec![m8, n as u8]
        } else if n <= 0xffff {
            [&[m16][..], &(n as u16).to_be_bytes()].concat()
        } else {
            [&[m32][..], &(n as u32).to_be_bytes()].concat()
        }
    };
    match (flavor, is_bytes) {
        (Flavor::Rpc, true) => sized(0xc4, 0xc5, 0xc6),
        _ if n < 32 => vec![0xa0 | n as u8],
        (Flavor::Rpc, false) => sized(0xd9, 0xda, 0xdb),
        (Flavor::Gossip, _) if n <= 0xffff => [&[0xda][..], &(n as u16).to_be_bytes()].concat(),
        (Flavor::Gossip, _) => [&[0xdb][..], &(n as u32).to_be_bytes()].concat(),
    }
}

/// GoString and Bytes at every string-length boundary, both flavors: the exact header Go writes,
/// and the round trip.
#[test]
fn string_length_boundaries() {
    for n in [0usize, 1, 31, 32, 33, 254, 255, 256, 65535, 65536, 70000] {
        let data: Vec<u8> = (0..n).map(|i| (i * 131 % 251) as u8 | 0x80).collect();
        for flavor in [Flavor::Gossip, Flavor::Rpc] {
            for ints in [IntFormat::Legacy, IntFormat::V2] {
                let d = Dialect { ints, flavor };
                let s = GoString(data.clone());
                let enc = msgpack::to_vec(&s, d);
                let header = expected_str_header(n, flavor, false);
                assert_eq!(enc[..header.len()], header[..], "string {n} {d:?}");
                assert_eq!(enc.len(), header.len() + n, "string {n} {d:?}");
                assert_eq!(
                    msgpack::from_slice_exact::<GoString>(&enc),
                    Ok(s),
                    "string {n} {d:?}"
                );
                let b = Bytes(data.clone());
                let enc = msgpack::to_vec(&b, d);
                let header = expected_str_header(n, flavor, true);
                assert_eq!(enc[..header.len()], header[..], "bytes {n} {d:?}");
                assert_eq!(enc.len(), header.len() + n, "bytes {n} {d:?}");
                assert_eq!(
                    msgpack::from_slice_exact::<Bytes>(&enc),
                    Ok(b),
                    "bytes {n} {d:?}"
                );
                let o = Some(Bytes(data.clone()));
                let enc = msgpack::to_vec(&o, d);
                assert_eq!(
                    msgpack::from_slice_exact::<Option<Bytes>>(&enc),
                    Ok(o),
                    "opt {n} {d:?}"
                );
            }
        }
    }
    // Compound parts at the 16-bit length limit.
    let big = vec![0x5a; 65535];
    let parts = [&big[..], &[][..], &big[..10]];
    let c = compound::encode(&parts);
    assert_eq!(compound::decode(&c).expect("valid").parts, parts.to_vec());
}

/// Arrays and maps at the fix/16/32 boundaries: exact header, round trip.
#[test]
fn container_length_boundaries() {
    for n in [0usize, 15, 16, 17, 65535, 65536] {
        let header = |fix: u8, m16: u8| -> Vec<u8> {
            if n < 16 {
                vec![fix | n as u8]
            } else if n <= 0xffff {
                [&[m16][..], &(n as u16).to_be_bytes()].concat()
            } else {
                [&[m16 + 1][..], &(n as u32).to_be_bytes()].concat()
            }
        };
        for ints in [IntFormat::Legacy, IntFormat::V2] {
            let d = Dialect {
                ints,
                flavor: Flavor::Gossip,
            };
            let list: Vec<u64> = (0..n as u64).collect();
            let enc = msgpack::to_vec(&list, d);
            let h = header(0x90, 0xdc);
            assert_eq!(enc[..h.len()], h[..], "array of {n}");
            assert_eq!(
                msgpack::from_slice_exact::<Vec<u64>>(&enc),
                Ok(list),
                "array of {n}"
            );
            let map: BTreeMap<GoString, i64> = (0..n)
                .map(|i| (GoString::from(format!("{i:05}")), -(i as i64)))
                .collect();
            let enc = msgpack::to_vec(&map, d);
            let h = header(0x80, 0xde);
            assert_eq!(enc[..h.len()], h[..], "map of {n}");
            assert_eq!(
                msgpack::from_slice_exact::<BTreeMap<GoString, i64>>(&enc),
                Ok(map),
                "map of {n}"
            );
        }
    }
}

/// Integers at every width boundary get exactly the marker the Go handle writes, in both
/// integer formats, and read back.
#[test]
fn integer_encoding_boundaries() {
    fn unsigned(v: u64) -> Vec<u8> {
        match v {
            0..=0x7f => vec![v as u8],
            0x80..=0xff => vec![0xcc, v as u8],
            0x100..=0xffff => [&[0xcd][..], &(v as u16).to_be_bytes()].concat(),
            0x1_0000..=0xffff_ffff => [&[0xce][..], &(v as u32).to_be_bytes()].concat(),
            _ => [&[0xcf][..], &v.to_be_bytes()].concat(),
        }
    }
    fn signed(v: i64, ints: IntFormat) -> Vec<u8> {
        match v {
            0.. if ints == IntFormat::Legacy => unsigned(v as u64),
            -32..=0x7f => vec![v as u8],
            -0x80..=0x7f => vec![0xd0, v as u8],
            -0x8000..=0x7fff => [&[0xd1][..], &(v as i16).to_be_bytes()].concat(),
            -0x8000_0000..=0x7fff_ffff => [&[0xd2][..], &(v as i32).to_be_bytes()].concat(),
            _ => [&[0xd3][..], &v.to_be_bytes()].concat(),
        }
    }
    let edges: Vec<i128> = [
        0i128, 1, 31, 32, 127, 128, 255, 256, 32767, 32768, 65535, 65536,
    ]
    .into_iter()
    .chain([
        i32::MAX as i128,
        u32::MAX as i128,
        i64::MAX as i128,
        u64::MAX as i128,
    ])
    .flat_map(|v| [v - 1, v, v + 1, -v - 1, -v, -v + 1])
    .collect();
    for ints in [IntFormat::Legacy, IntFormat::V2] {
        for flavor in [Flavor::Gossip, Flavor::Rpc] {
            let d = Dialect { ints, flavor };
            for &v in &edges {
                if let Ok(u) = u64::try_from(v) {
                    let enc = msgpack::to_vec(&u, d);
                    assert_eq!(enc, unsigned(u), "u64 {u} {d:?}");
                    assert_eq!(msgpack::from_slice_exact::<u64>(&enc), Ok(u));
                    if let Ok(u) = u32::try_from(u) {
                        assert_eq!(msgpack::to_vec(&u, d), unsigned(u64::from(u)), "u32 {u}");
                        assert_eq!(msgpack::from_slice_exact::<u32>(&enc), Ok(u));
                    } else {
                        assert!(
                            msgpack::from_slice_exact::<u32>(&enc).is_err(),
                            "u32 overflow {u}"
                        );
                    }
                }
                if let Ok(i) = i64::try_from(v) {
                    let enc = msgpack::to_vec(&i, d);
                    assert_eq!(enc, signed(i, ints), "i64 {i} {d:?}");
                    assert_eq!(msgpack::from_slice_exact::<i64>(&enc), Ok(i));
                    if let Ok(i) = i32::try_from(i) {
                        assert_eq!(
                            msgpack::to_vec(&i, d),
                            signed(i64::from(i), ints),
                            "i32 {i}"
                        );
                        assert_eq!(msgpack::from_slice_exact::<i32>(&enc), Ok(i));
                    } else {
                        assert!(
                            msgpack::from_slice_exact::<i32>(&enc).is_err(),
                            "i32 overflow {i}"
                        );
                    }
                    if i < 0 {
                        assert!(
                            msgpack::from_slice_exact::<u64>(&enc).is_err(),
                            "negative into u64 {i}"
                        );
                    }
                }
            }
        }
    }
}
