//! The C ABI (`include/serf.h`), following rustls-ffi's conventions (`ARCHITECTURE.md`).
//!
//! Every exported function is prefixed `serf_`, catches panics, turns NULL / invalid UTF-8 /
//! oversized arguments into a [`serf_status`](status::serf_status), and documents who owns what.
//! One file per concept; `build.rs` runs cbindgen over every file of this directory.

#![allow(non_camel_case_types)]
#![allow(clippy::not_unsafe_ptr_arg_deref)]

pub mod config;
pub mod coordinates;
mod dispatcher;
pub mod events;
pub mod keys;
pub mod log;
pub mod members;
pub mod node;
pub mod queries;
pub mod stats;
pub mod status;
pub mod version;

pub use version::{SERF_VERSION_MAJOR, SERF_VERSION_MINOR, SERF_VERSION_PATCH};
