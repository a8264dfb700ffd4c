//! The Serf protocol without I/O: HashiCorp's byte formats ([`wire`]), SWIM with Lifeguard
//! ([`memberlist`]), the Serf event layer on top of it ([`serf`]) and a deterministic network
//! simulator ([`sim`]) that drives the same [`memberlist::machine::Machine`] the runtime drives.
//!
//! Nothing here opens a socket, reads a clock or asks the operating system for randomness: time,
//! bytes and entropy come in through arguments, so the crate's dependencies can do no I/O either
//! (the workspace's `ARCHITECTURE.md` explains the floors).

pub mod log;
pub mod memberlist;
pub mod serf;
mod shrink;
pub mod sim;
pub mod telemetry;
pub mod wire;
