//! Decodes the reference captures recorded from real Go agents (serf 0.9.4, memberlist 0.2.2)
//! under `tests/data/captures/` and compares what the codec finds with the `.md` file that an
//! independent decoder wrote next to each capture.
//!
//! Expected numbers (message counts, command counts, stream contents) are read from the `.md` files
//! at run time, so the tests follow the data rather than copies of it. A missing capture or `.md`
//! fails the trial: these files are the only evidence of wire compatibility with real agents.

#[path = "common/pcap.rs"]
mod pcap;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Debug;
use std::path::PathBuf;

use libtest_mimic::{Arguments, Failed, Trial};
use serf_proto::wire::memberlist::keyring::Keyring;
use serf_proto::wire::memberlist::push_pull::PushPull;
use serf_proto::wire::memberlist::stream::{self, StreamMessage};
use serf_proto::wire::memberlist::{
    compound, compress, crc, packet, Message, MessageType, WireOptions,
};
use serf_proto::wire::msgpack::{self, Bytes, Decoder, Dialect, Field, GoString, Value};
use serf_proto::wire::rpc::{
    self, Command, RequestBody, RequestHeader, ResponseBody, ResponseHeader,
};
use serf_proto::wire::serf::{
    decode_ack_payload, decode_tags, Filter, Message as SerfMessage, MessageType as SerfMessageType,
};
use serf_proto::wire::{DecodeResult, ErrorKind};

const CAPTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/captures/");
/// The gossip key every packet of encrypted.pcap is sealed with (encrypted.md, "Encryption").
const PRIMARY_KEY_HEX: &str = "5d7a3b9c1e0f2a4b6c8d9e0f1a2b3c4d";
/// The key installed and removed again during the encrypted run; it never sealed anything, so it
/// doubles as the "wrong key" for the keyring tests.
const INSTALLED_KEY_HEX: &str = "a1a2a3a4a5a6a7a8a9aaabacadaeafb0";

type TestResult = Result<(), Failed>;
/// Message name (in the `.md` tables' vocabulary) → count.
type Counts = BTreeMap<String, usize>;
/// (Result, Message, sorted Keys, PrimaryKey) of a serf keyResponse.
type KeyAnswer = (bool, String, Vec<String>, String);

/// Fails the trial with a formatted message unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+).into());
        }
    };
}

fn main() {
    let mut trials = Vec::new();
    for gossip in [Gossip::Plaintext, Gossip::Encrypted] {
        let trial = |test: &str, run: fn(Gossip) -> TestResult| {
            Trial::test(format!("{}::{test}", gossip.name()), move || run(gossip))
        };
        trials.extend([
            trial("udp_message_counts", udp_message_counts),
            trial("udp_tags_and_filters", udp_tags_and_filters),
            trial("tcp_streams", tcp_streams),
        ]);
    }
    trials.extend([
        Trial::test("encrypted::key_install_payload", key_install_payload),
        Trial::test("encrypted::keyring_selection", keyring_selection),
        Trial::test("rpc::requests", rpc_requests),
        Trial::test("rpc::responses", rpc_responses),
        Trial::test("rpc::documented_facts", rpc_documented_facts),
        Trial::test("serf-0.11::udp_re_encodes_with_v2_integers", serf_0_11_udp),
        Trial::test("serf-0.11::push_pull_streams_re_encode", serf_0_11_streams),
    ]);
    libtest_mimic::run(&Arguments::from_args(), trials).exit();
}

// ---------------------------------------------------------------------------------------------
// Loading

/// Reads `<name>.pcap` and `<name>.md`; either one missing is a failure, never a skip.
fn load(name: &str) -> Result<(pcap::Capture, String), Failed> {
    let path = |ext: &str| PathBuf::from(format!("{CAPTURES}{name}.{ext}"));
    let (pcap_path, md_path) = (path("pcap"), path("md"));
    ensure!(
        pcap_path.is_file(),
        "capture {} is missing",
        pcap_path.display()
    );
    let md = std::fs::read_to_string(&md_path)
        .map_err(|e| format!("{} is missing or unreadable: {e}", md_path.display()))?;
    Ok((pcap::read(&pcap_path), md))
}

/// The two gossip captures: the same scenario, without and with encryption.
#[derive(Clone, Copy)]
enum Gossip {
    Plaintext,
    Encrypted,
}

impl Gossip {
    fn name(self) -> &'static str {
        match self {
            Gossip::Plaintext => "plaintext",
            Gossip::Encrypted => "encrypted",
        }
    }

    fn options(self) -> WireOptions {
        WireOptions {
            keyring: match self {
                Gossip::Plaintext => None,
                Gossip::Encrypted => Some(keyring(&[PRIMARY_KEY_HEX])),
            },
            // serf 0.9.4 recorded them: go-msgpack 0.5 integers.
            dialect: Dialect::GOSSIP_LEGACY,
            ..Default::default()
        }
    }
}

/// A keyring of hex keys, the first one primary.
fn keyring(hex_keys: &[&str]) -> Keyring {
    let keys: Vec<Vec<u8>> = hex_keys.iter().map(|k| hex::decode(k).unwrap()).collect();
    Keyring::new(&keys[0], &keys[1..]).unwrap()
}

/// A decode error with what was being decoded and the input, so a codec bug can be reproduced.
fn ctx<T>(result: DecodeResult<T>, what: &str, input: &[u8]) -> Result<T, String> {
    result.map_err(|e| format!("{what}: {e}; input {}", hex::encode(input)))
}

/// `IndirectPing` → `indirectPing`: the Go constant names the `.md` files use, from our enums.
fn camel(name: impl Debug) -> String {
    let name = format!("{name:?}");
    let mut chars = name.chars();
    chars
        .next()
        .map_or(String::new(), |c| c.to_lowercase().chain(chars).collect())
}

fn same<T: PartialEq + Debug>(what: &str, got: T, want: T) -> TestResult {
    ensure!(
        got == want,
        "{what}:\n  decoded:  {got:?}\n  expected: {want:?}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Reading the .md files

/// The `| `name` | count |` rows of the first table after the line starting with `intro`.
fn md_table(md: &str, intro: &str) -> Result<Counts, String> {
    let mut lines = md.lines().skip_while(|l| !l.starts_with(intro));
    lines.next().ok_or(format!("no table after {intro:?}"))?;
    let rows = lines
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'));
    let counts: Counts = rows
        .skip(2) // header and separator
        .map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let count = cells.get(2).and_then(|c| c.parse().ok());
            let name = cells.get(1).map(|c| c.trim_matches('`').to_string());
            name.zip(count).ok_or(format!("bad table row {row:?}"))
        })
        .collect::<Result<_, _>>()?;
    ensure_nonempty(counts, intro)
}

/// Guards against a parser that silently finds nothing (a changed `.md` must not pass vacuously).
fn ensure_nonempty<T>(t: T, what: &str) -> Result<T, String>
where
    for<'a> &'a T: IntoIterator,
{
    let empty = (&t).into_iter().next().is_none();
    ensure!(!empty, "nothing found for {what:?}");
    Ok(t)
}

/// The number right after `key` in `line` (`"… Nodes=2 …"`, `"… agent :7383 …"`).
fn num_after<T: std::str::FromStr>(line: &str, key: &str) -> Result<T, String> {
    let rest = &line[line.find(key).ok_or(format!("no {key:?} in {line:?}"))? + key.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits
        .parse()
        .map_err(|_| format!("no number after {key:?} in {line:?}"))
}

/// Every `start…end` substring of `text`, without the delimiters.
fn all_between<'a>(text: &'a str, start: &str, end: &str) -> BTreeSet<&'a str> {
    text.split(start)
        .skip(1)
        .filter_map(|s| s.split_once(end).map(|(inside, _)| inside))
        .collect()
}

/// Sorts the comma-separated items inside every `{…}`: Go writes maps in random order, and the
/// codec returns them sorted, so only the sets can be compared.
fn sort_braces(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some((before, after)) = rest.split_once('{') {
        let (inside, tail) = after.split_once('}').unwrap_or((after, ""));
        let mut items: Vec<&str> = inside.split(',').collect();
        items.sort();
        out += &format!("{before}{{{}}}", items.join(","));
        rest = tail;
    }
    out + rest
}

// ---------------------------------------------------------------------------------------------
// UDP

/// What the UDP checks need from one capture.
struct Udp {
    /// How the agents that were recorded wrote msgpack (re-encoding must give their bytes).
    dialect: Dialect,
    /// Outermost layer of each datagram ("Top-level packet types").
    top: Counts,
    /// Every layer and message ("Every message found in UDP packets").
    all: Counts,
    /// Every serf message, relay inners included, in capture order.
    serf: Vec<SerfMessage>,
    /// Distinct tag sets of alive messages, as sorted `k=v` lists.
    tags: BTreeSet<String>,
    /// Distinct query filter lists, rendered as the `.md` listing shows them.
    filters: BTreeSet<String>,
}

/// Decodes every datagram down to leaf messages, collecting every failure.
fn decode_udp(capture: &pcap::Capture, opts: &WireOptions) -> Result<Udp, Failed> {
    let mut udp = Udp {
        dialect: opts.dialect,
        top: Counts::default(),
        all: Counts::default(),
        serf: Vec::new(),
        tags: BTreeSet::new(),
        filters: BTreeSet::new(),
    };
    let errors: Vec<String> = capture
        .udp
        .iter()
        .enumerate()
        .filter_map(|(i, d)| {
            let at = format!("datagram #{i} {}->{}", d.src_port, d.dst_port);
            open_datagram(opts, &d.payload, &mut udp)
                .err()
                .map(|e| format!("{at}: {e}"))
        })
        .collect();
    ensure!(
        errors.is_empty(),
        "{} of {} datagrams failed:\n{}",
        errors.len(),
        capture.udp.len(),
        errors.join("\n")
    );
    Ok(udp)
}

/// Opens one datagram layer by layer, counting layers in the `.md`'s vocabulary. The CRC header is
/// found independently of `packet::decode` (which strips it silently) and the compound/compress
/// walk is done with the primitives, so that `packet::flatten` can be checked against it.
fn open_datagram(opts: &WireOptions, datagram: &[u8], udp: &mut Udp) -> Result<(), String> {
    let decoded = ctx(packet::decode(opts, datagram), "packet::decode", datagram)?;
    let plain = match &opts.keyring {
        Some(keyring) => ctx(keyring.decrypt(datagram, &[]), "decrypt", datagram)?,
        None => datagram.to_vec(),
    };
    let has_crc = plain.len() != decoded.len();
    if has_crc {
        ensure!(
            plain[0] == MessageType::HasCrc as u8
                && plain[crc::OVERHEAD..] == decoded[..]
                && crc::unwrap(&plain) == Ok(&decoded[..]),
            "packet::decode removed something other than a CRC header from {}",
            hex::encode(&plain)
        );
    }

    let mut names = Vec::new();
    let mut leaves = Vec::new();
    if has_crc {
        names.push(camel(MessageType::HasCrc));
    }
    walk(&decoded, &mut names, &mut leaves, udp)?;

    let flat = packet::flatten(&decoded);
    ensure!(
        flat.errors.is_empty() && flat.truncated_parts == 0,
        "packet::flatten: {} errors {:?}, {} truncated parts; input {}",
        flat.errors.len(),
        flat.errors,
        flat.truncated_parts,
        hex::encode(&decoded)
    );
    ensure!(
        flat.messages
            .iter()
            .map(|m| &m[..])
            .eq(leaves.iter().map(|l| &l[..])),
        "packet::flatten found other leaves than the compound/compress walk in {}",
        hex::encode(&decoded)
    );

    let top = if opts.keyring.is_some() {
        "encrypted".to_string()
    } else {
        names[0].clone()
    };
    *udp.top.entry(top).or_default() += 1;
    for name in names {
        // The "every message" table names user messages by their serf type alone.
        let name = name.strip_prefix("user -> ").unwrap_or(&name).to_string();
        *udp.all.entry(name).or_default() += 1;
    }
    Ok(())
}

/// Opens compounds and compressed messages recursively, naming each layer and decoding each leaf.
fn walk(
    buf: &[u8],
    names: &mut Vec<String>,
    leaves: &mut Vec<Vec<u8>>,
    udp: &mut Udp,
) -> Result<(), String> {
    match ctx(MessageType::of(buf), "message type", buf)? {
        MessageType::Compound => {
            names.push(camel(MessageType::Compound));
            let parts = ctx(compound::decode(buf), "compound", buf)?;
            ensure!(
                parts.truncated == 0,
                "{} truncated compound parts",
                parts.truncated
            );
            for part in parts.parts {
                walk(part, names, leaves, udp)?;
            }
        }
        MessageType::Compress => {
            names.push(camel(MessageType::Compress));
            let inner = compress::unwrap(buf, compress::MAX_PACKET_DECOMPRESSED);
            walk(&ctx(inner, "compress", buf)?, names, leaves, udp)?;
        }
        _ => {
            names.push(decode_leaf(buf, udp)?);
            leaves.push(buf.to_vec());
        }
    }
    Ok(())
}

/// Re-encoding a decoded message must give Go's bytes back: the codec claims byte-exactness, and
/// none of the UDP messages holds a Go map (whose order is random).
fn same_bytes(what: &str, ours: &[u8], wire: &[u8]) -> Result<(), String> {
    ensure!(
        ours == wire,
        "{what} re-encodes differently:\n  wire {}\n  ours {}",
        hex::encode(wire),
        hex::encode(ours)
    );
    Ok(())
}

/// Decodes one leaf message and everything inside it (tags, coordinates, serf messages) and checks
/// it re-encodes to the same bytes; returns its name as the `.md` shows it (`alive`,
/// `user -> serf.query`).
fn decode_leaf(leaf: &[u8], udp: &mut Udp) -> Result<String, String> {
    let msg = ctx(Message::decode(leaf), "memberlist message", leaf)?;
    same_bytes("memberlist message", &msg.encode(udp.dialect), leaf)?;
    match &msg {
        Message::Alive(alive) => {
            let meta = alive.meta.as_deref().unwrap_or_default();
            let tags = ctx(decode_tags(meta), "alive Meta tags", meta)?;
            let tags: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
            udp.tags.insert(tags.join(","));
        }
        Message::Ack(ack) => {
            if let Some(payload) = ack.payload.as_ref().filter(|p| !p.is_empty()) {
                ctx(decode_ack_payload(payload), "ack payload", payload)?;
            }
        }
        Message::User(body) => {
            return Ok(format!("user -> serf.{}", camel(decode_serf(body, udp)?)))
        }
        _ => {}
    }
    Ok(camel(msg.message_type()))
}

/// Decodes a serf message (checking it re-encodes to the same bytes), its query filters and, for
/// relays, the message inside.
fn decode_serf(body: &[u8], udp: &mut Udp) -> Result<SerfMessageType, String> {
    let msg = ctx(SerfMessage::decode(body), "serf message", body)?;
    same_bytes("serf message", &msg.encode(udp.dialect), body)?;
    match &msg {
        SerfMessage::Query(query) => {
            let filters = query.filters.iter().flatten().map(|f| {
                Ok(match ctx(Filter::decode(f), "query filter", f)? {
                    Filter::Nodes(nodes) => format!("node:{}", join(&nodes, ",")),
                    Filter::Tag(tag) => format!("tag:{}={}", tag.tag, tag.expr),
                })
            });
            let filters = filters.collect::<Result<Vec<String>, String>>()?;
            udp.filters.insert(filters.join(";"));
        }
        SerfMessage::Relay { inner, .. } => {
            decode_serf(inner, udp)?;
        }
        _ => {}
    }
    let ty = msg.message_type();
    udp.serf.push(msg);
    Ok(ty)
}

fn join(items: &[impl ToString], sep: &str) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(sep)
}

/// Every datagram decodes, and the layer/message counts equal the `.md`'s two tables.
fn udp_message_counts(gossip: Gossip) -> TestResult {
    let (capture, md) = load(gossip.name())?;
    let udp = decode_udp(&capture, &gossip.options())?;
    same(
        "top-level packet types",
        &udp.top,
        &md_table(&md, "Top-level packet types")?,
    )?;
    same(
        "every message found",
        &udp.all,
        &md_table(&md, "Every message found in UDP")?,
    )?;
    println!(
        "{}: {} datagrams, every message found: {:?}",
        gossip.name(),
        capture.udp.len(),
        udp.all
    );
    Ok(())
}

/// The distinct node tags and query filters decoded equal those in the `.md`'s UDP listing.
fn udp_tags_and_filters(gossip: Gossip) -> TestResult {
    let (capture, md) = load(gossip.name())?;
    let udp = decode_udp(&capture, &gossip.options())?;
    let md_tags: BTreeSet<String> = all_between(&md, "Meta={", "}")
        .iter()
        .map(|t| sort_braces(&format!("{{{t}}}")))
        .collect();
    let tags = udp
        .tags
        .iter()
        .map(|t| sort_braces(&format!("{{{t}}}")))
        .collect();
    same(
        "distinct alive tags",
        tags,
        ensure_nonempty(md_tags, "Meta={")?,
    )?;
    let md_filters = all_between(&md, "Filters=[", "] Payload=");
    same(
        "distinct query filters",
        udp.filters.iter().map(String::as_str).collect(),
        md_filters,
    )
}

// ---------------------------------------------------------------------------------------------
// TCP (push/pull)

/// One connection of a `.md`'s "Decoded listing — TCP streams".
struct MdStream {
    client_port: u16,
    server_port: u16,
    /// Bytes client→server, server→client.
    lens: [usize; 2],
    /// The listing lines of each direction, without the `c2s`/`s2c` tag and without the
    /// encryption and compression lines (their sizes are not something stream::decode reports).
    lines: [Vec<String>; 2],
}

fn md_streams(md: &str) -> Result<Vec<MdStream>, String> {
    let listing = md
        .split("## Decoded listing — TCP streams")
        .nth(1)
        .ok_or("no TCP listing")?;
    let mut streams: Vec<MdStream> = Vec::new();
    for line in listing.lines().map(str::trim) {
        if line.contains(" tcp conn ") {
            streams.push(MdStream {
                client_port: num_after(line, "tcp conn ")?,
                server_port: num_after(line, "-> ")?,
                lens: [
                    num_after(line, "client->server ")?,
                    num_after(line, "server->client ")?,
                ],
                lines: Default::default(),
            });
        } else if let Some((dir, text)) = line
            .split_once(' ')
            .filter(|(d, _)| ["c2s", "s2c"].contains(d))
        {
            let text = text.trim();
            if !text.starts_with("encrypt(") && !text.starts_with("compress(") {
                let stream = streams
                    .last_mut()
                    .ok_or("direction line before any connection")?;
                stream.lines[usize::from(dir == "s2c")].push(sort_braces(text));
            }
        }
    }
    ensure_nonempty(streams, "tcp conn")
}

/// A push/pull rendered in the `.md` listing's format.
fn render_push_pull(pp: &PushPull) -> Result<Vec<String>, String> {
    let bool_py = |b: bool| if b { "True" } else { "False" };
    let mut lines = vec![format!(
        "pushPull(Join={} Nodes={} UserStateLen={})",
        bool_py(pp.join),
        pp.nodes.len(),
        pp.user_state.len()
    )];
    for node in &pp.nodes {
        let meta = node.meta.as_deref().unwrap_or_default();
        let tags = ctx(decode_tags(meta), "node meta tags", meta)?;
        let tags: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let vsn: Vec<u8> = node.vsn.to_vec();
        lines.push(format!(
            "node {} {}:{} inc={} state={} meta={{{}}} vsn={vsn:?}",
            node.name,
            join(&node.addr[..], "."),
            node.port,
            node.incarnation,
            node.state as u8,
            tags.join(","),
        ));
    }
    let user_state = &pp.user_state;
    let SerfMessage::PushPull(state) = ctx(
        SerfMessage::decode(user_state),
        "serf push/pull",
        user_state,
    )?
    else {
        return Err(format!(
            "user state is not a serf push/pull: {}",
            hex::encode(user_state)
        ));
    };
    let ltimes: Vec<String> = state
        .status_ltimes
        .iter()
        .map(|(k, v)| format!("{k}:{v}"))
        .collect();
    lines.push(format!(
        "userState: serf.pushPull(LTime={} StatusLTimes={{{}}} Left=[{}] EventLTime={} Events={} slots ({} non-nil) QueryLTime={})",
        state.ltime,
        ltimes.join(","),
        join(&state.left_members, ", "),
        state.event_ltime,
        state.events.len(),
        state.events.iter().flatten().count(),
        state.query_ltime,
    ));
    Ok(lines.iter().map(|l| sort_braces(l)).collect())
}

/// Both directions of every connection decode to one push/pull using all their bytes, matching
/// the listing; connections without payload are the refused probes of the killed node.
fn tcp_streams(gossip: Gossip) -> TestResult {
    let (capture, md) = load(gossip.name())?;
    let opts = gossip.options();
    let expected = md_streams(&md)?;
    same("connections", capture.tcp.len(), expected.len())?;
    let mut refused = 0;
    for conn in &capture.tcp {
        let want = expected
            .iter()
            .find(|m| m.client_port == conn.client_port)
            .ok_or(format!(
                "connection from port {} is not in the .md",
                conn.client_port
            ))?;
        let at = format!("connection {} -> {}", conn.client_port, conn.server_port);
        same(
            &format!("{at}: server port"),
            conn.server_port,
            want.server_port,
        )?;
        let dirs = [&conn.client_to_server, &conn.server_to_client];
        same(
            &format!("{at}: bytes c2s/s2c"),
            dirs.map(Vec::len),
            want.lens,
        )?;
        if dirs.iter().all(|d| d.is_empty()) {
            refused += 1;
            continue;
        }
        for (i, buf) in dirs.into_iter().enumerate() {
            // The client dialed: its side is read by the acceptor (dialer = false) and vice versa.
            let (msg, used) = ctx(stream::decode(&opts, buf, i == 1), &at, buf)?;
            same(&format!("{at} dir {i}: bytes consumed"), used, buf.len())?;
            let StreamMessage::PushPull(pp) = msg else {
                return Err(format!("{at} dir {i}: not a push/pull: {msg:?}").into());
            };
            same(
                &format!("{at} dir {i}"),
                &render_push_pull(&pp)?,
                &want.lines[i],
            )?;
        }
    }
    let md_refused = expected.iter().filter(|m| m.lens == [0, 0]).count();
    same(
        "connections without payload (refused probes)",
        refused,
        md_refused,
    )?;
    println!(
        "{}: {} TCP connections, {refused} without payload",
        gossip.name(),
        capture.tcp.len()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Encryption specifics

/// A query's or response's payload decoded as a serf message.
fn serf_payload(payload: &Option<Bytes>, what: &str) -> Result<SerfMessage, String> {
    let payload = payload.as_deref().unwrap_or_default();
    ctx(SerfMessage::decode(payload), what, payload)
}

/// Standard base64, to compare raw keys with the base64 keys serf reports.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            let c = if i <= chunk.len() {
                ALPHABET[(n >> (18 - 6 * i)) as usize & 63]
            } else {
                b'='
            };
            out.push(c as char);
        }
    }
    out
}

/// The key-management internal queries carry serf keyRequests with the installed key, and the
/// list-keys responses (serf keyResponses) list the base64 keys: the primary alone before the
/// install, both after it (encrypted.md timeline, keys-list-1 and keys-list-2).
fn key_install_payload() -> TestResult {
    let (capture, _) = load("encrypted")?;
    let udp = decode_udp(&capture, &Gossip::Encrypted.options())?;
    let (primary, installed) = (
        hex::decode(PRIMARY_KEY_HEX)?,
        hex::decode(INSTALLED_KEY_HEX)?,
    );

    // Distinct key-management queries: (LTime, ID) → name, in Lamport order.
    let mut queries = BTreeMap::new();
    for msg in &udp.serf {
        let SerfMessage::Query(q) = msg else { continue };
        let name = q.name.to_string_lossy();
        if !["_serf_install-key", "_serf_remove-key", "_serf_list-keys"].contains(&name.as_str()) {
            continue;
        }
        let payload = serf_payload(&q.payload, &name)?;
        let SerfMessage::KeyRequest(req) = &payload else {
            return Err(format!("{name}: payload is not a keyRequest: {payload:?}").into());
        };
        // list-keys sends an empty raw string (`a0`), which encrypted.md prints as `Key=None`;
        // serf-wire-rpc.md §1.3: "an *empty* byte string for list-keys".
        let want = if name == "_serf_list-keys" {
            vec![]
        } else {
            installed.clone()
        };
        same(
            &format!("{name} keyRequest.Key"),
            req.key.as_deref(),
            Some(&want[..]),
        )?;
        queries.insert((q.ltime, q.id), name);
    }
    let names: Vec<&str> = queries.values().map(String::as_str).collect();
    let order = [
        "_serf_list-keys",
        "_serf_install-key",
        "_serf_list-keys",
        "_serf_remove-key",
    ];
    same("key queries in order", names, order.to_vec())?;

    // Responses to each query, one per node (gossip may repeat them).
    let mut responses: BTreeMap<u32, BTreeMap<String, KeyAnswer>> = BTreeMap::new();
    for msg in &udp.serf {
        let SerfMessage::QueryResponse(r) = msg else {
            continue;
        };
        if !queries.keys().any(|(_, id)| *id == r.id) {
            continue;
        }
        let payload = serf_payload(&r.payload, "key query response")?;
        let SerfMessage::KeyResponse(k) = &payload else {
            return Err(format!("key query response is not a keyResponse: {payload:?}").into());
        };
        let mut keys: Vec<String> = k.keys.iter().flatten().map(ToString::to_string).collect();
        keys.sort();
        let answer = (
            k.result,
            k.message.to_string(),
            keys,
            k.primary_key.to_string(),
        );
        responses
            .entry(r.id)
            .or_default()
            .insert(r.from.to_string(), answer);
    }
    let (b64_primary, b64_installed) = (base64(&primary), base64(&installed));
    let mut both = vec![b64_primary.clone(), b64_installed.clone()];
    both.sort();
    let mut list_number = 0;
    for ((_, id), name) in &queries {
        let answers = responses.get(id).ok_or(format!("no responses to {name}"))?;
        same(&format!("{name}: responding nodes"), answers.len(), 3)?;
        let want = if name == "_serf_list-keys" {
            list_number += 1;
            let keys = if list_number == 1 {
                vec![b64_primary.clone()]
            } else {
                both.clone()
            };
            (true, String::new(), keys, b64_primary.clone())
        } else {
            (true, String::new(), vec![], String::new())
        };
        for (from, answer) in answers {
            same(&format!("{name}: keyResponse from {from}"), answer, &want)?;
        }
    }
    println!("encrypted: list-keys reported {both:?}; install/remove carried key {b64_installed}");
    Ok(())
}

/// With only a wrong key nothing decrypts (NoKeyDecrypts); with [wrong, right] the right key is
/// found and the result equals decoding with the right key alone.
fn keyring_selection() -> TestResult {
    let (capture, _) = load("encrypted")?;
    let right = Gossip::Encrypted.options();
    let with = |keys: &[&str]| WireOptions {
        keyring: Some(keyring(keys)),
        ..Default::default()
    };
    let (wrong, both) = (
        with(&[INSTALLED_KEY_HEX]),
        with(&[INSTALLED_KEY_HEX, PRIMARY_KEY_HEX]),
    );
    let no_key = |kind: Option<ErrorKind>| kind == Some(ErrorKind::NoKeyDecrypts);

    for (i, d) in capture.udp.iter().enumerate() {
        let kind = packet::decode(&wrong, &d.payload).err().map(|e| e.kind);
        ensure!(
            no_key(kind.clone()),
            "datagram #{i} with a wrong key: {kind:?}"
        );
        let expected = ctx(packet::decode(&right, &d.payload), "right key", &d.payload)?;
        let got = ctx(
            packet::decode(&both, &d.payload),
            "[wrong, right]",
            &d.payload,
        )?;
        ensure!(
            got == expected,
            "datagram #{i}: [wrong, right] decoded differently"
        );
    }
    let mut streams = 0;
    for conn in &capture.tcp {
        for (dialer, buf) in [
            (false, &conn.client_to_server),
            (true, &conn.server_to_client),
        ] {
            if buf.is_empty() {
                continue;
            }
            streams += 1;
            let kind = stream::decode(&wrong, buf, dialer).err().map(|e| e.kind);
            ensure!(
                no_key(kind.clone()),
                "stream from {} with a wrong key: {kind:?}",
                conn.client_port
            );
            let expected = ctx(stream::decode(&right, buf, dialer), "right key", buf)?;
            same(
                "stream with [wrong, right]",
                ctx(stream::decode(&both, buf, dialer), "[wrong, right]", buf)?,
                expected,
            )?;
        }
    }
    println!(
        "encrypted: {} datagrams and {streams} streams: wrong key refused, [wrong, right] decodes",
        capture.udp.len()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// RPC

/// A typed request body, per `Command::request_body()`.
#[derive(Debug)]
#[allow(dead_code)] // fields are read through Debug on failure; only some are inspected
enum Req {
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
enum Body {
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

struct Request {
    seq: u64,
    command: Command,
    body: Req,
}

struct Reply {
    seq: u64,
    error: String,
    body: Option<Body>,
}

/// One RPC connection, both directions decoded.
struct RpcConn {
    client_port: u16,
    server_port: u16,
    requests: Vec<Request>,
    replies: Vec<Reply>,
    /// msgpack objects client→agent, agent→client.
    objects: [usize; 2],
    lens: [usize; 2],
}

impl RpcConn {
    fn command(&self, seq: u64) -> Option<Command> {
        self.requests
            .iter()
            .find(|r| r.seq == seq)
            .map(|r| r.command)
    }

    /// Bodies that followed headers for `seq`, in order.
    fn bodies(&self, seq: u64) -> impl Iterator<Item = &Body> {
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

fn decode_rpc() -> Result<(Vec<RpcConn>, String), Failed> {
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
fn rpc_requests() -> TestResult {
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
fn rpc_responses() -> TestResult {
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
fn rpc_documented_facts() -> TestResult {
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

// ---------------------------------------------------------------------------------------------
// serf v0.11.0 (go-msgpack v2), what libserf writes

/// serf-0.11.pcap: the plaintext scenario recorded from three serf v0.11.0 agents by
/// record-serf-0.11.sh (see serf-0.11.md). Its checks need no counts from an independent
/// decoder: every message must re-encode to the agents' own bytes.
fn serf_0_11() -> Result<(pcap::Capture, WireOptions), Failed> {
    let (capture, _md) = load("serf-0.11")?;
    // Dialect::GOSSIP, go-msgpack v2 integers: what serf 0.11 and libserf write.
    Ok((capture, WireOptions::default()))
}

/// Every datagram decodes to the bottom and re-encodes byte for byte in libserf's dialect; the
/// go-msgpack 0.5 dialect does not (the queries' `Timeout`s are `d3` int64s there), so the
/// capture tells the two apart. Every kind of message the scenario makes is present.
fn serf_0_11_udp() -> TestResult {
    let (capture, opts) = serf_0_11()?;
    let udp = decode_udp(&capture, &opts)?;
    for kind in [
        "ping",
        "ack",
        "alive",
        "suspect",
        "dead",
        "compound",
        "hasCrc",
        "serf.join",
        "serf.leave",
        "serf.userEvent",
        "serf.query",
        "serf.queryResponse",
        "serf.relay",
    ] {
        ensure!(
            udp.all.get(kind).is_some_and(|&n| n > 0),
            "no {kind} in serf-0.11.pcap: {:?}",
            udp.all
        );
    }
    let legacy = WireOptions {
        dialect: Dialect::GOSSIP_LEGACY,
        ..WireOptions::default()
    };
    ensure!(
        decode_udp(&capture, &legacy).is_err(),
        "go-msgpack 0.5 integers re-encode serf 0.11's datagrams too: the check would not see a dialect change"
    );
    println!(
        "serf-0.11: {} datagrams, every message found: {:?}",
        capture.udp.len(),
        udp.all
    );
    Ok(())
}

/// Every TCP connection with data is one push/pull each way that uses all its bytes and, once
/// decompressed, re-encodes byte for byte (`Nodes` and `UserStateLen` are Go ints).
fn serf_0_11_streams() -> TestResult {
    let (capture, opts) = serf_0_11()?;
    let mut streams = 0;
    for conn in &capture.tcp {
        let at = format!("connection {} -> {}", conn.client_port, conn.server_port);
        for (i, buf) in [&conn.client_to_server, &conn.server_to_client]
            .into_iter()
            .enumerate()
            .filter(|(_, buf)| !buf.is_empty())
        {
            let (msg, used) = ctx(stream::decode(&opts, buf, i == 1), &at, buf)?;
            same(&format!("{at} dir {i}: bytes consumed"), used, buf.len())?;
            let StreamMessage::PushPull(pp) = msg else {
                return Err(format!("{at} dir {i}: not a push/pull: {msg:?}").into());
            };
            let plain = match MessageType::of(buf) {
                Ok(MessageType::Compress) => ctx(
                    compress::unwrap(buf, compress::MAX_PACKET_DECOMPRESSED),
                    "compress",
                    buf,
                )?,
                _ => buf.to_vec(),
            };
            same_bytes(
                &format!("{at} dir {i}: push/pull"),
                &pp.encode(opts.dialect),
                &plain,
            )?;
            streams += 1;
        }
    }
    ensure!(streams > 0, "serf-0.11.pcap holds no push/pull stream");
    println!("serf-0.11: {streams} push/pull streams");
    Ok(())
}
