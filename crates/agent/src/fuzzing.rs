//! Not an API: the agent's config decoder as the `cargo fuzz` harness (`fuzz/`) drives it; that
//! decoder is otherwise reached only through a file on disk.

use std::path::Path;

use crate::config::{self, ConfigError, Layer};

/// Decodes agent config file contents as [`config::read_layer`] does.
pub fn agent_config(bytes: &[u8]) -> Result<Layer, ConfigError> {
    config::decode_layer(Path::new("fuzz.json"), bytes)
}
