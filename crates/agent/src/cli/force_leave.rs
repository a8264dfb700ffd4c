//! `serf force-leave`: moves a (typically failed) member to the left state, or prunes it.

/// Shown by `serf force-leave -h`, and after usage errors.
pub const HELP: &str = concat!(
    r#"Usage: serf force-leave [options] name

Moves a member to the "left" state so that the agents stop trying to reach
it. Use it for failed nodes that are gone for good: a node that is in fact
still running simply joins again.

Options:
  -prune
      Also remove the member from the member list right away, instead of
      leaving it in the list until it is reaped.
"#,
    rpc_options!()
);

pub const SYNOPSIS: &str = "Mark a member as left (or remove it)";

use super::rpc::RpcFlags;
use crate::flags::FlagSet;

/// Prints nothing on success, as HashiCorp's command does.
pub fn run(args: &[String]) -> i32 {
    let mut fs = FlagSet::new(HELP);
    let prune = fs.bool("prune", false);
    let rpc = RpcFlags::new(&mut fs);
    let Some(nodes) = fs.parse(args) else {
        return 1;
    };
    let [node] = nodes.as_slice() else {
        println!("A node name must be specified to force leave.\n\n{HELP}");
        return 1;
    };
    let Some(mut client) = rpc.connect() else {
        return 1;
    };
    match client.force_leave(node, prune.get()) {
        Ok(()) => 0,
        Err(e) => {
            println!("Error force leaving: {e}");
            1
        }
    }
}
