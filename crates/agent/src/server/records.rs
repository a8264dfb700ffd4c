//! The records the RPC protocol carries, built from the library's types: members as Go's agent
//! sends them, key-operation results, query answers and stream events, and the
//! `members-filtered` patterns.

use std::net::IpAddr;

use serf::api::wire::msgpack::{Bytes, GoString};
use serf::api::wire::rpc;
use serf::api::{Event, KeyAggregate, Member};

use crate::frame;

/// An event payload as Go's agent streams it: nil when empty.
pub fn go_payload(payload: &[u8]) -> Option<Bytes> {
    (!payload.is_empty()).then(|| Bytes(payload.to_vec()))
}

pub fn query_record(kind: &str, from: &str, payload: Option<Vec<u8>>) -> rpc::QueryRecord {
    rpc::QueryRecord {
        from: GoString::from(from),
        payload: payload.map(Bytes),
        record_type: GoString::from(kind),
    }
}

/// A member as the RPC protocol carries it (IPv4 addresses as 4 bytes, as Go sends them).
pub fn rpc_member(m: &Member) -> rpc::Member {
    let addr = match m.addr {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    rpc::Member {
        addr: Bytes(addr),
        delegate_cur: m.delegate[2],
        delegate_max: m.delegate[1],
        delegate_min: m.delegate[0],
        name: GoString::from(m.name.as_str()),
        port: m.port,
        protocol_cur: m.protocol[2],
        protocol_max: m.protocol[1],
        protocol_min: m.protocol[0],
        status: GoString::from(m.status.as_str()),
        tags: Some(
            m.tags
                .iter()
                .map(|(k, v)| (GoString::from(k.as_str()), GoString::from(v.as_str())))
                .collect(),
        ),
    }
}

pub fn key_response(agg: &KeyAggregate, with_keys: bool) -> rpc::KeyResponse {
    rpc::KeyResponse {
        keys: with_keys.then(|| {
            agg.keys
                .iter()
                .map(|(k, n)| (GoString::from(k.as_str()), *n as i64))
                .collect()
        }),
        messages: Some(
            agg.messages
                .iter()
                .map(|(k, v)| (GoString::from(k.as_str()), GoString::from(v.as_str())))
                .collect(),
        ),
        num_err: agg.num_err as i64,
        num_nodes: agg.num_nodes as i64,
        num_resp: agg.num_resp as i64,
    }
}

/// `members-filtered`: every pattern anchored as HashiCorp does (`^` + pattern + `$`, plain
/// concatenation); a missing tag matches as the empty string.
pub struct MemberFilter {
    tags: Vec<(String, regex::Regex)>,
    status: Option<regex::Regex>,
    name: Option<regex::Regex>,
}

impl MemberFilter {
    pub fn new(req: &rpc::MembersFilteredRequest) -> Result<MemberFilter, String> {
        let compile = |p: &str| {
            regex::Regex::new(&format!("^{p}$"))
                .map_err(|e| format!("Failed to compile regex: {e}"))
        };
        let optional = |p: &GoString| -> Result<Option<regex::Regex>, String> {
            let p = p.to_string_lossy();
            if p.is_empty() {
                Ok(None)
            } else {
                compile(&p).map(Some)
            }
        };
        let mut tags = Vec::new();
        for (k, v) in req.tags.iter().flatten() {
            tags.push((k.to_string_lossy(), compile(&v.to_string_lossy())?));
        }
        Ok(MemberFilter {
            tags,
            status: optional(&req.status)?,
            name: optional(&req.name)?,
        })
    }

    pub fn matches(&self, m: &Member) -> bool {
        self.tags
            .iter()
            .all(|(k, re)| re.is_match(m.tags.get(k).map_or("", String::as_str)))
            && self
                .status
                .as_ref()
                .is_none_or(|re| re.is_match(m.status.as_str()))
            && self.name.as_ref().is_none_or(|re| re.is_match(&m.name))
    }
}

/// A stream's record of `event` for the stream opened by request `seq`: `None` for events
/// streams do not carry. A query gets the id `query_id` hands out, which `respond` names.
pub fn event_frame(
    seq: u64,
    event: &Event,
    query_id: impl FnOnce(u64, u32, std::time::Instant) -> u64,
) -> Option<Vec<u8>> {
    let header = frame::response(seq, "");
    Some(match event {
        Event::Member { kind, members } => frame::with_body(
            header,
            &rpc::MemberEventRecord {
                event: GoString::from(kind.as_str()),
                members: members.iter().map(rpc_member).collect(),
            },
        ),
        Event::User(u) => frame::with_body(
            header,
            &rpc::UserEventRecord {
                coalesce: u.coalesce,
                event: GoString::from("user"),
                ltime: u.ltime,
                name: GoString::from(u.name.as_str()),
                payload: go_payload(&u.payload),
            },
        ),
        Event::Query(q) => frame::with_body(
            header,
            &rpc::QueryEventRecord {
                event: GoString::from("query"),
                id: query_id(q.ltime, q.id, q.deadline),
                ltime: q.ltime,
                name: GoString::from(q.name.as_str()),
                payload: go_payload(&q.payload),
            },
        ),
        Event::Shutdown { .. } => return None,
    })
}
