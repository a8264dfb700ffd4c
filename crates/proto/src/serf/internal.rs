//! Serf's internal queries (`_serf_*`): answered by serf itself, never shown to the application.
//! Key management (install, use, remove, list) and name-conflict votes travel this way.

use std::io::Write;
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::member::Member;
use super::query::KeyAggregate;
use crate::wire::memberlist::keyring::Keyring;
use crate::wire::msgpack::{Bytes, Dialect, GoString};
use crate::wire::serf::{self as wire, Message};

/// Queries whose names start with this are serf's own.
pub const INTERNAL_PREFIX: &str = "_serf_";
pub const PING_QUERY: &str = "_serf_ping";
pub const CONFLICT_QUERY: &str = "_serf_conflict";
/// Keys take at least this many bytes in a list response (`minEncodedKeyLength`).
const MIN_ENCODED_KEY_LENGTH: usize = 25;

/// A keyring operation, cluster-wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOp {
    Install,
    Use,
    Remove,
    List,
}

impl KeyOp {
    pub fn query_name(self) -> &'static str {
        match self {
            KeyOp::Install => "_serf_install-key",
            KeyOp::Use => "_serf_use-key",
            KeyOp::Remove => "_serf_remove-key",
            KeyOp::List => "_serf_list-keys",
        }
    }

    pub fn from_query_name(name: &str) -> Option<KeyOp> {
        [KeyOp::Install, KeyOp::Use, KeyOp::Remove, KeyOp::List]
            .into_iter()
            .find(|op| op.query_name() == name)
    }
}

/// The payload of a key query: `[7] + keyRequest` (list sends an empty key).
pub fn key_request_payload(key: &[u8]) -> Vec<u8> {
    Message::KeyRequest(wire::KeyRequest {
        key: Some(Bytes(key.to_vec())),
    })
    .encode(Dialect::GOSSIP)
}

/// Answers a key query on this node: applies it to the keyring (persisting it to
/// `keyring_file`), and returns the response payload `[8] + nodeKeyResponse`. `fits` says whether
/// a payload fits in a query response, for truncating long key lists as Go does.
pub fn answer_key_query(
    op: KeyOp,
    payload: &[u8],
    keyring: Option<&mut Keyring>,
    keyring_file: Option<&Path>,
    fits: impl Fn(&[u8]) -> bool,
) -> Vec<u8> {
    let mut resp = wire::KeyResponse::default();
    // Go decodes the request after the type byte without checking it.
    let key = match payload
        .get(1..)
        .map(crate::wire::msgpack::from_slice::<wire::KeyRequest>)
    {
        Some(Ok(req)) => req.key.map(|k| k.0).unwrap_or_default(),
        _ => {
            resp.message = "Failed to decode key request".into();
            return encode(resp);
        }
    };
    let Some(ring) = keyring else {
        resp.message = match op {
            KeyOp::List => "Keyring is empty (encryption not enabled)",
            _ => "No keyring to modify (encryption not enabled)",
        }
        .into();
        return encode(resp);
    };
    let outcome = match op {
        KeyOp::Install => ring.add_key(&key),
        KeyOp::Use => ring.use_key(&key),
        KeyOp::Remove => ring.remove_key(&key),
        KeyOp::List => return list_keys(ring, fits),
    };
    match outcome
        .map_err(|e| e.to_string())
        .and_then(|()| match keyring_file {
            Some(path) => write_keyring_file(path, ring)
                .map_err(|e| format!("Failed to write keyring file: {e}")),
            None => Ok(()),
        }) {
        Ok(()) => resp.result = true,
        Err(e) => resp.message = e.into(),
    }
    encode(resp)
}

fn list_keys(ring: &Keyring, fits: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let keys: Vec<GoString> = ring
        .keys()
        .map(|k| GoString::from(STANDARD.encode(k)))
        .collect();
    let total = keys.len();
    let mut resp = wire::KeyResponse {
        result: true,
        primary_key: STANDARD.encode(ring.primary_key()).into(),
        keys: Some(keys.clone()),
        ..Default::default()
    };
    let mut shown = total.min(1024 / MIN_ENCODED_KEY_LENGTH);
    loop {
        resp.keys = Some(keys[..shown].to_vec());
        if shown < total {
            resp.message =
                format!("truncated key list response, showing first {shown} of {total} keys")
                    .into();
        }
        let payload = encode(resp.clone());
        if fits(&payload) || shown == 0 {
            return payload;
        }
        shown -= 1;
    }
}

fn encode(resp: wire::KeyResponse) -> Vec<u8> {
    Message::KeyResponse(resp).encode(Dialect::GOSSIP)
}

/// Why a keyring file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyringFileError {
    #[error("Failed to read keyring file: {0}")]
    Read(#[from] std::io::Error),
    #[error("Failed to decode keyring file: {0}")]
    Decode(String),
    #[error("Failed to decode key from keyring: {0}")]
    Key(String),
}

/// Loads a keyring file (a JSON array of base64 keys, primary first), checking every key's
/// length (16, 24 or 32 bytes).
pub fn read_keyring_file(path: &Path) -> Result<Vec<Vec<u8>>, KeyringFileError> {
    let text = std::fs::read(path)?;
    let encoded: Vec<String> =
        serde_json::from_slice(&text).map_err(|e| KeyringFileError::Decode(e.to_string()))?;
    encoded
        .iter()
        .map(|k| {
            let key = STANDARD
                .decode(k)
                .map_err(|e| KeyringFileError::Key(e.to_string()))?;
            if matches!(key.len(), 16 | 24 | 32) {
                Ok(key)
            } else {
                Err(KeyringFileError::Key(format!(
                    "key size must be 16, 24 or 32 bytes, not {}",
                    key.len()
                )))
            }
        })
        .collect()
}

/// Persists the keyring as Go does: a JSON array of base64 keys, primary first, mode 0600. The
/// mode is also set on a file that already exists (Go keeps its old mode): rewriting the keys
/// must not leave them readable by others.
pub fn write_keyring_file(path: &Path, ring: &Keyring) -> std::io::Result<()> {
    let keys: Vec<String> = ring
        .keys()
        .map(|k| format!("\"{}\"", STANDARD.encode(k)))
        .collect();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(format!("[{}]", keys.join(",")).as_bytes())?;
    file.sync_all()
}

/// Folds one node's answer to a key query into the cluster-wide result (Go's KeyManager).
pub fn aggregate_key_response(agg: &mut KeyAggregate, from: &str, payload: &[u8]) {
    agg.num_resp += 1;
    let decoded = match payload.first() {
        Some(8) => crate::wire::msgpack::from_slice::<wire::KeyResponse>(&payload[1..]).ok(),
        _ => {
            agg.messages.insert(
                from.into(),
                format!("Invalid key query response type: {payload:?}"),
            );
            agg.num_err += 1;
            return;
        }
    };
    let Some(resp) = decoded else {
        agg.messages.insert(
            from.into(),
            format!("Failed to decode key query response: {payload:?}"),
        );
        agg.num_err += 1;
        return;
    };
    if !resp.result {
        agg.messages
            .insert(from.into(), resp.message.to_string_lossy());
        agg.num_err += 1;
    } else if !resp.message.is_empty() {
        agg.messages
            .insert(from.into(), resp.message.to_string_lossy());
    }
    for key in resp.keys.unwrap_or_default() {
        *agg.keys.entry(key.to_string_lossy()).or_default() += 1;
    }
    *agg.primary_keys
        .entry(resp.primary_key.to_string_lossy())
        .or_default() += 1;
}

/// The answer to `_serf_conflict`: `[6]` + what we know of the named member, or `[6] nil`.
pub fn conflict_answer(member: Option<&Member>) -> Vec<u8> {
    let member = member.map(|m| wire::Member {
        name: m.name.as_str().into(),
        addr: Bytes(crate::memberlist::ip_to_bytes(m.addr)),
        port: m.port,
        tags: Some(
            m.tags
                .iter()
                .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
                .collect(),
        ),
        status: m.status as i64,
        protocol_min: m.protocol[0],
        protocol_max: m.protocol[1],
        protocol_cur: m.protocol[2],
        delegate_min: m.delegate[0],
        delegate_max: m.delegate[1],
        delegate_cur: m.delegate[2],
    });
    Message::ConflictResponse(member).encode(Dialect::GOSSIP)
}

/// Reads a conflict answer: the address and port the responder has for the name.
pub fn read_conflict_answer(payload: &[u8]) -> Option<(Vec<u8>, u16)> {
    match Message::decode(payload).ok()? {
        Message::ConflictResponse(m) => Some(m.map(|m| (m.addr.0, m.port)).unwrap_or_default()),
        _ => None,
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_rewritten_keyring_file_is_private_even_if_it_was_not() {
        let path = std::env::temp_dir().join(format!("serf-keyring-{}.json", std::process::id()));
        std::fs::write(&path, "[]").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let ring = Keyring::new(&[7u8; 16], &[[8u8; 32]]).unwrap();
        write_keyring_file(&path, &ring).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        let keys = read_keyring_file(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(mode, 0o600);
        assert_eq!(keys, vec![vec![7u8; 16], vec![8u8; 32]]);
    }
}
