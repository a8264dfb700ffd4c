//! libserf: HashiCorp Serf re-implemented in Rust, wire-compatible with the Go agents.
//!
//! Layers (see `design.md`): [`wire`] holds the byte formats; the protocol cores, runtime, C ABI
//! and agent build on it.

pub mod agent;
pub mod api;
pub mod ffi;
#[doc(hidden)]
pub mod fuzzing;
pub mod memberlist;
pub mod runtime;
pub mod serf;
pub mod sim;
pub mod telemetry;
pub mod wire;

pub use api::{Error, Options, Serf};
