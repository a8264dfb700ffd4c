//! `serf rtt`: the round-trip time between two nodes estimated from their coordinates.

/// Shown by `serf rtt -h`, and after usage errors.
pub const HELP: &str = concat!(
    r#"Usage: serf rtt [options] node1 [node2]

Estimates the round-trip time between two members from the network
coordinates the cluster keeps. With a single name, the other end is the
agent's own node. Give member names, as "serf members" lists them, not
addresses.
"#,
    rpc_options!()
);

pub const SYNOPSIS: &str = "Estimate the round-trip time between members";

use super::gofmt::quote;
use super::rpc::RpcFlags;
use crate::client::RpcClient;
use crate::flags::FlagSet;
use serf::api::distance;
use serf::api::wire::serf::Coordinate;

pub fn run(args: &[String]) -> i32 {
    let mut fs = FlagSet::new(HELP);
    let rpc = RpcFlags::new(&mut fs);
    let Some(mut nodes) = fs.parse(args) else {
        return 1;
    };
    // Go connects before looking at the arguments.
    let Some(mut client) = rpc.connect() else {
        return 1;
    };
    if nodes.len() == 1 {
        match client.stats() {
            Ok(stats) => {
                let name = stats
                    .get(&"agent".into())
                    .and_then(|agent| agent.get(&"name".into()))
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default();
                nodes.push(name);
            }
            Err(e) => {
                println!("Error querying agent: {e}");
                return 1;
            }
        }
    } else if nodes.len() != 2 {
        println!("One or two node names must be specified\n\n{HELP}");
        return 1;
    }
    let Some(a) = coordinate(&mut client, &nodes[0]) else {
        return 1;
    };
    let Some(b) = coordinate(&mut client, &nodes[1]) else {
        return 1;
    };
    let Some(rtt) = distance(&a, &b) else {
        println!("Error getting coordinates: coordinates have different dimensions");
        return 1;
    };
    // Go's Duration.Seconds(), then milliseconds.
    let seconds = rtt.as_secs() as f64 + f64::from(rtt.subsec_nanos()) / 1e9;
    println!(
        "Estimated {} <-> {} rtt: {:.3} ms",
        nodes[0],
        nodes[1],
        seconds * 1000.0
    );
    0
}

fn coordinate(client: &mut RpcClient, node: &str) -> Option<Coordinate> {
    match client.get_coordinate(node) {
        Ok(Some(c)) => Some(c),
        Ok(None) => {
            println!(
                "Could not find a coordinate for node {}",
                quote(node.as_bytes())
            );
            None
        }
        Err(e) => {
            println!("Error getting coordinates: {e}");
            None
        }
    }
}
