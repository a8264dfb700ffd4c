//! `serf tags`: sets and deletes tags of the running agent.

/// Shown by `serf tags -h`, and after usage errors.
pub const HELP: &str = concat!(
    r#"Usage: serf tags [options] ...

Changes the tags of the agent's own node; the rest of the cluster learns of
the change through gossip. Give at least one -set or -delete.

Options:
  -set <key>=<value>
      Add the tag, or change its value. Repeat for more tags.
  -delete <key>
      Remove the tag if there is one. Repeat for more tags.
"#,
    rpc_options!()
);

pub const SYNOPSIS: &str = "Set or delete the agent's tags";

use super::or_report;
use super::rpc::RpcFlags;
use crate::config::parse_tags;
use crate::flags::FlagSet;

pub fn run(args: &[String]) -> i32 {
    let mut fs = FlagSet::new(HELP);
    let set = fs.list("set");
    let delete = fs.list("delete");
    let rpc = RpcFlags::new(&mut fs);
    if fs.parse(args).is_none() {
        return 1;
    }
    let (set, delete) = (set.get(), delete.get());
    if set.is_empty() && delete.is_empty() {
        println!("{HELP}");
        return 1;
    }
    let Some(mut client) = rpc.connect() else {
        return 1;
    };
    // Checked after connecting, in Go's order.
    let Some(tags) = or_report(parse_tags(&set), "Error") else {
        return 1;
    };
    match client.update_tags(tags, &delete) {
        Ok(()) => {
            println!("Successfully updated agent tags");
            0
        }
        Err(e) => {
            println!("Error setting tags: {e}");
            1
        }
    }
}
