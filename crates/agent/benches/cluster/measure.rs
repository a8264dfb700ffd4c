//! One run of one implementation at one size, phase by phase: launch and join, the idle window,
//! user event latency, failure detection and graceful leave, each into a cell of [`RunResult`]
//! that holds either a value or why there is none.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::agents::{rpc_of, Cluster, Run};
use crate::config::{Binaries, Config, Impl};
use crate::netns::{Counter, NetNs};
use crate::procfs::{
    cpu_ns_between, host_cpu, mean_mb, psi_total, rss_parts, thread_cpu_ns, udp_errors, Cell,
    RssPart,
};

pub(crate) struct RunResult {
    pub(crate) imp: Impl,
    pub(crate) n: usize,
    pub(crate) join: Cell,
    pub(crate) ev_p50: Cell,
    pub(crate) ev_p99: Cell,
    pub(crate) ev_max: Cell,
    pub(crate) fail: Cell,
    pub(crate) leave: Cell,
    pub(crate) cpu: Cell,
    pub(crate) rss: Cell,
    pub(crate) pss: Cell,
    /// Mean resident kB per [`RssPart`], when every agent's smaps could be read.
    pub(crate) rss_parts: Option<[f64; RssPart::ALL.len()]>,
    pub(crate) udp_pps: Cell,
    pub(crate) udp_bps: Cell,
    pub(crate) tcp_bps: Cell,
    pub(crate) notes: Vec<String>,
    /// CPU used by processes other than the agents during the idle window, in cores.
    foreign: Option<f64>,
    /// /proc/pressure/cpu "some" stall share over the whole run, in %.
    psi: Option<f64>,
}

impl RunResult {
    pub(crate) fn failed(imp: Impl, n: usize, why: &str) -> RunResult {
        let e = || Err(why.to_string());
        RunResult {
            imp,
            n,
            join: e(),
            ev_p50: e(),
            ev_p99: e(),
            ev_max: e(),
            fail: e(),
            leave: e(),
            cpu: e(),
            rss: e(),
            pss: e(),
            rss_parts: None,
            udp_pps: e(),
            udp_bps: e(),
            tcp_bps: e(),
            notes: vec![why.to_string()],
            foreign: None,
            psi: None,
        }
    }
}

/// [`rss_parts`] averaged over `pids`, or `None` unless every agent could be read.
fn mean_rss_parts(pids: &[u32]) -> Option<[f64; RssPart::ALL.len()]> {
    let mut sum = [0.0; RssPart::ALL.len()];
    for &pid in pids {
        for (total, kb) in sum.iter_mut().zip(rss_parts(pid)?) {
            *total += kb as f64 / pids.len() as f64;
        }
    }
    Some(sum)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub(crate) fn run_one(cfg: &Config, bins: &Binaries, imp: Impl, n: usize) -> RunResult {
    let agent_bin = match bins.agent(imp) {
        Ok(p) => p.to_path_buf(),
        Err(e) => return RunResult::failed(imp, n, &e),
    };
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .join("target/bench/cluster-tmp")
        .join(format!("{}-{n}", imp.label()));
    let _ = fs::remove_dir_all(&dir);
    if let Err(e) = fs::create_dir_all(&dir) {
        return RunResult::failed(imp, n, &format!("mkdir: {e}"));
    }
    let ns = match NetNs::create() {
        Ok(ns) => ns,
        Err(e) => return RunResult::failed(imp, n, &format!("netns: {e}")),
    };
    let run = Run {
        cfg,
        ns,
        dir,
        agent_bin,
        observer_bin: bins.observer().to_path_buf(),
        handler: bins.handler.clone(),
        n,
    };
    let mut res = RunResult::failed(imp, n, "not reached");
    res.notes.clear();
    let psi_a = psi_total();
    let wall = Instant::now();
    let mut cluster = Cluster {
        agents: Vec::with_capacity(n),
    };
    measure(&run, &mut cluster, &mut res);
    if let (Some(a), Some(b)) = (psi_a, psi_total()) {
        let pct = (b - a) as f64 / 1e4 / wall.elapsed().as_secs_f64();
        res.psi = Some(pct);
        res.notes
            .push(format!("CPU pressure (PSI some) over the run {pct:.0} %"));
    }
    if let Some(pid) = cluster.pid(0) {
        if let Some((inerr, rcvbuf, _)) = udp_errors(pid) {
            res.notes.push(format!(
                "kernel UDP InErrors={inerr} RcvbufErrors={rcvbuf} (whole run)"
            ));
        }
    }
    drop(cluster);
    let drops = {
        let ns = run.ns;
        let d = ns.drops.clone();
        drop(ns);
        d.lock().map(|d| *d).unwrap_or(0)
    };
    if drops > 0 {
        res.notes
            .push(format!("capture socket dropped {drops} packets"));
    }
    res
}

fn measure(run: &Run, cluster: &mut Cluster, res: &mut RunResult) {
    let cfg = run.cfg;
    let n = run.n;
    let victim = n - 1;
    let leaver = n - 2;
    // Observers: up to `cfg.observers` nodes spread over 0..n-2 (never the victim or leaver).
    let pool = n - 2;
    let k = cfg.observers.min(pool);
    let observers: Vec<usize> = (0..k).map(|j| j * pool / k).collect();
    res.notes.push(format!(
        "observers: {}",
        observers
            .iter()
            .map(|o| format!("n{o}"))
            .collect::<Vec<_>>()
            .join(",")
    ));

    // --- launch and join ---------------------------------------------------------------------
    match run.spawn_agent(0) {
        Ok(c) => cluster.agents.push(Some(c)),
        Err(e) => {
            *res = RunResult::failed(res.imp, n, &e);
            return;
        }
    }
    let seed_ready = run.poll_until(&[0], &[], Instant::now(), Duration::from_secs(10), |m| {
        !m.is_empty()
    });
    if let Err(e) = seed_ready {
        *res = RunResult::failed(res.imp, n, &format!("seed not ready: {e}"));
        return;
    }
    let mut last_launch = Instant::now();
    for i in 1..n {
        match run.spawn_agent(i) {
            Ok(c) => cluster.agents.push(Some(c)),
            Err(e) => {
                *res = RunResult::failed(res.imp, n, &e);
                return;
            }
        }
        last_launch = Instant::now();
        if i % cfg.batch == 0 && i + 1 < n {
            thread::sleep(cfg.batch_pause);
        }
    }
    let alive = ["-status=alive".to_string()];
    res.join = run
        .poll_until(&observers, &alive, last_launch, cfg.join_timeout, |m| {
            m.iter().filter(|(_, s)| s == "alive").count() >= n
        })
        .map(|v| v.iter().copied().fold(0.0, f64::max));
    let dead = cluster.exited();
    if !dead.is_empty() {
        res.notes.push(format!("agents exited early: {dead:?}"));
    }
    if let Err(e) = &res.join {
        res.notes.push(format!("join incomplete: {e}"));
    }

    // --- idle window ---------------------------------------------------------------------------
    thread::sleep(cfg.settle);
    let pids: Vec<u32> = (0..n).filter_map(|i| cluster.pid(i)).collect();
    let t_a = Instant::now();
    let host_a = host_cpu();
    let cpu_a: Vec<Option<HashMap<u32, u64>>> = pids.iter().map(|&p| thread_cpu_ns(p)).collect();
    let pk_a = run.ns.snapshot();
    thread::sleep(cfg.idle);
    let cpu_b: Vec<Option<HashMap<u32, u64>>> = pids.iter().map(|&p| thread_cpu_ns(p)).collect();
    let pk_b = run.ns.snapshot();
    let secs = t_a.elapsed().as_secs_f64();
    let host_b = host_cpu();
    let cpu: Vec<f64> = cpu_a
        .iter()
        .zip(&cpu_b)
        .filter_map(|(a, b)| {
            Some(cpu_ns_between(a.as_ref()?, b.as_ref()?) as f64 / 1e9 / secs * 100.0)
        })
        .collect();
    res.cpu = if cpu.len() == n {
        Ok(cpu.iter().sum::<f64>() / n as f64)
    } else {
        Err(format!("cpu read for {}/{n} agents", cpu.len()))
    };
    if let (Some(a), Some(b)) = (host_a, host_b) {
        let ncpu = thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let host = (b.0 - a.0) as f64 / (b.1 - a.1).max(1) as f64 * ncpu;
        let agents = cpu.iter().sum::<f64>() / 100.0;
        let other = (host - agents).max(0.0);
        res.foreign = Some(other);
        res.notes.push(format!(
            "idle window host CPU {host:.2} cores, agents {agents:.2}, other processes {other:.2}"
        ));
    }
    if let Some(mx) = cpu.iter().copied().reduce(f64::max) {
        res.notes.push(format!("idle CPU max agent {mx:.2} %"));
    }
    res.rss = mean_mb(&pids, "status", "VmRSS");
    res.pss = mean_mb(&pids, "smaps_rollup", "Pss");
    res.rss_parts = mean_rss_parts(&pids);
    let mut sum = Counter::default();
    let mut senders = 0;
    let mut max_pps: f64 = 0.0;
    for (ip, b) in &pk_b {
        let a = pk_a.get(ip).copied().unwrap_or_default();
        sum.udp_pkts += b.udp_pkts - a.udp_pkts;
        sum.udp_bytes += b.udp_bytes - a.udp_bytes;
        sum.tcp_bytes += b.tcp_bytes - a.tcp_bytes;
        if b.udp_pkts > a.udp_pkts {
            senders += 1;
        }
        max_pps = max_pps.max((b.udp_pkts - a.udp_pkts) as f64 / secs);
    }
    if senders == 0 {
        res.udp_pps = Err("no gossip packets captured".into());
        res.udp_bps = Err("no gossip packets captured".into());
        res.tcp_bps = Err("no gossip packets captured".into());
    } else {
        res.udp_pps = Ok(sum.udp_pkts as f64 / n as f64 / secs);
        res.udp_bps = Ok(sum.udp_bytes as f64 / n as f64 / secs);
        res.tcp_bps = Ok(sum.tcp_bytes as f64 / n as f64 / secs);
        res.notes.push(format!(
            "idle window {secs:.1} s: {senders}/{n} agents sent UDP, max {max_pps:.2} pkt/s per agent"
        ));
    }

    // --- user events ---------------------------------------------------------------------------
    let ev = measure_events(run, cluster, res);
    match ev {
        Ok((p50, p99, max)) => {
            res.ev_p50 = Ok(p50);
            res.ev_p99 = Ok(p99);
            res.ev_max = Ok(max);
        }
        Err(e) => {
            res.ev_p50 = Err(e.clone());
            res.ev_p99 = Err(e.clone());
            res.ev_max = Err(e);
        }
    }

    // --- kill -9 -------------------------------------------------------------------------------
    let t0 = Instant::now();
    res.fail = match cluster.kill9(victim) {
        Err(e) => Err(e),
        Ok(()) => {
            let name = format!("n{victim}");
            let filter = [format!("-name={name}")];
            run.poll_until(&observers, &filter, t0, cfg.fail_timeout, |m| {
                m.iter().any(|(nm, s)| *nm == name && s == "failed")
            })
            .map(|v| {
                let first = v.iter().copied().fold(f64::INFINITY, f64::min);
                res.notes.push(format!(
                    "failure seen by the first observer after {first:.2} s"
                ));
                v.iter().copied().fold(0.0, f64::max)
            })
        }
    };

    // --- graceful leave ------------------------------------------------------------------------
    let t0 = Instant::now();
    res.leave = match run.control(&["leave".into(), format!("-rpc-addr={}", rpc_of(leaver))]) {
        Err(e) => Err(e),
        Ok(mut g) => {
            let name = format!("n{leaver}");
            let filter = [format!("-name={name}")];
            let r = run
                .poll_until(&observers, &filter, t0, cfg.leave_timeout, |m| {
                    m.iter().any(|(nm, s)| *nm == name && s == "left")
                })
                .map(|v| v.iter().copied().fold(0.0, f64::max));
            match g.wait_timeout(Duration::from_secs(10)) {
                Ok(true) => {}
                Ok(false) => res.notes.push("serf leave exited non-zero".into()),
                Err(e) => res.notes.push(format!("serf leave: {e}")),
            }
            r
        }
    };
}

/// Sends `cfg.events` user events (coalescing off) and returns p50/p99/max latency in seconds.
fn measure_events(
    run: &Run,
    cluster: &mut Cluster,
    res: &mut RunResult,
) -> Result<(f64, f64, f64), String> {
    let cfg = run.cfg;
    let n = run.n;
    let pool = n - 2;
    let _ = fs::remove_file(run.events_log());
    let mut sent: Vec<(String, usize, f64)> = Vec::new();
    let mut send_errors = Vec::new();
    for k in 0..cfg.events {
        let from = (k * 7) % pool;
        let name = format!("bench{k}");
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let tick = Instant::now();
        let args = [
            "event".to_string(),
            "-coalesce=false".into(),
            format!("-rpc-addr={}", rpc_of(from)),
            name.clone(),
        ];
        match run
            .control(&args)
            .and_then(|mut g| g.wait_timeout(Duration::from_secs(5)))
        {
            Ok(true) => sent.push((name, from, t)),
            Ok(false) => send_errors.push(format!("{name}: serf event failed")),
            Err(e) => send_errors.push(format!("{name}: {e}")),
        }
        let spent = tick.elapsed();
        if spent < cfg.event_spacing {
            thread::sleep(cfg.event_spacing - spent);
        }
    }
    if !send_errors.is_empty() {
        res.notes
            .push(format!("event send errors: {}", send_errors.join("; ")));
    }
    if sent.is_empty() {
        return Err("no event sent".into());
    }
    let alive: HashSet<usize> = (0..n).filter(|&i| cluster.pid(i).is_some()).collect();
    let expected = sent.len() * (alive.len() - 1);
    let deadline = Instant::now() + cfg.event_tail;
    let receipts = loop {
        let r = read_receipts(&run.events_log());
        let got = sent
            .iter()
            .map(|(name, from, _)| {
                r.get(name)
                    .map(|m| {
                        m.keys()
                            .filter(|&&i| i != *from && alive.contains(&i))
                            .count()
                    })
                    .unwrap_or(0)
            })
            .sum::<usize>();
        if got >= expected || Instant::now() >= deadline {
            break r;
        }
        thread::sleep(Duration::from_millis(100));
    };
    let mut lat = Vec::with_capacity(expected);
    for (name, from, t) in &sent {
        if let Some(m) = receipts.get(name) {
            for (&i, &rt) in m {
                if i != *from && alive.contains(&i) {
                    lat.push(rt - t);
                }
            }
        }
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    if lat.len() < expected {
        let missing = expected - lat.len();
        res.notes.push(format!(
            "events: {missing}/{expected} deliveries missing after {:.0} s tail",
            cfg.event_tail.as_secs_f64()
        ));
        return Err(format!("{missing}/{expected} deliveries missing"));
    }
    res.notes.push(format!(
        "events: {} x {} receivers, send via CLI included",
        sent.len(),
        alive.len() - 1
    ));
    Ok((
        percentile(&lat, 50.0),
        percentile(&lat, 99.0),
        *lat.last().unwrap_or(&f64::NAN),
    ))
}

/// event name -> node index -> first receipt (epoch seconds).
fn read_receipts(path: &Path) -> HashMap<String, HashMap<usize, f64>> {
    let mut out: HashMap<String, HashMap<usize, f64>> = HashMap::new();
    let text = fs::read_to_string(path).unwrap_or_default();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() != 3 {
            continue;
        }
        let (Ok(ns), Some(Ok(i))) = (
            f[1].parse::<u128>(),
            f[2].strip_prefix('n').map(str::parse::<usize>),
        ) else {
            continue;
        };
        let t = ns as f64 / 1e9;
        let e = out
            .entry(f[0].to_string())
            .or_default()
            .entry(i)
            .or_insert(t);
        if t < *e {
            *e = t;
        }
    }
    out
}
