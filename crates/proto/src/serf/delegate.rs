//! memberlist's delegate (HashiCorp's delegate.go, with event_delegate.go and
//! conflict_delegate.go): serf messages in (`NotifyMsg`), serf's broadcasts out
//! (`GetBroadcasts`), serf's push/pull state (`LocalState`, `MergeRemoteState`), members joining,
//! leaving and updating, name conflicts, finished joins. Ping acks are in ping_delegate.rs.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::event::{Completion, JoinFailed, MemberEventType};
use super::member::MemberStatus;
use super::state::{Action, IntentKind, MemberState, State, FLAP_TIMEOUT};
use super::vivaldi::LatencyFilter;
use crate::log;
use crate::memberlist::broadcast::{Broadcast, BroadcastQueue, Recipient};
use crate::memberlist::{ip_from_bytes, Delegate, Node};
use crate::telemetry::Histogram;
use crate::wire::memberlist::NodeState;
use crate::wire::msgpack::{Dialect, GoString};
use crate::wire::serf::{self as wire, Message, MessageType};
use crate::wire::DecodeError;

/// Each node passes each join and leave intent on to this many × the transmit limit distinct
/// live peers (to every live peer, in a cluster that small), where Go's queue stops at the limit
/// and spends it blindly.
///
/// Up to 9 nodes on the local profile the limit is two copies, and one may go to the node the
/// intent came from, or, after a crash, to the crashed node (gossip to the dead keeps it a
/// target for `GossipToTheDeadTime`). A force-leave of a crashed node in a 6-node cluster so
/// left some live node listing it `failed` in about half the runs, HashiCorp-only clusters
/// included, until a push/pull 15 to 30 s later. Intents are rare and small: twice the limit,
/// to live peers only, reaches every live node of a small cluster directly, and in a larger one
/// makes the local profile at least as sure as Go's LAN profile. The messages, and how each node
/// handles them, are Go's.
const INTENT_REACH: usize = 2;

/// Each node passes each user event on until this many × the transmit limit peers are known to
/// hold it: those it sent a copy to and those a copy came from.
///
/// Serf's push/pull carries only the last 512 event times, about 2.5 s at 200 events a second,
/// so an event that gossip misses a node with is never repaired. With the limit alone, 50 nodes
/// at 200 events a second left 51 (node, event) pairs in 4 million unreached over 20 seeds of
/// `user_events_under_load_reach_every_node`; with twice the limit, 1, for 21 % more event
/// copies. A node late in an epidemic has heard from many holders and sends few extra copies.
const EVENT_REACH: usize = 2;

impl State {
    /// serf's push/pull state: clocks, every member's status time, left members, event buffer.
    fn local_state(&self) -> Vec<u8> {
        let status_ltimes = self
            .members
            .values()
            .map(|m| (GoString::from(m.member.name.as_str()), m.status_ltime))
            .collect();
        let left_members = self
            .members
            .values()
            .filter(|m| m.member.status == MemberStatus::Left)
            .map(|m| GoString::from(m.member.name.as_str()))
            .collect();
        let pp = wire::PushPull {
            ltime: self.clock.time(),
            status_ltimes,
            left_members,
            event_ltime: self.event_clock.time(),
            events: self.events_seen.to_wire(),
            query_ltime: self.query_clock.time(),
        };
        Message::PushPull(pp).encode(Dialect::GOSSIP)
    }
}

impl Delegate for State {
    // The ping delegate's two calls are answered in ping_delegate.rs.
    fn ack_payload(&mut self) -> Vec<u8> {
        self.coordinate_ack_payload()
    }

    fn notify_ping_complete(&mut self, node: &Node, rtt: Duration, payload: &[u8]) {
        self.update_coordinate(node, rtt, payload);
    }

    fn notify_conflict(&mut self, existing: &Node, _other: &Node) {
        if existing.name.as_bytes() == self.name.as_bytes()
            && self.conflict_resolution
            && !self.resolving_conflict
        {
            self.resolving_conflict = true;
            self.actions.push(Action::ResolveConflict);
        }
    }

    fn notify_msg(&mut self, now: Instant, msg: &[u8], from: Option<SocketAddr>) {
        if msg.is_empty() {
            return;
        }
        self.counters.msgs_received += 1;
        self.counters.msg_bytes_received += msg.len() as u64;
        self.samples
            .histogram(Histogram::MsgsReceived, msg.len() as f64);
        let decoded = match Message::decode(msg) {
            Ok(decoded) => decoded,
            Err(e) => {
                self.log_undecodable(msg[0], &e);
                return;
            }
        };
        self.log_received(&decoded);
        // New information is gossiped on, byte for byte, from the queue it belongs to; a
        // copy, new or not, shows that its sender has it.
        let (news, queue) = match &decoded {
            Message::Join(j) => (self.handle_join_intent(now, j), &mut self.intents),
            Message::Leave(l) => (self.handle_leave_intent(now, l), &mut self.intents),
            Message::UserEvent(e) => (
                self.handle_user_event(now, e, true),
                &mut self.event_broadcasts,
            ),
            Message::Query(q) => (self.handle_query(now, q), &mut self.query_broadcasts),
            Message::QueryResponse(r) => {
                self.handle_query_response(now, r);
                return;
            }
            Message::Relay { header, inner } => {
                if let Some(ip) = ip_from_bytes(&header.dest_addr.ip) {
                    let port = u16::try_from(header.dest_addr.port).unwrap_or(0);
                    self.outbox.push((SocketAddr::new(ip, port), inner.clone()));
                }
                return;
            }
            _ => return,
        };
        if news {
            queue.queue(Broadcast {
                key: None,
                message: msg.to_vec(),
                notify: None,
            });
        }
        if let Some(from) = from {
            queue.note_holder(msg, from);
        }
    }

    /// Serf's queues in Go's order: intents, then queries, then user events.
    fn has_broadcasts(&self) -> bool {
        !(self.intents.is_empty()
            && self.query_broadcasts.is_empty()
            && self.event_broadcasts.is_empty())
    }

    fn get_broadcasts(&mut self, overhead: usize, limit: usize, to: &Recipient) -> Vec<Vec<u8>> {
        let n = self.members.len();
        // Members neither failed nor left, ourselves aside: memberlist's live peers.
        let live_peers = n.saturating_sub(self.departed.len() + 1);
        let reach = |queue: &BroadcastQueue, times: usize| {
            queue
                .transmit_limit(n)
                .saturating_mul(times)
                .min(live_peers)
        };
        let intent_reach = reach(&self.intents, INTENT_REACH);
        let event_reach = reach(&self.event_broadcasts, EVENT_REACH);
        let mut out = Vec::new();
        let mut left = limit;
        for (queue, reach) in [
            (&mut self.intents, intent_reach),
            (&mut self.query_broadcasts, 0),
            (&mut self.event_broadcasts, event_reach),
        ] {
            let msgs = queue.get_broadcasts_reaching(overhead, left, n, to, reach);
            left = left.saturating_sub(msgs.iter().map(|m| m.len() + overhead).sum::<usize>());
            for m in &msgs {
                self.counters.msgs_sent += 1;
                self.counters.msg_bytes_sent += m.len() as u64;
                self.samples.histogram(Histogram::MsgsSent, m.len() as f64);
            }
            out.extend(msgs);
        }
        out
    }

    fn local_state(&mut self, _join: bool) -> Vec<u8> {
        State::local_state(self)
    }

    fn merge_remote_state(&mut self, now: Instant, buf: &[u8], join: bool) {
        let Ok(Message::PushPull(pp)) = Message::decode(buf) else {
            return;
        };
        if pp.ltime > 0 {
            self.clock.witness(pp.ltime - 1);
        }
        if pp.event_ltime > 0 {
            self.event_clock.witness(pp.event_ltime - 1);
        }
        if pp.query_ltime > 0 {
            self.query_clock.witness(pp.query_ltime - 1);
        }
        for name in &pp.left_members {
            let leave = wire::Leave {
                ltime: pp.status_ltimes.get(name).copied().unwrap_or(0) + 1,
                node: name.clone(),
                prune: false,
            };
            // Go applies a departure it learns by push/pull without passing it on, so a node
            // that the leave's gossip missed waits for a push/pull of its own. Passing it on as
            // a gossiped intent would be (the same message, Go's receivers take it as such)
            // spares them that wait; only news is passed on, once.
            if self.handle_leave_intent(now, &leave) {
                self.intents.queue(Broadcast {
                    key: None,
                    message: Message::Leave(leave).encode(Dialect::GOSSIP),
                    notify: None,
                });
            }
        }
        for (name, ltime) in &pp.status_ltimes {
            if !pp.left_members.contains(name) {
                self.handle_join_intent(
                    now,
                    &wire::Join {
                        ltime: *ltime,
                        node: name.clone(),
                    },
                );
            }
        }
        if join && self.ignore_old_events {
            self.event_min_time = self.event_min_time.max(pp.event_ltime);
        }
        for events in pp.events.iter().flatten() {
            for e in &events.events {
                let msg = wire::UserEventMessage {
                    ltime: events.ltime,
                    name: e.name.clone(),
                    payload: e.payload.clone(),
                    cc: false,
                };
                self.handle_user_event(now, &msg, false);
            }
        }
    }

    fn notify_join(&mut self, now: Instant, node: &Node) {
        let name = node.name.to_string_lossy();
        let member = self.member_from_node(node, MemberStatus::Alive);
        match self.members.get_mut(&name) {
            None => {
                let mut state = MemberState {
                    member,
                    status_ltime: 0,
                    leave_time: None,
                    coordinate: None,
                    rtts: LatencyFilter::default(),
                };
                // Applied once: an intent only ever sets up a member that is new.
                if let Some(intent) = self.recent_intents.remove(&name) {
                    state.status_ltime = intent.ltime;
                    if intent.kind == IntentKind::Leave {
                        state.member.status = MemberStatus::Leaving;
                    }
                }
                self.members.insert(state);
            }
            Some(m) => {
                let failed_for = m.leave_time.map(|t| now.saturating_duration_since(t));
                if m.member.status == MemberStatus::Failed
                    && failed_for.is_some_and(|d| d < FLAP_TIMEOUT)
                {
                    self.counters.member_flaps += 1;
                }
                m.member = member;
                m.leave_time = None;
                self.departed.remove(&name);
            }
        }
        self.counters.member_joins += 1;
        let member = self.members.get(&name).expect("just added").member.clone();
        log!(
            self.log,
            Info,
            "serf: EventMemberJoin: {} {}",
            member.name,
            member.addr
        );
        self.emit(now, MemberEventType::Join, member);
    }

    fn notify_leave(&mut self, now: Instant, node: &Node) {
        let name = node.name.to_string_lossy();
        let Some(m) = self.members.get_mut(&name) else {
            return;
        };
        // A leave intent makes it left; so does memberlist's own "left" (dead from itself) when
        // the intent was lost: better than Go, which reports that node as failed.
        let (status, kind) = match (m.member.status, node.state) {
            (MemberStatus::Leaving, _) | (MemberStatus::Alive, NodeState::Left) => {
                (MemberStatus::Left, MemberEventType::Leave)
            }
            (MemberStatus::Alive, _) => (MemberStatus::Failed, MemberEventType::Failed),
            _ => return,
        };
        m.member.status = status;
        m.leave_time = Some(now);
        let member = m.member.clone();
        self.departed.insert(name.clone());
        let event = if status == MemberStatus::Left {
            self.counters.member_leaves += 1;
            "EventMemberLeave"
        } else {
            self.counters.member_failures += 1;
            "EventMemberFailed"
        };
        log!(
            self.log,
            Info,
            "serf: {event}: {} {}",
            member.name,
            member.addr
        );
        self.emit(now, kind, member);
    }

    fn notify_update(&mut self, now: Instant, node: &Node) {
        let name = node.name.to_string_lossy();
        let Some(status) = self.members.get(&name).map(|m| m.member.status) else {
            return;
        };
        let member = self.member_from_node(node, status);
        if let Some(m) = self.members.get_mut(&name) {
            m.member = member.clone();
        }
        self.counters.member_updates += 1;
        log!(self.log, Info, "serf: EventMemberUpdate: {}", member.name);
        self.emit(now, MemberEventType::Update, member);
    }

    fn join_complete(&mut self, id: u64, contacted: usize, errors: Vec<String>) {
        if self.rejoin.in_flight == Some(id) {
            self.rejoin.in_flight = None;
            if contacted == 0 {
                self.rejoin.retry_after_failure = true;
            } else {
                self.rejoin.addrs.clear();
            }
            return;
        }
        if !self.user_joins.remove(&id) {
            return;
        }
        self.ignore_old_events = false;
        let result = if contacted > 0 {
            // Tell the cluster we joined, ordered by our member clock.
            let ltime = self.clock.time();
            self.clock.witness(ltime);
            let join = wire::Join {
                ltime,
                node: self.name.as_str().into(),
            };
            if let Some(me) = self.members.get_mut(&self.name) {
                me.status_ltime = me.status_ltime.max(ltime);
            }
            self.broadcast_intent(Message::Join(join));
            Ok(contacted)
        } else {
            Err(JoinFailed { reasons: errors })
        };
        self.completions.push_back(Completion::Join { id, result });
    }
}

impl State {
    /// Go's debug line for each serf message `NotifyMsg` takes (`delegate.go`).
    fn log_received(&mut self, msg: &Message) {
        match msg {
            Message::Leave(l) => log!(self.log, Debug, "serf: messageLeaveType: {}", l.node),
            Message::Join(j) => log!(self.log, Debug, "serf: messageJoinType: {}", j.node),
            Message::UserEvent(e) => {
                log!(self.log, Debug, "serf: messageUserEventType: {}", e.name)
            }
            Message::Query(q) => log!(self.log, Debug, "serf: messageQueryType: {}", q.name),
            Message::QueryResponse(r) => {
                log!(
                    self.log,
                    Debug,
                    "serf: messageQueryResponseType: {}",
                    r.from
                )
            }
            Message::Relay { header, .. } => {
                let to = ip_from_bytes(&header.dest_addr.ip)
                    .map(|ip| SocketAddr::new(ip, header.dest_addr.port as u16));
                match to {
                    Some(to) => log!(self.log, Debug, "serf: Relaying response to addr: {to}"),
                    None => log!(self.log, Debug, "serf: Relaying response to addr: <nil>"),
                }
            }
            _ => {}
        }
    }

    /// Go's error line for a serf message that does not decode (`delegate.go`).
    fn log_undecodable(&mut self, type_byte: u8, error: &DecodeError) {
        let what = match MessageType::try_from(type_byte) {
            Ok(MessageType::Leave) => "leave message",
            Ok(MessageType::Join) => "join message",
            Ok(MessageType::UserEvent) => "user event message",
            Ok(MessageType::Query) => "query message",
            Ok(MessageType::QueryResponse) => "query response message",
            Ok(MessageType::Relay) => "relay header",
            _ => {
                log!(
                    self.log,
                    Warn,
                    "serf: Received message of unknown type: {type_byte}"
                );
                return;
            }
        };
        log!(self.log, Error, "serf: Error decoding {what}: {error}");
    }
}
