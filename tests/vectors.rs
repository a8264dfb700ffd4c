//! Every test vector in `tests/data/` (golden bytes from HashiCorp's Go code), one test per
//! JSON file and one per section of the text files, named after it.
//!
//! Each check decodes the Go bytes, compares the decoded fields with what the vector says went into
//! the Go encoder, and re-encodes to the same bytes.

use std::path::{Path, PathBuf};

use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::Value as Json;
use serf_proto::wire::memberlist::keyring::{EncryptionVersion, Keyring};
use serf_proto::wire::memberlist::stream::StreamMessage;
use serf_proto::wire::memberlist::{
    self as ml, compound, compress, crc, label, lzw, packet, stream, Ack, Alive, Compress, Dead,
    ErrResp, IndirectPing, Nack, Ping, PushNodeState, PushPullHeader, Suspect, UserMsgHeader,
    WireOptions,
};
use serf_proto::wire::msgpack::{self, Dialect, Field, GoString, Value};
use serf_proto::wire::rpc;
use serf_proto::wire::serf::{self as sm, Filter};
use serf_proto::wire::ErrorKind;

type Check = Result<(), Failed>;

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn main() {
    let args = Arguments::from_args();
    let mut trials = Vec::new();
    for dir in ["memberlist", "serf"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(vectors_dir().join(dir))
            .unwrap_or_else(|e| panic!("tests/data/{dir} must exist: {e}"))
            .map(|e| e.expect("readable directory entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for path in files {
            let name = path
                .file_stem()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            let check: fn(&str, &Json) -> Check = if dir == "memberlist" {
                check_memberlist_json
            } else {
                check_serf_json
            };
            trials.push(Trial::test(format!("{dir}::{name}"), move || {
                let v: Json = serde_json::from_slice(&std::fs::read(&path)?)?;
                check(&name, &v)
            }));
        }
    }
    text_trials(&mut trials);
    libtest_mimic::run(&args, trials).exit();
}

// ---------------------------------------------------------------------------------------------
// helpers

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap_or_else(|e| panic!("bad hex in vector ({e}): {s}"))
}

fn jhex(v: &Json) -> Vec<u8> {
    unhex(
        v.as_str()
            .unwrap_or_else(|| panic!("expected a hex string, got {v}")),
    )
}

fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Check {
    if cond {
        Ok(())
    } else {
        Err(msg().into())
    }
}

fn same_bytes(what: &str, got: &[u8], want: &[u8]) -> Check {
    ensure(got == want, || {
        format!(
            "{what}: bytes differ\n  got:  {}\n  want: {}",
            hex::encode(got),
            hex::encode(want)
        )
    })
}

/// Compares a decoded value with the vector's JSON description: byte fields are hex strings, text
/// fields plain strings, nil is null, maps compare as unordered sets.
fn compare(got: &Value, want: &Json, at: &str) -> Check {
    let mismatch = || -> Check { Err(format!("{at}: decoded {got:?}, vector says {want}").into()) };
    match (got, want) {
        (Value::Nil, Json::Null) => Ok(()),
        (Value::Bool(a), Json::Bool(b)) if a == b => Ok(()),
        (Value::Uint(a), Json::Number(n)) if n.as_u64() == Some(*a) => Ok(()),
        (Value::Int(a), Json::Number(n)) if n.as_i64() == Some(*a) => Ok(()),
        (Value::Float(a), Json::Number(n)) if n.as_f64().map(f64::to_bits) == Some(a.to_bits()) => {
            Ok(())
        }
        (Value::Str(a), Json::String(s)) if a == s.as_bytes() => Ok(()),
        (Value::Bytes(a), Json::String(s)) if *a == unhex(s) => Ok(()),
        (Value::Array(items), Json::Array(wants)) if items.len() == wants.len() => items
            .iter()
            .zip(wants)
            .enumerate()
            .try_for_each(|(i, (g, w))| compare(g, w, &format!("{at}[{i}]"))),
        (Value::Map(entries), Json::Object(wants)) if entries.len() == wants.len() => {
            wants.iter().try_for_each(|(k, w)| match got.get(k) {
                Some(g) => compare(g, w, &format!("{at}.{k}")),
                None => Err(format!("{at}: key {k} missing from the decoded value").into()),
            })
        }
        _ => mismatch(),
    }
}

/// Decodes `T` from all of `bytes`, compares it with `fields`, re-encodes it byte for byte.
fn check_struct<T: Field>(bytes: &[u8], fields: &Json, dialect: Dialect) -> Check {
    let value: T = msgpack::from_slice_exact(bytes)?;
    compare(&value.to_value(), fields, "body")?;
    same_bytes("re-encoded", &msgpack::to_vec(&value, dialect), bytes)
}

/// Decodes `T` from a section's go-msgpack 0.5 and v2 bytes, checks both give the same value and
/// that each dialect re-encodes to its own bytes. `skip` leading bytes (a type byte) are not
/// msgpack and must be equal.
fn round_trip<T: Field>(s: &Section, skip: usize, rpc: bool) -> Check {
    let (d_legacy, d_v2) = if rpc {
        (Dialect::RPC_LEGACY, Dialect::RPC)
    } else {
        (Dialect::GOSSIP_LEGACY, Dialect::GOSSIP)
    };
    let b: T = msgpack::from_slice_exact(&s.v2[skip..])?;
    same_bytes("v2 encoding", &msgpack::to_vec(&b, d_v2), &s.v2[skip..])?;
    let Some(legacy) = &s.legacy else {
        return Ok(());
    };
    same_bytes("prefix", &legacy[..skip], &s.v2[..skip])?;
    let a: T = msgpack::from_slice_exact(&legacy[skip..])?;
    ensure(a.to_value() == b.to_value(), || {
        format!(
            "legacy and v2 decode differently: {:?} vs {:?}",
            a.to_value(),
            b.to_value()
        )
    })?;
    same_bytes(
        "legacy encoding",
        &msgpack::to_vec(&a, d_legacy),
        &legacy[skip..],
    )
}

/// A memberlist leaf message: decode, re-encode, and descend into serf messages it carries.
fn check_leaf(bytes: &[u8]) -> Check {
    let msg = ml::Message::decode(bytes)?;
    same_bytes(
        "re-encoded message",
        &msg.encode(Dialect::GOSSIP_LEGACY),
        bytes,
    )?;
    match &msg {
        ml::Message::User(inner) => check_serf_message(inner),
        ml::Message::Alive(a) => {
            if let Some(meta) = &a.meta {
                sm::decode_tags(meta)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// A serf message: decode, re-encode, and check what it nests (filters, relayed messages, key
/// requests).
fn check_serf_message(bytes: &[u8]) -> Check {
    let msg = sm::Message::decode(bytes)?;
    match &msg {
        // Go writes maps in random order; ours are sorted, so compare values, not bytes.
        sm::Message::PushPull(_) => ensure(
            sm::Message::decode(&msg.encode(Dialect::GOSSIP_LEGACY))? == msg,
            || "push/pull does not survive a round trip".into(),
        )?,
        _ => same_bytes(
            "re-encoded serf message",
            &msg.encode(Dialect::GOSSIP_LEGACY),
            bytes,
        )?,
    }
    match &msg {
        sm::Message::Query(q) => {
            for f in q.filters.iter().flatten() {
                Filter::decode(f)?;
            }
            if q.name.as_bytes().starts_with(b"_serf_") && q.name.as_bytes().ends_with(b"-key") {
                let payload = q.payload.as_deref().unwrap_or_default();
                ensure(payload.first() == Some(&7), || {
                    "key query payload must be a key request".into()
                })?;
                sm::Message::decode(payload)?;
            }
            Ok(())
        }
        sm::Message::Relay { inner, .. } => check_serf_message(inner),
        _ => Ok(()),
    }
}

/// Wire options as serf 0.9.x used them (go-msgpack 0.5 integers), which made the vectors.
fn options(compression: bool, key: Option<&[u8]>, label: &[u8]) -> WireOptions {
    WireOptions {
        dialect: Dialect::GOSSIP_LEGACY,
        compression,
        keyring: key.map(|k| Keyring::new(k, &[] as &[&[u8]]).expect("valid key")),
        label: label.to_vec(),
        ..WireOptions::default()
    }
}

fn nonce_of(v: &Json) -> [u8; 12] {
    jhex(v).try_into().expect("12-byte nonce")
}

// ---------------------------------------------------------------------------------------------
// memberlist/*.json

fn check_memberlist_json(name: &str, v: &Json) -> Check {
    let hex = jhex(&v["hex"]);
    let f = &v["fields"];
    let body = &f["body"];
    if name.starts_with("push_node_state") {
        return check_struct::<PushNodeState>(&hex, body, Dialect::GOSSIP_LEGACY);
    }
    if !body.is_null() {
        let ty = f["msg_type"].as_u64().expect("msg_type");
        same_bytes("type byte", &hex[..1], &[ty as u8])?;
        let rest = &hex[1..];
        let g = Dialect::GOSSIP_LEGACY;
        match ty {
            0 => check_struct::<Ping>(rest, body, g)?,
            1 => check_struct::<IndirectPing>(rest, body, g)?,
            2 => check_struct::<Ack>(rest, body, g)?,
            3 => check_struct::<Suspect>(rest, body, g)?,
            4 => check_struct::<Alive>(rest, body, g)?,
            5 => check_struct::<Dead>(rest, body, g)?,
            6 => return check_struct::<PushPullHeader>(rest, body, g),
            9 => return check_compress(&hex, body, &jhex(&v["extra"]["plaintext_hex"])),
            11 => check_struct::<Nack>(rest, body, g)?,
            13 => check_struct::<ErrResp>(rest, body, g)?,
            other => return Err(format!("no body check for memberlist type {other}").into()),
        }
        check_leaf(&hex)?;
        if name == "ack_serf_coordinate" {
            let ack = msgpack::from_slice::<Ack>(rest)?;
            ensure(
                sm::decode_ack_payload(ack.payload.as_deref().unwrap_or_default())?.is_some(),
                || "no coordinate".into(),
            )?;
        }
        return Ok(());
    }
    match name {
        "compound_2" | "compound_3" => {
            let parts: Vec<Vec<u8>> = f["parts"]
                .as_array()
                .expect("parts")
                .iter()
                .map(jhex)
                .collect();
            let lengths: Vec<u64> = f["part_lengths"]
                .as_array()
                .expect("lengths")
                .iter()
                .map(|l| l.as_u64().expect("length"))
                .collect();
            let decoded = compound::decode(&hex)?;
            ensure(decoded.truncated == 0, || "no part is truncated".into())?;
            ensure(
                decoded.parts.iter().map(|p| p.to_vec()).collect::<Vec<_>>() == parts,
                || "parts differ".into(),
            )?;
            ensure(
                decoded
                    .parts
                    .iter()
                    .map(|p| p.len() as u64)
                    .collect::<Vec<_>>()
                    == lengths,
                || "part lengths differ".into(),
            )?;
            same_bytes("re-encoded compound", &compound::encode(&parts), &hex)?;
            parts.iter().try_for_each(|p| check_leaf(p))
        }
        "compound_truncated" => {
            let want: Vec<Vec<u8>> = f["decoded_parts"]
                .as_array()
                .expect("parts")
                .iter()
                .map(jhex)
                .collect();
            let decoded = compound::decode(&hex)?;
            ensure(
                decoded.truncated as u64 == f["truncated"].as_u64().expect("truncated"),
                || format!("truncated = {}", decoded.truncated),
            )?;
            ensure(
                decoded.parts.iter().map(|p| p.to_vec()).collect::<Vec<_>>() == want,
                || "complete parts differ".into(),
            )
        }
        "encrypted_packet_v1_aes128"
        | "encrypted_packet_v1_aes256"
        | "encrypted_packet_v0_pkcs7" => {
            let version = if f["encryption_version"] == 0 {
                EncryptionVersion::V0
            } else {
                EncryptionVersion::V1
            };
            let ring = Keyring::new(&jhex(&f["key"]), &[] as &[&[u8]])?;
            let (plain, aad) = (jhex(&f["plaintext"]), jhex(&f["aad"]));
            same_bytes(
                "encrypted",
                &ring.encrypt(version, &nonce_of(&f["nonce"]), &plain, &aad),
                &hex,
            )?;
            if let Some(ct) = f.get("ciphertext_and_tag") {
                same_bytes("ciphertext", &hex[13..], &jhex(ct))?;
            }
            same_bytes("decrypted", &ring.decrypt(&hex, &aad)?, &plain)?;
            check_leaf(&plain)
        }
        "encrypted_packet_secondary_key" => {
            let keys: Vec<Vec<u8>> = f["keyring"]
                .as_array()
                .expect("keyring")
                .iter()
                .map(jhex)
                .collect();
            let plain = jhex(&f["plaintext"]);
            let signer = Keyring::new(&jhex(&f["encrypting_key"]), &[] as &[&[u8]])?;
            same_bytes(
                "encrypted",
                &signer.encrypt(EncryptionVersion::V1, &nonce_of(&f["nonce"]), &plain, b""),
                &hex,
            )?;
            let ring = Keyring::new(&keys[0], &keys[1..])?;
            same_bytes(
                "decrypted with the second key",
                &ring.decrypt(&hex, b"")?,
                &plain,
            )?;
            let primary_only = Keyring::new(&keys[0], &[] as &[&[u8]])?;
            expect_kind(
                primary_only.decrypt(&hex, b"").map(drop),
                &ErrorKind::NoKeyDecrypts,
            )
        }
        "encrypted_packet_tampered" => {
            let ring = Keyring::new(&jhex(&f["key"]), &[] as &[&[u8]])?;
            expect_kind(ring.decrypt(&hex, b"").map(drop), &ErrorKind::NoKeyDecrypts)?;
            let opts = options(true, Some(&jhex(&f["key"])), b"");
            expect_kind(
                packet::decode(&opts, &hex).map(drop),
                &ErrorKind::NoKeyDecrypts,
            )
        }
        "encrypted_packet_full_pipeline" => {
            let opts = options(true, Some(&jhex(&f["key"])), b"");
            let nonce = nonce_of(&f["nonce"]);
            let decompressed = jhex(&f["decompressed"]);
            same_bytes(
                "packet",
                &packet::encode(&opts, &decompressed, true, || nonce),
                &hex,
            )?;
            let inner = packet::decode(&opts, &hex)?;
            same_bytes("unwrapped", &inner, &jhex(&f["compressed_message"]))?;
            same_bytes(
                "decrypted",
                &opts.keyring.as_ref().expect("keyring").decrypt(&hex, b"")?,
                &jhex(&f["decrypted"]),
            )?;
            ensure(
                crc32fast::hash(&inner) as u64 == f["crc32"].as_u64().expect("crc32"),
                || "crc".into(),
            )?;
            check_flattened(&inner, 3)
        }
        "has_crc_ping" | "has_crc_compressed_compound" => {
            let inner = jhex(&f["inner"]);
            ensure(
                crc32fast::hash(&inner) as u64 == f["crc32"].as_u64().expect("crc32"),
                || "crc32 differs".into(),
            )?;
            same_bytes("wrapped", &crc::wrap(&inner), &hex)?;
            same_bytes("unwrapped", crc::unwrap(&hex)?, &inner)?;
            let mut corrupt = hex.clone();
            *corrupt.last_mut().expect("non-empty") ^= 1;
            expect_kind(
                crc::unwrap(&corrupt).map(drop),
                &ErrorKind::CrcMismatch {
                    expected: f["crc32"].as_u64().expect("crc") as u32,
                    actual: crc32fast::hash(&corrupt[5..]),
                },
            )?;
            if let Some(plain) = f.get("inner_decompressed") {
                let plain = jhex(plain);
                same_bytes("decompressed", &compress::unwrap(&inner, 1 << 20)?, &plain)?;
                same_bytes(
                    "packet",
                    &packet::encode(&options(true, None, b""), &plain, true, || unreachable!()),
                    &hex,
                )?;
            }
            check_flattened(&inner, if name == "has_crc_ping" { 1 } else { 3 })
        }
        "push_pull_stream_join_plain"
        | "push_pull_stream_compressed"
        | "push_pull_stream_encrypted"
        | "push_pull_stream_compressed_encrypted" => {
            let key = f.get("key").map(jhex);
            let opts = options(name.contains("compressed"), key.as_deref(), b"");
            let (msg, used) = stream::decode(&opts, &hex, false)?;
            ensure(used == hex.len(), || {
                format!("consumed {used} of {}", hex.len())
            })?;
            let StreamMessage::PushPull(pp) = msg else {
                return Err(format!("not a push/pull: {msg:?}").into());
            };
            compare(&Value::Bool(pp.join), &f["header"]["Join"], "header.Join")?;
            compare(
                &Value::Int(pp.nodes.len() as i64),
                &f["header"]["Nodes"],
                "header.Nodes",
            )?;
            compare(
                &Value::Int(pp.user_state.len() as i64),
                &f["header"]["UserStateLen"],
                "header.UserStateLen",
            )?;
            compare(&pp.nodes.to_value(), &f["nodes"], "nodes")?;
            same_bytes("user state", &pp.user_state, &jhex(&f["user_state"]))?;
            check_serf_message(&pp.user_state)?;
            let plain = pp.encode(Dialect::GOSSIP_LEGACY);
            if let Some(p) = v["extra"].get("plaintext_hex") {
                same_bytes("plaintext", &plain, &jhex(p))?;
            }
            let nonce = f.get("nonce").map(nonce_of).unwrap_or_default();
            same_bytes(
                "re-encoded stream",
                &stream::encode(&opts, &plain, false, || nonce),
                &hex,
            )
        }
        "stream_ping_compressed" => {
            let opts = options(true, None, b"");
            let (msg, used) = stream::decode(&opts, &hex, true)?;
            ensure(used == hex.len(), || "whole stream consumed".into())?;
            let inner = jhex(&f["inner"]);
            ensure(
                msg == StreamMessage::Ping(msgpack::from_slice(&inner[1..])?),
                || format!("decoded {msg:?}"),
            )?;
            same_bytes(
                "re-encoded stream",
                &stream::encode(&opts, &inner, true, || unreachable!()),
                &hex,
            )
        }
        "user_msg_packet" => {
            let user = jhex(&f["user_msg"]);
            ensure(
                ml::Message::decode(&hex)? == ml::Message::User(user.clone()),
                || "user message payload".into(),
            )?;
            check_leaf(&hex)
        }
        "user_msg_stream" => {
            let user = jhex(&f["user_msg"]);
            let (msg, used) = stream::decode(&options(false, None, b""), &hex, true)?;
            ensure(
                used == hex.len() && msg == StreamMessage::User(user.clone()),
                || format!("decoded {msg:?}"),
            )?;
            let header: UserMsgHeader = msgpack::from_slice(&hex[1..])?;
            compare(&header.to_value(), &f["header"], "header")?;
            same_bytes(
                "re-encoded",
                &stream::user_message(&user, Dialect::GOSSIP_LEGACY),
                &hex,
            )?;
            check_serf_message(&user)
        }
        other => Err(format!("no check written for vector {other}").into()),
    }
}

/// Compress message vectors: the body, what it decompresses to, and Go-identical compression.
fn check_compress(hex: &[u8], body: &Json, plain: &[u8]) -> Check {
    check_struct::<Compress>(&hex[1..], body, Dialect::GOSSIP_LEGACY)?;
    same_bytes("decompressed", &compress::unwrap(hex, 1 << 20)?, plain)?;
    same_bytes(
        "compressed",
        &compress::wrap(plain, Dialect::GOSSIP_LEGACY),
        hex,
    )
}

fn check_flattened(payload: &[u8], messages: usize) -> Check {
    let flat = packet::flatten(payload);
    ensure(flat.errors.is_empty() && flat.truncated_parts == 0, || {
        format!("flatten: {:?}", flat.errors)
    })?;
    ensure(flat.messages.len() == messages, || {
        format!("{} messages, expected {messages}", flat.messages.len())
    })?;
    flat.messages.iter().try_for_each(|m| check_leaf(m))
}

fn expect_kind(result: Result<(), serf_proto::wire::DecodeError>, kind: &ErrorKind) -> Check {
    match result {
        Err(e) if &e.kind == kind => Ok(()),
        other => Err(format!("expected error {kind:?}, got {other:?}").into()),
    }
}

// ---------------------------------------------------------------------------------------------
// serf/*.json

fn check_serf_json(name: &str, v: &Json) -> Check {
    let hex = jhex(&v["hex"]);
    let f = &v["fields"];
    if let Some(ty) = f
        .get("msg_type")
        .and_then(Json::as_u64)
        .filter(|_| f.get("body").is_some())
    {
        same_bytes("type byte", &hex[..1], &[ty as u8])?;
        let (rest, body, g) = (&hex[1..], &f["body"], Dialect::GOSSIP_LEGACY);
        match ty {
            0 => check_struct::<sm::Leave>(rest, body, g)?,
            1 => check_struct::<sm::Join>(rest, body, g)?,
            2 => check_struct::<sm::PushPull>(rest, body, g)?,
            3 => check_struct::<sm::UserEventMessage>(rest, body, g)?,
            4 => check_struct::<sm::Query>(rest, body, g)?,
            5 => check_struct::<sm::QueryResponse>(rest, body, g)?,
            6 => check_struct::<Option<sm::Member>>(rest, body, g)?,
            7 => check_struct::<sm::KeyRequest>(rest, body, g)?,
            8 => check_struct::<sm::KeyResponse>(rest, body, g)?,
            other => return Err(format!("no body check for serf type {other}").into()),
        }
        check_serf_message(&hex)?;
        return check_serf_payloads(name, &hex);
    }
    match name {
        "coordinate_ping_payload" | "coordinate_ping_payload_initial" => {
            ensure(f["ping_version"] == sm::PING_VERSION, || {
                "ping version".into()
            })?;
            let coord = sm::decode_ack_payload(&hex)?.ok_or("empty payload")?;
            compare(&coord.to_value(), &f["coordinate"], "coordinate")?;
            same_bytes(
                "re-encoded",
                &sm::encode_ack_payload(&coord, Dialect::GOSSIP_LEGACY),
                &hex,
            )
        }
        "filter_node" | "filter_tag" => {
            let filter = Filter::decode(&hex)?;
            match (&filter, name) {
                (Filter::Nodes(names), "filter_node") => {
                    compare(&names.to_value(), &f["nodes"], "nodes")?
                }
                (Filter::Tag(tag), "filter_tag") => compare(&tag.to_value(), &f["body"], "body")?,
                _ => return Err(format!("wrong filter kind {filter:?}").into()),
            }
            same_bytes("re-encoded", &filter.encode(Dialect::GOSSIP_LEGACY), &hex)
        }
        "relay_query_response" | "relay_ack_ipv6" => {
            let sm::Message::Relay { header, inner } = sm::Message::decode(&hex)? else {
                return Err("not a relay".into());
            };
            compare(&header.to_value(), &f["header"], "header")?;
            if let Some(h) = f.get("header_hex") {
                same_bytes(
                    "header",
                    &msgpack::to_vec(&header, Dialect::GOSSIP_LEGACY),
                    &jhex(h),
                )?;
            }
            same_bytes("inner", &inner, &jhex(&f["inner"]))?;
            check_serf_message(&hex)
        }
        "tags_role_only_protocol2" => {
            let tags: sm::Tags = tags_from_json(&f["tags"]);
            same_bytes("role meta", &sm::encode_role_meta(&tags), &hex)?;
            let decoded = sm::decode_tags(&hex)?;
            ensure(
                decoded
                    == sm::Tags::from([(
                        "role".into(),
                        GoString::from(f["meta_as_text"].as_str().expect("text")),
                    )]),
                || format!("decoded {decoded:?}"),
            )
        }
        n if n.starts_with("tags_") => {
            let decoded = sm::decode_tags(&hex)?;
            ensure(decoded == tags_from_json(&f["tags"]), || {
                format!("decoded {decoded:?}")
            })?;
            same_bytes(
                "encoded",
                &sm::encode_tags(&decoded, Dialect::GOSSIP_LEGACY),
                &hex,
            )
        }
        other => Err(format!("no check written for vector {other}").into()),
    }
}

/// Payloads that are themselves serf messages: key requests in key queries, key responses in
/// responses, the node name in a conflict query.
fn check_serf_payloads(name: &str, hex: &[u8]) -> Check {
    let payload = match sm::Message::decode(hex)? {
        sm::Message::Query(q) => q.payload,
        sm::Message::QueryResponse(r) => r.payload,
        _ => return Ok(()),
    };
    let payload = payload.unwrap_or_default();
    match name {
        "query_install_key" => ensure(
            matches!(sm::Message::decode(&payload)?, sm::Message::KeyRequest(_)),
            || "key request".into(),
        ),
        "query_response_key_list" => ensure(
            matches!(sm::Message::decode(&payload)?, sm::Message::KeyResponse(_)),
            || "key response".into(),
        ),
        _ => Ok(()),
    }
}

fn tags_from_json(v: &Json) -> sm::Tags {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.as_str().into(), v.as_str().expect("tag value").into()))
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// text files

type SectionCheck = fn(&Section) -> Check;
type SectionParser = fn(&str) -> Vec<Section>;

/// One section of a text vector file.
#[derive(Clone, Debug)]
struct Section {
    title: String,
    /// The bytes as go-msgpack 0.5 writes them, when the file gives them.
    legacy: Option<Vec<u8>>,
    /// The bytes as go-msgpack v2 writes them (same as `legacy` where the file says identical).
    v2: Vec<u8>,
    /// Anything else the section needs (the run a capture belongs to).
    context: String,
}

fn text_trials(trials: &mut Vec<Trial>) {
    let files: [(&str, &str, SectionParser, SectionCheck); 6] = [
        (
            "memberlist/derived-codec-vectors.txt",
            "derived_codec",
            parse_derived,
            check_derived,
        ),
        (
            "memberlist/encryption-vectors.txt",
            "encryption",
            parse_encryption,
            check_encryption,
        ),
        (
            "memberlist/captures-v0.5.0.txt",
            "captures_v0_5_0",
            parse_captures,
            check_capture,
        ),
        (
            "serf/gossip_vectors.txt",
            "gossip",
            parse_gossip,
            check_gossip,
        ),
        ("serf/ipc_vectors.txt", "ipc", parse_gossip, check_ipc),
        (
            "serf/decode_tolerance.txt",
            "decode_tolerance",
            parse_tolerance,
            check_tolerance,
        ),
    ];
    for (file, prefix, parse, check) in files {
        let text = std::fs::read_to_string(vectors_dir().join(file))
            .unwrap_or_else(|e| panic!("tests/data/{file} must exist: {e}"));
        for (i, section) in parse(&text).into_iter().enumerate() {
            let name = format!("{prefix}::{:02}_{}", i + 1, slug(&section.title));
            trials.push(Trial::test(name, move || check(&section)));
        }
    }
}

fn slug(title: &str) -> String {
    let s: String = title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    s.split('_')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

fn section(title: &str, legacy: Vec<u8>, v2: Option<Vec<u8>>, context: &str) -> Section {
    let v2 = v2.unwrap_or_else(|| legacy.clone());
    Section {
        title: title.to_string(),
        legacy: Some(legacy),
        v2,
        context: context.to_string(),
    }
}

impl Section {
    /// The bytes every check decodes: go-msgpack 0.5's where given, else v2's.
    fn bytes(&self) -> &[u8] {
        self.legacy.as_deref().unwrap_or(&self.v2)
    }
}

/// `### title (len N) …` then the hex, then optionally `v2: hex`.
fn parse_derived(text: &str) -> Vec<Section> {
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(title) = line.strip_prefix("### ") else {
            continue;
        };
        // Titles end in "(len N) …" or, for wrappers, in "len N".
        let title = match title.split_once(" (len") {
            Some((t, _)) => t,
            None => title.rsplit_once(" len ").map_or(title, |(t, _)| t),
        };
        let legacy = unhex(lines.next().expect("hex line").trim());
        let v2 = lines
            .next_if(|l| l.starts_with("v2: "))
            .map(|l| unhex(&l[4..]));
        out.push(section(title, legacy, v2, ""));
    }
    out
}

/// `Title…:` then the hex.
fn parse_encryption(text: &str) -> Vec<Section> {
    let mut out = Vec::new();
    let mut lines = text.lines().filter(|l| !l.starts_with('#'));
    while let (Some(title), Some(hex)) = (lines.next(), lines.next()) {
        out.push(section(
            title.trim_end_matches(':'),
            unhex(hex.trim()),
            None,
            title,
        ));
    }
    out
}

/// `## node-x what type=…` then the hex; `# --- run N` lines set the configuration.
fn parse_captures(text: &str) -> Vec<Section> {
    let mut out = Vec::new();
    let mut run = String::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some(r) = line.strip_prefix("# --- ") {
            run = r.to_string();
        } else if let Some(title) = line.strip_prefix("## ") {
            out.push(section(
                title,
                unhex(lines.next().expect("hex").trim()),
                None,
                &run,
            ));
        }
    }
    out
}

/// `## title` then `v2   : hex` and optionally `v053 : hex|(identical)`; or `## title: hex`.
fn parse_gossip(text: &str) -> Vec<Section> {
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(title) = line.strip_prefix("## ") else {
            continue;
        };
        if let Some((t, hex)) = title.split_once(" bytes: ") {
            out.push(section(t, unhex(hex), None, ""));
            continue;
        }
        let v2 = unhex(
            lines
                .next()
                .and_then(|l| l.strip_prefix("v2   : "))
                .expect("v2 line")
                .trim(),
        );
        let legacy =
            lines
                .next_if(|l| l.starts_with("v053 : "))
                .map(|l| match l.contains("(identical)") {
                    true => v2.clone(),
                    false => unhex(l[7..].trim()),
                });
        out.push(Section {
            title: title.to_string(),
            legacy,
            v2,
            context: String::new(),
        });
    }
    out
}

/// One case per line: `description   v2: … | v053: …`.
fn parse_tolerance(text: &str) -> Vec<Section> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (title, outcome) = l.split_once(" v2:").expect("v2 outcome");
            section(title.trim(), Vec::new(), None, outcome)
        })
        .collect()
}

fn check_derived(s: &Section) -> Check {
    let a = s.bytes();
    match s.title.as_str() {
        t if t.starts_with("ping") => round_trip::<Ping>(s, 1, false).and(check_leaf(a)),
        "indirect ping" => round_trip::<IndirectPing>(s, 1, false).and(check_leaf(a)),
        t if t.starts_with("ack") || t == "bytes len 40" => {
            round_trip::<Ack>(s, 1, false).and(check_leaf(a))
        }
        "nack" => round_trip::<Nack>(s, 1, false).and(check_leaf(a)),
        "err" | "string len 40" => round_trip::<ErrResp>(s, 1, false),
        t if t.starts_with("suspect") || t.starts_with("uint") => {
            round_trip::<Suspect>(s, 1, false)
        }
        t if t.starts_with("alive") => round_trip::<Alive>(s, 1, false).and(check_leaf(a)),
        "dead (leave)" => round_trip::<Dead>(s, 1, false).and(check_leaf(a)),
        t if t.starts_with("pushPullHeader") => round_trip::<PushPullHeader>(s, 1, false),
        "pushNodeState" => round_trip::<PushNodeState>(s, 1, false),
        t if t.starts_with("userMsgHeader") => round_trip::<UserMsgHeader>(s, 1, false),
        "compound(ping,alive)" => {
            let parts = compound::decode(a)?;
            same_bytes("re-encoded", &compound::encode(&parts.parts), a)?;
            check_flattened(a, 2)
        }
        t if t.starts_with("crc(ping)") => {
            let inner = crc::unwrap(a)?;
            same_bytes("re-wrapped", &crc::wrap(inner), a)?;
            ensure(
                t.ends_with(&format!("crc={:08x}", crc32fast::hash(inner))),
                || "crc in title".into(),
            )?;
            check_leaf(inner)
        }
        "label 'dc1' + ping" => {
            let (l, rest) = label::split(a)?;
            same_bytes("label", l, b"dc1")?;
            let mut again = label::header(b"dc1");
            again.extend_from_slice(rest);
            same_bytes("re-labelled", &again, a)?;
            check_leaf(rest)
        }
        "lzw(alive) raw" => {
            let alive = derived_section("alive nil meta")?;
            same_bytes("decompressed", &lzw::decompress(a, 1 << 20)?, &alive)?;
            same_bytes("compressed", &lzw::compress(&alive), a)
        }
        t if t.starts_with("compress{lzw(alive)}") => {
            round_trip::<Compress>(s, 1, false)?;
            same_bytes(
                "decompressed",
                &compress::unwrap(a, 1 << 20)?,
                &derived_section("alive nil meta")?,
            )
        }
        other => Err(format!("no check written for section {other:?}").into()),
    }
}

fn derived_section(title: &str) -> Result<Vec<u8>, Failed> {
    let text = std::fs::read_to_string(vectors_dir().join("memberlist/derived-codec-vectors.txt"))?;
    parse_derived(&text)
        .into_iter()
        .find(|s| s.title == title)
        .and_then(|s| s.legacy)
        .ok_or_else(|| format!("no section {title}").into())
}

/// AES-128 key 000102…0f, all-zero nonce; the plaintext is the derived "ping full" message.
fn check_encryption(s: &Section) -> Check {
    let key: Vec<u8> = (0u8..16).collect();
    let ring = Keyring::new(&key, &[] as &[&[u8]])?;
    let ping = derived_section("ping full")?;
    let nonce = [0u8; 12];
    let title = s.title.as_str();
    if title.starts_with("stream") {
        let opts = options(false, Some(&key), b"");
        let (msg, used) = stream::decode(&opts, s.bytes(), true)?;
        ensure(
            used == s.bytes().len() && msg == StreamMessage::Ping(msgpack::from_slice(&ping[1..])?),
            || format!("decoded {msg:?}"),
        )?;
        return same_bytes(
            "stream",
            &stream::encode(&opts, &ping, true, || nonce),
            s.bytes(),
        );
    }
    let (version, lbl): (_, &[u8]) = match title {
        t if t.contains("v0") => (EncryptionVersion::V0, b""),
        t if t.contains("label dc1") => (EncryptionVersion::V1, b"dc1"),
        _ => (EncryptionVersion::V1, b""),
    };
    let opts = WireOptions {
        encryption_version: version,
        ..options(false, Some(&key), lbl)
    };
    same_bytes(
        "packet",
        &packet::encode(&opts, &ping, false, || nonce),
        s.bytes(),
    )?;
    same_bytes("decoded", &packet::decode(&opts, s.bytes())?, &ping)?;
    let body = label::strip(s.bytes(), lbl)?;
    same_bytes("decrypted", &ring.decrypt(body, lbl)?, &ping)
}

/// memberlist v0.5.0 traffic: every packet and stream decodes with the run's configuration, and
/// every message re-encodes to the captured bytes.
fn check_capture(s: &Section) -> Check {
    let opts = if s.context.contains("run 1") {
        options(false, None, b"")
    } else if s.context.contains("run 2") {
        options(true, None, b"")
    } else {
        options(false, Some(b"0123456789abcdef"), b"dc1")
    };
    let bytes = s.bytes();
    if s.title.contains("udp-out") {
        let payload = packet::decode(&opts, bytes)?;
        let flat = packet::flatten(&payload);
        ensure(flat.errors.is_empty() && flat.truncated_parts == 0, || {
            format!("{:?}", flat.errors)
        })?;
        return flat.messages.iter().try_for_each(|m| check_leaf(m));
    }
    if s.title.contains("type=244") {
        let (l, rest) = label::split(bytes)?;
        return ensure(l == b"dc1" && rest.is_empty(), || {
            "a label-only write".into()
        });
    }
    // The dialer's label went out as a separate write above, so no section starts with one.
    let (msg, used) = stream::decode(&opts, bytes, true)?;
    ensure(used == bytes.len(), || {
        format!("consumed {used} of {}", bytes.len())
    })?;
    let plain = match msg {
        StreamMessage::PushPull(pp) => pp.encode(Dialect::GOSSIP_LEGACY),
        StreamMessage::Ping(p) => ml::Message::Ping(p).encode(Dialect::GOSSIP_LEGACY),
        StreamMessage::Ack(a) => ml::Message::Ack(a).encode(Dialect::GOSSIP_LEGACY),
        other => return Err(format!("unexpected {other:?}").into()),
    };
    if opts.keyring.is_none() {
        same_bytes(
            "re-encoded stream",
            &stream::encode(&opts, &plain, false, || unreachable!()),
            bytes,
        )?;
    }
    Ok(())
}

fn check_gossip(s: &Section) -> Check {
    let a = s.bytes();
    let title = s.title.as_str();
    let serf_message = || -> Check {
        let mb = sm::Message::decode(&s.v2)?;
        same_bytes("v2", &mb.encode(Dialect::GOSSIP), &s.v2)?;
        if let Some(legacy) = &s.legacy {
            let ma = sm::Message::decode(legacy)?;
            ensure(ma == mb, || "legacy and v2 decode differently".into())?;
            same_bytes("legacy", &ma.encode(Dialect::GOSSIP_LEGACY), legacy)?;
            check_serf_message(legacy)?;
        }
        Ok(())
    };
    match title {
        "filterNode" | "filterTag" => {
            let f = Filter::decode(a)?;
            same_bytes("re-encoded", &f.encode(Dialect::GOSSIP_LEGACY), a)
        }
        t if t.contains("type=")
            || t.contains("type 9")
            || t.starts_with("userEvent")
            || t.starts_with("query no")
            || t.starts_with("conflict") =>
        {
            serf_message()
        }
        t if t.contains("tags meta") => {
            let tags = sm::decode_tags(a)?;
            same_bytes(
                "re-encoded",
                &sm::encode_tags(&tags, Dialect::GOSSIP_LEGACY),
                a,
            )
        }
        "ping ack payload (version 1)" => {
            let coord = sm::decode_ack_payload(a)?.ok_or("no coordinate")?;
            same_bytes(
                "re-encoded",
                &sm::encode_ack_payload(&coord, Dialect::GOSSIP_LEGACY),
                a,
            )
        }
        "long string 40 chars (gossip)" | "big ltime 2^40" => round_trip::<sm::Join>(s, 0, false),
        "long string 40 chars (IPC)" => round_trip::<sm::Join>(s, 0, true),
        "IPC requestHeader" => round_trip::<rpc::RequestHeader>(s, 0, true),
        "IPC handshake body" => round_trip::<rpc::HandshakeRequest>(s, 0, true),
        "IPC responseHeader" => round_trip::<rpc::ResponseHeader>(s, 0, true),
        t if t.starts_with("IPC query record") => round_trip::<rpc::QueryRecord>(s, 0, true),
        "IPC member" => round_trip::<rpc::Member>(s, 0, true),
        "IPC join resp" => round_trip::<rpc::JoinResponse>(s, 0, true),
        "IPC query req" => round_trip::<rpc::QueryRequest>(s, 0, true),
        other => Err(format!("no check written for section {other:?}").into()),
    }
}

fn check_ipc(s: &Section) -> Check {
    match s.title.as_str() {
        "auth" => round_trip::<rpc::AuthRequest>(s, 0, true),
        "event" => round_trip::<rpc::EventRequest>(s, 0, true),
        "force-leave" => round_trip::<rpc::ForceLeaveRequest>(s, 0, true),
        "join req" => round_trip::<rpc::JoinRequest>(s, 0, true),
        "members-filtered req" => round_trip::<rpc::MembersFilteredRequest>(s, 0, true),
        "tags req" => round_trip::<rpc::TagsRequest>(s, 0, true),
        "stream req" => round_trip::<rpc::StreamRequest>(s, 0, true),
        "monitor req" => round_trip::<rpc::MonitorRequest>(s, 0, true),
        "stop req" => round_trip::<rpc::StopRequest>(s, 0, true),
        t if t.starts_with("query req") => round_trip::<rpc::QueryRequest>(s, 0, true),
        "respond req" => round_trip::<rpc::RespondRequest>(s, 0, true),
        "key req" => round_trip::<rpc::KeyRequest>(s, 0, true),
        "coord req" => round_trip::<rpc::CoordinateRequest>(s, 0, true),
        t if t.starts_with("coord resp") => round_trip::<rpc::CoordinateResponse>(s, 0, true),
        t if t.starts_with("key resp") => round_trip::<rpc::KeyResponse>(s, 0, true),
        "user event record" => round_trip::<rpc::UserEventRecord>(s, 0, true),
        "query event record" => round_trip::<rpc::QueryEventRecord>(s, 0, true),
        "member event record" => round_trip::<rpc::MemberEventRecord>(s, 0, true),
        "log record" => round_trip::<rpc::LogRecord>(s, 0, true),
        t if t.starts_with("stats") => round_trip::<rpc::StatsResponse>(s, 0, true),
        other => Err(format!("no check written for section {other:?}").into()),
    }
}

serf_proto::go_struct! {
    /// The struct the tolerance probes decoded into (Go declaration order S, B, U).
    pub struct Probe {
        "B" => b: serf_proto::wire::msgpack::Bytes,
        "S" => s: GoString,
        "U" => u: u8,
    }
}

/// The decoder-tolerance probes, rebuilt from their descriptions. We accept what either Go
/// decoder accepts, except a struct sent as an array (see the README's known deviations).
fn check_tolerance(s: &Section) -> Check {
    // The input, then the decoded (B, S, U) or None where decoding must fail.
    type Expected<'a> = Option<(&'a [u8], &'a [u8], u8)>;
    let (input, want): (&[u8], Expected) = match s.title.as_str() {
        "S as str8 d9" => (b"\x81\xa1S\xd9\x02hi", Some((b"", b"hi", 0))),
        "S as bin8 c4" => (b"\x81\xa1S\xc4\x02hi", Some((b"", b"hi", 0))),
        "S as nil" => (b"\x81\xa1S\xc0", Some((b"", b"", 0))),
        "B as bin8 c4" => (b"\x81\xa1B\xc4\x02hi", Some((b"hi", b"", 0))),
        "B as fixstr" => (b"\x81\xa1B\xa2hi", Some((b"hi", b"", 0))),
        "B as nil" => (b"\x81\xa1B\xc0", Some((b"", b"", 0))),
        "B as empty bin" => (b"\x81\xa1B\xc4\x00", Some((b"", b"", 0))),
        "U as int16 d1 0005" => (b"\x81\xa1U\xd1\x00\x05", Some((b"", b"", 5))),
        "U as 300 (cd012c)" => (b"\x81\xa1U\xcd\x01\x2c", None),
        "U negative e0" => (b"\x81\xa1U\xe0", None),
        "unknown key X" => (b"\x82\xa1X\x01\xa1U\x05", Some((b"", b"", 5))),
        "key as str8 d9" => (b"\x81\xd9\x01U\x05", Some((b"", b"", 5))),
        "struct as array" => (b"\x93\xa2hi\xa2hi\x0a", None),
        other => return Err(format!("no probe for {other:?}").into()),
    };
    let got = msgpack::from_slice_exact::<Probe>(input);
    match (got, want) {
        (Ok(p), Some((b, s_, u))) => ensure(p.b.0 == b && p.s.as_bytes() == s_ && p.u == u, || {
            format!("decoded {p:?}")
        }),
        (Err(_), None) => Ok(()),
        (got, _) => Err(format!("{}: got {got:?}, Go says{}", s.title, s.context).into()),
    }
}
