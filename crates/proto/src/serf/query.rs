//! Queries: what the asker configures, what it collects, what a responder keeps to answer once,
//! and the filters that decide who answers.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use regex::Regex;

use super::member::Member;
use crate::wire::msgpack::{Bytes, Dialect, GoString};
use crate::wire::serf::{self as wire, Filter, FilterTag};

/// The `QueryTimeoutMult` default.
pub const QUERY_TIMEOUT_MULT: u32 = 16;

/// How to send a query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryParams {
    /// Only these nodes answer (empty: all).
    pub filter_nodes: Vec<String>,
    /// Only nodes whose tag matches the (unanchored) regular expression answer.
    pub filter_tags: BTreeMap<String, String>,
    /// Ask every node that passes the filters to ack on receipt.
    pub request_ack: bool,
    /// How many extra members relay each response to us (0: none).
    pub relay_factor: u8,
    /// `None`: serf's default, `GossipInterval × 16 × ceil(log10(N+1))`.
    pub timeout: Option<Duration>,
}

impl QueryParams {
    /// The encoded filters, as `messageQuery.Filters` carries them (nil when there are none).
    pub fn encode_filters(&self) -> Option<Vec<Bytes>> {
        let mut filters = Vec::new();
        if !self.filter_nodes.is_empty() {
            let nodes = self
                .filter_nodes
                .iter()
                .map(|n| GoString::from(n.as_str()))
                .collect();
            filters.push(Bytes(Filter::Nodes(nodes).encode(Dialect::GOSSIP)));
        }
        for (tag, expr) in &self.filter_tags {
            let f = Filter::Tag(FilterTag {
                tag: tag.as_str().into(),
                expr: expr.as_str().into(),
            });
            filters.push(Bytes(f.encode(Dialect::GOSSIP)));
        }
        (!filters.is_empty()).then_some(filters)
    }

    /// Whether a member passes these filters (used by the asker to know whom to wait for).
    pub fn admits(&self, member: &Member) -> bool {
        (self.filter_nodes.is_empty() || self.filter_nodes.contains(&member.name))
            && self.filter_tags.iter().all(|(tag, expr)| {
                Regex::new(expr)
                    .is_ok_and(|re| re.is_match(member.tags.get(tag).map_or("", |v| v.as_str())))
            })
    }
}

/// Serf's default query timeout for a cluster of `alive` members.
pub fn default_timeout(gossip_interval: Duration, alive: usize) -> Duration {
    let scale = ((alive as f64 + 1.0).log10().ceil() as u32).max(1);
    gossip_interval * QUERY_TIMEOUT_MULT * scale
}

/// Whether this node (its name and tags) should process a query with these filters. A filter that
/// does not decode or compile means no (the query is still passed on).
pub fn passes_filters(filters: &[Bytes], name: &str, tags: &BTreeMap<String, String>) -> bool {
    filters.iter().all(|raw| match Filter::decode(raw) {
        Ok(Filter::Nodes(nodes)) => nodes.iter().any(|n| n.as_bytes() == name.as_bytes()),
        Ok(Filter::Tag(t)) => {
            let value = tags
                .get(&t.tag.to_string_lossy())
                .map_or("", |v| v.as_str());
            t.expr
                .as_str()
                .and_then(|e| Regex::new(e).ok())
                .is_some_and(|re| re.is_match(value))
        }
        Err(_) => false,
    })
}

/// What the asker tracks for one of its queries.
pub struct Collector {
    pub id: u32,
    pub deadline: Instant,
    pub purpose: Purpose,
    pub request_ack: bool,
    pub acks: HashSet<String>,
    pub responses: HashSet<String>,
    /// The members that passed the filters when the query left: once all of them answered,
    /// the query is done early (HashiCorp serf always waits for the timeout).
    pub expected: HashSet<String>,
}

impl Collector {
    pub fn complete(&self) -> bool {
        !self.expected.is_empty()
            && self.expected.is_subset(&self.responses)
            && (!self.request_ack || self.expected.is_subset(&self.acks))
    }
}

/// Who asked, for what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purpose {
    /// The application: every ack and response is reported.
    User,
    /// Name-conflict resolution: counts answers that agree with our address.
    Conflict { responses: usize, matching: usize },
    /// A key operation: answers are aggregated into one result.
    Keys(KeyAggregate),
}

/// A key operation's result across the cluster (`KeyResponse` of the Go library).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyAggregate {
    /// Per-node error or informational messages.
    pub messages: BTreeMap<String, String>,
    /// Base64 key → how many nodes hold it (list only).
    pub keys: BTreeMap<String, usize>,
    /// Base64 primary key → how many nodes use it (list only).
    pub primary_keys: BTreeMap<String, usize>,
    pub num_nodes: usize,
    pub num_resp: usize,
    pub num_err: usize,
}

impl KeyAggregate {
    /// Go's summary error: failures first, then missing answers.
    pub fn error(&self) -> Option<String> {
        if self.num_err > 0 {
            Some(format!(
                "{}/{} nodes reported failure",
                self.num_err, self.num_nodes
            ))
        } else if self.num_resp != self.num_nodes {
            Some(format!(
                "{}/{} nodes reported success",
                self.num_resp, self.num_nodes
            ))
        } else {
            None
        }
    }
}

/// A query this node received and may still answer once, before its deadline.
pub struct Pending {
    pub addr: SocketAddr,
    pub source: String,
    pub deadline: Instant,
    pub relay_factor: u8,
    pub responded: bool,
}

/// One update about a query we sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryUpdate {
    Ack {
        from: String,
    },
    Response {
        from: String,
        payload: Vec<u8>,
    },
    /// The deadline passed or every expected member answered: nothing follows.
    Done,
}

/// The response messages (direct and relayed) for a query answer.
pub fn response_message(
    ltime: u64,
    id: u32,
    from: &str,
    ack: bool,
    payload: Option<Vec<u8>>,
) -> wire::Message {
    wire::Message::QueryResponse(wire::QueryResponse {
        ltime,
        id,
        from: from.into(),
        flags: if ack { wire::QUERY_FLAG_ACK } else { 0 },
        payload: payload.map(Bytes),
    })
}
