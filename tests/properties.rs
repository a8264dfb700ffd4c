//! Property tests for the wire layer.
//!
//! * Round trips: every message type, wrapper and RPC struct decodes to what was encoded, in both
//!   integer formats and both string flavors, re-encodes to the same bytes (the encoding is
//!   canonical), and decodes just as well when written the loose ways Go's decoders accept (any
//!   integer width, bin for strings, nil for zero values, shuffled keys, unknown keys).
//! * Truncation: strict prefixes of a valid encoding are refused wherever the format is
//!   self-delimiting, and never panic elsewhere.
//! * Robustness: arbitrary and mutated input never panics any decoder entry point, and declared
//!   lengths the input cannot hold are refused before anything is allocated for them.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseError;

use serf_proto::wire::memberlist::keyring::{EncryptionVersion, Keyring, NONCE_LEN};
use serf_proto::wire::memberlist::push_pull::{self, PushPull as MlPushPull};
use serf_proto::wire::memberlist::stream::{self, StreamMessage};
use serf_proto::wire::memberlist::{
    self as ml, compound, compress, crc, label, lzw, packet, WireOptions,
};
use serf_proto::wire::msgpack::{
    self, Bytes, Decoder, Dialect, Encoder, Field, Flavor, GoString, IntFormat, Value,
};
use serf_proto::wire::rpc;
use serf_proto::wire::serf as sf;
use serf_proto::wire::{DecodeResult, ErrorKind};

// ---------------------------------------------------------------------------------------------
// Allocation tracking: the largest single allocation made by the current thread, so that tests can
// check a decoder refused a huge declared length *before* allocating for it.

struct TrackingAlloc;

thread_local! {
    static LARGEST_ALLOC: Cell<usize> = const { Cell::new(0) };
}

fn note_alloc(size: usize) {
    let _ = LARGEST_ALLOC.try_with(|largest| {
        if size > largest.get() {
            largest.set(size);
        }
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator; we only record sizes.
unsafe impl GlobalAlloc for TrackingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_alloc(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: TrackingAlloc = TrackingAlloc;

/// Runs `f` and returns its result with the largest single allocation it made on this thread.
fn largest_allocation<R>(f: impl FnOnce() -> R) -> (R, usize) {
    LARGEST_ALLOC.set(0);
    let out = f();
    (out, LARGEST_ALLOC.get())
}

// ---------------------------------------------------------------------------------------------
// Configuration and helpers.

/// `cases` per property, unless `PROPTEST_CASES` asks for more (soak runs).
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        // Don't write proptest-regressions/ files into the tree; failures print their input.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn fail(msg: String) -> TestCaseError {
    TestCaseError::fail(msg)
}

/// Unwraps a decode result, failing the case with the error and the input in hex.
fn ok<T, E: std::fmt::Display>(
    r: Result<T, E>,
    what: &str,
    input: &[u8],
) -> Result<T, TestCaseError> {
    r.map_err(|e| fail(format!("{what}: {e}; input {}", hex::encode(input))))
}

/// Strict prefix lengths to try: all of them for short inputs, else the first and last 96 and a
/// stride through the middle (decoding every prefix of a long input is quadratic).
fn prefix_lengths(len: usize) -> impl Iterator<Item = usize> {
    let stride = len / 96 + 1;
    (0..len).filter(move |&k| len <= 384 || k < 96 || k + 96 >= len || k % stride == 0)
}

/// Every strict prefix of `bytes` must fail to decode.
fn prefixes_fail<T: Debug, E>(
    bytes: &[u8],
    what: &str,
    decode: impl Fn(&[u8]) -> Result<T, E>,
) -> Result<(), TestCaseError> {
    for k in prefix_lengths(bytes.len()) {
        if let Ok(v) = decode(&bytes[..k]) {
            return Err(fail(format!(
                "{what}: the {k}-byte prefix of {} bytes decoded to {v:?}; full input {}",
                bytes.len(),
                hex::encode(bytes)
            )));
        }
    }
    Ok(())
}

/// Checks what the dialect promises about the markers it writes: gossip never writes bin, and the
/// legacy integer format never writes a non-negative value with a signed marker.
fn markers_match_dialect(body: &[u8], d: Dialect) -> Result<(), TestCaseError> {
    fn walk(v: &Value, d: Dialect) -> Result<(), String> {
        match v {
            Value::Bytes(_) if d.flavor == Flavor::Gossip => Err("bin marker in gossip".into()),
            Value::Int(i) if *i >= 0 && d.ints == IntFormat::Legacy => {
                Err(format!("signed marker for {i} in legacy format"))
            }
            Value::Array(items) => items.iter().try_for_each(|i| walk(i, d)),
            Value::Map(entries) => entries.iter().try_for_each(|(k, v)| {
                walk(k, d)?;
                walk(v, d)
            }),
            _ => Ok(()),
        }
    }
    let value = ok(Decoder::new(body).value(), "generic decode", body)?;
    walk(&value, d).map_err(|e| fail(format!("{e} ({d:?}): {}", hex::encode(body))))
}

/// The full round-trip contract for one msgpack value: decodes back equal, re-encodes to the same
/// bytes, uses the dialect's markers, and every strict prefix is refused.
fn check_field<T: Field + PartialEq + Debug>(v: &T, d: Dialect) -> Result<(), TestCaseError> {
    let bytes = msgpack::to_vec(v, d);
    let what = std::any::type_name::<T>();
    let back: T = ok(msgpack::from_slice_exact(&bytes), what, &bytes)?;
    prop_assert_eq!(&back, v, "{} via {:?}: {}", what, d, hex::encode(&bytes));
    prop_assert_eq!(
        msgpack::to_vec(&back, d),
        bytes.clone(),
        "{} re-encoding",
        what
    );
    markers_match_dialect(&bytes, d)?;
    prefixes_fail(&bytes, what, msgpack::from_slice::<T>)
}

// ---------------------------------------------------------------------------------------------
// A loose msgpack writer: writes a `Value` tree choosing at random among the encodings the Go
// decoders (and ours) accept, to check decoding does not depend on how the peer wrote its values.

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15 | 1)
    }
    fn next(&mut self) -> u64 {
        // xorshift64
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<T: Copy>(&mut self, options: &[T]) -> T {
        options[self.below(options.len())]
    }
}

fn write_int_loose(v: i128, rng: &mut Rng, out: &mut Vec<u8>) {
    let mut forms: Vec<u8> = Vec::new();
    if (0..=0x7f).contains(&v) {
        forms.push(0x00);
    }
    if (-32..0).contains(&v) {
        forms.push(0xe0);
    }
    if v == 0 {
        forms.push(0xc0); // Go reads nil as the zero value.
    }
    for (marker, max) in [
        (0xcc, u8::MAX as i128),
        (0xcd, u16::MAX as i128),
        (0xce, u32::MAX as i128),
        (0xcf, u64::MAX as i128),
    ] {
        if (0..=max).contains(&v) {
            forms.push(marker);
        }
    }
    for (marker, min, max) in [
        (0xd0, i8::MIN as i128, i8::MAX as i128),
        (0xd1, i16::MIN as i128, i16::MAX as i128),
        (0xd2, i32::MIN as i128, i32::MAX as i128),
        (0xd3, i64::MIN as i128, i64::MAX as i128),
    ] {
        if (min..=max).contains(&v) {
            forms.push(marker);
        }
    }
    match rng.pick(&forms) {
        0x00 | 0xe0 => out.push(v as i8 as u8),
        0xc0 => out.push(0xc0),
        m @ (0xcc | 0xd0) => out.extend([m, v as u8]),
        m @ (0xcd | 0xd1) => {
            out.push(m);
            out.extend((v as u16).to_be_bytes());
        }
        m @ (0xce | 0xd2) => {
            out.push(m);
            out.extend((v as u32).to_be_bytes());
        }
        m => {
            out.push(m);
            out.extend((v as u64).to_be_bytes());
        }
    }
}

fn write_float_loose(f: f64, rng: &mut Rng, out: &mut Vec<u8>) {
    let as_int = f.fract() == 0.0 && f.abs() < 9.0e18 && !(f == 0.0 && f.is_sign_negative());
    let as_f32 = ((f as f32) as f64).to_bits() == f.to_bits();
    match rng.below(3) {
        0 if as_int => write_int_loose(f as i128, rng, out),
        1 if as_f32 => {
            out.push(0xca);
            out.extend((f as f32).to_bits().to_be_bytes());
        }
        _ => {
            out.push(0xcb);
            out.extend(f.to_bits().to_be_bytes());
        }
    }
}

fn write_str_loose(s: &[u8], nil_ok: bool, rng: &mut Rng, out: &mut Vec<u8>) {
    let n = s.len();
    let mut forms: Vec<u8> = vec![0xdb, 0xc6];
    if n < 32 {
        forms.push(0xa0);
    }
    if n <= 0xff {
        forms.extend([0xd9, 0xc4]);
    }
    if n <= 0xffff {
        forms.extend([0xda, 0xc5]);
    }
    if n == 0 && nil_ok {
        forms.push(0xc0);
    }
    match rng.pick(&forms) {
        0xa0 => out.push(0xa0 | n as u8),
        0xc0 => out.push(0xc0),
        m @ (0xd9 | 0xc4) => out.extend([m, n as u8]),
        m @ (0xda | 0xc5) => {
            out.push(m);
            out.extend((n as u16).to_be_bytes());
        }
        m => {
            out.push(m);
            out.extend((n as u32).to_be_bytes());
        }
    }
    out.extend_from_slice(s);
}

fn write_len_loose(n: usize, fix: u8, marker16: u8, rng: &mut Rng, out: &mut Vec<u8>) {
    let mut forms = vec![marker16 + 1];
    if n < 16 {
        forms.push(fix);
    }
    if n <= 0xffff {
        forms.push(marker16);
    }
    match rng.pick(&forms) {
        f if f == fix => out.push(fix | n as u8),
        m if m == marker16 => {
            out.push(m);
            out.extend((n as u16).to_be_bytes());
        }
        m => {
            out.push(m);
            out.extend((n as u32).to_be_bytes());
        }
    }
}

/// Values for keys a struct does not know; the decoder must skip them whole.
const UNKNOWN_VALUES: [&[u8]; 7] = [
    &[0xc0],
    &[0x92, 0x01, 0xa1, b'x'],
    &[0x81, 0xa1, b'k', 0x91, 0x90],
    &[0xcb, 0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18],
    &[0xc4, 0x02, 0x01, 0x02],
    &[0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0],
    &[0xde, 0x00, 0x01, 0xd9, 0x01, b'z', 0xc3],
];

/// Writes `v` loosely. `top_struct` says `v` is a Go struct, which may get unknown keys (inner maps
/// may be Go maps, where an extra key would change the value).
fn write_loose(v: &Value, top_struct: bool, rng: &mut Rng, out: &mut Vec<u8>) {
    match v {
        Value::Nil => out.push(0xc0),
        Value::Bool(b) => out.push(match (b, rng.below(3)) {
            (false, 0) => 0xc0,
            (false, _) => 0xc2,
            (true, _) => 0xc3,
        }),
        Value::Uint(u) => write_int_loose(i128::from(*u), rng, out),
        Value::Int(i) => write_int_loose(i128::from(*i), rng, out),
        Value::Float(f) => write_float_loose(*f, rng, out),
        // Strings are never optional in these structs, so an empty one may be nil; byte slices
        // may be `Option<Bytes>`, where nil means None.
        Value::Str(s) => write_str_loose(s, true, rng, out),
        Value::Bytes(s) => write_str_loose(s, false, rng, out),
        Value::Array(items) => {
            write_len_loose(items.len(), 0x90, 0xdc, rng, out);
            for item in items {
                write_loose(item, false, rng, out);
            }
        }
        Value::Map(entries) => {
            let mut order: Vec<&(Value, Value)> = entries.iter().collect();
            for i in (1..order.len()).rev() {
                order.swap(i, rng.below(i + 1));
            }
            let unknown = if top_struct { rng.below(3) } else { 0 };
            write_len_loose(order.len() + unknown, 0x80, 0xde, rng, out);
            for n in 0..unknown {
                write_str_loose(format!("Unknown{n}").as_bytes(), false, rng, out);
                out.extend_from_slice(rng.pick(&UNKNOWN_VALUES));
            }
            for (k, v) in order {
                write_loose(k, false, rng, out);
                write_loose(v, false, rng, out);
            }
        }
    }
}

/// A value written loosely decodes to itself.
fn check_loose<T: Field + PartialEq + Debug>(
    v: &T,
    top_struct: bool,
    seed: u64,
) -> Result<(), TestCaseError> {
    let mut out = Vec::new();
    write_loose(&v.to_value(), top_struct, &mut Rng::new(seed), &mut out);
    let what = std::any::type_name::<T>();
    let back: T = ok(msgpack::from_slice_exact(&out), what, &out)?;
    prop_assert_eq!(&back, v, "{} written loosely: {}", what, hex::encode(&out));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Strategies: primitives.

fn blob() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        10 => vec(any::<u8>(), 0..24),
        3 => vec(any::<u8>(), 24..300),
        // Lengths at the raw/str8/raw16 and fixarray boundaries.
        1 => select(vec![15usize, 16, 31, 32, 33, 255, 256]).prop_flat_map(|n| vec(any::<u8>(), n)),
    ]
    .boxed()
}

fn small_blob() -> BoxedStrategy<Vec<u8>> {
    vec(any::<u8>(), 0..12).boxed()
}

fn gostr() -> BoxedStrategy<GoString> {
    blob().prop_map(GoString).boxed()
}

fn bytes() -> BoxedStrategy<Bytes> {
    blob().prop_map(Bytes).boxed()
}

/// None (nil), Some(empty) and Some(bytes) are three different things on the wire.
fn opt_bytes() -> BoxedStrategy<Option<Bytes>> {
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(Bytes::default())),
        4 => bytes().prop_map(Some),
    ]
    .boxed()
}

fn opt_vec<T: Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<Option<Vec<T>>> {
    prop_oneof![
        Just(None),
        Just(Some(Vec::new())),
        vec(s, 1..5).prop_map(Some),
    ]
    .boxed()
}

fn string_map() -> BoxedStrategy<BTreeMap<GoString, GoString>> {
    btree_map(gostr(), gostr(), 0..5).boxed()
}

fn opt_string_map() -> BoxedStrategy<Option<BTreeMap<GoString, GoString>>> {
    prop_oneof![
        Just(None),
        Just(Some(BTreeMap::new())),
        string_map().prop_map(Some),
    ]
    .boxed()
}

fn u64s() -> BoxedStrategy<u64> {
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

fn u32s() -> BoxedStrategy<u32> {
    prop_oneof![
        3 => any::<u32>(),
        2 => 0u32..300,
        3 => select(vec![
            0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x1_0000, i32::MAX as u32, u32::MAX,
        ]),
    ]
    .boxed()
}

fn u16s() -> BoxedStrategy<u16> {
    prop_oneof![
        2 => any::<u16>(),
        1 => select(vec![0, 1, 0x7f, 0x80, 0xff, 0x100, 7946, u16::MAX]),
    ]
    .boxed()
}

fn i64s() -> BoxedStrategy<i64> {
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

fn i32s() -> BoxedStrategy<i32> {
    prop_oneof![
        2 => any::<i32>(),
        1 => select(vec![
            i32::MIN, -32769, -129, -128, -33, -32, -1, 0, 1, 127, 128, 32768, i32::MAX,
        ]),
    ]
    .boxed()
}

/// Finite floats, including zeros of both signs, subnormals and the extremes.
fn finite() -> BoxedStrategy<f64> {
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

fn gossip_dialect() -> BoxedStrategy<Dialect> {
    int_format()
        .prop_map(|ints| Dialect {
            ints,
            flavor: Flavor::Gossip,
        })
        .boxed()
}

fn rpc_dialect() -> BoxedStrategy<Dialect> {
    int_format()
        .prop_map(|ints| Dialect {
            ints,
            flavor: Flavor::Rpc,
        })
        .boxed()
}

/// Builds a strategy for a struct from one strategy per field.
macro_rules! strategy {
    ($name:ident -> $($ty:ident)::+ { $($field:ident: $s:expr),* $(,)? }) => {
        fn $name() -> BoxedStrategy<$($ty)::+> {
            ($($s,)*).prop_map(|($($field,)*)| $($ty)::+ { $($field),* }).boxed()
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Strategies: memberlist.

strategy!(ping -> ml::Ping {
    node: gostr(), seq_no: u32s(), source_addr: opt_bytes(), source_node: gostr(),
    source_port: u16s(),
});
strategy!(indirect_ping -> ml::IndirectPing {
    nack: any::<bool>(), node: gostr(), port: u16s(), seq_no: u32s(), source_addr: opt_bytes(),
    source_node: gostr(), source_port: u16s(), target: bytes(),
});
strategy!(ack -> ml::Ack { payload: opt_bytes(), seq_no: u32s() });
strategy!(nack -> ml::Nack { seq_no: u32s() });
strategy!(suspect -> ml::Suspect { from: gostr(), incarnation: u32s(), node: gostr() });
strategy!(alive -> ml::Alive {
    addr: bytes(), incarnation: u32s(), meta: opt_bytes(), node: gostr(), port: u16s(),
    vsn: bytes(),
});
strategy!(dead -> ml::Dead { from: gostr(), incarnation: u32s(), node: gostr() });
strategy!(err_resp -> ml::ErrResp { error: gostr() });

fn node_state() -> impl Strategy<Value = ml::NodeState> {
    select(vec![
        ml::NodeState::Alive,
        ml::NodeState::Suspect,
        ml::NodeState::Dead,
        ml::NodeState::Left,
    ])
}

strategy!(push_node_state -> ml::PushNodeState {
    addr: bytes(), incarnation: u32s(), meta: opt_bytes(), name: gostr(), port: u16s(),
    state: node_state(), vsn: bytes(),
});
strategy!(ml_push_pull -> MlPushPull {
    join: any::<bool>(), nodes: vec(push_node_state(), 0..4), user_state: blob(),
});

fn ml_message() -> BoxedStrategy<ml::Message> {
    prop_oneof![
        ping().prop_map(ml::Message::Ping),
        indirect_ping().prop_map(ml::Message::IndirectPing),
        ack().prop_map(ml::Message::Ack),
        suspect().prop_map(ml::Message::Suspect),
        alive().prop_map(ml::Message::Alive),
        dead().prop_map(ml::Message::Dead),
        blob().prop_map(ml::Message::User),
        nack().prop_map(ml::Message::Nack),
        err_resp().prop_map(ml::Message::Err),
    ]
    .boxed()
}

/// `omitempty` drops a `SourceAddr` of Some(empty), which then decodes as None.
fn omit_empty(addr: Option<Bytes>) -> Option<Bytes> {
    addr.filter(|a| !a.is_empty())
}

fn normalized(m: &ml::Message) -> ml::Message {
    match m.clone() {
        ml::Message::Ping(mut p) => {
            p.source_addr = omit_empty(p.source_addr);
            ml::Message::Ping(p)
        }
        ml::Message::IndirectPing(mut p) => {
            p.source_addr = omit_empty(p.source_addr);
            ml::Message::IndirectPing(p)
        }
        other => other,
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies: serf.

strategy!(leave -> sf::Leave { ltime: u64s(), node: gostr(), prune: any::<bool>() });
strategy!(join -> sf::Join { ltime: u64s(), node: gostr() });
strategy!(user_event -> sf::UserEvent { name: gostr(), payload: opt_bytes() });
strategy!(user_events -> sf::UserEvents { events: vec(user_event(), 0..3), ltime: u64s() });
strategy!(serf_push_pull -> sf::PushPull {
    event_ltime: u64s(),
    events: vec(proptest::option::of(user_events()), 0..4),
    ltime: u64s(),
    left_members: vec(gostr(), 0..4),
    query_ltime: u64s(),
    status_ltimes: btree_map(gostr(), u64s(), 0..4),
});
strategy!(user_event_message -> sf::UserEventMessage {
    cc: any::<bool>(), ltime: u64s(), name: gostr(), payload: opt_bytes(),
});
strategy!(query -> sf::Query {
    addr: bytes(), filters: opt_vec(bytes()), flags: u32s(), id: u32s(), ltime: u64s(),
    name: gostr(), payload: opt_bytes(), port: u16s(), relay_factor: any::<u8>(),
    source_node: gostr(), timeout: i64s(),
});
strategy!(query_response -> sf::QueryResponse {
    flags: u32s(), from: gostr(), id: u32s(), ltime: u64s(), payload: opt_bytes(),
});
strategy!(serf_member -> sf::Member {
    addr: bytes(), delegate_cur: any::<u8>(), delegate_max: any::<u8>(),
    delegate_min: any::<u8>(), name: gostr(), port: u16s(), protocol_cur: any::<u8>(),
    protocol_max: any::<u8>(), protocol_min: any::<u8>(), status: i64s(), tags: opt_string_map(),
});
strategy!(serf_key_request -> sf::KeyRequest { key: opt_bytes() });
strategy!(serf_key_response -> sf::KeyResponse {
    keys: opt_vec(gostr()), message: gostr(), primary_key: gostr(), result: any::<bool>(),
});
strategy!(udp_addr -> sf::UdpAddr { ip: bytes(), port: i64s(), zone: gostr() });
strategy!(relay_header -> sf::RelayHeader { dest_addr: udp_addr(), dest_name: gostr() });
strategy!(filter_tag -> sf::FilterTag { expr: gostr(), tag: gostr() });
strategy!(coordinate -> sf::Coordinate {
    adjustment: finite(), error: finite(), height: finite(), vec: opt_vec(finite()),
});

fn serf_message() -> BoxedStrategy<sf::Message> {
    let relay_inner = prop_oneof![
        vec(any::<u8>(), 1..64),
        leave().prop_map(|l| sf::Message::Leave(l).encode(Dialect::GOSSIP)),
    ];
    prop_oneof![
        leave().prop_map(sf::Message::Leave),
        join().prop_map(sf::Message::Join),
        serf_push_pull().prop_map(sf::Message::PushPull),
        user_event_message().prop_map(sf::Message::UserEvent),
        query().prop_map(sf::Message::Query),
        query_response().prop_map(sf::Message::QueryResponse),
        Just(sf::Message::ConflictResponse(None)),
        serf_member().prop_map(|m| sf::Message::ConflictResponse(Some(m))),
        serf_key_request().prop_map(sf::Message::KeyRequest),
        serf_key_response().prop_map(sf::Message::KeyResponse),
        (relay_header(), relay_inner)
            .prop_map(|(header, inner)| sf::Message::Relay { header, inner }),
    ]
    .boxed()
}

fn filter() -> BoxedStrategy<sf::Filter> {
    prop_oneof![
        vec(gostr(), 0..5).prop_map(sf::Filter::Nodes),
        filter_tag().prop_map(sf::Filter::Tag),
    ]
    .boxed()
}

/// Coordinates compared bit for bit (PartialEq would equate 0.0 and -0.0).
fn coordinate_bits(c: &sf::Coordinate) -> (u64, u64, u64, Option<Vec<u64>>) {
    (
        c.adjustment.to_bits(),
        c.error.to_bits(),
        c.height.to_bits(),
        c.vec
            .as_ref()
            .map(|v| v.iter().map(|f| f.to_bits()).collect()),
    )
}

// ---------------------------------------------------------------------------------------------
// Strategies: RPC. One enum over every request/response struct, generated with its strategy, the
// round-trip check and a decode-anything helper, so that no struct is forgotten in any of them.

strategy!(rpc_member -> rpc::Member {
    addr: bytes(), delegate_cur: any::<u8>(), delegate_max: any::<u8>(),
    delegate_min: any::<u8>(), name: gostr(), port: u16s(), protocol_cur: any::<u8>(),
    protocol_max: any::<u8>(), protocol_min: any::<u8>(), status: gostr(), tags: opt_string_map(),
});

macro_rules! rpc_cases {
    ($($variant:ident($ty:ty) = $strategy:expr),* $(,)?) => {
        #[derive(Debug, Clone)]
        enum RpcValue {
            $($variant($ty)),*
        }

        fn rpc_value() -> BoxedStrategy<RpcValue> {
            prop_oneof![$($strategy.prop_map(RpcValue::$variant)),*].boxed()
        }

        fn check_rpc(v: &RpcValue, d: Dialect, seed: u64) -> Result<(), TestCaseError> {
            match v {
                $(RpcValue::$variant(x) => {
                    check_field(x, d)?;
                    // StatsResponse is a Go map at the top: no unknown keys for it.
                    let top_struct = !matches!(v, RpcValue::Stats(_));
                    check_loose(x, top_struct, seed)
                })*
            }
        }

        fn rpc_encode(v: &RpcValue, d: Dialect) -> Vec<u8> {
            match v {
                $(RpcValue::$variant(x) => msgpack::to_vec(x, d)),*
            }
        }

        fn decode_all_rpc(buf: &[u8]) {
            $(
                let _ = msgpack::from_slice::<$ty>(buf);
            )*
        }
    };
}

rpc_cases! {
    RequestHeader(rpc::RequestHeader) = (gostr(), u64s())
        .prop_map(|(command, seq)| rpc::RequestHeader { command, seq }),
    ResponseHeader(rpc::ResponseHeader) = (gostr(), u64s())
        .prop_map(|(error, seq)| rpc::ResponseHeader { error, seq }),
    Handshake(rpc::HandshakeRequest) = i32s().prop_map(|version| rpc::HandshakeRequest { version }),
    Auth(rpc::AuthRequest) = gostr().prop_map(|auth_key| rpc::AuthRequest { auth_key }),
    Event(rpc::EventRequest) = (any::<bool>(), gostr(), opt_bytes())
        .prop_map(|(coalesce, name, payload)| rpc::EventRequest { coalesce, name, payload }),
    ForceLeave(rpc::ForceLeaveRequest) = (gostr(), any::<bool>())
        .prop_map(|(node, prune)| rpc::ForceLeaveRequest { node, prune }),
    Join(rpc::JoinRequest) = (vec(gostr(), 0..4), any::<bool>())
        .prop_map(|(existing, replay)| rpc::JoinRequest { existing, replay }),
    JoinResponse(rpc::JoinResponse) = i32s().prop_map(|num| rpc::JoinResponse { num }),
    Member(rpc::Member) = rpc_member(),
    Members(rpc::MembersResponse) = vec(rpc_member(), 0..3)
        .prop_map(|members| rpc::MembersResponse { members }),
    MembersFiltered(rpc::MembersFilteredRequest) = (gostr(), gostr(), opt_string_map())
        .prop_map(|(name, status, tags)| rpc::MembersFilteredRequest { name, status, tags }),
    Tags(rpc::TagsRequest) = (opt_vec(gostr()), opt_string_map())
        .prop_map(|(delete_tags, tags)| rpc::TagsRequest { delete_tags, tags }),
    Stream(rpc::StreamRequest) = gostr().prop_map(|event_type| rpc::StreamRequest { event_type }),
    Monitor(rpc::MonitorRequest) = gostr().prop_map(|log_level| rpc::MonitorRequest { log_level }),
    Stop(rpc::StopRequest) = u64s().prop_map(|stop| rpc::StopRequest { stop }),
    Query(rpc::QueryRequest) = (
        opt_vec(gostr()), opt_string_map(), gostr(), opt_bytes(), any::<u8>(), any::<bool>(),
        i64s(),
    )
        .prop_map(|(filter_nodes, filter_tags, name, payload, relay_factor, request_ack, timeout)| {
            rpc::QueryRequest {
                filter_nodes, filter_tags, name, payload, relay_factor, request_ack, timeout,
            }
        }),
    Respond(rpc::RespondRequest) = (u64s(), opt_bytes())
        .prop_map(|(id, payload)| rpc::RespondRequest { id, payload }),
    Key(rpc::KeyRequest) = gostr().prop_map(|key| rpc::KeyRequest { key }),
    KeyResponse(rpc::KeyResponse) = (
        prop_oneof![
            Just(None),
            Just(Some(BTreeMap::new())),
            btree_map(gostr(), i64s(), 1..4).prop_map(Some),
        ],
        opt_string_map(), i64s(), i64s(), i64s(),
    )
        .prop_map(|(keys, messages, num_err, num_nodes, num_resp)| rpc::KeyResponse {
            keys, messages, num_err, num_nodes, num_resp,
        }),
    Coordinate(rpc::CoordinateRequest) = gostr().prop_map(|node| rpc::CoordinateRequest { node }),
    CoordinateResponse(rpc::CoordinateResponse) = (coordinate(), any::<bool>())
        .prop_map(|(coord, ok)| rpc::CoordinateResponse { coord, ok }),
    Stats(rpc::StatsResponse) = btree_map(gostr(), string_map(), 0..4),
    MemberEvent(rpc::MemberEventRecord) = (gostr(), vec(rpc_member(), 0..3))
        .prop_map(|(event, members)| rpc::MemberEventRecord { event, members }),
    UserEvent(rpc::UserEventRecord) = (any::<bool>(), gostr(), u64s(), gostr(), opt_bytes())
        .prop_map(|(coalesce, event, ltime, name, payload)| rpc::UserEventRecord {
            coalesce, event, ltime, name, payload,
        }),
    QueryEvent(rpc::QueryEventRecord) = (gostr(), u64s(), u64s(), gostr(), opt_bytes())
        .prop_map(|(event, id, ltime, name, payload)| rpc::QueryEventRecord {
            event, id, ltime, name, payload,
        }),
    Log(rpc::LogRecord) = gostr().prop_map(|log| rpc::LogRecord { log }),
    QueryRecord(rpc::QueryRecord) = (gostr(), opt_bytes(), gostr())
        .prop_map(|(from, payload, record_type)| rpc::QueryRecord { from, payload, record_type }),
}

// ---------------------------------------------------------------------------------------------
// Strategies: wire options, keys.

fn aes_key() -> BoxedStrategy<Vec<u8>> {
    select(vec![16usize, 24, 32])
        .prop_flat_map(|n| vec(any::<u8>(), n))
        .boxed()
}

fn label_bytes() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        3 => Just(Vec::new()),
        3 => vec(any::<u8>(), 1..16),
        1 => vec(any::<u8>(), 255),
    ]
    .boxed()
}

fn encryption_version() -> impl Strategy<Value = EncryptionVersion> {
    prop_oneof![Just(EncryptionVersion::V0), Just(EncryptionVersion::V1)]
}

/// Everything needed to build the options of both ends (`WireOptions` is not `Clone`).
#[derive(Debug, Clone)]
struct OptionsSpec {
    compression: bool,
    label: Vec<u8>,
    /// Installed keys; the sender's primary is the first.
    keys: Option<Vec<Vec<u8>>>,
    /// The receiver's primary is this key (mod the number of keys): decryption tries them all.
    receiver_primary: usize,
    version: EncryptionVersion,
    dialect: Dialect,
}

impl OptionsSpec {
    fn build(&self, primary: usize) -> WireOptions {
        let keyring = self.keys.as_ref().map(|keys| {
            let first = &keys[primary % keys.len()];
            Keyring::new(first, keys).expect("valid AES key sizes")
        });
        WireOptions {
            label: self.label.clone(),
            keyring,
            compression: self.compression,
            encryption_version: self.version,
            verify_incoming: true,
            verify_outgoing: true,
            dialect: self.dialect,
        }
    }
    fn sender(&self) -> WireOptions {
        self.build(0)
    }
    fn receiver(&self) -> WireOptions {
        self.build(self.receiver_primary)
    }
}

fn options_spec() -> BoxedStrategy<OptionsSpec> {
    (
        any::<bool>(),
        label_bytes(),
        proptest::option::of(vec(aes_key(), 1..4)),
        any::<usize>(),
        encryption_version(),
        gossip_dialect(),
    )
        .prop_map(
            |(compression, label, keys, receiver_primary, version, dialect)| OptionsSpec {
                compression,
                label,
                keys,
                receiver_primary,
                version,
                dialect,
            },
        )
        .boxed()
}

/// A message as sent on a stream, and what reading it must give.
#[derive(Debug, Clone)]
enum StreamCase {
    Ping(ml::Ping),
    Ack(ml::Ack),
    PushPull(MlPushPull),
    User(Vec<u8>),
    Err(ml::ErrResp),
}

impl StreamCase {
    fn encode(&self, d: Dialect) -> Vec<u8> {
        match self {
            StreamCase::Ping(p) => ml::Message::Ping(p.clone()).encode(d),
            StreamCase::Ack(a) => ml::Message::Ack(a.clone()).encode(d),
            StreamCase::PushPull(p) => p.encode(d),
            StreamCase::User(u) => stream::user_message(u, d),
            StreamCase::Err(e) => ml::Message::Err(e.clone()).encode(d),
        }
    }
    fn expected(&self) -> StreamMessage {
        match self.clone() {
            StreamCase::Ping(mut p) => {
                p.source_addr = omit_empty(p.source_addr);
                StreamMessage::Ping(p)
            }
            StreamCase::Ack(a) => StreamMessage::Ack(a),
            StreamCase::PushPull(p) => StreamMessage::PushPull(p),
            StreamCase::User(u) => StreamMessage::User(u),
            StreamCase::Err(e) => StreamMessage::Err(e),
        }
    }
}

fn stream_case() -> BoxedStrategy<StreamCase> {
    prop_oneof![
        ping().prop_map(StreamCase::Ping),
        ack().prop_map(StreamCase::Ack),
        ml_push_pull().prop_map(StreamCase::PushPull),
        blob().prop_map(StreamCase::User),
        err_resp().prop_map(StreamCase::Err),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------------
// Decode-anything: every decoder entry point, fed the same bytes. Used for arbitrary and mutated
// input; only panics matter.

struct Fixtures {
    options: Vec<WireOptions>,
    keyring: Keyring,
}

static FIXTURES: LazyLock<Fixtures> = LazyLock::new(|| {
    let key16 = [7u8; 16];
    let key32 = [9u8; 32];
    let keyed = |label: &[u8], verify_incoming: bool, version| WireOptions {
        label: label.to_vec(),
        keyring: Some(Keyring::new(&key16, &[key32]).expect("valid keys")),
        verify_incoming,
        encryption_version: version,
        ..WireOptions::default()
    };
    Fixtures {
        options: vec![
            WireOptions::default(),
            WireOptions {
                compression: false,
                ..WireOptions::default()
            },
            WireOptions {
                label: b"cluster".to_vec(),
                ..WireOptions::default()
            },
            keyed(b"", true, EncryptionVersion::V1),
            keyed(b"", false, EncryptionVersion::V0),
            keyed(b"cluster", true, EncryptionVersion::V1),
        ],
        keyring: Keyring::new(&key16, &[key32]).expect("valid keys"),
    }
});

fn decode_everything(buf: &[u8]) {
    let _ = ml::Message::decode(buf);
    let _ = ml::MessageType::of(buf);
    let _ = sf::Message::decode(buf);
    let _ = sf::Filter::decode(buf);
    let _ = sf::decode_tags(buf);
    let _ = sf::decode_ack_payload(buf);
    decode_all_rpc(buf);
    let _ = msgpack::from_slice::<ml::PushNodeState>(buf);
    let _ = msgpack::from_slice::<sf::Coordinate>(buf);

    let mut dec = Decoder::new(buf);
    while dec.remaining() > 0 && dec.value().is_ok() {}

    let _ = MlPushPull::decode_body(&mut Decoder::new(buf));
    if let Some(rest) = buf.get(1..) {
        let _ = MlPushPull::decode_body(&mut Decoder::new(rest));
    }
    let _ = compound::decode(buf);
    let _ = crc::unwrap(buf);
    let _ = label::split(buf);
    let _ = compress::unwrap(buf, 1 << 16);
    let _ = lzw::decompress(buf, 1 << 16);
    let _ = lzw::decompress(buf, 0);

    let fixtures = &*FIXTURES;
    let _ = fixtures.keyring.decrypt(buf, b"");
    for opts in &fixtures.options {
        if let Ok(inner) = packet::decode(opts, buf) {
            let flat = packet::flatten(&inner);
            for message in &flat.messages {
                if let Ok(ml::Message::User(payload)) = ml::Message::decode(message) {
                    let _ = sf::Message::decode(&payload);
                }
            }
        }
        let _ = packet::flatten(buf);
        for dialer in [false, true] {
            let _ = stream::decode(opts, buf, dialer);
        }
    }
}

/// A valid encoding of some kind, to be mutated.
#[derive(Debug, Clone)]
enum Seed {
    Memberlist(ml::Message, Dialect),
    Serf(sf::Message, Dialect),
    SerfInUser(sf::Message),
    PushPull(MlPushPull, Dialect),
    Packet(Vec<ml::Message>, bool),
    Stream(StreamCase, bool),
    Rpc(RpcValue),
    Coordinate(sf::Coordinate),
    Tags(BTreeMap<GoString, GoString>),
    Filter(sf::Filter),
}

impl Seed {
    fn encode(&self) -> Vec<u8> {
        let fixtures = &*FIXTURES;
        match self {
            Seed::Memberlist(m, d) => m.encode(*d),
            Seed::Serf(m, d) => m.encode(*d),
            Seed::SerfInUser(m) => {
                ml::Message::User(m.encode(Dialect::GOSSIP)).encode(Dialect::GOSSIP)
            }
            Seed::PushPull(p, d) => p.encode(*d),
            Seed::Packet(msgs, crc) => {
                let parts: Vec<Vec<u8>> = msgs.iter().map(|m| m.encode(Dialect::GOSSIP)).collect();
                let payload = compound::encode(&parts);
                packet::encode(&fixtures.options[0], &payload, *crc, || [0; NONCE_LEN])
            }
            Seed::Stream(case, compressed) => {
                let opts = &fixtures.options[usize::from(!*compressed)];
                stream::encode(opts, &case.encode(Dialect::GOSSIP), true, || [0; NONCE_LEN])
            }
            Seed::Rpc(v) => rpc_encode(v, Dialect::RPC),
            Seed::Coordinate(c) => sf::encode_ack_payload(c, Dialect::GOSSIP),
            Seed::Tags(t) => sf::encode_tags(t, Dialect::GOSSIP),
            Seed::Filter(f) => f.encode(Dialect::GOSSIP),
        }
    }
}

fn seed() -> BoxedStrategy<Seed> {
    prop_oneof![
        (ml_message(), gossip_dialect()).prop_map(|(m, d)| Seed::Memberlist(m, d)),
        (serf_message(), gossip_dialect()).prop_map(|(m, d)| Seed::Serf(m, d)),
        serf_message().prop_map(Seed::SerfInUser),
        (ml_push_pull(), gossip_dialect()).prop_map(|(p, d)| Seed::PushPull(p, d)),
        (vec(ml_message(), 1..5), any::<bool>()).prop_map(|(m, c)| Seed::Packet(m, c)),
        (stream_case(), any::<bool>()).prop_map(|(s, c)| Seed::Stream(s, c)),
        rpc_value().prop_map(Seed::Rpc),
        coordinate().prop_map(Seed::Coordinate),
        string_map().prop_map(Seed::Tags),
        filter().prop_map(Seed::Filter),
    ]
    .boxed()
}

/// Bytes that change how a msgpack decoder reads what follows.
const INTERESTING: [u8; 26] = [
    0x00, 0x01, 0x7f, 0x80, 0x8f, 0x9f, 0xbf, 0xc0, 0xc2, 0xc3, 0xc4, 0xc6, 0xca, 0xcb, 0xcc, 0xcf,
    0xd0, 0xd3, 0xd9, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff,
];

#[derive(Debug, Clone)]
enum Mutation {
    Xor(usize, u8),
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..).prop_map(|(i, b)| Mutation::Xor(i, b)),
        (any::<usize>(), select(INTERESTING.to_vec())).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Remove),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(buf: &mut Vec<u8>, m: &Mutation) {
    if buf.is_empty() {
        if let Mutation::Insert(_, b) = m {
            buf.push(*b);
        }
        return;
    }
    let at = |i: usize| i % buf.len();
    match *m {
        Mutation::Xor(i, b) => {
            let i = at(i);
            buf[i] ^= b;
        }
        Mutation::Set(i, b) => {
            let i = at(i);
            buf[i] = b;
        }
        Mutation::Insert(i, b) => {
            let i = i % (buf.len() + 1);
            buf.insert(i, b);
        }
        Mutation::Remove(i) => {
            let i = at(i);
            buf.remove(i);
        }
        Mutation::Truncate(i) => buf.truncate(at(i)),
    }
}

// ---------------------------------------------------------------------------------------------
// Round trips.

proptest! {
    #![proptest_config(config(256))]

    /// Every memberlist message: round trip (omitempty normalised), canonical re-encoding,
    /// dialect markers, loose writing of the body, and strict prefixes refused (a user message
    /// is raw bytes, so its prefixes are user messages too).
    #[test]
    fn memberlist_message_round_trip(
        m in ml_message(),
        d in gossip_dialect(),
        seed in any::<u64>(),
    ) {
        let bytes = m.encode(d);
        let back = ok(ml::Message::decode(&bytes), "memberlist message", &bytes)?;
        let expected = normalized(&m);
        prop_assert_eq!(&back, &expected, "{}", hex::encode(&bytes));
        prop_assert_eq!(back.encode(d), bytes.clone());
        prop_assert_eq!(ml::MessageType::of(&bytes).ok(), Some(m.message_type()));
        match &m {
            ml::Message::User(payload) => {
                prop_assert!(ml::Message::decode(&[]).is_err());
                for k in 1..bytes.len() {
                    prop_assert_eq!(
                        ml::Message::decode(&bytes[..k]).ok(),
                        Some(ml::Message::User(payload[..k - 1].to_vec()))
                    );
                }
            }
            _ => {
                markers_match_dialect(&bytes[1..], d)?;
                prefixes_fail(&bytes, "memberlist message", ml::Message::decode)?;
            }
        }
        match &m {
            ml::Message::Ping(x) => check_loose(x, true, seed)?,
            ml::Message::IndirectPing(x) => check_loose(x, true, seed)?,
            ml::Message::Ack(x) => check_loose(x, true, seed)?,
            ml::Message::Suspect(x) => check_loose(x, true, seed)?,
            ml::Message::Alive(x) => check_loose(x, true, seed)?,
            ml::Message::Dead(x) => check_loose(x, true, seed)?,
            ml::Message::Nack(x) => check_loose(x, true, seed)?,
            ml::Message::Err(x) => check_loose(x, true, seed)?,
            ml::Message::User(_) => {}
        }
    }

    /// Push/pull: the header counts match, the body decodes back, every strict prefix is refused.
    #[test]
    fn push_pull_round_trip(p in ml_push_pull(), d in gossip_dialect(), seed in any::<u64>()) {
        let bytes = p.encode(d);
        prop_assert_eq!(bytes[0], ml::MessageType::PushPull as u8);
        let mut dec = Decoder::new(&bytes[1..]);
        let back = ok(MlPushPull::decode_body(&mut dec), "push/pull", &bytes)?;
        prop_assert_eq!(&back, &p);
        prop_assert_eq!(dec.remaining(), 0);
        prop_assert_eq!(back.encode(d), bytes.clone());
        prefixes_fail(&bytes[1..], "push/pull body", |b| {
            MlPushPull::decode_body(&mut Decoder::new(b))
        })?;
        for node in &p.nodes {
            check_field(node, d)?;
            check_loose(node, true, seed)?;
        }
    }

    /// Every serf message, both ConflictResponse forms, and relays (whose inner message is raw:
    /// prefixes that keep part of it decode to a shorter relay).
    #[test]
    fn serf_message_round_trip(m in serf_message(), d in gossip_dialect(), seed in any::<u64>()) {
        let bytes = m.encode(d);
        let back = ok(sf::Message::decode(&bytes), "serf message", &bytes)?;
        prop_assert_eq!(&back, &m, "{}", hex::encode(&bytes));
        prop_assert_eq!(back.encode(d), bytes.clone());
        prop_assert_eq!(bytes[0], m.message_type() as u8);
        match &m {
            sf::Message::Relay { header, inner } => {
                let header_end = 1 + msgpack::to_vec(header, d).len();
                markers_match_dialect(&bytes[1..header_end], d)?;
                for k in 0..bytes.len() {
                    let got = sf::Message::decode(&bytes[..k]);
                    if k <= header_end {
                        prop_assert!(got.is_err(), "relay prefix {} decoded: {:?}", k, got);
                    } else {
                        prop_assert_eq!(got.ok(), Some(sf::Message::Relay {
                            header: header.clone(),
                            inner: inner[..k - header_end].to_vec(),
                        }));
                    }
                }
                check_loose(header, true, seed)?;
            }
            _ => {
                markers_match_dialect(&bytes[1..], d)?;
                prefixes_fail(&bytes, "serf message", sf::Message::decode)?;
            }
        }
        match &m {
            sf::Message::Leave(x) => check_loose(x, true, seed)?,
            sf::Message::Join(x) => check_loose(x, true, seed)?,
            sf::Message::PushPull(x) => check_loose(x, true, seed)?,
            sf::Message::UserEvent(x) => check_loose(x, true, seed)?,
            sf::Message::Query(x) => check_loose(x, true, seed)?,
            sf::Message::QueryResponse(x) => check_loose(x, true, seed)?,
            sf::Message::ConflictResponse(x) => check_loose(x, x.is_some(), seed)?,
            sf::Message::KeyRequest(x) => check_loose(x, true, seed)?,
            sf::Message::KeyResponse(x) => check_loose(x, true, seed)?,
            sf::Message::Relay { .. } => {}
        }
    }

    /// A serf message survives being carried in a memberlist user message.
    #[test]
    fn serf_in_memberlist_user_message(m in serf_message(), d in gossip_dialect()) {
        let user = ml::Message::User(m.encode(d)).encode(d);
        match ok(ml::Message::decode(&user), "user message", &user)? {
            ml::Message::User(payload) => {
                prop_assert_eq!(ok(sf::Message::decode(&payload), "serf", &payload)?, m);
            }
            other => prop_assert!(false, "decoded as {:?}", other),
        }
    }

    #[test]
    fn filter_round_trip(f in filter(), d in gossip_dialect(), seed in any::<u64>()) {
        let bytes = f.encode(d);
        prop_assert_eq!(ok(sf::Filter::decode(&bytes), "filter", &bytes)?, f.clone());
        markers_match_dialect(&bytes[1..], d)?;
        prefixes_fail(&bytes, "filter", sf::Filter::decode)?;
        if let sf::Filter::Tag(tag) = &f {
            check_loose(tag, true, seed)?;
        }
    }

    /// Tags: round trip, strict prefixes refused, and meta without the magic byte read as the
    /// legacy role.
    #[test]
    fn tags_round_trip(tags in string_map(), d in gossip_dialect(), legacy in small_blob()) {
        let bytes = sf::encode_tags(&tags, d);
        prop_assert_eq!(bytes[0], sf::TAG_MAGIC_BYTE);
        prop_assert_eq!(ok(sf::decode_tags(&bytes), "tags", &bytes)?, tags.clone());
        markers_match_dialect(&bytes[1..], d)?;
        // The empty prefix is legacy meta (an empty role); every other strict prefix is cut.
        prefixes_fail(&bytes[1..], "tag map", msgpack::from_slice::<sf::Tags>)?;
        for k in 1..bytes.len() {
            prop_assert!(sf::decode_tags(&bytes[..k]).is_err(), "prefix {}", k);
        }
        if legacy.first() != Some(&sf::TAG_MAGIC_BYTE) {
            let got = ok(sf::decode_tags(&legacy), "legacy tags", &legacy)?;
            let role = sf::Tags::from([(GoString::from("role"), GoString(legacy.clone()))]);
            prop_assert_eq!(got, role);
        }
    }

    /// Same tags inserted in any order: byte-identical meta.
    #[test]
    fn tags_deterministic(
        pairs in btree_map(gostr(), gostr(), 0..10)
            .prop_flat_map(|m| Just(m.into_iter().collect::<Vec<_>>()).prop_shuffle()),
        d in gossip_dialect(),
    ) {
        let shuffled: sf::Tags = pairs.iter().cloned().collect();
        let mut sorted_pairs = pairs.clone();
        sorted_pairs.sort();
        let sorted: sf::Tags = sorted_pairs.into_iter().collect();
        let bytes = sf::encode_tags(&shuffled, d);
        prop_assert_eq!(&bytes, &sf::encode_tags(&sorted, d));
        prop_assert_eq!(&bytes, &sf::encode_tags(&shuffled.clone(), d));
        // Encoding twice gives the same bytes, and the map's own order is the byte order.
        let back = ok(sf::decode_tags(&bytes), "tags", &bytes)?;
        prop_assert_eq!(sf::encode_tags(&back, d), bytes);
    }

    /// The coordinate in ack payloads, bit for bit.
    #[test]
    fn ack_payload_round_trip(c in coordinate(), d in gossip_dialect(), seed in any::<u64>()) {
        let bytes = sf::encode_ack_payload(&c, d);
        prop_assert_eq!(bytes[0], sf::PING_VERSION);
        let back = ok(sf::decode_ack_payload(&bytes), "ack payload", &bytes)?;
        let back = back.ok_or_else(|| fail("no coordinate".into()))?;
        prop_assert_eq!(coordinate_bits(&back), coordinate_bits(&c));
        prop_assert_eq!(sf::encode_ack_payload(&back, d), bytes.clone());
        prop_assert_eq!(sf::decode_ack_payload(&[]), Ok(None));
        // Only ping payload version 1 exists.
        for version in [0u8, 2, 0x80, 0xff] {
            let mut other = bytes.clone();
            other[0] = version;
            prop_assert!(matches!(
                sf::decode_ack_payload(&other),
                Err(e) if matches!(e.kind, ErrorKind::UnknownType { .. })
            ), "version {} accepted", version);
        }
        prefixes_fail(&bytes[1..], "coordinate", msgpack::from_slice::<sf::Coordinate>)?;
        for k in 1..bytes.len() {
            prop_assert!(sf::decode_ack_payload(&bytes[..k]).is_err());
        }
        // Loosely written, the floats still come back bit for bit.
        let mut loose = Vec::new();
        write_loose(&c.to_value(), true, &mut Rng::new(seed), &mut loose);
        let back: sf::Coordinate =
            ok(msgpack::from_slice_exact(&loose), "loose coordinate", &loose)?;
        prop_assert_eq!(coordinate_bits(&back), coordinate_bits(&c));
    }

    /// Every RPC request, response and record struct.
    #[test]
    fn rpc_round_trip(v in rpc_value(), d in rpc_dialect(), seed in any::<u64>()) {
        check_rpc(&v, d, seed)?;
    }

    /// An RPC request as it travels: header then body in one buffer, read back in sequence.
    #[test]
    fn rpc_header_then_body(seq in u64s(), v in rpc_value(), d in rpc_dialect()) {
        let header = rpc::RequestHeader { command: GoString::from("query"), seq };
        let mut buf = Vec::new();
        let mut enc = Encoder::new(&mut buf, d);
        header.encode(&mut enc);
        let body = rpc_encode(&v, d);
        enc.raw(&body);
        let mut dec = Decoder::new(&buf);
        prop_assert_eq!(ok(rpc::RequestHeader::decode(&mut dec), "header", &buf)?, header);
        prop_assert_eq!(dec.rest(), &body[..]);
        prop_assert!(dec.value().is_ok());
        prop_assert_eq!(dec.remaining(), 0);
    }

    /// Command names map back to their commands.
    #[test]
    fn rpc_command_names(i in 0usize..rpc::Command::ALL.len()) {
        let c = rpc::Command::ALL[i];
        prop_assert_eq!(rpc::Command::from_name(c.name().as_bytes()), Some(c));
    }

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

    /// Keyring: both versions, all key sizes, with AAD; the decrypting ring may have another
    /// primary. Wrong AAD, a flipped bit after the version byte, a missing key and every strict
    /// prefix are refused.
    #[test]
    fn keyring_round_trip(
        keys in vec(aes_key(), 1..4),
        primary in any::<usize>(),
        version in encryption_version(),
        nonce in any::<[u8; NONCE_LEN]>(),
        plaintext in blob(),
        aad in small_blob(),
        flip in any::<usize>(),
        stranger in aes_key(),
    ) {
        let sender = Keyring::new(&keys[0], &keys[..]).expect("valid keys");
        let receiver = Keyring::new(&keys[primary % keys.len()], &keys[..]).expect("valid keys");
        prop_assert_eq!(sender.keys().count(), keys.len());
        let sealed = sender.encrypt(version, &nonce, &plaintext, &aad);
        prop_assert_eq!(sealed.len(), version.encrypted_len(plaintext.len()));
        prop_assert!(sealed.len() <= plaintext.len() + version.overhead());
        prop_assert_eq!(sealed[0], version as u8);
        prop_assert_eq!(&sealed[1..1 + NONCE_LEN], &nonce[..]);
        let opened = ok(receiver.decrypt(&sealed, &aad), "decrypt", &sealed)?;
        prop_assert_eq!(opened, plaintext.clone());
        let mut wrong_aad = aad.clone();
        wrong_aad.push(0);
        prop_assert!(receiver.decrypt(&sealed, &wrong_aad).is_err());
        let mut corrupted = sealed.clone();
        let bit = flip % ((corrupted.len() - 1) * 8);
        corrupted[1 + bit / 8] ^= 1 << (bit % 8);
        prop_assert!(receiver.decrypt(&corrupted, &aad).is_err());
        if !keys.contains(&stranger) {
            let other = Keyring::new(&stranger, &[] as &[&[u8]]).expect("valid key");
            prop_assert!(matches!(
                other.decrypt(&sealed, &aad),
                Err(e) if e.kind == ErrorKind::NoKeyDecrypts
            ));
        }
        prefixes_fail(&sealed, "encrypted", |b| receiver.decrypt(b, &aad))?;
    }

    /// The version byte is not authenticated (as in Go): a v1 message relabelled v0 decrypts and
    /// then goes through padding removal, which must fail cleanly or strip a valid pad.
    #[test]
    fn keyring_padding_checked(
        key in aes_key(),
        plaintext in vec(any::<u8>(), 16..64),
        nonce in any::<[u8; NONCE_LEN]>(),
    ) {
        let ring = Keyring::new(&key, &[] as &[&[u8]]).expect("valid key");
        let mut sealed = ring.encrypt(EncryptionVersion::V1, &nonce, &plaintext, b"");
        sealed[0] = EncryptionVersion::V0 as u8;
        let pad = usize::from(*plaintext.last().expect("non-empty"));
        match ring.decrypt(&sealed, b"") {
            Ok(plain) => {
                prop_assert!((1..=16).contains(&pad));
                prop_assert_eq!(&plain[..], &plaintext[..plaintext.len() - pad]);
            }
            Err(e) => prop_assert_eq!(e.kind, ErrorKind::BadPadding),
        }
    }
}

proptest! {
    #![proptest_config(config(128))]

    /// The UDP pipeline: encode with random options, decode with the peer's options (another
    /// primary key), flatten, and get the messages back in order.
    #[test]
    fn packet_round_trip(
        spec in options_spec(),
        msgs in vec(ml_message(), 1..8),
        single in any::<bool>(),
        with_crc in any::<bool>(),
        nonce in any::<[u8; NONCE_LEN]>(),
    ) {
        let (sender, receiver) = (spec.sender(), spec.receiver());
        let parts: Vec<Vec<u8>> = msgs.iter().map(|m| m.encode(spec.dialect)).collect();
        let payload = if single && parts.len() == 1 {
            parts[0].clone()
        } else {
            compound::encode(&parts)
        };
        let mut asked = false;
        let wire = packet::encode(&sender, &payload, with_crc, || {
            asked = true;
            nonce
        });
        prop_assert_eq!(asked, spec.keys.is_some(), "nonce asked for iff encrypting");
        prop_assert!(wire.len() <= payload.len() + crc::OVERHEAD * usize::from(with_crc)
            + label::overhead(&spec.label) + spec.version.overhead());
        // Compression is used only when it makes the packet shorter.
        let uncompressed = OptionsSpec { compression: false, ..spec.clone() }.sender();
        let plain_wire = packet::encode(&uncompressed, &payload, with_crc, || nonce);
        prop_assert!(wire.len() <= plain_wire.len(), "{} > {}", wire.len(), plain_wire.len());
        if !spec.compression {
            prop_assert_eq!(&wire, &plain_wire);
        }
        let inner = ok(packet::decode(&receiver, &wire), "packet", &wire)?;
        let flat = packet::flatten(&inner);
        prop_assert!(flat.errors.is_empty(), "{:?}", flat.errors);
        prop_assert_eq!(flat.truncated_parts, 0);
        let got: Vec<&[u8]> = flat.messages.iter().map(|m| &m[..]).collect();
        let want: Vec<&[u8]> = parts.iter().map(|p| &p[..]).collect();
        prop_assert_eq!(got, want);
        for (bytes, m) in flat.messages.iter().zip(&msgs) {
            prop_assert_eq!(ok(ml::Message::decode(bytes), "message", bytes)?, normalized(m));
        }
        // Truncated packets never panic; with a CRC or encryption they are refused outright.
        for k in prefix_lengths(wire.len()) {
            if let Ok(inner) = packet::decode(&receiver, &wire[..k]) {
                let unprotected = k < label::overhead(&spec.label) + crc::OVERHEAD;
                prop_assert!(
                    spec.keys.is_none() && (!with_crc || unprotected),
                    "prefix {} of {} accepted", k, hex::encode(&wire)
                );
                let _ = packet::flatten(&inner);
            }
        }
    }

    /// Stream framing, both directions: the dialer's request read by the acceptor and the
    /// acceptor's reply read by the dialer. Trailing bytes are not consumed; every strict prefix
    /// is refused.
    #[test]
    fn stream_round_trip(
        spec in options_spec(),
        case in stream_case(),
        dialer in any::<bool>(),
        nonce in any::<[u8; NONCE_LEN]>(),
        trailing in small_blob(),
    ) {
        let (sender, receiver) = (spec.sender(), spec.receiver());
        let message = case.encode(spec.dialect);
        let mut asked = false;
        let wire = stream::encode(&sender, &message, dialer, || {
            asked = true;
            nonce
        });
        prop_assert_eq!(asked, spec.keys.is_some());
        let mut buf = wire.clone();
        buf.extend_from_slice(&trailing);
        let (got, used) = ok(stream::decode(&receiver, &buf, !dialer), "stream", &buf)?;
        prop_assert_eq!(got, case.expected());
        prop_assert_eq!(used, wire.len());
        prefixes_fail(&wire, "stream", |b| stream::decode(&receiver, b, !dialer))?;
        // A labelled request is refused by an acceptor configured without the label.
        if spec.keys.is_none() && !spec.label.is_empty() && dialer {
            let unlabeled = OptionsSpec { label: Vec::new(), ..spec.clone() }.receiver();
            prop_assert!(stream::decode(&unlabeled, &wire, false).is_err());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Arbitrary input never panics.

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn arbitrary_bytes_never_panic(buf in vec(any::<u8>(), 0..2048)) {
        decode_everything(&buf);
    }

    /// Random bytes behind each message-type byte, to get past the first check of each decoder.
    #[test]
    fn arbitrary_typed_bytes_never_panic(
        ty in select(vec![0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 0xf4, 0xff]),
        body in vec(any::<u8>(), 0..512),
    ) {
        let mut buf = vec![ty];
        buf.extend_from_slice(&body);
        decode_everything(&buf);
    }

    /// Valid encodings of every kind, damaged a few times: gets deep into every decoder.
    #[test]
    fn mutated_encodings_never_panic(seed in seed(), mutations in vec(mutation(), 1..6)) {
        let mut buf = seed.encode();
        decode_everything(&buf);
        for m in &mutations {
            mutate(&mut buf, m);
            decode_everything(&buf);
        }
    }

    /// Arbitrary bytes decoded as msgpack allocate in proportion to the input only.
    #[test]
    fn arbitrary_msgpack_allocation_is_bounded(buf in vec(any::<u8>(), 0..2048)) {
        let (_, largest) = largest_allocation(|| {
            let mut dec = Decoder::new(&buf);
            while dec.remaining() > 0 && dec.value().is_ok() {}
            let _ = ml::Message::decode(&buf);
            let _ = sf::Message::decode(&buf);
            decode_all_rpc(&buf);
        });
        // Slices are pre-sized from the declared count, which may be up to one element per input
        // byte left: size_of::<rpc::Member>() (112) bytes per input byte in the worst case, plus
        // a B-tree node (about 540 bytes) for a map's first entry.
        let bound = 512 * (buf.len() + 1);
        prop_assert!(largest <= bound, "{} bytes allocated for {}", largest, buf.len());
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile lengths and nesting.

/// Runs a decode that must fail, quickly, without any large allocation.
fn refused_cheaply<T: Debug>(
    what: &str,
    input: &[u8],
    decode: impl FnOnce(&[u8]) -> DecodeResult<T>,
) {
    let start = Instant::now();
    let (result, largest) = largest_allocation(|| decode(input));
    let elapsed = start.elapsed();
    assert!(
        result.is_err(),
        "{what}: {} decoded to {result:?}",
        hex::encode(input)
    );
    assert!(
        largest < 64 << 10,
        "{what}: allocated {largest} bytes for {} input bytes",
        input.len()
    );
    assert!(elapsed < Duration::from_secs(1), "{what}: took {elapsed:?}");
}

/// Like [`refused_cheaply`], for lengths over a protocol limit: the error must say so rather than
/// `Truncated`, or a stream reader would wait for (and buffer) bytes it will never accept.
fn refused_over_limit<T: Debug>(
    what: &str,
    input: &[u8],
    decode: impl FnOnce(&[u8]) -> DecodeResult<T>,
) {
    let mut kind = None;
    refused_cheaply(what, input, |b| {
        let r = decode(b);
        kind = r.as_ref().err().map(|e| e.kind.clone());
        r
    });
    assert!(
        !matches!(kind, Some(ErrorKind::Truncated { .. })),
        "{what}: over-limit length reported as {kind:?} for {}",
        hex::encode(input)
    );
}

fn push_pull_header(nodes: i64, user_state_len: i64) -> Vec<u8> {
    let header = ml::PushPullHeader {
        join: false,
        nodes,
        user_state_len,
    };
    msgpack::to_vec(&header, Dialect::GOSSIP)
}

#[test]
fn huge_declared_lengths_are_refused() {
    let padding = [0u8; 100];
    let with_padding = |prefix: &[u8]| [prefix, &padding[..]].concat();
    for marker in [
        &[0xdb, 0xff, 0xff, 0xff, 0xff][..], // str32 / raw32
        &[0xc6, 0xff, 0xff, 0xff, 0xff],     // bin32
        &[0xdd, 0xff, 0xff, 0xff, 0xff],     // array32
        &[0xdf, 0xff, 0xff, 0xff, 0xff],     // map32
        &[0xda, 0xff, 0xff],                 // raw16
        &[0xdc, 0xff, 0xff],                 // array16
        &[0xde, 0xff, 0xff],                 // map16
        &[0xdd, 0x80, 0x00, 0x00, 0x00],     // array of 2^31
    ] {
        for input in [marker.to_vec(), with_padding(marker)] {
            refused_cheaply("value", &input, |b| Decoder::new(b).value());
            refused_cheaply("bytes", &input, |b| {
                Decoder::new(b).bytes().map(<[u8]>::len)
            });
            refused_cheaply("string", &input, msgpack::from_slice::<GoString>);
            refused_cheaply("string list", &input, msgpack::from_slice::<Vec<GoString>>);
            refused_cheaply("string map", &input, msgpack::from_slice::<sf::Tags>);
            refused_cheaply(
                "members",
                &input,
                msgpack::from_slice::<rpc::MembersResponse>,
            );
            refused_cheaply(
                "member list",
                &input,
                msgpack::from_slice::<Vec<rpc::Member>>,
            );
            refused_cheaply("stats", &input, msgpack::from_slice::<rpc::StatsResponse>);
            refused_cheaply("ping", &[&[0u8][..], &input].concat(), ml::Message::decode);
            refused_cheaply(
                "serf push/pull",
                &[&[2u8][..], &input].concat(),
                sf::Message::decode,
            );
            refused_cheaply("tags", &[&[0xffu8][..], &input].concat(), sf::decode_tags);
            refused_cheaply("filter", &[&[0u8][..], &input].concat(), sf::Filter::decode);
        }
    }

    // A string field whose length runs past the end, inside a struct.
    let mut ping = vec![0x00, 0x81, 0xa4];
    ping.extend_from_slice(b"Node");
    ping.extend_from_slice(&[0xdb, 0x7f, 0xff, 0xff, 0xff, b'x']);
    refused_cheaply("ping node", &ping, ml::Message::decode);

    // The serf push/pull event buffer declared with 2^31 slots.
    let mut serf_pp = vec![0x02, 0x81, 0xa6];
    serf_pp.extend_from_slice(b"Events");
    serf_pp.extend_from_slice(&[0xdd, 0x80, 0x00, 0x00, 0x00, 0xc0, 0xc0]);
    refused_cheaply("serf events", &serf_pp, sf::Message::decode);

    // Push/pull headers announcing more than is there (within the limits) or more than the
    // limits allow.
    let over = |n: usize| n as i64 + 1;
    for (nodes, user_state_len, over_limit) in [
        (1 << 31, 0, true),
        (i64::MAX, 0, true),
        (-1, 0, true),
        (over(push_pull::MAX_NODES), 0, true),
        (push_pull::MAX_NODES as i64, 0, false),
        (1000, 0, false),
        (0, 1 << 31, true),
        (0, i64::MIN, true),
        (0, over(push_pull::MAX_USER_STATE), true),
        (0, push_pull::MAX_USER_STATE as i64, false),
    ] {
        let header = push_pull_header(nodes, user_state_len);
        let message = [&[ml::MessageType::PushPull as u8][..], &header, &padding].concat();
        let body = |b: &[u8]| MlPushPull::decode_body(&mut Decoder::new(b));
        let streamed = |b: &[u8]| stream::decode(&WireOptions::default(), b, true);
        if over_limit {
            refused_over_limit("push/pull", &header, body);
            refused_over_limit("push/pull stream", &message, streamed);
        } else {
            refused_cheaply("push/pull", &header, body);
            refused_cheaply("push/pull stream", &message, streamed);
        }
    }

    // A stream user message announcing 2^40 bytes, one over the limit, a negative length, and
    // exactly the limit (merely incomplete).
    for (len, over_limit) in [
        (1i64 << 40, true),
        (over(stream::MAX_USER_MSG), true),
        (-5, true),
        (stream::MAX_USER_MSG as i64, false),
    ] {
        let header = msgpack::to_vec(&ml::UserMsgHeader { user_msg_len: len }, Dialect::GOSSIP);
        let message = [&[ml::MessageType::User as u8][..], &header, b"abc"].concat();
        let streamed = |b: &[u8]| stream::decode(&WireOptions::default(), b, false);
        if over_limit {
            refused_over_limit("stream user message", &message, streamed);
        } else {
            refused_cheaply("stream user message", &message, streamed);
        }
    }

    // An encrypted stream announcing 4 GiB, and one announcing just under the limit.
    let keyed = WireOptions {
        keyring: Some(Keyring::new(&[1; 16], &[] as &[&[u8]]).expect("valid key")),
        ..WireOptions::default()
    };
    for (len, over_limit) in [
        (u32::MAX, true),
        (stream::MAX_ENCRYPTED_LEN as u32 + 1, true),
        (stream::MAX_ENCRYPTED_LEN as u32, false),
    ] {
        let mut message = vec![ml::MessageType::Encrypt as u8];
        message.extend_from_slice(&len.to_be_bytes());
        message.extend_from_slice(&[1; 64]);
        let streamed = |b: &[u8]| stream::decode(&keyed, b, true);
        if over_limit {
            refused_over_limit("encrypted stream", &message, streamed);
        } else {
            refused_cheaply("encrypted stream", &message, streamed);
        }
    }

    // A compound announcing 255 parts with no lengths; a compressed message announcing a huge
    // buffer.
    refused_cheaply("compound", &[0x07, 0xff, 0x00, 0x10], |b| {
        compound::decode(b).map(|p| p.parts.len())
    });
    let mut compressed = vec![ml::MessageType::Compress as u8, 0x82, 0xa4];
    compressed.extend_from_slice(b"Algo");
    compressed.push(0x00);
    compressed.extend_from_slice(&[0xa3, b'B', b'u', b'f', 0xdb, 0xff, 0xff, 0xff, 0xff, 0x00]);
    refused_cheaply("compress", &compressed, |b| compress::unwrap(b, 1 << 20));
    refused_cheaply("compress packet", &compressed, |b| {
        packet::decode(&WireOptions::default(), b).and_then(|inner| {
            let flat = packet::flatten(&inner);
            flat.errors.into_iter().next().map_or(Ok(()), Err)
        })
    });
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    for depth in [msgpack::MAX_DEPTH + 1, 1_000, 200_000] {
        let arrays = vec![0x91u8; depth];
        refused_cheaply("arrays", &arrays, |b| Decoder::new(b).value());
        let maps: Vec<u8> = std::iter::repeat_n([0x81u8, 0xc0], depth)
            .flatten()
            .collect();
        refused_cheaply("maps", &maps, |b| Decoder::new(b).value());
        // Skipped as the value of an unknown key of a struct.
        let mut ping = vec![0x00, 0x81, 0xa1, b'X'];
        ping.extend_from_slice(&arrays);
        refused_cheaply("unknown key", &ping, ml::Message::decode);
        refused_cheaply("rpc", &ping[1..], msgpack::from_slice::<rpc::QueryRequest>);
    }
    // Compounds nested in compounds and compressed messages: refused past the nesting limit.
    let mut nested = ml::Message::Nack(ml::Nack { seq_no: 1 }).encode(Dialect::GOSSIP);
    for i in 0..12 {
        nested = if i % 2 == 0 {
            compound::encode(&[nested])
        } else {
            compress::wrap(&nested, Dialect::GOSSIP)
        };
    }
    let flat = packet::flatten(&nested);
    assert!(flat.messages.is_empty());
    assert!(matches!(flat.errors[..], [ref e] if matches!(e.kind, ErrorKind::TooDeep { .. })));
}

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

/// `stream::decode` promises `ErrorKind::Truncated` ("read more and try again") for every prefix
/// of a stream, including prefixes ending inside a string, array or map body, inside a push/pull
/// node list, and an empty buffer on a labelled acceptor.
#[test]
fn stream_prefixes_report_truncated() {
    let ping = ml::Message::Ping(ml::Ping {
        node: GoString::from("node-b"),
        seq_no: 43,
        ..ml::Ping::default()
    })
    .encode(Dialect::GOSSIP);
    let labeled = WireOptions {
        label: b"lbl".to_vec(),
        ..WireOptions::default()
    };
    let mut failures = Vec::new();
    for (name, opts) in [("default", WireOptions::default()), ("labeled", labeled)] {
        let wire = stream::encode(&opts, &ping, true, || [0; NONCE_LEN]);
        for k in 0..wire.len() {
            match stream::decode(&opts, &wire[..k], false) {
                Err(e) if matches!(e.kind, ErrorKind::Truncated { .. }) => {}
                other => failures.push(format!(
                    "{name}: prefix {k} of {}: {other:?}",
                    hex::encode(&wire)
                )),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
