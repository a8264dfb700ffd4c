//! Configuration and the checks shared by the round-trip properties: proptest settings, failing a
//! case with its input, strict prefixes refused, the dialect's markers, and the full contract for
//! one msgpack value; and the `strategy!` macro that builds a struct's strategy from its fields.

use std::fmt::Debug;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use serf_proto::wire::msgpack::{self, Decoder, Dialect, Field, Flavor, IntFormat, Value};

/// `cases` per property, unless `PROPTEST_CASES` asks for more (soak runs).
pub(crate) fn config(cases: u32) -> ProptestConfig {
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

pub(crate) fn fail(msg: String) -> TestCaseError {
    TestCaseError::fail(msg)
}

/// Unwraps a decode result, failing the case with the error and the input in hex.
pub(crate) fn ok<T, E: std::fmt::Display>(
    r: Result<T, E>,
    what: &str,
    input: &[u8],
) -> Result<T, TestCaseError> {
    r.map_err(|e| fail(format!("{what}: {e}; input {}", hex::encode(input))))
}

/// Strict prefix lengths to try: all of them for short inputs, else the first and last 96 and a
/// stride through the middle (decoding every prefix of a long input is quadratic).
pub(crate) fn prefix_lengths(len: usize) -> impl Iterator<Item = usize> {
    let stride = len / 96 + 1;
    (0..len).filter(move |&k| len <= 384 || k < 96 || k + 96 >= len || k % stride == 0)
}

/// Every strict prefix of `bytes` must fail to decode.
pub(crate) fn prefixes_fail<T: Debug, E>(
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
pub(crate) fn markers_match_dialect(body: &[u8], d: Dialect) -> Result<(), TestCaseError> {
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
pub(crate) fn check_field<T: Field + PartialEq + Debug>(
    v: &T,
    d: Dialect,
) -> Result<(), TestCaseError> {
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

/// Builds a strategy for a struct from one strategy per field.
macro_rules! strategy {
    ($name:ident -> $($ty:ident)::+ { $($field:ident: $s:expr),* $(,)? }) => {
        pub(crate) fn $name() -> BoxedStrategy<$($ty)::+> {
            ($($s,)*).prop_map(|($($field,)*)| $($ty)::+ { $($field),* }).boxed()
        }
    };
}

pub(crate) use strategy;
