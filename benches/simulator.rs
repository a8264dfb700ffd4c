//! Simulator benchmark (issue 9, part 3): event dissemination and failure detection in large
//! simulated serf clusters, against the analytic epidemic model, and how fast the simulator runs
//! relative to real time.
//!
//! `cargo bench --bench simulator` (full: 1,000 nodes and the largest size up to 10,000 that fits
//! the memory and time budget), `BENCH_QUICK=1 cargo bench --bench simulator` (200 and 1,000
//! nodes). `BENCH_LARGE=<n>` forces the large size. Writes `target/bench/dissemination.svg`,
//! `target/bench/failure_detection.svg` and `target/bench/simulator.md`.
//!
//! **How the cluster is built.** Joining N nodes one by one through a seed costs O(N²) push/pull
//! traffic and then minutes of virtual time while N join intents drain from every gossip queue.
//! Instead every node is seeded directly with the state it would converge to: one push/pull
//! message listing all N members (alive, incarnation 1, each node's real meta and versions) is
//! encoded once and fed to every node as an accepted stream
//! ([`Machine::handle_stream_request`]), which merges it exactly as a periodic anti-entropy
//! exchange would. The alive broadcasts this merge queues (news everyone already has) are dropped
//! with [`Serf::clear_broadcasts`] and the member-join events drained. Seeding runs on all cores
//! before the nodes are handed to the simulator. Every node runs the LAN profile unchanged except
//! for compression, which is off (it only costs CPU in a simulator).

#[path = "../tests/common/bench.rs"]
mod bench;

#[path = "../tests/common/sim.rs"]
mod sim;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use plotters::prelude::*;
use serf_proto::memberlist::machine::Machine;
use serf_proto::memberlist::Profile;
use serf_proto::serf::{Config, Event, MemberStatus, Serf};
use serf_proto::sim::Sim;
use serf_proto::wire::memberlist::push_pull::PushPull;
use serf_proto::wire::memberlist::{stream, NodeState, PushNodeState};
use serf_proto::wire::msgpack::Bytes;

type World = Sim<Serf>;

/// LAN profile timing (memberlist `DefaultLANConfig`).
const PROBE_INTERVAL: f64 = 1.0;
const GOSSIP_INTERVAL: f64 = 0.2;
const FANOUT: f64 = 3.0;
/// Virtual time of the idle steady state whose speed is reported: long enough (≈0.3 s of wall
/// time at 1,000 nodes) that one page fault or preemption does not move the figure much.
const IDLE_VIRTUAL: Duration = Duration::from_secs(30);
const RETRANSMIT_MULT: usize = 4;
const SUSPICION_MULT: f64 = 4.0;
/// Sampling step of the dissemination and failure curves (virtual time).
const EVENT_STEP: Duration = Duration::from_millis(50);
const FAIL_STEP: Duration = Duration::from_millis(100);

fn addr(i: usize) -> SocketAddr {
    sim::node_addr(2, i)
}

fn name(i: usize) -> String {
    format!("serf-{i}")
}

fn config(i: usize) -> Config {
    let mut c = Config::new(Profile::Lan, &name(i), addr(i));
    c.memberlist.wire.compression = false;
    if std::env::var("BENCH_PUSH_PULL").is_err() {
        c.memberlist.push_pull_interval = Duration::ZERO;
    }
    c
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `f` on every element, split over all cores.
fn par_for_each<T: Send>(items: &mut [T], f: impl Fn(usize, &mut T) + Sync) {
    let chunk = items.len().div_ceil(threads()).max(1);
    std::thread::scope(|s| {
        for (c, part) in items.chunks_mut(chunk).enumerate() {
            let f = &f;
            s.spawn(move || {
                for (j, item) in part.iter_mut().enumerate() {
                    f(c * chunk + j, item);
                }
            });
        }
    });
}

/// A world of `n` serf nodes that all know each other (see the module doc).
fn build(n: usize, seed: u64) -> World {
    let mut world = World::new(seed, Instant::now());
    let now = world.now();
    let seeds: Vec<u64> = (0..n).map(|_| world.node_seed()).collect();
    let mut nodes: Vec<Option<Serf>> = (0..n).map(|_| None).collect();
    par_for_each(&mut nodes, |i, slot| {
        *slot = Some(Serf::new(config(i), now, seeds[i]).expect("valid config"));
    });
    let mut nodes: Vec<Serf> = nodes.into_iter().map(|s| s.expect("built")).collect();
    let states = nodes
        .iter()
        .map(|s| {
            let l = s.memberlist().local_node();
            PushNodeState {
                name: l.name.clone(),
                addr: Bytes(l.addr.clone()),
                port: l.port,
                meta: Some(Bytes(l.meta.clone())),
                incarnation: l.incarnation,
                state: NodeState::Alive,
                vsn: Bytes(l.vsn.to_vec()),
            }
        })
        .collect();
    let opts = nodes[0].memberlist().wire_options();
    let message = PushPull {
        join: false,
        nodes: states,
        user_state: Vec::new(),
    }
    .encode(opts.dialect);
    let framed = stream::encode(opts, &message, true, || [0; 12]);
    par_for_each(&mut nodes, |_, serf| {
        serf.handle_stream_request(now, &framed);
        serf.clear_broadcasts();
        while serf.poll_event().is_some() {}
        while serf.poll_transmit().is_some() {}
    });
    for (i, serf) in nodes.into_iter().enumerate() {
        world.add(addr(i), serf);
    }
    world
}

/// Resident memory of this process, bytes.
fn rss() -> u64 {
    proc_kb("/proc/self/status", "VmRSS:") * 1024
}

fn mem_available() -> u64 {
    proc_kb("/proc/meminfo", "MemAvailable:") * 1024
}

fn proc_kb(file: &str, key: &str) -> u64 {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// What one cluster size measured.
struct Run {
    n: usize,
    build_wall: f64,
    rss_after_build: u64,
    /// Idle steady state: virtual seconds, wall seconds.
    idle: (f64, f64),
    /// Event + failure experiments: virtual seconds, wall seconds.
    active: (f64, f64),
    /// (seconds after the event was sent, fraction of nodes that delivered it).
    dissemination: Vec<(f64, f64)>,
    duplicates: usize,
    /// (seconds after the kill, fraction of live nodes that see the victim failed).
    failure: Vec<(f64, f64)>,
    /// Seconds after the kill when some node first suspected the victim.
    first_suspect: Option<f64>,
}

fn run(n: usize, seed: u64) -> Run {
    let rss0 = rss();
    let t = Instant::now();
    let mut world = build(n, seed);
    let build_wall = t.elapsed().as_secs_f64();
    let rss_after_build = rss().saturating_sub(rss0);
    eprintln!(
        "  n={n}: built in {build_wall:.1} s, +{} MB",
        rss_after_build >> 20
    );

    // Idle steady state: probes, acks, empty gossip ticks.
    let t = Instant::now();
    world.run_for(IDLE_VIRTUAL);
    let idle = (IDLE_VIRTUAL.as_secs_f64(), t.elapsed().as_secs_f64());
    for i in 0..n {
        let s = world.machine_mut(i);
        while s.poll_event().is_some() {}
    }
    eprintln!("  n={n}: idle {:.0}x real time", idle.0 / idle.1);

    let t = Instant::now();
    let v0 = world.elapsed();
    // (a) one user event from node 0.
    let origin = 0;
    world.with_machine(origin, |s, now| {
        s.user_event(now, "bench", b"payload", false)
            .expect("event")
    });
    let sent = world.elapsed();
    let mut got = vec![0usize; n];
    let mut informed = 0usize;
    let mut dissemination = vec![(0.0, 0.0)];
    let count = |world: &mut World, got: &mut [usize], informed: &mut usize| {
        for (i, g) in got.iter_mut().enumerate() {
            let s = world.machine_mut(i);
            let k = std::iter::from_fn(|| s.poll_event())
                .filter(|e| matches!(e, Event::User(u) if u.name == "bench"))
                .count();
            if *g == 0 && k > 0 {
                *informed += 1;
            }
            *g += k;
        }
    };
    count(&mut world, &mut got, &mut informed);
    dissemination[0].1 = informed as f64 / n as f64;
    while informed < n && world.elapsed() - sent < Duration::from_secs(30) {
        world.run_for(EVENT_STEP);
        count(&mut world, &mut got, &mut informed);
        let at = (world.elapsed() - sent).as_secs_f64();
        dissemination.push((at, informed as f64 / n as f64));
    }
    // Let the retransmissions die out, then check nobody delivered it twice.
    world.run_for(Duration::from_secs(5));
    count(&mut world, &mut got, &mut informed);
    let duplicates = got.iter().filter(|&&g| g > 1).count();

    // (b) kill one node; watch the others mark it failed.
    let victim = n / 2;
    let victim_name = name(victim);
    world.kill(victim);
    let killed = world.elapsed();
    let live = n - 1;
    let mut failure = vec![(0.0, 0.0)];
    let mut first_suspect = None;
    let limit = Duration::from_secs_f64(suspicion_max(n) + 30.0);
    loop {
        world.run_for(FAIL_STEP);
        let at = (world.elapsed() - killed).as_secs_f64();
        let mut failed = 0;
        let mut suspect = false;
        for i in (0..n).filter(|&i| i != victim) {
            let s = world.machine(i);
            if s.member(&victim_name).map(|m| m.status) == Some(MemberStatus::Failed) {
                failed += 1;
            }
            if first_suspect.is_none() {
                let node = s.memberlist().node(&victim_name.as_str().into());
                suspect |= node.is_some_and(|m| m.state != NodeState::Alive);
            }
        }
        if suspect {
            first_suspect = Some(at);
        }
        failure.push((at, failed as f64 / live as f64));
        if failed == live || world.elapsed() - killed >= limit {
            break;
        }
    }
    let active = (
        (world.elapsed() - v0).as_secs_f64(),
        t.elapsed().as_secs_f64(),
    );
    eprintln!("  n={n}: experiments {:.0}x real time", active.0 / active.1);
    Run {
        n,
        build_wall,
        rss_after_build,
        idle,
        active,
        dissemination,
        duplicates,
        failure,
        first_suspect,
    }
}

// ---------------------------------------------------------------------------------------------
// Analytic models

/// Serf's convergence simulator (website `_simulator.js`): infected fraction after `t` seconds,
/// contact = fanout/N · 0.5, infected(x) = N / (1 + (N+1)·e^(−contact·N·x)), x in gossip rounds.
fn serf_model(n: usize, t: f64) -> f64 {
    if t < 0.0 {
        return 0.0;
    }
    let x = t / GOSSIP_INTERVAL;
    1.0 / (1.0 + (n as f64 + 1.0) * (-FANOUT * 0.5 * x).exp())
}

/// memberlist's retransmit limit: mult × ⌈log10(N+1)⌉.
fn retransmit_limit(n: usize) -> usize {
    RETRANSMIT_MULT * (n.checked_ilog10().map_or(0, |d| d as usize + 1))
}

/// Mean-field push gossip as memberlist does it: every gossip round each node holding the
/// message sends it to `FANOUT` random peers, and holds it for ⌈limit/fanout⌉ rounds (each peer
/// packet counts one transmit). Returns the informed fraction after each round.
fn push_model(n: usize, rounds: usize) -> Vec<f64> {
    let nf = n as f64;
    let hold = retransmit_limit(n).div_ceil(FANOUT as usize).max(1);
    let mut new_per_round = vec![1.0f64];
    let mut informed = 1.0f64;
    let mut out = vec![informed / nf];
    for r in 0..rounds {
        let active: f64 = new_per_round[r.saturating_sub(hold - 1)..=r].iter().sum();
        let p_hit = 1.0 - (1.0 - 1.0 / (nf - 1.0)).powf(FANOUT * active);
        let new = (nf - informed) * p_hit;
        informed += new;
        new_per_round.push(new);
        out.push(informed / nf);
    }
    out
}

/// memberlist's suspicion timeout bounds (seconds): Min = α·max(1, log10 N)·T, Max = 6·Min.
fn suspicion_min(n: usize) -> f64 {
    SUSPICION_MULT * (n as f64).log10().max(1.0) * PROBE_INTERVAL
}

fn suspicion_max(n: usize) -> f64 {
    6.0 * suspicion_min(n)
}

/// Expected first detection (SWIM §3.1): e/(e−1)·T.
fn first_detection() -> f64 {
    let e = std::f64::consts::E;
    e / (e - 1.0) * PROBE_INTERVAL
}

/// Expected fraction that marks the dead node failed `t` s after the kill: the first suspicion
/// after e/(e−1)·T, its timer at Min (the K=2 confirmations arrive within a few periods, well
/// before Min), then the dead message spreads as the Serf model says.
fn failure_model(n: usize, t: f64) -> f64 {
    serf_model(n, t - first_detection() - suspicion_min(n))
}

/// First time `curve` reaches `frac`.
fn time_to(curve: &[(f64, f64)], frac: f64) -> Option<f64> {
    curve.iter().find(|(_, f)| *f >= frac).map(|(t, _)| *t)
}

fn model_time_to(model: impl Fn(f64) -> f64, frac: f64, step: f64, max: f64) -> Option<f64> {
    let mut t = 0.0;
    while t <= max {
        if model(t) >= frac {
            return Some(t);
        }
        t += step;
    }
    None
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or("—".to_string(), |v| format!("{v:.2} s"))
}

// ---------------------------------------------------------------------------------------------
// Plots

const COLORS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

struct Series {
    label: String,
    points: Vec<(f64, f64)>,
    color: RGBAColor,
    dashed: bool,
}

fn plot(
    path: &Path,
    title: &str,
    x_label: &str,
    x_max: f64,
    series: &[Series],
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (960, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..x_max, 0.0..1.02)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc("fraction of nodes")
        .draw()?;
    for s in series {
        let style = s.color.stroke_width(2);
        let pts = s.points.iter().copied().filter(|(x, _)| *x <= x_max);
        if s.dashed {
            chart
                .draw_series(DashedLineSeries::new(pts, 6, 4, style))?
                .label(&s.label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        } else {
            chart
                .draw_series(LineSeries::new(pts, style))?
                .label(&s.label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

fn main() {
    if !bench::selected("simulator") {
        return;
    }
    let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    let seed = sim::seed(9);
    let out_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&out_dir).expect("target/bench");
    let started = Instant::now();
    let mem0 = mem_available();

    let mut runs = Vec::new();
    let small = if quick { 200 } else { 1000 };
    eprintln!("simulator bench: n={small}");
    let first = run(small, seed);
    // Size the large run from what the first one cost: state is O(N²) (every node keeps every
    // member), seeding is O(N²), simulating is O(N) per virtual second.
    let target = 10_000usize;
    let sq = |n: usize| (n * n) as f64;
    let bytes_per_pair = first.rss_after_build as f64 / sq(first.n);
    let build_per_pair = first.build_wall / sq(first.n);
    let mem_cap = ((mem0 as f64 * 0.7) / bytes_per_pair.max(1.0)).sqrt() as usize;
    // ~6 minutes of wall time for the large size: seeding plus ~90 virtual seconds.
    let wall_per_node_vs =
        (first.idle.1 + first.active.1) / (first.idle.0 + first.active.0) / first.n as f64;
    let time_cap = {
        let budget = 360.0;
        let mut n = target;
        while n > small
            && sq(n) * build_per_pair
                + wall_per_node_vs
                    * n as f64
                    * (IDLE_VIRTUAL.as_secs_f64() + 10.0 + suspicion_max(n).min(40.0) + 20.0)
                > budget
        {
            n -= 500;
        }
        n
    };
    let forced = std::env::var("BENCH_LARGE")
        .ok()
        .and_then(|s| s.parse().ok());
    let large = if quick {
        1000
    } else {
        forced.unwrap_or_else(|| target.min(mem_cap).min(time_cap) / 500 * 500)
    };
    let large_why = format!(
        "first run: {:.0} B of RSS per (node, member) pair, {:.2} µs of seeding per pair; \
         memory cap (70 % of {} MB available) ≈ {mem_cap} nodes, time cap (≈6 min) ≈ {time_cap} nodes{}",
        bytes_per_pair,
        build_per_pair * 1e6,
        mem0 >> 20,
        if forced.is_some() { "; size forced by BENCH_LARGE" } else { "" }
    );
    eprintln!("simulator bench: n={large} ({large_why})");
    runs.push(first);
    if large != small {
        runs.push(run(large, seed + 1));
    }

    // Plots.
    let mut dis = Vec::new();
    let mut fail = Vec::new();
    for (k, r) in runs.iter().enumerate() {
        let base = COLORS[k % COLORS.len()];
        let color = base.to_rgba();
        dis.push(Series {
            label: format!("measured, N={}", r.n),
            points: r.dissemination.clone(),
            color,
            dashed: false,
        });
        let model: Vec<(f64, f64)> = (0..=400)
            .map(|i| i as f64 * 0.025)
            .map(|t| (t, serf_model(r.n, t)))
            .collect();
        dis.push(Series {
            label: format!("Serf model, N={}", r.n),
            points: model,
            color,
            dashed: true,
        });
        let push: Vec<(f64, f64)> = push_model(r.n, 50)
            .into_iter()
            .enumerate()
            .map(|(i, f)| (i as f64 * GOSSIP_INTERVAL, f))
            .collect();
        dis.push(Series {
            label: format!(
                "push mean-field (limit {}), N={}",
                retransmit_limit(r.n),
                r.n
            ),
            points: push,
            color: base.mix(0.45),
            dashed: true,
        });
        fail.push(Series {
            label: format!("measured, N={}", r.n),
            points: r.failure.clone(),
            color,
            dashed: false,
        });
        let model: Vec<(f64, f64)> = (0..=1200)
            .map(|i| i as f64 * 0.05)
            .map(|t| (t, failure_model(r.n, t)))
            .collect();
        fail.push(Series {
            label: format!("model e/(e−1)·T + Min + Serf spread, N={}", r.n),
            points: model,
            color,
            dashed: true,
        });
    }
    let dis_max = runs
        .iter()
        .filter_map(|r| r.dissemination.last().map(|p| p.0))
        .fold(3.0f64, f64::max)
        .min(10.0);
    let fail_max = runs
        .iter()
        .filter_map(|r| r.failure.last().map(|p| p.0))
        .fold(20.0f64, f64::max)
        + 2.0;
    let dis_svg = out_dir.join("dissemination.svg");
    let fail_svg = out_dir.join("failure_detection.svg");
    if let Err(e) = plot(
        &dis_svg,
        "User event dissemination (LAN profile, one event from one node)",
        "seconds after the event was sent",
        dis_max,
        &dis,
    ) {
        eprintln!("plot {}: {e}", dis_svg.display());
    }
    if let Err(e) = plot(
        &fail_svg,
        "Failure detection (LAN profile, one node killed)",
        "seconds after the kill",
        fail_max,
        &fail,
    ) {
        eprintln!("plot {}: {e}", fail_svg.display());
    }

    // Report.
    let mut md = String::new();
    let _ = writeln!(
        md,
        "## Simulator: dissemination, failure detection, speed\n"
    );
    let _ = writeln!(
        md,
        "`cargo bench --bench simulator`{} — seed {seed}, LAN profile (compression off), \
         {} cores, total wall time {:.0} s.\n",
        if quick { " with `BENCH_QUICK=1`" } else { "" },
        threads(),
        started.elapsed().as_secs_f64()
    );
    let _ = writeln!(md, "Large size: {large_why}.\n");
    let _ = writeln!(
        md,
        "| nodes | seeding (wall) | RSS for the world | idle: virtual / wall | idle speed | \
         experiments: virtual / wall | experiments speed |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|");
    for r in &runs {
        let _ = writeln!(
            md,
            "| {} | {:.1} s | {} MB | {:.0} s / {:.2} s | **{:.0}×** | {:.1} s / {:.2} s | **{:.0}×** |",
            r.n,
            r.build_wall,
            r.rss_after_build >> 20,
            r.idle.0,
            r.idle.1,
            r.idle.0 / r.idle.1,
            r.active.0,
            r.active.1,
            r.active.0 / r.active.1,
        );
    }
    let _ = writeln!(
        md,
        "\nTarget: ≥ 100× real time at 1,000 nodes. \"Idle\" is steady state (probes, acks); \
         \"experiments\" covers the event, its retransmissions, the kill and the detection.\n"
    );
    let _ = writeln!(
        md,
        "### Dissemination of one user event ([SVG](dissemination.svg))\n\n\
         Fraction of nodes that delivered the event, sampled every {} ms of virtual time. Models: \
         Serf's simulator formula (fanout 3, 200 ms) and a mean-field push model with memberlist's \
         retransmit limit.\n",
        EVENT_STEP.as_millis()
    );
    let _ = writeln!(
        md,
        "| nodes | 50 % measured | 50 % Serf model | 99 % measured | 99 % Serf model | 100 % measured | \
         100 % Serf model (< 0.5 node left) | duplicates |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
    for r in &runs {
        let m = |f| model_time_to(|t| serf_model(r.n, t), f, 0.005, 60.0);
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.n,
            fmt_opt(time_to(&r.dissemination, 0.5)),
            fmt_opt(m(0.5)),
            fmt_opt(time_to(&r.dissemination, 0.99)),
            fmt_opt(m(0.99)),
            fmt_opt(time_to(&r.dissemination, 1.0)),
            fmt_opt(m(1.0 - 0.5 / r.n as f64)),
            r.duplicates
        );
    }
    let _ = writeln!(
        md,
        "\n### Failure detection of one killed node ([SVG](failure_detection.svg))\n\n\
         Fraction of live nodes whose member list shows the victim `failed`, sampled every {} ms. \
         Model: first detection after e/(e−1)·T = {:.2} s, suspicion timeout Min = \
         4·max(1, log10 N)·T, then the dead message spreads per the Serf formula.\n",
        FAIL_STEP.as_millis(),
        first_detection()
    );
    let _ = writeln!(
        md,
        "| nodes | first suspicion measured | first detection model | suspicion Min / Max | \
         50 % measured | 50 % model | 99 % measured | 99 % model | 100 % measured | 100 % model |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|");
    for r in &runs {
        let m = |f| model_time_to(|t| failure_model(r.n, t), f, 0.01, 300.0);
        let _ = writeln!(
            md,
            "| {} | {} | {:.2} s | {:.0} s / {:.0} s | {} | {} | {} | {} | {} | {} |",
            r.n,
            fmt_opt(r.first_suspect),
            first_detection(),
            suspicion_min(r.n),
            suspicion_max(r.n),
            fmt_opt(time_to(&r.failure, 0.5)),
            fmt_opt(m(0.5)),
            fmt_opt(time_to(&r.failure, 0.99)),
            fmt_opt(m(0.99)),
            fmt_opt(time_to(&r.failure, 1.0)),
            fmt_opt(m(1.0 - 0.5 / r.n as f64)),
        );
    }
    let md_path = out_dir.join("simulator.md");
    std::fs::write(&md_path, &md).expect("write simulator.md");
    println!("{md}");
    println!(
        "wrote {}, {}, {}",
        md_path.display(),
        dis_svg.display(),
        fail_svg.display()
    );
}
