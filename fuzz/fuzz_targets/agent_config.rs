//! The agent's JSON config files (crates/agent/src/config.rs): decoding one file, then laying it over
//! the defaults as `-config-file` does (durations, limits, lists) and finishing the config.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serf_agent::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(layer) = serf_agent::fuzzing::agent_config(data) else {
        return;
    };
    let mut config = Config::default();
    if config.merge(&layer).is_ok() {
        // A second layer over the first, as with several config files.
        let _ = config.merge(&layer);
        let _ = config.finish();
    }
});
