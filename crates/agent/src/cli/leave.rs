//! `serf leave`: graceful leave, after which the agent shuts down.

/// Shown by `serf leave -h`, and after usage errors.
pub const HELP: &str = concat!(
    r#"Usage: serf leave

Has the agent announce to the cluster that it is leaving, then shut down.
"#,
    rpc_options!()
);

pub const SYNOPSIS: &str = "Leave the cluster and stop the agent";

use super::rpc::RpcFlags;
use crate::flags::FlagSet;

pub fn run(args: &[String]) -> i32 {
    let mut fs = FlagSet::new(HELP);
    let rpc = RpcFlags::new(&mut fs);
    if fs.parse(args).is_none() {
        return 1;
    }
    let Some(mut client) = rpc.connect() else {
        return 1;
    };
    match client.leave() {
        Ok(()) => {
            println!("Graceful leave complete");
            0
        }
        Err(e) => {
            println!("Error leaving: {e}");
            1
        }
    }
}
