//! The UDP packet path of a serf core without encryption: label check, CRC, compound and
//! compressed messages, then every memberlist and serf message handler.
#![no_main]

mod common;

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use serf_proto::memberlist::machine::Machine;

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let mut serf = common::node(common::plain(), now);
    serf.handle_packet(now, common::peer(), data);
    common::settle(&mut serf, now);
});
