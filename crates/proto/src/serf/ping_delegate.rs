//! The ping delegate (HashiCorp's ping_delegate.go): our Vivaldi coordinate rides on every UDP
//! ack, and each direct probe's round-trip time updates it and caches the peer's. memberlist
//! calls these through the delegate in delegate.rs.

use std::time::Duration;

use super::state::State;
use super::vivaldi::{self, LatencyFilter};
use crate::memberlist::Node;
use crate::telemetry::Histogram;
use crate::wire::msgpack::Dialect;
use crate::wire::serf as wire;

impl State {
    /// Our coordinate rides on every UDP ack (`PingVersion` 1), as Go's ping delegate does.
    pub(super) fn coordinate_ack_payload(&self) -> Vec<u8> {
        match &self.coordinates {
            Some(c) => wire::encode_ack_payload(c.coordinate(), Dialect::GOSSIP),
            None => Vec::new(),
        }
    }

    /// A direct probe of `node` took `rtt`: moves our coordinate by the one in its ack, and
    /// caches theirs (Go `NotifyPingComplete`).
    pub(super) fn update_coordinate(&mut self, node: &Node, rtt: Duration, payload: &[u8]) {
        let Some(client) = &mut self.coordinates else {
            return;
        };
        // An empty payload: the peer has coordinates disabled. Bad ones are dropped.
        let Ok(Some(theirs)) = wire::decode_ack_payload(payload) else {
            return;
        };
        let name = node.name.as_str_lossy();
        let before = client.coordinate().clone();
        let mut member = self.members.get_mut(&name);
        // A node memberlist knows and serf not yet: its sample counts alone.
        let mut unknown = LatencyFilter::default();
        let filter = member.as_mut().map_or(&mut unknown, |m| &mut m.rtts);
        match client.update(filter, &theirs, rtt) {
            Ok(after) => {
                if rtt.is_zero() {
                    self.counters.coordinate_zero_rtts += 1;
                }
                // How far this update moved us, in ms (Go's `adjustment-ms`).
                if let Some(moved) = vivaldi::distance(&before, after) {
                    let moved_ms = moved.as_secs_f64() * 1000.0;
                    self.samples
                        .histogram(Histogram::CoordinateAdjustment, moved_ms);
                }
                if let Some(m) = member {
                    match &mut m.coordinate {
                        Some(kept) => **kept = theirs,
                        None => m.coordinate = Some(Box::new(theirs)),
                    }
                }
            }
            Err(_) => {
                self.counters.coordinate_rejections += 1;
            }
        }
    }
}
