//! Byte formats only: everything HashiCorp's agents put on the wire, and nothing that does I/O.

mod error;
pub mod memberlist;
pub mod msgpack;
pub mod rpc;
pub mod serf;

pub use error::{DecodeError, DecodeResult, ErrorKind};
