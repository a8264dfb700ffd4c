//! The reference HashiCorp agents for interop tests, built by `make reference` from the Go modules
//! pinned in `tests/reference/` (serf v0.11.0, what users run, and v0.9.8 for the older protocol
//! era), started on loopback, driven through their own CLI, and killed when dropped. An agent that
//! cannot be built fails the test.

#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Two tests from one scenario `fn(Release)`: `$current` against serf v0.11.0 and `$legacy`
/// against v0.9.8.
#[allow(unused_macros)]
macro_rules! against_both_releases {
    ($scenario:ident: $current:ident, $legacy:ident) => {
        #[test]
        fn $current() {
            $scenario(reference::Release::Current);
        }

        #[test]
        fn $legacy() {
            $scenario(reference::Release::Legacy);
        }
    };
}
#[allow(unused_imports)]
pub(crate) use against_both_releases;

/// A HashiCorp serf release that the interop tests run against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Release {
    /// serf v0.11.0 (memberlist 0.7, go-msgpack v2): the default reference.
    Current,
    /// serf v0.9.8 (memberlist 0.3, go-msgpack 0.5): the core mixed-cluster scenarios run
    /// against it too.
    Legacy,
}

impl Release {
    /// The binary `make reference` builds for this release.
    pub fn binary(self) -> &'static Path {
        static BUILT: OnceLock<()> = OnceLock::new();
        static CURRENT: OnceLock<PathBuf> = OnceLock::new();
        static LEGACY: OnceLock<PathBuf> = OnceLock::new();
        let (cell, file) = match self {
            Release::Current => (&CURRENT, "serf"),
            Release::Legacy => (&LEGACY, "serf-0.9"),
        };
        cell.get_or_init(|| {
            let root = repo_root();
            let bin = root.join("target/reference").join(file);
            if !bin.exists() {
                BUILT.get_or_init(|| build_references(root));
            }
            assert!(
                bin.exists(),
                "make reference did not produce {}",
                bin.display()
            );
            bin
        })
    }
}

/// The repository's top folder, whichever crate's tests include this file.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").exists())
        .expect("the workspace root holds Cargo.lock")
}

/// Runs `make reference` (the one recipe for the reference agents) once per test binary.
fn build_references(root: &Path) {
    let status = Command::new("make")
        .args(["--no-print-directory", "reference"])
        .current_dir(root)
        .status()
        .expect("run make reference (needs make and Go >= 1.26 on PATH)");
    assert!(
        status.success(),
        "make reference failed: the reference agents cannot be built"
    );
}

/// HashiCorp's current agent (v0.11.0), built on first use.
pub fn binary() -> &'static Path {
    Release::Current.binary()
}

/// A loopback port free for both UDP and TCP right now.
pub fn free_port() -> u16 {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = udp.local_addr().expect("addr").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port")
}

/// A running agent: the reference one, or any binary with its command line (ours).
pub struct Agent {
    pub name: String,
    pub gossip: SocketAddr,
    pub rpc: SocketAddr,
    /// The binary the agent runs, also used by [`Agent::cli`].
    pub bin: PathBuf,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
    child: Option<Child>,
}

impl Agent {
    /// Starts HashiCorp's current `serf agent` on loopback with `extra` flags (e.g.
    /// `-tag=role=web`, `-encrypt=…`).
    pub fn start(name: &str, extra: &[&str]) -> Agent {
        Agent::start_release(Release::Current, name, extra)
    }

    /// Starts `release`'s `serf agent` on loopback with `extra` flags.
    pub fn start_release(release: Release, name: &str, extra: &[&str]) -> Agent {
        let gossip = SocketAddr::from(([127, 0, 0, 1], free_port()));
        Agent::start_binary(release.binary(), name, gossip, extra)
    }

    /// Starts `serf agent` with its gossip on `gossip`.
    pub fn start_at(name: &str, gossip: SocketAddr, extra: &[&str]) -> Agent {
        Agent::start_binary(binary(), name, gossip, extra)
    }

    /// Starts `<bin> agent` (the reference or ours) with its gossip on `gossip`.
    pub fn start_binary(bin: &Path, name: &str, gossip: SocketAddr, extra: &[&str]) -> Agent {
        let rpc = SocketAddr::from(([127, 0, 0, 1], free_port()));
        Agent::start_wrapped(&[], bin, name, gossip, rpc, extra)
    }

    /// Starts `<wrapper…> <bin> agent` (e.g. `ip netns exec <ns>`, which execs the agent, so
    /// the pid is still the agent's) with the given gossip and RPC addresses.
    pub fn start_wrapped(
        wrapper: &[&str],
        bin: &Path,
        name: &str,
        gossip: SocketAddr,
        rpc: SocketAddr,
        extra: &[&str],
    ) -> Agent {
        // One file per agent started, so removing one never removes a restarted agent's.
        static STARTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let seq = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log_path = std::env::temp_dir().join(format!(
            "libserf-agent-{name}-{}-{}-{seq}.log",
            gossip.port(),
            std::process::id()
        ));
        let log = std::fs::File::create(&log_path).expect("log file");
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        let child = command
            .arg("agent")
            .arg(format!("-node={name}"))
            .arg(format!("-bind={gossip}"))
            .arg(format!("-rpc-addr={rpc}"))
            .arg("-log-level=debug")
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start the agent");
        let agent = Agent {
            name: name.to_string(),
            gossip,
            rpc,
            bin: bin.to_path_buf(),
            log: log_path,
            child: Some(child),
        };
        // An agent that wants an auth token is up once it says so.
        let ready = wait_until(Duration::from_secs(10), || match agent.cli(&["members"]) {
            Ok(_) => true,
            Err(e) => e.contains("Authentication required"),
        });
        assert!(
            ready,
            "agent {name} ({}) did not answer on its RPC port; log: {}",
            bin.display(),
            std::fs::read_to_string(&agent.log).unwrap_or_default()
        );
        agent
    }

    /// Runs a `serf` CLI command of the agent's own binary against it; stdout on success.
    pub fn cli(&self, args: &[&str]) -> Result<String, String> {
        self.cli_with(&self.bin, args)
    }

    /// Runs a CLI command of `bin` (the reference's or ours) against this agent.
    pub fn cli_with(&self, bin: &Path, args: &[&str]) -> Result<String, String> {
        // Go's flag parsing stops at the first argument: flags go right after the subcommand.
        let (command, rest) = args.split_first().expect("a subcommand");
        let out = Command::new(bin)
            .arg(command)
            .arg(format!("-rpc-addr={}", self.rpc))
            .args(rest)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// `serf members -format=json`: name → (status, tags).
    pub fn members(&self) -> Vec<(String, String, Value)> {
        let Ok(out) = self.cli(&["members", "-format=json"]) else {
            return Vec::new();
        };
        let v: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
        v["members"]
            .as_array()
            .map(|ms| {
                ms.iter()
                    .map(|m| {
                        (
                            m["name"].as_str().unwrap_or_default().to_string(),
                            m["status"].as_str().unwrap_or_default().to_string(),
                            m["tags"].clone(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// How many members this agent lists as alive.
    pub fn alive_count(&self) -> usize {
        self.members()
            .iter()
            .filter(|(_, status, _)| status == "alive")
            .count()
    }

    /// The status this agent reports for `name`, if it knows it.
    pub fn status_of(&self, name: &str) -> Option<String> {
        self.members()
            .into_iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, s, _)| s)
    }

    /// The numeric counters of `serf info`'s `serf` section (HashiCorp's agent has fewer).
    pub fn counters(&self) -> std::collections::BTreeMap<String, u64> {
        let out = self
            .cli(&["info", "-format=json"])
            .expect("serf info answers");
        let info: Value = serde_json::from_str(&out).expect("serf info JSON");
        info["serf"]
            .as_object()
            .map(|serf| {
                serf.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.parse().ok()?)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The agent's resident memory (`VmRSS`), in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("the agent's /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmRSS")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Sends `signal` (e.g. "INT") and waits up to `limit` for the exit; its exit code.
    pub fn signal_and_wait(&mut self, signal: &str, limit: Duration) -> Option<i32> {
        let child = self.child.as_mut()?;
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status();
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Whether the process has exited (its code), without waiting.
    pub fn exited(&mut self) -> Option<Option<i32>> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => Some(status.code()),
            _ => None,
        }
    }

    /// SIGTERM: the agent shuts down without leaving (flushing its snapshot), as Go's agent does
    /// unless `leave_on_terminate` is set.
    pub fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let end = Instant::now() + Duration::from_secs(10);
            while Instant::now() < end && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// kill -9.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Agent {
    /// Stops the agent; its log stays behind only when the test is failing.
    fn drop(&mut self) {
        self.kill();
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// Polls `cond` every 100 ms until it holds or `limit` passes.
pub fn wait_until(limit: Duration, cond: impl FnMut() -> bool) -> bool {
    wait_until_every(limit, Duration::from_millis(100), cond)
}

/// Polls `cond` every `every` until it holds or `limit` passes.
pub fn wait_until_every(limit: Duration, every: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(every);
    }
}

/// A fresh directory `libserf-<name>-<pid>` under the temp directory, removed when dropped
/// unless the test is failing (its files then help find out why).
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("libserf-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch directory");
        Scratch(dir)
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A [`Scratch`] directory holding an executable `handler.sh` with `script` as its text.
/// Returns (directory, script path).
pub fn scratch_with_handler(name: &str, script: &str) -> (Scratch, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = Scratch::new(name);
    let handler = dir.join("handler.sh");
    std::fs::write(&handler, script).expect("handler script");
    std::fs::set_permissions(&handler, std::fs::Permissions::from_mode(0o755))
        .expect("make the handler executable");
    (dir, handler)
}
