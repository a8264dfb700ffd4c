//! Fault scenarios on real sockets, for any `serf` binary (ours or HashiCorp's). [`in_netns`]
//! makes a *hub* network namespace with a bridge; each of a scenario's ten agents gets a network
//! namespace of its own, joined to the bridge by a veth pair, with one address (10.99.0.1 to
//! 10.99.0.10; the hub is 10.99.0.254). These networks exist only inside namespaces the test
//! makes. Faults are nftables rules on the bridge's forward hook: random drop of every frame
//! between agents, or a partition by address. The harness observes from the hub through the
//! agents' RPC ports, which the rules never touch. (One namespace per agent matters: agents that
//! share a loopback send TCP from 127.0.0.1 whatever address they bind, so a partition by
//! address would be one-sided.) Every agent runs an event handler that appends what it sees,
//! with a timestamp, to a file: the scenarios count from those files, as an operator's scripts
//! would. Shared by crates/agent/tests/faults.rs (ours, asserted) and crates/agent/benches/faults.rs (both binaries,
//! reported side by side). Every wait is bounded; namespaces are deleted when done.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::reference::{scratch_with_handler, wait_until_every, Agent, Scratch};

pub const GOSSIP_PORT: u16 = 7946;
/// Cluster size of every scenario.
pub const AGENTS: usize = 10;
/// Longest wait for a cluster to (re)form.
const CONVERGE: Duration = Duration::from_secs(120);

/// Runs `f` on a thread of its own inside a new network namespace (the hub) with a bridge
/// `br0` at 10.99.0.254/24; processes started by `f` live there too. Panics if namespaces cannot
/// be made (not root): these tests fail rather than skip.
pub fn in_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let outcome = std::thread::spawn(move || {
        // SAFETY: unshare only changes this thread's namespaces.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            panic!(
                "cannot create a network namespace (the fault tests need root, as CI has): {}",
                std::io::Error::last_os_error()
            );
        }
        for args in [
            &["link", "set", "lo", "up"][..],
            &["link", "add", "br0", "type", "bridge"],
            &["addr", "add", "10.99.0.254/24", "dev", "br0"],
            &["link", "set", "br0", "up"],
        ] {
            run("ip", args, None);
        }
        f()
    })
    .join();
    match outcome {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

fn run(program: &str, args: &[&str], stdin: Option<&str>) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program} (install iproute2 and nftables): {e}"));
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{program} {} failed: {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr),
        stdin.unwrap_or_default()
    );
}

/// The hub's bridge filter: one table, replaced as a whole on every change.
pub struct Filter;

impl Filter {
    /// Drops `percent` % of all IPv4 frames between agents, at random.
    pub fn drop_percent(percent: u32) {
        Filter::load(&format!(
            "ether type ip numgen random mod 100 < {percent} drop"
        ));
    }

    /// Drops everything between the agents of `a` and those of `b`.
    pub fn partition(a: &[usize], b: &[usize]) {
        let set = |ix: &[usize]| {
            ix.iter()
                .map(|&i| ip(i).to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (a, b) = (set(a), set(b));
        Filter::load(&format!(
            "ip saddr {{ {a} }} ip daddr {{ {b} }} drop\nip saddr {{ {b} }} ip daddr {{ {a} }} drop"
        ));
    }

    /// Lets everything through again.
    pub fn clear() {
        run("nft", &["-f", "-"], Some("flush ruleset\n"));
    }

    fn load(rules: &str) {
        run(
            "nft",
            &["-f", "-"],
            Some(&format!(
                "flush ruleset\ntable bridge fault {{\n  chain forward {{\n    type filter hook \
                 forward priority 0; policy accept;\n    {}\n  }}\n}}\n",
                rules.replace('\n', "\n    ")
            )),
        );
    }
}

/// Agent `i`'s address on the bridge.
pub fn ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 99, 0, 1 + i as u8)
}

/// Agent `i`'s gossip address.
pub fn address(i: usize) -> SocketAddr {
    SocketAddr::from((ip(i), GOSSIP_PORT))
}

/// Agent `i`'s RPC address (reached from the hub, never filtered).
fn rpc_address(i: usize) -> SocketAddr {
    SocketAddr::from((ip(i), 7373))
}

/// Named network namespaces (`ip netns`), one per agent, each with a veth into the hub's
/// bridge; deleted on drop.
struct Namespaces(Vec<String>);

impl Namespaces {
    fn create(prefix: &str) -> Namespaces {
        let mut made = Namespaces(Vec::new());
        for i in 0..AGENTS {
            let ns = format!("lsf{}-{prefix}{i}", std::process::id());
            // A namespace left by a killed earlier run of this process id, if any.
            let _ = Command::new("ip")
                .args(["netns", "del", &ns])
                .stderr(Stdio::null())
                .status();
            run("ip", &["netns", "add", &ns], None);
            made.0.push(ns.clone());
            let (hub_end, agent_end) = (format!("{prefix}{i}h"), format!("{prefix}{i}a"));
            let cidr = format!("{}/24", ip(i));
            run(
                "ip",
                &[
                    "link", "add", &hub_end, "type", "veth", "peer", "name", &agent_end, "netns",
                    &ns,
                ],
                None,
            );
            run(
                "ip",
                &["link", "set", &hub_end, "master", "br0", "up"],
                None,
            );
            run(
                "ip",
                &["-n", &ns, "addr", "add", &cidr, "dev", &agent_end],
                None,
            );
            run("ip", &["-n", &ns, "link", "set", &agent_end, "up"], None);
            run("ip", &["-n", &ns, "link", "set", "lo", "up"], None);
        }
        made
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Milliseconds since the epoch, the clock the handler script writes.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One line of an agent's event file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub at_ms: u64,
    /// `member-join`, `member-failed`, `user`, ...
    pub event: String,
    /// The member's name, or the user event's name.
    pub subject: String,
    /// The user event's Lamport time.
    pub ltime: Option<u64>,
}

/// Appends `<ms> <event> <member>` per member, or `<ms> user <name> <ltime>`.
const HANDLER: &str = r#"#!/bin/sh
now=$(date +%s%3N)
if [ "$SERF_EVENT" = user ]; then
    echo "$now user $SERF_USER_EVENT $SERF_USER_LTIME" >> "$1"
    cat > /dev/null
else
    tab=$(printf '\t')
    while IFS="$tab" read -r name rest; do
        echo "$now $SERF_EVENT $name" >> "$1"
    done
fi
"#;

/// Ten agents of one binary, agent 0 first and the others joining it.
pub struct Cluster {
    pub bin: PathBuf,
    pub prefix: String,
    pub dir: Scratch,
    pub agents: Vec<Option<Agent>>,
    handler: PathBuf,
    namespaces: Namespaces,
}

impl Cluster {
    /// Starts the agents and waits until every one sees all of them alive.
    pub fn start(bin: &Path, prefix: &str) -> Cluster {
        let (dir, handler) = scratch_with_handler(&format!("faults-{prefix}"), HANDLER);
        let mut cluster = Cluster {
            bin: bin.to_path_buf(),
            prefix: prefix.to_string(),
            dir,
            agents: Vec::new(),
            handler,
            namespaces: Namespaces::create(prefix),
        };
        for i in 0..AGENTS {
            let agent = cluster.spawn(i, i > 0);
            cluster.agents.push(Some(agent));
        }
        let formed = cluster.wait_all_alive(CONVERGE);
        assert!(
            formed.is_some(),
            "{prefix}: the cluster did not form: {}",
            cluster.views()
        );
        cluster
    }

    pub fn name(&self, i: usize) -> String {
        format!("{}{i}", self.prefix)
    }

    fn events_file(&self, i: usize) -> PathBuf {
        self.dir.join(format!("events-{i}.log"))
    }

    /// Starts agent `i` with its handler and snapshot; `join` joins agent 0.
    fn spawn(&self, i: usize, join: bool) -> Agent {
        let handler = format!(
            "-event-handler={} {}",
            self.handler.display(),
            self.events_file(i).display()
        );
        let snapshot = format!(
            "-snapshot={}",
            self.dir.join(format!("snapshot-{i}")).display()
        );
        let join_flag = format!("-join={}", address(0));
        let mut extra = vec![handler.as_str(), snapshot.as_str()];
        if join {
            extra.push(&join_flag);
        }
        let wrapper = ["ip", "netns", "exec", self.namespaces.0[i].as_str()];
        Agent::start_wrapped(
            &wrapper,
            &self.bin,
            &self.name(i),
            address(i),
            rpc_address(i),
            &extra,
        )
    }

    /// What agent `i` reports: member name → status.
    pub fn view(&self, i: usize) -> BTreeMap<String, String> {
        self.agents[i]
            .as_ref()
            .map(|a| a.members().into_iter().map(|(n, s, _)| (n, s)).collect())
            .unwrap_or_default()
    }

    /// Every running agent's view, for failure messages.
    pub fn views(&self) -> String {
        (0..AGENTS)
            .filter(|&i| self.agents[i].is_some())
            .map(|i| format!("\n  {}: {:?}", self.name(i), self.view(i)))
            .collect()
    }

    /// Whether every running agent sees exactly `expected` (name → status) for all agents.
    pub fn all_agree(&self, expected: impl Fn(usize) -> &'static str) -> bool {
        (0..AGENTS).filter(|&i| self.agents[i].is_some()).all(|i| {
            let view = self.view(i);
            (0..AGENTS).all(|j| view.get(&self.name(j)).map(String::as_str) == Some(expected(j)))
        })
    }

    /// Polls until every agent sees all ten alive; how long it took.
    pub fn wait_all_alive(&self, limit: Duration) -> Option<Duration> {
        self.wait_for(limit, |c| c.all_agree(|_| "alive"))
    }

    /// Polls `cond` every half second (each poll runs the CLI against every agent) for at most
    /// `limit`; the time it took to hold.
    pub fn wait_for(&self, limit: Duration, cond: impl Fn(&Cluster) -> bool) -> Option<Duration> {
        let start = Instant::now();
        wait_until_every(limit, Duration::from_millis(500), || cond(self)).then(|| start.elapsed())
    }

    /// What agent `i`'s handler recorded.
    pub fn seen(&self, i: usize) -> Vec<Seen> {
        let text = std::fs::read_to_string(self.events_file(i)).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let mut parts = line.split_whitespace();
                Some(Seen {
                    at_ms: parts.next()?.parse().ok()?,
                    event: parts.next()?.to_string(),
                    subject: parts.next()?.to_string(),
                    ltime: parts.next().and_then(|t| t.parse().ok()),
                })
            })
            .collect()
    }

    /// `member-failed` events recorded by any agent in `[from, to)` (ms since the epoch), as
    /// (observer, failed member).
    pub fn failures(&self, from: u64, to: u64) -> Vec<(usize, String)> {
        (0..AGENTS)
            .flat_map(|i| {
                self.seen(i)
                    .into_iter()
                    .filter(|s| s.event == "member-failed" && s.at_ms >= from && s.at_ms < to)
                    .map(move |s| (i, s.subject))
            })
            .collect()
    }

    /// kill -9 of agent `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut agent) = self.agents[i].take() {
            agent.kill();
        }
    }

    /// Starts agent `i` again from its snapshot (no `-join`: the snapshot rejoins).
    pub fn restart(&mut self, i: usize) {
        let agent = self.spawn(i, false);
        self.agents[i] = Some(agent);
    }

    /// Sends SIGSTOP or SIGCONT to agent `i`.
    pub fn signal(&self, i: usize, signal: &str) {
        let pid = self.agents[i].as_ref().expect("running").pid().to_string();
        run("kill", &[&format!("-{signal}"), &pid], None);
    }

    /// Sends a user event through agent `i` (coalescing off).
    pub fn user_event(&self, i: usize, name: &str) {
        let agent = self.agents[i].as_ref().expect("running");
        agent
            .cli(&["event", "-coalesce=false", name, "payload"])
            .unwrap_or_else(|e| panic!("event {name}: {e}"));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.agents.len() {
            self.kill(i);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// scenarios: each returns what it observed; the caller asserts (test) or reports (bench)

/// False `member-failed` events during each drop phase (and its `grace` after), and the time
/// until every agent saw all ten alive once the drop ended.
#[derive(Debug)]
pub struct DropOutcome {
    pub phases: Vec<(u32, Vec<(usize, String)>)>,
    pub healed_after: Option<Duration>,
}

/// Runs each `(percent, length)` drop phase in turn on one cluster, then clears the filter.
pub fn random_drop(bin: &Path, prefix: &str, phases: &[(u32, Duration)]) -> DropOutcome {
    let cluster = Cluster::start(bin, prefix);
    let mut outcome = DropOutcome {
        phases: Vec::new(),
        healed_after: None,
    };
    for &(percent, length) in phases {
        let from = now_ms();
        Filter::drop_percent(percent);
        std::thread::sleep(length);
        let to = now_ms();
        outcome.phases.push((percent, cluster.failures(from, to)));
    }
    Filter::clear();
    let cleared = now_ms();
    outcome.healed_after = cluster.wait_all_alive(CONVERGE);
    // Failures noticed just after the drop ended (suspicions that ran out) belong to its last
    // phase.
    if let Some((_, failures)) = outcome.phases.last_mut() {
        failures.extend(cluster.failures(cleared, now_ms()));
    }
    outcome
}

/// A 5/5 partition for `length`: how far each side got in declaring the other failed, and how
/// long after the heal every agent saw all ten alive.
#[derive(Debug)]
pub struct PartitionOutcome {
    /// (observer, member) pairs across the cut that the observer lists `failed` at the end of
    /// the partition, of `AGENTS * AGENTS / 2`.
    pub cross_failed: usize,
    /// Same-side pairs listed as anything but `alive` then.
    pub same_side_not_alive: usize,
    /// Every agent's member list at the end of the partition.
    pub views: String,
    pub healed_after: Option<Duration>,
}

pub fn partition(bin: &Path, prefix: &str, length: Duration) -> PartitionOutcome {
    let cluster = Cluster::start(bin, prefix);
    let side = |i: usize| i < AGENTS / 2;
    let (a, b): (Vec<usize>, Vec<usize>) = (0..AGENTS).partition(|&i| side(i));
    Filter::partition(&a, &b);
    std::thread::sleep(length);
    let (mut cross_failed, mut same_side_not_alive) = (0, 0);
    for i in 0..AGENTS {
        let view = cluster.view(i);
        for j in 0..AGENTS {
            let status = view.get(&cluster.name(j)).map(String::as_str);
            if side(i) != side(j) && status == Some("failed") {
                cross_failed += 1;
            }
            if side(i) == side(j) && status != Some("alive") {
                same_side_not_alive += 1;
            }
        }
    }
    let views = cluster.views();
    Filter::clear();
    PartitionOutcome {
        cross_failed,
        same_side_not_alive,
        views,
        healed_after: cluster.wait_all_alive(CONVERGE),
    }
}

/// SIGSTOP of one agent for `length`, then SIGCONT.
#[derive(Debug)]
pub struct StallOutcome {
    /// Observers that recorded the stopped agent failed while it was stopped.
    pub observers_marking_failed: usize,
    /// First `member-failed` about it, after the stop.
    pub first_failed_after: Option<Duration>,
    /// From SIGCONT until every agent saw all ten alive.
    pub back_after: Option<Duration>,
    /// `member-failed` events about any other (healthy) agent.
    pub healthy_failed: Vec<(usize, String)>,
}

pub fn stall(bin: &Path, prefix: &str, length: Duration) -> StallOutcome {
    let cluster = Cluster::start(bin, prefix);
    let stopped = AGENTS - 1;
    let stopped_name = cluster.name(stopped);
    let from = now_ms();
    cluster.signal(stopped, "STOP");
    std::thread::sleep(length);
    let resumed = now_ms();
    cluster.signal(stopped, "CONT");
    let back_after = cluster.wait_all_alive(CONVERGE);
    let all = cluster.failures(from, now_ms());
    let failed_about_stopped =
        |s: &Seen| s.event == "member-failed" && s.subject == stopped_name && s.at_ms >= from;
    // A handler may record the failure a moment after SIGCONT; a second's slack.
    let observers_marking_failed = (0..AGENTS)
        .filter(|&i| {
            cluster
                .seen(i)
                .iter()
                .any(|s| failed_about_stopped(s) && s.at_ms < resumed + 1000)
        })
        .count();
    let first = (0..AGENTS)
        .flat_map(|i| cluster.seen(i))
        .filter(failed_about_stopped)
        .map(|s| s.at_ms)
        .min();
    StallOutcome {
        observers_marking_failed,
        first_failed_after: first.map(|t| Duration::from_millis(t.saturating_sub(from))),
        back_after,
        healthy_failed: all
            .into_iter()
            .filter(|(_, who)| *who != stopped_name)
            .collect(),
    }
}

/// kill -9 of one agent after it saw some user events, and a restart from its snapshot.
#[derive(Debug)]
pub struct RestartOutcome {
    /// From the restart (process start included) until every agent saw all ten alive.
    pub rejoined_after: Option<Duration>,
    /// User events (name, Lamport time) the restarted agent's handler saw more than once, over
    /// both of its lives.
    pub duplicates: Vec<(String, u64)>,
    /// Whether it saw the event sent after the restart.
    pub saw_new_event: bool,
}

pub fn crash_restart(bin: &Path, prefix: &str) -> RestartOutcome {
    let mut cluster = Cluster::start(bin, prefix);
    let victim = AGENTS - 1;
    let before: Vec<String> = (0..5).map(|k| format!("before{k}")).collect();
    for name in &before {
        cluster.user_event(0, name);
    }
    let got_all = |c: &Cluster, names: &[String]| {
        let seen = c.seen(victim);
        names
            .iter()
            .all(|n| seen.iter().any(|s| s.event == "user" && &s.subject == n))
    };
    let delivered = cluster.wait_for(Duration::from_secs(30), |c| got_all(c, &before));
    assert!(
        delivered.is_some(),
        "{prefix}: the victim never saw the first events"
    );
    // The snapshot is flushed every half second (Go and ours): give it a flush.
    std::thread::sleep(Duration::from_secs(2));
    cluster.kill(victim);
    let restarted = Instant::now();
    cluster.restart(victim);
    let rejoined_after = cluster
        .wait_all_alive(CONVERGE)
        .map(|_| restarted.elapsed());
    let after = vec!["after0".to_string()];
    cluster.user_event(0, &after[0]);
    let saw_new_event = cluster
        .wait_for(Duration::from_secs(30), |c| got_all(c, &after))
        .is_some();
    // Old events may still ride on push/pull and gossip for a while: give them a chance to be
    // (wrongly) delivered again.
    std::thread::sleep(Duration::from_secs(5));
    let mut counts: BTreeMap<(String, u64), usize> = BTreeMap::new();
    for s in cluster
        .seen(victim)
        .into_iter()
        .filter(|s| s.event == "user")
    {
        *counts.entry((s.subject, s.ltime.unwrap_or(0))).or_default() += 1;
    }
    RestartOutcome {
        rejoined_after,
        duplicates: counts
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(k, _)| k)
            .collect(),
        saw_new_event,
    }
}
