//! `serf_t`: creating a node, joining, leaving, tags, user events, shutting down.

use std::ffi::c_char;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::config::{read_keyring_file, serf_config_t};
use super::dispatcher::Dispatcher;
use super::log::{Logger, SERF_LOG_DEBUG, SERF_LOG_INFO, SERF_LOG_WARN};
use super::status::{bytes_arg, guard, handle, out_arg, serf_status, str_arg, Fail};
use crate::api::Serf;

/// A running node. Opaque; create with `serf_create`, release with `serf_free`. Every function
/// taking a `serf_t *` may be called from any thread, concurrently, except `serf_free`, which
/// must be the last call on the handle (no other call in flight or afterwards).
pub struct serf_t {
    pub(crate) serf: Arc<Serf>,
    pub(crate) logger: Logger,
    pub(crate) dispatcher: Mutex<Option<Dispatcher>>,
    pub(crate) dropped_seen: AtomicU64,
    /// Set once `serf_leave` succeeded: calls that would gossip something new are refused.
    pub(crate) left: AtomicBool,
    /// The thread handing the protocol's log lines to the callback (see `log::relay`).
    pub(crate) log_relay: Option<JoinHandle<()>>,
}

impl serf_t {
    /// Refuses work that would gossip something new once the node left.
    pub(crate) fn active(&self) -> Result<(), Fail> {
        if self.left.load(Ordering::Acquire) {
            return Err(Fail::new(
                serf_status::SERF_ERR_STOPPED,
                "the node has left the cluster",
            ));
        }
        Ok(())
    }

    /// Logs at debug level why a call on this node failed.
    pub(crate) fn note(&self, function: &str, status: serf_status) {
        if status != serf_status::SERF_OK {
            self.logger.log(SERF_LOG_DEBUG, || {
                let msg = super::status::last_error_text();
                format!("{function}: {msg}")
            });
        }
    }

    /// Warns once per increase of the dropped-events counter.
    pub(crate) fn check_dropped(&self) {
        let now = self.serf.dropped_events();
        let before = self.dropped_seen.swap(now, Ordering::Relaxed);
        if now > before {
            self.logger.log(SERF_LOG_WARN, || {
                format!("{} events dropped: the event queue was full", now - before)
            });
        }
    }
}

/// Runs the body of a function on a node, logging its failure.
pub(crate) fn on_node(
    serf: *const serf_t,
    function: &str,
    body: impl FnOnce(&serf_t) -> Result<(), Fail>,
) -> serf_status {
    let mut node: Option<&serf_t> = None;
    let status = guard(|| {
        // SAFETY: the caller passes NULL or a live handle (documented on every function).
        let n = unsafe { handle(serf, "serf") }?;
        node = Some(n);
        body(n)
    });
    if let Some(n) = node {
        let _ = guard(|| {
            n.note(function, status);
            Ok(())
        });
    }
    status
}

/// Creates and starts a node from `cfg` (borrowed: it may be freed or reused right after). Binds
/// the sockets, loads the keyring file and snapshot if set, and starts the node's protocol thread.
/// On success `*out` owns the node: release it with `serf_free`. On failure `*out` is set to NULL.
/// Errors: SERF_ERR_NULL, SERF_ERR_IO (cannot bind, unreadable file), SERF_ERR_INVALID
/// (no advertise address for a wildcard bind, bad keyring file), SERF_ERR_TOO_LARGE (tags).
/// Thread-safe.
#[no_mangle]
pub extern "C" fn serf_create(cfg: *const serf_config_t, out: *mut *mut serf_t) -> serf_status {
    guard(|| {
        out_arg(out, "out")?;
        // SAFETY: checked non-NULL.
        unsafe { *out = std::ptr::null_mut() };
        // SAFETY: NULL or a live config.
        let cfg = unsafe { handle(cfg, "config") }?;
        let mut options = cfg.options.clone();
        if let Some(path) = &cfg.keyring_file {
            if path.exists() {
                options.keys.extend(read_keyring_file(path)?);
            }
            options.keyring_file = Some(path.clone());
        }
        let logger = cfg.logger.clone();
        let (sink, relay) = super::log::relay(&logger).unzip();
        options.log = sink;
        let serf = match Serf::create(options) {
            Ok(serf) => serf,
            Err(e) => {
                // The options, and with them the relay's only sender, are gone: the relay
                // ends and releases its hold on the callback before serf_create returns.
                if let Some(relay) = relay {
                    let _ = relay.join();
                }
                let fail = Fail::from(e);
                logger.log(super::log::SERF_LOG_ERROR, || {
                    format!("cannot start node {}: {}", cfg.options.name, fail.message)
                });
                return Err(fail);
            }
        };
        logger.log(SERF_LOG_INFO, || {
            format!("node {} listening on {}", serf.name(), serf.local_addr())
        });
        let node = Box::new(serf_t {
            serf: Arc::new(serf),
            logger,
            dispatcher: Mutex::new(None),
            dropped_seen: AtomicU64::new(0),
            left: AtomicBool::new(false),
            log_relay: relay,
        });
        // SAFETY: checked non-NULL.
        unsafe { *out = Box::into_raw(node) };
        Ok(())
    })
}

/// Joins a cluster through any of `addrs[0..count]` (each NUL-terminated: "host", "host:port" or
/// "ip:port"; the default port is 7946) and waits for the exchange (at most the TCP timeout plus
/// a second). `ignore_old` skips user events sent before the join. `*contacted` (may be NULL)
/// receives how many nodes answered. Strings are borrowed for the call. Errors: SERF_ERR_NULL,
/// SERF_ERR_UTF8, SERF_ERR_INVALID (count 0 or over 1024, bad address), SERF_ERR_JOIN (none
/// answered), SERF_ERR_TIMEOUT, SERF_ERR_STOPPED (after leave/shutdown).
#[no_mangle]
pub extern "C" fn serf_join(
    serf: *const serf_t,
    addrs: *const *const c_char,
    count: usize,
    ignore_old: bool,
    contacted: *mut usize,
) -> serf_status {
    on_node(serf, "serf_join", |n| {
        n.active()?;
        if addrs.is_null() {
            return Err(Fail::null("addrs"));
        }
        if count == 0 || count > 1024 {
            return Err(Fail::invalid(format!(
                "{count} addresses (1 to 1024 allowed)"
            )));
        }
        let mut list = Vec::with_capacity(count);
        for i in 0..count {
            // SAFETY: the caller passes `count` readable pointers, each NULL or a C string.
            let a = unsafe { str_arg(*addrs.add(i), "an address") }?;
            list.push(a.to_string());
        }
        match n.serf.join(&list, ignore_old) {
            Ok(k) => {
                n.logger
                    .log(SERF_LOG_INFO, || format!("joined {k} of {list:?}"));
                if !contacted.is_null() {
                    // SAFETY: non-NULL, documented as writable.
                    unsafe { *contacted = k };
                }
                Ok(())
            }
            Err(e) => {
                let fail = Fail::from(e);
                n.logger.log(SERF_LOG_WARN, || {
                    format!("join {list:?} failed: {}", fail.message)
                });
                Err(fail)
            }
        }
    })
}

/// Leaves the cluster gracefully and waits for the announcement to spread (a few seconds at
/// most). The handle stays valid: members, stats, coordinates, query answers and queued events
/// still work; joins, user events, queries, tag changes, force-leaves and key operations return
/// SERF_ERR_STOPPED. Calling it again after a successful leave returns SERF_OK (as Go's `Leave`).
/// Release the handle with `serf_free`. Errors: SERF_ERR_NULL, SERF_ERR_STOPPED (shut down, or a
/// leave is in progress on another thread), SERF_ERR_TIMEOUT.
#[no_mangle]
pub extern "C" fn serf_leave(serf: *const serf_t) -> serf_status {
    on_node(serf, "serf_leave", |n| {
        if n.left.load(Ordering::Acquire) {
            return Ok(());
        }
        n.serf.leave()?;
        n.left.store(true, Ordering::Release);
        n.logger
            .log(SERF_LOG_INFO, || format!("node {} left", n.serf.name()));
        Ok(())
    })
}

/// Stops the node without leaving (peers will see it fail) and closes its sockets. Idempotent.
/// Events already queued stay readable; every other call returns SERF_ERR_STOPPED. The handle
/// still needs `serf_free`. Errors: SERF_ERR_NULL.
#[no_mangle]
pub extern "C" fn serf_shutdown(serf: *const serf_t) -> serf_status {
    on_node(serf, "serf_shutdown", |n| {
        let was = n.serf.is_stopped();
        let _ = n.serf.close();
        if !was {
            n.logger.log(SERF_LOG_INFO, || {
                format!("node {} shut down", n.serf.name())
            });
        }
        Ok(())
    })
}

/// Shuts the node down (as `serf_shutdown`, without leaving: call `serf_leave` first for a
/// graceful exit), stops the event callback (joining its thread and running its `drop`), and
/// releases the handle. NULL is a no-op. Must be the last call on the handle; event, member,
/// query and key-result handles obtained from it remain valid and must still be freed. Do not
/// call it from the node's own event or log callback.
#[no_mangle]
pub extern "C" fn serf_free(serf: *mut serf_t) {
    let _ = guard(|| {
        if serf.is_null() {
            return Ok(());
        }
        // SAFETY: created by serf_create and, per the contract, freed once with nothing in flight.
        let node = unsafe { Box::from_raw(serf) };
        let _ = node.serf.close();
        super::dispatcher::stop(&node.dispatcher);
        let mut node = node;
        if let Some(relay) = node.log_relay.take() {
            // The runtime is closed, so the relay has its last lines and ends.
            let _ = relay.join();
        }
        node.logger.log(SERF_LOG_DEBUG, || {
            format!("node {} released", node.serf.name())
        });
        drop(node);
        Ok(())
    });
}

/// Announces that a failed member left; with `prune` it is erased from every member list
/// (`serf force-leave -prune`). `node` is borrowed. Errors: SERF_ERR_NULL, SERF_ERR_UTF8,
/// SERF_ERR_NOT_FOUND (unknown member), SERF_ERR_STOPPED.
#[no_mangle]
pub extern "C" fn serf_force_leave(
    serf: *const serf_t,
    node: *const c_char,
    prune: bool,
) -> serf_status {
    on_node(serf, "serf_force_leave", |n| {
        n.active()?;
        // SAFETY: NULL or a C string borrowed for this call.
        let name = unsafe { str_arg(node, "node") }?;
        Ok(n.serf.force_leave(name, prune)?)
    })
}

/// Sets (or replaces) one of this node's tags and gossips the change; both strings are copied.
/// Errors: SERF_ERR_NULL, SERF_ERR_UTF8, SERF_ERR_INVALID (empty key), SERF_ERR_TOO_LARGE (the
/// encoded tags exceed 512 bytes; nothing changes), SERF_ERR_STOPPED.
#[no_mangle]
pub extern "C" fn serf_set_tag(
    serf: *const serf_t,
    key: *const c_char,
    value: *const c_char,
) -> serf_status {
    on_node(serf, "serf_set_tag", |n| {
        n.active()?;
        // SAFETY: NULL or C strings borrowed for this call.
        let (key, value) = unsafe { (str_arg(key, "key")?, str_arg(value, "value")?) };
        if key.is_empty() {
            return Err(Fail::invalid("the tag key is empty"));
        }
        let (key, value) = (key.to_string(), value.to_string());
        Ok(n.serf.update_tags(move |tags| {
            tags.insert(key, value);
        })?)
    })
}

/// Deletes one of this node's tags (no error if it was not set) and gossips the change.
/// Errors: SERF_ERR_NULL, SERF_ERR_UTF8, SERF_ERR_STOPPED.
#[no_mangle]
pub extern "C" fn serf_delete_tag(serf: *const serf_t, key: *const c_char) -> serf_status {
    on_node(serf, "serf_delete_tag", |n| {
        n.active()?;
        // SAFETY: NULL or a C string borrowed for this call.
        let key = unsafe { str_arg(key, "key") }?.to_string();
        Ok(n.serf.update_tags(move |tags| {
            tags.remove(&key);
        })?)
    })
}

/// Sends a user event to every member, this node included (`serf event`). `name` is a C string,
/// `payload` `len` bytes (NULL allowed when `len` is 0); both are copied. With `coalesce`, nodes
/// that coalesce user events may merge it with later events of the same name. Errors:
/// SERF_ERR_NULL, SERF_ERR_UTF8, SERF_ERR_TOO_LARGE (the encoded event message, about 30 bytes
/// more than name + payload, over the 512-byte limit: a 4-byte name leaves 478 bytes of payload,
/// as in Go), SERF_ERR_STOPPED (after leave/shutdown).
#[no_mangle]
pub extern "C" fn serf_send_event(
    serf: *const serf_t,
    name: *const c_char,
    payload: *const u8,
    len: usize,
    coalesce: bool,
) -> serf_status {
    on_node(serf, "serf_send_event", |n| {
        n.active()?;
        // SAFETY: NULL or a C string / `len` readable bytes, borrowed for this call.
        let (name, payload) =
            unsafe { (str_arg(name, "name")?, bytes_arg(payload, len, "payload")?) };
        Ok(n.serf.user_event(name, payload, coalesce)?)
    })
}

/// The port the node's sockets are bound to (useful after binding port 0), into `*port`.
/// Errors: SERF_ERR_NULL. Works after shutdown.
#[no_mangle]
pub extern "C" fn serf_local_port(serf: *const serf_t, port: *mut u16) -> serf_status {
    on_node(serf, "serf_local_port", |n| {
        out_arg(port, "port")?;
        // SAFETY: checked non-NULL.
        unsafe { *port = n.serf.local_addr().port() };
        Ok(())
    })
}
