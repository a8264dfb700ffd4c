//! Cluster benchmark: our `serf` binary against the reference HashiCorp agent, driven through the
//! very same CLI on loopback (issue 9, part 1; recipe: perf-anchors.md §7).
//!
//! For each N (20, 50, 100, 200; `BENCH_QUICK=1`: 5, 10) and each implementation, never
//! concurrently and in alternating order, the harness:
//!
//! 1. creates a fresh network namespace (loopback only, nothing on the host is touched) and
//!    starts node i as `serf agent -node=n<i> -bind=<ip(i)>:7946 -rpc-addr=<ip(i)>:7373
//!    -profile=lan -log-level=info -retry-join=127.0.0.2:7946 -retry-interval=1s
//!    -event-handler user=<this binary> --cluster-handler <log>` with
//!    `ip(i) = 127.0.<i/250>.<i%250+2>` and `GOMAXPROCS=1` (the seed first, then the others in
//!    parallel batches);
//! 2. **join**: from the last launch until every sampled observer lists N members `alive`
//!    (`serf members -format=json -status=alive`);
//! 3. after a settle time, an **idle window**: CPU (on-CPU ns of every thread,
//!    `/proc/<pid>/task/*/schedstat`), RSS (`VmRSS`), PSS (`smaps_rollup`: shared pages such as
//!    the binary's and libc's divided among the processes mapping them), and UDP
//!    packets/bytes sent from the gossip port (an `AF_PACKET` socket inside
//!    the namespace, counting outgoing IPv4 UDP datagrams with source port 7946 per source
//!    address, so every agent is accounted the same way whichever implementation it is);
//! 4. **user events** (`serf event -coalesce=false bench<k>`), one per second from rotating
//!    senders; every agent's event handler (this very executable, re-invoked) appends the wall
//!    clock of receipt; latency = receipt − send, over every (receiver ≠ sender, event) pair;
//! 5. **failure detection**: `kill -9` of node N−1, then poll the observers until all list it
//!    `failed`;
//! 6. **graceful leave**: `serf leave` on node N−2, then poll until all observers list it `left`.
//!
//! Observation goes through one client for both implementations (the reference `serf members`
//! CLI), so the observer load and latency are identical; control commands (`agent`, `event`,
//! `leave`) use each implementation's own binary. The table goes to stdout and to
//! `target/bench/cluster.md`. A measurement that fails shows as `n/a (reason)`.
//!
//! Environment: `BENCH_QUICK=1` (N = 5, 10, short windows), `BENCH_CLUSTER_N=20,50` (override
//! the sizes), `BENCH_CLUSTER_OBSERVERS=8` (observer sample size).
//!
//! The harness in modules: [`config`] (sizes, timings, the binaries under test), [`netns`] (the
//! namespace and its packet accounting), [`agents`] (starting agents and observing them through
//! the CLI), [`procfs`] (CPU, memory and UDP counters from `/proc`), [`measure`] (one run, phase
//! by phase) and [`report`] (the Markdown table).

#[path = "../../../../tests/common/bench.rs"]
mod bench;
#[path = "../../tests/common/shipped_agent.rs"]
mod shipped_agent;

mod agents;
mod config;
mod measure;
mod netns;
mod procfs;
mod report;

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use config::{Binaries, Config, Impl};
use measure::{run_one, RunResult};
use report::render;

const GOSSIP_PORT: u16 = 7946;
const RPC_PORT: u16 = 7373;
const HANDLER_FLAG: &str = "--cluster-handler";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() >= 3 && args[1] == HANDLER_FLAG {
        event_handler(&args[2]);
        return;
    }
    if !bench::selected("cluster") {
        return;
    }
    let started = Instant::now();
    let cfg = Config::from_env();
    let bins = match Binaries::locate() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("cluster bench: {e}");
            std::process::exit(1);
        }
    };
    // The harness (and the observer CLIs it spawns) run at a higher priority than the agents
    // (perf-anchors §7.4); agents are reset to nice 0 when they start.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, -5);
    }
    let mut results: Vec<RunResult> = Vec::new();
    for (idx, &n) in cfg.sizes.iter().enumerate() {
        let order = if idx % 2 == 0 {
            [Impl::Reference, Impl::Libserf]
        } else {
            [Impl::Libserf, Impl::Reference]
        };
        for imp in order {
            let t0 = Instant::now();
            eprintln!("cluster bench: {} N={n} ...", imp.label());
            let r = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run_one(&cfg, &bins, imp, n)
            })) {
                Ok(r) => r,
                Err(p) => {
                    let msg = p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "panic".into());
                    RunResult::failed(imp, n, &format!("panic: {msg}"))
                }
            };
            eprintln!(
                "cluster bench: {} N={n} done in {:.1} s",
                imp.label(),
                t0.elapsed().as_secs_f64()
            );
            results.push(r);
            thread::sleep(Duration::from_secs(1));
        }
    }
    let report = render(&cfg, &bins, &results, started.elapsed());
    println!("{report}");
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("target/bench");
    let _ = fs::create_dir_all(&dir);
    let path = dir.join("cluster.md");
    match fs::write(&path, &report) {
        Ok(()) => eprintln!("cluster bench: wrote {}", path.display()),
        Err(e) => eprintln!("cluster bench: cannot write {}: {e}", path.display()),
    }
}

/// Handler mode: the agents run `<this exe> --cluster-handler <log>` for every user event.
fn event_handler(log: &str) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let event = std::env::var("SERF_USER_EVENT").unwrap_or_default();
    let node = std::env::var("SERF_SELF_NAME").unwrap_or_default();
    let line = format!("{event} {} {node}\n", now.as_nanos());
    if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(log) {
        let _ = f.write_all(line.as_bytes());
    }
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
}
