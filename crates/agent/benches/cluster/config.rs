//! What to run: the cluster sizes and timings (`BENCH_QUICK`, `BENCH_CLUSTER_N`,
//! `BENCH_CLUSTER_OBSERVERS`), the two implementations, and the binaries of each.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::shipped_agent;

pub(crate) struct Config {
    pub(crate) quick: bool,
    pub(crate) sizes: Vec<usize>,
    pub(crate) observers: usize,
    pub(crate) batch: usize,
    pub(crate) batch_pause: Duration,
    pub(crate) join_timeout: Duration,
    pub(crate) settle: Duration,
    pub(crate) idle: Duration,
    pub(crate) events: usize,
    pub(crate) event_spacing: Duration,
    pub(crate) event_tail: Duration,
    pub(crate) fail_timeout: Duration,
    pub(crate) leave_timeout: Duration,
    pub(crate) poll_every: Duration,
}

impl Config {
    pub(crate) fn from_env() -> Config {
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
pub(crate) enum Impl {
    Reference,
    Libserf,
}

impl Impl {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Impl::Reference => "reference",
            Impl::Libserf => "libserf",
        }
    }
}

pub(crate) struct Binaries {
    pub(crate) libserf: PathBuf,
    pub(crate) reference: Option<PathBuf>,
    reference_err: String,
    pub(crate) handler: PathBuf,
}

impl Binaries {
    pub(crate) fn locate() -> Result<Binaries, String> {
        let manifest = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
        let libserf = shipped_agent::path();
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

    pub(crate) fn agent(&self, imp: Impl) -> Result<&Path, String> {
        match imp {
            Impl::Libserf => Ok(&self.libserf),
            Impl::Reference => self
                .reference
                .as_deref()
                .ok_or_else(|| self.reference_err.clone()),
        }
    }

    /// The client every observation goes through, for both implementations.
    pub(crate) fn observer(&self) -> &Path {
        self.reference.as_deref().unwrap_or(&self.libserf)
    }
}

pub(crate) fn version_of(bin: &Path) -> String {
    Command::new(bin)
        .arg("version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}
