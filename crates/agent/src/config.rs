//! The agent's configuration: HashiCorp's defaults, then JSON config files in the order given (a
//! directory contributes its `*.json` files in lexical order), then command-line flags. A later
//! layer overrides an earlier one, except that `event_handlers`, `start_join` and `retry_join`
//! accumulate and `tags` merge key by key. Unknown keys in a file are an error, as in Go.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serf::api::SizeLimits;
use thiserror::Error;

use super::gojson::{self, Field};
use super::handlers::DEFAULT_QUEUE_BYTES;
use super::{duration, gotext};

/// The port used when an address gives none.
pub const DEFAULT_BIND_PORT: u16 = 7946;

/// Why the configuration cannot be used. Messages follow HashiCorp's agent.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// A file or directory that cannot be opened, with Go's `os.PathError` text.
    #[error("Error reading '{}': {}", path.display(), gotext::path_error("open", &path.display().to_string(), source))]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("Error decoding '{}': {message}", path.display())]
    Decode { path: PathBuf, message: String },
    #[error("Invalid tag: '{0}'")]
    Tag(String),
    #[error("{0}")]
    Invalid(String),
}

/// Every setting of `serf agent`, after layering.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub node_name: String,
    pub role: String,
    pub disable_coordinates: bool,
    pub tags: BTreeMap<String, String>,
    pub tags_file: String,
    pub bind: String,
    pub advertise: String,
    pub encrypt_key: String,
    pub keyring_file: String,
    pub log_level: String,
    pub rpc_addr: String,
    pub rpc_auth: String,
    /// Where the HTTP view listens (`/metrics`, `/v1/...`, the page); empty: off.
    pub http_addr: String,
    pub protocol: i64,
    pub replay_on_join: bool,
    pub query_response_size_limit: usize,
    pub query_size_limit: usize,
    pub user_event_size_limit: usize,
    pub start_join: Vec<String>,
    pub event_handlers: Vec<String>,
    /// Ours (HashiCorp's agent has no such bound): bytes that pending invocations of the
    /// event-handler scripts may hold, per lane (member and user events; queries), before new
    /// ones are dropped and counted in `handler_drops`. Read at start.
    pub event_handler_queue_bytes: usize,
    pub profile: String,
    pub snapshot_path: String,
    pub leave_on_terminate: bool,
    pub skip_leave_on_interrupt: bool,
    pub discover: String,
    pub interface: String,
    pub mdns: MdnsConfig,
    pub reconnect_interval: Option<Duration>,
    pub reconnect_timeout: Option<Duration>,
    pub tombstone_timeout: Option<Duration>,
    pub disable_name_resolution: bool,
    pub enable_syslog: bool,
    pub syslog_facility: String,
    pub retry_join: Vec<String>,
    pub retry_max_attempts: i64,
    pub retry_interval: Duration,
    pub rejoin_after_leave: bool,
    pub enable_compression: bool,
    pub statsite_addr: String,
    pub statsd_addr: String,
    pub broadcast_timeout: Duration,
}

impl Default for Config {
    /// HashiCorp's `DefaultConfig()`.
    fn default() -> Config {
        Config {
            node_name: String::new(),
            role: String::new(),
            disable_coordinates: false,
            tags: BTreeMap::new(),
            tags_file: String::new(),
            bind: "0.0.0.0".into(),
            advertise: String::new(),
            encrypt_key: String::new(),
            keyring_file: String::new(),
            log_level: "INFO".into(),
            rpc_addr: "127.0.0.1:7373".into(),
            rpc_auth: String::new(),
            http_addr: String::new(),
            protocol: 5,
            replay_on_join: false,
            query_response_size_limit: SizeLimits::default().query_response,
            query_size_limit: SizeLimits::default().query,
            user_event_size_limit: SizeLimits::default().user_event,
            start_join: Vec::new(),
            event_handlers: Vec::new(),
            event_handler_queue_bytes: DEFAULT_QUEUE_BYTES,
            profile: "lan".into(),
            snapshot_path: String::new(),
            leave_on_terminate: false,
            skip_leave_on_interrupt: false,
            discover: String::new(),
            interface: String::new(),
            mdns: MdnsConfig::default(),
            reconnect_interval: None,
            reconnect_timeout: None,
            tombstone_timeout: None,
            disable_name_resolution: false,
            enable_syslog: false,
            syslog_facility: "LOCAL0".into(),
            retry_join: Vec::new(),
            retry_max_attempts: 0,
            retry_interval: Duration::from_secs(30),
            rejoin_after_leave: false,
            enable_compression: true,
            statsite_addr: String::new(),
            statsd_addr: String::new(),
            broadcast_timeout: Duration::from_secs(5),
        }
    }
}

/// One layer: a config file or the command line. Absent values leave the layer below alone.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    pub node_name: Option<String>,
    pub role: Option<String>,
    pub disable_coordinates: Option<bool>,
    pub tags: Option<BTreeMap<String, String>>,
    pub tags_file: Option<String>,
    pub bind: Option<String>,
    pub advertise: Option<String>,
    pub encrypt_key: Option<String>,
    pub keyring_file: Option<String>,
    pub log_level: Option<String>,
    pub rpc_addr: Option<String>,
    pub rpc_auth: Option<String>,
    pub http_addr: Option<String>,
    pub protocol: Option<i64>,
    pub replay_on_join: Option<bool>,
    pub query_response_size_limit: Option<i64>,
    pub query_size_limit: Option<i64>,
    pub user_event_size_limit: Option<i64>,
    pub start_join: Option<Vec<String>>,
    pub event_handlers: Option<Vec<String>>,
    pub event_handler_queue_bytes: Option<i64>,
    pub profile: Option<String>,
    pub snapshot_path: Option<String>,
    pub leave_on_terminate: Option<bool>,
    pub skip_leave_on_interrupt: Option<bool>,
    pub discover: Option<String>,
    pub interface: Option<String>,
    pub mdns: Option<MdnsLayer>,
    pub reconnect_interval: Option<String>,
    pub reconnect_timeout: Option<String>,
    pub tombstone_timeout: Option<String>,
    pub disable_name_resolution: Option<bool>,
    pub enable_syslog: Option<bool>,
    pub syslog_facility: Option<String>,
    pub retry_join: Option<Vec<String>>,
    pub retry_max_attempts: Option<i64>,
    pub retry_interval: Option<String>,
    pub rejoin_after_leave: Option<bool>,
    pub enable_compression: Option<bool>,
    pub statsite_addr: Option<String>,
    pub statsd_addr: Option<String>,
    pub broadcast_timeout: Option<String>,
    /// Parsed for compatibility; HashiCorp's agent ignores it as well.
    pub validate_node_names: Option<bool>,
    /// Parsed for compatibility; the key is the Go field name, as serf 0.11 gives it no other.
    /// It picks the msgpack encoding of time values in RPC responses, which carry none, and
    /// HashiCorp's merge drops it before its RPC server could see it.
    #[serde(rename = "MsgpackUseNewTimeFormat")]
    pub msgpack_use_new_time_format: Option<bool>,
}

/// The `mdns` block of a config file (serf 0.11), and the `-mdns-*` flags.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MdnsLayer {
    pub interface: Option<String>,
    pub disable_ipv4: Option<bool>,
    pub disable_ipv6: Option<bool>,
}

/// Where `-discover` speaks mDNS (serf 0.11's `MDNSConfig`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MdnsConfig {
    /// The one interface to use; empty: `-iface`'s ([`Config::mdns_in_effect`]), else every
    /// interface.
    pub interface: String,
    pub disable_ipv4: bool,
    pub disable_ipv6: bool,
}

impl Config {
    /// Lays `layer` over this configuration.
    pub fn merge(&mut self, layer: &Layer) -> Result<(), ConfigError> {
        fn set<T: Clone>(target: &mut T, value: &Option<T>) {
            if let Some(v) = value {
                *target = v.clone();
            }
        }
        fn set_nonempty(target: &mut String, value: &Option<String>) {
            if let Some(v) = value.as_ref().filter(|v| !v.is_empty()) {
                *target = v.clone();
            }
        }
        /// A duration overrides only when it is not zero, as in HashiCorp's merge. HashiCorp's
        /// agent takes a negative one too (its timers then fire at once): here it is the
        /// shortest the library takes, a millisecond.
        fn set_duration(
            target: &mut Option<Duration>,
            value: &Option<String>,
        ) -> Result<(), ConfigError> {
            if let Some(text) = value.as_ref().filter(|v| !v.is_empty()) {
                match duration::parse_signed(text).map_err(ConfigError::Invalid)? {
                    0 => {}
                    ns if ns < 0 => *target = Some(Duration::from_millis(1)),
                    ns => *target = Some(Duration::from_nanos(ns as u64)),
                }
            }
            Ok(())
        }
        /// A lower-bounded duration: zero leaves it alone, a negative one is as low as it gets
        /// (the bound then applies, with its warning, as in HashiCorp's agent).
        fn set_bounded(target: &mut Duration, value: &Option<String>) -> Result<(), ConfigError> {
            if let Some(text) = value.as_ref().filter(|v| !v.is_empty()) {
                match duration::parse_signed(text).map_err(ConfigError::Invalid)? {
                    0 => {}
                    ns => *target = Duration::from_nanos(ns.max(0) as u64),
                }
            }
            Ok(())
        }
        set_nonempty(&mut self.node_name, &layer.node_name);
        set_nonempty(&mut self.role, &layer.role);
        set(&mut self.disable_coordinates, &layer.disable_coordinates);
        if let Some(tags) = &layer.tags {
            self.tags
                .extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        set_nonempty(&mut self.tags_file, &layer.tags_file);
        set_nonempty(&mut self.bind, &layer.bind);
        set_nonempty(&mut self.advertise, &layer.advertise);
        set_nonempty(&mut self.encrypt_key, &layer.encrypt_key);
        set_nonempty(&mut self.keyring_file, &layer.keyring_file);
        set_nonempty(&mut self.log_level, &layer.log_level);
        set_nonempty(&mut self.rpc_addr, &layer.rpc_addr);
        set_nonempty(&mut self.rpc_auth, &layer.rpc_auth);
        set_nonempty(&mut self.http_addr, &layer.http_addr);
        if let Some(p) = layer.protocol.filter(|p| *p > 0) {
            self.protocol = p;
        }
        set(&mut self.replay_on_join, &layer.replay_on_join);
        for (target, value) in [
            (
                &mut self.query_response_size_limit,
                layer.query_response_size_limit,
            ),
            (&mut self.query_size_limit, layer.query_size_limit),
            (&mut self.user_event_size_limit, layer.user_event_size_limit),
            (
                &mut self.event_handler_queue_bytes,
                layer.event_handler_queue_bytes,
            ),
        ] {
            // As in HashiCorp's merge, any value but zero counts; a negative limit (which
            // refuses every message) is kept as a limit of zero, which refuses them too.
            if let Some(v) = value.filter(|v| *v != 0) {
                *target = usize::try_from(v).unwrap_or(0);
            }
        }
        for (target, value) in [
            (&mut self.start_join, &layer.start_join),
            (&mut self.event_handlers, &layer.event_handlers),
            (&mut self.retry_join, &layer.retry_join),
        ] {
            target.extend(value.iter().flatten().cloned());
        }
        set_nonempty(&mut self.profile, &layer.profile);
        set_nonempty(&mut self.snapshot_path, &layer.snapshot_path);
        set(&mut self.leave_on_terminate, &layer.leave_on_terminate);
        set(
            &mut self.skip_leave_on_interrupt,
            &layer.skip_leave_on_interrupt,
        );
        set_nonempty(&mut self.discover, &layer.discover);
        set_nonempty(&mut self.interface, &layer.interface);
        if let Some(mdns) = &layer.mdns {
            set_nonempty(&mut self.mdns.interface, &mdns.interface);
            set(&mut self.mdns.disable_ipv4, &mdns.disable_ipv4);
            set(&mut self.mdns.disable_ipv6, &mdns.disable_ipv6);
        }
        set_duration(&mut self.reconnect_interval, &layer.reconnect_interval)?;
        set_duration(&mut self.reconnect_timeout, &layer.reconnect_timeout)?;
        set_duration(&mut self.tombstone_timeout, &layer.tombstone_timeout)?;
        set(
            &mut self.disable_name_resolution,
            &layer.disable_name_resolution,
        );
        set(&mut self.enable_syslog, &layer.enable_syslog);
        set_nonempty(&mut self.syslog_facility, &layer.syslog_facility);
        if let Some(n) = layer.retry_max_attempts.filter(|n| *n != 0) {
            self.retry_max_attempts = n;
        }
        set_bounded(&mut self.retry_interval, &layer.retry_interval)?;
        set(&mut self.rejoin_after_leave, &layer.rejoin_after_leave);
        set(&mut self.enable_compression, &layer.enable_compression);
        set_nonempty(&mut self.statsite_addr, &layer.statsite_addr);
        set_nonempty(&mut self.statsd_addr, &layer.statsd_addr);
        set_bounded(&mut self.broadcast_timeout, &layer.broadcast_timeout)?;
        Ok(())
    }

    /// The mDNS settings in effect: without `mdns.interface`, the `-iface` one (HashiCorp's
    /// `MDNSNetworkInterface`).
    pub fn mdns_in_effect(&self) -> MdnsConfig {
        let mut mdns = self.mdns.clone();
        if mdns.interface.is_empty() {
            mdns.interface.clone_from(&self.interface);
        }
        mdns
    }

    /// Reads `-config-file`/`-config-dir` paths in order and lays each file over this config.
    pub fn merge_paths(&mut self, paths: &[String]) -> Result<(), ConfigError> {
        for path in paths {
            let path = Path::new(path);
            let read_err = |source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            };
            if !fs::metadata(path).map_err(read_err)?.is_dir() {
                self.merge(&read_layer(path)?)?;
                continue;
            }
            let mut files: Vec<PathBuf> = fs::read_dir(path)
                .map_err(read_err)?
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().map(|t| !t.is_dir()).unwrap_or(false))
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            files.sort();
            for file in files {
                self.merge(&read_layer(&file)?)?;
            }
        }
        Ok(())
    }

    /// Fills what the layers left open and applies HashiCorp's lower bounds, returning the
    /// warnings the agent prints.
    pub fn finish(&mut self) -> Result<Vec<String>, ConfigError> {
        let mut warnings = Vec::new();
        if self.node_name.is_empty() {
            self.node_name = hostname()
                .map_err(|e| ConfigError::Invalid(format!("Error determining hostname: {e}")))?;
        }
        if !self.role.is_empty() {
            warnings.push("Deprecation warning: 'Role' has been replaced with 'Tags'".into());
            self.tags.insert("role".into(), self.role.clone());
        }
        if self.retry_interval < Duration::from_secs(1) {
            self.retry_interval = Duration::from_secs(1);
            warnings.push("Warning: 'RetryInterval' is too low. Setting to 1s".into());
        }
        if self.broadcast_timeout < Duration::from_secs(1) {
            self.broadcast_timeout = Duration::from_secs(1);
            warnings.push("Warning: 'BroadcastTimeout' is too low. Setting to 1s".into());
        }
        if self.rejoin_after_leave && self.snapshot_path.is_empty() {
            warnings.push("Warning: 'RejoinAfterLeave' enabled without snapshot file".into());
        }
        Ok(warnings)
    }
}

/// HashiCorp's `Config` as its reader sees it: keys and Go types, in its field order (which
/// is the order of its errors).
const CONFIG_FIELDS: &[(&str, Field)] = &[
    ("node_name", Field::Str),
    ("role", Field::Str),
    ("disable_coordinates", Field::Bool),
    ("tags", Field::StrMap),
    ("tags_file", Field::Str),
    ("bind", Field::Str),
    ("advertise", Field::Str),
    ("encrypt_key", Field::Str),
    ("keyring_file", Field::Str),
    ("log_level", Field::Str),
    ("rpc_addr", Field::Str),
    ("rpc_auth", Field::Str),
    ("http_addr", Field::Str),
    ("protocol", Field::Int),
    ("replay_on_join", Field::Bool),
    ("query_response_size_limit", Field::Int),
    ("query_size_limit", Field::Int),
    ("user_event_size_limit", Field::Int),
    ("event_handler_queue_bytes", Field::Int),
    ("start_join", Field::StrList),
    ("event_handlers", Field::StrList),
    ("profile", Field::Str),
    ("snapshot_path", Field::Str),
    ("leave_on_terminate", Field::Bool),
    ("skip_leave_on_interrupt", Field::Bool),
    ("discover", Field::Str),
    (
        "mdns",
        Field::Struct(
            "agent.MDNSConfig",
            &[
                ("interface", Field::Str),
                ("disable_ipv4", Field::Bool),
                ("disable_ipv6", Field::Bool),
            ],
        ),
    ),
    ("interface", Field::Str),
    ("reconnect_interval", Field::Str),
    ("reconnect_timeout", Field::Str),
    ("tombstone_timeout", Field::Str),
    ("disable_name_resolution", Field::Bool),
    ("enable_syslog", Field::Bool),
    ("syslog_facility", Field::Str),
    ("retry_join", Field::StrList),
    ("retry_max_attempts", Field::Int),
    ("retry_interval", Field::Str),
    ("rejoin_after_leave", Field::Bool),
    ("enable_compression", Field::Bool),
    ("statsite_addr", Field::Str),
    ("statsd_addr", Field::Str),
    ("broadcast_timeout", Field::Str),
    ("validate_node_names", Field::Bool),
    ("MsgpackUseNewTimeFormat", Field::Bool),
];

/// Decodes one JSON config file.
pub fn read_layer(path: &Path) -> Result<Layer, ConfigError> {
    let text = fs::read(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    decode_layer(path, &text)
}

/// Decodes the contents of the config file at `path` (named in errors).
pub(crate) fn decode_layer(path: &Path, text: &[u8]) -> Result<Layer, ConfigError> {
    let decode = |message: String| ConfigError::Decode {
        path: path.to_path_buf(),
        message,
    };
    // HashiCorp's reader decodes the first JSON value (Go's syntax errors), then fills its
    // struct with mapstructure (its type errors, and its leniency).
    gojson::check_first_value(text).map_err(decode)?;
    let mut stream = serde_json::Deserializer::from_slice(text).into_iter::<serde_json::Value>();
    let raw = match stream.next() {
        Some(Ok(raw)) => raw,
        Some(Err(e)) => return Err(decode(e.to_string())),
        None => return Err(decode("EOF".into())),
    };
    let mapped = gojson::map_struct(raw, "agent.Config", CONFIG_FIELDS).map_err(decode)?;
    let layer: Layer = serde_json::from_value(mapped).map_err(|e| decode(e.to_string()))?;
    // Its durations are parsed as it reads the file.
    for text in [
        &layer.reconnect_interval,
        &layer.reconnect_timeout,
        &layer.tombstone_timeout,
        &layer.retry_interval,
        &layer.broadcast_timeout,
    ]
    .into_iter()
    .flatten()
    .filter(|t| !t.is_empty())
    {
        duration::parse_signed(text).map_err(decode)?;
    }
    Ok(layer)
}

/// `key=value` pairs from repeated `-tag` flags.
pub fn parse_tags(pairs: &[String]) -> Result<BTreeMap<String, String>, ConfigError> {
    pairs
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(ConfigError::Tag(pair.clone())),
        })
        .collect()
}

/// HashiCorp's `AddrParts`: `host[:port]` (IPv6 as `[::1]` or `[::1]:port`) as an IP and a
/// port, the default port when none is given, host names resolved as Go's `ResolveTCPAddr`
/// resolves them. Errors are Go's (`address ::1: too many colons in address`, `lookup x on
/// 10.0.0.53:53: no such host`).
pub fn addr_parts(address: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    let mut check = address.to_string();
    if let Err(e) = gotext::split_host_port(&check) {
        if !e.ends_with("missing port in address") {
            return Err(e);
        }
        check = format!("{check}:{DEFAULT_BIND_PORT}");
    }
    let (ip, port) = gotext::resolve_tcp_addr(&check)?;
    Ok(SocketAddr::new(
        ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        port,
    ))
}

fn hostname() -> std::io::Result<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    Ok(String::from_utf8_lossy(&buf[..end]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(json: &str) -> Layer {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn later_layers_override_lists_accumulate_and_tags_merge() {
        let mut c = Config::default();
        c.merge(&layer(
            r#"{"node_name":"a","tags":{"role":"web","dc":"east"},"event_handlers":["x.sh"],
                "start_join":["127.0.0.1:1"],"retry_interval":"10s","reconnect_timeout":"1h"}"#,
        ))
        .unwrap();
        c.merge(&layer(
            r#"{"node_name":"b","tags":{"dc":"west"},"event_handlers":["y.sh"],"protocol":0}"#,
        ))
        .unwrap();
        assert_eq!(c.node_name, "b");
        assert_eq!(c.tags["role"], "web");
        assert_eq!(c.tags["dc"], "west");
        assert_eq!(c.event_handlers, ["x.sh", "y.sh"]);
        assert_eq!(c.start_join, ["127.0.0.1:1"]);
        assert_eq!(c.retry_interval, Duration::from_secs(10));
        assert_eq!(c.reconnect_timeout, Some(Duration::from_secs(3600)));
        assert_eq!(c.protocol, 5, "zero leaves the default, as Go's merge does");
    }

    #[test]
    fn the_handler_queue_bound_is_a_config_key() {
        let mut c = Config::default();
        assert_eq!(c.event_handler_queue_bytes, 128 * 1024 * 1024);
        c.merge(&layer(r#"{"event_handler_queue_bytes":1048576}"#))
            .unwrap();
        assert_eq!(c.event_handler_queue_bytes, 1 << 20);
        c.merge(&layer(r#"{"event_handler_queue_bytes":0}"#))
            .unwrap();
        assert_eq!(c.event_handler_queue_bytes, 1 << 20, "zero leaves it alone");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        assert!(serde_json::from_str::<Layer>(r#"{"nod_name":"x"}"#).is_err());
        assert!(serde_json::from_str::<Layer>(r#"{"protocol":"five"}"#).is_err());
        let mut c = Config::default();
        let err = c.merge(&layer(r#"{"retry_interval":"soon"}"#)).unwrap_err();
        assert!(err.to_string().contains("invalid duration"), "{err}");
    }

    #[test]
    fn the_mdns_block_layers_and_falls_back_to_the_bind_interface() {
        let mut c = Config::default();
        assert_eq!(c.mdns_in_effect(), MdnsConfig::default());
        c.merge(&layer(
            r#"{"interface":"eth0","mdns":{"disable_ipv6":true}}"#,
        ))
        .unwrap();
        let eth0 = MdnsConfig {
            interface: "eth0".into(),
            disable_ipv4: false,
            disable_ipv6: true,
        };
        assert_eq!(c.mdns_in_effect(), eth0);
        assert_eq!(c.mdns.interface, "", "the fallback is not stored");
        c.merge(&layer(
            r#"{"mdns":{"interface":"eth1","disable_ipv4":true},"MsgpackUseNewTimeFormat":true}"#,
        ))
        .unwrap();
        c.merge(&layer(r#"{"mdns":null}"#)).unwrap();
        let eth1 = MdnsConfig {
            interface: "eth1".into(),
            disable_ipv4: true,
            disable_ipv6: true,
        };
        assert_eq!((&c.mdns, c.mdns_in_effect()), (&eth1, eth1.clone()));
        for bad in [
            r#"{"mdns":{"iface":"lo"}}"#,
            r#"{"mdns":{"disable_ipv4":"yes"}}"#,
            r#"{"mdns":"lo"}"#,
            r#"{"msgpack_use_new_time_format":true}"#,
        ] {
            assert!(serde_json::from_str::<Layer>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_config_dir_is_read_in_lexical_order_json_only() {
        let dir = std::env::temp_dir().join(format!("serf-config-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("b.json"), r#"{"node_name":"second"}"#).unwrap();
        fs::write(
            dir.join("a.json"),
            r#"{"node_name":"first","log_level":"debug"}"#,
        )
        .unwrap();
        fs::write(dir.join("c.txt"), "not json").unwrap();
        let mut c = Config::default();
        c.merge_paths(&[dir.to_string_lossy().into_owned()])
            .unwrap();
        assert_eq!(
            (c.node_name.as_str(), c.log_level.as_str()),
            ("second", "debug")
        );
        fs::write(dir.join("d.json"), "{").unwrap();
        let err = c
            .merge_paths(&[dir.to_string_lossy().into_owned()])
            .unwrap_err();
        assert!(err.to_string().starts_with("Error decoding"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
        let err = c
            .merge_paths(&[dir.to_string_lossy().into_owned()])
            .unwrap_err();
        assert!(err.to_string().starts_with("Error reading"), "{err}");
    }

    #[test]
    fn finish_applies_bounds_and_role() {
        let mut c = Config {
            role: "web".into(),
            retry_interval: Duration::from_millis(10),
            ..Config::default()
        };
        let warnings = c.finish().unwrap();
        assert_eq!(c.tags["role"], "web");
        assert_eq!(c.retry_interval, Duration::from_secs(1));
        assert_eq!(warnings.len(), 2);
        assert!(!c.node_name.is_empty());
    }

    #[test]
    fn addresses_take_the_default_port() {
        for (given, meant) in [
            ("127.0.0.1", "127.0.0.1:7946"),
            ("127.0.0.1:5000", "127.0.0.1:5000"),
            ("[::1]", "[::1]:7946"),
            ("[::1]:5001", "[::1]:5001"),
        ] {
            assert_eq!(addr_parts(given).unwrap().to_string(), meant);
        }
        for (given, error) in [
            ("::1", "address ::1: too many colons in address"),
            ("127.0.0.1:99999", "address 99999: invalid port"),
            ("[::1", "address [::1: missing ']' in address"),
        ] {
            assert_eq!(addr_parts(given).unwrap_err(), error);
        }
        assert_eq!(parse_tags(&["a=b=c".into()]).unwrap()["a"], "b=c");
        assert!(parse_tags(&["=x".into()]).is_err());
    }
}
