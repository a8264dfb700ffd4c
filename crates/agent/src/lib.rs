//! The `serf` agent and CLI: a drop-in for HashiCorp's binary (flags, JSON config, RPC protocol,
//! event-handler contract), built on [`serf::api::Serf`].

pub mod cli;
pub mod client;
pub mod command;
pub mod config;
pub mod duration;
pub mod filter;
pub mod flags;
pub mod frame;
#[doc(hidden)]
pub mod fuzzing;
pub mod gojson;
pub mod gotext;
pub mod handlers;
pub mod http;
pub mod log;
pub mod mdns;
pub mod name_service;
mod resident;
pub mod server;
pub mod service;
pub mod telemetry;
