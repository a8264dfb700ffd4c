//! The snapshot file parser (crates/proto/src/serf/snapshot.rs, as src/runtime/snapshot.rs replays a file).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serf_proto::serf::snapshot::Record;

fuzz_target!(|data: &[u8]| {
    for rejoin_after_leave in [false, true] {
        let replay = serf_proto::serf::snapshot::parse_bytes(data, rejoin_after_leave);
        // What replay keeps must survive being written out and read back (compaction does this).
        for (name, addr) in &replay.alive {
            let record = Record::Alive {
                name: name.clone(),
                addr: *addr,
            };
            let line = record.to_line();
            if !name.contains('\n') {
                assert!(Record::from_line(&line).is_some(), "{line:?}");
            }
        }
    }
});
