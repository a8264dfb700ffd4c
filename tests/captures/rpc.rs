//! The RPC capture's checks: command counts and each connection's listing in rpc.md, every reply
//! typed by its command, and the facts rpc.md states about the run (members, queries, keys,
//! streamed events and log lines).

use std::collections::BTreeSet;

use serf_proto::wire::msgpack::{Bytes, GoString};
use serf_proto::wire::rpc::{self, Command};

use crate::markdown::{ensure_nonempty, num_after};
use crate::rpc_decode::{decode_rpc, Body, Reply, Req, RpcConn};
use crate::support::{
    base64, camel, ensure, same, Counts, TestResult, INSTALLED_KEY_HEX, PRIMARY_KEY_HEX,
};

/// One connection of rpc.md's listing.
#[derive(Debug, PartialEq)]
struct MdRpcConn {
    client_port: u16,
    server_port: u16,
    commands: String,
    lens: [usize; 2],
    objects: [usize; 2],
}

fn md_rpc_conns(md: &str) -> Result<Vec<MdRpcConn>, String> {
    let mut conns: Vec<MdRpcConn> = Vec::new();
    for line in md.lines().map(str::trim) {
        if line.contains(" client :") {
            let commands = line
                .split("commands=")
                .nth(1)
                .and_then(|c| c.split_whitespace().next());
            conns.push(MdRpcConn {
                client_port: num_after(line, "client :")?,
                server_port: num_after(line, "agent :")?,
                commands: commands
                    .ok_or(format!("no commands in {line:?}"))?
                    .to_string(),
                lens: [
                    num_after(line, "client->agent ")?,
                    num_after(line, "agent->client ")?,
                ],
                objects: [0, 0],
            });
        } else if let Some((dir, text)) = line
            .split_once(' ')
            .filter(|(d, _)| ["c2s", "s2c"].contains(d))
        {
            let conn = conns
                .last_mut()
                .ok_or("object line before any connection")?;
            let n = &mut conn.objects[usize::from(dir == "s2c")];
            // A truncated listing states the total instead.
            *n = match text.contains("msgpack objects in total") {
                true => num_after(text, "(")?,
                false => *n + 1,
            };
        }
    }
    ensure_nonempty(conns, "client :")
}

/// Every client→agent stream is a sequence of request header + typed body using all its bytes;
/// the command counts equal rpc.md's "Commands present", and each connection's commands, sizes and
/// object counts equal its listing.
pub(crate) fn rpc_requests() -> TestResult {
    let (conns, md) = decode_rpc()?;
    let line = md
        .lines()
        .find(|l| l.starts_with("Commands present:"))
        .ok_or("no 'Commands present:' line")?;
    let want: Counts = line
        .trim_start_matches("Commands present:")
        .trim_end_matches('.')
        .split(", ")
        .map(|item| {
            let name = item.split('`').nth(1).ok_or(format!("bad item {item:?}"))?;
            Ok((name.to_string(), num_after(item, "(")?))
        })
        .collect::<Result<_, String>>()?;
    let mut got = Counts::new();
    for r in conns.iter().flat_map(|c| &c.requests) {
        *got.entry(r.command.name().to_string()).or_default() += 1;
    }
    same("commands present", &got, &want)?;
    compare_listing(&conns, &md)?;
    for conn in &conns {
        let first = conn.requests.first().map(|r| (r.seq, r.command));
        same(
            &format!(":{} first request", conn.client_port),
            first,
            Some((1, Command::Handshake)),
        )?;
    }
    println!("rpc: {} connections, commands {got:?}", conns.len());
    Ok(())
}

fn compare_listing(conns: &[RpcConn], md: &str) -> TestResult {
    let want = md_rpc_conns(md)?;
    same("connections", conns.len(), want.len())?;
    for (conn, want) in conns.iter().zip(&want) {
        let commands: Vec<&str> = conn.requests.iter().map(|r| r.command.name()).collect();
        let got = MdRpcConn {
            client_port: conn.client_port,
            server_port: conn.server_port,
            commands: commands.join(","),
            lens: conn.lens,
            objects: conn.objects,
        };
        same("connection", &got, want)?;
    }
    Ok(())
}

/// Every agent→client stream is a sequence of response header + body/record using all its bytes
/// (decode_replies stops only at the end), each body typed by the command of its Seq.
pub(crate) fn rpc_responses() -> TestResult {
    let (conns, md) = decode_rpc()?;
    compare_listing(&conns, &md)?;
    let mut records = Counts::new();
    for body in conns
        .iter()
        .flat_map(|c| &c.replies)
        .filter_map(|r| r.body.as_ref())
    {
        let kind = match body {
            Body::MemberEvent(r) => format!("stream {}", r.event),
            Body::UserEvent(_) => "stream user".into(),
            Body::QueryEvent(_) => "stream query".into(),
            Body::Log(_) => "monitor log".into(),
            Body::Query(r) => format!("query {}", r.record_type),
            other => format!(
                "body {}",
                camel(other).split('(').next().unwrap_or_default()
            ),
        };
        *records.entry(kind).or_default() += 1;
    }
    println!("rpc: response bodies and records: {records:?}");
    // Objects = headers + bodies; a header count mismatch would have failed compare_listing.
    let bodies: usize = records.values().sum();
    let headers: usize = conns.iter().map(|c| c.replies.len()).sum();
    same(
        "agent→client objects",
        headers + bodies,
        conns.iter().map(|c| c.objects[1]).sum(),
    )
}

/// Facts rpc.md states about this run, checked on the typed bodies.
pub(crate) fn rpc_documented_facts() -> TestResult {
    let (conns, _) = decode_rpc()?;
    let mut polls = Vec::new(); // members-filtered {Status: "failed"} answers, in order
    let mut list_keys = Vec::new();
    let mut queries = 0;
    for conn in &conns {
        let at = format!(":{}", conn.client_port);
        for req in &conn.requests {
            let reply = conn.replies.iter().find(|r| r.seq == req.seq);
            let reply = reply.ok_or(format!("{at}: no reply to Seq {}", req.seq))?;
            match (&req.body, conn.bodies(req.seq).next()) {
                (Req::Handshake(h), _) => same(&format!("{at} handshake version"), h.version, 1)?,
                (Req::Respond(r), _) => respond_fact(conn, reply, r)?,
                (Req::Stop(s), _) => {
                    let target = conn.command(s.stop);
                    same(&format!("{at} stop target"), target, Some(Command::Stream))?
                }
                (Req::Join(_), Some(Body::Join(j))) => same(&format!("{at} joined"), j.num, 1)?,
                (Req::None, Some(Body::Members(m))) => members_fact(&at, "", m, &mut polls)?,
                (Req::MembersFiltered(f), Some(Body::Members(m))) => {
                    members_fact(&at, &f.status.to_string(), m, &mut polls)?
                }
                (Req::Query(q), _) => {
                    queries += 1;
                    query_fact(conn, req.seq, q)?
                }
                (_, Some(Body::Key(k))) => key_fact(&at, req.command, k, &mut list_keys)?,
                (_, Some(Body::Coordinate(c))) => {
                    let dims = c.coord.vec.as_ref().map_or(0, Vec::len);
                    same(
                        &format!("{at} coordinate (Ok, dimensions)"),
                        (c.ok, dims),
                        (true, 8),
                    )?
                }
                (_, Some(Body::Stats(s))) => {
                    let get = |section: &str, key: &str| {
                        let section = s.get(&GoString::from(section));
                        section
                            .and_then(|m| m.get(&GoString::from(key)))
                            .map(ToString::to_string)
                    };
                    let got = (get("agent", "name"), get("serf", "encrypted"));
                    same(
                        &format!("{at} stats"),
                        got,
                        (Some("node-a".into()), Some("true".into())),
                    )?
                }
                _ => {}
            }
        }
        for body in conn.replies.iter().filter_map(|r| r.body.as_ref()) {
            stream_record_fact(&at, body)?;
        }
    }
    // The failure poll: empty until node-c is found failed.
    let (last, empty) = polls.split_last().ok_or("no members-filtered polls")?;
    ensure!(
        empty.iter().all(Vec::is_empty),
        "polls before the last should be empty: {polls:?}"
    );
    same(
        "last failure poll",
        last.clone(),
        vec!["node-c:failed".to_string()],
    )?;
    let (primary, installed) = (
        base64(&hex::decode(PRIMARY_KEY_HEX)?),
        base64(&hex::decode(INSTALLED_KEY_HEX)?),
    );
    let mut both = vec![primary.clone(), installed];
    both.sort();
    same("list-keys results", list_keys, vec![vec![primary], both])?;
    same("query commands", queries, 2)?;
    println!("rpc: {} empty failure polls then {last:?}", empty.len());
    Ok(())
}

fn text(bytes: &Option<Bytes>) -> Option<String> {
    bytes
        .as_deref()
        .map(|p| String::from_utf8_lossy(p).into_owned())
}

/// The stream client's `respond` came too late (its handler had answered already), and it named
/// the query the stream had delivered.
fn respond_fact(conn: &RpcConn, reply: &Reply, r: &rpc::RespondRequest) -> TestResult {
    let at = conn.client_port;
    same(
        &format!(":{at} respond error"),
        reply.error.as_str(),
        "No pending queries matching ID",
    )?;
    let streamed = conn.replies.iter().filter_map(|r| match &r.body {
        Some(Body::QueryEvent(q)) => Some(q.id),
        _ => None,
    });
    same(
        &format!(":{at} respond ID vs streamed query IDs"),
        streamed.collect(),
        vec![r.id],
    )
}

/// Unfiltered member lists hold the three nodes; filtered ones only members with that status.
fn members_fact(
    at: &str,
    status: &str,
    m: &rpc::MembersResponse,
    polls: &mut Vec<Vec<String>>,
) -> TestResult {
    let mut members: Vec<String> = m
        .members
        .iter()
        .map(|m| format!("{}:{}", m.name, m.status))
        .collect();
    if status.is_empty() {
        let mut names: Vec<String> = m.members.iter().map(|m| m.name.to_string()).collect();
        names.sort();
        return same(
            &format!("{at} members"),
            names,
            ["node-a", "node-b", "node-c"].map(String::from).to_vec(),
        );
    }
    ensure!(
        m.members.iter().all(|m| m.status == status),
        "{at}: filter {status} gave {members:?}"
    );
    members.sort();
    polls.push(members);
    Ok(())
}

/// A query's records: one ack and one `uptime-from-<node> payload=<payload>` response (the event
/// handler's output) per targeted node, then `done` with no sender and no payload.
fn query_fact(conn: &RpcConn, seq: u64, q: &rpc::QueryRequest) -> TestResult {
    let at = conn.client_port;
    let records = conn.bodies(seq).map(|b| match b {
        Body::Query(r) => Ok(r),
        other => Err(format!(":{at}: query Seq got {other:?}")),
    });
    let records = records.collect::<Result<Vec<_>, _>>()?;
    let (done, rest) = records
        .split_last()
        .ok_or(format!(":{at}: no query records"))?;
    let last = (
        done.record_type.to_string(),
        done.from.to_string(),
        text(&done.payload),
    );
    same(
        &format!(":{at} last query record"),
        last,
        ("done".into(), String::new(), None),
    )?;
    let payload = text(&q.payload).unwrap_or_default();
    let (mut acks, mut responders) = (BTreeSet::new(), BTreeSet::new());
    for r in rest {
        let from = r.from.to_string();
        match r.record_type.as_str() {
            Some("ack") => ensure!(
                r.payload.is_none() && acks.insert(from),
                ":{at}: bad ack {r:?}"
            ),
            Some("response") => {
                let want = format!("uptime-from-{from} payload={payload}");
                same(&format!(":{at} response"), text(&r.payload), Some(want))?;
                responders.insert(from);
            }
            _ => return Err(format!(":{at}: unexpected query record {r:?}").into()),
        }
    }
    let nodes: BTreeSet<String> = match &q.filter_nodes {
        Some(n) => n.iter().map(ToString::to_string).collect(),
        None => ["node-a", "node-b", "node-c"].map(String::from).into(),
    };
    same(&format!(":{at} acks"), &acks, &nodes)?;
    same(&format!(":{at} responders"), &responders, &nodes)
}

/// Key operations reach all three nodes without error; only list-keys returns `Keys`.
fn key_fact(
    at: &str,
    command: Command,
    k: &rpc::KeyResponse,
    list_keys: &mut Vec<Vec<String>>,
) -> TestResult {
    same(
        &format!("{at} key op"),
        (k.num_err, k.num_nodes, k.num_resp),
        (0, 3, 3),
    )?;
    if command != Command::ListKeys {
        ensure!(k.keys.is_none(), "{at}: {} returned Keys", command.name());
        return Ok(());
    }
    let keys = k
        .keys
        .as_ref()
        .ok_or(format!("{at}: list-keys without Keys"))?;
    ensure!(
        keys.values().all(|n| *n == 3),
        "{at}: keys not on all nodes: {keys:?}"
    );
    list_keys.push(keys.keys().map(ToString::to_string).collect());
    Ok(())
}

/// Streamed events are the `deploy` user event and the `uptime` query; log lines are Go `log`
/// lines at debug level or above (`serf monitor -log-level=debug`).
fn stream_record_fact(at: &str, body: &Body) -> TestResult {
    match body {
        Body::UserEvent(e) => {
            let got = (e.name.to_string(), text(&e.payload), e.coalesce);
            same(
                &format!("{at} user event"),
                got,
                ("deploy".into(), Some("v1.2.3".into()), false),
            )
        }
        Body::QueryEvent(q) => {
            let got = (q.name.to_string(), text(&q.payload));
            same(
                &format!("{at} query event"),
                got,
                ("uptime".into(), Some("load".into())),
            )
        }
        Body::Log(l) => {
            let line = l.log.to_string(); // "2026/11/26 22:53:08 [INFO] agent: …"
            let level = line.get(20..).unwrap_or_default();
            let known = ["[DEBUG] ", "[INFO] ", "[WARN] ", "[ERR] "]
                .iter()
                .any(|l| level.starts_with(l));
            ensure!(known, "{at}: log line {line:?}");
            Ok(())
        }
        _ => Ok(()),
    }
}
