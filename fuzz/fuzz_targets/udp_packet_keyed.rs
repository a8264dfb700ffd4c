//! The UDP packet path of serf cores with a keyring. Each input goes in twice:
//! - as received, to a node whose keyring holds the capture and vector keys (the encrypted
//!   captures and vectors decrypt, mutations of them test decryption itself);
//! - sealed by the wire encoder (compression when shorter, CRC for odd lengths, encryption with
//!   the label as AAD, label header) to a labelled node, so the fuzzer's bytes reach every layer
//!   behind decryption; and once more as received by that labelled node (label parsing).
#![no_main]

mod common;

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use serf_proto::memberlist::machine::Machine;
use serf_proto::wire::memberlist::packet;

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let mut serf = common::node(common::keyed(b""), now);
    serf.handle_packet(now, common::peer(), data);
    common::settle(&mut serf, now);

    let labelled = common::keyed(common::LABEL);
    let sealed = packet::encode(&labelled, data, data.len() % 2 == 1, || common::NONCE);
    let mut serf = common::node(labelled, now);
    serf.handle_packet(now, common::peer(), &sealed);
    serf.handle_packet(now, common::peer(), data);
    common::settle(&mut serf, now);
});
