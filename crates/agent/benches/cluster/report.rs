//! The report: the Markdown table of every metric per size, reference against libserf with the
//! ratio and the anchors, preceded by the setup and followed by each run's notes.

use std::fmt::Write as _;
use std::fs;
use std::process::Command;
use std::thread;
use std::time::Duration;

use crate::config::{version_of, Binaries, Config, Impl};
use crate::measure::RunResult;
use crate::procfs::{Cell, RssPart};

fn fmt_cell(c: &Cell, digits: usize) -> String {
    match c {
        Ok(v) => format!("{v:.digits$}"),
        Err(e) => format!("n/a ({e})"),
    }
}

pub(crate) fn render(
    cfg: &Config,
    bins: &Binaries,
    results: &[RunResult],
    took: Duration,
) -> String {
    let mut s = String::new();
    let model = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "?".into());
    let nproc = thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| k.trim().to_string())
        .unwrap_or_default();
    let date = Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d %H:%M:%S UTC")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|d| d.trim().to_string())
        .unwrap_or_default();
    let _ = writeln!(s, "## Cluster benchmark: libserf vs reference serf agent\n");
    let _ = writeln!(
        s,
        "- date: {date}; machine: {nproc} CPUs, {model}; kernel {kernel}; mode: {}; one run per cell; total {:.0} s",
        if cfg.quick { "BENCH_QUICK" } else { "full" },
        took.as_secs_f64()
    );
    let _ = writeln!(
        s,
        "- reference: `{}` ({}); libserf: `{}` ({})",
        bins.reference
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "missing".into()),
        bins.reference
            .as_deref()
            .map(version_of)
            .unwrap_or_default(),
        bins.libserf.display(),
        version_of(&bins.libserf)
    );
    let _ = writeln!(
        s,
        "- agent i (own network namespace per run, loopback only, GOMAXPROCS=1, nice 0; harness nice -5): \
         `serf agent -node=n<i> -bind=127.0.<i/250>.<i%250+2>:7946 -rpc-addr=<same ip>:7373 -profile=lan -log-level=info \
         -event-handler 'user=<bench exe> --cluster-handler <log>'` and, for i>0, \
         `-retry-join=127.0.0.2:7946 -retry-interval=1s`; seed first, then the rest in batches of {} every {} ms",
        cfg.batch,
        cfg.batch_pause.as_millis()
    );
    let _ = writeln!(
        s,
        "- observers: up to {} agents spread over n0..n(N-3), polled every {} ms in parallel with the reference CLI \
         `serf members -format=json -rpc-addr=… [-status=alive | -name=nX]` (same client for both); \
         join = last launch → every observer lists N alive; failure = `kill -9` n(N-1) → every observer lists it failed; \
         leave = `serf leave` on n(N-2) → every observer lists it left",
        cfg.observers,
        cfg.poll_every.as_millis()
    );
    let _ = writeln!(
        s,
        "- events: {} × `serf event -coalesce=false -rpc-addr=<rotating sender> bench<k>` {} ms apart; latency = handler's \
         wall-clock receipt − time before the CLI was spawned, over every (receiver ≠ sender, event); tail wait {} s",
        cfg.events,
        cfg.event_spacing.as_millis(),
        cfg.event_tail.as_secs()
    );
    let _ = writeln!(
        s,
        "- idle window {} s, starting {} s after join: CPU = Δ(on-CPU ns of every thread, schedstat) of each agent / window (mean, % of one core); \
         RSS = mean VmRSS at the end, PSS = mean Pss of smaps_rollup (shared pages divided among the processes sharing them); UDP = outgoing IPv4 datagrams with source port 7946 seen on `lo` by an AF_PACKET \
         socket in the namespace, total / N / s (bytes = UDP payload); TCP = push-pull payload bytes from port 7946",
        cfg.idle.as_secs(),
        cfg.settle.as_secs()
    );
    let _ = writeln!(
        s,
        "- anchors (reference on 2 cores, N=50, LAN, from the issue): RSS 14.6 MB, idle CPU 0.22 %, 2.0 UDP pkt/s, \
         join 1.4 s, event max 0.34 s, failure detection 9.8 s\n"
    );
    let _ = writeln!(
        s,
        "| metric | N | reference | libserf | ratio (libserf/ref) | anchor |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    type Get = fn(&RunResult) -> &Cell;
    let metrics: [(&str, Get, usize, &str); 12] = [
        ("join: all observers see N alive (s)", |r| &r.join, 2, "1.4"),
        ("user event latency p50 (s)", |r| &r.ev_p50, 3, ""),
        ("user event latency p99 (s)", |r| &r.ev_p99, 3, ""),
        ("user event latency max (s)", |r| &r.ev_max, 3, "0.34"),
        (
            "kill -9 → all observers see failed (s)",
            |r| &r.fail,
            2,
            "9.8",
        ),
        (
            "graceful leave → all observers see left (s)",
            |r| &r.leave,
            2,
            "",
        ),
        ("idle CPU per agent (% of a core)", |r| &r.cpu, 3, "0.22"),
        ("RSS per agent (MB)", |r| &r.rss, 1, "14.6"),
        ("PSS per agent (MB)", |r| &r.pss, 1, ""),
        ("UDP packets sent per agent per s", |r| &r.udp_pps, 2, "2.0"),
        ("UDP bytes sent per agent per s", |r| &r.udp_bps, 0, ""),
        (
            "TCP gossip bytes sent per agent per s",
            |r| &r.tcp_bps,
            0,
            "",
        ),
    ];
    for (name, get, digits, anchor) in metrics {
        for &n in &cfg.sizes {
            let find = |imp| results.iter().find(|r| r.imp == imp && r.n == n);
            let (Some(rr), Some(rl)) = (find(Impl::Reference), find(Impl::Libserf)) else {
                continue;
            };
            let (a, b) = (get(rr), get(rl));
            let ratio = match (a, b) {
                (Ok(x), Ok(y)) if *x > 0.0 => format!("{:.2}", y / x),
                _ => "n/a".into(),
            };
            let anchor = if n == 50 { anchor } else { "" };
            let _ = writeln!(
                s,
                "| {name} | {n} | {} | {} | {ratio} | {anchor} |",
                fmt_cell(a, digits),
                fmt_cell(b, digits)
            );
        }
    }
    rss_breakdown(&mut s, cfg, results);
    let _ = writeln!(s, "\nNotes per run:\n");
    for r in results {
        let _ = writeln!(s, "- {} N={}: {}", r.imp.label(), r.n, r.notes.join("; "));
    }
    s
}

/// Where each implementation's resident memory is, per size: the categories of
/// [`RssPart`], mean kB per agent at the end of the idle window.
fn rss_breakdown(s: &mut String, cfg: &Config, results: &[RunResult]) {
    let mut columns = Vec::new();
    for &n in &cfg.sizes {
        for imp in [Impl::Reference, Impl::Libserf] {
            if let Some(r) = results.iter().find(|r| r.imp == imp && r.n == n) {
                columns.push((format!("{} N={n}", imp.label()), r.rss_parts));
            }
        }
    }
    let _ = writeln!(
        s,
        "\nRSS breakdown, kB per agent (mean) at the end of the idle window, from `/proc/<pid>/smaps`: \
         each mapping's resident pages counted by what it maps.\n"
    );
    let header: Vec<&str> = columns.iter().map(|(name, _)| name.as_str()).collect();
    let _ = writeln!(s, "| part | {} |", header.join(" | "));
    let _ = writeln!(s, "|---|{}", "---:|".repeat(columns.len()));
    let cell = |parts: &Option<[f64; RssPart::ALL.len()]>, i: Option<usize>| match parts {
        Some(p) => format!("{:.0}", i.map_or_else(|| p.iter().sum(), |i| p[i])),
        None => "n/a".into(),
    };
    for (i, part) in RssPart::ALL.iter().enumerate() {
        let row: Vec<String> = columns.iter().map(|(_, p)| cell(p, Some(i))).collect();
        let _ = writeln!(s, "| {} | {} |", part.label(), row.join(" | "));
    }
    let total: Vec<String> = columns.iter().map(|(_, p)| cell(p, None)).collect();
    let _ = writeln!(s, "| **total** | {} |", total.join(" | "));
}
