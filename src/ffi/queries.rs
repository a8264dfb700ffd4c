//! Queries sent from C: parameters, and a response handle yielding acks and responses.

use std::ffi::{c_char, CString};
use std::time::{Duration, Instant};

use super::node::{on_node, serf_t};
use super::status::{
    bytes_arg, guard, guard_value, handle_mut, out_arg, release, serf_status, str_arg, to_cstring,
    Fail,
};
use crate::api::QueryResponse;
use crate::api::{QueryParams, QueryUpdate};

/// `serf_query_update.kind`: a node acknowledged receipt (only with request_ack).
pub const SERF_QUERY_ACK: u32 = 1;
/// A node responded; `payload` holds its answer.
pub const SERF_QUERY_RESPONSE: u32 = 2;
/// The query is over (deadline passed or every expected node answered): nothing follows.
pub const SERF_QUERY_DONE: u32 = 3;

/// One update from `serf_query_next`. `from` and `payload` are borrowed from the query handle:
/// valid until the next `serf_query_next` or `serf_query_free` on it. For SERF_QUERY_DONE they
/// are NULL/0; for an ack `payload` is NULL and `payload_len` 0.
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct serf_query_update {
    pub kind: u32,
    pub from: *const c_char,
    pub payload: *const u8,
    pub payload_len: usize,
}

/// How to send a query. Opaque; from `serf_query_params_new`, released with
/// `serf_query_params_free`. Not thread-safe; reusable for several queries.
pub struct serf_query_params_t {
    params: QueryParams,
}

/// A query in flight. Opaque; from `serf_query`, released with `serf_query_free` (before or after
/// it is done). Use it from one thread at a time. It does not keep the node alive, but it stays
/// valid (reporting SERF_QUERY_DONE) after the node is freed.
pub struct serf_query_t {
    response: QueryResponse,
    from: CString,
    payload: Vec<u8>,
}

/// New query parameters: no filters, no ack, no relays, serf's default timeout. `*out` owns them.
/// Errors: SERF_ERR_NULL.
#[no_mangle]
pub extern "C" fn serf_query_params_new(out: *mut *mut serf_query_params_t) -> serf_status {
    guard(|| {
        out_arg(out, "out")?;
        let p = Box::new(serf_query_params_t {
            params: QueryParams::default(),
        });
        // SAFETY: checked non-NULL.
        unsafe { *out = Box::into_raw(p) };
        Ok(())
    })
}

/// Releases query parameters; NULL is a no-op.
#[no_mangle]
pub extern "C" fn serf_query_params_free(params: *mut serf_query_params_t) {
    release(params)
}

fn params<'a>(p: *mut serf_query_params_t) -> Result<&'a mut serf_query_params_t, Fail> {
    // SAFETY: NULL or live parameters (documented).
    unsafe { handle_mut(p, "params") }
}

/// Only the named node answers (call once per node; without any, all nodes may answer). The
/// name is copied. Errors: SERF_ERR_NULL, SERF_ERR_UTF8.
#[no_mangle]
pub extern "C" fn serf_query_params_add_node(
    p: *mut serf_query_params_t,
    node: *const c_char,
) -> serf_status {
    guard(|| {
        let p = params(p)?;
        // SAFETY: NULL or a C string borrowed for this call.
        let node = unsafe { str_arg(node, "node") }?;
        p.params.filter_nodes.push(node.to_string());
        Ok(())
    })
}

/// Only nodes whose tag `tag` matches the regular expression `regex` (unanchored, Go syntax)
/// answer; one expression per tag (a later call for the same tag replaces it). Copied. Errors:
/// SERF_ERR_NULL, SERF_ERR_UTF8, SERF_ERR_INVALID (the expression does not compile).
#[no_mangle]
pub extern "C" fn serf_query_params_add_tag(
    p: *mut serf_query_params_t,
    tag: *const c_char,
    regex: *const c_char,
) -> serf_status {
    guard(|| {
        let p = params(p)?;
        // SAFETY: NULL or C strings borrowed for this call.
        let (tag, expr) = unsafe { (str_arg(tag, "tag")?, str_arg(regex, "regex")?) };
        regex::Regex::new(expr)
            .map_err(|e| Fail::invalid(format!("bad regular expression: {e}")))?;
        p.params
            .filter_tags
            .insert(tag.to_string(), expr.to_string());
        Ok(())
    })
}

/// Asks every node that passes the filters to acknowledge receipt (SERF_QUERY_ACK updates).
/// Errors: SERF_ERR_NULL.
#[no_mangle]
pub extern "C" fn serf_query_params_set_request_ack(
    p: *mut serf_query_params_t,
    ack: bool,
) -> serf_status {
    guard(|| {
        params(p)?.params.request_ack = ack;
        Ok(())
    })
}

/// How many extra members relay each response back (0 to 5; 0: none). Errors: SERF_ERR_NULL,
/// SERF_ERR_INVALID.
#[no_mangle]
pub extern "C" fn serf_query_params_set_relay_factor(
    p: *mut serf_query_params_t,
    relay: u8,
) -> serf_status {
    guard(|| {
        let p = params(p)?;
        if relay > 5 {
            return Err(Fail::invalid("the relay factor is at most 5"));
        }
        p.params.relay_factor = relay;
        Ok(())
    })
}

/// How long the query collects answers, in milliseconds (0: serf's default, gossip interval × 16
/// × ceil(log10(N+1)); at most an hour). Errors: SERF_ERR_NULL, SERF_ERR_INVALID.
#[no_mangle]
pub extern "C" fn serf_query_params_set_timeout_ms(
    p: *mut serf_query_params_t,
    timeout_ms: u64,
) -> serf_status {
    guard(|| {
        let p = params(p)?;
        if timeout_ms > 3_600_000 {
            return Err(Fail::invalid("a query timeout is at most an hour"));
        }
        p.params.timeout = (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms));
        Ok(())
    })
}

/// Sends a query named `name` with `payload[0..len]` (copied; NULL allowed when `len` is 0) to
/// the nodes passing `params` (borrowed; NULL for defaults). On success `*out` owns the response
/// handle: read updates with `serf_query_next`, free it with `serf_query_free`. Errors:
/// SERF_ERR_NULL, SERF_ERR_UTF8, SERF_ERR_TOO_LARGE (the encoded query message, about 100 bytes
/// more than name + payload + filters + this node's name, over the 1024-byte limit),
/// SERF_ERR_STOPPED (after leave/shutdown). `*out` is NULL on failure.
#[no_mangle]
pub extern "C" fn serf_query(
    serf: *const serf_t,
    name: *const c_char,
    payload: *const u8,
    len: usize,
    params: *const serf_query_params_t,
    out: *mut *mut serf_query_t,
) -> serf_status {
    on_node(serf, "serf_query", |n| {
        n.active()?;
        out_arg(out, "out")?;
        // SAFETY: checked non-NULL.
        unsafe { *out = std::ptr::null_mut() };
        // SAFETY: NULL or a C string / `len` bytes, borrowed for this call.
        let (name, payload) =
            unsafe { (str_arg(name, "name")?, bytes_arg(payload, len, "payload")?) };
        // SAFETY: NULL or live parameters.
        let p = unsafe { params.as_ref() }
            .map(|p| p.params.clone())
            .unwrap_or_default();
        let response = n.serf.query(name, payload, p)?;
        let q = Box::new(serf_query_t {
            response,
            from: CString::default(),
            payload: Vec::new(),
        });
        // SAFETY: checked non-NULL.
        unsafe { *out = Box::into_raw(q) };
        Ok(())
    })
}

/// Waits up to `timeout_ms` (negative: until the query's deadline plus a second) for the next
/// update and writes it to `*update` (see `serf_query_update` for the lifetime of its pointers).
/// Returns SERF_OK with kind SERF_QUERY_ACK, SERF_QUERY_RESPONSE or SERF_QUERY_DONE (and DONE
/// again on every later call); SERF_ERR_TIMEOUT when nothing came in time; SERF_ERR_NULL.
#[no_mangle]
pub extern "C" fn serf_query_next(
    q: *mut serf_query_t,
    timeout_ms: i64,
    update: *mut serf_query_update,
) -> serf_status {
    guard(|| {
        // SAFETY: NULL or a live query handle used from this thread only.
        let q = unsafe { handle_mut(q, "query") }?;
        out_arg(update, "update")?;
        let wait = if timeout_ms < 0 {
            q.response
                .deadline()
                .saturating_duration_since(Instant::now())
                + Duration::from_secs(1)
        } else {
            Duration::from_millis(timeout_ms.min(3_600_000) as u64)
        };
        let mut u = serf_query_update {
            kind: SERF_QUERY_DONE,
            from: std::ptr::null(),
            payload: std::ptr::null(),
            payload_len: 0,
        };
        match q.response.next(wait) {
            Some(QueryUpdate::Ack { from }) => {
                q.from = to_cstring(&from);
                q.payload.clear();
                u.kind = SERF_QUERY_ACK;
                u.from = q.from.as_ptr();
            }
            Some(QueryUpdate::Response { from, payload }) => {
                q.from = to_cstring(&from);
                q.payload = payload;
                u.kind = SERF_QUERY_RESPONSE;
                u.from = q.from.as_ptr();
                u.payload = q.payload.as_ptr();
                u.payload_len = q.payload.len();
            }
            Some(QueryUpdate::Done) => {}
            None if q.response.is_done() => {}
            None => {
                return Err(Fail::new(
                    serf_status::SERF_ERR_TIMEOUT,
                    "no query update in time",
                ));
            }
        }
        // SAFETY: checked non-NULL.
        unsafe { *update = u };
        Ok(())
    })
}

/// Whether the query is over (SERF_QUERY_DONE was returned); false for NULL.
#[no_mangle]
pub extern "C" fn serf_query_is_done(q: *const serf_query_t) -> bool {
    // SAFETY: NULL or a live query handle.
    guard_value(false, || {
        unsafe { q.as_ref() }.is_some_and(|q| q.response.is_done())
    })
}

/// Milliseconds until the query's deadline (0 once passed, and for NULL).
#[no_mangle]
pub extern "C" fn serf_query_remaining_ms(q: *const serf_query_t) -> u64 {
    guard_value(0, || {
        // SAFETY: NULL or a live query handle.
        unsafe { q.as_ref() }.map_or(0, |q| {
            q.response
                .deadline()
                .saturating_duration_since(Instant::now())
                .as_millis() as u64
        })
    })
}

/// A descriptor readable exactly while updates wait to be read with `serf_query_next` (the final
/// DONE included), for epoll/poll. Owned by the query handle: never close it; valid until
/// `serf_query_free`. -1 for NULL.
#[no_mangle]
pub extern "C" fn serf_query_fd(q: *const serf_query_t) -> i32 {
    // SAFETY: NULL or a live query handle.
    guard_value(-1, || unsafe { q.as_ref() }.map_or(-1, |q| q.response.fd()))
}

/// Releases a query handle (later answers are discarded). NULL is a no-op.
#[no_mangle]
pub extern "C" fn serf_query_free(q: *mut serf_query_t) {
    release(q)
}
