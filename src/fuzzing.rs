//! Not an API: the decoders the `cargo fuzz` harness (`fuzz/`) drives that are otherwise reached
//! only through a file on disk. Everything else it fuzzes is public already.

use std::path::Path;

use crate::agent::config::{self, ConfigError, Layer};
use crate::serf::snapshot::{self, Replay};

/// Replays snapshot file contents as [`crate::runtime::snapshot::replay`] does.
pub fn snapshot_replay(bytes: &[u8], rejoin_after_leave: bool) -> Replay {
    snapshot::parse_bytes(bytes, rejoin_after_leave)
}

/// Decodes agent config file contents as [`config::read_layer`] does.
pub fn agent_config(bytes: &[u8]) -> Result<Layer, ConfigError> {
    config::decode_layer(Path::new("fuzz.json"), bytes)
}
