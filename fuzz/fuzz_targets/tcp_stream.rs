//! The TCP stream path: a request on a connection a node accepted (push/pull, ping, reliable
//! user message) and the reply to a push/pull the node dialled (a join), without and with
//! encryption. Keyed nodes get the input as read (the encrypted captures decrypt) and sealed by
//! the stream encoder (compression, encryption with the label in the AAD, label header), so the
//! fuzzer's bytes also reach what lies behind decryption.
#![no_main]

mod common;

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use serf_proto::memberlist::machine::Machine;
use serf_proto::serf::Serf;
use serf_proto::wire::memberlist::{stream, WireOptions};

/// `data` as the request on an accepted connection.
fn accept(wire: WireOptions, now: Instant, data: &[u8]) {
    let mut serf = common::node(wire, now);
    serf.handle_stream_request(now, data);
    common::settle(&mut serf, now);
}

/// `data` as the reply to the push/pull of a join.
fn join_reply(wire: WireOptions, now: Instant, data: &[u8]) {
    let mut serf: Serf = common::node(wire, now);
    serf.join(now, &[common::peer()], false).expect("alive");
    let id = serf.poll_stream().expect("a push/pull stream").id;
    serf.handle_stream_reply(now, id, data, true);
    common::settle(&mut serf, now);
}

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    accept(common::plain(), now, data);
    join_reply(common::plain(), now, data);
    accept(common::keyed(b""), now, data);
    join_reply(common::keyed(b""), now, data);

    let labelled = common::keyed(common::LABEL);
    let request = stream::encode(&labelled, data, true, || common::NONCE);
    accept(common::keyed(common::LABEL), now, &request);
    let reply = stream::encode(&labelled, data, false, || common::NONCE);
    join_reply(labelled, now, &reply);
});
