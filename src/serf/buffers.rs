//! The rings serf remembers recent user events and queries in, indexed by Lamport time: they
//! drop duplicates (gossip delivers each message many times) and messages too old to matter.

use crate::wire::msgpack::{Bytes, GoString};
use crate::wire::serf as wire;

/// Ring size of both buffers (`EventBuffer`, `QueryBuffer` defaults).
pub const BUFFER_SIZE: usize = 512;

/// Whether `ltime` is too old for a ring of `size` slots when the clock reads `now`.
fn too_old(now: u64, ltime: u64, size: usize) -> bool {
    let size = size as u64;
    now > size && ltime < now - size
}

/// Recent user events, also sent whole in push/pull.
pub struct EventBuffer {
    slots: Vec<Option<wire::UserEvents>>,
}

impl EventBuffer {
    pub fn new() -> EventBuffer {
        EventBuffer {
            slots: vec![None; BUFFER_SIZE],
        }
    }

    /// Records an event seen at clock time `now`; false when it is a duplicate or too old.
    pub fn accept(&mut self, now: u64, ltime: u64, name: &GoString, payload: &[u8]) -> bool {
        if too_old(now, ltime, self.slots.len()) {
            return false;
        }
        let idx = (ltime % self.slots.len() as u64) as usize;
        let slot = match &mut self.slots[idx] {
            Some(s) if s.ltime == ltime => s,
            other => other.insert(wire::UserEvents {
                ltime,
                events: Vec::new(),
            }),
        };
        let payload_of = |e: &wire::UserEvent| e.payload.as_deref().unwrap_or_default().to_vec();
        if slot
            .events
            .iter()
            .any(|e| &e.name == name && payload_of(e) == payload)
        {
            return false;
        }
        slot.events.push(wire::UserEvent {
            name: name.clone(),
            payload: Some(Bytes(payload.to_vec())),
        });
        true
    }

    /// The ring as serf's push/pull carries it (empty slots nil).
    pub fn to_wire(&self) -> Vec<Option<wire::UserEvents>> {
        self.slots.clone()
    }
}

impl Default for EventBuffer {
    fn default() -> Self {
        EventBuffer::new()
    }
}

/// Recent query ids per Lamport time.
pub struct QueryBuffer {
    slots: Vec<Option<(u64, Vec<u32>)>>,
}

impl QueryBuffer {
    pub fn new() -> QueryBuffer {
        QueryBuffer {
            slots: vec![None; BUFFER_SIZE],
        }
    }

    /// Records a query seen at clock time `now`; false when it is a duplicate or too old.
    pub fn accept(&mut self, now: u64, ltime: u64, id: u32) -> bool {
        if too_old(now, ltime, self.slots.len()) {
            return false;
        }
        let idx = (ltime % self.slots.len() as u64) as usize;
        let (_, ids) = match &mut self.slots[idx] {
            Some(s) if s.0 == ltime => s,
            other => other.insert((ltime, Vec::new())),
        };
        if ids.contains(&id) {
            return false;
        }
        ids.push(id);
        true
    }
}

impl Default for QueryBuffer {
    fn default() -> Self {
        QueryBuffer::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_deduplicated_per_time_and_old_ones_refused() {
        let mut b = EventBuffer::new();
        let name = GoString::from("deploy");
        assert!(b.accept(10, 5, &name, b"v1"));
        assert!(!b.accept(10, 5, &name, b"v1"));
        assert!(
            b.accept(10, 5, &name, b"v2"),
            "another payload at the same time is another event"
        );
        assert!(b.accept(600, 100, &name, b"v1"));
        assert!(!b.accept(600, 87, &name, b"v1"), "older than the ring");
        assert_eq!(b.to_wire().iter().flatten().count(), 2);
    }

    #[test]
    fn queries_are_deduplicated_by_time_and_id() {
        let mut b = QueryBuffer::new();
        assert!(b.accept(3, 2, 7));
        assert!(!b.accept(3, 2, 7));
        assert!(b.accept(3, 2, 8));
        assert!(
            b.accept(3, 2 + BUFFER_SIZE as u64, 7),
            "a newer time replaces the slot"
        );
    }
}
