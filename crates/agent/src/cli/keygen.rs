//! `serf keygen`: a fresh random key for `-encrypt`, base64 encoded.

/// Shown by `serf keygen -h`, and after usage errors.
pub const HELP: &str = r#"Usage: serf keygen

Prints a new random 32-byte key, base64 encoded, in the form the agent's
-encrypt option and "serf keys -install" take."#;

pub const SYNOPSIS: &str = "Print a new random encryption key";

use base64::Engine;

/// Arguments are ignored, as in HashiCorp's command.
pub fn run(_args: &[String]) -> i32 {
    let mut key = [0u8; 32];
    if let Err(e) = getrandom::fill(&mut key) {
        println!("Error reading random data: {e}");
        return 1;
    }
    println!("{}", base64::engine::general_purpose::STANDARD.encode(key));
    0
}
