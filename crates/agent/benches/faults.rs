//! Fault scenarios side by side (issue 10): crates/agent/tests/faults.rs's scenarios, each run on our `serf`
//! agent and on HashiCorp's, all at once, each in its own network namespace with its own ten
//! agents (see crates/agent/tests/common/faults.rs). Both implementations meet the same load at the same
//! time. The table goes to stdout and to `target/bench/faults.md`.

#[path = "../../../tests/common/bench.rs"]
mod bench;

#[path = "../../../tests/common/reference.rs"]
mod reference;

#[path = "../tests/common/shipped_agent.rs"]
mod shipped_agent;

#[path = "../tests/common/faults.rs"]
mod faults;

use std::fmt::Write as _;
use std::path::Path;
use std::thread;
use std::time::Duration;

use faults::{in_netns, AGENTS};

const PHASE: Duration = Duration::from_secs(60);
/// Paired runs of the 60 % drop: its false failures vary from run to run, so one run compares
/// little.
const HEAVY_RUNS: usize = 5;
/// Scenarios besides the 60 % drop runs: 10/30 % drop, partition, stall, crash and restart.
const OTHER_SCENARIOS: usize = 4;

/// What one implementation did in every scenario.
struct Row {
    light: faults::DropOutcome,
    heavy: Vec<faults::DropOutcome>,
    split: faults::PartitionOutcome,
    stall: faults::StallOutcome,
    crash: faults::RestartOutcome,
}

fn main() {
    if !bench::selected("faults") {
        return;
    }
    let ours = shipped_agent::path();
    let theirs = reference::binary().to_path_buf();
    let started = std::time::Instant::now();
    // Two waves, so that at most ten clusters (a hundred agents) start at once on two cores:
    // more than that and agents miss the ten seconds they have to answer on their RPC port.
    let (ours_first, theirs_first) = side_by_side(&ours, &theirs, first_wave);
    let (ours_rest, theirs_rest) = side_by_side(&ours, &theirs, |bin, tag| {
        heavy_runs(bin, tag, 1..HEAVY_RUNS)
    });
    let ours_row = ours_first.with_heavy(ours_rest);
    let theirs_row = theirs_first.with_heavy(theirs_rest);
    let table = markdown(&ours_row, &theirs_row, started.elapsed());
    println!("{table}");
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("target/bench");
    std::fs::create_dir_all(&dir).expect("target/bench");
    std::fs::write(dir.join("faults.md"), table).expect("write faults.md");
}

/// Runs `wave` on our agent and on the reference at the same time, so both meet the same load.
fn side_by_side<T: Send>(
    ours: &Path,
    theirs: &Path,
    wave: impl Fn(&Path, &str) -> T + Sync,
) -> (T, T) {
    thread::scope(|s| {
        let a = s.spawn(|| wave(ours, "o"));
        let b = s.spawn(|| wave(theirs, "r"));
        (
            a.join().expect("libserf scenarios"),
            b.join().expect("reference scenarios"),
        )
    })
}

impl Row {
    fn with_heavy(mut self, more: Vec<faults::DropOutcome>) -> Row {
        self.heavy.extend(more);
        self
    }
}

/// Every scenario once for one binary, concurrently, each in its own namespace.
fn first_wave(bin: &Path, tag: &str) -> Row {
    thread::scope(|s| {
        let light = s.spawn(|| {
            let bin = bin.to_path_buf();
            let prefix = format!("{tag}drop");
            in_netns(move || faults::random_drop(&bin, &prefix, &[(10, PHASE), (30, PHASE)]))
        });
        let heavy = s.spawn(|| heavy_runs(bin, tag, 0..1));
        let split = s.spawn(|| {
            let bin = bin.to_path_buf();
            let prefix = format!("{tag}split");
            in_netns(move || faults::partition(&bin, &prefix, PHASE))
        });
        let stall = s.spawn(|| {
            let bin = bin.to_path_buf();
            let prefix = format!("{tag}stall");
            in_netns(move || faults::stall(&bin, &prefix, Duration::from_secs(15)))
        });
        let crash = s.spawn(|| {
            let bin = bin.to_path_buf();
            let prefix = format!("{tag}crash");
            in_netns(move || faults::crash_restart(&bin, &prefix))
        });
        Row {
            light: light.join().expect("drop scenario"),
            heavy: heavy.join().expect("heavy drop scenario"),
            split: split.join().expect("partition scenario"),
            stall: stall.join().expect("stall scenario"),
            crash: crash.join().expect("restart scenario"),
        }
    })
}

/// The 60 % drop runs numbered `runs` for one binary, concurrently, each in its own namespace.
fn heavy_runs(bin: &Path, tag: &str, runs: std::ops::Range<usize>) -> Vec<faults::DropOutcome> {
    thread::scope(|s| {
        let handles: Vec<_> = runs
            .map(|run| {
                s.spawn(move || {
                    let bin = bin.to_path_buf();
                    let prefix = format!("{tag}heavy{run}");
                    in_netns(move || faults::random_drop(&bin, &prefix, &[(60, PHASE)]))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("heavy drop scenario"))
            .collect()
    })
}

fn secs(d: Option<Duration>) -> String {
    d.map_or_else(
        || "never (bounded wait)".to_string(),
        |d| format!("{:.1} s", d.as_secs_f64()),
    )
}

/// The (observer, member) failures during and just after the phase that dropped `percent` %,
/// if it ran.
fn phase(o: &faults::DropOutcome, percent: u32) -> Option<&[(usize, String)]> {
    o.phases
        .iter()
        .find(|(p, _)| *p == percent)
        .map(|(_, f)| f.as_slice())
}

/// False failures in that phase, one per observer that saw one.
fn failures_at(o: &faults::DropOutcome, percent: u32) -> Option<usize> {
    phase(o, percent).map(<[_]>::len)
}

/// Distinct agents declared failed by at least one observer in that phase: the events above
/// count each of them once per observer that saw it, so better dissemination alone raises them.
fn failed_agents_at(o: &faults::DropOutcome, percent: u32) -> Option<usize> {
    phase(o, percent).map(|f| {
        f.iter()
            .map(|(_, member)| member)
            .collect::<std::collections::HashSet<_>>()
            .len()
    })
}

fn count_or_na(count: Option<usize>) -> String {
    count.map_or_else(|| "n/a".to_string(), |n| n.to_string())
}

/// `count` over runs, as "total (run 1, run 2, …)".
fn per_run(
    runs: &[faults::DropOutcome],
    count: impl Fn(&faults::DropOutcome) -> Option<usize>,
) -> String {
    let counts: Vec<Option<usize>> = runs.iter().map(count).collect();
    let each: Vec<String> = counts.iter().copied().map(count_or_na).collect();
    let total = count_or_na(counts.iter().copied().sum());
    format!("{total} ({})", each.join(", "))
}

fn markdown(ours: &Row, theirs: &Row, took: Duration) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Faults: {AGENTS} agents per scenario, libserf and reference at once\n"
    );
    let _ = writeln!(
        out,
        "Every scenario runs on both implementations at once, in two waves (every scenario with \
         the first 60 % run, then the other 60 % runs): {} hub namespaces, {} agents, each agent \
         in a namespace of its own on the hub's bridge. Drops hit every IPv4 frame between \
         agents, at random, by nftables `numgen random` on the bridge. Counts are `member-failed` \
         events recorded by the agents' own event handlers, summed over observers. Wall time \
         {:.0} s.\n",
        2 * (OTHER_SCENARIOS + HEAVY_RUNS),
        2 * (OTHER_SCENARIOS + HEAVY_RUNS) * AGENTS,
        took.as_secs_f64()
    );
    let _ = writeln!(out, "| scenario | measure | libserf | reference |");
    let _ = writeln!(out, "|---|---|---:|---:|");
    // One line: the measure taken from each implementation's outcome.
    let mut row = |scenario: &str, measure: &str, take: &dyn Fn(&Row) -> String| {
        let (a, b) = (take(ours), take(theirs));
        let _ = writeln!(out, "| {scenario} | {measure} | {a} | {b} |");
    };
    row("10 % drop, 60 s", "false member-failed events", &|r| {
        count_or_na(failures_at(&r.light, 10))
    });
    row(
        "30 % drop, 60 s",
        "false member-failed events (incl. just after)",
        &|r| count_or_na(failures_at(&r.light, 30)),
    );
    let heavy = format!("60 % drop, 60 s, {HEAVY_RUNS} runs");
    row(
        &heavy,
        "false member-failed events (incl. just after): total (per run)",
        &|r| per_run(&r.heavy, |h| failures_at(h, 60)),
    );
    row(
        &heavy,
        "agents some observer declared failed: total (per run)",
        &|r| per_run(&r.heavy, |h| failed_agents_at(h, 60)),
    );
    row(
        &heavy,
        "all alive everywhere after the drop: slowest run",
        &|r| {
            let healed: Option<Vec<Duration>> = r.heavy.iter().map(|h| h.healed_after).collect();
            secs(healed.and_then(|h| h.into_iter().max()))
        },
    );
    let pairs = AGENTS * AGENTS / 2;
    row(
        "5/5 partition, 60 s",
        "cross-cut (observer, member) pairs failed at its end",
        &|r| format!("{} of {pairs}", r.split.cross_failed),
    );
    row(
        "5/5 partition, 60 s",
        "one cluster, all alive, after the heal",
        &|r| secs(r.split.healed_after),
    );
    row(
        "SIGSTOP 15 s",
        "observers marking it failed / first after",
        &|r| {
            format!(
                "{} / {}",
                r.stall.observers_marking_failed,
                secs(r.stall.first_failed_after)
            )
        },
    );
    row("SIGSTOP 15 s", "all alive after SIGCONT", &|r| {
        secs(r.stall.back_after)
    });
    row("SIGSTOP 15 s", "healthy agents declared failed", &|r| {
        r.stall.healthy_failed.len().to_string()
    });
    row(
        "kill -9, restart from snapshot",
        "all alive after the restart",
        &|r| secs(r.crash.rejoined_after),
    );
    row(
        "kill -9, restart from snapshot",
        "user events delivered twice / new event seen",
        &|r| format!("{} / {}", r.crash.duplicates.len(), r.crash.saw_new_event),
    );
    out
}
