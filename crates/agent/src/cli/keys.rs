//! `serf keys`: installs, promotes, removes and lists the cluster's encryption keys.

/// Shown by `serf keys -h`, and after usage errors.
pub const HELP: &str = concat!(
    r#"Usage: serf keys [options]...

Manages the gossip encryption keyring of every member: a change is sent to
the whole cluster and applied on each node, and repeating it does no harm.
Several keys may be installed at once, which is how keys are rotated: the
primary key encrypts outgoing messages, every installed key is tried on
incoming ones. Extra keys cost some speed, so keep them only while
rotating. Pass exactly one of the options below. The exit status is 0 when
every node answers without error, 1 otherwise.

Options:
  -install=<key>
      Add a key to every keyring. It only decrypts until made primary.
  -use=<key>
      Make a key the primary one. Install it on every node first, or the
      nodes can no longer understand one another.
  -remove=<key>
      Remove a key from every keyring. The primary key cannot be removed.
  -list
      Ask every node for its keys; print each key with the number of
      members that hold it.
"#,
    rpc_options!()
);

pub const SYNOPSIS: &str = "Manage the cluster's encryption keys";

use std::collections::BTreeMap;

use super::columnize::columnize;
use super::rpc::RpcFlags;
use crate::client::{KeyFailure, RpcClient};
use crate::flags::FlagSet;
use serf::api::wire::msgpack::GoString;
use serf::api::wire::rpc::KeyResponse;

/// The texts of one key-changing operation.
struct Operation {
    start: &'static str,
    failed: &'static str,
    done: &'static str,
    call: fn(&mut RpcClient, &str) -> Result<KeyResponse, KeyFailure>,
}

const INSTALL: Operation = Operation {
    start: "Installing key on all members...",
    failed: "Error installing key",
    done: "Successfully installed key!",
    call: RpcClient::install_key,
};

const USE: Operation = Operation {
    start: "Changing primary key on all members...",
    failed: "Error changing primary key",
    done: "Successfully changed primary key!",
    call: RpcClient::use_key,
};

const REMOVE: Operation = Operation {
    start: "Removing key on all members...",
    failed: "Error removing key",
    done: "Successfully removed key!",
    call: RpcClient::remove_key,
};

/// Progress lines carry the `==> ` prefix of Go's `PrefixedUi` info level.
fn info(message: &str) {
    println!("==> {message}");
}

pub fn run(args: &[String]) -> i32 {
    let mut fs = FlagSet::new(HELP);
    let install = fs.string("install", "");
    let use_key = fs.string("use", "");
    let remove = fs.string("remove", "");
    let list = fs.bool("list", false);
    let rpc = RpcFlags::new(&mut fs);
    if fs.parse(args).is_none() {
        return 1;
    }
    let list = list.get();
    let chosen: Vec<(Operation, String)> = [
        (INSTALL, install.get()),
        (USE, use_key.get()),
        (REMOVE, remove.get()),
    ]
    .into_iter()
    .filter(|(_, key)| !key.is_empty())
    .collect();
    if chosen.len() + usize::from(list) > 1 {
        println!("Only one of -install, -use, -remove, or -list allowed");
        return 1;
    }
    if chosen.is_empty() && !list {
        println!("{HELP}");
        return 1;
    }
    let Some(mut client) = rpc.connect() else {
        return 1;
    };
    if list {
        return list_keys(&mut client);
    }
    let (op, key) = &chosen[0];
    info(op.start);
    match (op.call)(&mut client, key) {
        Ok(_) => {
            info(op.done);
            0
        }
        Err(failure) => {
            report_failure(&failure.messages);
            println!("{}: {}", op.failed, failure.error);
            1
        }
    }
}

fn list_keys(client: &mut RpcClient) -> i32 {
    info("Asking all members for installed keys...");
    match client.list_keys() {
        Ok(reply) => {
            info("Keys gathered, listing cluster keys...");
            println!();
            let lines: Vec<String> = reply
                .keys
                .iter()
                .flatten()
                .map(|(key, count)| format!("{key} | [{count}/{}]", reply.num_nodes))
                .collect();
            println!("{}", columnize(&lines));
            0
        }
        Err(failure) => {
            report_failure(&failure.messages);
            println!("Failed to gather member keys: {}", failure.error);
            1
        }
    }
}

/// The nodes that reported an error, then a blank line (Go's layout).
fn report_failure(messages: &BTreeMap<GoString, GoString>) {
    if !messages.is_empty() {
        let lines: Vec<String> = messages
            .iter()
            .map(|(node, message)| format!("failed: | {node} | {message}"))
            .collect();
        println!("{}", columnize(&lines));
    }
    println!();
}
