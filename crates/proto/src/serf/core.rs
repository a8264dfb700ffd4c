//! The [`Serf`] type and its API, without I/O (HashiCorp's serf.go): creating a node, joining,
//! graceful and forced leave, tags, user events, queries and key operations, coordinates. What
//! it keeps beside memberlist, and how members move through it, is in state.rs; memberlist calls
//! into that state through delegate.rs.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use thiserror::Error;

use super::buffers::{EventBuffer, QueryBuffer};
use super::coalesce::{MemberCoalescer, UserCoalescer};
use super::config::{Config, PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN, USER_EVENT_SIZE_CEILING};
use super::event::{Completion, Event};
use super::internal::{self, KeyOp, CONFLICT_QUERY};
use super::lamport::LamportClock;
use super::member::{Member, MemberStatus, Tags};
use super::name_table::NameTable;
use super::query::{self, KeyAggregate, Purpose, QueryParams};
use super::snapshot::{ClockRecorder, Record, CLOCK_UPDATE_INTERVAL};
use super::state::{Action, LeavePhase, Rejoin, SerfStatus, SnapshotLog, State};
use super::stats::{Counters, QueueDepths, QUEUE_CHECK_INTERVAL};
use super::vivaldi::{VivaldiClient, VivaldiConfig};
use crate::log;
use crate::log::Log;
use crate::memberlist::broadcast::{Broadcast, BroadcastQueue};
use crate::memberlist::{Memberlist, Seed, META_MAX_SIZE};
use crate::shrink;
use crate::telemetry::Samples;
use crate::wire::msgpack::{Bytes, Dialect};
use crate::wire::serf::{self as wire, encode_role_meta, encode_tags, Message};

/// Why a serf command was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SerfError {
    #[error("Encoded length of tags exceeds limit of {limit} bytes")]
    TagsTooLarge { len: usize, limit: usize },
    #[error("Serf can't Join after Leave or Shutdown")]
    NotAlive,
    #[error("Leave already in progress")]
    LeaveInProgress,
    #[error("no member named {0:?}")]
    UnknownMember(String),
    #[error("protocol version {0} outside the supported range [{PROTOCOL_VERSION_MIN}, {PROTOCOL_VERSION_MAX}]")]
    ProtocolVersion(u8),
    /// HashiCorp's sentence, which depends on when the size was checked.
    #[error("{0}")]
    UserEventTooLarge(String),
    #[error("query exceeds limit of {limit} bytes")]
    QueryTooLarge { limit: usize },
    #[error("Feature not supported")]
    FeatureNotSupported,
    /// The query was already answered.
    #[error("failed to respond to key query: response already sent")]
    ResponseAlreadySent,
    /// The query's deadline passed.
    #[error("failed to respond to key query: response is past the deadline")]
    ResponsePastDeadline,
    /// The encoded response is over [`Config::query_response_size_limit`].
    #[error("failed to respond to key query: response exceeds limit")]
    ResponseTooLarge,
    /// The response, wrapped for relaying, is over [`Config::query_response_size_limit`].
    #[error("failed to respond to key query: relayed response exceeds limit")]
    RelayedResponseTooLarge,
    #[error("No pending queries matching ID")]
    NoPendingQuery,
    #[error("configuration: {0}")]
    Config(String),
}

/// A serf node's protocol core.
pub struct Serf {
    pub(super) memberlist: Memberlist,
    pub(super) state: State,
}

impl Serf {
    pub fn new(mut config: Config, now: Instant, seed: impl Into<Seed>) -> Result<Serf, SerfError> {
        if !(PROTOCOL_VERSION_MIN..=PROTOCOL_VERSION_MAX).contains(&config.protocol_version) {
            return Err(SerfError::ProtocolVersion(config.protocol_version));
        }
        if config.user_event_size_limit > USER_EVENT_SIZE_CEILING {
            return Err(SerfError::Config(format!(
                "user event size limit exceeds limit of {USER_EVENT_SIZE_CEILING} bytes"
            )));
        }
        // serf maps every protocol version it speaks to memberlist protocol 2.
        config.memberlist.protocol_version = 2;
        config.memberlist.delegate_protocol = [
            PROTOCOL_VERSION_MIN,
            PROTOCOL_VERSION_MAX,
            config.protocol_version,
        ];
        let meta = encode_meta(&config.tags, config.protocol_version)?;
        let seed = seed.into();
        let mut rng = SmallRng::seed_from_u64(seed.choices);
        let memberlist_seed = Seed {
            choices: rng.random(),
            nonces: seed.nonces,
        };
        let mut clock = LamportClock::default();
        let mut event_clock = LamportClock::default();
        let mut query_clock = LamportClock::default();
        clock.increment();
        event_clock.increment();
        query_clock.increment();
        let mut state = State {
            name: config.memberlist.name.to_string_lossy(),
            protocol_version: config.protocol_version,
            tags: config.tags,
            broadcast_timeout: config.broadcast_timeout,
            max_queue_depth: config.max_queue_depth,
            min_queue_depth: config.min_queue_depth,
            leave_propagate_delay: config.leave_propagate_delay,
            reap_interval: config.reap_interval,
            reconnect_interval: config.reconnect_interval,
            reconnect_timeout: config.reconnect_timeout,
            tombstone_timeout: config.tombstone_timeout,
            recent_intent_timeout: config.recent_intent_timeout,
            status: SerfStatus::Alive,
            clock,
            event_clock,
            query_clock,
            members: NameTable::default(),
            departed: BTreeSet::new(),
            recent_intents: HashMap::new(),
            intents: BroadcastQueue::new(config.memberlist.retransmit_mult),
            next_notify: 0,
            finished_notifies: Vec::new(),
            events: VecDeque::new(),
            completions: VecDeque::new(),
            pending_prunes: Vec::new(),
            user_joins: HashSet::new(),
            next_reap: now + config.reap_interval,
            next_reconnect: now + config.reconnect_interval,
            leave: None,
            rng,
            advertise: config.memberlist.advertise,
            gossip_interval: config.memberlist.gossip_interval,
            user_event_size_limit: config.user_event_size_limit,
            query_size_limit: config.query_size_limit,
            query_response_size_limit: config.query_response_size_limit,
            keyring_file: config.keyring_file.clone(),
            conflict_resolution: config.enable_name_conflict_resolution,
            resolving_conflict: false,
            events_seen: EventBuffer::new(),
            queries_seen: QueryBuffer::new(),
            event_min_time: 0,
            query_min_time: 0,
            ignore_old_events: false,
            event_broadcasts: BroadcastQueue::new(config.memberlist.retransmit_mult),
            query_broadcasts: BroadcastQueue::new(config.memberlist.retransmit_mult),
            collectors: HashMap::new(),
            pending: HashMap::new(),
            outbox: Vec::new(),
            actions: Vec::new(),
            member_coalescer: (!config.coalesce_period.is_zero()
                && !config.quiescent_period.is_zero())
            .then(|| MemberCoalescer::new(config.coalesce_period, config.quiescent_period)),
            user_coalescer: (!config.user_coalesce_period.is_zero()
                && !config.user_quiescent_period.is_zero())
            .then(|| UserCoalescer::new(config.user_coalesce_period, config.user_quiescent_period)),
            coordinates: None,
            snapshot: None,
            rejoin: Rejoin::default(),
            counters: Counters::default(),
            samples: Samples::default(),
            log: Log::default(),
            next_queue_check: now + QUEUE_CHECK_INTERVAL,
        };
        state.log.set_threshold(config.memberlist.log_level);
        if let Some(replay) = &config.snapshot {
            // Restore the clocks, and never deliver again what was seen before the restart.
            state.clock.witness(replay.last_clock);
            state.event_clock.witness(replay.last_event_clock);
            state.query_clock.witness(replay.last_query_clock);
            state.event_min_time = replay.last_event_clock + 1;
            state.query_min_time = replay.last_query_clock + 1;
            state.snapshot = Some(SnapshotLog {
                clocks: ClockRecorder::from_replay(replay),
                records: VecDeque::new(),
                next_clock_check: now + CLOCK_UPDATE_INTERVAL,
            });
            if !replay.left {
                let me = config.memberlist.name.to_string_lossy();
                state.rejoin.addrs = replay
                    .alive
                    .iter()
                    .filter(|(n, _)| *n != me)
                    .map(|(_, a)| *a)
                    .collect();
                state.rejoin.next_try = (!state.rejoin.addrs.is_empty()).then_some(now);
            }
        }
        if !config.disable_coordinates {
            let coordinates_seed = state.rng.random();
            state.coordinates = Some(VivaldiClient::new(
                VivaldiConfig::default(),
                coordinates_seed,
            ));
        }
        let memberlist = Memberlist::new(config.memberlist, meta, now, memberlist_seed, &mut state);
        Ok(Serf { memberlist, state })
    }

    pub fn memberlist(&self) -> &Memberlist {
        &self.memberlist
    }

    /// Drops every queued memberlist broadcast and serf intent (see
    /// [`Memberlist::clear_broadcasts`]). Only for simulators that seed member lists directly.
    pub fn clear_broadcasts(&mut self) {
        self.memberlist.clear_broadcasts();
        self.state.intents.reset();
    }

    /// What serf counted since it started (memberlist's own: `memberlist().stats()`).
    pub fn counters(&self) -> &Counters {
        &self.state.counters
    }

    /// Broadcasts waiting in each of serf's queues.
    pub fn queue_depths(&self) -> QueueDepths {
        self.state.queue_depths()
    }

    pub fn status(&self) -> SerfStatus {
        self.state.status
    }

    pub fn local_name(&self) -> &str {
        &self.state.name
    }

    /// Every member serf knows, self included, in no particular order.
    pub fn members(&self) -> Vec<Member> {
        self.state
            .members
            .values()
            .map(|m| m.member.clone())
            .collect()
    }

    pub fn member(&self, name: &str) -> Option<&Member> {
        self.state.members.get(name).map(|m| &m.member)
    }

    pub fn local_member(&self) -> Member {
        let me = self.state.members.get(&self.state.name);
        me.expect("we are a member").member.clone()
    }

    pub fn tags(&self) -> &Tags {
        &self.state.tags
    }

    /// The member clock's current time.
    pub fn member_time(&self) -> u64 {
        self.state.clock.time()
    }

    /// The user-event clock's current time.
    pub fn event_time(&self) -> u64 {
        self.state.event_clock.time()
    }

    /// The query clock's current time.
    pub fn query_time(&self) -> u64 {
        self.state.query_clock.time()
    }

    /// The next application event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        shrink::pop_front(&mut self.state.events)
    }

    /// The next record for the snapshot file, if a snapshot is configured.
    pub fn poll_snapshot_record(&mut self) -> Option<Record> {
        self.state.snapshot.as_mut()?.records.pop_front()
    }

    /// The next finished join or leave, if any.
    pub fn poll_completion(&mut self) -> Option<Completion> {
        self.state.completions.pop_front()
    }

    /// Joins through `addrs`: a [`Completion::Join`] with the returned id reports how many
    /// nodes were contacted. `None` when there is no address to try (nothing contacted).
    /// `ignore_old` skips user events from before the join.
    pub fn join(
        &mut self,
        now: Instant,
        addrs: &[SocketAddr],
        ignore_old: bool,
    ) -> Result<Option<u64>, SerfError> {
        if self.state.status != SerfStatus::Alive {
            return Err(SerfError::NotAlive);
        }
        if addrs.is_empty() {
            return Ok(None);
        }
        // With addresses, memberlist completes the join only when its streams finish, so the id
        // is registered before any completion can arrive.
        self.state.ignore_old_events = ignore_old;
        let id = self.memberlist.join(now, addrs, &mut self.state);
        self.state.user_joins.insert(id);
        Ok(Some(id))
    }

    /// Replaces the local tags and announces them.
    pub fn set_tags(&mut self, now: Instant, tags: Tags) -> Result<(), SerfError> {
        let meta = encode_meta(&tags, self.state.protocol_version)?;
        self.state.tags = tags;
        self.memberlist.update_meta(now, meta, &mut self.state);
        Ok(())
    }

    /// Starts a graceful leave; a [`Completion::Leave`] reports its end.
    pub fn leave(&mut self, now: Instant) -> Result<(), SerfError> {
        match self.state.status {
            SerfStatus::Alive => {}
            SerfStatus::Leaving => return Err(SerfError::LeaveInProgress),
            SerfStatus::Left | SerfStatus::Shutdown => {
                self.state.completions.push_back(Completion::Leave);
                return Ok(());
            }
        }
        self.state.status = SerfStatus::Leaving;
        self.state.record(|_| Some(Record::Leave));
        let ltime = self.state.clock.time();
        self.state.clock.increment();
        let msg = wire::Leave {
            ltime,
            node: self.state.name.as_str().into(),
            prune: false,
        };
        self.state.handle_leave_intent(now, &msg);
        let others_alive =
            self.state.members.values().any(|m| {
                m.member.name != self.state.name && m.member.status == MemberStatus::Alive
            });
        if others_alive {
            let notify = self.state.broadcast_intent(Message::Leave(msg));
            self.state.leave = Some(LeavePhase::Intent {
                notify,
                until: now + self.state.broadcast_timeout,
            });
        } else {
            self.start_memberlist_leave(now);
        }
        Ok(())
    }

    /// Removes a failed member: broadcasts a leave intent for it; `prune` erases it everywhere.
    pub fn force_leave(&mut self, now: Instant, node: &str, prune: bool) -> Result<(), SerfError> {
        if !self.state.members.contains_key(node) {
            return Err(SerfError::UnknownMember(node.to_string()));
        }
        let ltime = self.state.clock.time();
        self.state.clock.increment();
        let msg = wire::Leave {
            ltime,
            node: node.into(),
            prune,
        };
        self.state.handle_leave_intent(now, &msg);
        self.state.broadcast_intent(Message::Leave(msg));
        Ok(())
    }

    /// Sends a user event to every member (and delivers it locally). `coalesce` lets receivers
    /// that coalesce keep only the newest event of this name.
    pub fn user_event(
        &mut self,
        now: Instant,
        name: &str,
        payload: &[u8],
        coalesce: bool,
    ) -> Result<(), SerfError> {
        let limit = self.state.user_event_size_limit;
        if name.len() + payload.len() > limit {
            return Err(SerfError::UserEventTooLarge(format!(
                "user event exceeds configured limit of {limit} bytes before encoding"
            )));
        }
        let msg = wire::UserEventMessage {
            ltime: self.state.event_clock.time(),
            name: name.into(),
            payload: Some(Bytes(payload.to_vec())),
            cc: coalesce,
        };
        let encoded = Message::UserEvent(msg.clone()).encode(Dialect::GOSSIP);
        if encoded.len() > limit {
            return Err(SerfError::UserEventTooLarge(format!(
                "encoded user event exceeds configured limit of {limit} bytes after encoding"
            )));
        }
        self.state.event_clock.increment();
        self.state.handle_user_event(now, &msg, true);
        self.state.event_broadcasts.queue(Broadcast {
            key: None,
            message: encoded,
            notify: None,
        });
        self.after(now);
        Ok(())
    }

    /// Sends a query; its acks and responses arrive as [`Completion::Query`] with the returned
    /// handle, ending with [`QueryUpdate::Done`].
    pub fn query(
        &mut self,
        now: Instant,
        name: &str,
        payload: &[u8],
        params: &QueryParams,
    ) -> Result<u64, SerfError> {
        let handle = self
            .state
            .start_query(now, name, payload, params, Purpose::User)?;
        self.after(now);
        Ok(handle)
    }

    /// Answers a received query (once, before its deadline).
    pub fn respond(
        &mut self,
        now: Instant,
        ltime: u64,
        id: u32,
        payload: &[u8],
    ) -> Result<(), SerfError> {
        let result = self.state.respond(now, ltime, id, payload);
        self.after(now);
        result
    }

    /// Runs a key operation on every member: [`Completion::Keys`] reports the aggregate.
    /// `key` is the raw key (ignored for [`KeyOp::List`]).
    pub fn key_operation(&mut self, now: Instant, op: KeyOp, key: &[u8]) -> Result<u64, SerfError> {
        let key = if op == KeyOp::List { &[][..] } else { key };
        let payload = internal::key_request_payload(key);
        let agg = KeyAggregate {
            num_nodes: self.state.alive_count(),
            ..Default::default()
        };
        let handle = self.state.start_query(
            now,
            op.query_name(),
            &payload,
            &QueryParams::default(),
            Purpose::Keys(agg),
        )?;
        self.after(now);
        Ok(handle)
    }

    /// Does what the delegate had to put off (work needing memberlist) and sends queued
    /// messages. Called after every input.
    pub(super) fn after(&mut self, now: Instant) {
        while !self.state.actions.is_empty() || !self.state.outbox.is_empty() {
            for action in std::mem::take(&mut self.state.actions) {
                match action {
                    Action::KeyQuery {
                        op,
                        payload,
                        ltime,
                        id,
                    } => {
                        let limit = self.state.query_response_size_limit;
                        let (me, file) = (self.state.name.clone(), self.state.keyring_file.clone());
                        let fits = |p: &[u8]| {
                            query::response_message(ltime, id, &me, false, Some(p.to_vec()))
                                .encode(Dialect::GOSSIP)
                                .len()
                                <= limit
                        };
                        let keyring = self.memberlist.wire_options_mut().keyring.as_mut();
                        let answer = internal::answer_key_query(
                            op,
                            &payload,
                            keyring,
                            file.as_deref(),
                            fits,
                        );
                        let _ = self.state.respond(now, ltime, id, &answer);
                    }
                    Action::ResolveConflict => {
                        let payload = self.state.name.clone().into_bytes();
                        let purpose = Purpose::Conflict {
                            responses: 0,
                            matching: 0,
                        };
                        if self
                            .state
                            .start_query(
                                now,
                                CONFLICT_QUERY,
                                &payload,
                                &QueryParams::default(),
                                purpose,
                            )
                            .is_err()
                        {
                            self.state.resolving_conflict = false;
                        }
                    }
                }
            }
            for (to, msg) in std::mem::take(&mut self.state.outbox) {
                self.memberlist.send_packet(to, &msg);
            }
        }
    }

    /// Stops without leaving: peers will see this node fail. Coalesced events still pending are
    /// delivered first.
    pub fn shutdown(&mut self) {
        match self.state.status {
            SerfStatus::Shutdown => return,
            SerfStatus::Left => {}
            _ => log!(self.state.log, Warn, "serf: Shutdown without a Leave"),
        }
        self.state.status = SerfStatus::Shutdown;
        let state = &mut self.state;
        if let Some(members) = &mut state.member_coalescer {
            state.events.extend(members.drain());
        }
        if let Some(users) = &mut state.user_coalescer {
            state
                .events
                .extend(users.drain().into_iter().map(Event::User));
        }
    }

    /// This node's network coordinate (`None` with coordinates disabled).
    pub fn coordinate(&self) -> Option<wire::Coordinate> {
        self.state
            .coordinates
            .as_ref()
            .map(|c| c.coordinate().clone())
    }

    /// The last coordinate learned for a member (from probing it directly), or ours.
    pub fn cached_coordinate(&self, name: &str) -> Option<wire::Coordinate> {
        if name == self.state.name {
            return self.coordinate();
        }
        let m = self.state.members.get(name)?;
        m.coordinate.as_deref().cloned()
    }

    /// Times our coordinate was reset after becoming invalid.
    pub fn coordinate_resets(&self) -> u64 {
        self.state.coordinates.as_ref().map_or(0, |c| c.resets())
    }

    fn start_memberlist_leave(&mut self, now: Instant) {
        let notify = self.memberlist.leave(now, &mut self.state);
        self.state.leave = Some(LeavePhase::Memberlist {
            notify,
            until: now + self.state.broadcast_timeout,
        });
    }

    /// Moves a graceful leave through its phases as broadcasts finish or time runs out.
    pub(super) fn advance_leave(&mut self, now: Instant) {
        loop {
            match self.state.leave {
                Some(LeavePhase::Intent { notify, until }) => {
                    self.state.collect_finished();
                    if self.state.finished(notify) || now >= until {
                        self.start_memberlist_leave(now);
                        continue;
                    }
                }
                Some(LeavePhase::Memberlist { notify, until }) => {
                    let done = notify.is_none_or(|n| self.memberlist.broadcast_finished(n));
                    if done || now >= until {
                        let until = now + self.state.leave_propagate_delay;
                        self.state.leave = Some(LeavePhase::Propagating { until });
                        continue;
                    }
                }
                Some(LeavePhase::Propagating { until }) if now >= until => {
                    self.state.leave = None;
                    self.state.status = SerfStatus::Left;
                    self.state.completions.push_back(Completion::Leave);
                }
                _ => {}
            }
            return;
        }
    }

    pub(super) fn leave_deadline(&self) -> Option<Instant> {
        match self.state.leave {
            Some(LeavePhase::Intent { until, .. })
            | Some(LeavePhase::Memberlist { until, .. })
            | Some(LeavePhase::Propagating { until }) => Some(until),
            None => None,
        }
    }
}

fn encode_meta(tags: &Tags, protocol_version: u8) -> Result<Vec<u8>, SerfError> {
    let tags: wire::Tags = tags
        .iter()
        .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
        .collect();
    let meta = if protocol_version < 3 {
        encode_role_meta(&tags)
    } else {
        encode_tags(&tags, Dialect::GOSSIP)
    };
    if meta.len() > META_MAX_SIZE {
        return Err(SerfError::TagsTooLarge {
            len: meta.len(),
            limit: META_MAX_SIZE,
        });
    }
    Ok(meta)
}
