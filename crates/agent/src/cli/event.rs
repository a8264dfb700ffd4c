//! `serf event`: fires a user event through the cluster.

/// Shown by `serf event -h`, and after usage errors.
pub const HELP: &str = concat!(
    r#"Usage: serf event [options] name payload

Has the agent broadcast a user event to the whole cluster; each node runs
the event handlers that match it. The payload is optional.

Options:
  -coalesce=true|false
      Allow nodes to collapse a quick burst of events with this name into
      the last one of the burst (default: true).
"#,
    rpc_options!()
);

pub const SYNOPSIS: &str = "Broadcast a user event to the cluster";

use super::rpc::RpcFlags;
use crate::flags::FlagSet;

pub fn run(args: &[String]) -> i32 {
    let mut fs = FlagSet::new(HELP);
    let coalesce = fs.bool("coalesce", true);
    let rpc = RpcFlags::new(&mut fs);
    let Some(rest) = fs.parse(args) else {
        return 1;
    };
    let Some((name, payload)) = super::name_and_payload(&rest, "An event", HELP) else {
        return 1;
    };
    let Some(mut client) = rpc.connect() else {
        return 1;
    };
    if let Err(e) = client.user_event(name, payload, coalesce.get()) {
        println!("Error sending event: {e}");
        return 1;
    }
    println!(
        "Event '{name}' dispatched! Coalescing enabled: {}",
        coalesce.get()
    );
    0
}
