//! The I/O runtime: one background thread per node that moves bytes between real sockets and a
//! sans-I/O [`Machine`](serf_proto::memberlist::machine::Machine), the real-socket twin of
//! [`serf_proto::sim`].
//!
//! [`bind`] opens the UDP socket and TCP listener memberlist shares one port between;
//! [`Runtime::spawn`] starts the `mio` loop that owns them and the machine; the returned
//! [`RuntimeHandle`] sends closures to run on that thread (API calls) and stops it. The loop
//! sleeps in `poll` until a socket is ready, a command arrives or the machine's next deadline
//! passes; nothing in it panics on network errors, they are counted in [`RuntimeStats`].

mod conn;
mod event_loop;
mod handle;
mod metrics_export;
mod settings;
pub mod snapshotter;
mod sockets;
mod stats;

pub(crate) use handle::panic_message;
pub use handle::{RuntimeError, RuntimeHandle};
pub use metrics_export::MetricsExporter;
pub use settings::{LogSink, Runtime};
pub use sockets::{bind, Sockets};
pub use stats::RuntimeStats;
