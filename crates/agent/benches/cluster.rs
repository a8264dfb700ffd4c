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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const GOSSIP_PORT: u16 = 7946;
const RPC_PORT: u16 = 7373;
const HANDLER_FLAG: &str = "--cluster-handler";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() >= 3 && args[1] == HANDLER_FLAG {
        event_handler(&args[2]);
        return;
    }
    // `cargo test --all-targets` (make test) builds and starts every bench target too; only
    // `cargo bench` (which passes `--bench`) runs the benchmark.
    if !std::env::args().any(|a| a == "--bench") {
        println!("cluster: a benchmark; run it with `cargo bench --bench cluster`");
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
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
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

// ---------------------------------------------------------------------------------------------
// Configuration

struct Config {
    quick: bool,
    sizes: Vec<usize>,
    observers: usize,
    batch: usize,
    batch_pause: Duration,
    join_timeout: Duration,
    settle: Duration,
    idle: Duration,
    events: usize,
    event_spacing: Duration,
    event_tail: Duration,
    fail_timeout: Duration,
    leave_timeout: Duration,
    poll_every: Duration,
}

impl Config {
    fn from_env() -> Config {
        let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        let mut c = if quick {
            Config {
                quick,
                sizes: vec![5, 10],
                observers: 8,
                batch: 25,
                batch_pause: Duration::from_millis(200),
                join_timeout: Duration::from_secs(30),
                settle: Duration::from_secs(2),
                idle: Duration::from_secs(5),
                events: 3,
                event_spacing: Duration::from_secs(1),
                event_tail: Duration::from_secs(5),
                fail_timeout: Duration::from_secs(30),
                leave_timeout: Duration::from_secs(15),
                poll_every: Duration::from_millis(200),
            }
        } else {
            Config {
                quick,
                sizes: vec![20, 50, 100, 200],
                observers: 8,
                batch: 25,
                batch_pause: Duration::from_millis(200),
                join_timeout: Duration::from_secs(60),
                settle: Duration::from_secs(5),
                idle: Duration::from_secs(10),
                events: 5,
                event_spacing: Duration::from_secs(1),
                event_tail: Duration::from_secs(10),
                fail_timeout: Duration::from_secs(40),
                leave_timeout: Duration::from_secs(20),
                poll_every: Duration::from_millis(200),
            }
        };
        if let Ok(v) = std::env::var("BENCH_CLUSTER_N") {
            let sizes: Vec<usize> = v
                .split(',')
                .filter_map(|s| s.trim().parse().ok())
                .filter(|&n| (3..=1000).contains(&n))
                .collect();
            if !sizes.is_empty() {
                c.sizes = sizes;
            }
        }
        if let Some(k) = std::env::var("BENCH_CLUSTER_OBSERVERS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            c.observers = std::cmp::max(1, k);
        }
        c
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Impl {
    Reference,
    Libserf,
}

impl Impl {
    fn label(self) -> &'static str {
        match self {
            Impl::Reference => "reference",
            Impl::Libserf => "libserf",
        }
    }
}

struct Binaries {
    libserf: PathBuf,
    reference: Option<PathBuf>,
    reference_err: String,
    handler: PathBuf,
}

impl Binaries {
    fn locate() -> Result<Binaries, String> {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let libserf = PathBuf::from(env!("CARGO_BIN_EXE_serf"));
        if !libserf.exists() {
            return Err(format!("{} missing", libserf.display()));
        }
        let reference = manifest.join("target/reference/serf");
        let mut reference_err = String::new();
        if !reference.exists() {
            eprintln!("cluster bench: building the reference agent (make reference)");
            let st = Command::new("make")
                .arg("-C")
                .arg(manifest)
                .arg("reference")
                .status();
            if !matches!(st, Ok(s) if s.success()) {
                reference_err = "reference agent not built (make reference failed)".into();
            }
        }
        let handler = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        Ok(Binaries {
            libserf,
            reference: reference.exists().then_some(reference),
            reference_err,
            handler,
        })
    }

    fn agent(&self, imp: Impl) -> Result<&Path, String> {
        match imp {
            Impl::Libserf => Ok(&self.libserf),
            Impl::Reference => self
                .reference
                .as_deref()
                .ok_or_else(|| self.reference_err.clone()),
        }
    }

    /// The client every observation goes through, for both implementations.
    fn observer(&self) -> &Path {
        self.reference.as_deref().unwrap_or(&self.libserf)
    }
}

fn version_of(bin: &Path) -> String {
    Command::new(bin)
        .arg("version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

// ---------------------------------------------------------------------------------------------
// Network namespace and packet accounting

#[derive(Default, Clone, Copy)]
struct Counter {
    udp_pkts: u64,
    udp_bytes: u64,
    tcp_bytes: u64,
}

type Counters = Arc<Mutex<HashMap<[u8; 4], Counter>>>;

/// A private network namespace (only `lo`, brought up) and a thread counting the gossip packets
/// sent inside it. Dropping it stops the thread; the namespace disappears with its last process.
struct NetNs {
    fd: RawFd,
    stop: Arc<AtomicBool>,
    counters: Counters,
    drops: Arc<Mutex<u64>>,
    thread: Option<thread::JoinHandle<()>>,
}

const SOL_PACKET: libc::c_int = 263;
const PACKET_STATISTICS: libc::c_int = 6;
const PACKET_OUTGOING: u8 = 4;

impl NetNs {
    fn create() -> Result<NetNs, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let counters: Counters = Arc::default();
        let drops = Arc::new(Mutex::new(0u64));
        let (tx, rx) = std::sync::mpsc::channel::<Result<RawFd, String>>();
        let (s2, c2, d2) = (stop.clone(), counters.clone(), drops.clone());
        let thread = thread::spawn(move || capture_thread(tx, s2, c2, d2));
        let fd = match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Ok(fd)) => fd,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => return Err("namespace thread did not answer".into()),
        };
        let ns = NetNs {
            fd,
            stop,
            counters,
            drops,
            thread: Some(thread),
        };
        let st = ns
            .command(Path::new("ip"))
            .args(["link", "set", "lo", "up"])
            .status()
            .map_err(|e| format!("ip link: {e}"))?;
        if !st.success() {
            return Err("ip link set lo up failed".into());
        }
        Ok(ns)
    }

    /// A command that runs inside the namespace.
    fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        let fd = self.fd;
        unsafe {
            c.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        c
    }

    fn snapshot(&self) -> HashMap<[u8; 4], Counter> {
        self.counters.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        unsafe {
            libc::close(self.fd);
        }
    }
}

fn capture_thread(
    tx: std::sync::mpsc::Sender<Result<RawFd, String>>,
    stop: Arc<AtomicBool>,
    counters: Counters,
    drops: Arc<Mutex<u64>>,
) {
    // SAFETY: plain syscalls on this thread; unshare(CLONE_NEWNET) moves only this thread.
    let sock = unsafe {
        if libc::unshare(libc::CLONE_NEWNET) != 0 {
            let _ = tx.send(Err(format!(
                "unshare(CLONE_NEWNET): {}",
                std::io::Error::last_os_error()
            )));
            return;
        }
        let path = format!("/proc/self/task/{}/ns/net\0", libc::gettid());
        let fd = libc::open(path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            let _ = tx.send(Err(format!(
                "open netns: {}",
                std::io::Error::last_os_error()
            )));
            return;
        }
        let sock = libc::socket(
            libc::AF_PACKET,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            i32::from((libc::ETH_P_ALL as u16).to_be()),
        );
        if sock < 0 {
            let _ = tx.send(Err(format!(
                "AF_PACKET socket: {}",
                std::io::Error::last_os_error()
            )));
            libc::close(fd);
            return;
        }
        let buf: libc::c_int = 16 << 20;
        libc::setsockopt(
            sock,
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&buf as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 200_000,
        };
        libc::setsockopt(
            sock,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
        let _ = tx.send(Ok(fd));
        sock
    };
    let mut buf = [0u8; 128];
    while !stop.load(Ordering::Relaxed) {
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut alen = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        let n = unsafe {
            libc::recvfrom(
                sock,
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_TRUNC,
                (&mut addr as *mut libc::sockaddr_ll).cast(),
                &mut alen,
            )
        };
        // Only ETH_P_ALL taps see transmitted packets; keep the outgoing IPv4 ones.
        if n < 20
            || addr.sll_pkttype != PACKET_OUTGOING
            || addr.sll_protocol != (libc::ETH_P_IP as u16).to_be()
        {
            continue;
        }
        let got = std::cmp::min(n as usize, buf.len());
        let p = &buf[..got];
        if p[0] >> 4 != 4 {
            continue;
        }
        let ihl = usize::from(p[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
        let proto = p[9];
        let src = [p[12], p[13], p[14], p[15]];
        if got < ihl + 14 {
            continue;
        }
        let sport = u16::from_be_bytes([p[ihl], p[ihl + 1]]);
        if sport != GOSSIP_PORT {
            continue;
        }
        let mut m = match counters.lock() {
            Ok(m) => m,
            Err(_) => break,
        };
        let c = m.entry(src).or_default();
        if proto == 17 {
            let ulen = usize::from(u16::from_be_bytes([p[ihl + 4], p[ihl + 5]]));
            c.udp_pkts += 1;
            c.udp_bytes += ulen.saturating_sub(8) as u64;
        } else if proto == 6 {
            let doff = usize::from(p[ihl + 12] >> 4) * 4;
            c.tcp_bytes += total.saturating_sub(ihl + doff) as u64;
        }
    }
    let mut st = [0u32; 2];
    let mut len = std::mem::size_of_val(&st) as libc::socklen_t;
    unsafe {
        if libc::getsockopt(
            sock,
            SOL_PACKET,
            PACKET_STATISTICS,
            st.as_mut_ptr().cast(),
            &mut len,
        ) == 0
        {
            if let Ok(mut d) = drops.lock() {
                *d += u64::from(st[1]);
            }
        }
        libc::close(sock);
    }
}

// ---------------------------------------------------------------------------------------------
// The cluster

fn ip_of(i: usize) -> String {
    format!("127.0.{}.{}", i / 250, i % 250 + 2)
}

fn rpc_of(i: usize) -> String {
    format!("{}:{RPC_PORT}", ip_of(i))
}

/// Every agent of one run; dropping it kills (SIGKILL) and reaps them all, even on panic.
struct Cluster {
    agents: Vec<Option<Child>>,
}

impl Cluster {
    fn pid(&self, i: usize) -> Option<u32> {
        self.agents.get(i)?.as_ref().map(Child::id)
    }

    fn exited(&mut self) -> Vec<usize> {
        let mut out = Vec::new();
        for (i, c) in self.agents.iter_mut().enumerate() {
            if let Some(ch) = c {
                if matches!(ch.try_wait(), Ok(Some(_))) {
                    out.push(i);
                }
            }
        }
        out
    }

    fn kill9(&mut self, i: usize) -> Result<(), String> {
        let ch = self.agents[i].as_mut().ok_or("already gone")?;
        ch.kill().map_err(|e| format!("kill: {e}"))?;
        let _ = ch.wait();
        self.agents[i] = None;
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for ch in self.agents.iter_mut().flatten() {
            let _ = ch.kill();
        }
        for ch in self.agents.iter_mut().flatten() {
            let _ = ch.wait();
        }
    }
}

/// Kills a helper process (an observer or control CLI) if it is still running when dropped.
struct ChildGuard(Option<Child>);

impl ChildGuard {
    fn wait_timeout(&mut self, limit: Duration) -> Result<bool, String> {
        let deadline = Instant::now() + limit;
        let ch = self.0.as_mut().ok_or("no child")?;
        loop {
            match ch.try_wait() {
                Ok(Some(st)) => return Ok(st.success()),
                Ok(None) if Instant::now() >= deadline => return Err("timed out".into()),
                Ok(None) => thread::sleep(Duration::from_millis(5)),
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(ch) = self.0.as_mut() {
            if !matches!(ch.try_wait(), Ok(Some(_))) {
                let _ = ch.kill();
                let _ = ch.wait();
            }
        }
    }
}

type Cell = Result<f64, String>;

struct RunResult {
    imp: Impl,
    n: usize,
    join: Cell,
    ev_p50: Cell,
    ev_p99: Cell,
    ev_max: Cell,
    fail: Cell,
    leave: Cell,
    cpu: Cell,
    rss: Cell,
    pss: Cell,
    udp_pps: Cell,
    udp_bps: Cell,
    tcp_bps: Cell,
    notes: Vec<String>,
    /// CPU used by processes other than the agents during the idle window, in cores.
    foreign: Option<f64>,
    /// /proc/pressure/cpu "some" stall share over the whole run, in %.
    psi: Option<f64>,
}

impl RunResult {
    fn failed(imp: Impl, n: usize, why: &str) -> RunResult {
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
            udp_pps: e(),
            udp_bps: e(),
            tcp_bps: e(),
            notes: vec![why.to_string()],
            foreign: None,
            psi: None,
        }
    }
}

struct Run<'a> {
    cfg: &'a Config,
    ns: NetNs,
    dir: PathBuf,
    agent_bin: PathBuf,
    observer_bin: PathBuf,
    handler: PathBuf,
    n: usize,
}

impl Run<'_> {
    fn spawn_agent(&self, i: usize) -> Result<Child, String> {
        let log = File::create(self.dir.join(format!("n{i}.log"))).map_err(|e| e.to_string())?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let mut c = self.ns.command(&self.agent_bin);
        c.arg("agent")
            .arg(format!("-node=n{i}"))
            .arg(format!("-bind={}:{GOSSIP_PORT}", ip_of(i)))
            .arg(format!("-rpc-addr={}", rpc_of(i)))
            .arg("-profile=lan")
            .arg("-log-level=info")
            .arg(format!(
                "-event-handler=user={} {HANDLER_FLAG} {}",
                self.handler.display(),
                self.events_log().display()
            ));
        if i > 0 {
            c.arg(format!("-retry-join={}:{GOSSIP_PORT}", ip_of(0)))
                .arg("-retry-interval=1s");
        }
        c.env("GOMAXPROCS", "1")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        unsafe {
            c.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                libc::setpriority(libc::PRIO_PROCESS, 0, 0);
                Ok(())
            });
        }
        c.spawn().map_err(|e| format!("spawn agent: {e}"))
    }

    fn events_log(&self) -> PathBuf {
        self.dir.join("events.log")
    }

    /// Runs `serf members -format=json <args>` against each observer in parallel; returns, per
    /// observer, the (name, status) pairs or an error.
    fn members(
        &self,
        observers: &[usize],
        extra: &[String],
    ) -> Vec<Result<Vec<(String, String)>, String>> {
        let mut kids = Vec::new();
        for &o in observers {
            let out = self.dir.join(format!("members-{o}.json"));
            let spawned = File::create(&out).map_err(|e| e.to_string()).and_then(|f| {
                self.ns
                    .command(&self.observer_bin)
                    .arg("members")
                    .arg("-format=json")
                    .arg(format!("-rpc-addr={}", rpc_of(o)))
                    .args(extra)
                    .stdin(Stdio::null())
                    .stdout(f)
                    .stderr(Stdio::null())
                    .spawn()
                    .map_err(|e| e.to_string())
            });
            kids.push((out, spawned.map(|c| ChildGuard(Some(c)))));
        }
        kids.into_iter()
            .map(|(out, k)| {
                let mut g = k?;
                if !g.wait_timeout(Duration::from_secs(5))? {
                    return Err("members failed".into());
                }
                let text = fs::read_to_string(&out).map_err(|e| e.to_string())?;
                parse_members(&text)
            })
            .collect()
    }

    /// Polls the observers until `done(members)` holds for each; returns per-observer seconds
    /// since `t0`.
    fn poll_until(
        &self,
        observers: &[usize],
        extra: &[String],
        t0: Instant,
        limit: Duration,
        done: impl Fn(&[(String, String)]) -> bool,
    ) -> Result<Vec<f64>, String> {
        let mut seen: BTreeMap<usize, f64> = BTreeMap::new();
        let mut last_err = String::new();
        loop {
            let round = Instant::now();
            let pending: Vec<usize> = observers
                .iter()
                .copied()
                .filter(|o| !seen.contains_key(o))
                .collect();
            if pending.is_empty() {
                return Ok(seen.into_values().collect());
            }
            let answers = self.members(&pending, extra);
            let t = t0.elapsed().as_secs_f64();
            for (o, a) in pending.iter().zip(answers) {
                match a {
                    Ok(m) if done(&m) => {
                        seen.insert(*o, t);
                    }
                    Ok(_) => {}
                    Err(e) => last_err = format!("observer n{o}: {e}"),
                }
            }
            if t0.elapsed() >= limit {
                let mut why = format!(
                    "timeout {:.0} s, {}/{} observers",
                    limit.as_secs_f64(),
                    seen.len(),
                    observers.len()
                );
                if !last_err.is_empty() {
                    let _ = write!(why, "; {last_err}");
                }
                return Err(why);
            }
            let spent = round.elapsed();
            if spent < self.cfg.poll_every {
                thread::sleep(self.cfg.poll_every - spent);
            }
        }
    }

    fn control(&self, args: &[String]) -> Result<ChildGuard, String> {
        self.ns
            .command(&self.agent_bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(|c| ChildGuard(Some(c)))
            .map_err(|e| format!("spawn {}: {e}", args[0]))
    }
}

fn parse_members(text: &str) -> Result<Vec<(String, String)>, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("json: {e}"))?;
    let arr = v
        .get("members")
        .and_then(|m| m.as_array())
        .ok_or("no members array")?;
    Ok(arr
        .iter()
        .map(|m| {
            let s = |k: &str| m.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
            (s("name"), s("status"))
        })
        .collect())
}

/// On-CPU nanoseconds of each thread of `pid` (first field of `/proc/<pid>/task/<tid>/schedstat`),
/// keyed by thread id: nanosecond precision, where `stat`'s 10 ms ticks would round a quiet agent's
/// few milliseconds per window to zero or one tick.
fn thread_cpu_ns(pid: u32) -> Option<HashMap<u32, u64>> {
    let mut out = HashMap::new();
    for entry in fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let entry = entry.ok()?;
        let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        // A thread may exit between the listing and the read: it is simply not counted.
        if let Ok(s) = fs::read_to_string(entry.path().join("schedstat")) {
            out.insert(tid, s.split_whitespace().next()?.parse().ok()?);
        }
    }
    Some(out)
}

/// CPU a process spent between two `thread_cpu_ns` samples; a thread born in between counts from
/// zero, one that exited in between is lost (agents keep their threads for life).
fn cpu_ns_between(a: &HashMap<u32, u64>, b: &HashMap<u32, u64>) -> u64 {
    b.iter()
        .map(|(tid, &ns)| ns.saturating_sub(a.get(tid).copied().unwrap_or(0)))
        .sum()
}

/// (busy, total) jiffies of the whole machine from /proc/stat.
fn host_cpu() -> Option<(u64, u64)> {
    let s = fs::read_to_string("/proc/stat").ok()?;
    let v: Vec<u64> = s
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4)?;
    Some((total - idle, total))
}

/// Cumulative CPU "some" stall time in microseconds (/proc/pressure/cpu).
fn psi_total() -> Option<u64> {
    let s = fs::read_to_string("/proc/pressure/cpu").ok()?;
    s.lines()
        .find(|l| l.starts_with("some"))?
        .split_whitespace()
        .find_map(|f| f.strip_prefix("total="))?
        .parse()
        .ok()
}

/// A "<key>: <n> kB" line of a /proc file of `pid`: `VmRSS` of `status`, or `Pss` of
/// `smaps_rollup` (resident pages, each shared one divided among the processes mapping it).
fn proc_kb(pid: u32, file: &str, key: &str) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/{file}")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Mean over `pids` in MB, or why not every agent could be read.
fn mean_mb(pids: &[u32], file: &str, key: &str) -> Cell {
    let kb: Vec<u64> = pids.iter().filter_map(|&p| proc_kb(p, file, key)).collect();
    if kb.len() == pids.len() {
        Ok(kb.iter().sum::<u64>() as f64 / pids.len() as f64 / 1024.0)
    } else {
        Err(format!("{key} read for {}/{} agents", kb.len(), pids.len()))
    }
}

fn udp_errors(pid: u32) -> Option<(u64, u64, u64)> {
    let s = fs::read_to_string(format!("/proc/{pid}/net/snmp")).ok()?;
    let lines: Vec<&str> = s.lines().filter(|l| l.starts_with("Udp:")).collect();
    let (h, v) = (lines.first()?, lines.get(1)?);
    let map: HashMap<&str, u64> = h
        .split_whitespace()
        .zip(v.split_whitespace())
        .filter_map(|(k, v)| Some((k, v.parse().ok()?)))
        .collect();
    Some((
        *map.get("InErrors")?,
        *map.get("RcvbufErrors")?,
        *map.get("OutDatagrams")?,
    ))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn run_one(cfg: &Config, bins: &Binaries, imp: Impl, n: usize) -> RunResult {
    let agent_bin = match bins.agent(imp) {
        Ok(p) => p.to_path_buf(),
        Err(e) => return RunResult::failed(imp, n, &e),
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
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

// ---------------------------------------------------------------------------------------------
// Report

fn fmt_cell(c: &Cell, digits: usize) -> String {
    match c {
        Ok(v) => format!("{v:.digits$}"),
        Err(e) => format!("n/a ({e})"),
    }
}

fn render(cfg: &Config, bins: &Binaries, results: &[RunResult], took: Duration) -> String {
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
    let _ = writeln!(s, "\nNotes per run:\n");
    for r in results {
        let _ = writeln!(s, "- {} N={}: {}", r.imp.label(), r.n, r.notes.join("; "));
    }
    s
}
