//! `serf join`: asks the agent to join the cluster through the given addresses.

/// Shown by `serf join -h`, and after usage errors.
pub const HELP: &str = concat!(
    r#"Usage: serf join [options] address ...

Has the agent join a cluster through one or more addresses (host or
host:port) of existing members. It succeeds if any of them answers.

Options:
  -replay
      Also hand user events sent before the join to this agent's event
      handlers (by default they are skipped).
"#,
    rpc_options!()
);

pub const SYNOPSIS: &str = "Ask the agent to join a cluster";

use super::rpc::RpcFlags;
use crate::flags::FlagSet;

pub fn run(args: &[String]) -> i32 {
    let mut fs = FlagSet::new(HELP);
    let replay = fs.bool("replay", false);
    let rpc = RpcFlags::new(&mut fs);
    let Some(addrs) = fs.parse(args) else {
        return 1;
    };
    if addrs.is_empty() {
        println!("At least one address to join must be specified.\n\n{HELP}");
        return 1;
    }
    let Some(mut client) = rpc.connect() else {
        return 1;
    };
    match client.join(&addrs, replay.get()) {
        Ok(n) => {
            println!("Successfully joined cluster by contacting {n} nodes.");
            0
        }
        Err(e) => {
            println!("Error joining the cluster: {e}");
            1
        }
    }
}
