//! The retransmit-limited broadcast queue that gossip piggybacks on.
//!
//! Every message is sent a bounded number of times, which grows with the logarithm of the cluster
//! size so that news still reaches everyone with high probability. Messages sent fewer times go
//! first, so fresh news overtakes old news; a newer message about the same subject replaces the
//! queued one, so peers never hear stale state after fresher state. Completion is reported through
//! [`BroadcastQueue::take_finished`] rather than callbacks, keeping the queue free of I/O.
//!
//! Unlike Go's queue, this one remembers which peers each message went to: while some live peer
//! has not had a copy, no peer gets a second one. Go spends transmits blindly, so in a small
//! cluster a ping and a gossip round can spend all of a message's few transmits on one peer and
//! leave another never hearing it (a 3-node cluster on the local profile lost about one query in
//! 500 that way).
//!
//! A copy that arrives from a peer proves that peer has the message: serf reports it
//! ([`BroadcastQueue::note_holder`]) and the peer counts as having had a copy, so this node's
//! remaining transmits go to peers that may not have it. In an epidemic's last rounds most copies
//! land on peers that already have the message; at 50 nodes and 200 user events a second this
//! left a few (node, event) pairs in 100,000 never reached, which these copies now go to.
//!
//! A caller may also ask for a *reach* ([`BroadcastQueue::get_broadcasts_reaching`]): a message
//! then finishes only once its copies have gone to that many distinct live peers, and no copy is
//! spent on a dead peer, which cannot take it, before then. serf sends its join and leave
//! intents and its user events this way (see `serf::delegate`).

use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::ops::Bound;

use crate::shrink;

/// One message to gossip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broadcast {
    /// What the message is about, for invalidation: a newer broadcast with the same key replaces
    /// the queued one. `None` = never invalidated (serf's broadcasts are unique).
    pub key: Option<Vec<u8>>,
    pub message: Vec<u8>,
    /// Reported by [`BroadcastQueue::take_finished`] once the message will no longer be sent.
    pub notify: Option<u64>,
}

/// The peer a packet is for, so that a message's copies go to peers that have not had one.
/// One per packet, shared by every queue that fills it.
pub struct Recipient<'a> {
    /// A compact stand-in for the address in a message's list of recipients. A collision
    /// between two peers only makes one of them wait for a later packet.
    id: u64,
    /// How many live peers the sender knows: a walk over the member list, so taken only when a
    /// message would repeat, and then once for the whole packet.
    count_live_peers: &'a dyn Fn() -> usize,
    live_peers: Cell<Option<usize>>,
    /// Whether the peer is live (alive or suspect) as far as the sender knows; a packet to an
    /// address outside the member list counts as live.
    live: bool,
}

impl<'a> Recipient<'a> {
    pub fn new(addr: SocketAddr, count_live_peers: &'a dyn Fn() -> usize) -> Self {
        Recipient {
            id: id_of(&addr),
            count_live_peers,
            live_peers: Cell::new(None),
            live: true,
        }
    }

    /// A recipient the sender knows to be dead or gone (gossip to the dead).
    pub fn dead(mut self) -> Self {
        self.live = false;
        self
    }

    fn live_peers(&self) -> usize {
        if let Some(n) = self.live_peers.get() {
            return n;
        }
        let n = (self.count_live_peers)();
        self.live_peers.set(Some(n));
        n
    }
}

/// Position in the send order: fewest transmits, then longest message, then newest.
///
/// The derived ordering on the fields in this order is exactly that priority, so the queue's
/// first entry is the next to send and its last entry is the first to prune.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Slot {
    transmits: usize,
    len: Reverse<usize>,
    id: Reverse<u64>,
}

/// A 64-bit stand-in for `value`: a peer's address in a message's list of recipients
/// ([`Recipient::id`]), or a message's bytes in the content index, where a collision only costs
/// a peer one copy.
fn id_of(value: &(impl Hash + ?Sized)) -> u64 {
    let mut h = DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

/// A queued broadcast and the peers known to have it: those its copies went to, and those a
/// copy came from ([`Recipient::id`]s).
#[derive(Debug, Clone)]
struct Queued {
    broadcast: Broadcast,
    /// [`id_of`] the message, its key in the content index, hashed once when queued.
    content: u64,
    sent_to: Vec<u64>,
}

/// HashiCorp's `TransmitLimitedQueue`, minus the locking and callbacks.
#[derive(Debug, Clone)]
pub struct BroadcastQueue {
    retransmit_mult: usize,
    entries: BTreeMap<Slot, Queued>,
    /// Where the queued broadcast for each key sits, so invalidation needs no scan.
    by_key: HashMap<Vec<u8>, Slot>,
    /// Where each queued message sits, by [`Queued::content`], so a copy from a peer finds it.
    by_content: HashMap<u64, Slot>,
    next_id: u64,
    finished: Vec<u64>,
}

impl BroadcastQueue {
    pub fn new(retransmit_mult: usize) -> Self {
        BroadcastQueue {
            retransmit_mult,
            entries: BTreeMap::new(),
            by_key: HashMap::new(),
            by_content: HashMap::new(),
            next_id: 0,
            finished: Vec::new(),
        }
    }

    /// Queue `b` as never sent, replacing any queued broadcast with the same key (whose notify id
    /// then counts as finished).
    pub fn queue(&mut self, b: Broadcast) {
        self.next_id = self.next_id.wrapping_add(1);
        let slot = Slot {
            transmits: 0,
            len: Reverse(b.message.len()),
            id: Reverse(self.next_id),
        };
        if let Some(key) = &b.key {
            if let Some(old) = self.by_key.get(key).copied() {
                if let Some(replaced) = self.entries.remove(&old) {
                    self.finish(old, &replaced);
                }
            }
            self.by_key.insert(key.clone(), slot);
        }
        let content = id_of(&b.message[..]);
        self.by_content.insert(content, slot);
        self.entries.insert(
            slot,
            Queued {
                broadcast: b,
                content,
                sent_to: Vec::new(),
            },
        );
    }

    /// Fill up to `limit` bytes, counting `overhead` per message, with the messages to piggyback
    /// on a packet to `to`; `num_nodes` sets the retransmit limit (see [`retransmit_limit`]).
    ///
    /// Walks the transmit tiers from the least sent, taking in each tier the longest (then newest)
    /// message that still fits, until nothing fits. A message `to` already had is passed over
    /// while fewer live peers than there are have had it. A taken message moves to the next tier
    /// only after the walk, so one call never sends it twice; it is dropped once it reaches the
    /// limit.
    pub fn get_broadcasts(
        &mut self,
        overhead: usize,
        limit: usize,
        num_nodes: usize,
        to: &Recipient,
    ) -> Vec<Vec<u8>> {
        self.get_broadcasts_reaching(overhead, limit, num_nodes, to, 0)
    }

    /// [`get_broadcasts`](Self::get_broadcasts), where a message also goes on past the limit
    /// until its copies have gone to `reach` distinct live peers (which the caller keeps within
    /// the live peers there are), and a dead `to` gets none before then.
    pub fn get_broadcasts_reaching(
        &mut self,
        overhead: usize,
        limit: usize,
        num_nodes: usize,
        to: &Recipient,
        reach: usize,
    ) -> Vec<Vec<u8>> {
        let transmit_limit = self.transmit_limit(num_nodes);
        // Copies to a dead peer are neither spent before the reach nor counted towards it.
        let counts = reach == 0 || to.live;
        let Some(first) = self.entries.keys().next() else {
            return Vec::new();
        };
        let mut tier = first.transmits;
        let recipient = to.id;
        // The last entry passed over: the walk goes on after it.
        let mut passed: Option<Slot> = None;
        let mut used = 0usize;
        let mut to_send = Vec::new();
        let mut resend = Vec::new();
        loop {
            let free = limit.saturating_sub(used.saturating_add(overhead));
            if free == 0 {
                break;
            }
            // The first entry at or after this bound is the best fit in `tier`, or, when nothing
            // in `tier` fits, the head of the next non-empty tier.
            let fit = Slot {
                transmits: tier,
                len: Reverse(free),
                id: Reverse(u64::MAX),
            };
            let start = match passed {
                Some(p) if p >= fit => Bound::Excluded(p),
                _ => Bound::Included(fit),
            };
            let Some((&slot, queued)) = self.entries.range((start, Bound::Unbounded)).next() else {
                break;
            };
            if slot.transmits != tier {
                tier = slot.transmits;
                continue;
            }
            let repeat = queued.sent_to.contains(&recipient);
            if (repeat && queued.sent_to.len() < to.live_peers())
                || (!counts && queued.sent_to.len() < reach)
            {
                passed = Some(slot);
                continue;
            }
            let Some(mut queued) = self.entries.remove(&slot) else {
                break;
            };
            used = used.saturating_add(overhead.saturating_add(queued.broadcast.message.len()));
            if counts && !repeat {
                queued.sent_to.push(recipient);
            }
            let transmits = slot.transmits.saturating_add(1);
            // A reach the peers cannot give (fewer of them than the caller thought) ends too.
            let reached =
                queued.sent_to.len() >= reach || transmits >= transmit_limit.saturating_add(reach);
            if transmits >= transmit_limit && reached {
                self.finish(slot, &queued);
                to_send.push(queued.broadcast.message);
            } else {
                to_send.push(queued.broadcast.message.clone());
                resend.push((slot, Slot { transmits, ..slot }, queued));
            }
        }
        for (was, slot, queued) in resend {
            if let Some(key) = &queued.broadcast.key {
                self.by_key.insert(key.clone(), slot);
            }
            self.move_content(queued.content, was, slot);
            self.entries.insert(slot, queued);
        }
        to_send
    }

    /// A copy of `message` came from `holder`: if the message is queued, `holder` counts as
    /// having had it, so no copy goes back there while some live peer has had none.
    pub fn note_holder(&mut self, message: &[u8], holder: SocketAddr) {
        let Some(slot) = self.by_content.get(&id_of(message)) else {
            return;
        };
        let Some(queued) = self.entries.get_mut(slot) else {
            return;
        };
        let id = id_of(&holder);
        if queued.broadcast.message == message && !queued.sent_to.contains(&id) {
            queued.sent_to.push(id);
        }
    }

    /// Re-point the content index entry `content` from `was` to `now`, if it pointed at `was`.
    fn move_content(&mut self, content: u64, was: Slot, now: Slot) {
        if let Some(at) = self.by_content.get_mut(&content) {
            if *at == was {
                *at = now;
            }
        }
    }

    /// How many times each message is sent in a cluster of `num_nodes` (see [`retransmit_limit`]).
    pub fn transmit_limit(&self, num_nodes: usize) -> usize {
        retransmit_limit(self.retransmit_mult, num_nodes)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Keep only the `max_retain` entries that would be sent soonest, dropping the rest (the most
    /// sent, then shortest, then oldest) as finished. Bounds memory when gossip cannot keep up.
    pub fn prune(&mut self, max_retain: usize) {
        while self.entries.len() > max_retain {
            let Some((slot, queued)) = self.entries.pop_last() else {
                break;
            };
            self.finish(slot, &queued);
        }
    }

    /// Notify ids of broadcasts that finished (sent their last transmit, were invalidated, or were
    /// pruned) since the last call. Lets a caller wait for e.g. its leave message to go out,
    /// without callbacks.
    pub fn take_finished(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.finished)
    }

    /// Drop everything; every queued notify id counts as finished.
    pub fn reset(&mut self) {
        let entries = std::mem::take(&mut self.entries);
        self.finished
            .extend(entries.into_values().filter_map(|q| q.broadcast.notify));
        self.by_key = HashMap::new();
        self.by_content = HashMap::new();
    }

    /// Forget a broadcast that has left the queue from `slot` and report it.
    fn finish(&mut self, slot: Slot, queued: &Queued) {
        let b = &queued.broadcast;
        if let Some(key) = &b.key {
            self.by_key.remove(key);
        }
        if self.by_content.get(&queued.content) == Some(&slot) {
            self.by_content.remove(&queued.content);
        }
        shrink::after_remove(&mut self.by_key);
        shrink::after_remove(&mut self.by_content);
        if let Some(id) = b.notify {
            self.finished.push(id);
        }
    }
}

/// How many times each message is sent in a cluster of `num_nodes`:
/// `mult × ceil(log10(num_nodes + 1))`, i.e. `mult` × the number of decimal digits of `num_nodes`.
pub fn retransmit_limit(mult: usize, num_nodes: usize) -> usize {
    let digits = num_nodes.checked_ilog10().map_or(0, |d| d as usize + 1);
    mult.saturating_mul(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(key: &str, message: &str, notify: Option<u64>) -> Broadcast {
        Broadcast {
            key: Some(key.as_bytes().to_vec()),
            message: message.as_bytes().to_vec(),
            notify,
        }
    }

    /// Queue `b` as if it had already been sent `transmits` times (Go's `queueBroadcast`).
    fn queue_sent(q: &mut BroadcastQueue, b: Broadcast, transmits: usize) {
        q.queue(b);
        let slot = *q.entries.keys().find(|s| s.id.0 == q.next_id).unwrap();
        let queued = q.entries.remove(&slot).unwrap();
        let slot = Slot { transmits, ..slot };
        if let Some(key) = &queued.broadcast.key {
            q.by_key.insert(key.clone(), slot);
        }
        q.entries.insert(slot, queued);
    }

    fn no_live_peers() -> usize {
        0
    }

    /// Messages for a packet, as Go's queue picks them: no peer counts as having had any.
    fn get(q: &mut BroadcastQueue, overhead: usize, limit: usize, nodes: usize) -> Vec<Vec<u8>> {
        let to = Recipient::new(SocketAddr::from(([127, 0, 0, 1], 1)), &no_live_peers);
        q.get_broadcasts(overhead, limit, nodes, &to)
    }

    /// The queue from last to send to next to send (Go's `orderedView(true)`).
    fn keys_reversed(q: &BroadcastQueue) -> Vec<&[u8]> {
        q.entries
            .values()
            .rev()
            .map(|q| q.broadcast.key.as_deref().unwrap())
            .collect()
    }

    #[test]
    fn slot_order() {
        let slot = |transmits, len, id| Slot {
            transmits,
            len: Reverse(len),
            id: Reverse(id),
        };
        assert!(slot(0, 10, 100) < slot(1, 10, 100));
        assert!(slot(0, 12, 100) < slot(0, 10, 100));
        assert!(slot(0, 12, 100) < slot(0, 12, 90));
    }

    #[test]
    fn retransmit_limits() {
        assert_eq!(retransmit_limit(3, 0), 0);
        assert_eq!(retransmit_limit(3, 1), 3);
        assert_eq!(retransmit_limit(3, 99), 6);
        assert_eq!(retransmit_limit(1, 9), 1);
        assert_eq!(retransmit_limit(1, 10), 2);
        assert_eq!(retransmit_limit(1, 100), 3);
        assert_eq!(retransmit_limit(4, 3), 4);
        assert_eq!(retransmit_limit(usize::MAX, usize::MAX), usize::MAX);
    }

    #[test]
    fn same_key_replaces() {
        let mut q = BroadcastQueue::new(1);
        q.queue(named("test", "", Some(1)));
        q.queue(named("foo", "", None));
        q.queue(named("bar", "", None));
        assert_eq!(q.len(), 3);
        assert_eq!(keys_reversed(&q), [&b"test"[..], b"foo", b"bar"]);
        assert!(q.take_finished().is_empty());

        q.queue(named("test", "", Some(2)));
        assert_eq!(q.len(), 3);
        assert_eq!(keys_reversed(&q), [&b"foo"[..], b"bar", b"test"]);
        assert_eq!(q.take_finished(), [1]);
        assert!(q.take_finished().is_empty());

        q.queue(named("test", "", Some(3)));
        assert_eq!(q.len(), 3);
        assert_eq!(q.take_finished(), [2]);
    }

    #[test]
    fn unkeyed_never_replaced() {
        let mut q = BroadcastQueue::new(1);
        for n in 0..3 {
            q.queue(Broadcast {
                key: None,
                message: b"same".to_vec(),
                notify: Some(n),
            });
        }
        assert_eq!(q.len(), 3);
        assert!(q.take_finished().is_empty());
    }

    #[test]
    fn fills_to_limit_with_overhead() {
        let mut q = BroadcastQueue::new(3);
        q.queue(named("test", "1. this is a test.", None));
        q.queue(named("foo", "2. this is a test.", None));
        q.queue(named("bar", "3. this is a test.", None));
        q.queue(named("baz", "4. this is a test.", None));

        // 4 × (18 + 2) = 80 fits exactly; 4 × (18 + 3) does not.
        assert_eq!(get(&mut q, 2, 80, 10).len(), 4);
        assert_eq!(get(&mut q, 3, 80, 10).len(), 3);
    }

    #[test]
    fn drops_at_retransmit_limit() {
        let mut q = BroadcastQueue::new(1);
        assert_eq!(retransmit_limit(1, 10), 2);
        q.queue(named("test", "1. this is a test.", Some(1)));
        q.queue(named("foo", "2. this is a test.", Some(2)));
        q.queue(named("bar", "3. this is a test.", Some(3)));
        q.queue(named("baz", "4. this is a test.", Some(4)));

        let sent = get(&mut q, 3, 80, 10);
        assert_eq!(
            sent,
            [
                b"4. this is a test.",
                b"3. this is a test.",
                b"2. this is a test."
            ]
        );
        assert!(q.take_finished().is_empty());

        // The unsent message goes first, then the once-sent ones, newest first.
        let sent = get(&mut q, 3, 80, 10);
        assert_eq!(
            sent,
            [
                b"1. this is a test.",
                b"4. this is a test.",
                b"3. this is a test."
            ]
        );
        assert_eq!(q.take_finished(), [4, 3]);

        assert_eq!(get(&mut q, 3, 80, 10).len(), 2);
        assert_eq!(q.take_finished(), [2, 1]);
        assert!(q.is_empty());
        assert!(q.by_key.is_empty());

        assert!(get(&mut q, 3, 80, 10).is_empty());
    }

    #[test]
    fn tiny_cluster_sends_once() {
        let mut q = BroadcastQueue::new(4);
        q.queue(named("a", "x", Some(7)));
        assert_eq!(get(&mut q, 0, 10, 0), [b"x"]);
        assert_eq!(q.take_finished(), [7]);
        assert!(q.is_empty());
    }

    #[test]
    fn skips_what_does_not_fit() {
        let mut q = BroadcastQueue::new(4);
        q.queue(named("small", "ab", None));
        q.queue(named("big", "0123456789", None));
        q.queue(named("mid", "abcde", None));
        // 8 bytes with 1 overhead: "big" never fits, "mid" (6) then "small" would need 9.
        assert_eq!(get(&mut q, 1, 8, 3), [b"abcde"]);
        // Now "small" is the only unsent message that fits, ahead of once-sent "mid".
        assert_eq!(get(&mut q, 1, 8, 3), [b"ab"]);
        assert_eq!(get(&mut q, 1, 20, 3), [&b"0123456789"[..], b"abcde", b"ab"]);
    }

    #[test]
    fn no_room_no_panic() {
        let mut q = BroadcastQueue::new(4);
        q.queue(named("a", "", None));
        assert!(get(&mut q, 5, 5, 3).is_empty());
        assert!(get(&mut q, 9, 5, 3).is_empty());
        assert!(get(&mut q, usize::MAX, usize::MAX, usize::MAX).is_empty());
        assert_eq!(get(&mut q, 0, usize::MAX, usize::MAX).len(), 1);
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn prune_keeps_soonest() {
        let mut q = BroadcastQueue::new(1);
        q.queue(named("test", "1. this is a test.", Some(1)));
        q.queue(named("foo", "2. this is a test.", Some(2)));
        q.queue(named("bar", "3. this is a test.", None));
        q.queue(named("baz", "4. this is a test.", None));

        q.prune(2);
        assert_eq!(q.len(), 2);
        assert_eq!(q.take_finished(), [1, 2]);
        assert_eq!(keys_reversed(&q), [&b"bar"[..], b"baz"]);

        // A pruned key can be queued again without disturbing the survivors.
        q.queue(named("test", "again", Some(5)));
        assert_eq!(q.len(), 3);
        assert!(q.take_finished().is_empty());

        q.prune(0);
        assert!(q.is_empty());
        assert!(q.by_key.is_empty());
        assert_eq!(q.take_finished(), [5]);
    }

    #[test]
    fn ordering_by_transmits() {
        let mut q = BroadcastQueue::new(1);
        for (name, transmits) in [
            ("node0", 0),
            ("node1", 10),
            ("node2", 3),
            ("node3", 4),
            ("node4", 7),
        ] {
            queue_sent(&mut q, named(name, name, None), transmits);
        }
        let tiers: Vec<usize> = q.entries.keys().rev().map(|s| s.transmits).collect();
        assert_eq!(tiers, [10, 7, 4, 3, 0]);
        // With room for two, the two least sent go; only node0 is still under the limit of 2.
        assert_eq!(get(&mut q, 0, 10, 10), [b"node0", b"node2"]);
        let tiers: Vec<usize> = q.entries.keys().rev().map(|s| s.transmits).collect();
        assert_eq!(tiers, [10, 7, 4, 1]);
    }

    #[test]
    fn a_copy_waits_for_a_peer_that_has_had_none_unless_there_is_none() {
        fn two() -> usize {
            2
        }
        fn one() -> usize {
            1
        }
        let to = |port: u16, live_peers: &'static dyn Fn() -> usize| {
            Recipient::new(SocketAddr::from(([127, 0, 0, 1], port)), live_peers)
        };
        // 2 transmits, 2 live peers: the second copy skips a and goes to b.
        let mut q = BroadcastQueue::new(2);
        q.queue(named("n", "news", Some(1)));
        assert_eq!(q.get_broadcasts(0, 100, 3, &to(1, &two)), [b"news"]);
        assert!(q.get_broadcasts(0, 100, 3, &to(1, &two)).is_empty());
        assert_eq!(q.get_broadcasts(0, 100, 3, &to(2, &two)), [b"news"]);
        assert_eq!(q.take_finished(), [1]);
        // A lone live peer gets both.
        q.queue(named("n", "more", Some(2)));
        assert_eq!(q.get_broadcasts(0, 100, 2, &to(1, &one)), [b"more"]);
        assert_eq!(q.get_broadcasts(0, 100, 2, &to(1, &one)), [b"more"]);
        assert_eq!(q.take_finished(), [2]);
    }

    #[test]
    fn a_peer_a_copy_came_from_gets_none_back() {
        fn two() -> usize {
            2
        }
        let port = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        let to = |p: u16| Recipient::new(port(p), &two);
        let mut q = BroadcastQueue::new(2);
        q.queue(named("n", "news", Some(1)));
        q.note_holder(b"news", port(1));
        // Another message, or a copy from elsewhere than the queue knows, changes nothing.
        q.note_holder(b"other", port(2));
        assert!(q.get_broadcasts(0, 100, 3, &to(1)).is_empty());
        assert_eq!(q.get_broadcasts(0, 100, 3, &to(2)), [b"news"]);
        // Every live peer has it now: the last transmit may go anywhere.
        assert_eq!(q.get_broadcasts(0, 100, 3, &to(1)), [b"news"]);
        assert_eq!(q.take_finished(), [1]);
        // The index follows the message through its transmits and forgets it when it ends.
        q.note_holder(b"news", port(3));
        assert!(q.by_content.is_empty());
    }

    #[test]
    fn a_reach_sends_past_the_limit_to_live_peers_only() {
        fn four() -> usize {
            4
        }
        let to = |port: u16| Recipient::new(SocketAddr::from(([127, 0, 0, 1], port)), &four);
        // 6 nodes: 2 transmits, and a reach of the 4 live peers.
        let mut q = BroadcastQueue::new(2);
        q.queue(named("n", "leave", Some(1)));
        let get =
            |q: &mut BroadcastQueue, to: &Recipient| q.get_broadcasts_reaching(0, 100, 6, to, 4);
        // The crashed peer gets nothing, and that costs nothing.
        assert!(get(&mut q, &to(9).dead()).is_empty());
        assert_eq!(get(&mut q, &to(1)), [b"leave"]);
        assert!(get(&mut q, &to(1)).is_empty());
        assert_eq!(get(&mut q, &to(2)), [b"leave"]);
        // Go's queue would be done here; this one goes on to the peers that have none.
        assert!(q.take_finished().is_empty());
        assert!(get(&mut q, &to(9).dead()).is_empty());
        assert_eq!(get(&mut q, &to(3)), [b"leave"]);
        assert_eq!(get(&mut q, &to(4)), [b"leave"]);
        assert_eq!(q.take_finished(), [1]);
        assert!(q.is_empty());
        // Without a reach the dead peer takes a copy, and it counts, as in Go.
        q.queue(named("n", "leave", Some(2)));
        assert_eq!(q.get_broadcasts(0, 100, 6, &to(9).dead()), [b"leave"]);
        assert_eq!(q.get_broadcasts(0, 100, 6, &to(1)), [b"leave"]);
        assert_eq!(q.take_finished(), [2]);
    }

    #[test]
    fn a_reach_below_the_limit_changes_nothing() {
        fn one() -> usize {
            1
        }
        // One live peer: reached at once, and the limit's two copies both go to it.
        let mut q = BroadcastQueue::new(2);
        q.queue(named("n", "leave", Some(1)));
        let to = Recipient::new(SocketAddr::from(([127, 0, 0, 1], 1)), &one);
        assert_eq!(q.get_broadcasts_reaching(0, 100, 2, &to, 1), [b"leave"]);
        assert!(q.take_finished().is_empty());
        assert_eq!(q.get_broadcasts_reaching(0, 100, 2, &to, 1), [b"leave"]);
        assert_eq!(q.take_finished(), [1]);
    }

    #[test]
    fn reinserted_entry_still_replaceable() {
        let mut q = BroadcastQueue::new(2);
        q.queue(named("n", "suspect", Some(1)));
        assert_eq!(get(&mut q, 0, 100, 10).len(), 1);
        assert!(q.take_finished().is_empty());
        q.queue(named("n", "alive", Some(2)));
        assert_eq!(q.len(), 1);
        assert_eq!(q.take_finished(), [1]);
        assert_eq!(get(&mut q, 0, 100, 10), [b"alive"]);
    }

    #[test]
    fn reset_finishes_everything() {
        let mut q = BroadcastQueue::new(1);
        q.queue(named("a", "1", Some(1)));
        q.queue(named("b", "2", None));
        q.queue(named("c", "3", Some(3)));
        q.reset();
        assert!(q.is_empty());
        let mut finished = q.take_finished();
        finished.sort_unstable();
        assert_eq!(finished, [1, 3]);
        q.queue(named("a", "1", Some(4)));
        assert!(q.take_finished().is_empty());
    }

    /// An entry of the oracle's queue: its slot, message, and the ports its copies went to.
    type ModelEntry = (Slot, Broadcast, Vec<u16>);

    /// Go's `GetBroadcasts`, transcribed naively (linear scans, tier by tier), plus the rule
    /// that a message `to` already had waits while fewer than `live_peers` peers have had it:
    /// an oracle.
    fn reference_get(
        entries: &mut Vec<ModelEntry>,
        mult: usize,
        (overhead, limit, num_nodes): (usize, usize, usize),
        (to, live_peers): (u16, usize),
    ) -> (Vec<Vec<u8>>, Vec<u64>) {
        let transmit_limit = retransmit_limit(mult, num_nodes);
        let (mut out, mut finished, mut resend) = (Vec::new(), Vec::new(), Vec::new());
        let Some(min) = entries.iter().map(|e| e.0.transmits).min() else {
            return (out, finished);
        };
        let max = entries.iter().map(|e| e.0.transmits).max().unwrap();
        let mut used = 0;
        let mut tier = min;
        while tier <= max {
            if limit <= used + overhead {
                break;
            }
            let free = limit - used - overhead;
            let best = entries
                .iter()
                .enumerate()
                .filter(|(_, e)| e.0.transmits == tier && e.1.message.len() <= free)
                .filter(|(_, e)| !(e.2.contains(&to) && e.2.len() < live_peers))
                .min_by_key(|(_, e)| e.0)
                .map(|(i, _)| i);
            let Some(i) = best else {
                tier += 1;
                continue;
            };
            let (slot, b, mut sent_to) = entries.remove(i);
            used += overhead + b.message.len();
            out.push(b.message.clone());
            if slot.transmits + 1 >= transmit_limit {
                finished.extend(b.notify);
            } else {
                if !sent_to.contains(&to) {
                    sent_to.push(to);
                }
                let slot = Slot {
                    transmits: slot.transmits + 1,
                    ..slot
                };
                resend.push((slot, b, sent_to));
            }
        }
        entries.extend(resend);
        (out, finished)
    }

    #[test]
    fn matches_reference_walk() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rand = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mult = 2;
        let mut q = BroadcastQueue::new(mult);
        let mut model: Vec<ModelEntry> = Vec::new();
        let mut notify = 0;
        for _ in 0..20_000 {
            if rand(3) == 0 {
                let packet = (rand(4) as usize, rand(60) as usize, rand(200) as usize);
                // Five peers, of which the sender counts 0 (Go's walk) to 5 as live.
                let (port, live) = (1 + rand(5) as u16, rand(6) as usize);
                let count = || live;
                let to = Recipient::new(SocketAddr::from(([127, 0, 0, 1], port)), &count);
                let got = q.get_broadcasts(packet.0, packet.1, packet.2, &to);
                let (want, finished) = reference_get(&mut model, mult, packet, (port, live));
                assert_eq!(got, want);
                assert_eq!(q.take_finished(), finished);
            } else {
                notify += 1;
                let key = (rand(4) != 0).then(|| vec![rand(8) as u8]);
                let b = Broadcast {
                    key: key.clone(),
                    message: vec![0; rand(20) as usize],
                    notify: Some(notify),
                };
                q.queue(b.clone());
                let mut finished = Vec::new();
                if key.is_some() {
                    model.retain(|e| {
                        let same = e.1.key == key;
                        if same {
                            finished.extend(e.1.notify);
                        }
                        !same
                    });
                }
                let slot = Slot {
                    transmits: 0,
                    len: Reverse(b.message.len()),
                    id: Reverse(q.next_id),
                };
                model.push((slot, b, Vec::new()));
                assert_eq!(q.take_finished(), finished);
            }
            assert_eq!(q.len(), model.len());
        }
    }
}
