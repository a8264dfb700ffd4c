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

/// What the resident pages of an agent hold, by the kind of mapping they are in.
#[derive(Clone, Copy)]
pub(crate) enum RssPart {
    ProgramCode,
    ProgramReadOnly,
    ProgramData,
    LibraryCode,
    LibraryData,
    Stacks,
    Heap,
}

impl RssPart {
    pub(crate) const ALL: [RssPart; 7] = [
        RssPart::ProgramCode,
        RssPart::ProgramReadOnly,
        RssPart::ProgramData,
        RssPart::LibraryCode,
        RssPart::LibraryData,
        RssPart::Stacks,
        RssPart::Heap,
    ];

    pub(crate) fn label(self) -> &'static str {
        match self {
            RssPart::ProgramCode => "program code (the binary's text)",
            RssPart::ProgramReadOnly => "program read-only data, as in the file",
            RssPart::ProgramData => "program data (writable, relocated read-only)",
            RssPart::LibraryCode => "shared library code (libc, loader)",
            RssPart::LibraryData => "shared library data",
            RssPart::Stacks => "thread stacks (anonymous behind a guard page, [stack])",
            RssPart::Heap => "heap and allocator arenas (other anonymous)",
        }
    }

    /// The part a mapping's resident pages count in. `previous_guard`: the mapping right below is
    /// an inaccessible guard, as under every thread stack.
    fn of(perms: &str, path: &str, exe: &str, anonymous_kb: u64, previous_guard: bool) -> RssPart {
        let path = path.strip_suffix(" (deleted)").unwrap_or(path);
        let code = perms.as_bytes().get(2) == Some(&b'x');
        let clean_read_only = perms.as_bytes().get(1) == Some(&b'-') && anonymous_kb == 0;
        match path {
            "[stack]" => RssPart::Stacks,
            p if p == exe && code => RssPart::ProgramCode,
            p if p == exe && clean_read_only => RssPart::ProgramReadOnly,
            p if p == exe => RssPart::ProgramData,
            p if p.starts_with('/') && code => RssPart::LibraryCode,
            p if p.starts_with('/') => RssPart::LibraryData,
            _ if previous_guard => RssPart::Stacks,
            _ => RssPart::Heap,
        }
    }
}

/// Resident kB of `pid` per [`RssPart`], in the order of [`RssPart::ALL`], from its smaps.
/// The kernel's own mappings (vdso, vvar) are left out.
pub(crate) fn rss_parts(pid: u32) -> Option<[u64; RssPart::ALL.len()]> {
    let smaps = fs::read_to_string(format!("/proc/{pid}/smaps")).ok()?;
    let exe = fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let exe = exe.to_string_lossy();
    let exe = exe.strip_suffix(" (deleted)").unwrap_or(&exe);
    let mut parts = [0u64; RssPart::ALL.len()];
    let all = mappings(&smaps);
    if all.is_empty() {
        return None;
    }
    let mut under_guard = false;
    for m in all {
        if !matches!(m.path, "[vdso]" | "[vvar]" | "[vsyscall]" | "[vvar_vclock]") {
            parts[RssPart::of(m.perms, m.path, exe, m.anonymous_kb, under_guard) as usize] +=
                m.rss_kb;
        }
        // A thread's stack lies right above its guard: a page or a few, inaccessible.
        under_guard = m.perms == "---p" && m.size_kb <= 64;
    }
    Some(parts)
}

/// One mapping of an smaps file, with the figures the breakdown needs.
struct Mapping<'a> {
    perms: &'a str,
    path: &'a str,
    size_kb: u64,
    rss_kb: u64,
    anonymous_kb: u64,
}

/// The mappings of an smaps file, in address order.
fn mappings(smaps: &str) -> Vec<Mapping<'_>> {
    let mut out: Vec<Mapping> = Vec::new();
    let kb = |v: &str| v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
    for line in smaps.lines() {
        let first = line.split_ascii_whitespace().next().unwrap_or("");
        if let (Some(m), Some((key, value))) = (out.last_mut(), line.split_once(':')) {
            match key {
                "Size" => m.size_kb = kb(value),
                "Rss" => m.rss_kb = kb(value),
                "Anonymous" => m.anonymous_kb = kb(value),
                _ => {}
            }
        }
        if first.contains('-') && !first.ends_with(':') {
            out.push(Mapping {
                perms: line.split_ascii_whitespace().nth(1).unwrap_or(""),
                path: header_path(line),
                size_kb: 0,
                rss_kb: 0,
                anonymous_kb: 0,
            });
        }
    }
    out
}

/// The path of an smaps header line (`range perms offset dev inode path`), which may hold
/// spaces; empty for anonymous mappings.
fn header_path(line: &str) -> &str {
    let mut rest = line;
    for _ in 0..5 {
        rest = rest.trim_start();
        rest = rest.find(char::is_whitespace).map_or("", |i| &rest[i..]);
    }
    rest.trim()
}
