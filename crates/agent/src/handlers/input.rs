//! What a script of one event is given (HashiCorp's `invoke.go`): the `SERF_*` environment, the
//! member lines or payload on stdin, and for queries the way to answer.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;

use serf::api::{Event, Member, Tags};

/// Answers a query with a script's output. It may be called by several scripts matching the
/// same query (as Go's `Query.Respond` could be); the serf core accepts the first answer and
/// reports later ones as errors, which are logged. A failure such as an oversized answer does
/// not use the query up, so another script may still answer.
pub type Responder = Arc<dyn Fn(&[u8]) -> Result<(), String> + Send + Sync>;

/// What a dispatch needs besides the event: the local node as it is now (Go calls `SelfFunc`
/// per event), and for queries the way to answer.
pub struct DispatchContext {
    pub local_name: String,
    pub local_tags: Tags,
    /// Ignored for non-query events; `None` for a query means scripts run but cannot answer.
    pub responder: Option<Responder>,
}

/// Everything a script of one event gets, built once per dispatch and shared by its scripts.
pub(super) struct ScriptInput {
    /// `SERF_EVENT`'s value, also used in log lines.
    pub(super) event_type: &'static str,
    pub(super) env: Vec<(String, String)>,
    pub(super) stdin: Vec<u8>,
    /// Stdin is a user/query payload: Go logs failures to write those, not member lines.
    pub(super) is_payload: bool,
    pub(super) query: Option<QueryTarget>,
    /// Roughly the memory all of this holds, for the lanes' bound.
    pub(super) bytes: usize,
}

pub(super) struct QueryTarget {
    pub(super) name: String,
    pub(super) responder: Option<Responder>,
}

impl ScriptInput {
    /// `None` for events HashiCorp's handlers never see (shutdown).
    pub(super) fn new(event: &Event, ctx: DispatchContext) -> Option<ScriptInput> {
        let (event_type, stdin, is_payload) = match event {
            Event::Member { kind, members } => (kind.as_str(), member_stdin(members), false),
            Event::User(user) => ("user", payload_stdin(&user.payload), true),
            Event::Query(query) => ("query", payload_stdin(&query.payload), true),
            Event::Shutdown { .. } => return None,
        };
        let role = ctx.local_tags.get("role").cloned().unwrap_or_default();
        let mut env = vec![
            ("SERF_EVENT".to_string(), event_type.to_string()),
            ("SERF_SELF_NAME".to_string(), ctx.local_name),
            ("SERF_SELF_ROLE".to_string(), role),
        ];
        env.extend(
            ctx.local_tags
                .iter()
                .map(|(key, value)| (tag_env_name(key), value.clone())),
        );
        let mut query = None;
        match event {
            Event::User(user) => {
                env.push(("SERF_USER_EVENT".to_string(), user.name.clone()));
                env.push(("SERF_USER_LTIME".to_string(), user.ltime.to_string()));
            }
            Event::Query(q) => {
                env.push(("SERF_QUERY_NAME".to_string(), q.name.clone()));
                env.push(("SERF_QUERY_LTIME".to_string(), q.ltime.to_string()));
                query = Some(QueryTarget {
                    name: q.name.clone(),
                    responder: ctx.responder,
                });
            }
            Event::Member { .. } | Event::Shutdown { .. } => {}
        }
        let bytes = std::mem::size_of::<ScriptInput>()
            + stdin.len()
            + env
                .iter()
                .map(|(k, v)| std::mem::size_of::<(String, String)>() + k.len() + v.len())
                .sum::<usize>()
            + query.as_ref().map_or(0, |q| q.name.len());
        Some(ScriptInput {
            event_type,
            env,
            stdin,
            is_payload,
            query,
            bytes,
        })
    }
}

/// `SERF_TAG_` + the key upper-cased with everything outside `[A-Z0-9_]` replaced by `_`, one
/// `_` per character. Upper-casing is Go's per-character `unicode.ToUpper`, under which only
/// ASCII letters, `ı` and `ſ` land in `A-Z` (so `ß` becomes `_`, not `SS`).
pub(super) fn tag_env_name(key: &str) -> String {
    let sanitized: String = key
        .chars()
        .map(|c| match c {
            'a'..='z' => c.to_ascii_uppercase(),
            'A'..='Z' | '0'..='9' | '_' => c,
            'ı' => 'I',
            'ſ' => 'S',
            _ => '_',
        })
        .collect();
    format!("SERF_TAG_{sanitized}")
}

/// One `name\tip\trole\ttags\n` line per member (Go's `memberEventStdin`); tags are `k=v`
/// joined by `,` in key order (Go used random map order).
pub(super) fn member_stdin(members: &[Member]) -> Vec<u8> {
    let mut out = String::new();
    for member in members {
        let tags: Vec<String> = member
            .tags
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let role = member.tags.get("role").map_or("", String::as_str);
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{}",
            escape_field(&member.name),
            go_ip(member.addr),
            escape_field(role),
            escape_field(&tags.join(","))
        );
    }
    out.into_bytes()
}

/// Go's `eventClean`: TAB and LF become the two-character sequences `\t` and `\n`.
fn escape_field(value: &str) -> String {
    value.replace('\t', "\\t").replace('\n', "\\n")
}

/// Go's `net.IP.String`, which prints IPv4-mapped IPv6 addresses as plain IPv4.
fn go_ip(addr: IpAddr) -> String {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        IpAddr::V4(v4) => v4.to_string(),
    }
}

/// The payload with a `\n` appended if non-empty and missing, as most shells' `read` needs it.
pub(super) fn payload_stdin(payload: &[u8]) -> Vec<u8> {
    let mut out = payload.to_vec();
    if out.last().is_some_and(|&b| b != b'\n') {
        out.push(b'\n');
    }
    out
}
