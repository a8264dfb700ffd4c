//! The load scenario, for any `serf` binary (ours or HashiCorp's): 50 agents on loopback, 200
//! user events a second for 60 s (12,000 events, each with its sequence number as payload,
//! sent round-robin through the agents' RPC ports, coalescing off). What every agent's
//! consumers got is tallied:
//! - every agent streams `user` events over RPC to the harness, the consumer a program driving
//!   an agent uses (a script per event would be 10,000 process starts a second across 50
//!   agents on two cores, for either implementation);
//! - two agents also run a real event-handler script, which appends each payload to a file.
//!
//! Resident memory is sampled per agent. Shared by crates/agent/tests/load.rs (ours, asserted) and
//! crates/agent/benches/load.rs (both binaries, reported side by side). Every wait is bounded.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::reference::{free_port, scratch_with_handler, wait_until_every, Agent};
use serf_agent::client::{Record, RpcClient};
use serf_proto::wire::msgpack::Value;

pub const AGENTS: usize = 50;
pub const RATE: usize = 200;
const SECONDS: usize = 60;
pub const TOTAL: usize = RATE * SECONDS;
/// Agents whose event-handler script also records every event.
pub const SCRIPTED: usize = 2;
/// Longest wait for deliveries after the last event was sent, and for a pause in them.
const DRAIN: Duration = Duration::from_secs(60);
const STALL: Duration = Duration::from_secs(15);

/// Appends the event's payload (its sequence number) to the file named by its argument.
const HANDLER: &str = "#!/bin/sh\nread -r seq\necho \"$seq\" >> \"$1\"\n";

/// How many times each sequence number arrived at one consumer.
type Tally = Arc<Mutex<Vec<u32>>>;

/// What one agent's consumers got, and what it counted.
pub struct AgentOutcome {
    pub name: String,
    /// Events its stream never delivered, and delivered more than once.
    pub missing: usize,
    pub twice: usize,
    /// The same for its handler script, if it runs one.
    pub script: Option<(usize, usize)>,
    /// Of the events its script missed, those its stream missed too: events that never reached
    /// the agent (gossip's loss), not events its handler lane lost.
    pub script_unreached: Option<usize>,
    /// How fast that script ran, if it runs one.
    pub pace: Option<ScriptPace>,
    /// Its numeric `serf info` counters (HashiCorp's agent has fewer: absent ones read 0).
    pub counters: BTreeMap<String, u64>,
    /// RSS in KiB once the cluster formed, when sending ended, and after draining.
    pub rss_kib: [u64; 3],
    /// CPU time it used while the events were sent.
    pub cpu_sending: Duration,
}

impl AgentOutcome {
    pub fn counter(&self, key: &str) -> u64 {
        self.counters.get(key).copied().unwrap_or(0)
    }
}

/// Handler scripts run per second by one agent's ordered lane (one script, one at a time).
#[derive(Clone, Copy)]
pub struct ScriptPace {
    /// Over the time events were sent.
    pub sending: f64,
    /// Over the busiest [`PACE_WINDOW`]: the lane's pace when it had a backlog.
    pub best: f64,
}

/// The window of [`ScriptPace::best`].
pub const PACE_WINDOW: Duration = Duration::from_secs(5);

pub struct LoadOutcome {
    pub sent_in: Duration,
    /// When every consumer had every event, if that happened within the drain limit.
    pub complete_after: Option<Duration>,
    pub agents: Vec<AgentOutcome>,
    /// The kernel's UDP receive-buffer overflows during the run (all sockets on the machine).
    pub udp_rcvbuf_errors: u64,
}

impl LoadOutcome {
    pub fn missing(&self) -> usize {
        self.agents.iter().map(|a| a.missing).sum()
    }

    pub fn twice(&self) -> usize {
        self.agents.iter().map(|a| a.twice).sum()
    }

    pub fn max_rss_kib(&self) -> u64 {
        self.agents
            .iter()
            .flat_map(|a| a.rss_kib)
            .max()
            .unwrap_or(0)
    }

    /// Mean CPU use per agent while events were sent, in % of one core.
    pub fn cpu_percent(&self) -> f64 {
        let total: f64 = self
            .agents
            .iter()
            .map(|a| a.cpu_sending.as_secs_f64())
            .sum();
        100.0 * total / self.agents.len().max(1) as f64 / self.sent_in.as_secs_f64()
    }

    /// The agents' RSS in KiB at one of the three samples, as "min–max".
    pub fn rss_spread(&self, sample: usize) -> String {
        let values = self.agents.iter().map(|a| a.rss_kib[sample]);
        let (min, max) = (values.clone().min(), values.max());
        format!("{}–{}", min.unwrap_or(0), max.unwrap_or(0))
    }
}

/// Runs the scenario on `bin`; agents are named `<prefix><i>`.
pub fn run(bin: &Path, prefix: &str) -> LoadOutcome {
    let (dir, handler) = scratch_with_handler(&format!("load-{prefix}"), HANDLER);
    let agents = start_cluster(bin, prefix, &dir, &handler);
    let rcvbuf_errors_before = udp_rcvbuf_errors();
    let stop = Arc::new(AtomicBool::new(false));
    let tallies: Vec<Tally> = (0..AGENTS)
        .map(|_| Arc::new(Mutex::new(vec![0; TOTAL])))
        .collect();
    let readers: Vec<_> = agents
        .iter()
        .zip(&tallies)
        .map(|(agent, tally)| stream_into(agent, tally.clone(), stop.clone()))
        .collect();
    let rss_formed: Vec<u64> = agents.iter().map(Agent::rss_kib).collect();
    let cpu_formed: Vec<Duration> = agents.iter().map(cpu_time).collect();
    let sampler = sample_scripts(&dir, stop.clone());
    let (sent_in, rss_sent) = send_events(&agents);
    let cpu_sent: Vec<Duration> = agents.iter().map(cpu_time).collect();
    let complete_after = drain(&tallies, &dir);
    // Read the agents before the streams close: HashiCorp's agent can panic ("send on closed
    // channel", ipc_event_stream.go) when a stream goes away while events still flow.
    let counters: Vec<_> = agents.iter().map(Agent::counters).collect();
    let rss_end: Vec<u64> = agents.iter().map(Agent::rss_kib).collect();
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().expect("stream reader");
    }
    let samples = sampler.join().expect("script sampler");
    let outcome = LoadOutcome {
        sent_in,
        complete_after,
        udp_rcvbuf_errors: udp_rcvbuf_errors() - rcvbuf_errors_before,
        agents: agents
            .iter()
            .enumerate()
            .map(|(i, agent)| {
                let streamed = tallies[i].lock().expect("tally");
                let (missing, twice) = outcome(&streamed);
                let scripted = (i < SCRIPTED).then(|| script_tally(&dir, i));
                AgentOutcome {
                    name: agent.name.clone(),
                    missing,
                    twice,
                    script: scripted.as_deref().map(outcome),
                    script_unreached: scripted.as_deref().map(|s| unreached(s, &streamed)),
                    pace: scripted.is_some().then(|| pace(&samples, i, sent_in)),
                    counters: counters[i].clone(),
                    rss_kib: [rss_formed[i], rss_sent[i], rss_end[i]],
                    cpu_sending: cpu_sent[i].saturating_sub(cpu_formed[i]),
                }
            })
            .collect(),
    };
    drop(agents);
    drop(dir);
    outcome
}

/// Starts the agents, all joining the first, and waits until every one sees all of them.
fn start_cluster(bin: &Path, prefix: &str, dir: &Path, handler: &Path) -> Vec<Agent> {
    let mut agents: Vec<Agent> = Vec::new();
    for i in 0..AGENTS {
        let gossip = format!("127.0.0.1:{}", free_port());
        let mut extra = vec!["-log-level=warn".to_string()];
        if let Some(first) = agents.first() {
            extra.push(format!("-join={}", first.gossip));
        }
        if i < SCRIPTED {
            extra.push(format!(
                "-event-handler=user={} {}",
                handler.display(),
                script_file(dir, i).display()
            ));
        }
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        agents.push(Agent::start_binary(
            bin,
            &format!("{prefix}{i}"),
            gossip.parse().expect("address"),
            &extra,
        ));
    }
    let formed = wait_until_every(Duration::from_secs(120), Duration::from_secs(1), || {
        agents.iter().all(|a| a.alive_count() == AGENTS)
    });
    assert!(formed, "the {AGENTS} agents did not converge within 120 s");
    agents
}

fn script_file(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("handled-{i}.log"))
}

/// A thread that streams an agent's user events and tallies their sequence numbers.
fn stream_into(agent: &Agent, tally: Tally, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let mut client = RpcClient::connect(&agent.rpc.to_string(), "").expect("RPC connect");
    client.stream("user").expect("open a user-event stream");
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match client.next_record(Duration::from_millis(200)) {
                Ok(Some((_, Record::Event(raw)))) => {
                    let value = raw.value().expect("a decodable event record");
                    if let Some(seq) = sequence(&value) {
                        tally.lock().expect("tally")[seq] += 1;
                    }
                }
                Ok(_) => {}
                Err(e) => panic!("stream broke: {e}"),
            }
        }
    })
}

/// The sequence number a load event carries as its payload.
fn sequence(record: &Value) -> Option<usize> {
    match record.get("Payload")? {
        Value::Bytes(b) | Value::Str(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        _ => None,
    }
}

/// Sends event `n` to agent `n % AGENTS` at `n / RATE` seconds from the start. Returns how
/// long sending took and every agent's RSS at its end.
fn send_events(agents: &[Agent]) -> (Duration, Vec<u64>) {
    let mut clients: Vec<RpcClient> = agents
        .iter()
        .map(|a| RpcClient::connect(&a.rpc.to_string(), "").expect("RPC connect"))
        .collect();
    let start = Instant::now();
    for n in 0..TOTAL {
        let due = start + Duration::from_secs_f64(n as f64 / RATE as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        clients[n % AGENTS]
            .user_event("load", Some(n.to_string().as_bytes()), false)
            .expect("send a user event");
    }
    (start.elapsed(), agents.iter().map(Agent::rss_kib).collect())
}

/// Waits until every stream and script has every event, nothing more arrives for [`STALL`],
/// or [`DRAIN`] passed. Returns when everything was complete, if it became so.
fn drain(tallies: &[Tally], dir: &Path) -> Option<Duration> {
    let start = Instant::now();
    let delivered = || -> usize {
        let streamed: usize = tallies
            .iter()
            .map(|t| t.lock().expect("tally").iter().filter(|&&c| c > 0).count())
            .sum();
        let scripted: usize = (0..SCRIPTED)
            .map(|i| script_tally(dir, i).iter().filter(|&&c| c > 0).count())
            .sum();
        streamed + scripted
    };
    let complete = TOTAL * (tallies.len() + SCRIPTED);
    let (mut last, mut last_change) = (delivered(), Instant::now());
    while start.elapsed() < DRAIN && last_change.elapsed() < STALL {
        if last == complete {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(500));
        let now = delivered();
        if now != last {
            (last, last_change) = (now, Instant::now());
        }
    }
    None
}

/// Samples of (time since sending began, lines in each handler file).
type Samples = Vec<(Duration, [usize; SCRIPTED])>;

/// Counts the lines of the handler files four times a second until `stop`.
fn sample_scripts(dir: &Path, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Samples> {
    let dir = dir.to_path_buf();
    let start = Instant::now();
    std::thread::spawn(move || {
        let mut samples = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let lines = std::array::from_fn(|i| {
                let text = std::fs::read(script_file(&dir, i)).unwrap_or_default();
                text.iter().filter(|&&b| b == b'\n').count()
            });
            samples.push((start.elapsed(), lines));
            std::thread::sleep(Duration::from_millis(250));
        }
        samples
    })
}

/// Agent `i`'s script pace from the samples.
fn pace(samples: &Samples, i: usize, sent_in: Duration) -> ScriptPace {
    let at_send_end = samples
        .iter()
        .take_while(|(t, _)| *t <= sent_in)
        .last()
        .map_or(0, |(_, lines)| lines[i]);
    let mut best: f64 = 0.0;
    for (k, (t0, lines0)) in samples.iter().enumerate() {
        if let Some((t1, lines1)) = samples[k..].iter().find(|(t, _)| *t - *t0 >= PACE_WINDOW) {
            let rate = (lines1[i] - lines0[i]) as f64 / (*t1 - *t0).as_secs_f64();
            best = best.max(rate);
        }
    }
    ScriptPace {
        sending: at_send_end as f64 / sent_in.as_secs_f64(),
        best,
    }
}

/// How many times each sequence number appears in agent `i`'s handler file.
fn script_tally(dir: &Path, i: usize) -> Vec<u32> {
    let mut counts = vec![0; TOTAL];
    let text = std::fs::read_to_string(script_file(dir, i)).unwrap_or_default();
    for seq in text.lines().filter_map(|l| l.trim().parse::<usize>().ok()) {
        if let Some(c) = counts.get_mut(seq) {
            *c += 1;
        }
    }
    counts
}

/// Events neither the script nor the stream of the same agent got.
fn unreached(scripted: &[u32], streamed: &[u32]) -> usize {
    scripted
        .iter()
        .zip(streamed)
        .filter(|&(&s, &t)| s == 0 && t == 0)
        .count()
}

/// (events never seen, events seen more than once).
fn outcome(counts: &[u32]) -> (usize, usize) {
    (
        counts.iter().filter(|&&c| c == 0).count(),
        counts.iter().filter(|&&c| c > 1).count(),
    )
}

/// User plus system time of the agent's process so far.
fn cpu_time(agent: &Agent) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", agent.pid()))
        .expect("the agent's /proc stat");
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis(ticks * 1000 / per_second)
}

/// `RcvbufErrors` of the kernel's UDP counters.
fn udp_rcvbuf_errors() -> u64 {
    let snmp = std::fs::read_to_string("/proc/net/snmp").expect("/proc/net/snmp");
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (names, values) = (udp.next().unwrap_or(""), udp.next().unwrap_or(""));
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}
