//! Property tests for the wire layer.
//!
//! * Round trips: every message type, wrapper and RPC struct decodes to what was encoded, in both
//!   integer formats and both string flavors, re-encodes to the same bytes (the encoding is
//!   canonical), and decodes just as well when written the loose ways Go's decoders accept (any
//!   integer width, bin for strings, nil for zero values, shuffled keys, unknown keys).
//! * Truncation: strict prefixes of a valid encoding are refused wherever the format is
//!   self-delimiting, and never panic elsewhere.
//! * Robustness: arbitrary and mutated input never panics any decoder entry point, and declared
//!   lengths the input cannot hold are refused before anything is allocated for them.
//!
//! One module per subject: [`msgpack`] values at their encoding boundaries, [`memberlist`]
//! messages, [`layers`] (compound, CRC, label, LZW), [`keyring`] encryption, [`transport`] (UDP
//! packets and TCP streams with every wire option), [`serf_messages`], [`rpc`], [`robustness`]
//! against arbitrary and mutated input, and [`limits`] on hostile lengths and nesting. The shared
//! pieces: [`support`] (configuration and checks), [`strategies`] for primitive values, [`loose`]
//! msgpack writing, and [`alloc`] tracking.

mod alloc;
mod keyring;
mod layers;
mod limits;
mod loose;
mod memberlist;
mod msgpack;
mod robustness;
mod rpc;
mod serf_messages;
mod strategies;
mod support;
mod transport;
