//! The agents of one run and the CLI around them: starting agent i with its flags, the guards
//! that kill every process on drop, and observing the cluster through `serf members`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::netns::NetNs;
use crate::{GOSSIP_PORT, HANDLER_FLAG, RPC_PORT};

fn ip_of(i: usize) -> String {
    format!("127.0.{}.{}", i / 250, i % 250 + 2)
}

pub(crate) fn rpc_of(i: usize) -> String {
    format!("{}:{RPC_PORT}", ip_of(i))
}

/// Every agent of one run; dropping it kills (SIGKILL) and reaps them all, even on panic.
pub(crate) struct Cluster {
    pub(crate) agents: Vec<Option<Child>>,
}

impl Cluster {
    pub(crate) fn pid(&self, i: usize) -> Option<u32> {
        self.agents.get(i)?.as_ref().map(Child::id)
    }

    pub(crate) fn exited(&mut self) -> Vec<usize> {
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

    pub(crate) fn kill9(&mut self, i: usize) -> Result<(), String> {
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
pub(crate) struct ChildGuard(Option<Child>);

impl ChildGuard {
    pub(crate) fn wait_timeout(&mut self, limit: Duration) -> Result<bool, String> {
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

pub(crate) struct Run<'a> {
    pub(crate) cfg: &'a Config,
    pub(crate) ns: NetNs,
    pub(crate) dir: PathBuf,
    pub(crate) agent_bin: PathBuf,
    pub(crate) observer_bin: PathBuf,
    pub(crate) handler: PathBuf,
    pub(crate) n: usize,
}

impl Run<'_> {
    pub(crate) fn spawn_agent(&self, i: usize) -> Result<Child, String> {
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

    pub(crate) fn events_log(&self) -> PathBuf {
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
    pub(crate) fn poll_until(
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

    pub(crate) fn control(&self, args: &[String]) -> Result<ChildGuard, String> {
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
