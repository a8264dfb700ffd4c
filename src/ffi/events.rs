//! Events: polling (blocking, non-blocking, by file descriptor), accessors, query answers, and the
//! optional push-style callback.

use std::ffi::{c_char, c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::dispatcher::Dispatcher;
use super::log::{serf_drop_callback, Sink};
use super::members::serf_member_t;
use super::node::{on_node, serf_t};
use super::status::{
    bytes_arg, guard_value, handle, out_arg, release, serf_status, to_cstring, Fail,
};
use crate::api::{Event, MemberEventType};

pub const SERF_EVENT_NONE: u32 = 0;
pub const SERF_EVENT_MEMBER_JOIN: u32 = 1;
pub const SERF_EVENT_MEMBER_LEAVE: u32 = 2;
pub const SERF_EVENT_MEMBER_FAILED: u32 = 3;
pub const SERF_EVENT_MEMBER_UPDATE: u32 = 4;
pub const SERF_EVENT_MEMBER_REAP: u32 = 5;
/// A user event (`serf_send_event`, `serf event`).
pub const SERF_EVENT_USER: u32 = 6;
/// A query to answer with `serf_query_respond`.
pub const SERF_EVENT_QUERY: u32 = 7;
/// The node stopped by itself (it lost a name-conflict vote).
pub const SERF_EVENT_SHUTDOWN: u32 = 8;

/// One event. Opaque and immutable; from `serf_poll_event`/`serf_try_event` (owned: free with
/// `serf_event_free`) or lent to an event callback (valid during the call only). Read-only, so
/// usable from several threads at once. It does not keep its node alive.
pub struct serf_event_t {
    kind: u32,
    members: Vec<serf_member_t>,
    /// User event or query name; shutdown reason.
    name: CString,
    payload: Vec<u8>,
    ltime: u64,
    coalesce: bool,
    id: u32,
    source: CString,
    deadline: Option<Instant>,
}

impl serf_event_t {
    fn new(event: Event) -> serf_event_t {
        let mut e = serf_event_t {
            kind: SERF_EVENT_NONE,
            members: Vec::new(),
            name: CString::default(),
            payload: Vec::new(),
            ltime: 0,
            coalesce: false,
            id: 0,
            source: CString::default(),
            deadline: None,
        };
        match event {
            Event::Member { kind, members } => {
                e.kind = match kind {
                    MemberEventType::Join => SERF_EVENT_MEMBER_JOIN,
                    MemberEventType::Leave => SERF_EVENT_MEMBER_LEAVE,
                    MemberEventType::Failed => SERF_EVENT_MEMBER_FAILED,
                    MemberEventType::Update => SERF_EVENT_MEMBER_UPDATE,
                    MemberEventType::Reap => SERF_EVENT_MEMBER_REAP,
                };
                e.members = members.iter().map(serf_member_t::new).collect();
            }
            Event::User(u) => {
                e.kind = SERF_EVENT_USER;
                e.name = to_cstring(&u.name);
                e.payload = u.payload;
                e.ltime = u.ltime;
                e.coalesce = u.coalesce;
            }
            Event::Query(q) => {
                e.kind = SERF_EVENT_QUERY;
                e.name = to_cstring(&q.name);
                e.payload = q.payload;
                e.ltime = q.ltime;
                e.id = q.id;
                e.source = to_cstring(&q.source);
                e.deadline = Some(q.deadline);
            }
            Event::Shutdown { reason } => {
                e.kind = SERF_EVENT_SHUTDOWN;
                e.name = to_cstring(&reason);
            }
        }
        e
    }
}

fn timeout(ms: i64) -> Option<Duration> {
    // Negative waits without limit; anything longer than a day is a day.
    (ms >= 0).then(|| Duration::from_millis(ms.min(86_400_000) as u64))
}

fn deliver(n: &serf_t, event: Option<Event>, out: *mut *mut serf_event_t) -> Result<(), Fail> {
    n.check_dropped();
    match event {
        Some(e) => {
            // SAFETY: checked non-NULL by the caller.
            unsafe { *out = Box::into_raw(Box::new(serf_event_t::new(e))) };
            Ok(())
        }
        None if n.serf.is_stopped() => Err(Fail::new(
            serf_status::SERF_ERR_STOPPED,
            "the node has shut down and no events are left",
        )),
        None => Err(Fail::new(serf_status::SERF_ERR_TIMEOUT, "no event")),
    }
}

/// Waits up to `timeout_ms` milliseconds (negative: without limit; capped at a day) for the next
/// event. On success `*out` owns it (free with `serf_event_free`). Otherwise `*out` is NULL and
/// the status says why: SERF_ERR_TIMEOUT (none came), SERF_ERR_STOPPED (the node was shut down
/// and every queued event was taken), SERF_ERR_NULL. Thread-safe; several threads polling one
/// node each get different events. While an event callback is registered it competes for the
/// same events: use one or the other.
#[no_mangle]
pub extern "C" fn serf_poll_event(
    serf: *const serf_t,
    timeout_ms: i64,
    out: *mut *mut serf_event_t,
) -> serf_status {
    on_node(serf, "serf_poll_event", |n| {
        out_arg(out, "out")?;
        // SAFETY: checked non-NULL.
        unsafe { *out = std::ptr::null_mut() };
        let event = match timeout(timeout_ms) {
            Some(t) if t.is_zero() => n.serf.try_event(),
            t => n.serf.next_event(t),
        };
        deliver(n, event, out)
    })
}

/// The next event if one is queued, without waiting: as `serf_poll_event` with a zero timeout
/// (SERF_ERR_TIMEOUT when the queue is empty).
#[no_mangle]
pub extern "C" fn serf_try_event(serf: *const serf_t, out: *mut *mut serf_event_t) -> serf_status {
    on_node(serf, "serf_try_event", |n| {
        out_arg(out, "out")?;
        // SAFETY: checked non-NULL.
        unsafe { *out = std::ptr::null_mut() };
        deliver(n, n.serf.try_event(), out)
    })
}

/// A file descriptor readable exactly while events are queued, for epoll/poll/select, asyncio or
/// Go. Level-triggered semantics: take events with `serf_try_event` until SERF_ERR_TIMEOUT.
/// Owned by the node: never read, write or close it; valid until `serf_free`. -1 for NULL.
#[no_mangle]
pub extern "C" fn serf_event_fd(serf: *const serf_t) -> i32 {
    guard_value(-1, || {
        // SAFETY: NULL or a live handle.
        unsafe { serf.as_ref() }.map_or(-1, |n| n.serf.event_fd())
    })
}

/// Events dropped so far because the queue was full (the application did not keep up); 0 for
/// NULL. Thread-safe.
#[no_mangle]
pub extern "C" fn serf_dropped_events(serf: *const serf_t) -> u64 {
    guard_value(0, || {
        // SAFETY: NULL or a live handle.
        unsafe { serf.as_ref() }.map_or(0, |n| n.serf.dropped_events())
    })
}

/// Releases an event from `serf_poll_event`/`serf_try_event` and the members borrowed from it.
/// NULL is a no-op. Never free an event lent to a callback.
#[no_mangle]
pub extern "C" fn serf_event_free(event: *mut serf_event_t) {
    release(event)
}

fn ev<'a>(e: *const serf_event_t) -> Option<&'a serf_event_t> {
    // SAFETY: NULL or a live event (documented on every accessor).
    unsafe { e.as_ref() }
}

/// A string borrowed from the event when it is of one of `kinds`; NULL otherwise and for NULL.
fn text_of(
    event: *const serf_event_t,
    kinds: &[u32],
    text: impl FnOnce(&serf_event_t) -> &CString,
) -> *const c_char {
    guard_value(std::ptr::null(), || match ev(event) {
        Some(e) if kinds.contains(&e.kind) => text(e).as_ptr(),
        _ => std::ptr::null(),
    })
}

/// The event's type, a `SERF_EVENT_*` value (`SERF_EVENT_NONE` for NULL).
#[no_mangle]
pub extern "C" fn serf_event_type(event: *const serf_event_t) -> u32 {
    guard_value(SERF_EVENT_NONE, || {
        ev(event).map_or(SERF_EVENT_NONE, |e| e.kind)
    })
}

/// A static name for an event type: "member-join", "member-leave", "member-failed",
/// "member-update", "member-reap", "user", "query", "shutdown", or "none".
#[no_mangle]
pub extern "C" fn serf_event_type_name(kind: u32) -> *const c_char {
    let s: &std::ffi::CStr = match kind {
        SERF_EVENT_MEMBER_JOIN => c"member-join",
        SERF_EVENT_MEMBER_LEAVE => c"member-leave",
        SERF_EVENT_MEMBER_FAILED => c"member-failed",
        SERF_EVENT_MEMBER_UPDATE => c"member-update",
        SERF_EVENT_MEMBER_REAP => c"member-reap",
        SERF_EVENT_USER => c"user",
        SERF_EVENT_QUERY => c"query",
        SERF_EVENT_SHUTDOWN => c"shutdown",
        _ => c"none",
    };
    s.as_ptr()
}

/// How many members a member event carries (0 for other events and NULL).
#[no_mangle]
pub extern "C" fn serf_event_member_count(event: *const serf_event_t) -> usize {
    guard_value(0, || ev(event).map_or(0, |e| e.members.len()))
}

/// The member at `index` of a member event, borrowed from the event (valid until it is freed);
/// NULL when out of range or for NULL.
#[no_mangle]
pub extern "C" fn serf_event_member(
    event: *const serf_event_t,
    index: usize,
) -> *const serf_member_t {
    guard_value(std::ptr::null(), || {
        ev(event)
            .and_then(|e| e.members.get(index))
            .map_or(std::ptr::null(), |m| m as *const serf_member_t)
    })
}

/// The name of a user event or query, borrowed from the event; NULL for other events and NULL.
#[no_mangle]
pub extern "C" fn serf_event_name(event: *const serf_event_t) -> *const c_char {
    text_of(event, &[SERF_EVENT_USER, SERF_EVENT_QUERY], |e| &e.name)
}

/// The payload of a user event or query: returns a pointer borrowed from the event and writes
/// its length to `*len` (may be NULL). An empty payload gives a non-NULL pointer and length 0;
/// other events and NULL give NULL and 0.
#[no_mangle]
pub extern "C" fn serf_event_payload(event: *const serf_event_t, len: *mut usize) -> *const u8 {
    guard_value(std::ptr::null(), || {
        let (ptr, n) = match ev(event) {
            Some(e) if e.kind == SERF_EVENT_USER || e.kind == SERF_EVENT_QUERY => {
                (e.payload.as_ptr(), e.payload.len())
            }
            _ => (std::ptr::null(), 0),
        };
        if !len.is_null() {
            // SAFETY: non-NULL, documented as writable.
            unsafe { *len = n };
        }
        ptr
    })
}

/// The Lamport time of a user event or query (0 otherwise).
#[no_mangle]
pub extern "C" fn serf_event_ltime(event: *const serf_event_t) -> u64 {
    guard_value(0, || ev(event).map_or(0, |e| e.ltime))
}

/// Whether the sender of a user event allowed coalescing (false otherwise).
#[no_mangle]
pub extern "C" fn serf_event_coalesce(event: *const serf_event_t) -> bool {
    guard_value(false, || ev(event).is_some_and(|e| e.coalesce))
}

/// A query's id (0 otherwise).
#[no_mangle]
pub extern "C" fn serf_event_query_id(event: *const serf_event_t) -> u32 {
    guard_value(0, || ev(event).map_or(0, |e| e.id))
}

/// The name of the node that sent a query, borrowed from the event; NULL otherwise.
#[no_mangle]
pub extern "C" fn serf_event_query_source(event: *const serf_event_t) -> *const c_char {
    text_of(event, &[SERF_EVENT_QUERY], |e| &e.source)
}

/// Milliseconds left to answer a query (0 once its deadline passed, and for other events).
#[no_mangle]
pub extern "C" fn serf_event_query_remaining_ms(event: *const serf_event_t) -> u64 {
    guard_value(0, || {
        ev(event).and_then(|e| e.deadline).map_or(0, |d| {
            d.saturating_duration_since(Instant::now()).as_millis() as u64
        })
    })
}

/// Why the node stopped, for a shutdown event (borrowed from the event); NULL otherwise.
#[no_mangle]
pub extern "C" fn serf_event_shutdown_reason(event: *const serf_event_t) -> *const c_char {
    text_of(event, &[SERF_EVENT_SHUTDOWN], |e| &e.name)
}

/// Answers a query event (once, before its deadline) with `payload[0..len]` (copied; NULL allowed
/// when `len` is 0). `event` is borrowed and may be freed afterwards. Errors: SERF_ERR_NULL,
/// SERF_ERR_INVALID (not a query event), SERF_ERR_TOO_LARGE (the encoded response message, about
/// 41 bytes more than payload + this node's name, over the 1024-byte limit; a shorter answer may
/// still be sent), SERF_ERR_NOT_FOUND (already answered or past its deadline), SERF_ERR_STOPPED.
#[no_mangle]
pub extern "C" fn serf_query_respond(
    serf: *const serf_t,
    event: *const serf_event_t,
    payload: *const u8,
    len: usize,
) -> serf_status {
    on_node(serf, "serf_query_respond", |n| {
        // SAFETY: NULL or a live event; NULL or `len` readable bytes, borrowed for this call.
        let (e, payload) =
            unsafe { (handle(event, "event")?, bytes_arg(payload, len, "payload")?) };
        if e.kind != SERF_EVENT_QUERY {
            return Err(Fail::invalid("not a query event"));
        }
        Ok(n.serf.respond(e.ltime, e.id, payload)?)
    })
}

/// An event callback: `ctx` as registered and the event, lent for the duration of the call.
#[allow(non_camel_case_types)]
pub type serf_event_callback =
    Option<unsafe extern "C" fn(ctx: *mut c_void, event: *const serf_event_t)>;

type EventFn = unsafe extern "C" fn(*mut c_void, *const serf_event_t);

/// Registers `call` to receive every event (push instead of polling), replacing any earlier
/// callback; NULL `call` removes it. Threading: events are delivered one at a time, in order, on
/// a dispatcher thread this node owns (not the protocol thread: a slow callback only fills the
/// queue, it never stalls gossip). The event is lent for the call; the callback may call any
/// `serf_*` function on this node (`serf_query_respond`, `serf_members`, even
/// `serf_set_event_callback`), except `serf_free`. It must not throw (C++). While registered,
/// `serf_poll_event` competes for the same events: do not mix them. On replacement, an event the
/// old dispatcher had already taken is still given to the old callback, possibly while the new
/// one starts. `drop(ctx)` (may be NULL) runs once the callback will not be called again: before
/// replacement, removal or `serf_free` return (unless called from the callback itself: then when
/// the callback returns), or right away when `call` is NULL. `call` and `ctx` must be usable from
/// the dispatcher thread. Errors: SERF_ERR_NULL (serf), SERF_ERR_IO (the thread could not start;
/// `drop` has run and the previous callback is removed).
#[no_mangle]
pub extern "C" fn serf_set_event_callback(
    serf: *const serf_t,
    call: serf_event_callback,
    drop: serf_drop_callback,
    ctx: *mut c_void,
) -> serf_status {
    on_node(serf, "serf_set_event_callback", |n| {
        let mut slot = n.dispatcher.lock().unwrap_or_else(|p| p.into_inner());
        let old = slot.take();
        if let Some(o) = &old {
            o.signal();
        }
        let started = match call {
            None => {
                if let Some(drop) = drop {
                    // SAFETY: the caller handed us this context to release.
                    unsafe { drop(ctx) };
                }
                Ok(())
            }
            Some(call) => spawn(n, Sink { call, drop, ctx }).map(|d| *slot = Some(d)),
        };
        std::mem::drop(slot);
        if let Some(o) = old {
            o.finish();
        }
        started
    })
}

fn spawn(n: &serf_t, sink: Sink<EventFn>) -> Result<Dispatcher, Fail> {
    let serf = n.serf.clone();
    Dispatcher::start(move |stop| {
        let sink = sink;
        while !stop.load(Ordering::Acquire) {
            match serf.next_event(Some(Duration::from_millis(50))) {
                Some(event) => {
                    let e = serf_event_t::new(event);
                    // A C callback cannot unwind; this only guards against Rust panics.
                    let _ = catch_unwind(AssertUnwindSafe(|| {
                        // SAFETY: registered for this context; the event outlives the call.
                        unsafe { (sink.call)(sink.ctx, &e) }
                    }));
                }
                None if serf.is_stopped() => break,
                None => {}
            }
        }
    })
    .map_err(|e| {
        Fail::new(
            serf_status::SERF_ERR_IO,
            format!("cannot start the dispatcher thread: {e}"),
        )
    })
}
