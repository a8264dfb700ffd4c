//! The lines HashiCorp's serf and memberlist log (`[INFO] serf: EventMemberJoin: b 127.0.0.1`),
//! written by the cores without a logger.
//!
//! Operators diagnose a cluster by these lines, so the texts and levels are HashiCorp's, taken
//! from `serf.go`, `delegate.go` and memberlist's `state.go`/`net.go`. A core keeps the lines
//! in a bounded buffer; whoever runs it drains them through
//! [`Machine::read_log`](crate::memberlist::machine::Machine::read_log) and writes them where
//! its users look: the library's C log callback, the agent's log and `serf monitor`. Nothing is
//! formatted or kept below the threshold, which is off unless someone reads the lines.

use std::fmt;

/// HashiCorp's levels, in increasing severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    /// The tag Go's logger writes in brackets.
    pub const fn go_tag(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERR",
        }
    }
}

/// One line: its level and its text after the level tag (`serf: EventMemberJoin: b 127.0.0.1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: Level,
    pub text: String,
}

impl fmt::Display for LogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.level.go_tag(), self.text)
    }
}

/// A core's lines waiting for a reader.
#[derive(Debug, Default)]
pub struct Log {
    threshold: Option<Level>,
    lines: Vec<LogLine>,
    dropped: u64,
}

impl Log {
    /// Lines kept between two reads; later ones are counted in [`Log::dropped`] instead.
    pub const CAPACITY: usize = 4096;

    /// Keeps lines at `threshold` and above from now on; `None` keeps none.
    pub fn set_threshold(&mut self, threshold: Option<Level>) {
        self.threshold = threshold;
    }

    pub fn enabled(&self, level: Level) -> bool {
        self.threshold.is_some_and(|t| level >= t)
    }

    /// Keeps the line `text()` builds, if its level is kept: nothing is formatted otherwise.
    pub fn write(&mut self, level: Level, text: impl FnOnce() -> String) {
        if !self.enabled(level) {
            return;
        }
        if self.lines.len() < Self::CAPACITY {
            self.lines.push(LogLine {
                level,
                text: text(),
            });
        } else {
            self.dropped += 1;
        }
    }

    /// Lines lost because nobody read them in time.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Hands every kept line to `out`, oldest first.
    pub fn drain(&mut self, out: &mut dyn FnMut(LogLine)) {
        for line in self.lines.drain(..) {
            out(line);
        }
    }
}

/// `log!(self.log, Info, "serf: EventMemberJoin: {} {}", name, addr)`: a line for a core's
/// [`Log`], formatted only when its level is kept.
#[macro_export]
macro_rules! log {
    ($log:expr, $level:ident, $($format:tt)+) => {
        $log.write($crate::log::Level::$level, || format!($($format)+))
    };
}
