//! Queries on the move (HashiCorp's query.go, with `handleQuery` and `handleQueryResponse` from
//! serf.go and the dispatch of internal_query.go): sending one and collecting its acks and
//! responses, answering a received one once before its deadline, relaying responses. The types
//! are in query.rs.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::Rng;

use super::buffers::Admission;
use super::core::SerfError;
use super::event::{Completion, Event, QueryEvent};
use super::internal::{self, KeyOp, CONFLICT_QUERY, INTERNAL_PREFIX};
use super::member::MemberStatus;
use super::query::{self, Collector, Pending, Purpose, QueryParams, QueryUpdate};
use super::state::{Action, SerfStatus, State};
use crate::memberlist::broadcast::Broadcast;
use crate::memberlist::{ip_from_bytes, ip_to_bytes};
use crate::telemetry::NamedCounter;
use crate::wire::msgpack::{Bytes, Dialect, GoString};
use crate::wire::serf::{self as wire, Message};

impl State {
    /// Sends a query for `purpose` and registers its collector; returns its Lamport time.
    pub(super) fn start_query(
        &mut self,
        now: Instant,
        name: &str,
        payload: &[u8],
        params: &QueryParams,
        purpose: Purpose,
    ) -> Result<u64, SerfError> {
        if self.protocol_version < 4 {
            return Err(SerfError::FeatureNotSupported);
        }
        let ltime = self.query_clock.time();
        let id = self.rng.random::<u32>() & 0x7fff_ffff;
        let timeout = params
            .timeout
            .unwrap_or_else(|| query::default_timeout(self.gossip_interval, self.alive_count()));
        let msg = wire::Query {
            ltime,
            id,
            addr: Bytes(ip_to_bytes(self.advertise.ip())),
            port: self.advertise.port(),
            source_node: self.name.as_str().into(),
            filters: params.encode_filters(),
            flags: if params.request_ack {
                wire::QUERY_FLAG_ACK
            } else {
                0
            },
            relay_factor: params.relay_factor,
            timeout: timeout.as_nanos().min(i64::MAX as u128) as i64,
            name: name.into(),
            payload: Some(Bytes(payload.to_vec())),
        };
        let encoded = Message::Query(msg.clone()).encode(Dialect::GOSSIP);
        if encoded.len() > self.query_size_limit {
            return Err(SerfError::QueryTooLarge {
                limit: self.query_size_limit,
            });
        }
        let expected = self
            .members
            .values()
            .filter(|m| m.member.status == MemberStatus::Alive && params.admits(&m.member))
            .map(|m| m.member.name.clone())
            .collect();
        self.collectors.insert(
            ltime,
            Collector {
                id,
                deadline: now + timeout,
                purpose,
                request_ack: params.request_ack,
                acks: Default::default(),
                responses: Default::default(),
                expected,
            },
        );
        self.handle_query(now, &msg);
        self.query_broadcasts.queue(Broadcast {
            key: None,
            message: encoded,
            notify: None,
        });
        Ok(ltime)
    }

    /// A query (Go `handleQuery`); true when it is worth rebroadcasting.
    pub(super) fn handle_query(&mut self, now: Instant, q: &wire::Query) -> bool {
        self.query_clock.witness(q.ltime);
        if q.ltime < self.query_min_time {
            return false;
        }
        match self
            .queries_seen
            .accept(self.query_clock.time(), q.ltime, q.id)
        {
            Admission::New => {}
            Admission::Duplicate => return false,
            Admission::TooOld => {
                self.counters.queries_too_old += 1;
                return false;
            }
        }
        self.record(|c| c.query(q.ltime));
        self.counters.queries += 1;
        self.samples
            .named(NamedCounter::Query, &q.name.to_string_lossy());
        let rebroadcast = q.flags & wire::QUERY_FLAG_NO_BROADCAST == 0;
        if !query::passes_filters(
            q.filters.as_deref().unwrap_or_default(),
            &self.name,
            &self.tags,
        ) {
            return rebroadcast;
        }
        let Some(ip) = ip_from_bytes(&q.addr) else {
            return rebroadcast;
        };
        let addr = SocketAddr::new(ip, q.port);
        let source = q.source_node.to_string_lossy();
        if q.flags & wire::QUERY_FLAG_ACK != 0 {
            let ack = query::response_message(q.ltime, q.id, &self.name, true, None)
                .encode(Dialect::GOSSIP);
            self.outbox.push((addr, ack.clone()));
            let _ = self.relay(q.relay_factor, addr, &source, ack);
        }
        let deadline = now + Duration::from_nanos(q.timeout.max(0) as u64);
        self.pending.insert(
            (q.ltime, q.id),
            Pending {
                addr,
                source: source.clone(),
                deadline,
                relay_factor: q.relay_factor,
                responded: false,
            },
        );
        let name = q.name.to_string_lossy();
        let payload = q.payload.as_deref().unwrap_or_default().to_vec();
        if let Some(internal_name) = name.strip_prefix(INTERNAL_PREFIX) {
            self.handle_internal_query(now, internal_name, payload, q.ltime, q.id);
        } else {
            self.events.push_back(Event::Query(QueryEvent {
                ltime: q.ltime,
                id: q.id,
                name,
                payload,
                source,
                deadline,
            }));
        }
        rebroadcast
    }

    /// `_serf_*` queries are answered here, never shown to the application.
    fn handle_internal_query(
        &mut self,
        now: Instant,
        name: &str,
        payload: Vec<u8>,
        ltime: u64,
        id: u32,
    ) {
        let full = format!("{INTERNAL_PREFIX}{name}");
        if let Some(op) = KeyOp::from_query_name(&full) {
            self.actions.push(Action::KeyQuery {
                op,
                payload,
                ltime,
                id,
            });
        } else if full == CONFLICT_QUERY {
            let asked = String::from_utf8_lossy(&payload).into_owned();
            if asked != self.name {
                let answer = internal::conflict_answer(self.members.get(&asked).map(|m| &m.member));
                let _ = self.respond(now, ltime, id, &answer);
            }
        }
        // _serf_ping needs nothing beyond the ack; unknown internal queries are ignored.
    }

    /// Answers a received query once, before its deadline (Go `Query.Respond`).
    pub(super) fn respond(
        &mut self,
        now: Instant,
        ltime: u64,
        id: u32,
        payload: &[u8],
    ) -> Result<(), SerfError> {
        let pending = self
            .pending
            .get(&(ltime, id))
            .ok_or(SerfError::NoPendingQuery)?;
        if pending.responded {
            return Err(SerfError::ResponseAlreadySent);
        }
        if now > pending.deadline {
            return Err(SerfError::ResponsePastDeadline);
        }
        let msg = query::response_message(ltime, id, &self.name, false, Some(payload.to_vec()))
            .encode(Dialect::GOSSIP);
        if msg.len() > self.query_response_size_limit {
            return Err(SerfError::ResponseTooLarge);
        }
        let (addr, source, relay_factor) =
            (pending.addr, pending.source.clone(), pending.relay_factor);
        self.outbox.push((addr, msg.clone()));
        self.relay(relay_factor, addr, &source, msg)?;
        if let Some(p) = self.pending.get_mut(&(ltime, id)) {
            p.responded = true;
        }
        Ok(())
    }

    /// Sends copies of a response through up to `factor` random members (Go `relayResponse`):
    /// alive, protocol max ≥ 5, not ourselves.
    fn relay(
        &mut self,
        factor: u8,
        dest: SocketAddr,
        dest_name: &str,
        response: Vec<u8>,
    ) -> Result<(), SerfError> {
        if factor == 0 || self.members.len() < factor as usize + 1 {
            return Ok(());
        }
        let header = wire::RelayHeader {
            dest_addr: wire::UdpAddr {
                ip: Bytes(ip_to_bytes(dest.ip())),
                port: dest.port() as i64,
                zone: GoString::default(),
            },
            dest_name: dest_name.into(),
        };
        let msg = Message::Relay {
            header,
            inner: response,
        }
        .encode(Dialect::GOSSIP);
        if msg.len() > self.query_response_size_limit {
            return Err(SerfError::RelayedResponseTooLarge);
        }
        let candidates: Vec<SocketAddr> = self
            .members
            .values()
            .filter(|m| {
                m.member.name != self.name
                    && m.member.status == MemberStatus::Alive
                    && m.member.protocol[1] >= 5
            })
            .map(|m| SocketAddr::new(m.member.addr, m.member.port))
            .collect();
        let mut picked: Vec<SocketAddr> = Vec::new();
        for _ in 0..3 * candidates.len() {
            if picked.len() >= factor as usize {
                break;
            }
            let c = candidates[self.rng.random_range(0..candidates.len())];
            if !picked.contains(&c) {
                picked.push(c);
            }
        }
        for to in picked {
            self.outbox.push((to, msg.clone()));
        }
        Ok(())
    }

    /// An ack or response to one of our queries (Go `handleQueryResponse`).
    pub(super) fn handle_query_response(&mut self, now: Instant, r: &wire::QueryResponse) {
        let Some(c) = self.collectors.get_mut(&r.ltime) else {
            return;
        };
        if c.id != r.id || now > c.deadline {
            return;
        }
        let from = r.from.to_string_lossy();
        let update = if r.flags & wire::QUERY_FLAG_ACK != 0 {
            if !c.acks.insert(from.clone()) {
                self.counters.query_duplicate_acks += 1;
                return;
            }
            self.counters.query_acks += 1;
            QueryUpdate::Ack { from }
        } else {
            if !c.responses.insert(from.clone()) {
                self.counters.query_duplicate_responses += 1;
                return;
            }
            self.counters.query_responses += 1;
            QueryUpdate::Response {
                from,
                payload: r.payload.as_deref().unwrap_or_default().to_vec(),
            }
        };
        match (&mut c.purpose, update) {
            (Purpose::User, update) => self.completions.push_back(Completion::Query {
                handle: r.ltime,
                update,
            }),
            (
                Purpose::Conflict {
                    responses,
                    matching,
                },
                QueryUpdate::Response { payload, .. },
            ) => {
                if let Some((addr, port)) = internal::read_conflict_answer(&payload) {
                    *responses += 1;
                    if addr == ip_to_bytes(self.advertise.ip()) && port == self.advertise.port() {
                        *matching += 1;
                    }
                }
            }
            (Purpose::Keys(agg), QueryUpdate::Response { from, payload }) => {
                internal::aggregate_key_response(agg, &from, &payload);
                if agg.num_resp >= agg.num_nodes {
                    self.finish_query(r.ltime);
                    return;
                }
            }
            _ => {}
        }
        if self
            .collectors
            .get(&r.ltime)
            .is_some_and(|c| matches!(c.purpose, Purpose::User) && c.complete())
        {
            self.finish_query(r.ltime);
        }
    }

    /// Ends a query: reports it done, or acts on the vote or key results it collected.
    fn finish_query(&mut self, ltime: u64) {
        let Some(c) = self.collectors.remove(&ltime) else {
            return;
        };
        match c.purpose {
            Purpose::User => self.completions.push_back(Completion::Query {
                handle: ltime,
                update: QueryUpdate::Done,
            }),
            Purpose::Keys(result) => self.completions.push_back(Completion::Keys {
                handle: ltime,
                result,
            }),
            Purpose::Conflict {
                responses,
                matching,
            } => {
                self.resolving_conflict = false;
                if matching < responses / 2 + 1 {
                    self.status = SerfStatus::Shutdown;
                    self.events.push_back(Event::Shutdown {
                        reason: format!(
                            "name conflict: {matching} of {responses} members know {} at our address",
                            self.name
                        ),
                    });
                }
            }
        }
    }

    /// Finishes queries whose deadline passed and forgets received queries past theirs.
    pub(super) fn expire_queries(&mut self, now: Instant) {
        let due: Vec<u64> = self
            .collectors
            .iter()
            .filter(|(_, c)| now >= c.deadline)
            .map(|(t, _)| *t)
            .collect();
        for ltime in due {
            self.finish_query(ltime);
        }
        self.pending.retain(|_, p| now <= p.deadline);
    }
}
