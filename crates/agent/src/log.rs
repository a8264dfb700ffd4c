//! The agent's log: Go `log`-style lines (`2013/10/22 10:35:33 [INFO] agent: ...`), filtered by
//! level for stderr and syslog, kept unfiltered in a ring of the last 512 lines that `serf
//! monitor` replays, and fanned out to monitors, each with its own level.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};

/// How many recent lines a new monitor receives first (HashiCorp's `NewLogWriter(512)`).
pub const RING_LINES: usize = 512;

/// HashiCorp's levels (logutils), in increasing severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Err,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Err => "ERR",
        }
    }

    /// The level named in a line's `[LEVEL]` tag, as logutils reads it back for filtering.
    fn of_line(line: &str) -> Option<Level> {
        let start = line.find('[')?;
        let end = start + line[start..].find(']')?;
        line[start + 1..end].parse().ok()
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown level name; the message is HashiCorp's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid log level: {0}. Valid log levels are: [TRACE DEBUG INFO WARN ERR]")]
pub struct InvalidLevel(pub String);

impl FromStr for Level {
    type Err = InvalidLevel;

    /// Case-insensitive, as the agent upper-cases `-log-level` before checking it.
    fn from_str(s: &str) -> Result<Level, InvalidLevel> {
        match s.to_ascii_uppercase().as_str() {
            "TRACE" => Ok(Level::Trace),
            "DEBUG" => Ok(Level::Debug),
            "INFO" => Ok(Level::Info),
            "WARN" => Ok(Level::Warn),
            "ERR" => Ok(Level::Err),
            _ => Err(InvalidLevel(s.to_ascii_uppercase())),
        }
    }
}

/// Where filtered lines go besides monitors.
pub trait Sink: Send {
    fn write_line(&mut self, level: Level, line: &str);
}

/// The agent's console: standard output, each line indented by four spaces (HashiCorp's
/// `PrefixedUi` info prefix). Lines are held back until [`Gate::open`], so the start-up banner
/// comes first, as in HashiCorp's agent.
pub struct Console {
    held: Arc<Mutex<Option<Vec<String>>>>,
}

/// Releases a [`Console`]'s held lines and lets later ones through.
#[derive(Clone)]
pub struct Gate {
    held: Arc<Mutex<Option<Vec<String>>>>,
}

impl Console {
    pub fn gated() -> (Console, Gate) {
        let held = Arc::new(Mutex::new(Some(Vec::new())));
        (Console { held: held.clone() }, Gate { held })
    }
}

impl Gate {
    pub fn open(&self) {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner()).take();
        for line in held.into_iter().flatten() {
            println!("    {line}");
        }
    }
}

impl Sink for Console {
    fn write_line(&mut self, _level: Level, line: &str) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        match held.as_mut() {
            Some(lines) => lines.push(line.to_string()),
            None => println!("    {line}"),
        }
    }
}

/// The system log (`-syslog`), at NOTICE priority with tag `serf` as HashiCorp's agent does,
/// except that errors and warnings keep their severity.
pub struct Syslog;

impl Syslog {
    /// Opens the connection with the facility name from `syslog_facility` (LOCAL0 by default).
    /// Fails as HashiCorp's agent does: for a facility go-syslog does not know, or when no
    /// local syslog socket answers.
    pub fn open(facility: &str) -> Result<Syslog, String> {
        let name = facility.to_ascii_uppercase();
        let facility = match name.as_str() {
            "KERN" => libc::LOG_KERN,
            "USER" => libc::LOG_USER,
            "MAIL" => libc::LOG_MAIL,
            "DAEMON" => libc::LOG_DAEMON,
            "AUTH" => libc::LOG_AUTH,
            "SYSLOG" => libc::LOG_SYSLOG,
            "LPR" => libc::LOG_LPR,
            "NEWS" => libc::LOG_NEWS,
            "UUCP" => libc::LOG_UUCP,
            "CRON" => libc::LOG_CRON,
            "AUTHPRIV" => libc::LOG_AUTHPRIV,
            "FTP" => libc::LOG_FTP,
            "LOCAL0" => libc::LOG_LOCAL0,
            "LOCAL1" => libc::LOG_LOCAL1,
            "LOCAL2" => libc::LOG_LOCAL2,
            "LOCAL3" => libc::LOG_LOCAL3,
            "LOCAL4" => libc::LOG_LOCAL4,
            "LOCAL5" => libc::LOG_LOCAL5,
            "LOCAL6" => libc::LOG_LOCAL6,
            "LOCAL7" => libc::LOG_LOCAL7,
            _ => {
                return Err(format!(
                    "Syslog setup failed: invalid syslog facility: {name}"
                ))
            }
        };
        if !syslog_reachable() {
            return Err("Syslog setup failed: Unix syslog delivery error".into());
        }
        // SAFETY: the identity is a static NUL-terminated string, as openlog keeps the pointer.
        unsafe { libc::openlog(c"serf".as_ptr(), libc::LOG_PID, facility) };
        Ok(Syslog)
    }
}

/// Whether a local syslog daemon listens where Go's `log/syslog` looks (datagram, then stream
/// sockets at `/dev/log`, `/var/run/syslog`, `/var/run/log`).
fn syslog_reachable() -> bool {
    use std::os::unix::net::{UnixDatagram, UnixStream};
    const PATHS: [&str; 3] = ["/dev/log", "/var/run/syslog", "/var/run/log"];
    PATHS
        .iter()
        .any(|p| UnixDatagram::unbound().and_then(|s| s.connect(p)).is_ok())
        || PATHS.iter().any(|p| UnixStream::connect(p).is_ok())
}

impl Sink for Syslog {
    fn write_line(&mut self, level: Level, line: &str) {
        let priority = match level {
            Level::Err => libc::LOG_ERR,
            Level::Warn => libc::LOG_WARNING,
            _ => libc::LOG_NOTICE,
        };
        let Ok(text) = std::ffi::CString::new(line.replace('\0', " ")) else {
            return;
        };
        // SAFETY: both strings are NUL-terminated and outlive the call; "%s" consumes one.
        unsafe { libc::syslog(priority, c"%s".as_ptr(), text.as_ptr()) };
    }
}

/// What became of a line handed to a monitor.
pub enum Delivery {
    Taken,
    /// The monitor is too far behind; the line is dropped for it.
    Full,
    /// The monitor is gone and is removed.
    Gone,
}

/// Where a monitor's lines go. It runs with the log locked, so it must only queue the line.
pub type Deliver = Box<dyn FnMut(&str) -> Delivery + Send>;

struct Monitor {
    level: Level,
    deliver: Deliver,
}

struct State {
    level: Level,
    sinks: Vec<Box<dyn Sink>>,
    ring: VecDeque<String>,
    monitors: HashMap<u64, Monitor>,
    next_monitor: u64,
    dropped: u64,
}

/// A cheap, cloneable handle on the agent's log.
#[derive(Clone)]
pub struct Logger {
    state: Arc<Mutex<State>>,
}

/// A monitor's lines on a channel (for tests): those at or above its level, the ring's first.
#[cfg(test)]
pub struct Subscription {
    pub id: u64,
    pub lines: crossbeam_channel::Receiver<String>,
}

impl Logger {
    pub fn new(level: Level, sinks: Vec<Box<dyn Sink>>) -> Logger {
        Logger {
            state: Arc::new(Mutex::new(State {
                level,
                sinks,
                ring: VecDeque::with_capacity(RING_LINES),
                monitors: HashMap::new(),
                next_monitor: 1,
                dropped: 0,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the level of stderr and syslog (SIGHUP reload).
    pub fn set_level(&self, level: Level) {
        self.lock().level = level;
    }

    pub fn level(&self) -> Level {
        self.lock().level
    }

    pub fn enabled(&self, level: Level) -> bool {
        level >= self.level()
    }

    /// Logs one message, e.g. `log(Level::Info, "agent: Received event: member-join")`.
    pub fn log(&self, level: Level, message: impl fmt::Display) {
        let mut line = format!("{} [{}] {}", timestamp(), level, message);
        // Go's logger ends a line with a newline unless the message already does, and every
        // reader of the agent's log (console, ring, monitors) drops one: a message ending in
        // newlines (a multi-error list) keeps all but one of them.
        if line.ends_with('\n') {
            line.pop();
        }
        let mut state = self.lock();
        if level >= state.level {
            for sink in state.sinks.iter_mut() {
                sink.write_line(level, &line);
            }
        }
        if state.ring.len() == RING_LINES {
            state.ring.pop_front();
        }
        state.ring.push_back(line.clone());
        let mut dropped = 0;
        state.monitors.retain(|_, m| {
            if level < m.level {
                return true;
            }
            match (m.deliver)(&line) {
                Delivery::Taken => true,
                Delivery::Full => {
                    dropped += 1;
                    true
                }
                Delivery::Gone => false,
            }
        });
        state.dropped += dropped;
    }

    pub fn trace(&self, m: impl fmt::Display) {
        self.log(Level::Trace, m)
    }
    pub fn debug(&self, m: impl fmt::Display) {
        self.log(Level::Debug, m)
    }
    pub fn info(&self, m: impl fmt::Display) {
        self.log(Level::Info, m)
    }
    pub fn warn(&self, m: impl fmt::Display) {
        self.log(Level::Warn, m)
    }
    pub fn error(&self, m: impl fmt::Display) {
        self.log(Level::Err, m)
    }

    /// Registers a monitor: it is first handed the ring's lines at or above `level`, then each
    /// new one. Returns its id for [`Logger::unmonitor`].
    pub fn monitor(&self, level: Level, mut deliver: Deliver) -> u64 {
        let mut state = self.lock();
        for line in &state.ring {
            if Level::of_line(line).is_none_or(|l| l >= level) {
                let _ = deliver(line);
            }
        }
        let id = state.next_monitor;
        state.next_monitor += 1;
        state.monitors.insert(id, Monitor { level, deliver });
        id
    }

    pub fn unmonitor(&self, id: u64) {
        self.lock().monitors.remove(&id);
    }

    /// A monitor whose lines arrive on a channel.
    #[cfg(test)]
    pub fn subscribe(&self, level: Level) -> Subscription {
        let (tx, lines) = crossbeam_channel::unbounded();
        let id = self.monitor(
            level,
            Box::new(move |line| match tx.send(line.to_string()) {
                Ok(()) => Delivery::Taken,
                Err(_) => Delivery::Gone,
            }),
        );
        Subscription { id, lines }
    }

    /// Lines not delivered to monitors that were too slow.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }
}

/// Local time as Go's `log.LstdFlags` prints it: `2006/01/02 15:04:05`.
fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as libc::time_t)
        .unwrap_or(0);
    // SAFETY: localtime_r writes only into `tm`, which is plain data, and reads `now`.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&now, &mut tm) }.is_null() {
        return "0000/00/00 00:00:00".to_string();
    }
    format!(
        "{:04}/{:02}/{:02} {:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Collects what a sink would have printed.
    struct Capture(Arc<Mutex<Vec<String>>>);

    impl Sink for Capture {
        fn write_line(&mut self, _level: Level, line: &str) {
            self.0.lock().unwrap().push(line.to_string());
        }
    }

    /// A logger at `level` whose one sink is a capture, and what it captured.
    fn captured(level: Level) -> (Logger, Arc<Mutex<Vec<String>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        (
            Logger::new(level, vec![Box::new(Capture(seen.clone()))]),
            seen,
        )
    }

    /// Everything the ring holds, as a monitor at the lowest level is first sent it.
    fn ring(log: &Logger) -> Vec<String> {
        log.subscribe(Level::Trace).lines.try_iter().collect()
    }

    #[test]
    fn lines_look_like_go_log_and_are_filtered_for_sinks_only() {
        let (log, seen) = captured(Level::Info);
        log.debug("agent: quiet");
        log.info("agent: Received event: member-join");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        let re = regex::Regex::new(
            r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} \[INFO\] agent: Received event: member-join$",
        )
        .unwrap();
        assert!(re.is_match(&seen[0]), "{}", seen[0]);
        // The ring keeps everything, so a DEBUG monitor still sees the quiet line.
        let sub = log.subscribe(Level::Debug);
        assert_eq!(sub.lines.try_iter().count(), 2);
    }

    #[test]
    fn monitors_get_their_level_and_the_ring_is_bounded() {
        let log = Logger::new(Level::Err, vec![]);
        for i in 0..RING_LINES + 10 {
            log.info(format!("line {i}"));
        }
        let warn_only = log.subscribe(Level::Warn);
        assert_eq!(warn_only.lines.try_iter().count(), 0);
        let all = log.subscribe(Level::Trace);
        let lines: Vec<String> = all.lines.try_iter().collect();
        assert_eq!(lines.len(), RING_LINES);
        assert!(lines[0].ends_with("line 10"));
        log.warn("agent: late");
        assert!(warn_only
            .lines
            .try_recv()
            .unwrap()
            .ends_with("[WARN] agent: late"));
        assert!(all.lines.try_recv().unwrap().ends_with("late"));
        log.unmonitor(all.id);
        log.error("agent: after");
        assert!(all.lines.try_recv().is_err());
    }

    #[test]
    fn a_message_ending_in_newlines_loses_one_as_in_go() {
        let (log, seen) = captured(Level::Info);
        log.warn("agent: error joining: 1 error occurred:\n\t* x\n\n");
        log.info("agent: plain");
        let seen = seen.lock().unwrap();
        assert!(seen[0].ends_with("occurred:\n\t* x\n"), "{:?}", seen[0]);
        assert!(seen[1].ends_with("agent: plain"), "{:?}", seen[1]);
        let lines = ring(&log);
        assert!(lines[0].ends_with("* x\n"), "{:?}", lines[0]);
    }

    #[test]
    fn level_names_parse_like_hashicorps() {
        assert_eq!("debug".parse::<Level>(), Ok(Level::Debug));
        assert_eq!("ERR".parse::<Level>(), Ok(Level::Err));
        let err = "verbose".parse::<Level>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "Invalid log level: VERBOSE. Valid log levels are: [TRACE DEBUG INFO WARN ERR]"
        );
    }
}
