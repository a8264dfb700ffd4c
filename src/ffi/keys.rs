//! The key manager: install, use, remove and list encryption keys across the cluster.

use std::ffi::{c_char, CString};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::node::{on_node, serf_t};
use super::status::{
    guard_value, out_arg, release, serf_status, str_arg, to_cstring, write_pair, Fail,
};
use crate::api::{KeyAggregate, KeyOp};

/// Adds a key to every keyring (`serf keys -install`).
pub const SERF_KEY_INSTALL: u32 = 1;
/// Makes an installed key the primary everywhere (`-use`).
pub const SERF_KEY_USE: u32 = 2;
/// Removes a (non-primary) key everywhere (`-remove`).
pub const SERF_KEY_REMOVE: u32 = 3;
/// Lists the keys every node holds (`-list`); takes no key.
pub const SERF_KEY_LIST: u32 = 4;

/// The cluster-wide outcome of a key operation (Go's `KeyResponse`). Opaque and immutable; from
/// `serf_key_operation`, released with `serf_key_result_free`. Strings it lends stay valid until
/// then. Usable from several threads at once.
pub struct serf_key_result_t {
    num_nodes: usize,
    num_resp: usize,
    num_err: usize,
    error: Option<CString>,
    messages: Vec<(CString, CString)>,
    keys: Vec<(CString, usize)>,
    primary_keys: Vec<(CString, usize)>,
}

impl serf_key_result_t {
    fn new(a: &KeyAggregate) -> serf_key_result_t {
        let pairs = |m: &std::collections::BTreeMap<String, usize>| {
            m.iter().map(|(k, n)| (to_cstring(k), *n)).collect()
        };
        serf_key_result_t {
            num_nodes: a.num_nodes,
            num_resp: a.num_resp,
            num_err: a.num_err,
            error: a.error().map(|e| to_cstring(&e)),
            messages: a
                .messages
                .iter()
                .map(|(k, v)| (to_cstring(k), to_cstring(v)))
                .collect(),
            keys: pairs(&a.keys),
            primary_keys: pairs(&a.primary_keys),
        }
    }
}

/// Runs a key operation (`SERF_KEY_*`) on every member and waits for the answers (serf's query
/// timeout plus a second). `key` is the base64 key (NULL for SERF_KEY_LIST; borrowed). SERF_OK
/// means the operation completed, not that every node succeeded: `*out` (owned; free with
/// `serf_key_result_free`) holds the per-node results; `serf_key_result_error` summarizes
/// failures. Errors: SERF_ERR_NULL, SERF_ERR_UTF8, SERF_ERR_INVALID (unknown operation, key not
/// base64 or not 16/24/32 bytes), SERF_ERR_TIMEOUT, SERF_ERR_STOPPED. `*out` is NULL on failure.
#[no_mangle]
pub extern "C" fn serf_key_operation(
    serf: *const serf_t,
    op: u32,
    key: *const c_char,
    out: *mut *mut serf_key_result_t,
) -> serf_status {
    on_node(serf, "serf_key_operation", |n| {
        n.active()?;
        out_arg(out, "out")?;
        // SAFETY: checked non-NULL.
        unsafe { *out = std::ptr::null_mut() };
        let op = match op {
            SERF_KEY_INSTALL => KeyOp::Install,
            SERF_KEY_USE => KeyOp::Use,
            SERF_KEY_REMOVE => KeyOp::Remove,
            SERF_KEY_LIST => KeyOp::List,
            other => return Err(Fail::invalid(format!("unknown key operation {other}"))),
        };
        let raw = if op == KeyOp::List {
            Vec::new()
        } else {
            // SAFETY: NULL or a C string borrowed for this call.
            let text = unsafe { str_arg(key, "key") }?;
            let raw = STANDARD
                .decode(text)
                .map_err(|e| Fail::invalid(format!("the key is not base64: {e}")))?;
            if !matches!(raw.len(), 16 | 24 | 32) {
                return Err(Fail::invalid(format!(
                    "an encryption key is 16, 24 or 32 bytes, not {}",
                    raw.len()
                )));
            }
            raw
        };
        let agg = n.serf.key_operation(op, &raw)?;
        // SAFETY: checked non-NULL.
        unsafe { *out = Box::into_raw(Box::new(serf_key_result_t::new(&agg))) };
        Ok(())
    })
}

/// Releases a key result; NULL is a no-op.
#[no_mangle]
pub extern "C" fn serf_key_result_free(r: *mut serf_key_result_t) {
    release(r)
}

fn res<'a>(r: *const serf_key_result_t) -> Option<&'a serf_key_result_t> {
    // SAFETY: NULL or a live result (documented).
    unsafe { r.as_ref() }
}

/// Members asked (0 for NULL).
#[no_mangle]
pub extern "C" fn serf_key_result_num_nodes(r: *const serf_key_result_t) -> usize {
    guard_value(0, || res(r).map_or(0, |r| r.num_nodes))
}

/// Members that answered (0 for NULL).
#[no_mangle]
pub extern "C" fn serf_key_result_num_responses(r: *const serf_key_result_t) -> usize {
    guard_value(0, || res(r).map_or(0, |r| r.num_resp))
}

/// Members that reported a failure (0 for NULL).
#[no_mangle]
pub extern "C" fn serf_key_result_num_errors(r: *const serf_key_result_t) -> usize {
    guard_value(0, || res(r).map_or(0, |r| r.num_err))
}

/// Go's summary error ("1/3 nodes reported failure"), borrowed from the result; NULL when every
/// member answered successfully (and for NULL).
#[no_mangle]
pub extern "C" fn serf_key_result_error(r: *const serf_key_result_t) -> *const c_char {
    guard_value(std::ptr::null(), || {
        res(r)
            .and_then(|r| r.error.as_ref())
            .map_or(std::ptr::null(), |e| e.as_ptr())
    })
}

/// How many per-node messages the result holds (0 for NULL).
#[no_mangle]
pub extern "C" fn serf_key_result_message_count(r: *const serf_key_result_t) -> usize {
    guard_value(0, || res(r).map_or(0, |r| r.messages.len()))
}

/// The per-node message at `index` (sorted by node) into `*node` and `*message`, borrowed from
/// the result. False (nothing written) for NULL arguments or an index out of range.
#[no_mangle]
pub extern "C" fn serf_key_result_message_at(
    r: *const serf_key_result_t,
    index: usize,
    node: *mut *const c_char,
    message: *mut *const c_char,
) -> bool {
    guard_value(false, || {
        let pair = res(r).and_then(|r| r.messages.get(index));
        write_pair(pair.map(|(k, v)| (k.as_ptr(), v.as_ptr())), node, message)
    })
}

fn key_at(
    list: Option<&Vec<(CString, usize)>>,
    index: usize,
    key: *mut *const c_char,
    count: *mut usize,
) -> bool {
    let pair = list.and_then(|l| l.get(index));
    write_pair(pair.map(|(k, n)| (k.as_ptr(), *n)), key, count)
}

/// For SERF_KEY_LIST: how many distinct keys were reported (0 otherwise and for NULL).
#[no_mangle]
pub extern "C" fn serf_key_result_key_count(r: *const serf_key_result_t) -> usize {
    guard_value(0, || res(r).map_or(0, |r| r.keys.len()))
}

/// For SERF_KEY_LIST: the key at `index` (base64, borrowed from the result) and how many nodes
/// hold it. False (nothing written) for NULL arguments or an index out of range.
#[no_mangle]
pub extern "C" fn serf_key_result_key_at(
    r: *const serf_key_result_t,
    index: usize,
    key: *mut *const c_char,
    count: *mut usize,
) -> bool {
    guard_value(false, || key_at(res(r).map(|r| &r.keys), index, key, count))
}

/// For SERF_KEY_LIST: how many distinct primary keys were reported (0 otherwise and for NULL).
#[no_mangle]
pub extern "C" fn serf_key_result_primary_key_count(r: *const serf_key_result_t) -> usize {
    guard_value(0, || res(r).map_or(0, |r| r.primary_keys.len()))
}

/// For SERF_KEY_LIST: the primary key at `index` (base64, borrowed) and how many nodes use it.
/// False (nothing written) for NULL arguments or an index out of range.
#[no_mangle]
pub extern "C" fn serf_key_result_primary_key_at(
    r: *const serf_key_result_t,
    index: usize,
    key: *mut *const c_char,
    count: *mut usize,
) -> bool {
    guard_value(false, || {
        key_at(res(r).map(|r| &r.primary_keys), index, key, count)
    })
}
