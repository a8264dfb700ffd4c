//! Density: many libserf nodes in one process on loopback (issue 9, part 2).
//!
//! Starts N nodes (`Serf::create`, LAN profile, 127.0.0.1:0, one protocol thread each), joins
//! them in batches (each node joins 3 random nodes of earlier batches, the joins of one batch
//! running in parallel; a batch starts once the nodes before it see each other alive, or after
//! 20 s), then measures:
//!
//! * convergence: time until every node has seen N members alive. Counted from each node's
//!   member events (join +n, failed/leave −n), which the bench must drain anyway so the bounded
//!   event queues do not drop; confirmed with `members()` on sampled observers at convergence and
//!   on every node at the end;
//! * memory: `VmRSS` of the process before the nodes start, after they start, at convergence and
//!   at the end of the idle period, divided by N;
//! * idle CPU: once gossip has settled (the join news has been retransmitted away), process CPU
//!   time (`getrusage`) and the node threads' own CPU time (`/proc/self/task/*/stat`) over the
//!   idle period, as % of one core per node;
//! * false failures: member-failed events seen by any node (must be 0), per phase; suspicions
//!   from memberlist's counters on sampled nodes.
//!
//! N = 1,000 and a 5-minute idle period by default; `BENCH_QUICK=1`: N = 100, 20 s.
//! `DENSITY_NODES` and `DENSITY_IDLE_SECS` override. Writes `target/bench/density.md`.

#[path = "../tests/common/bench.rs"]
mod bench;

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use serf::api::{Options, Serf};
use serf_proto::memberlist::Profile;
use serf_proto::serf::{Event, MemberEventType, MemberStatus};

/// Earlier nodes each node joins through.
const JOIN_FANOUT: usize = 3;
/// Threads running one batch's joins.
const JOIN_WORKERS: usize = 8;
/// Longest a batch waits for the nodes before it to see each other alive.
const BATCH_SETTLE_CAP: Duration = Duration::from_secs(20);
/// Observers whose member list is checked at convergence and whose counters are sampled.
const SAMPLE: usize = 20;
/// Gossip has settled when sampled nodes send at most this many packets per second each (idle:
/// one ping out, about one ack out for the ping received, per probe interval of 1 s).
const SETTLED_PACKETS_PER_SEC: f64 = 3.0;

struct Params {
    nodes: usize,
    batch: usize,
    idle: Duration,
    converge_timeout: Duration,
    settle_cap: Duration,
    quick: bool,
}

impl Params {
    fn from_env() -> Params {
        let quick = std::env::var_os("BENCH_QUICK").is_some_and(|v| v != "0" && !v.is_empty());
        let env_num = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
        let nodes = env_num("DENSITY_NODES").map_or(if quick { 100 } else { 1000 }, |n| n as usize);
        let idle = Duration::from_secs(env_num("DENSITY_IDLE_SECS").unwrap_or(if quick {
            20
        } else {
            300
        }));
        Params {
            nodes: nodes.max(2),
            batch: (nodes / 20).clamp(5, 50),
            idle,
            converge_timeout: Duration::from_secs(if quick { 60 } else { 150 }),
            settle_cap: Duration::from_secs(if quick { 30 } else { 90 }),
            quick,
        }
    }
}

/// What each node's event stream said, updated by the drain thread.
struct Tracker {
    /// Members seen alive: joins minus failures and leaves.
    alive: Vec<AtomicI64>,
    failed: Vec<AtomicU64>,
    left: Vec<AtomicU64>,
    events: AtomicU64,
    stop: AtomicBool,
    /// (observer, failed member) pairs, for the report.
    failures: Mutex<Vec<(usize, String, Duration)>>,
}

impl Tracker {
    fn new(n: usize) -> Tracker {
        Tracker {
            alive: (0..n).map(|_| AtomicI64::new(0)).collect(),
            failed: (0..n).map(|_| AtomicU64::new(0)).collect(),
            left: (0..n).map(|_| AtomicU64::new(0)).collect(),
            events: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            failures: Mutex::new(Vec::new()),
        }
    }

    fn total_failed(&self) -> u64 {
        self.failed.iter().map(|a| a.load(Ordering::Relaxed)).sum()
    }

    fn total_left(&self) -> u64 {
        self.left.iter().map(|a| a.load(Ordering::Relaxed)).sum()
    }

    /// Nodes whose count of alive members is not `expected`, and the smallest count.
    fn lagging(&self, expected: i64) -> (usize, i64) {
        let counts = self.alive.iter().map(|a| a.load(Ordering::Relaxed));
        let lagging = counts.clone().filter(|&c| c != expected).count();
        (lagging, counts.min().unwrap_or(0))
    }

    /// Drains every node's events until told to stop.
    fn drain(&self, nodes: &[Serf], t0: Instant) {
        while !self.stop.load(Ordering::Relaxed) {
            self.drain_once(nodes, t0);
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn drain_once(&self, nodes: &[Serf], t0: Instant) {
        for (i, node) in nodes.iter().enumerate() {
            while let Some(ev) = node.try_event() {
                self.events.fetch_add(1, Ordering::Relaxed);
                if let Event::Member { kind, members } = ev {
                    let n = members.len() as i64;
                    match kind {
                        MemberEventType::Join => {
                            self.alive[i].fetch_add(n, Ordering::Relaxed);
                        }
                        MemberEventType::Failed => {
                            self.alive[i].fetch_sub(n, Ordering::Relaxed);
                            self.failed[i].fetch_add(n as u64, Ordering::Relaxed);
                            let mut f = self.failures.lock().unwrap();
                            for m in members {
                                if f.len() < 50 {
                                    f.push((i, m.name, t0.elapsed()));
                                }
                            }
                        }
                        MemberEventType::Leave => {
                            self.alive[i].fetch_sub(n, Ordering::Relaxed);
                            self.left[i].fetch_add(n as u64, Ordering::Relaxed);
                        }
                        MemberEventType::Update | MemberEventType::Reap => {}
                    }
                }
            }
        }
    }
}

/// `VmRSS`, `VmHWM` (kB) and `Threads` from `/proc/self/status`.
fn proc_status() -> (u64, u64, u64) {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"), field("Threads:"))
}

fn rss_kb() -> u64 {
    proc_status().0
}

/// Bytes the allocator has handed out and not had back (glibc's `mallinfo2`), in kB: the live
/// heap, without what the allocator keeps after frees, which RSS includes.
fn heap_in_use_kb() -> u64 {
    // SAFETY: mallinfo2 only reads the allocator's statistics.
    let info = unsafe { libc::mallinfo2() };
    ((info.uordblks + info.hblkhd) / 1024) as u64
}

/// User + system CPU time of the whole process.
fn process_cpu() -> Duration {
    // SAFETY: getrusage writes into the zeroed struct we pass; the result is checked.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// User + system CPU time of the threads named like the nodes (`node-…`), from
/// `/proc/self/task/*/stat`: the node threads only, without the bench's own threads.
fn node_threads_cpu() -> Duration {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let mut total = 0u64;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // "tid (comm) state ppid …": the name may hold spaces, so split after the last ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if !stat[open + 1..close].starts_with("node-") {
            continue;
        }
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        // After the name: state(0) … utime(11) stime(12).
        let get = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        total += get(11) + get(12);
    }
    Duration::from_secs_f64(total as f64 / ticks)
}

/// Raises the soft open-files limit to the hard one; returns the resulting soft limit.
fn raise_nofile() -> u64 {
    // SAFETY: getrlimit/setrlimit read and write the struct we pass; results are checked.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return raised.rlim_cur;
            }
        }
        lim.rlim_cur
    }
}

fn read_sys(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

/// Sum of `packets_sent` over the sampled nodes.
fn sampled_packets(nodes: &[Serf], sample: &[usize]) -> u64 {
    sample
        .iter()
        .filter_map(|&i| nodes[i].stats().ok())
        .map(|s| s.memberlist.packets_sent)
        .sum()
}

/// Sum of (suspect messages, failed probes) over the sampled nodes.
fn sampled_suspicions(nodes: &[Serf], sample: &[usize]) -> (u64, u64) {
    sample
        .iter()
        .filter_map(|&i| nodes[i].stats().ok())
        .fold((0, 0), |(s, f), st| {
            (
                s + st.memberlist.msg_suspect,
                f + st.memberlist.failed_probes,
            )
        })
}

/// Alive members in `node`'s member list.
fn alive_members(node: &Serf) -> usize {
    node.members()
        .map(|ms| {
            ms.iter()
                .filter(|m| m.status == MemberStatus::Alive)
                .count()
        })
        .unwrap_or(0)
}

fn mb(kb: f64) -> String {
    format!("{:.1} MB", kb / 1024.0)
}

fn main() {
    if !bench::selected("density") {
        return;
    }
    let p = Params::from_env();
    let n = p.nodes;
    let nofile = raise_nofile();
    println!(
        "density: N={n}, idle {:?}, batch {}, {} CPUs; nofile {nofile}, threads-max {}, \
         pid_max {}, max_map_count {}; size_of::<Event>() = {}",
        p.idle,
        p.batch,
        thread::available_parallelism().map_or(0, |c| c.get()),
        read_sys("/proc/sys/kernel/threads-max"),
        read_sys("/proc/sys/kernel/pid_max"),
        read_sys("/proc/sys/vm/max_map_count"),
        std::mem::size_of::<Event>(),
    );
    let bench_start = Instant::now();
    let rss_before = rss_kb();
    let heap_before = heap_in_use_kb();

    // ---- start
    let t = Instant::now();
    let mut nodes = Vec::with_capacity(n);
    for i in 0..n {
        let mut o = Options::new(&format!("node-{i:04}"));
        o.bind = "127.0.0.1:0".parse().unwrap();
        o.profile = Profile::Lan;
        o.seed = Some(i as u64 + 1);
        match Serf::create(o) {
            Ok(s) => nodes.push(s),
            Err(e) => {
                eprintln!("node {i} failed to start: {e} (started {})", nodes.len());
                break;
            }
        }
    }
    let start_time = t.elapsed();
    if nodes.len() < n {
        eprintln!(
            "only {} of {n} nodes started (threads {}); finding recorded",
            nodes.len(),
            proc_status().2
        );
    }
    let n = nodes.len();
    let (rss_started, _, threads) = proc_status();
    println!(
        "started {n} nodes in {start_time:.2?}: RSS {} → {} ({:.0} kB/node), {threads} threads",
        mb(rss_before as f64),
        mb(rss_started as f64),
        (rss_started - rss_before) as f64 / n as f64
    );

    let tracker = Tracker::new(n);
    let t0 = Instant::now();
    let report = thread::scope(|scope| {
        let nodes = &nodes;
        let tracker = &tracker;
        scope.spawn(move || tracker.drain(nodes, t0));
        // Every node reports itself as joined; the bench expects N members alive everywhere.
        thread::sleep(Duration::from_millis(100));
        let self_events = tracker.alive[0].load(Ordering::Relaxed);
        let expected = n as i64 - 1 + self_events;

        // ---- join in batches
        let addrs: Vec<String> = nodes.iter().map(|s| s.local_addr().to_string()).collect();
        let join_errors = AtomicU64::new(0);
        let t_join = Instant::now();
        let mut first = 1;
        let (mut batch_times, mut batch_waits) = (Vec::new(), Vec::new());
        while first < n {
            let end = (first + p.batch).min(n);
            let tb = Instant::now();
            let next = AtomicU64::new(first as u64);
            thread::scope(|s| {
                for _ in 0..JOIN_WORKERS.min(end - first) {
                    s.spawn(|| loop {
                        let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                        if i >= end {
                            return;
                        }
                        let mut rng = SmallRng::seed_from_u64(i as u64);
                        let mut targets = HashSet::new();
                        while targets.len() < JOIN_FANOUT.min(first) {
                            targets.insert(rng.random_range(0..first));
                        }
                        let to: Vec<&str> = targets.iter().map(|&t| addrs[t].as_str()).collect();
                        if let Err(e) = nodes[i].join(&to, false) {
                            join_errors.fetch_add(1, Ordering::Relaxed);
                            eprintln!("node {i}: join failed: {e}");
                        }
                    });
                }
            });
            batch_times.push(tb.elapsed());
            // The next batch starts once the nodes so far see each other (or after a cap): a
            // cluster grows as its news spreads, not faster than two cores can gossip it.
            let so_far = end as i64 - 1 + self_events;
            let tw = Instant::now();
            while tw.elapsed() < BATCH_SETTLE_CAP
                && tracker.alive[..end]
                    .iter()
                    .any(|a| a.load(Ordering::Relaxed) != so_far)
            {
                thread::sleep(Duration::from_millis(50));
            }
            batch_waits.push(tw.elapsed());
            first = end;
        }
        let joins_done = t_join.elapsed();
        println!(
            "joins done in {joins_done:.2?} ({} batches, slowest {:.2?}, {} errors; waits for \
             the batches so far to converge: longest {:.2?}, {} at the cap)",
            batch_times.len(),
            batch_times.iter().max().copied().unwrap_or_default(),
            join_errors.load(Ordering::Relaxed),
            batch_waits.iter().max().copied().unwrap_or_default(),
            batch_waits
                .iter()
                .filter(|w| **w >= BATCH_SETTLE_CAP)
                .count(),
        );

        // ---- convergence
        let mut converged = None;
        let mut last_print = Instant::now();
        while t_join.elapsed() < p.converge_timeout + joins_done {
            let (lagging, min) = tracker.lagging(expected);
            if lagging == 0 {
                converged = Some(t_join.elapsed());
                break;
            }
            if last_print.elapsed() > Duration::from_secs(5) {
                println!(
                    "  {:>6.1?}: {lagging} nodes below {expected} alive (min {min}), \
                     {} failed events",
                    t_join.elapsed(),
                    tracker.total_failed()
                );
                last_print = Instant::now();
            }
            thread::sleep(Duration::from_millis(50));
        }
        let rss_converged = rss_kb();
        let heap_converged = heap_in_use_kb();
        let failed_join_phase = tracker.total_failed();
        let (lagging, min_alive) = tracker.lagging(expected);
        println!(
            "converged: {converged:.2?} after first join ({lagging} lagging, min {min_alive}); \
             RSS {} ({:.0} kB/node over baseline), heap in use {:.0} kB/node; failed events \
             so far {failed_join_phase}",
            mb(rss_converged as f64),
            (rss_converged - rss_before) as f64 / n as f64,
            (heap_converged.saturating_sub(heap_before)) as f64 / n as f64,
        );
        let sample: Vec<usize> = (0..SAMPLE.min(n)).map(|k| k * n / SAMPLE.min(n)).collect();
        let sampled_alive: Vec<usize> = sample.iter().map(|&i| alive_members(&nodes[i])).collect();
        println!("sampled observers' alive members: {sampled_alive:?}");

        // ---- settle: wait for the join news to be retransmitted away
        let t_settle = Instant::now();
        let cpu_settle0 = process_cpu();
        let mut prev = sampled_packets(nodes, &sample);
        let mut prev_t = Instant::now();
        let mut rate = f64::INFINITY;
        while t_settle.elapsed() < p.settle_cap {
            thread::sleep(Duration::from_secs(2));
            let now = sampled_packets(nodes, &sample);
            rate = (now - prev) as f64 / prev_t.elapsed().as_secs_f64() / sample.len() as f64;
            prev = now;
            prev_t = Instant::now();
            if rate <= SETTLED_PACKETS_PER_SEC {
                break;
            }
        }
        let settle = t_settle.elapsed();
        let settle_cpu = process_cpu().saturating_sub(cpu_settle0);
        println!(
            "settled in {settle:.1?} ({rate:.1} packets/s/node sampled), CPU {:.0}% of a core",
            settle_cpu.as_secs_f64() / settle.as_secs_f64() * 100.0
        );

        // ---- idle
        let failed0 = tracker.total_failed();
        let left0 = tracker.total_left();
        let (susp0, fprobe0) = sampled_suspicions(nodes, &sample);
        let packets0 = sampled_packets(nodes, &sample);
        let t_idle = Instant::now();
        let cpu0 = process_cpu();
        let node_cpu0 = node_threads_cpu();
        let mut last_print = Instant::now();
        while t_idle.elapsed() < p.idle {
            thread::sleep(Duration::from_millis(500));
            if last_print.elapsed() >= Duration::from_secs(if p.quick { 5 } else { 30 }) {
                println!(
                    "  idle {:>5.0?}: RSS {}, failed events {}",
                    t_idle.elapsed(),
                    mb(rss_kb() as f64),
                    tracker.total_failed() - failed0
                );
                last_print = Instant::now();
            }
        }
        let idle = t_idle.elapsed();
        let idle_cpu = process_cpu().saturating_sub(cpu0);
        let idle_node_cpu = node_threads_cpu().saturating_sub(node_cpu0);
        let (rss_idle, hwm, threads) = proc_status();
        let packets = sampled_packets(nodes, &sample) - packets0;
        let (susp1, fprobe1) = sampled_suspicions(nodes, &sample);
        tracker.drain_once(nodes, t0);
        let failed_idle = tracker.total_failed() - failed0;
        let left_idle = tracker.total_left() - left0;
        let (lagging_end, min_end) = tracker.lagging(expected);

        // ---- full check: every node's member list
        let t_check = Instant::now();
        // Bounded: an overloaded cluster answers `members()` slowly.
        let full: Vec<usize> = nodes
            .iter()
            .take_while(|_| t_check.elapsed() < Duration::from_secs(30))
            .map(alive_members)
            .collect();
        let full_ok = full.iter().filter(|&&a| a == n).count();
        let check_time = t_check.elapsed();
        let full_min = full.iter().min().copied().unwrap_or(0);
        let full_checked = full.len();
        tracker.stop.store(true, Ordering::Relaxed);

        Report {
            n,
            expected,
            start_time,
            joins_done,
            join_errors: join_errors.load(Ordering::Relaxed),
            converged,
            lagging,
            rss_before,
            rss_started,
            rss_converged,
            heap_converged: heap_converged.saturating_sub(heap_before),
            rss_idle,
            hwm,
            threads,
            failed_join_phase,
            sampled_alive,
            settle,
            settle_rate: rate,
            settle_cpu,
            idle,
            idle_cpu,
            idle_node_cpu,
            failed_idle,
            left_idle,
            suspicions_idle: susp1 - susp0,
            failed_probes_idle: fprobe1 - fprobe0,
            packets_per_node_sec: packets as f64 / idle.as_secs_f64() / sample.len() as f64,
            lagging_end,
            min_end,
            full_ok,
            full_min,
            full_checked,
            check_time,
            failures: tracker.failures.lock().unwrap().clone(),
            events: tracker.events.load(Ordering::Relaxed),
        }
    });

    let t_down = Instant::now();
    for node in nodes {
        let _ = node.shutdown();
    }
    let down = t_down.elapsed();
    let total = bench_start.elapsed();
    let md = report.markdown(&p, down, total);
    println!("\n{md}");
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| PathBuf::from("target"), PathBuf::from)
        .join("bench");
    let file = dir.join("density.md");
    match std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(&file, &md)) {
        Ok(()) => println!("wrote {}", file.display()),
        Err(e) => eprintln!("could not write {}: {e}", file.display()),
    }
}

struct Report {
    n: usize,
    expected: i64,
    start_time: Duration,
    joins_done: Duration,
    join_errors: u64,
    converged: Option<Duration>,
    lagging: usize,
    rss_before: u64,
    rss_started: u64,
    rss_converged: u64,
    /// Live heap (kB) over the baseline at convergence.
    heap_converged: u64,
    rss_idle: u64,
    hwm: u64,
    threads: u64,
    failed_join_phase: u64,
    sampled_alive: Vec<usize>,
    settle: Duration,
    settle_rate: f64,
    settle_cpu: Duration,
    idle: Duration,
    idle_cpu: Duration,
    idle_node_cpu: Duration,
    failed_idle: u64,
    left_idle: u64,
    suspicions_idle: u64,
    failed_probes_idle: u64,
    packets_per_node_sec: f64,
    lagging_end: usize,
    min_end: i64,
    full_ok: usize,
    full_min: usize,
    full_checked: usize,
    check_time: Duration,
    failures: Vec<(usize, String, Duration)>,
    events: u64,
}

impl Report {
    fn markdown(&self, p: &Params, down: Duration, total: Duration) -> String {
        let n = self.n as f64;
        let per_node = |kb: u64| (kb.saturating_sub(self.rss_before)) as f64 / n;
        let cores = thread::available_parallelism().map_or(0, |c| c.get());
        let pct = |d: Duration| d.as_secs_f64() / self.idle.as_secs_f64() * 100.0;
        let verdict = |ok: bool| if ok { "✅" } else { "❌" };
        let rss_ok = per_node(self.rss_idle).max(per_node(self.rss_converged)) <= 1024.0;
        let idle_ok = self.converged.is_some() && self.failed_idle == 0 && self.full_ok == self.n;
        let mut md = String::new();
        let _ = writeln!(
            md,
            "## Density: {} libserf nodes in one process ({})\n",
            self.n,
            if p.quick {
                "quick run, `BENCH_QUICK=1`"
            } else {
                "full run"
            }
        );
        let _ = writeln!(
            md,
            "{} CPUs, loopback, LAN profile, no encryption, default options; one protocol \
             thread per node ({} threads in the process).\n",
            cores, self.threads
        );
        md.push_str("| measure | value | target |\n|---|---:|---|\n");
        let mut row = |k: &str, v: String, t: &str| {
            let _ = writeln!(md, "| {k} | {v} | {t} |");
        };
        row(
            "nodes started",
            format!("{} in {:.2?}", self.n, self.start_time),
            "",
        );
        row(
            "join scheme",
            format!(
                "batches of {} nodes; each joins {JOIN_FANOUT} random nodes of earlier \
                 batches; {JOIN_WORKERS} joins in parallel; a batch starts once the nodes \
                 before it see each other alive (at most {BATCH_SETTLE_CAP:?} later)",
                p.batch
            ),
            "",
        );
        row(
            "all joins returned",
            format!("{:.1?} ({} failed)", self.joins_done, self.join_errors),
            "",
        );
        row(
            &format!("converged: every node sees {} alive", self.n),
            match self.converged {
                Some(d) => format!("{d:.1?} after the first join"),
                None => format!(
                    "not within {:?} ({} nodes short)",
                    p.converge_timeout, self.lagging
                ),
            },
            "converged",
        );
        row(
            "RSS per node, started (no peers)",
            format!("{:.0} kB", per_node(self.rss_started)),
            "",
        );
        row(
            "RSS per node, converged",
            format!("{:.0} kB", per_node(self.rss_converged)),
            &format!("≤ 1 MB {}", verdict(per_node(self.rss_converged) <= 1024.0)),
        );
        row(
            "heap in use per node, converged (live allocations, no allocator slack)",
            format!("{:.0} kB", self.heap_converged as f64 / n),
            "",
        );
        row(
            "RSS per node, end of idle",
            format!("{:.0} kB", per_node(self.rss_idle)),
            &format!("≤ 1 MB {}", verdict(per_node(self.rss_idle) <= 1024.0)),
        );
        row(
            "process RSS before / converged / end (peak)",
            format!(
                "{} / {} / {} ({})",
                mb(self.rss_before as f64),
                mb(self.rss_converged as f64),
                mb(self.rss_idle as f64),
                mb(self.hwm as f64)
            ),
            "",
        );
        row(
            "gossip settle after convergence",
            format!(
                "{:.0?} ({:.1} pkts/s/node at end), CPU {:.0}% of a core",
                self.settle,
                self.settle_rate,
                self.settle_cpu.as_secs_f64() / self.settle.as_secs_f64() * 100.0
            ),
            "",
        );
        row("idle period", format!("{:.0?}", self.idle), "");
        row(
            "idle CPU per node (node threads)",
            format!(
                "{:.3}% of a core (all nodes: {:.0}% of a core)",
                pct(self.idle_node_cpu) / n,
                pct(self.idle_node_cpu)
            ),
            "",
        );
        row(
            "idle CPU per node (whole process)",
            format!(
                "{:.3}% of a core (all: {:.0}% of a core)",
                pct(self.idle_cpu) / n,
                pct(self.idle_cpu)
            ),
            &format!(
                "fits {cores} cores {}",
                verdict(pct(self.idle_cpu) < cores as f64 * 100.0)
            ),
        );
        row(
            "packets sent per node per second, idle (sampled)",
            format!("{:.2}", self.packets_per_node_sec),
            "",
        );
        row(
            "member-failed events during idle (all observers)",
            format!("{}", self.failed_idle),
            &format!("0 {}", verdict(self.failed_idle == 0)),
        );
        row(
            "member-leave events during idle",
            format!("{}", self.left_idle),
            "0",
        );
        row(
            &format!("suspicions / failed probes during idle ({SAMPLE} sampled nodes)"),
            format!("{} / {}", self.suspicions_idle, self.failed_probes_idle),
            "",
        );
        row(
            "member-failed events during join + convergence",
            format!("{}", self.failed_join_phase),
            "",
        );
        row(
            "member lists at the end (every node's `members()`)",
            format!(
                "{}/{} nodes see {} alive (min {}), {} checked in {:.1?}",
                self.full_ok, self.n, self.n, self.full_min, self.full_checked, self.check_time
            ),
            &format!("all {}", verdict(self.full_ok == self.n)),
        );
        row(
            "verdict",
            format!(
                "RSS {} · converged, zero false failures idle {}",
                verdict(rss_ok),
                verdict(idle_ok)
            ),
            "",
        );
        row(
            "shutdown / total wall time",
            format!("{down:.1?} / {total:.0?}"),
            "",
        );
        let _ = writeln!(
            md,
            "\nSampled observers at convergence (alive members in `members()`): {:?}. \
             Event counts at the end: {} nodes off {} (min {}); {} events drained.",
            self.sampled_alive, self.lagging_end, self.expected, self.min_end, self.events
        );
        if !self.failures.is_empty() {
            md.push_str("\nFirst member-failed events (observer ← failed member, at):\n\n");
            for (obs, name, at) in self.failures.iter().take(10) {
                let _ = writeln!(md, "* node-{obs:04} ← {name} at {at:.1?}");
            }
        }
        md.push_str(
            "\n**How measured.** `benches/density.rs` (`cargo bench --bench density`; \
             `BENCH_QUICK=1` for N = 100 and 20 s idle; `DENSITY_NODES`, `DENSITY_IDLE_SECS` \
             override). Nodes are created with `Serf::create` (127.0.0.1:0, LAN profile), then \
             joined in batches. A drain thread empties every node's event queue every 20 ms and \
             keeps, per node, joins − failures − leaves: convergence is when every node's count \
             equals N (its own join included). `members()` confirms it on 20 sampled observers \
             and, after the idle period, on every node. RSS is `VmRSS` from \
             `/proc/self/status`; per node = (RSS − RSS before the first node) / N, so it \
             includes the bench's own small bookkeeping. After convergence the bench waits \
             (capped) until sampled nodes send ≤ 3 packets/s (the join news has been \
             retransmitted away), then measures the idle period: process CPU from \
             `getrusage(RUSAGE_SELF)` and the node threads' CPU from \
             `/proc/self/task/*/stat` (utime + stime of threads named `node-*`), as % of one \
             core. Failures are `member-failed` events at any observer; suspicions are the \
             sampled nodes' `memberlist.msg_suspect` counters (a single suspicion anywhere \
             reaches nearly every node, so a sample sees it).\n",
        );
        md
    }
}
