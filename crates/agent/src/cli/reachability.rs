//! `serf reachability`: pings every member with the internal `_serf_ping` query and reports
//! which live members did not answer (or which answers came from non-live ones).

/// Shown by `serf reachability -h`, and after usage errors.
pub const HELP: &str = concat!(
    r#"Usage: serf reachability [options]

Pings every member with an internal query and checks that each live member
acknowledges it. The exit status is 1 if a live member stays silent, if a
member that is not live answers, or if a name answers twice.

Options:
  -verbose
      Print every acknowledgement and the timings.
"#,
    rpc_options!()
);

pub const SYNOPSIS: &str = "Check that every live member can be reached";

use std::collections::BTreeSet;
use std::time::Instant;

use super::interrupt::{Interrupt, POLL};
use super::or_report;
use super::rpc::RpcFlags;
use crate::client::Record;
use crate::flags::FlagSet;
use serf::api::wire::rpc::QueryRequest;
use serf::api::PING_QUERY;

/// Advice printed after the result lines when the test fails.
const TOO_MANY_ACKS: &str =
    "Nodes that this agent does not count as live answered: healthy nodes may \
                             be marked failed because of a configuration or network problem.";
const TOO_FEW_ACKS: &str =
    "Live nodes stayed silent: gossip messages may be getting lost because of \
                            a configuration or network problem.";
const DUPLICATE_RESPONSES: &str =
    "A node answered more than once, which points to a configuration error: node names must be \
     unique.";
const TROUBLESHOOTING: &str = "
Things to check:
- every node can reach every other node's bind address and port, over UDP and TCP
  (firewalls, iptables and the like must let Serf's traffic through)
- an advertise address, where one is set, leads to that node's bind address
- no node sits behind NAT
- the network equipment in between works";

pub fn run(args: &[String]) -> i32 {
    let interrupt = Interrupt::catch();
    let mut fs = FlagSet::new(HELP);
    let verbose = fs.bool("verbose", false);
    let rpc = RpcFlags::new(&mut fs);
    if fs.parse(args).is_none() {
        return 1;
    }
    let verbose = verbose.get();
    let Some(mut client) = rpc.connect() else {
        return 1;
    };
    let Some(members) = or_report(client.members(), "Error getting members") else {
        return 1;
    };
    let live: BTreeSet<String> = members
        .iter()
        .filter(|m| m.status.as_bytes() == b"alive")
        .map(|m| m.name.to_string_lossy())
        .collect();
    println!(
        "Total members: {}, live members: {}",
        members.len(),
        live.len()
    );

    let ping = QueryRequest {
        name: PING_QUERY.into(),
        request_ack: true,
        ..QueryRequest::default()
    };
    if let Err(e) = client.query(&ping) {
        println!("Error sending query: {e}");
        return 1;
    }
    println!("Starting reachability test...");
    let start = Instant::now();
    let mut last = start;
    let mut duplicates = false;
    let mut acks = 0usize;
    let mut acked = BTreeSet::new();
    loop {
        if interrupt.fired() {
            println!("Test interrupted");
            return 1;
        }
        match client.next_record(POLL) {
            // An empty sender ends the test (see `query`).
            Ok(Some((_, Record::Ack(from)))) if from.is_empty() => break,
            Ok(Some((_, Record::Ack(from)))) => {
                let from = from.to_string_lossy();
                if verbose {
                    println!("\tAck from '{from}'");
                }
                acks += 1;
                if !acked.insert(from.clone()) {
                    duplicates = true;
                    println!("Duplicate response from '{from}'");
                }
                last = Instant::now();
            }
            Ok(Some((_, Record::QueryDone))) | Err(_) => break,
            Ok(_) => {}
        }
    }
    if verbose {
        println!(
            "Query time: {:.2} sec, time to last response: {:.2} sec",
            start.elapsed().as_secs_f64(),
            last.duration_since(start).as_secs_f64()
        );
    }
    let mut status = 0;
    if duplicates {
        println!("{DUPLICATE_RESPONSES}");
        status = 1;
    }
    if acks == live.len() {
        println!("Successfully contacted all live nodes");
        return status;
    }
    if acks > live.len() {
        println!("Received more acks than live nodes! Acks from non-live nodes:");
        for name in acked.difference(&live) {
            println!("\t{name}");
        }
        println!("{TOO_MANY_ACKS}");
    } else {
        println!("Received less acks than live nodes! Missing acks from:");
        for name in live.difference(&acked) {
            println!("\t{name}");
        }
        println!("{TOO_FEW_ACKS}");
    }
    println!("{TROUBLESHOOTING}");
    1
}
