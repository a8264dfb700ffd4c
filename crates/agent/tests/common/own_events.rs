//! How long an agent's own user event takes to reach an RPC `stream` of the same agent: one
//! agent on loopback, 100 events sent one at a time through one RPC connection and read on a
//! second one subscribed to `user` events. Only `make bench` reports it (no timing is
//! asserted); any `serf` binary, ours or HashiCorp's.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::reference::{free_port, Agent};
use serf_agent::client::{Record, RpcClient};

pub const EVENTS: usize = 100;

/// Latency percentiles of the events that arrived, and how many did.
pub struct Latency {
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub delivered: usize,
}

pub fn measure(bin: &Path, name: &str) -> Latency {
    let gossip = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let agent = Agent::start_binary(bin, name, gossip, &[]);
    let rpc = agent.rpc.to_string();
    let mut sender = RpcClient::connect(&rpc, "").expect("connect the sender");
    let mut reader = RpcClient::connect(&rpc, "").expect("connect the reader");
    reader.stream("user").expect("open a user-event stream");
    let mut took = Vec::with_capacity(EVENTS);
    for i in 0..EVENTS {
        let sent = Instant::now();
        sender
            .user_event("own", Some(i.to_string().as_bytes()), false)
            .expect("send");
        // One event in flight at a time: the next record on the stream is this one.
        while sent.elapsed() < Duration::from_secs(2) {
            if let Ok(Some((_, Record::Event(_)))) = reader.next_record(Duration::from_millis(500))
            {
                took.push(sent.elapsed());
                break;
            }
        }
    }
    took.sort();
    let at = |q: f64| {
        took.get(((took.len() as f64 * q).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or_default()
    };
    Latency {
        p50: at(0.50),
        p99: at(0.99),
        max: took.last().copied().unwrap_or_default(),
        delivered: took.len(),
    }
}
