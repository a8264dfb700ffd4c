//! Strategies for primitive values: byte strings with lengths at the msgpack boundaries, integers
//! at every width edge, finite floats, optional values and both dialects of each flavor.

use std::collections::BTreeMap;
use std::fmt::Debug;

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::select;

use serf_proto::wire::msgpack::{Bytes, Dialect, Flavor, GoString, IntFormat};

pub(crate) fn blob() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        10 => vec(any::<u8>(), 0..24),
        3 => vec(any::<u8>(), 24..300),
        // Lengths at the raw/str8/raw16 and fixarray boundaries.
        1 => select(vec![15usize, 16, 31, 32, 33, 255, 256]).prop_flat_map(|n| vec(any::<u8>(), n)),
    ]
    .boxed()
}

pub(crate) fn small_blob() -> BoxedStrategy<Vec<u8>> {
    vec(any::<u8>(), 0..12).boxed()
}

pub(crate) fn gostr() -> BoxedStrategy<GoString> {
    blob().prop_map(GoString).boxed()
}

pub(crate) fn bytes() -> BoxedStrategy<Bytes> {
    blob().prop_map(Bytes).boxed()
}

/// None (nil), Some(empty) and Some(bytes) are three different things on the wire.
pub(crate) fn opt_bytes() -> BoxedStrategy<Option<Bytes>> {
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(Bytes::default())),
        4 => bytes().prop_map(Some),
    ]
    .boxed()
}

pub(crate) fn opt_vec<T: Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<Option<Vec<T>>> {
    prop_oneof![
        Just(None),
        Just(Some(Vec::new())),
        vec(s, 1..5).prop_map(Some),
    ]
    .boxed()
}

pub(crate) fn string_map() -> BoxedStrategy<BTreeMap<GoString, GoString>> {
    btree_map(gostr(), gostr(), 0..5).boxed()
}

pub(crate) fn opt_string_map() -> BoxedStrategy<Option<BTreeMap<GoString, GoString>>> {
    prop_oneof![
        Just(None),
        Just(Some(BTreeMap::new())),
        string_map().prop_map(Some),
    ]
    .boxed()
}

pub(crate) fn u64s() -> BoxedStrategy<u64> {
    prop_oneof![
        3 => any::<u64>(),
        2 => 0u64..300,
        3 => select(vec![
            0,
            1,
            0x7f,
            0x80,
            0xff,
            0x100,
            0xffff,
            0x1_0000,
            0xffff_ffff,
            0x1_0000_0000,
            i64::MAX as u64,
            1 << 63,
            u64::MAX - 1,
            u64::MAX,
        ]),
    ]
    .boxed()
}

pub(crate) fn u32s() -> BoxedStrategy<u32> {
    prop_oneof![
        3 => any::<u32>(),
        2 => 0u32..300,
        3 => select(vec![
            0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x1_0000, i32::MAX as u32, u32::MAX,
        ]),
    ]
    .boxed()
}

pub(crate) fn u16s() -> BoxedStrategy<u16> {
    prop_oneof![
        2 => any::<u16>(),
        1 => select(vec![0, 1, 0x7f, 0x80, 0xff, 0x100, 7946, u16::MAX]),
    ]
    .boxed()
}

pub(crate) fn i64s() -> BoxedStrategy<i64> {
    prop_oneof![
        3 => any::<i64>(),
        2 => -300i64..300,
        3 => select(vec![
            i64::MIN,
            i64::MIN + 1,
            i32::MIN as i64 - 1,
            i32::MIN as i64,
            -32769,
            -32768,
            -129,
            -128,
            -33,
            -32,
            -1,
            0,
            127,
            128,
            255,
            256,
            32767,
            32768,
            65535,
            65536,
            i32::MAX as i64,
            i32::MAX as i64 + 1,
            u32::MAX as i64,
            i64::MAX,
        ]),
    ]
    .boxed()
}

pub(crate) fn i32s() -> BoxedStrategy<i32> {
    prop_oneof![
        2 => any::<i32>(),
        1 => select(vec![
            i32::MIN, -32769, -129, -128, -33, -32, -1, 0, 1, 127, 128, 32768, i32::MAX,
        ]),
    ]
    .boxed()
}

/// Finite floats, including zeros of both signs, subnormals and the extremes.
pub(crate) fn finite() -> BoxedStrategy<f64> {
    use proptest::num::f64 as f;
    prop_oneof![
        3 => f::POSITIVE | f::NEGATIVE | f::NORMAL | f::SUBNORMAL | f::ZERO,
        1 => select(vec![
            0.0, -0.0, 1.5, -2.0, 5e-324, -5e-324, f64::MIN_POSITIVE, f64::MAX, f64::MIN, 1e-3,
        ]),
    ]
    .boxed()
}

fn int_format() -> impl Strategy<Value = IntFormat> {
    prop_oneof![Just(IntFormat::Legacy), Just(IntFormat::V2)]
}

pub(crate) fn gossip_dialect() -> BoxedStrategy<Dialect> {
    int_format()
        .prop_map(|ints| Dialect {
            ints,
            flavor: Flavor::Gossip,
        })
        .boxed()
}

pub(crate) fn rpc_dialect() -> BoxedStrategy<Dialect> {
    int_format()
        .prop_map(|ints| Dialect {
            ints,
            flavor: Flavor::Rpc,
        })
        .boxed()
}
