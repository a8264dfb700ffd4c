//! The log callback: levels and the sink a config hands to its nodes.
//!
//! The protocol core does not log (it reports through events, stats and return values). What
//! reaches the callback comes from the C layer: node start and stop, joins, leaves, events dropped
//! because the queue was full, and (at debug level) every failed call on a node with its message.

use std::ffi::{c_char, c_void};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::api::{LogLevel, LogLine, LogSink};

use super::status::to_cstring;

/// No messages at all.
pub const SERF_LOG_OFF: u32 = 0;
pub const SERF_LOG_ERROR: u32 = 1;
pub const SERF_LOG_WARN: u32 = 2;
pub const SERF_LOG_INFO: u32 = 3;
pub const SERF_LOG_DEBUG: u32 = 4;

/// A log callback: `ctx` as registered, the message's level (`SERF_LOG_*`) and the message, a
/// NUL-terminated UTF-8 string borrowed for the duration of the call only.
#[allow(non_camel_case_types)]
pub type serf_log_callback =
    Option<unsafe extern "C" fn(ctx: *mut c_void, level: u32, message: *const c_char)>;

/// Releases a callback's context once the library no longer calls it.
#[allow(non_camel_case_types)]
pub type serf_drop_callback = Option<unsafe extern "C" fn(ctx: *mut c_void)>;

/// A registered callback with its context; `drop` runs (once) when the last user lets go.
pub(crate) struct Sink<F: Copy> {
    pub call: F,
    pub drop: serf_drop_callback,
    pub ctx: *mut c_void,
}

// SAFETY: the C caller promises (in the documentation of every registration function) that the
// callback and its context may be used from any thread.
unsafe impl<F: Copy> Send for Sink<F> {}
unsafe impl<F: Copy> Sync for Sink<F> {}

impl<F: Copy> Drop for Sink<F> {
    fn drop(&mut self) {
        if let Some(drop) = self.drop {
            // SAFETY: registered by the caller for exactly this context; called once.
            unsafe { drop(self.ctx) };
        }
    }
}

type LogFn = unsafe extern "C" fn(*mut c_void, u32, *const c_char);

/// The level and sink shared by a config and the nodes created from it.
#[derive(Clone)]
pub(crate) struct Logger {
    pub level: u32,
    pub sink: Option<Arc<Sink<LogFn>>>,
}

impl Default for Logger {
    fn default() -> Self {
        Logger {
            level: SERF_LOG_INFO,
            sink: None,
        }
    }
}

impl Logger {
    pub fn set_sink(
        &mut self,
        call: serf_log_callback,
        drop: serf_drop_callback,
        ctx: *mut c_void,
    ) {
        self.sink = call.map(|call| Arc::new(Sink { call, drop, ctx }));
        if call.is_none() {
            // No callback to keep: release the context right away.
            if let Some(drop) = drop {
                // SAFETY: the caller handed us this context to release.
                unsafe { drop(ctx) };
            }
        }
    }

    pub fn enabled(&self, level: u32) -> bool {
        self.sink.is_some() && level != SERF_LOG_OFF && level <= self.level
    }

    pub fn log(&self, level: u32, message: impl FnOnce() -> String) {
        if !self.enabled(level) {
            return;
        }
        if let Some(sink) = &self.sink {
            let text = to_cstring(&message());
            // SAFETY: the callback was registered for this context; the string outlives the call.
            unsafe { (sink.call)(sink.ctx, level, text.as_ptr()) };
        }
    }
}

/// Lines waiting for the relay thread; later ones are dropped while it is behind.
const RELAY_BACKLOG: usize = 4096;

/// HashiCorp's `serf:`/`memberlist:` lines of a node, handed to the C callback on a thread of
/// their own (`serf-log`), so that a slow callback never stalls the protocol thread. `None`
/// without a callback. The thread ends once the node's runtime drops the sink.
pub(crate) fn relay(logger: &Logger) -> Option<(LogSink, JoinHandle<()>)> {
    let level = match logger.level {
        _ if logger.sink.is_none() => return None,
        SERF_LOG_ERROR => LogLevel::Error,
        SERF_LOG_WARN => LogLevel::Warn,
        SERF_LOG_INFO => LogLevel::Info,
        SERF_LOG_DEBUG => LogLevel::Debug,
        _ => return None,
    };
    let (tx, rx) = crossbeam_channel::bounded::<LogLine>(RELAY_BACKLOG);
    let logger = logger.clone();
    let thread = std::thread::Builder::new()
        .name("serf-log".to_string())
        .spawn(move || {
            for line in rx {
                let level = match line.level {
                    LogLevel::Error => SERF_LOG_ERROR,
                    LogLevel::Warn => SERF_LOG_WARN,
                    LogLevel::Info => SERF_LOG_INFO,
                    LogLevel::Debug => SERF_LOG_DEBUG,
                };
                logger.log(level, || line.text);
            }
        })
        .ok()?;
    let write = Arc::new(move |line: &LogLine| {
        let _ = tx.try_send(line.clone());
    });
    Some((LogSink { level, write }, thread))
}
