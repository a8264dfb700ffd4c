//! `serf_config_t`: everything a node is created with.

use std::ffi::{c_char, c_void};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::log::{serf_drop_callback, serf_log_callback, Logger, SERF_LOG_DEBUG};
use super::status::{bytes_arg, guard, handle_mut, out_arg, release, serf_status, str_arg, Fail};
use crate::api::Profile;
use crate::api::{KeyringFileError, PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN};
use crate::api::{Options, DEFAULT_PORT, MAX_COUNT, MAX_MS};

/// HashiCorp's LAN timing (`memberlist.DefaultLANConfig`), the default.
pub const SERF_PROFILE_LAN: u32 = 0;
/// WAN timing (`DefaultWANConfig`).
pub const SERF_PROFILE_WAN: u32 = 1;
/// Loopback timing (`DefaultLocalConfig`).
pub const SERF_PROFILE_LOCAL: u32 = 2;

/// Tuning knobs for `serf_config_set_tuning` (durations in milliseconds, the rest counts):
/// the ids of `serf::api::Tuning`'s table, which a test holds this header against.
pub const SERF_TUNE_PROBE_INTERVAL_MS: u32 = 1;
pub const SERF_TUNE_PROBE_TIMEOUT_MS: u32 = 2;
pub const SERF_TUNE_GOSSIP_INTERVAL_MS: u32 = 3;
pub const SERF_TUNE_GOSSIP_NODES: u32 = 4;
pub const SERF_TUNE_GOSSIP_TO_THE_DEAD_MS: u32 = 5;
pub const SERF_TUNE_INDIRECT_CHECKS: u32 = 6;
pub const SERF_TUNE_RETRANSMIT_MULT: u32 = 7;
pub const SERF_TUNE_SUSPICION_MULT: u32 = 8;
pub const SERF_TUNE_SUSPICION_MAX_TIMEOUT_MULT: u32 = 9;
/// 0 disables periodic push/pull.
pub const SERF_TUNE_PUSH_PULL_INTERVAL_MS: u32 = 10;
pub const SERF_TUNE_TCP_TIMEOUT_MS: u32 = 11;
pub const SERF_TUNE_REAP_INTERVAL_MS: u32 = 12;
pub const SERF_TUNE_RECONNECT_INTERVAL_MS: u32 = 13;
/// Failed members are reaped after this.
pub const SERF_TUNE_RECONNECT_TIMEOUT_MS: u32 = 14;
/// Left members are reaped after this.
pub const SERF_TUNE_TOMBSTONE_TIMEOUT_MS: u32 = 15;
pub const SERF_TUNE_BROADCAST_TIMEOUT_MS: u32 = 16;
pub const SERF_TUNE_LEAVE_PROPAGATE_DELAY_MS: u32 = 17;
/// libserf's: more peers a gossip round reaches while a backlog fills its packets (default 9;
/// 0 gossips exactly as Go does).
pub const SERF_TUNE_GOSSIP_BACKLOG_NODES: u32 = 18;

/// How to create a node. Opaque; create with `serf_config_new`, release with `serf_config_free`.
/// A config is not thread-safe: do not use one config from two threads at once. It may be
/// reused for several nodes and freed right after `serf_create`.
pub struct serf_config_t {
    pub(crate) options: Options,
    pub(crate) keyring_file: Option<PathBuf>,
    pub(crate) logger: Logger,
}

fn config<'a>(cfg: *mut serf_config_t) -> Result<&'a mut serf_config_t, Fail> {
    // SAFETY: the caller passes NULL or a live config (documented on every function).
    unsafe { handle_mut(cfg, "config") }
}

/// The body of every setter: `set` runs on a live config, inside [`guard`].
fn configure(
    cfg: *mut serf_config_t,
    set: impl FnOnce(&mut serf_config_t) -> Result<(), Fail>,
) -> serf_status {
    guard(|| set(config(cfg)?))
}

/// The body of a setter taking one C string: `set` gets the config and the checked text.
fn configure_str(
    cfg: *mut serf_config_t,
    arg: *const c_char,
    what: &str,
    set: impl FnOnce(&mut serf_config_t, &str) -> Result<(), Fail>,
) -> serf_status {
    guard(|| {
        let cfg = config(cfg)?;
        // SAFETY: the caller passes NULL or a NUL-terminated string, borrowed for this call.
        let text = unsafe { str_arg(arg, what) }?;
        set(cfg, text)
    })
}

fn ip(text: &str) -> Result<IpAddr, Fail> {
    text.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| Fail::invalid(format!("{text:?} is not an IP address")))
}

/// Creates a config with HashiCorp's defaults: node name = the host name, bind 0.0.0.0:7946, LAN
/// profile, protocol version 4, no encryption, event queue of 1024, log level INFO without a
/// callback. On success `*out` owns a new config: free it with `serf_config_free`.
/// Thread-safe.
#[no_mangle]
pub extern "C" fn serf_config_new(out: *mut *mut serf_config_t) -> serf_status {
    guard(|| {
        out_arg(out, "out")?;
        let name = hostname();
        let cfg = Box::new(serf_config_t {
            options: Options::new(&name),
            keyring_file: None,
            logger: Logger::default(),
        });
        // SAFETY: checked non-NULL above.
        unsafe { *out = Box::into_raw(cfg) };
        Ok(())
    })
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: writes at most buf.len() bytes into our buffer.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    if rc == 0 && end > 0 {
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        "libserf".to_string()
    }
}

/// Releases a config (NULL is a no-op), dropping its log callback reference (its `drop` runs once
/// no node uses it). Nodes created from it are unaffected. Do not use `cfg` afterwards.
#[no_mangle]
pub extern "C" fn serf_config_free(cfg: *mut serf_config_t) {
    release(cfg)
}

/// Sets the node name (unique in the cluster; NUL-terminated UTF-8, copied). Errors:
/// SERF_ERR_NULL, SERF_ERR_UTF8, SERF_ERR_INVALID (empty), SERF_ERR_TOO_LARGE (over 128 bytes).
#[no_mangle]
pub extern "C" fn serf_config_set_node_name(
    cfg: *mut serf_config_t,
    name: *const c_char,
) -> serf_status {
    configure_str(cfg, name, "name", |cfg, name| {
        if name.is_empty() {
            return Err(Fail::invalid("the node name is empty"));
        }
        if name.len() > 128 {
            return Err(Fail::too_large("the node name is longer than 128 bytes"));
        }
        cfg.options.name = name.to_string();
        Ok(())
    })
}

/// Sets where to listen (UDP and TCP): an IP literal ("127.0.0.1", "::1") and a port (0 picks a
/// free one; see `serf_local_port`). The string is copied. Errors: SERF_ERR_NULL, SERF_ERR_UTF8,
/// SERF_ERR_INVALID (not an IP address).
#[no_mangle]
pub extern "C" fn serf_config_set_bind(
    cfg: *mut serf_config_t,
    addr: *const c_char,
    port: u16,
) -> serf_status {
    configure_str(cfg, addr, "addr", |cfg, addr| {
        let addr = ip(addr)?;
        cfg.options.bind = SocketAddr::new(addr, port);
        Ok(())
    })
}

/// Sets the address and port announced to peers (default: the bound address; required when
/// binding to 0.0.0.0 or ::). Port 0 means the bound port. Errors as `serf_config_set_bind`.
#[no_mangle]
pub extern "C" fn serf_config_set_advertise(
    cfg: *mut serf_config_t,
    addr: *const c_char,
    port: u16,
) -> serf_status {
    configure_str(cfg, addr, "addr", |cfg, addr| {
        let addr = ip(addr)?;
        cfg.options.advertise = Some(SocketAddr::new(addr, port));
        Ok(())
    })
}

/// Selects the timing profile: `SERF_PROFILE_LAN`, `SERF_PROFILE_WAN` or `SERF_PROFILE_LOCAL`.
/// Individual knobs set with `serf_config_set_tuning` override it, whatever the order.
/// Errors: SERF_ERR_NULL, SERF_ERR_INVALID (unknown profile).
#[no_mangle]
pub extern "C" fn serf_config_set_profile(cfg: *mut serf_config_t, profile: u32) -> serf_status {
    configure(cfg, |cfg| {
        cfg.options.profile = match profile {
            SERF_PROFILE_LAN => Profile::Lan,
            SERF_PROFILE_WAN => Profile::Wan,
            SERF_PROFILE_LOCAL => Profile::Local,
            other => return Err(Fail::invalid(format!("unknown profile {other}"))),
        };
        Ok(())
    })
}

/// Overrides one timing knob (`SERF_TUNE_*`): durations in milliseconds (at most one year),
/// counts at most 2^20 (zero only where the knob's documentation allows it; a zero count is
/// refused). Errors: SERF_ERR_NULL, SERF_ERR_INVALID (unknown knob or value out of range).
#[no_mangle]
pub extern "C" fn serf_config_set_tuning(
    cfg: *mut serf_config_t,
    knob: u32,
    value: u64,
) -> serf_status {
    configure(cfg, |cfg| {
        cfg.options
            .tuning
            .set_raw(knob, value)
            .map_err(|e| Fail::invalid(e.to_string()))
    })
}

/// Sets (or replaces) a tag the node starts with; both strings are copied. The encoded tags must
/// fit memberlist's 512-byte metadata, checked by `serf_create` (SERF_ERR_TOO_LARGE there).
/// Errors: SERF_ERR_NULL, SERF_ERR_UTF8, SERF_ERR_INVALID (empty key).
#[no_mangle]
pub extern "C" fn serf_config_set_tag(
    cfg: *mut serf_config_t,
    key: *const c_char,
    value: *const c_char,
) -> serf_status {
    configure(cfg, |cfg| {
        // SAFETY: NULL or NUL-terminated strings, borrowed for this call.
        let (key, value) = unsafe { (str_arg(key, "key")?, str_arg(value, "value")?) };
        if key.is_empty() {
            return Err(Fail::invalid("the tag key is empty"));
        }
        cfg.options.tags.insert(key.to_string(), value.to_string());
        Ok(())
    })
}

/// Removes a start-up tag. Errors: SERF_ERR_NULL, SERF_ERR_UTF8, SERF_ERR_NOT_FOUND (no such tag).
#[no_mangle]
pub extern "C" fn serf_config_delete_tag(
    cfg: *mut serf_config_t,
    key: *const c_char,
) -> serf_status {
    configure_str(cfg, key, "key", |cfg, key| {
        match cfg.options.tags.remove(key) {
            Some(_) => Ok(()),
            None => Err(Fail::new(
                serf_status::SERF_ERR_NOT_FOUND,
                format!("no tag {key:?}"),
            )),
        }
    })
}

fn check_key(key: &[u8]) -> Result<(), Fail> {
    if matches!(key.len(), 16 | 24 | 32) {
        Ok(())
    } else {
        Err(Fail::invalid(format!(
            "an encryption key is 16, 24 or 32 bytes, not {}",
            key.len()
        )))
    }
}

/// Adds an AES encryption key (16, 24 or 32 raw bytes, copied); the first key added is the
/// primary. Any key enables encryption. Errors: SERF_ERR_NULL, SERF_ERR_INVALID (length).
#[no_mangle]
pub extern "C" fn serf_config_add_key(
    cfg: *mut serf_config_t,
    key: *const u8,
    len: usize,
) -> serf_status {
    configure(cfg, |cfg| {
        // SAFETY: NULL or `len` readable bytes, borrowed for this call.
        let key = unsafe { bytes_arg(key, len, "key") }?;
        if key.is_empty() {
            return Err(Fail::null("key"));
        }
        check_key(key)?;
        cfg.options.keys.push(key.to_vec());
        Ok(())
    })
}

/// Adds an encryption key given in base64, as `serf keygen` prints it (`-encrypt=`). Errors:
/// SERF_ERR_NULL, SERF_ERR_UTF8, SERF_ERR_INVALID (not base64 or wrong length).
#[no_mangle]
pub extern "C" fn serf_config_add_key_base64(
    cfg: *mut serf_config_t,
    key: *const c_char,
) -> serf_status {
    configure_str(cfg, key, "key", |cfg, text| {
        let key = STANDARD
            .decode(text)
            .map_err(|e| Fail::invalid(format!("the key is not base64: {e}")))?;
        check_key(&key)?;
        cfg.options.keys.push(key);
        Ok(())
    })
}

/// Sets the keyring file (Go's `-keyring-file`): a JSON array of base64 keys, primary first. If it
/// exists when `serf_create` runs, its keys are loaded (after any added with `serf_config_add_key`);
/// key changes made through `serf_key_operation` are written back. The path is copied.
/// Errors: SERF_ERR_NULL, SERF_ERR_UTF8.
#[no_mangle]
pub extern "C" fn serf_config_set_keyring_file(
    cfg: *mut serf_config_t,
    path: *const c_char,
) -> serf_status {
    configure_str(cfg, path, "path", |cfg, path| {
        cfg.keyring_file = Some(PathBuf::from(path));
        Ok(())
    })
}

/// Reads a keyring file: a JSON array of base64 strings.
pub(crate) fn read_keyring_file(path: &std::path::Path) -> Result<Vec<Vec<u8>>, Fail> {
    crate::api::read_keyring_file(path).map_err(|e| match e {
        KeyringFileError::Read(io) => Fail::new(
            serf_status::SERF_ERR_IO,
            format!("cannot read {}: {io}", path.display()),
        ),
        other => Fail::invalid(format!("{}: {other}", path.display())),
    })
}

/// Sets the cluster label (memberlist 0.3+; at most 255 bytes, copied): nodes only talk to nodes
/// with the same label. Empty removes it. Errors: SERF_ERR_NULL, SERF_ERR_UTF8,
/// SERF_ERR_TOO_LARGE.
#[no_mangle]
pub extern "C" fn serf_config_set_label(
    cfg: *mut serf_config_t,
    label: *const c_char,
) -> serf_status {
    configure_str(cfg, label, "label", |cfg, label| {
        if label.len() > 255 {
            return Err(Fail::too_large("a label is at most 255 bytes"));
        }
        cfg.options.label = label.to_string();
        Ok(())
    })
}

/// Sets HashiCorp's snapshot file (Go's `-snapshot`): the clocks and known members are restored
/// from it at start and it is appended to while the node runs. NULL is refused; the path is
/// copied. Errors: SERF_ERR_NULL, SERF_ERR_UTF8.
#[no_mangle]
pub extern "C" fn serf_config_set_snapshot_path(
    cfg: *mut serf_config_t,
    path: *const c_char,
) -> serf_status {
    configure_str(cfg, path, "path", |cfg, path| {
        cfg.options.snapshot_path = Some(PathBuf::from(path));
        Ok(())
    })
}

/// Rejoin the snapshot's members even after a recorded graceful leave (`-rejoin`).
/// Errors: SERF_ERR_NULL.
#[no_mangle]
pub extern "C" fn serf_config_set_rejoin_after_leave(
    cfg: *mut serf_config_t,
    rejoin: bool,
) -> serf_status {
    configure(cfg, |cfg| {
        cfg.options.rejoin_after_leave = rejoin;
        Ok(())
    })
}

fn coalesce(period_ms: u64, quiescent_ms: u64) -> Result<Option<(Duration, Duration)>, Fail> {
    if period_ms > MAX_MS || quiescent_ms > MAX_MS {
        return Err(Fail::invalid("coalescing periods are at most a year"));
    }
    Ok((period_ms > 0 && quiescent_ms > 0).then(|| {
        (
            Duration::from_millis(period_ms),
            Duration::from_millis(quiescent_ms),
        )
    }))
}

/// Coalesces member events: collected for up to `period_ms`, delivered after `quiescent_ms`
/// without new ones (the agent uses 3000 and 1000). Zero for either disables it (the default).
/// Errors: SERF_ERR_NULL, SERF_ERR_INVALID.
#[no_mangle]
pub extern "C" fn serf_config_set_coalesce(
    cfg: *mut serf_config_t,
    period_ms: u64,
    quiescent_ms: u64,
) -> serf_status {
    configure(cfg, |cfg| {
        cfg.options.coalesce = coalesce(period_ms, quiescent_ms)?;
        Ok(())
    })
}

/// As `serf_config_set_coalesce`, for user events sent with `coalesce` true.
#[no_mangle]
pub extern "C" fn serf_config_set_user_coalesce(
    cfg: *mut serf_config_t,
    period_ms: u64,
    quiescent_ms: u64,
) -> serf_status {
    configure(cfg, |cfg| {
        cfg.options.user_coalesce = coalesce(period_ms, quiescent_ms)?;
        Ok(())
    })
}

/// Serf protocol version, 2 to 5 (the Go library's default is 4, the agent's 5).
/// Errors: SERF_ERR_NULL, SERF_ERR_INVALID.
#[no_mangle]
pub extern "C" fn serf_config_set_protocol_version(
    cfg: *mut serf_config_t,
    version: u8,
) -> serf_status {
    configure(cfg, |cfg| {
        if !(PROTOCOL_VERSION_MIN..=PROTOCOL_VERSION_MAX).contains(&version) {
            return Err(Fail::invalid(format!(
                "protocol version {version} outside [{PROTOCOL_VERSION_MIN}, {PROTOCOL_VERSION_MAX}]"
            )));
        }
        cfg.options.protocol_version = version;
        Ok(())
    })
}

/// How many events may wait unread before new ones are dropped and counted (see
/// `serf_dropped_events`); 1 to 2^20, default 1024. Errors: SERF_ERR_NULL, SERF_ERR_INVALID.
#[no_mangle]
pub extern "C" fn serf_config_set_event_queue_capacity(
    cfg: *mut serf_config_t,
    capacity: usize,
) -> serf_status {
    configure(cfg, |cfg| {
        if capacity == 0 || capacity as u64 > MAX_COUNT {
            return Err(Fail::invalid(format!(
                "capacity {capacity} outside [1, {MAX_COUNT}]"
            )));
        }
        cfg.options.event_queue_capacity = capacity;
        Ok(())
    })
}

/// Turns Vivaldi network coordinates off (`DisableCoordinates`). Errors: SERF_ERR_NULL.
#[no_mangle]
pub extern "C" fn serf_config_set_disable_coordinates(
    cfg: *mut serf_config_t,
    disable: bool,
) -> serf_status {
    configure(cfg, |cfg| {
        cfg.options.disable_coordinates = disable;
        Ok(())
    })
}

/// Messages up to this level (`SERF_LOG_ERROR` .. `SERF_LOG_DEBUG`; `SERF_LOG_OFF` silences) reach
/// the log callback. Default `SERF_LOG_INFO`. Errors: SERF_ERR_NULL, SERF_ERR_INVALID.
#[no_mangle]
pub extern "C" fn serf_config_set_log_level(cfg: *mut serf_config_t, level: u32) -> serf_status {
    configure(cfg, |cfg| {
        if level > SERF_LOG_DEBUG {
            return Err(Fail::invalid(format!("unknown log level {level}")));
        }
        cfg.logger.level = level;
        Ok(())
    })
}

/// Registers the log callback for nodes created from this config (replacing any earlier one;
/// NULL `call` removes it). Without a callback nothing is logged anywhere.
///
/// Besides the library's own messages, the callback gets HashiCorp's serf and memberlist log
/// lines (`serf: EventMemberJoin: b 127.0.0.1`, `memberlist: Suspect b has failed, no acks
/// received`, ...) at HashiCorp's levels, without the `[LEVEL]` tag (the level is `level`).
///
/// `call(ctx, level, message)` may run on any thread, including several at once (the thread of
/// the `serf_*` call being logged, the event dispatcher thread, or the node's `serf-log` thread,
/// which hands over the protocol's lines so that a slow callback never stalls gossip);
/// `message` is valid during the call only. It must not throw (C++) or call `serf_free`. `drop(ctx)` (may be NULL) runs once,
/// when neither the config nor any node created from it uses the callback any more (at the last
/// of `serf_config_free` / `serf_free`), or immediately when `call` is NULL.
/// Errors: SERF_ERR_NULL (cfg).
#[no_mangle]
pub extern "C" fn serf_config_set_log_callback(
    cfg: *mut serf_config_t,
    call: serf_log_callback,
    drop: serf_drop_callback,
    ctx: *mut c_void,
) -> serf_status {
    configure(cfg, |cfg| {
        cfg.logger.set_sink(call, drop, ctx);
        Ok(())
    })
}

/// The default gossip port, 7946.
pub const SERF_DEFAULT_PORT: u16 = 7946;
const _: () = assert!(SERF_DEFAULT_PORT == DEFAULT_PORT);
