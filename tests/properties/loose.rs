//! A loose msgpack writer: writes a `Value` tree choosing at random among the encodings the Go
//! decoders (and ours) accept, to check decoding does not depend on how the peer wrote its values.

use std::fmt::Debug;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use serf_proto::wire::msgpack::{self, Field, Value};

use crate::support::ok;

pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
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
pub(crate) fn write_loose(v: &Value, top_struct: bool, rng: &mut Rng, out: &mut Vec<u8>) {
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
pub(crate) fn check_loose<T: Field + PartialEq + Debug>(
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
