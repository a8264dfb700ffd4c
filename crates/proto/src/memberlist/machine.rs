//! The interface between a sans-I/O protocol core and whatever moves its bytes: the mio runtime
//! in production, the simulator in tests. Raw bytes in and out; framing is the core's business.

use std::net::SocketAddr;
use std::time::Instant;

use super::core::{Memberlist, OutboundStream, Transmit};
use super::delegate::Delegate;
use crate::log::LogLine;
use crate::telemetry::Reading;
use crate::wire::memberlist::stream;
use crate::wire::ErrorKind;

/// What a core made of the bytes read so far on an accepted connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamStatus {
    /// The request is not complete yet: read more.
    Incomplete,
    /// The request was handled; write the reply (if any) and close.
    Done(Option<Vec<u8>>),
}

/// A protocol core that can be driven by a runtime or a simulator.
pub trait Machine {
    fn handle_packet(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]);
    /// All bytes read so far from a connection we accepted.
    fn handle_stream_request(&mut self, now: Instant, data: &[u8]) -> StreamStatus;
    /// All bytes read so far of the reply to stream `id`; `eof` when the peer closed. Returns
    /// true once the reply has been consumed (or given up on).
    fn handle_stream_reply(&mut self, now: Instant, id: u64, data: &[u8], eof: bool) -> bool;
    /// Stream `id` could not be opened, written or read in time.
    fn handle_stream_failure(&mut self, now: Instant, id: u64, error: String);
    fn handle_timeout(&mut self, now: Instant);
    fn poll_transmit(&mut self) -> Option<Transmit>;
    fn poll_stream(&mut self) -> Option<OutboundStream>;
    fn poll_timeout(&self) -> Option<Instant>;
    /// Gossip rounds run so far ([`Stats::gossip_rounds`](super::Stats::gossip_rounds)): the
    /// runtime times the calls that ran one as `memberlist.gossip`. 0 if not counted.
    fn gossip_rounds(&self) -> u64 {
        0
    }
    /// Hands the core's counters and samples to `out` (see [`crate::telemetry`]); a runtime
    /// exporting metrics calls it after each turn of its loop. No default: a wrapper that
    /// forgot to pass it on would silently export nothing.
    fn read_telemetry(&mut self, out: &mut dyn FnMut(Reading));
    /// Hands the log lines the core wrote since the last call to `out` (see [`crate::log`]);
    /// no default, for the same reason.
    fn read_log(&mut self, out: &mut dyn FnMut(LogLine));
}

/// Plain memberlist with a delegate: the simplest [`Machine`].
pub struct MemberlistNode<D: Delegate> {
    pub memberlist: Memberlist,
    pub delegate: D,
}

impl<D: Delegate> Machine for MemberlistNode<D> {
    fn handle_packet(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        self.memberlist
            .handle_packet(now, from, datagram, &mut self.delegate);
    }

    fn handle_stream_request(&mut self, now: Instant, data: &[u8]) -> StreamStatus {
        accept_stream(&mut self.memberlist, now, data, &mut self.delegate)
    }

    fn handle_stream_reply(&mut self, now: Instant, id: u64, data: &[u8], eof: bool) -> bool {
        read_stream_reply(&mut self.memberlist, now, id, data, eof, &mut self.delegate)
    }

    fn handle_stream_failure(&mut self, now: Instant, id: u64, error: String) {
        self.memberlist
            .handle_stream_reply(now, id, Err(error), &mut self.delegate);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.memberlist.handle_timeout(now, &mut self.delegate);
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.memberlist.poll_transmit()
    }

    fn poll_stream(&mut self) -> Option<OutboundStream> {
        self.memberlist.poll_stream()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.memberlist.poll_timeout(&self.delegate)
    }

    fn gossip_rounds(&self) -> u64 {
        self.memberlist.stats().gossip_rounds
    }

    fn read_telemetry(&mut self, out: &mut dyn FnMut(Reading)) {
        self.memberlist.read_telemetry(out);
    }

    fn read_log(&mut self, out: &mut dyn FnMut(LogLine)) {
        self.memberlist.log.drain(out);
    }
}

/// Decodes an accepted connection's request once complete and lets memberlist answer it; a
/// request that cannot be read gets an error reply, as Go sends one.
pub fn accept_stream(
    m: &mut Memberlist,
    now: Instant,
    data: &[u8],
    d: &mut impl Delegate,
) -> StreamStatus {
    match stream::decode(m.wire_options(), data, false) {
        Ok((msg, _)) => StreamStatus::Done(m.handle_stream_request(now, msg, d)),
        Err(e) if matches!(e.kind, ErrorKind::Truncated { .. }) => StreamStatus::Incomplete,
        Err(e) => StreamStatus::Done(Some(m.stream_error_reply(&e))),
    }
}

/// Decodes the reply to a stream we opened once complete and hands it to memberlist.
pub fn read_stream_reply(
    m: &mut Memberlist,
    now: Instant,
    id: u64,
    data: &[u8],
    eof: bool,
    d: &mut impl Delegate,
) -> bool {
    let reply = match stream::decode(m.wire_options(), data, true) {
        Ok((msg, _)) => Ok(msg),
        Err(e) if matches!(e.kind, ErrorKind::Truncated { .. }) && !eof => return false,
        Err(e) => Err(e.to_string()),
    };
    m.handle_stream_reply(now, id, reply, d);
    true
}
