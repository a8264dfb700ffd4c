//! `serf version` (also `serf -v`, `serf --version`): this build's version and the gossip
//! protocol range it speaks.

use serf::api::{PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN};

/// This implementation's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Empty, as in HashiCorp's command (so `serf version -h` prints a blank line).
pub const HELP: &str = "";

pub const SYNOPSIS: &str = "Show version information";

/// Arguments are ignored.
pub fn run(_args: &[String]) -> i32 {
    println!("{VERSION}");
    println!(
        "Agent Protocol: {PROTOCOL_VERSION_MAX} (Understands back to: {PROTOCOL_VERSION_MIN})"
    );
    0
}
