//! Decoding rpc.pcap: each client→agent stream as request headers with typed bodies, each
//! agent→client stream as response headers with the body or records their command calls for,
//! every object checked to use all its bytes and to re-encode to Go's.

use std::collections::{BTreeSet, HashMap};

use libtest_mimic::Failed;
use serf_proto::wire::msgpack::{self, Decoder, Dialect, Field, Value};
use serf_proto::wire::rpc::{
    self, Command, RequestBody, RequestHeader, ResponseBody, ResponseHeader,
};

use crate::markdown::ensure_nonempty;
use crate::support::{ctx, ensure, load};

/// A typed request body, per `Command::request_body()`.
#[derive(Debug)]
#[allow(dead_code)] // fields are read through Debug on failure; only some are inspected
pub(crate) enum Req {
    None,
    Handshake(rpc::HandshakeRequest),
    Auth(rpc::AuthRequest),
    Event(rpc::EventRequest),
    ForceLeave(rpc::ForceLeaveRequest),
    Join(rpc::JoinRequest),
    MembersFiltered(rpc::MembersFilteredRequest),
    Tags(rpc::TagsRequest),
    Stream(rpc::StreamRequest),
    Monitor(rpc::MonitorRequest),
    Stop(rpc::StopRequest),
    Query(rpc::QueryRequest),
    Respond(rpc::RespondRequest),
    Key(rpc::KeyRequest),
    Coordinate(rpc::CoordinateRequest),
}

/// A typed response body or streamed record.
#[derive(Debug)]
pub(crate) enum Body {
    Join(rpc::JoinResponse),
    Members(rpc::MembersResponse),
    Key(rpc::KeyResponse),
    Stats(rpc::StatsResponse),
    Coordinate(rpc::CoordinateResponse),
    MemberEvent(rpc::MemberEventRecord),
    UserEvent(rpc::UserEventRecord),
    QueryEvent(rpc::QueryEventRecord),
    Log(rpc::LogRecord),
    Query(rpc::QueryRecord),
}

pub(crate) struct Request {
    pub(crate) seq: u64,
    pub(crate) command: Command,
    pub(crate) body: Req,
}

pub(crate) struct Reply {
    pub(crate) seq: u64,
    pub(crate) error: String,
    pub(crate) body: Option<Body>,
}

/// One RPC connection, both directions decoded.
pub(crate) struct RpcConn {
    pub(crate) client_port: u16,
    pub(crate) server_port: u16,
    pub(crate) requests: Vec<Request>,
    pub(crate) replies: Vec<Reply>,
    /// msgpack objects client→agent, agent→client.
    pub(crate) objects: [usize; 2],
    pub(crate) lens: [usize; 2],
}

impl RpcConn {
    pub(crate) fn command(&self, seq: u64) -> Option<Command> {
        self.requests
            .iter()
            .find(|r| r.seq == seq)
            .map(|r| r.command)
    }

    /// Bodies that followed headers for `seq`, in order.
    pub(crate) fn bodies(&self, seq: u64) -> impl Iterator<Item = &Body> {
        self.replies
            .iter()
            .filter(move |r| r.seq == seq)
            .filter_map(|r| r.body.as_ref())
    }
}

/// A msgpack value with every map's entries in a canonical order.
fn sort_maps(value: Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.into_iter().map(sort_maps).collect()),
        Value::Map(entries) => {
            let mut entries: Vec<_> = entries
                .into_iter()
                .map(|(k, v)| (k, sort_maps(v)))
                .collect();
            entries.sort_by_key(|(k, _)| format!("{k:?}"));
            Value::Map(entries)
        }
        other => other,
    }
}

/// Reads one msgpack object as `T`, checking that the typed decoder consumed exactly that object
/// and that encoding it again gives the same object.
fn read<T: Field>(dec: &mut Decoder<'_>, what: &str) -> Result<T, String> {
    let (start, rest) = (dec.position(), dec.rest());
    let mut probe = dec.clone();
    ctx(
        probe.value(),
        &format!("{what} at byte {start} (as a msgpack value)"),
        rest,
    )?;
    let object = &rest[..probe.position() - start];
    let value = ctx(T::decode(dec), &format!("{what} at byte {start}"), object)?;
    ensure!(
        dec.position() == probe.position(),
        "{what} at byte {start}: typed decode used {} of the object's {} bytes; object {}",
        dec.position() - start,
        object.len(),
        hex::encode(object)
    );
    // Re-encoding must give Go's bytes back, up to the order of Go maps (random in Go, sorted by
    // us): the members' `Tags` and the `stats` sections.
    let ours = msgpack::to_vec(&value, Dialect::RPC_LEGACY);
    let maps_sorted = |b: &[u8]| Decoder::new(b).value().map(sort_maps);
    ensure!(
        ours == object || maps_sorted(&ours) == maps_sorted(object),
        "{what} at byte {start} re-encodes differently:\n  wire {}\n  ours {}",
        hex::encode(object),
        hex::encode(&ours)
    );
    Ok(value)
}

fn decode_requests(buf: &[u8]) -> Result<Vec<Request>, String> {
    let mut dec = Decoder::new(buf);
    let mut requests = Vec::new();
    while dec.remaining() > 0 {
        let header: RequestHeader = read(&mut dec, "request header")?;
        let command = Command::from_name(header.command.as_bytes())
            .ok_or(format!("unknown command {:?}", header.command))?;
        let what = command.name();
        let body = match command.request_body() {
            RequestBody::None => Req::None,
            RequestBody::Handshake => Req::Handshake(read(&mut dec, what)?),
            RequestBody::Auth => Req::Auth(read(&mut dec, what)?),
            RequestBody::Event => Req::Event(read(&mut dec, what)?),
            RequestBody::ForceLeave => Req::ForceLeave(read(&mut dec, what)?),
            RequestBody::Join => Req::Join(read(&mut dec, what)?),
            RequestBody::MembersFiltered => Req::MembersFiltered(read(&mut dec, what)?),
            RequestBody::Tags => Req::Tags(read(&mut dec, what)?),
            RequestBody::Stream => Req::Stream(read(&mut dec, what)?),
            RequestBody::Monitor => Req::Monitor(read(&mut dec, what)?),
            RequestBody::Stop => Req::Stop(read(&mut dec, what)?),
            RequestBody::Query => Req::Query(read(&mut dec, what)?),
            RequestBody::Respond => Req::Respond(read(&mut dec, what)?),
            RequestBody::Key => Req::Key(read(&mut dec, what)?),
            RequestBody::Coordinate => Req::Coordinate(read(&mut dec, what)?),
        };
        ensure!(
            requests.iter().all(|r: &Request| r.seq != header.seq),
            "Seq {} reused",
            header.seq
        );
        requests.push(Request {
            seq: header.seq,
            command,
            body,
        });
    }
    Ok(requests)
}

/// Decodes the agent's side. The first header for a Seq carries the command's response body (sent
/// even on error, rpc.md/§8.3); every later header for a streaming command's Seq carries one record.
fn decode_replies(buf: &[u8], commands: &HashMap<u64, Command>) -> Result<Vec<Reply>, String> {
    let mut dec = Decoder::new(buf);
    let mut replies: Vec<Reply> = Vec::new();
    let mut finished = BTreeSet::new(); // query streams after `done`, streams refused with an error
    while dec.remaining() > 0 {
        let header: ResponseHeader = read(&mut dec, "response header")?;
        let (seq, error) = (header.seq, header.error.to_string());
        let command = *commands
            .get(&seq)
            .ok_or(format!("reply for Seq {seq}, which no request used"))?;
        let what = command.name();
        let first = replies.iter().all(|r| r.seq != seq);
        let body = if first {
            match command.response_body() {
                ResponseBody::None => None,
                ResponseBody::Records => {
                    if !error.is_empty() {
                        finished.insert(seq);
                    }
                    None
                }
                ResponseBody::Join => Some(Body::Join(read(&mut dec, what)?)),
                ResponseBody::Members => Some(Body::Members(read(&mut dec, what)?)),
                ResponseBody::Key => Some(Body::Key(read(&mut dec, what)?)),
                ResponseBody::Stats => Some(Body::Stats(read(&mut dec, what)?)),
                ResponseBody::Coordinate => Some(Body::Coordinate(read(&mut dec, what)?)),
            }
        } else {
            ensure!(
                command.response_body() == ResponseBody::Records && !finished.contains(&seq),
                "second reply for Seq {seq} ({what}), which streams nothing (more)"
            );
            ensure!(
                error.is_empty(),
                "record header for Seq {seq} ({what}) with error {error:?}"
            );
            Some(match command {
                Command::Stream => stream_record(&mut dec)?,
                Command::Monitor => Body::Log(read(&mut dec, "log record")?),
                _ => {
                    let record: rpc::QueryRecord = read(&mut dec, "query record")?;
                    if record.record_type == "done" {
                        finished.insert(seq);
                    }
                    Body::Query(record)
                }
            })
        };
        replies.push(Reply { seq, error, body });
    }
    Ok(replies)
}

/// A `stream` record, typed by its `Event` field.
fn stream_record(dec: &mut Decoder<'_>) -> Result<Body, String> {
    let rest = dec.rest();
    let value = ctx(dec.clone().value(), "stream record", rest)?;
    let event = match value.get("Event") {
        Some(Value::Str(s) | Value::Bytes(s)) => String::from_utf8_lossy(s).into_owned(),
        other => return Err(format!("stream record without a string Event: {other:?}")),
    };
    Ok(match event.as_str() {
        e if e.starts_with("member-") => Body::MemberEvent(read(dec, "member event record")?),
        "user" => Body::UserEvent(read(dec, "user event record")?),
        "query" => Body::QueryEvent(read(dec, "query event record")?),
        other => return Err(format!("unknown stream event {other:?}")),
    })
}

/// Number of msgpack objects in `buf` (all of it must parse).
fn count_objects(buf: &[u8]) -> Result<usize, String> {
    let mut dec = Decoder::new(buf);
    let mut n = 0;
    while dec.remaining() > 0 {
        ctx(dec.value(), &format!("object #{n}"), buf)?;
        n += 1;
    }
    Ok(n)
}

pub(crate) fn decode_rpc() -> Result<(Vec<RpcConn>, String), Failed> {
    let (capture, md) = load("rpc")?;
    let conns = capture.tcp.iter().map(|conn| {
        let at = format!("connection :{} -> :{}", conn.client_port, conn.server_port);
        let requests =
            decode_requests(&conn.client_to_server).map_err(|e| format!("{at} c2s: {e}"))?;
        let commands = requests.iter().map(|r| (r.seq, r.command)).collect();
        let replies = decode_replies(&conn.server_to_client, &commands)
            .map_err(|e| format!("{at} s2c: {e}"))?;
        Ok(RpcConn {
            client_port: conn.client_port,
            server_port: conn.server_port,
            requests,
            replies,
            objects: [
                count_objects(&conn.client_to_server)?,
                count_objects(&conn.server_to_client)?,
            ],
            lens: [conn.client_to_server.len(), conn.server_to_client.len()],
        })
    });
    let conns = conns.collect::<Result<Vec<_>, String>>()?;
    Ok((ensure_nonempty(conns, "rpc connections")?, md))
}
