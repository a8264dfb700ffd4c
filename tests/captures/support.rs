//! What every check shares: loading a capture with its `.md`, the two gossip captures and their
//! keys, and the small helpers that turn decode errors and mismatches into failed trials.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::PathBuf;

use libtest_mimic::Failed;
use serf_proto::wire::memberlist::keyring::Keyring;
use serf_proto::wire::memberlist::WireOptions;
use serf_proto::wire::msgpack::Dialect;
use serf_proto::wire::DecodeResult;

use crate::pcap;

const CAPTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/captures/");
/// The gossip key every packet of encrypted.pcap is sealed with (encrypted.md, "Encryption").
pub(crate) const PRIMARY_KEY_HEX: &str = "5d7a3b9c1e0f2a4b6c8d9e0f1a2b3c4d";
/// The key installed and removed again during the encrypted run; it never sealed anything, so it
/// doubles as the "wrong key" for the keyring tests.
pub(crate) const INSTALLED_KEY_HEX: &str = "a1a2a3a4a5a6a7a8a9aaabacadaeafb0";

pub(crate) type TestResult = Result<(), Failed>;
/// Message name (in the `.md` tables' vocabulary) → count.
pub(crate) type Counts = BTreeMap<String, usize>;

/// Fails the trial with a formatted message unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+).into());
        }
    };
}

pub(crate) use ensure;

/// Reads `<name>.pcap` and `<name>.md`; either one missing is a failure, never a skip.
pub(crate) fn load(name: &str) -> Result<(pcap::Capture, String), Failed> {
    let path = |ext: &str| PathBuf::from(format!("{CAPTURES}{name}.{ext}"));
    let (pcap_path, md_path) = (path("pcap"), path("md"));
    ensure!(
        pcap_path.is_file(),
        "capture {} is missing",
        pcap_path.display()
    );
    let md = std::fs::read_to_string(&md_path)
        .map_err(|e| format!("{} is missing or unreadable: {e}", md_path.display()))?;
    Ok((pcap::read(&pcap_path), md))
}

/// The two gossip captures: the same scenario, without and with encryption.
#[derive(Clone, Copy)]
pub(crate) enum Gossip {
    Plaintext,
    Encrypted,
}

impl Gossip {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Gossip::Plaintext => "plaintext",
            Gossip::Encrypted => "encrypted",
        }
    }

    pub(crate) fn options(self) -> WireOptions {
        WireOptions {
            keyring: match self {
                Gossip::Plaintext => None,
                Gossip::Encrypted => Some(keyring(&[PRIMARY_KEY_HEX])),
            },
            // serf 0.9.4 recorded them: go-msgpack 0.5 integers.
            dialect: Dialect::GOSSIP_LEGACY,
            ..Default::default()
        }
    }
}

/// A keyring of hex keys, the first one primary.
pub(crate) fn keyring(hex_keys: &[&str]) -> Keyring {
    let keys: Vec<Vec<u8>> = hex_keys.iter().map(|k| hex::decode(k).unwrap()).collect();
    Keyring::new(&keys[0], &keys[1..]).unwrap()
}

/// A decode error with what was being decoded and the input, so a codec bug can be reproduced.
pub(crate) fn ctx<T>(result: DecodeResult<T>, what: &str, input: &[u8]) -> Result<T, String> {
    result.map_err(|e| format!("{what}: {e}; input {}", hex::encode(input)))
}

/// `IndirectPing` → `indirectPing`: the Go constant names the `.md` files use, from our enums.
pub(crate) fn camel(name: impl Debug) -> String {
    let name = format!("{name:?}");
    let mut chars = name.chars();
    chars
        .next()
        .map_or(String::new(), |c| c.to_lowercase().chain(chars).collect())
}

pub(crate) fn same<T: PartialEq + Debug>(what: &str, got: T, want: T) -> TestResult {
    ensure!(
        got == want,
        "{what}:\n  decoded:  {got:?}\n  expected: {want:?}"
    );
    Ok(())
}

pub(crate) fn join(items: &[impl ToString], sep: &str) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(sep)
}

/// Standard base64, to compare raw keys with the base64 keys serf reports.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            let c = if i <= chunk.len() {
                ALPHABET[(n >> (18 - 6 * i)) as usize & 63]
            } else {
                b'='
            };
            out.push(c as char);
        }
    }
    out
}
