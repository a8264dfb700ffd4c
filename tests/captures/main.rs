//! Decodes the reference captures recorded from real Go agents (serf 0.9.4, memberlist 0.2.2)
//! under `tests/data/captures/` and compares what the codec finds with the `.md` file that an
//! independent decoder wrote next to each capture.
//!
//! Expected numbers (message counts, command counts, stream contents) are read from the `.md` files
//! at run time, so the tests follow the data rather than copies of it. A missing capture or `.md`
//! fails the trial: these files are the only evidence of wire compatibility with real agents.
//!
//! One module per concern: [`support`] (loading, keys, comparison), [`markdown`] (reading the
//! `.md` files), then the checks: [`udp`] and [`tcp`] for both gossip captures, [`encryption`]
//! specifics, the RPC capture ([`rpc_decode`] decodes it, [`rpc`] checks it) and [`serf_0_11`]
//! for what serf v0.11.0 and libserf write.

#[path = "../common/pcap.rs"]
mod pcap;

mod encryption;
mod markdown;
mod rpc;
mod rpc_decode;
mod serf_0_11;
mod support;
mod tcp;
mod udp;

use libtest_mimic::{Arguments, Trial};

use encryption::{key_install_payload, keyring_selection};
use rpc::{rpc_documented_facts, rpc_requests, rpc_responses};
use serf_0_11::{serf_0_11_streams, serf_0_11_udp};
use support::{Gossip, TestResult};
use tcp::tcp_streams;
use udp::{udp_message_counts, udp_tags_and_filters};

fn main() {
    let mut trials = Vec::new();
    for gossip in [Gossip::Plaintext, Gossip::Encrypted] {
        let trial = |test: &str, run: fn(Gossip) -> TestResult| {
            Trial::test(format!("{}::{test}", gossip.name()), move || run(gossip))
        };
        trials.extend([
            trial("udp_message_counts", udp_message_counts),
            trial("udp_tags_and_filters", udp_tags_and_filters),
            trial("tcp_streams", tcp_streams),
        ]);
    }
    trials.extend([
        Trial::test("encrypted::key_install_payload", key_install_payload),
        Trial::test("encrypted::keyring_selection", keyring_selection),
        Trial::test("rpc::requests", rpc_requests),
        Trial::test("rpc::responses", rpc_responses),
        Trial::test("rpc::documented_facts", rpc_documented_facts),
        Trial::test("serf-0.11::udp_re_encodes_with_v2_integers", serf_0_11_udp),
        Trial::test("serf-0.11::push_pull_streams_re_encode", serf_0_11_streams),
    ]);
    libtest_mimic::run(&Arguments::from_args(), trials).exit();
}
