//! What the protocol targets share: a serf core to feed, with or without a keyring.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serf_proto::memberlist::machine::Machine;
use serf_proto::memberlist::Profile;
use serf_proto::serf::{Config, Serf};
use serf_proto::wire::memberlist::keyring::{Keyring, NONCE_LEN};
use serf_proto::wire::memberlist::WireOptions;

/// The `-encrypt` key of the reference agents in tests/data/captures/encrypted.pcap.
pub const CAPTURE_KEY: [u8; 16] = [
    93, 122, 59, 156, 30, 15, 42, 75, 108, 141, 158, 15, 26, 43, 60, 77,
];
/// The keys of the encryption vectors in tests/data/memberlist/encrypted_*.json.
pub const VECTOR_KEYS: [[u8; 16]; 2] = [
    [
        0x5d, 0x7a, 0x3b, 0x9c, 0x1e, 0x0f, 0x2a, 0x4b, 0x6c, 0x8d, 0x9e, 0x0f, 0x1a, 0x2b, 0x3c,
        0x4d,
    ],
    [
        0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
        0xb0,
    ],
];
/// A fixed nonce, so that a sealed input is the same bytes on every run.
pub const NONCE: [u8; NONCE_LEN] = [7; NONCE_LEN];
/// The label of the labelled node (memberlist 0.3+ cluster labels).
pub const LABEL: &[u8] = b"fuzz-cluster";

/// The address of a peer the cores dial for push/pull.
pub fn peer() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7957))
}

/// Plain wire options: no label, no keyring, compression on.
pub fn plain() -> WireOptions {
    WireOptions::default()
}

/// A keyring with the capture key as primary and the vector keys after it; `label` may be empty.
pub fn keyed(label: &[u8]) -> WireOptions {
    WireOptions {
        label: label.to_vec(),
        keyring: Some(Keyring::new(&CAPTURE_KEY, &VECTOR_KEYS).expect("valid keys")),
        ..WireOptions::default()
    }
}

/// A fresh serf core named like node-a of the captures (so that captured messages about node-a
/// reach the refutation paths), at `now`.
pub fn node(wire: WireOptions, now: Instant) -> Serf {
    let mut config = Config::new(
        Profile::Lan,
        "node-a",
        SocketAddr::from(([127, 0, 0, 1], 7956)),
    );
    config.memberlist.wire = wire;
    Serf::new(config, now, 1).expect("valid config")
}

/// Lets time pass once and takes everything the core produced, so that what an input changed
/// is also encoded and acted upon.
pub fn settle(serf: &mut Serf, now: Instant) {
    serf.handle_timeout(now + Duration::from_secs(5));
    while serf.poll_transmit().is_some() {}
    while serf.poll_stream().is_some() {}
    while serf.poll_event().is_some() {}
    while serf.poll_completion().is_some() {}
    while serf.poll_snapshot_record().is_some() {}
}
