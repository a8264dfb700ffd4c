//! The reference HashiCorp agent for interop tests: built from Debian's
//! `golang-github-hashicorp-serf-dev` (serf 0.9.4) with Debian's Go 1.19, started on loopback,
//! driven through its own CLI, and killed when dropped. A missing toolchain fails the test.

#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

const GO: &str = "/usr/lib/go-1.19/bin/go";
const GOPATH: &str = "/usr/share/gocode";
const PACKAGE: &str = "github.com/hashicorp/serf/cmd/serf";

/// Builds the reference `serf` once per test binary (into `target/reference-serf/`).
pub fn binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/reference-serf");
        let bin = out.join("serf");
        if bin.exists() {
            return bin;
        }
        assert!(
            Path::new(GO).exists() && Path::new(GOPATH).join("src").join(PACKAGE).exists(),
            "the reference agent cannot be built: install golang-1.19-go and \
             golang-github-hashicorp-serf-dev (apt-get), as .ci/run does"
        );
        std::fs::create_dir_all(&out).expect("create target/reference-serf");
        let status = Command::new(GO)
            .args(["build", "-o"])
            .arg(&bin)
            .arg(PACKAGE)
            .env("GOPATH", GOPATH)
            .env("GO111MODULE", "off")
            .env("GOCACHE", out.join("gocache"))
            .status()
            .expect("run go build");
        assert!(status.success(), "go build of the reference agent failed");
        bin
    })
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

/// A running reference agent.
pub struct Agent {
    pub name: String,
    pub gossip: SocketAddr,
    pub rpc: SocketAddr,
    child: Option<Child>,
}

impl Agent {
    /// Starts `serf agent` on loopback with `extra` flags (e.g. `-tag=role=web`, `-encrypt=…`).
    pub fn start(name: &str, extra: &[&str]) -> Agent {
        Agent::start_at(name, SocketAddr::from(([127, 0, 0, 1], free_port())), extra)
    }

    /// Starts `serf agent` with its gossip on `gossip`.
    pub fn start_at(name: &str, gossip: SocketAddr, extra: &[&str]) -> Agent {
        let rpc = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let log = std::fs::File::create(
            std::env::temp_dir().join(format!("libserf-ref-{name}-{}.log", gossip.port())),
        )
        .expect("log file");
        let child = Command::new(binary())
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
            .expect("start the reference agent");
        let agent = Agent {
            name: name.to_string(),
            gossip,
            rpc,
            child: Some(child),
        };
        let ready = wait_until(Duration::from_secs(10), || agent.cli(&["members"]).is_ok());
        assert!(
            ready,
            "reference agent {name} did not answer on its RPC port"
        );
        agent
    }

    /// Runs a `serf` CLI command against this agent; stdout on success.
    pub fn cli(&self, args: &[&str]) -> Result<String, String> {
        // Go's flag parsing stops at the first argument: flags go right after the subcommand.
        let (command, rest) = args.split_first().expect("a subcommand");
        let out = Command::new(binary())
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

    /// The status this agent reports for `name`, if it knows it.
    pub fn status_of(&self, name: &str) -> Option<String> {
        self.members()
            .into_iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, s, _)| s)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
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
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `cond` every 100 ms until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
