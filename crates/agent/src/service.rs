//! The running agent: a serf node built from the agent's [`Config`], the loop that hands each
//! event to the registered handlers (scripts, RPC streams), and the operations the RPC server
//! offers, with HashiCorp's checks and log lines.

use std::collections::BTreeMap;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use thiserror::Error;

use super::config::{addr_parts, Config};
use super::log::{Level, Logger};
use super::{gojson, gotext};
use serf::api::wire::serf::Coordinate;
use serf::api::{self, Options, SizeLimits, Tuning};
use serf::api::{
    Event, KeyAggregate, KeyOp, Member, QueryParams, Tags, INTERNAL_PREFIX, PING_QUERY,
    PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN,
};
use serf::api::{LogLevel, LogLine, LogSink, Profile, UnknownProfile};

/// How many events may wait between serf and the agent's dispatcher. HashiCorp's agent uses a
/// channel of 64 that blocks serf when full; the dispatcher here never blocks, so a larger
/// queue only absorbs bursts.
const EVENT_QUEUE: usize = 4096;

/// Why the agent could not start or an operation failed. Messages follow HashiCorp's agent.
#[derive(Debug, Error)]
pub enum AgentError {
    #[error("{0}")]
    Setup(String),
    #[error("{0}")]
    Serf(#[from] api::Error),
    #[error("Queries cannot contain the '_serf_' prefix")]
    ReservedQuery,
    #[error("{0}")]
    Tags(String),
}

/// Something that reacts to every event: the script runner, each RPC stream. It must not
/// block: the dispatcher calls handlers one after the other.
pub trait EventHandler: Send + Sync {
    fn handle(&self, agent: &Agent, event: &Event);
}

/// A running agent.
pub struct Agent {
    serf: api::Serf,
    config: Config,
    logger: Logger,
    handlers: RwLock<Vec<(u64, Arc<dyn EventHandler>)>>,
    next_handler: AtomicU64,
    shutdown: Mutex<bool>,
    shutdown_cv: Condvar,
    dispatcher: Mutex<Option<JoinHandle<()>>>,
    stopping: AtomicBool,
    /// `"<event>:<name>" → script` for `serf info`, kept by whoever runs the scripts.
    handler_info: RwLock<BTreeMap<String, String>>,
    /// Events that reached the agent but not one of its consumers, per consumer kind.
    handler_drops: AtomicU64,
    stream_drops: AtomicU64,
}

/// Where an event the agent received can be dropped because its consumer is not keeping up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropSite {
    /// A script invocation, when its lane of the script runner is full.
    Handler,
    /// An RPC `stream` client, when it lags more than its buffer behind.
    Stream,
}

impl Agent {
    /// Creates the serf node (binding its sockets) and starts dispatching events. Handlers
    /// registered right after creation see every event: dispatch starts with the first one
    /// that arrives, and nothing arrives before a join. Errors read as the agent prints them.
    pub fn start(config: Config, logger: Logger) -> Result<Arc<Agent>, AgentError> {
        let bind = addr_parts(&config.bind)
            .map_err(|e| AgentError::Setup(format!("Invalid bind address: {e}")))?;
        let setup = setup(&config, bind).map_err(AgentError::Setup)?;
        Agent::create(setup, config, logger)
    }

    /// [`Agent::start`] after [`setup`]'s checks: HashiCorp's `Create` (the tags and keyring
    /// files: `Failed to setup the Serf agent: …`), then its `Start` (the node itself:
    /// `Failed to start the Serf agent: Error creating Serf: …`).
    pub fn create(setup: Setup, config: Config, logger: Logger) -> Result<Arc<Agent>, AgentError> {
        let (tags, keys) = load_files(&config, &logger)
            .map_err(|e| AgentError::Setup(format!("Failed to setup the Serf agent: {e}")))?;
        logger.info("agent: Serf agent starting");
        let serf = create_serf(setup, tags, keys, &config, &logger).map_err(|e| {
            AgentError::Setup(format!(
                "Failed to start the Serf agent: Error creating Serf: {e}"
            ))
        })?;
        let agent = Arc::new(Agent {
            serf,
            config,
            logger,
            handlers: RwLock::new(Vec::new()),
            next_handler: AtomicU64::new(1),
            shutdown: Mutex::new(false),
            shutdown_cv: Condvar::new(),
            dispatcher: Mutex::new(None),
            stopping: AtomicBool::new(false),
            handler_info: RwLock::new(BTreeMap::new()),
            handler_drops: AtomicU64::new(0),
            stream_drops: AtomicU64::new(0),
        });
        let weak = Arc::downgrade(&agent);
        let events = agent.serf.event_receiver();
        let thread = std::thread::Builder::new()
            .name("serf-agent-events".into())
            .spawn(move || dispatch_events(weak, events))
            .map_err(|e| AgentError::Setup(format!("Error starting the event loop: {e}")))?;
        *agent.dispatcher.lock().unwrap_or_else(|e| e.into_inner()) = Some(thread);
        Ok(agent)
    }

    pub fn serf(&self) -> &api::Serf {
        &self.serf
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn logger(&self) -> &Logger {
        &self.logger
    }

    /// Adds a handler; the returned id removes it.
    pub fn register(&self, handler: Arc<dyn EventHandler>) -> u64 {
        let id = self.next_handler.fetch_add(1, Ordering::Relaxed);
        self.handlers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push((id, handler));
        id
    }

    /// Counts `n` events dropped at `site` (shown by `serf info`).
    pub fn count_drops(&self, site: DropSite, n: u64) {
        let counter = match site {
            DropSite::Handler => &self.handler_drops,
            DropSite::Stream => &self.stream_drops,
        };
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn deregister(&self, id: u64) {
        self.handlers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(i, _)| *i != id);
    }

    pub fn join(&self, addrs: &[String], replay: bool) -> Result<usize, AgentError> {
        self.logger.info(format!(
            "agent: joining: [{}] replay: {replay}",
            addrs.join(" ")
        ));
        let result = self.join_addresses(addrs, !replay);
        match &result {
            Ok(n) if *n > 0 => self.logger.info(format!("agent: joined: {n} nodes")),
            Ok(_) => {}
            Err(e) => self.logger.warn(format!("agent: error joining: {e}")),
        }
        result
    }

    /// memberlist's `Join`: every address resolved as Go resolves it, each failure (to
    /// resolve, or to reach the node) listed as HashiCorp's multierror lists it, in the order
    /// of the addresses; any node reached makes it a success.
    fn join_addresses(&self, addrs: &[String], ignore_old: bool) -> Result<usize, AgentError> {
        let port = self.serf.local_addr().port();
        let mut failures: Vec<(usize, String)> = Vec::new();
        let mut targets: Vec<(usize, SocketAddr)> = Vec::new();
        let mut spelled = Vec::new();
        for (i, addr) in addrs.iter().enumerate() {
            match gotext::resolve_join_addr(addr, port) {
                Ok((name, found)) => {
                    for sa in found {
                        targets.push((i, sa));
                        spelled.push(match name {
                            Some(n) => format!("{n}/{sa}"),
                            None => sa.to_string(),
                        });
                    }
                }
                Err(e) => failures.push((i, format!("failed to resolve {addr}: {e}"))),
            }
        }
        if !spelled.is_empty() {
            match self.serf.join(&spelled, ignore_old) {
                Ok(n) if n > 0 => return Ok(n),
                Ok(_) => {}
                Err(api::Error::JoinFailed(failed)) => {
                    for reason in failed.reasons {
                        let (at, text) = join_failure(&reason, &targets);
                        failures.push((at, text));
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        if failures.is_empty() {
            return Ok(0);
        }
        failures.sort_by_key(|(i, _)| *i);
        let texts: Vec<String> = failures.into_iter().map(|(_, t)| t).collect();
        Err(AgentError::Setup(gotext::multierror(&texts)))
    }

    /// Leaves gracefully; the caller decides when to shut down.
    pub fn leave(&self) -> Result<(), AgentError> {
        self.logger
            .info("agent: requesting graceful leave from Serf");
        Ok(self.serf.leave()?)
    }

    pub fn force_leave(&self, node: &str, prune: bool) -> Result<(), AgentError> {
        if prune {
            self.logger
                .info(format!("agent: Force leaving node (prune): {node}"));
        } else {
            self.logger
                .info(format!("agent: Force leaving node: {node}"));
        }
        self.serf.force_leave(node, prune).map_err(|e| {
            self.logger
                .warn(format!("agent: failed to remove node: {e}"));
            e.into()
        })
    }

    pub fn user_event(&self, name: &str, payload: &[u8], coalesce: bool) -> Result<(), AgentError> {
        self.logger.debug(format!(
            "agent: Requesting user event send: {name}. Coalesced: {coalesce}. Payload: {:?}",
            String::from_utf8_lossy(payload)
        ));
        self.serf.user_event(name, payload, coalesce).map_err(|e| {
            self.logger
                .warn(format!("agent: failed to send user event: {e}"));
            e.into()
        })
    }

    /// Sends a query. Names starting with `_serf_` are reserved for serf's internal queries;
    /// only `_serf_ping` without a payload (what `serf reachability` sends) is let through.
    pub fn query(
        &self,
        name: &str,
        payload: Option<&[u8]>,
        params: QueryParams,
    ) -> Result<api::QueryResponse, AgentError> {
        if name.starts_with(INTERNAL_PREFIX) && (name != PING_QUERY || payload.is_some()) {
            return Err(AgentError::ReservedQuery);
        }
        let payload = payload.unwrap_or_default();
        self.logger.debug(format!(
            "agent: Requesting query send: {name}. Payload: {:?}",
            String::from_utf8_lossy(payload)
        ));
        self.serf.query(name, payload, params).map_err(|e| {
            self.logger
                .warn(format!("agent: failed to start user query: {e}"));
            e.into()
        })
    }

    /// Replaces the local tags, writing the tags file first when one is configured.
    pub fn set_tags(&self, tags: Tags) -> Result<(), AgentError> {
        if !self.config.tags_file.is_empty() {
            write_tags_file(Path::new(&self.config.tags_file), &tags).map_err(|e| {
                self.logger.error(format!("agent: {e}"));
                AgentError::Tags(e)
            })?;
        }
        Ok(self.serf.set_tags(tags)?)
    }

    pub fn key_operation(&self, op: KeyOp, key: &str) -> Result<KeyAggregate, AgentError> {
        self.logger.info(match op {
            KeyOp::Install => "agent: Initiating key installation",
            KeyOp::Use => "agent: Initiating primary key change",
            KeyOp::Remove => "agent: Initiating key removal",
            KeyOp::List => "agent: Initiating key listing",
        });
        let raw = if op == KeyOp::List {
            Vec::new()
        } else {
            gotext::base64_decode(key).map_err(AgentError::Setup)?
        };
        Ok(self.serf.key_operation(op, &raw)?)
    }

    /// The coordinate this node holds for `node` (its own for its own name).
    pub fn coordinate(&self, node: &str) -> Result<Option<Coordinate>, AgentError> {
        Ok(self.serf.cached_coordinate(node)?)
    }

    pub fn members(&self) -> Result<Vec<Member>, AgentError> {
        Ok(self.serf.members()?)
    }

    /// HashiCorp's `Agent.Stats()`: sections of string values, as `serf info` prints them.
    /// Records the event handlers `serf info` lists (at start and on reload).
    pub fn set_handler_info(&self, info: BTreeMap<String, String>) {
        *self.handler_info.write().unwrap_or_else(|e| e.into_inner()) = info;
    }

    pub fn stats(&self) -> Result<BTreeMap<String, BTreeMap<String, String>>, AgentError> {
        let event_handlers = self
            .handler_info
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let local = self.serf.local_member()?;
        let s = self.serf.stats()?;
        let mut serf: BTreeMap<String, String> = [
            ("members", s.members.to_string()),
            ("failed", s.failed.to_string()),
            ("left", s.left.to_string()),
            ("health_score", s.health_score.to_string()),
            ("member_time", s.member_time.to_string()),
            ("event_time", s.event_time.to_string()),
            ("query_time", s.query_time.to_string()),
            ("intent_queue", s.queues.intent.to_string()),
            ("event_queue", s.queues.event.to_string()),
            ("query_queue", s.queues.query.to_string()),
            ("encrypted", s.encrypted.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        if !self.config.disable_coordinates {
            serf.insert("coordinate_resets".into(), s.coordinate_resets.to_string());
            serf.insert(
                "coordinate_rejections".into(),
                s.serf.coordinate_rejections.to_string(),
            );
        }
        // The counters behind the `serf.*` and `memberlist.*` metrics, kept by the library
        // whether or not telemetry is collected (added keys; HashiCorp's above are unchanged).
        let (c, m) = (&s.serf, &s.memberlist);
        let counters: [(&str, u64); 38] = [
            ("member_joins", c.member_joins),
            ("member_flaps", c.member_flaps),
            ("member_updates", c.member_updates),
            ("member_failures", c.member_failures),
            ("member_leaves", c.member_leaves),
            ("user_events", c.user_events),
            ("queries", c.queries),
            ("query_acks", c.query_acks),
            ("query_responses", c.query_responses),
            ("query_duplicate_acks", c.query_duplicate_acks),
            ("query_duplicate_responses", c.query_duplicate_responses),
            ("msgs_sent", c.msgs_sent),
            ("msgs_received", c.msgs_received),
            ("msg_alive", m.msg_alive),
            ("msg_suspect", m.msg_suspect),
            ("msg_dead", m.msg_dead),
            ("probes", m.probes),
            ("failed_probes", m.failed_probes),
            ("degraded_probes", m.degraded_probes),
            ("degraded_timeouts", m.degraded_timeouts),
            ("gossip_rounds", m.gossip_rounds),
            ("push_pulls", m.push_pulls),
            ("push_pulls_initiated", m.push_pulls_initiated),
            ("packets_sent", m.packets_sent),
            ("packets_received", m.packets_received),
            ("bytes_sent", m.bytes_sent),
            ("bytes_received", m.bytes_received),
            ("tcp_accepts", s.runtime.streams_in),
            // Hostile or corrupt input, dropped and counted (memberlist decode failures;
            // accepted and opened gossip streams that broke, timed out or were refused).
            ("malformed", m.malformed),
            // Of those, refused for their label or encryption (`GossipVerifyIncoming`).
            ("rejected", m.rejected),
            ("tcp_inbound_failures", s.runtime.inbound_failures),
            ("tcp_stream_failures", s.runtime.stream_failures),
            // Broadcasts dropped by the queue-depth check (Go's `MaxQueueDepth`).
            ("broadcasts_pruned", c.broadcasts_pruned),
            // User events lost on the way to the scripts and streams, by where: too late for
            // the 512-entry ring (so never delivered), the library's event queue full, a
            // handler lane full, an RPC stream lagging.
            ("events_too_old", c.events_too_old),
            ("queries_too_old", c.queries_too_old),
            ("dropped_events", s.dropped_events),
            ("handler_drops", self.handler_drops.load(Ordering::Relaxed)),
            ("stream_drops", self.stream_drops.load(Ordering::Relaxed)),
        ];
        serf.extend(counters.map(|(k, v)| (k.to_string(), v.to_string())));
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let runtime = [
            ("os", std::env::consts::OS.to_string()),
            ("arch", go_arch().to_string()),
            ("version", format!("libserf-{}", env!("CARGO_PKG_VERSION"))),
            ("max_procs", cpus.to_string()),
            ("goroutines", thread_count().to_string()),
            ("cpu_count", cpus.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Ok(BTreeMap::from([
            (
                "agent".to_string(),
                BTreeMap::from([("name".to_string(), local.name)]),
            ),
            ("runtime".to_string(), runtime),
            ("serf".to_string(), serf),
            ("tags".to_string(), local.tags),
            ("event_handlers".to_string(), event_handlers),
        ]))
    }

    /// Stops the node (without leaving) and wakes everyone waiting for the shutdown.
    /// Idempotent.
    pub fn shutdown(&self) {
        let mut down = self.shutdown.lock().unwrap_or_else(|e| e.into_inner());
        if *down {
            return;
        }
        self.stopping.store(true, Ordering::SeqCst);
        self.logger.info("agent: requesting serf shutdown");
        let _ = self.serf.close();
        self.logger.info("agent: shutdown complete");
        *down = true;
        self.shutdown_cv.notify_all();
        drop(down);
        let thread = self
            .dispatcher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(t) = thread {
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }

    pub fn is_shutdown(&self) -> bool {
        *self.shutdown.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until the agent shuts down or `timeout` passes; true if it is down.
    pub fn wait_shutdown(&self, timeout: Duration) -> bool {
        let down = self.shutdown.lock().unwrap_or_else(|e| e.into_inner());
        let (down, _) = self
            .shutdown_cv
            .wait_timeout_while(down, timeout, |d| !*d)
            .unwrap_or_else(|e| e.into_inner());
        *down
    }
}

/// HashiCorp's `Event.String()`, as logged on receipt.
pub fn describe(event: &Event) -> String {
    match event {
        Event::Member { kind, .. } => kind.as_str().to_string(),
        Event::User(u) => format!("user-event: {}", u.name),
        Event::Query(q) => format!("query: {}", q.name),
        Event::Shutdown { .. } => "shutdown".to_string(),
    }
}

/// The dispatcher: takes each event from serf and gives it to every handler, until the agent
/// stops. Holds only a weak reference so a dropped agent ends it.
fn dispatch_events(agent: std::sync::Weak<Agent>, events: api::EventReceiver<Event>) {
    // Blocks without a timeout, so an idle agent's dispatcher never wakes. The queue
    // disconnects (and `recv` returns `None`) once the node has stopped and is drained.
    while let Some(event) = events.recv(None) {
        let Some(a) = agent.upgrade() else { return };
        if let Event::Shutdown { reason } = &event {
            a.logger.warn(format!(
                "agent: Serf shutdown detected, quitting ({reason})"
            ));
            let a2 = a.clone();
            std::thread::spawn(move || a2.shutdown());
            return;
        }
        a.logger
            .info(format!("agent: Received event: {}", describe(&event)));
        let handlers: Vec<Arc<dyn EventHandler>> = a
            .handlers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(_, h)| h.clone())
            .collect();
        for h in handlers {
            h.handle(&a, &event);
        }
    }
}

/// HashiCorp's `UserEventSizeLimit`: the most `user_event_size_limit` may be.
const USER_EVENT_SIZE_CEILING: usize = 9 * 1024;

/// What HashiCorp's `setupAgent` checks before it announces the start: the addresses, the
/// encryption key and the profile, with its error texts.
#[derive(Debug, Clone)]
pub struct Setup {
    pub bind: SocketAddr,
    pub advertise: Option<SocketAddr>,
    /// The decoded `-encrypt` key (empty without one).
    pub key: Vec<u8>,
    pub profile: Profile,
}

/// The checks after the bind address (and the interface, which may change it): the
/// advertise address, the encryption key (`Invalid encryption key: illegal base64 data at
/// input byte 9`) and the profile.
pub fn setup(config: &Config, bind: SocketAddr) -> Result<Setup, String> {
    let advertise = if config.advertise.is_empty() {
        None
    } else {
        Some(addr_parts(&config.advertise).map_err(|e| format!("Invalid advertise address: {e}"))?)
    };
    let key = gotext::base64_decode(&config.encrypt_key)
        .map_err(|e| format!("Invalid encryption key: {e}"))?;
    let profile: Profile = config
        .profile
        .parse()
        .map_err(|UnknownProfile(other)| format!("Unknown profile: {other}"))?;
    Ok(Setup {
        bind,
        advertise,
        key,
        profile,
    })
}

/// HashiCorp's `Create`: the tags file and the keyring file, if configured, logging what was
/// restored. Errors are the text after `Failed to setup the Serf agent: `.
fn load_files(config: &Config, logger: &Logger) -> Result<(Tags, Vec<Vec<u8>>), String> {
    let mut tags = config.tags.clone();
    if !config.tags_file.is_empty() {
        if !config.tags.is_empty() {
            return Err("Tags config not allowed while using tag files".into());
        }
        if let Some(restored) = read_tags_file(Path::new(&config.tags_file))? {
            logger.info(format!(
                "agent: Restored {} tag(s) from {}",
                restored.len(),
                config.tags_file
            ));
            tags = restored;
        }
    }
    let mut keys = Vec::new();
    if !config.keyring_file.is_empty() {
        if !config.encrypt_key.is_empty() {
            return Err("Encryption key not allowed while using a keyring".into());
        }
        keys = read_keyring(&config.keyring_file)?;
        logger.info(format!(
            "agent: Restored keyring with {} keys from {}",
            keys.len(),
            config.keyring_file
        ));
    }
    Ok((tags, keys))
}

/// HashiCorp's `loadKeyringFile`: a JSON array of base64 keys, the first one primary, each
/// 16, 24 or 32 bytes long.
fn read_keyring(path: &str) -> Result<Vec<Vec<u8>>, String> {
    fs::metadata(path).map_err(|e| gotext::path_error("stat", path, &e))?;
    let data = gotext::read_file(path).map_err(|e| format!("Failed to read keyring file: {e}"))?;
    let encoded: Vec<String> = gojson::unmarshal(&data, gojson::Target::StringList)
        .map_err(|e| format!("Failed to decode keyring file: {e}"))?;
    let keys = encoded
        .iter()
        .map(|k| {
            gotext::base64_decode(k).map_err(|e| format!("Failed to decode key from keyring: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let Some(primary) = keys.first() else {
        return Err("Keyring file contains no keys".into());
    };
    if primary.is_empty() {
        return Err("Failed to restore keyring: empty primary key not allowed".into());
    }
    if keys.iter().any(|k| !matches!(k.len(), 16 | 24 | 32)) {
        return Err("Failed to restore keyring: key size must be 16, 24 or 32 bytes".into());
    }
    Ok(keys)
}

/// HashiCorp's `Start`: the serf node, checked in the order Go's `serf.Create` and
/// `memberlist.Create` check (protocol, limits, snapshot, key, sockets). Errors are the text
/// after `Error creating Serf: `.
fn create_serf(
    setup: Setup,
    tags: Tags,
    keyring: Vec<Vec<u8>>,
    config: &Config,
    logger: &Logger,
) -> Result<api::Serf, String> {
    let protocol = config.protocol as u8;
    if protocol < PROTOCOL_VERSION_MIN {
        return Err(format!(
            "Protocol version '{protocol}' too low. Must be in range: \
             [{PROTOCOL_VERSION_MIN}, {PROTOCOL_VERSION_MAX}]"
        ));
    }
    if protocol > PROTOCOL_VERSION_MAX {
        return Err(format!(
            "Protocol version '{protocol}' too high. Must be in range: \
             [{PROTOCOL_VERSION_MIN}, {PROTOCOL_VERSION_MAX}]"
        ));
    }
    if config.user_event_size_limit > USER_EVENT_SIZE_CEILING {
        return Err(format!(
            "user event size limit exceeds limit of {USER_EVENT_SIZE_CEILING} bytes"
        ));
    }
    if !config.snapshot_path.is_empty() {
        open_snapshot(&config.snapshot_path).map_err(|e| {
            format!(
                "Failed to setup snapshot: failed to open snapshot: {}",
                gotext::path_error("open", &config.snapshot_path, &e)
            )
        })?;
    }
    let memberlist = |e: &str| format!("Failed to create memberlist: {e}");
    if !setup.key.is_empty() && !matches!(setup.key.len(), 16 | 24 | 32) {
        return Err(memberlist("key size must be 16, 24 or 32 bytes"));
    }
    let bind = setup.bind;
    let advertise = match setup.advertise {
        Some(a) => Some(a),
        None if bind.ip().is_unspecified() => Some(SocketAddr::new(
            IpAddr::V4(private_ipv4().map_err(|e| memberlist(&e))?),
            bind.port(),
        )),
        None => None,
    };
    let mut options = Options::new(&config.node_name);
    options.bind = bind;
    options.advertise = advertise;
    options.profile = setup.profile;
    options.tags = tags;
    options.keys = if setup.key.is_empty() {
        keyring
    } else {
        vec![setup.key]
    };
    options.keyring_file =
        (!config.keyring_file.is_empty()).then(|| config.keyring_file.clone().into());
    options.protocol_version = protocol;
    options.event_queue_capacity = EVENT_QUEUE;
    options.coalesce = Some((Duration::from_secs(3), Duration::from_secs(1)));
    options.user_coalesce = Some((Duration::from_secs(3), Duration::from_secs(1)));
    options.snapshot_path =
        (!config.snapshot_path.is_empty()).then(|| config.snapshot_path.clone().into());
    options.rejoin_after_leave = config.rejoin_after_leave;
    options.compression = config.enable_compression;
    options.name_conflict_resolution = !config.disable_name_resolution;
    options.disable_coordinates = config.disable_coordinates;
    options.limits = SizeLimits {
        user_event: config.user_event_size_limit,
        query: config.query_size_limit,
        query_response: config.query_response_size_limit,
    };
    options.log = Some(library_log(logger));
    options.tuning = Tuning {
        reconnect_interval: config.reconnect_interval,
        reconnect_timeout: config.reconnect_timeout,
        tombstone_timeout: config.tombstone_timeout,
        broadcast_timeout: Some(config.broadcast_timeout),
        ..Tuning::default()
    };
    api::Serf::create(options).map_err(|e| match e {
        api::Error::Bind { addr, source } => memberlist(&format!(
            "could not set up network transport: failed to obtain an address: {}",
            bind_failure(addr, &source)
        )),
        other => other.to_string(),
    })
}

/// The library's `serf:`/`memberlist:` lines into the agent's log, every level: the log filters
/// per sink and per `monitor`, as HashiCorp's agent does with its library's lines.
fn library_log(logger: &Logger) -> LogSink {
    let logger = logger.clone();
    LogSink {
        level: LogLevel::Debug,
        write: Arc::new(move |line: &LogLine| {
            let level = match line.level {
                LogLevel::Debug => Level::Debug,
                LogLevel::Info => Level::Info,
                LogLevel::Warn => Level::Warn,
                LogLevel::Error => Level::Err,
            };
            logger.log(level, &line.text);
        }),
    }
}

/// Opens the snapshot as Go's snapshotter does (read-write, appending, created 0644), only to
/// report a failure in Go's words before the library tries.
fn open_snapshot(path: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o644)
        .open(path)
        .map(drop)
}

/// memberlist's transport error for sockets that could not be bound. Go binds TCP before UDP:
/// if TCP can be bound now, it was the UDP socket that failed.
fn bind_failure(addr: SocketAddr, source: &std::io::Error) -> String {
    let (ip, port) = (addr.ip(), addr.port());
    let errno = gotext::errno_text(source);
    if std::net::TcpListener::bind(addr).is_ok() {
        format!("failed to start UDP listener on \"{ip}\" port {port}: listen udp {addr}: bind: {errno}")
    } else {
        format!("failed to start TCP listener on \"{ip}\" port {port}: listen tcp {addr}: bind: {errno}")
    }
}

/// One reason the library gave for a failed join (`stream to <addr>: <why>`) as memberlist
/// words it, with the index of the address it came from (for ordering).
fn join_failure(reason: &str, targets: &[(usize, SocketAddr)]) -> (usize, String) {
    let parsed = reason
        .strip_prefix("stream to ")
        .and_then(|r| r.split_once(": "))
        .and_then(|(addr, why)| Some((addr.parse::<SocketAddr>().ok()?, why)));
    let Some((addr, why)) = parsed else {
        return (usize::MAX, reason.to_string());
    };
    let at = targets
        .iter()
        .find(|(_, t)| *t == addr)
        .map_or(usize::MAX, |(i, _)| *i);
    let text = match why.strip_prefix("connecting: ") {
        Some(io) => format!(
            "failed to join {addr}: dial tcp {addr}: connect: {}",
            gotext::errno_words(io)
        ),
        None => format!("failed to join {addr}: {why}"),
    };
    (at, text)
}

/// The tags file, as HashiCorp's `loadTagsFile` reads it: a JSON object; a file that cannot
/// even be looked at (missing, say) means no tags yet.
pub fn read_tags_file(path: &Path) -> Result<Option<Tags>, String> {
    if fs::metadata(path).is_err() {
        return Ok(None);
    }
    let data = gotext::read_file(&path.display().to_string())
        .map_err(|e| format!("Failed to read tags file: {e}"))?;
    gojson::unmarshal(&data, gojson::Target::StringMap)
        .map(Some)
        .map_err(|e| format!("Failed to decode tags file: {e}"))
}

/// Writes the tags as indented JSON, readable by the owner only (HashiCorp writes 0600).
fn write_tags_file(path: &Path, tags: &Tags) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let encoded =
        serde_json::to_vec_pretty(tags).map_err(|e| format!("Failed to encode tags: {e}"))?;
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| {
            // `mode` applies only to a new file: an existing one is made private too.
            f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
            f.write_all(&encoded)
        })
        .map_err(|e| format!("Failed to write tags file: {e}"))
}

/// What memberlist advertises for a wildcard bind without `-advertise`: the first private
/// IPv4 address of the host (RFC 1918 or RFC 6598), as go-sockaddr's `GetPrivateIP` picks it.
fn private_ipv4() -> Result<Ipv4Addr, String> {
    interface_addresses()
        .into_iter()
        .find_map(|(_, ip)| match ip {
            IpAddr::V4(v4)
                if v4.is_private() || (v4.octets()[0] == 100 && v4.octets()[1] & 0xc0 == 64) =>
            {
                Some(v4)
            }
            _ => None,
        })
        .ok_or_else(|| {
            "Failed to get final advertise address: No private IP address found, and explicit \
             IP not provided"
                .to_string()
        })
}

/// The addresses of an interface (`-iface`), in the order the system lists them.
pub fn addresses_of(interface: &str) -> Result<Vec<IpAddr>, String> {
    let all = interface_addresses();
    check_interface(interface)?;
    Ok(all
        .into_iter()
        .filter(|(name, _)| name == interface)
        .map(|(_, ip)| ip)
        .collect())
}

/// Fails, in the words of Go's `net.InterfaceByName`, if the host has no such interface.
pub fn check_interface(name: &str) -> Result<(), String> {
    if interface_exists(name) {
        Ok(())
    } else {
        Err("route ip+net: no such network interface".into())
    }
}

pub(crate) fn interface_exists(name: &str) -> bool {
    let Ok(c) = std::ffi::CString::new(name) else {
        return false;
    };
    // SAFETY: if_nametoindex only reads the NUL-terminated name.
    unsafe { libc::if_nametoindex(c.as_ptr()) != 0 }
}

/// Every (interface, IP address) pair of the host.
fn interface_addresses() -> Vec<(String, IpAddr)> {
    let mut out = Vec::new();
    // SAFETY: getifaddrs allocates a list that is walked read-only and freed with freeifaddrs;
    // each address is read as the structure its family says it is.
    unsafe {
        let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
        if libc::getifaddrs(&mut list) != 0 {
            return out;
        }
        let mut cur = list;
        while !cur.is_null() {
            let addr = (*cur).ifa_addr;
            let name = std::ffi::CStr::from_ptr((*cur).ifa_name)
                .to_string_lossy()
                .into_owned();
            if !addr.is_null() {
                match (*addr).sa_family as i32 {
                    libc::AF_INET => {
                        let sin = &*(addr as *const libc::sockaddr_in);
                        out.push((
                            name,
                            IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))),
                        ));
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*(addr as *const libc::sockaddr_in6);
                        out.push((
                            name,
                            IpAddr::V6(std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr)),
                        ));
                    }
                    _ => {}
                }
            }
            cur = (*cur).ifa_next;
        }
        libc::freeifaddrs(list);
    }
    out
}

/// Go's name for the architecture (`GOARCH`), which `serf info` reports.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The process's thread count (Linux), the closest thing to Go's goroutine count.
fn thread_count() -> usize {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_files_round_trip_and_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!("serf-tags-{}.json", std::process::id()));
        let _ = fs::remove_file(&path);
        assert_eq!(read_tags_file(&path), Ok(None));
        let tags = Tags::from([("role".to_string(), "web".to_string())]);
        write_tags_file(&path, &tags).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(read_tags_file(&path), Ok(Some(tags.clone())));
        // Rewriting a file someone made readable makes it private again.
        fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_tags_file(&path, &tags).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        fs::write(&path, "[1]").unwrap();
        assert!(read_tags_file(&path)
            .unwrap_err()
            .starts_with("Failed to decode tags file"));
        fs::remove_file(&path).unwrap();
    }

    #[test]
    fn reserved_query_names_are_refused_before_anything_is_sent() {
        let mut config = Config {
            node_name: "q".into(),
            bind: "127.0.0.1:0".into(),
            ..Config::default()
        };
        config.finish().unwrap();
        let agent =
            Agent::start(config, Logger::new(super::super::log::Level::Err, vec![])).unwrap();
        let err = agent
            .query("_serf_conflict", None, QueryParams::default())
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "Queries cannot contain the '_serf_' prefix"
        );
        assert!(agent
            .query(PING_QUERY, Some(b"x"), QueryParams::default())
            .is_err());
        assert!(agent
            .query(PING_QUERY, None, QueryParams::default())
            .is_ok());
        agent.shutdown();
        assert!(agent.wait_shutdown(Duration::from_secs(1)));
    }
}
