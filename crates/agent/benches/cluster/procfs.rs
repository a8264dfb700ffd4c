//! Readings from `/proc`: on-CPU time of every thread of an agent, the host's CPU and CPU
//! pressure, resident and proportional memory, and the kernel's UDP counters.

use std::collections::HashMap;
use std::fs;

/// On-CPU nanoseconds of each thread of `pid` (first field of `/proc/<pid>/task/<tid>/schedstat`),
/// keyed by thread id: nanosecond precision, where `stat`'s 10 ms ticks would round a quiet agent's
/// few milliseconds per window to zero or one tick.
pub(crate) fn thread_cpu_ns(pid: u32) -> Option<HashMap<u32, u64>> {
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
pub(crate) fn cpu_ns_between(a: &HashMap<u32, u64>, b: &HashMap<u32, u64>) -> u64 {
    b.iter()
        .map(|(tid, &ns)| ns.saturating_sub(a.get(tid).copied().unwrap_or(0)))
        .sum()
}

/// (busy, total) jiffies of the whole machine from /proc/stat.
pub(crate) fn host_cpu() -> Option<(u64, u64)> {
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
pub(crate) fn psi_total() -> Option<u64> {
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

/// One figure of the report, or why it could not be measured.
pub(crate) type Cell = Result<f64, String>;

/// Mean over `pids` in MB, or why not every agent could be read.
pub(crate) fn mean_mb(pids: &[u32], file: &str, key: &str) -> Cell {
    let kb: Vec<u64> = pids.iter().filter_map(|&p| proc_kb(p, file, key)).collect();
    if kb.len() == pids.len() {
        Ok(kb.iter().sum::<u64>() as f64 / pids.len() as f64 / 1024.0)
    } else {
        Err(format!("{key} read for {}/{} agents", kb.len(), pids.len()))
    }
}

pub(crate) fn udp_errors(pid: u32) -> Option<(u64, u64, u64)> {
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
