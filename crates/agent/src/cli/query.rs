//! `serf query`: sends a query and streams the acks and responses until its deadline.

/// Shown by `serf query -h`, and after usage errors.
pub const HELP: &str = concat!(
    r#"Usage: serf query [options] name payload

Sends a query to the cluster and prints acknowledgements and responses as
they come in, until the query times out. Nodes answer with their query
event handlers. The payload is optional.

Options:
  -format=text|json
      Output format (default: text). JSON is printed once, at the end.
  -node=<name>
      Only this node is asked. Repeat to ask several.
  -tag <key>=<regexp>
      Only nodes whose tag <key> matches are asked. Repeat for more tags.
  -timeout=<duration>
      How long to wait, e.g. 500ms or 15s (default: 0, which lets the agent
      pick a timeout that grows with the cluster size).
  -no-ack
      Do not ask for acknowledgements; only responses come back.
  -relay-factor=<n>
      Have each response also sent through n other nodes (0 to 255), for
      redundancy (default: 0).
"#,
    rpc_options!()
);

pub const SYNOPSIS: &str = "Send a query and collect the responses";

use std::collections::BTreeMap;
use std::io::Write;

use super::interrupt::{Interrupt, POLL};
use super::json::Json;
use super::or_report;
use super::rpc::RpcFlags;
use crate::client::Record;
use crate::config::parse_tags;
use crate::flags::FlagSet;
use serf::api::wire::msgpack::GoString;
use serf::api::wire::rpc::QueryRequest;

pub fn run(args: &[String]) -> i32 {
    let interrupt = Interrupt::catch();
    let mut fs = FlagSet::new(HELP);
    let nodes = fs.list("node");
    let tag_filters = fs.list("tag");
    let timeout = fs.duration("timeout", 0);
    let no_ack = fs.bool("no-ack", false);
    let format = fs.string("format", "text");
    let relay_factor = fs.int("relay-factor", 0);
    let rpc = RpcFlags::new(&mut fs);
    let Some(rest) = fs.parse(args) else {
        return 1;
    };
    let Some(tags) = or_report(parse_tags(&tag_filters.get()), "Error") else {
        return 1;
    };
    let Some((name, payload)) = super::name_and_payload(&rest, "A query", HELP) else {
        return 1;
    };
    let Ok(relay_factor) = u8::try_from(relay_factor.get()) else {
        println!("Relay factor must be between 0 and 255");
        return 1;
    };
    let Some(mut client) = rpc.connect() else {
        return 1;
    };
    let no_ack = no_ack.get();
    let mut report = match format.get().as_str() {
        "text" => Report::Text {
            acks: 0,
            responses: 0,
        },
        "json" => Report::Json {
            acks: Vec::new(),
            responses: BTreeMap::new(),
        },
        other => {
            println!("Invalid format: {other}");
            return 1;
        }
    };
    let nodes = nodes.get();
    let req = QueryRequest {
        filter_nodes: (!nodes.is_empty())
            .then(|| nodes.iter().map(|n| n.as_str().into()).collect()),
        filter_tags: Some(
            tags.iter()
                .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
                .collect(),
        ),
        name: name.as_str().into(),
        payload: payload.map(Into::into),
        relay_factor,
        request_ack: !no_ack,
        timeout: timeout.get(),
    };
    if let Err(e) = client.query(&req) {
        println!("Error sending query: {e}");
        return 1;
    }
    if let Report::Text { .. } = report {
        println!("Query '{name}' dispatched");
    }
    loop {
        if interrupt.fired() {
            return 1;
        }
        match client.next_record(POLL) {
            Ok(None) => {}
            // An empty sender ends the query, as in Go's command: the reference agent, once
            // the query's channels close, sends empty acks until its own deadline fires.
            Ok(Some((_, Record::Ack(from) | Record::Response { from, .. }))) if from.is_empty() => {
                break
            }
            Ok(Some((_, Record::Ack(from)))) => report.ack(from),
            Ok(Some((_, Record::Response { from, payload }))) => report.response(from, payload),
            // Done, or the connection ended: Go's client closes its channels either way.
            Ok(Some((_, Record::QueryDone))) | Err(_) => break,
            Ok(Some(_)) => {}
        }
    }
    report.finish(no_ack);
    0
}

/// The two output formats: text streams as results come, JSON collects them.
enum Report {
    Text {
        acks: usize,
        responses: usize,
    },
    Json {
        acks: Vec<GoString>,
        responses: BTreeMap<GoString, Vec<u8>>,
    },
}

impl Report {
    fn ack(&mut self, from: GoString) {
        match self {
            Report::Text { acks, .. } => {
                *acks += 1;
                println!("Ack from '{from}'");
            }
            Report::Json { acks, .. } => acks.push(from),
        }
    }

    fn response(&mut self, from: GoString, payload: Vec<u8>) {
        match self {
            Report::Text { responses, .. } => {
                *responses += 1;
                // The payload is printed as is, less one trailing newline.
                let shown = payload.strip_suffix(b"\n").unwrap_or(&payload);
                let mut line = format!("Response from '{from}': ").into_bytes();
                line.extend_from_slice(shown);
                line.push(b'\n');
                let _ = std::io::stdout().write_all(&line);
            }
            Report::Json { responses, .. } => {
                responses.insert(from, payload);
            }
        }
    }

    fn finish(self, no_ack: bool) {
        match self {
            Report::Text { acks, responses } => {
                if !no_ack {
                    println!("Total Acks: {acks}");
                }
                println!("Total Responses: {responses}");
            }
            Report::Json { acks, responses } => {
                let acks = if acks.is_empty() {
                    Json::Null
                } else {
                    Json::Array(acks.iter().map(|a| Json::str(a.as_bytes())).collect())
                };
                let responses = responses.iter().map(|(k, v)| (k.as_bytes(), v));
                let out = Json::Object(vec![
                    (b"Acks".to_vec(), acks),
                    (b"Responses".to_vec(), Json::string_map(Some(responses))),
                ]);
                println!("{}", out.to_indented());
            }
        }
    }
}
