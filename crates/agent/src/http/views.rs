//! The JSON the HTTP view answers with: members as `serf members -format=json` prints them
//! (the same filters, anchored the same way), coordinates, and one event as a stream sends it.

use std::collections::BTreeMap;

use serde_json::json;
use serf::api::wire::msgpack::GoString;
use serf::api::wire::rpc;
use serf::api::wire::serf::Coordinate;
use serf::api::{Event, Member};

use crate::cli::json::Json;
use crate::cli::members;
use crate::server::records::{rpc_member, MemberFilter};

/// `key=value&…` decoded, in order (a key may repeat: `tag`).
pub fn query_params(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The filters of `GET /v1/members`: `status`, `name` and any number of `tag=key=value`.
pub struct MembersQuery(MemberFilter);

impl MembersQuery {
    pub fn parse(params: &[(String, String)]) -> Result<MembersQuery, String> {
        let mut req = rpc::MembersFilteredRequest::default();
        let mut tags = BTreeMap::new();
        for (key, value) in params {
            match key.as_str() {
                "status" => req.status = GoString::from(value.as_str()),
                "name" => req.name = GoString::from(value.as_str()),
                "tag" => {
                    let (k, v) = value
                        .split_once('=')
                        .ok_or_else(|| format!("tag {value:?}: expected key=value"))?;
                    tags.insert(GoString::from(k), GoString::from(v));
                }
                _ => {}
            }
        }
        req.tags = (!tags.is_empty()).then_some(tags);
        MemberFilter::new(&req).map(MembersQuery)
    }
}

/// `{"members": [...]}` exactly as `serf members -format=json` prints it.
pub fn members(all: &[Member], query: &MembersQuery) -> String {
    let chosen: Vec<rpc::Member> = all
        .iter()
        .filter(|m| query.0.matches(m))
        .map(rpc_member)
        .collect();
    members::json(&chosen).to_indented()
}

/// `{"self": name, "coordinates": [{"node", "coord"}]}` for every member whose coordinate `of`
/// knows, with the coordinate's fields named as Go's `coordinate.Coordinate` (`Vec`, …).
pub fn coordinates(local: &str, all: &[Member], of: impl Fn(&str) -> Option<Coordinate>) -> String {
    let list: Vec<serde_json::Value> = all
        .iter()
        .filter_map(|m| {
            let c = of(&m.name)?;
            Some(json!({
                "node": m.name,
                "coord": {
                    "Vec": c.vec.unwrap_or_default(),
                    "Error": c.error,
                    "Adjustment": c.adjustment,
                    "Height": c.height,
                },
            }))
        })
        .collect();
    json!({ "self": local, "coordinates": list }).to_string()
}

/// One event as `/v1/events` sends it: its name (the SSE event type) and its JSON data, the
/// member records as `serf members -format=json` writes them.
pub fn event(event: &Event) -> Option<(&'static str, String)> {
    let field = |name: &str, value: Json| (name.as_bytes().to_vec(), value);
    let (kind, fields) = match event {
        Event::Member { kind, members } => {
            let list: Vec<rpc::Member> = members.iter().map(rpc_member).collect();
            (
                kind.as_str(),
                vec![field("members", members::records(&list))],
            )
        }
        Event::User(u) => (
            "user",
            vec![
                field("name", Json::str(&u.name)),
                field("ltime", Json::Int(u.ltime as i64)),
                field("payload", Json::str(&u.payload)),
            ],
        ),
        Event::Query(q) => (
            "query",
            vec![
                field("name", Json::str(&q.name)),
                field("ltime", Json::Int(q.ltime as i64)),
                field("payload", Json::str(&q.payload)),
            ],
        ),
        Event::Shutdown { .. } => return None,
    };
    let mut object = vec![field("event", Json::str(kind))];
    object.extend(fields);
    Some((kind, Json::Object(object).to_indented()))
}
