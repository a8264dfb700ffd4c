//! libserf: HashiCorp Serf re-implemented in Rust, wire-compatible with the Go agents.
//!
//! This crate is the library the C ABI ships: the protocol itself lives in `serf_proto` (byte
//! formats, memberlist, serf, the simulator; no I/O), [`runtime`] moves its bytes over real
//! sockets on a mio thread, [`api`] is the Rust API and the one door the faces use, and [`ffi`]
//! is the C ABI over it. `ARCHITECTURE.md` walks the floors.

pub mod api;
pub mod ffi;
pub mod runtime;

pub use api::{Error, Options, Serf};
