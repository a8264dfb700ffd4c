//! The rings serf remembers recent user events and queries in, indexed by Lamport time: they
//! drop duplicates (gossip delivers each message many times) and messages too old to matter.

use crate::wire::msgpack::{Bytes, GoString};
use crate::wire::serf as wire;

/// Ring size of both buffers (`EventBuffer`, `QueryBuffer` defaults).
pub const BUFFER_SIZE: usize = 512;

/// What a ring made of a message it was offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// First sight: deliver it and gossip it on.
    New,
    /// Seen before (gossip delivers every message many times).
    Duplicate,
    /// Older than the ring remembers, so it cannot be told apart from a duplicate: dropped.
    /// This is a real loss when the message was new, so it is counted.
    TooOld,
}

/// Whether `ltime` is too old for a ring of `size` slots when the clock reads `now`, or its
/// slot already holds a newer time. Go checks only the first; the second matters when a
/// message arrives exactly `size` ticks late: Go then takes the newer entry's slot, and both
/// messages can be delivered twice.
fn too_old(now: u64, ltime: u64, size: usize, slot_time: Option<u64>) -> bool {
    let size = size as u64;
    (now > size && ltime < now - size) || slot_time.is_some_and(|t| t > ltime)
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

    /// Records an event seen at clock time `now`.
    pub fn accept(&mut self, now: u64, ltime: u64, name: &GoString, payload: &[u8]) -> Admission {
        let idx = (ltime % self.slots.len() as u64) as usize;
        let slot_time = self.slots[idx].as_ref().map(|s| s.ltime);
        if too_old(now, ltime, self.slots.len(), slot_time) {
            return Admission::TooOld;
        }
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
            return Admission::Duplicate;
        }
        slot.events.push(wire::UserEvent {
            name: name.clone(),
            payload: Some(Bytes(payload.to_vec())),
        });
        Admission::New
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

    /// Records a query seen at clock time `now`.
    pub fn accept(&mut self, now: u64, ltime: u64, id: u32) -> Admission {
        let idx = (ltime % self.slots.len() as u64) as usize;
        let slot_time = self.slots[idx].as_ref().map(|s| s.0);
        if too_old(now, ltime, self.slots.len(), slot_time) {
            return Admission::TooOld;
        }
        let (_, ids) = match &mut self.slots[idx] {
            Some(s) if s.0 == ltime => s,
            other => other.insert((ltime, Vec::new())),
        };
        if ids.contains(&id) {
            return Admission::Duplicate;
        }
        ids.push(id);
        Admission::New
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
        assert_eq!(b.accept(10, 5, &name, b"v1"), Admission::New);
        assert_eq!(b.accept(10, 5, &name, b"v1"), Admission::Duplicate);
        assert_eq!(
            b.accept(10, 5, &name, b"v2"),
            Admission::New,
            "another payload at the same time is another event"
        );
        assert_eq!(b.accept(600, 100, &name, b"v1"), Admission::New);
        assert_eq!(
            b.accept(600, 87, &name, b"v1"),
            Admission::TooOld,
            "older than the ring"
        );
        assert_eq!(b.to_wire().iter().flatten().count(), 2);
    }

    #[test]
    fn an_event_exactly_a_ring_late_does_not_take_a_newer_ones_slot() {
        let mut b = EventBuffer::new();
        let name = GoString::from("deploy");
        let late = 100;
        let newer = late + BUFFER_SIZE as u64;
        assert_eq!(b.accept(newer, late, &name, b"old"), Admission::New);
        assert_eq!(b.accept(newer, newer, &name, b"new"), Admission::New);
        assert_eq!(b.accept(newer, late, &name, b"other"), Admission::TooOld);
        assert_eq!(
            b.accept(newer, newer, &name, b"new"),
            Admission::Duplicate,
            "the newer event is still remembered"
        );
    }

    #[test]
    fn queries_are_deduplicated_by_time_and_id() {
        let mut b = QueryBuffer::new();
        assert_eq!(b.accept(3, 2, 7), Admission::New);
        assert_eq!(b.accept(3, 2, 7), Admission::Duplicate);
        assert_eq!(b.accept(3, 2, 8), Admission::New);
        assert_eq!(
            b.accept(3, 2 + BUFFER_SIZE as u64, 7),
            Admission::New,
            "a newer time replaces the slot"
        );
        assert_eq!(
            b.accept(3 + BUFFER_SIZE as u64, 2, 9),
            Admission::TooOld,
            "and an older one no longer gets it back"
        );
    }
}
