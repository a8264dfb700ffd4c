//! `-discover=<cluster>`: find and join the cluster's other agents over multicast DNS, as
//! HashiCorp's `cmd/serf/command/agent/mdns.go` (serf v0.9.4) does.
//!
//! The agent advertises itself as an instance of the service `_serf_<cluster>._tcp` in the
//! `local.` domain: the instance is named after the node, its SRV record carries the gossip
//! port and its address record the advertise IP, and its TXT record is the one string
//! `Serf '<cluster>' cluster`. It looks for the same service right away and then every
//! [`POLL_INTERVAL`]; addresses it has not handled yet are gathered until [`QUIET_INTERVAL`]
//! passes without a new one, then joined in one `Agent::join(addrs, replay)` (serf's
//! `ignoreOld = !replay`). An address is handled once, whether its join worked or not. Unlike
//! HashiCorp's agent, which finds and joins itself too, the agent's own address is skipped.
//! The timing lives in [`Planner`], a state machine without sockets or clocks of its own.
//!
//! The DNS-SD work (probing, answering, announcing, querying, caching) is the `mdns-sd`
//! crate's. Where it differs from HashiCorp's `hashicorp/mdns`:
//! - the cluster name must fit `mdns-sd`'s limit on service names ([`MAX_CLUSTER_LEN`]
//!   bytes after `serf_`) and must not contain `.`, `=`, `\`, `--` or end with `-`;
//! - the SRV target is a host name made from the node name (`<node>-serf.local.`) rather
//!   than the machine's name, so it never collides with the host's own mDNS responder;
//! - the address record is only sent on interfaces whose subnet holds the advertise IP;
//! - `-mdns-disable-ipv4`/`-ipv6` keep the agent off that IP family altogether, where
//!   HashiCorp's agent only stops querying over it and still answers on both (with both
//!   disabled, both sides answer on both families and every poll fails with HashiCorp's
//!   error);
//! - besides answering queries, the agent announces itself when it starts and says goodbye
//!   when it stops, and it keeps listening between polls, so two of these agents find each
//!   other without waiting for a poll;
//! - queries go out from port 5353, as RFC 6762 asks of a full responder. HashiCorp's agents
//!   answer them by unicast to that port, which the kernel gives to one of the host's
//!   sockets on it: if another mDNS responder on this host (avahi, a HashiCorp agent) bound
//!   port 5353 too, the answer may go there and this agent does not learn of that HashiCorp
//!   agent. The HashiCorp agent still finds this one (it queries from a port of its own and
//!   gets the answer there), and one join is enough to form the cluster.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mdns_sd::{
    DaemonEvent, IfKind, Receiver, RecvTimeoutError, ServiceDaemon, ServiceEvent, ServiceInfo,
    TxtProperty,
};
use thiserror::Error;

use super::config::MdnsConfig;
use super::log::Logger;
use super::service::{interface_exists, Agent, AgentError};

/// How often the agent looks for peers (HashiCorp's `mdnsPollInterval`).
pub const POLL_INTERVAL: Duration = Duration::from_secs(60);

/// How long no new peer must turn up before the ones found are joined (HashiCorp's
/// `mdnsQuietInterval`).
pub const QUIET_INTERVAL: Duration = Duration::from_millis(100);

/// The longest cluster name: `mdns-sd` caps a service name (`serf_<cluster>`) at 30 bytes.
pub const MAX_CLUSTER_LEN: usize = 25;

/// The service-name cap asked of `mdns-sd` (its highest).
const SERVICE_NAME_LEN_MAX: u8 = 30;

/// The longest DNS label, which bounds the instance and host names.
const MAX_LABEL: usize = 63;

/// How long shutdown waits for each answer of the `mdns-sd` daemon.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

/// The longest the worker waits before looking at its stop flag again.
const MAX_WAIT: Duration = Duration::from_secs(1);

/// Why every poll fails with both IP families disabled (`hashicorp/mdns`'s words).
const NO_QUERY_FAMILY: &str = "Must enable at least one of IPv4 and IPv6 querying";

/// Why discovery could not start.
#[derive(Debug, Error)]
pub enum MdnsError {
    #[error("invalid mDNS discovery cluster name {name:?}: {reason}")]
    InvalidCluster { name: String, reason: &'static str },
    #[error("invalid mDNS node name: the node name is empty")]
    EmptyNode,
    #[error("cannot advertise {0} over mDNS: the address must be a specific IP and port")]
    InvalidAddress(SocketAddr),
    #[error("no such network interface {0}")]
    NoSuchInterface(String),
    #[error("mDNS: {0}")]
    Mdns(#[from] mdns_sd::Error),
    #[error("failed to start the mDNS worker: {0}")]
    Spawn(#[source] std::io::Error),
}

/// The service that is advertised and looked for: `_serf_<cluster>._tcp` (HashiCorp's
/// `mdnsName`).
pub fn service_name(cluster: &str) -> String {
    format!("_serf_{cluster}._tcp")
}

/// The service with its domain, as DNS-SD names it: `_serf_<cluster>._tcp.local.`.
pub fn service_type(cluster: &str) -> String {
    format!("{}.local.", service_name(cluster))
}

/// The one string of the instance's TXT record.
pub fn txt_record(cluster: &str) -> String {
    format!("Serf '{cluster}' cluster")
}

/// Checks that `cluster` makes a service name that the mDNS layer accepts.
pub fn validate_cluster(cluster: &str) -> Result<(), MdnsError> {
    let invalid = |reason| {
        Err(MdnsError::InvalidCluster {
            name: cluster.to_string(),
            reason,
        })
    };
    if cluster.is_empty() {
        return invalid("it is empty");
    }
    if cluster.len() > MAX_CLUSTER_LEN {
        return invalid("it is longer than 25 bytes");
    }
    if !cluster.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return invalid("it must be printable ASCII");
    }
    if cluster.contains(['.', '=', '\\']) {
        return invalid("it must not contain '.', '=' or '\\'");
    }
    if cluster.contains("--") || cluster.ends_with('-') {
        return invalid("it must not contain \"--\" or end with '-'");
    }
    Ok(())
}

/// The instance name: the node name, cut to one DNS label.
fn instance_name(node: &str) -> String {
    truncate(node, MAX_LABEL).to_string()
}

/// The SRV target: `<node>-serf.local.`, the node name reduced to letters, digits and
/// dashes.
fn host_name(node: &str) -> String {
    let mut label = String::with_capacity(node.len());
    for c in node.chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if !(c == '-' && (label.is_empty() || label.ends_with('-'))) {
            label.push(c);
        }
    }
    let mut label = truncate(&label, MAX_LABEL - "-serf".len()).to_string();
    while label.ends_with('-') {
        label.pop();
    }
    if label.is_empty() {
        "serf.local.".to_string()
    } else {
        format!("{label}-serf.local.")
    }
}

/// `s` cut to at most `max` bytes, on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The address to join for a peer that advertises `addresses` and `port`: one of its
/// addresses, preferring those that need no scope (not IPv6 link-local, whose scope the
/// join address cannot carry), then the family of our own advertise address, then the
/// lowest. `None` without an address or a port.
pub fn peer_address(
    addresses: impl IntoIterator<Item = IpAddr>,
    port: u16,
    prefer_ipv4: bool,
) -> Option<SocketAddr> {
    if port == 0 {
        return None;
    }
    addresses
        .into_iter()
        .filter(|ip| !ip.is_unspecified())
        .min_by_key(|ip| {
            let other_family = ip.is_ipv4() != prefer_ipv4;
            let scoped = matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local());
            (scoped, other_family, *ip)
        })
        .map(|ip| SocketAddr::new(ip, port))
}

/// When to look for peers and when to join which of them, fed with what was found and when.
///
/// HashiCorp's loop: a poll right away and then every poll interval; an address not handled
/// before is queued and (re)starts the quiet timer; when the timer fires, the queue is joined
/// and every address in it counts as handled from then on, whatever the join's outcome.
#[derive(Debug, Clone)]
pub struct Planner {
    poll_interval: Duration,
    quiet: Duration,
    next_poll: Instant,
    seen: HashSet<String>,
    pending: Vec<String>,
    deadline: Option<Instant>,
}

impl Planner {
    /// A planner whose first poll is due at `start`; the `own` addresses are never joined.
    pub fn new(
        start: Instant,
        poll_interval: Duration,
        quiet: Duration,
        own: impl IntoIterator<Item = String>,
    ) -> Planner {
        Planner {
            poll_interval,
            quiet,
            next_poll: start,
            seen: own.into_iter().collect(),
            pending: Vec::new(),
            deadline: None,
        }
    }

    /// Records that `addr` was found at `now`. True if it is new: then it is queued and the
    /// quiet timer starts over.
    pub fn observe(&mut self, now: Instant, addr: &str) -> bool {
        if self.seen.contains(addr) || self.pending.iter().any(|p| p == addr) {
            return false;
        }
        self.pending.push(addr.to_string());
        self.deadline = Some(now + self.quiet);
        true
    }

    /// True if a poll is due at `now`; the next one is then due a poll interval later.
    pub fn poll_due(&mut self, now: Instant) -> bool {
        if now < self.next_poll {
            return false;
        }
        self.next_poll = now + self.poll_interval;
        true
    }

    /// The queued addresses, in the order found, once the quiet period has passed at `now`.
    /// They count as handled from then on.
    pub fn join_due(&mut self, now: Instant) -> Option<Vec<String>> {
        match self.deadline {
            Some(deadline) if now >= deadline => {
                self.deadline = None;
                let batch = std::mem::take(&mut self.pending);
                self.seen.extend(batch.iter().cloned());
                Some(batch)
            }
            _ => None,
        }
    }

    /// Asks for a poll at `now` (e.g. after the mDNS layer dropped the search).
    pub fn poll_at(&mut self, now: Instant) {
        self.next_poll = self.next_poll.min(now);
    }

    /// When something is next due: the next poll or the end of the quiet period.
    pub fn next_wakeup(&self) -> Instant {
        match self.deadline {
            Some(deadline) => deadline.min(self.next_poll),
            None => self.next_poll,
        }
    }

    /// The addresses waiting for the quiet period to end.
    pub fn pending(&self) -> &[String] {
        &self.pending
    }

    /// True if `addr` was joined (or tried) before, or is our own.
    pub fn is_handled(&self, addr: &str) -> bool {
        self.seen.contains(addr)
    }
}

/// What the worker needs of the agent; the tests put a recorder in its place.
trait Joiner: Send + Sync {
    fn join(&self, addrs: &[String], replay: bool) -> Result<usize, AgentError>;
    fn logger(&self) -> &Logger;
    fn is_shutdown(&self) -> bool;
}

impl Joiner for Agent {
    fn join(&self, addrs: &[String], replay: bool) -> Result<usize, AgentError> {
        Agent::join(self, addrs, replay)
    }
    fn logger(&self) -> &Logger {
        Agent::logger(self)
    }
    fn is_shutdown(&self) -> bool {
        Agent::is_shutdown(self)
    }
}

/// Running discovery: the advertisement and the worker that browses and joins. Stopped by
/// [`Discovery::shutdown`] or when dropped.
pub struct Discovery {
    service_type: String,
    fullname: String,
    inner: Mutex<Option<Running>>,
}

struct Running {
    daemon: ServiceDaemon,
    stop: Arc<AtomicBool>,
    worker: JoinHandle<()>,
    logger: Logger,
}

/// Starts discovery for `agent`: advertises `node` at `advertise` as an instance of
/// `_serf_<cluster>._tcp` and joins the peers found, with `replay` as for `serf join`.
/// `network.interface` limits mDNS to one network interface (see
/// [`Config::mdns_in_effect`](super::config::Config::mdns_in_effect)); without it every
/// interface, loopback included, is used.
pub fn start(
    agent: Arc<Agent>,
    cluster: &str,
    node: &str,
    advertise: SocketAddr,
    network: &MdnsConfig,
    replay: bool,
) -> Result<Discovery, MdnsError> {
    start_with(
        agent,
        cluster,
        node,
        advertise,
        network,
        replay,
        POLL_INTERVAL,
    )
}

fn start_with(
    joiner: Arc<dyn Joiner>,
    cluster: &str,
    node: &str,
    advertise: SocketAddr,
    network: &MdnsConfig,
    replay: bool,
    poll_interval: Duration,
) -> Result<Discovery, MdnsError> {
    let interface = Some(network.interface.as_str()).filter(|name| !name.is_empty());
    // With both families disabled HashiCorp's agent still starts and answers on both; only its
    // polls fail.
    let query = !(network.disable_ipv4 && network.disable_ipv6);
    validate_cluster(cluster)?;
    if node.is_empty() {
        return Err(MdnsError::EmptyNode);
    }
    if advertise.ip().is_unspecified() || advertise.port() == 0 {
        return Err(MdnsError::InvalidAddress(advertise));
    }
    if let Some(name) = interface {
        if !interface_exists(name) {
            return Err(MdnsError::NoSuchInterface(name.to_string()));
        }
    }
    let service_type = service_type(cluster);
    let txt = txt_record(cluster);
    let info = ServiceInfo::new(
        &service_type,
        &instance_name(node),
        &host_name(node),
        advertise.ip(),
        advertise.port(),
        vec![TxtProperty::from(txt.as_str())],
    )?;
    let fullname = info.get_fullname().to_string();

    let daemon = ServiceDaemon::new()?;
    let setup = (|| -> Result<Receiver<DaemonEvent>, MdnsError> {
        daemon.set_service_name_len_max(SERVICE_NAME_LEN_MAX)?;
        // Later selections override earlier ones for the addresses they match.
        if let Some(name) = interface {
            daemon.disable_interface(IfKind::All)?;
            daemon.enable_interface(IfKind::Name(name.to_string()))?;
        }
        if query && network.disable_ipv4 {
            daemon.disable_interface(IfKind::IPv4)?;
        }
        if query && network.disable_ipv6 {
            daemon.disable_interface(IfKind::IPv6)?;
        }
        let monitor = daemon.monitor()?;
        daemon.register(info)?;
        Ok(monitor)
    })();
    let monitor = match setup {
        Ok(monitor) => monitor,
        Err(e) => {
            stop_daemon(&daemon);
            return Err(e);
        }
    };

    let logger = joiner.logger().clone();
    let stop = Arc::new(AtomicBool::new(false));
    let worker = Worker {
        joiner,
        daemon: daemon.clone(),
        monitor,
        service_type: service_type.clone(),
        advertise,
        replay,
        poll_interval,
        query,
        stop: stop.clone(),
    };
    let worker = match std::thread::Builder::new()
        .name("serf-agent-mdns".into())
        .spawn(move || worker.run())
    {
        Ok(handle) => handle,
        Err(e) => {
            let _ = daemon.unregister(&fullname);
            stop_daemon(&daemon);
            return Err(MdnsError::Spawn(e));
        }
    };
    logger.debug(format!("agent.mdns: advertising {fullname} at {advertise}"));
    Ok(Discovery {
        service_type,
        fullname,
        inner: Mutex::new(Some(Running {
            daemon,
            stop,
            worker,
            logger,
        })),
    })
}

impl Discovery {
    /// The service looked for, e.g. `_serf_mycluster._tcp.local.`.
    pub fn service_type(&self) -> &str {
        &self.service_type
    }

    /// This agent's instance, e.g. `node1._serf_mycluster._tcp.local.`.
    pub fn instance(&self) -> &str {
        &self.fullname
    }

    /// Withdraws the advertisement, stops looking for peers and waits for the worker (which
    /// may first finish a join under way) and the mDNS daemon (at most a few seconds) to
    /// finish. Idempotent; also done on drop.
    pub fn shutdown(&self) {
        let running = self.inner.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(running) = running else {
            return;
        };
        running.stop.store(true, Ordering::SeqCst);
        // Wakes the worker out of its wait for the next search result.
        let _ = running.daemon.stop_browse(&self.service_type);
        running.worker.thread().unpark();
        match running.daemon.unregister(&self.fullname) {
            Ok(status) => {
                if status.recv_timeout(SHUTDOWN_WAIT).is_err() {
                    running
                        .logger
                        .warn("agent.mdns: Timed out withdrawing the mDNS advertisement");
                }
            }
            Err(e) => running.logger.warn(format!(
                "agent.mdns: Failed to withdraw the mDNS advertisement: {e}"
            )),
        }
        let _ = running.worker.join();
        if !stop_daemon(&running.daemon) {
            running
                .logger
                .warn("agent.mdns: Timed out stopping the mDNS daemon");
        }
    }
}

impl Drop for Discovery {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Stops the daemon and waits for it to say it is done; false if it did not in time.
fn stop_daemon(daemon: &ServiceDaemon) -> bool {
    match daemon.shutdown() {
        Ok(status) => status.recv_timeout(SHUTDOWN_WAIT).is_ok(),
        Err(mdns_sd::Error::DaemonShutdown) => true,
        Err(_) => false,
    }
}

/// The thread that looks for peers and joins them (HashiCorp's `AgentMDNS.run`).
struct Worker {
    joiner: Arc<dyn Joiner>,
    daemon: ServiceDaemon,
    monitor: Receiver<DaemonEvent>,
    service_type: String,
    advertise: SocketAddr,
    replay: bool,
    poll_interval: Duration,
    /// False with both IP families disabled: then every poll fails.
    query: bool,
    stop: Arc<AtomicBool>,
}

impl Worker {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst) || self.joiner.is_shutdown()
    }

    fn run(self) {
        let logger = self.joiner.logger().clone();
        let mut planner = Planner::new(
            Instant::now(),
            self.poll_interval,
            QUIET_INTERVAL,
            [self.advertise.to_string()],
        );
        let mut results: Option<Receiver<ServiceEvent>> = None;
        while !self.stopping() {
            let now = Instant::now();
            if let Some(batch) = planner.join_due(now) {
                self.join(&logger, &batch);
                continue;
            }
            if planner.poll_due(now) {
                // A new search replaces the previous one and queries the network at once.
                let search = if self.query {
                    self.daemon
                        .browse(&self.service_type)
                        .map_err(|e| e.to_string())
                } else {
                    Err(NO_QUERY_FAMILY.to_string())
                };
                match search {
                    Ok(rx) => results = Some(rx),
                    Err(e) => {
                        logger.error(format!("agent.mdns: Failed to poll for new hosts: {e}"))
                    }
                }
            }
            self.drain_monitor(&logger);
            let wait = planner
                .next_wakeup()
                .saturating_duration_since(Instant::now())
                .min(MAX_WAIT);
            let Some(rx) = &results else {
                std::thread::park_timeout(wait);
                continue;
            };
            match rx.recv_timeout(wait) {
                Ok(ServiceEvent::ServiceResolved(service)) => {
                    let addresses = service.addresses.iter().map(|a| a.to_ip_addr());
                    let Some(addr) =
                        peer_address(addresses, service.port, self.advertise.is_ipv4())
                    else {
                        continue;
                    };
                    let addr = addr.to_string();
                    if planner.observe(Instant::now(), &addr) {
                        logger.debug(format!(
                            "agent.mdns: Found host {addr} ({})",
                            service.fullname
                        ));
                    }
                }
                Ok(_) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    // The mDNS layer dropped the search (it stopped, or we fell behind):
                    // search again at the next poll.
                    results = None;
                }
            }
        }
    }

    fn join(&self, logger: &Logger, batch: &[String]) {
        match self.joiner.join(batch, self.replay) {
            Ok(n) if n > 0 => logger.info(format!("agent.mdns: Joined {n} hosts")),
            Ok(_) => {}
            Err(e) => logger.error(format!("agent.mdns: Failed to join: {e}")),
        }
    }

    fn drain_monitor(&self, logger: &Logger) {
        while let Ok(event) = self.monitor.try_recv() {
            match event {
                DaemonEvent::Error(e) => logger.error(format!("agent.mdns: {e}")),
                DaemonEvent::NameChange(change) => logger.warn(format!(
                    "agent.mdns: Name conflict: {} renamed to {}",
                    change.original, change.new_name
                )),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_hashicorp() {
        assert_eq!(service_name("web"), "_serf_web._tcp");
        assert_eq!(service_type("web"), "_serf_web._tcp.local.");
        assert_eq!(txt_record("web"), "Serf 'web' cluster");
        assert_eq!(instance_name("node-1"), "node-1");
        // Dots stay in the instance name (the mDNS layer escapes them); only its length is cut.
        assert_eq!(instance_name("a.b"), "a.b");
        assert_eq!(instance_name(&"x".repeat(70)), "x".repeat(63));
        assert_eq!(instance_name(&"é".repeat(40)).len(), 62);
    }

    #[test]
    fn host_names_are_one_safe_label_under_local() {
        assert_eq!(host_name("node1"), "node1-serf.local.");
        assert_eq!(host_name("web.example.com"), "web-example-com-serf.local.");
        assert_eq!(host_name("a__b--c"), "a-b-c-serf.local.");
        assert_eq!(host_name("_x_"), "x-serf.local.");
        assert_eq!(host_name("..."), "serf.local.");
        assert_eq!(host_name("é"), "serf.local.");
        let long = host_name(&"y".repeat(100));
        assert_eq!(long, format!("{}-serf.local.", "y".repeat(58)));
        assert_eq!(long.split('.').next().unwrap().len(), 63);
    }

    #[test]
    fn cluster_names_are_checked() {
        for ok in [
            "a",
            "web",
            "prod-eu_1",
            &"c".repeat(MAX_CLUSTER_LEN),
            "my cluster",
        ] {
            assert!(validate_cluster(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            &"c".repeat(MAX_CLUSTER_LEN + 1),
            "a.b",
            "a=b",
            "a\\b",
            "a--b",
            "ab-",
            "tab\t",
            "é",
        ] {
            let err = validate_cluster(bad).unwrap_err();
            assert!(
                matches!(&err, MdnsError::InvalidCluster { name, .. } if name == bad),
                "{bad}: {err}"
            );
        }
        assert_eq!(
            validate_cluster("a.b").unwrap_err().to_string(),
            "invalid mDNS discovery cluster name \"a.b\": it must not contain '.', '=' or '\\'"
        );
    }

    #[test]
    fn the_advertisement_is_accepted_by_the_mdns_layer() {
        let cluster = "c".repeat(MAX_CLUSTER_LEN);
        let info = ServiceInfo::new(
            &service_type(&cluster),
            &instance_name("node.with.dots"),
            &host_name("node.with.dots"),
            IpAddr::from([127, 0, 0, 1]),
            7946,
            vec![TxtProperty::from(txt_record(&cluster).as_str())],
        )
        .unwrap();
        assert_eq!(
            info.get_fullname(),
            format!("node\\.with\\.dots._serf_{cluster}._tcp.local.")
        );
        assert_eq!(info.get_port(), 7946);
        let txt = info.get_properties().iter().collect::<Vec<_>>();
        assert_eq!(txt.len(), 1);
        assert_eq!(txt[0].key(), format!("Serf '{cluster}' cluster"));
        assert_eq!(txt[0].val(), None);
    }

    #[test]
    fn peer_addresses_prefer_our_family_and_unscoped_addresses() {
        let v4a: IpAddr = "192.0.2.2".parse().unwrap();
        let v4b: IpAddr = "192.0.2.1".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let ll: IpAddr = "fe80::1".parse().unwrap();
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        let at = |ip: IpAddr| Some(SocketAddr::new(ip, 7946));
        assert_eq!(peer_address([v4a, v6, v4b], 7946, true), at(v4b));
        assert_eq!(peer_address([v4a, v6, ll], 7946, false), at(v6));
        assert_eq!(peer_address([ll, v6], 7946, false), at(v6));
        assert_eq!(peer_address([ll, v4a], 7946, false), at(v4a));
        assert_eq!(peer_address([v6], 7946, true), at(v6));
        assert_eq!(peer_address([any], 7946, true), None);
        assert_eq!(peer_address([], 7946, true), None);
        assert_eq!(peer_address([v4a], 0, true), None);
        assert_eq!(
            peer_address(["::1".parse().unwrap()], 7946, false)
                .unwrap()
                .to_string(),
            "[::1]:7946"
        );
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn planner(t0: Instant) -> Planner {
        Planner::new(
            t0,
            POLL_INTERVAL,
            QUIET_INTERVAL,
            ["127.0.0.1:7946".to_string()],
        )
    }

    #[test]
    fn polls_right_away_then_every_interval() {
        let t0 = Instant::now();
        let mut p = planner(t0);
        assert_eq!(p.next_wakeup(), t0);
        assert!(p.poll_due(t0));
        assert!(!p.poll_due(t0));
        assert!(!p.poll_due(t0 + POLL_INTERVAL - ms(1)));
        assert_eq!(p.next_wakeup(), t0 + POLL_INTERVAL);
        assert!(p.poll_due(t0 + POLL_INTERVAL + ms(5)));
        assert_eq!(p.next_wakeup(), t0 + 2 * POLL_INTERVAL + ms(5));
        p.poll_at(t0 + POLL_INTERVAL + ms(10));
        assert!(p.poll_due(t0 + POLL_INTERVAL + ms(10)));
    }

    #[test]
    fn joins_after_a_quiet_period_without_new_peers() {
        let t0 = Instant::now();
        let mut p = planner(t0);
        assert!(p.poll_due(t0));
        assert!(p.observe(t0 + ms(10), "127.0.0.2:7946"));
        assert_eq!(p.next_wakeup(), t0 + ms(110));
        assert_eq!(p.join_due(t0 + ms(100)), None);
        // Each new peer starts the quiet period over.
        assert!(p.observe(t0 + ms(60), "127.0.0.3:7946"));
        assert!(p.observe(t0 + ms(150), "[::1]:7000"));
        assert_eq!(p.join_due(t0 + ms(200)), None);
        // A peer already queued is not new: it neither repeats nor extends the wait.
        assert!(!p.observe(t0 + ms(240), "127.0.0.2:7946"));
        assert_eq!(p.next_wakeup(), t0 + ms(250));
        assert_eq!(
            p.pending(),
            ["127.0.0.2:7946", "127.0.0.3:7946", "[::1]:7000"]
        );
        assert_eq!(
            p.join_due(t0 + ms(250)).unwrap(),
            ["127.0.0.2:7946", "127.0.0.3:7946", "[::1]:7000"]
        );
        assert!(p.pending().is_empty());
        assert_eq!(p.join_due(t0 + ms(400)), None);
        assert_eq!(p.next_wakeup(), t0 + POLL_INTERVAL);
    }

    #[test]
    fn handled_and_own_addresses_are_never_joined_again() {
        let t0 = Instant::now();
        let mut p = planner(t0);
        assert!(!p.observe(t0, "127.0.0.1:7946"), "our own address");
        assert!(p.is_handled("127.0.0.1:7946"));
        assert_eq!(p.join_due(t0 + ms(500)), None);
        assert!(p.observe(t0, "127.0.0.2:7946"));
        assert_eq!(p.join_due(t0 + ms(100)).unwrap(), ["127.0.0.2:7946"]);
        // Handled even if that join failed, as in HashiCorp's agent.
        assert!(p.is_handled("127.0.0.2:7946"));
        assert!(!p.observe(t0 + POLL_INTERVAL, "127.0.0.2:7946"));
        // The same IP on another port is another agent.
        assert!(p.observe(t0 + POLL_INTERVAL, "127.0.0.2:7947"));
        assert_eq!(
            p.join_due(t0 + POLL_INTERVAL + QUIET_INTERVAL).unwrap(),
            ["127.0.0.2:7947"]
        );
    }

    #[test]
    fn a_quiet_period_may_span_a_poll() {
        let t0 = Instant::now();
        let mut p = planner(t0);
        assert!(p.poll_due(t0));
        let t1 = t0 + POLL_INTERVAL - ms(50);
        assert!(p.observe(t1, "127.0.0.9:1"));
        assert_eq!(p.next_wakeup(), t0 + POLL_INTERVAL);
        assert!(p.poll_due(t0 + POLL_INTERVAL));
        assert_eq!(p.next_wakeup(), t1 + QUIET_INTERVAL);
        assert_eq!(p.join_due(t1 + QUIET_INTERVAL).unwrap(), ["127.0.0.9:1"]);
    }

    #[test]
    fn discovery_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Discovery>();
        shareable::<MdnsError>();
    }

    #[test]
    fn start_refuses_bad_arguments_before_touching_the_network() {
        struct Never(Logger);
        impl Joiner for Never {
            fn join(&self, _: &[String], _: bool) -> Result<usize, AgentError> {
                unreachable!()
            }
            fn logger(&self) -> &Logger {
                &self.0
            }
            fn is_shutdown(&self) -> bool {
                false
            }
        }
        let j: Arc<dyn Joiner> =
            Arc::new(Never(Logger::new(super::super::log::Level::Err, vec![])));
        let at: SocketAddr = "127.0.0.1:7946".parse().unwrap();
        let start = |cluster: &str, node: &str, addr: SocketAddr, iface: Option<&str>| {
            let network = MdnsConfig {
                interface: iface.unwrap_or_default().into(),
                ..MdnsConfig::default()
            };
            start_with(
                j.clone(),
                cluster,
                node,
                addr,
                &network,
                false,
                POLL_INTERVAL,
            )
        };
        assert!(matches!(
            start("a.b", "n", at, None),
            Err(MdnsError::InvalidCluster { .. })
        ));
        assert!(matches!(
            start("c", "", at, None),
            Err(MdnsError::EmptyNode)
        ));
        assert!(matches!(
            start("c", "n", "0.0.0.0:7946".parse().unwrap(), None),
            Err(MdnsError::InvalidAddress(_))
        ));
        assert!(matches!(
            start("c", "n", "127.0.0.1:0".parse().unwrap(), None),
            Err(MdnsError::InvalidAddress(_))
        ));
        let err = start("c", "n", at, Some("no-such-if0")).err().unwrap();
        assert!(matches!(err, MdnsError::NoSuchInterface(_)));
        assert_eq!(err.to_string(), "no such network interface no-such-if0");
    }

    /// Runs `f` on a thread of its own inside a new network namespace whose only interface is
    /// its own loopback (brought up here), so no mDNS packet leaves it and the host's port
    /// 5353 is not touched. Threads started by `f` inherit the namespace, which disappears
    /// with the last of them. Panics if namespaces cannot be made (not root).
    fn in_private_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let outcome = std::thread::spawn(move || {
            // SAFETY: unshare only changes this thread's namespaces.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                panic!(
                    "cannot create a network namespace (the live mDNS tests need root, as CI has): {}",
                    std::io::Error::last_os_error()
                );
            }
            loopback_up().expect("bring up the namespace's loopback");
            f()
        })
        .join();
        match outcome {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// `ip link set lo up`, for the calling thread's network namespace.
    fn loopback_up() -> std::io::Result<()> {
        // SAFETY: a datagram socket used only for the two interface-flag ioctls below, on an
        // ifreq that is zeroed plain data carrying the NUL-terminated name "lo"; closed after.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let mut req: libc::ifreq = std::mem::zeroed();
            for (i, b) in b"lo".iter().enumerate() {
                req.ifr_name[i] = *b as libc::c_char;
            }
            let mut result = Ok(());
            if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) < 0 {
                result = Err(std::io::Error::last_os_error());
            } else {
                req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
                if libc::ioctl(fd, libc::SIOCSIFFLAGS, &req) < 0 {
                    result = Err(std::io::Error::last_os_error());
                }
            }
            libc::close(fd);
            result
        }
    }

    /// A stand-in for the agent that records the joins asked of it.
    struct Recorder {
        logger: Logger,
        joins: Mutex<Vec<(Vec<String>, bool)>>,
        changed: std::sync::Condvar,
    }

    impl Recorder {
        fn new() -> Arc<Recorder> {
            Arc::new(Recorder {
                logger: Logger::new(super::super::log::Level::Err, vec![]),
                joins: Mutex::new(Vec::new()),
                changed: std::sync::Condvar::new(),
            })
        }

        /// Every address asked for so far, once `want` is among them or `timeout` passed.
        fn wait_for(&self, want: &str, timeout: Duration) -> Vec<String> {
            let joins = self.joins.lock().unwrap();
            let (joins, _) = self
                .changed
                .wait_timeout_while(joins, timeout, |j| {
                    !j.iter().any(|(batch, _)| batch.iter().any(|a| a == want))
                })
                .unwrap();
            joins.iter().flat_map(|(b, _)| b.clone()).collect()
        }

        fn log_lines(&self) -> Vec<String> {
            let sub = self.logger.subscribe(super::super::log::Level::Trace);
            let lines = sub.lines.try_iter().collect();
            self.logger.unmonitor(sub.id);
            lines
        }
    }

    impl Joiner for Recorder {
        fn join(&self, addrs: &[String], replay: bool) -> Result<usize, AgentError> {
            self.joins.lock().unwrap().push((addrs.to_vec(), replay));
            self.changed.notify_all();
            Ok(addrs.len())
        }
        fn logger(&self) -> &Logger {
            &self.logger
        }
        fn is_shutdown(&self) -> bool {
            false
        }
    }

    const LIVE_WAIT: Duration = Duration::from_secs(20);

    /// mDNS on the loopback interface only.
    fn lo() -> MdnsConfig {
        MdnsConfig {
            interface: "lo".into(),
            ..MdnsConfig::default()
        }
    }

    #[test]
    #[ignore = "needs root for a network namespace: run by make mdns"]
    fn two_agents_find_each_other_over_loopback_multicast() {
        in_private_netns(|| {
            let (a, b, c) = (Recorder::new(), Recorder::new(), Recorder::new());
            let start = |j: &Arc<Recorder>, cluster: &str, node: &str, port: u16, replay| {
                let addr = SocketAddr::from(([127, 0, 0, 1], port));
                let j: Arc<dyn Joiner> = j.clone();
                start_with(j, cluster, node, addr, &lo(), replay, POLL_INTERVAL).unwrap()
            };
            let da = start(&a, "live", "alpha", 7001, false);
            let db = start(&b, "live", "beta.example", 7002, true);
            let dc = start(&c, "other", "gamma", 7003, false);
            assert_eq!(da.service_type(), "_serf_live._tcp.local.");
            assert_eq!(db.instance(), "beta\\.example._serf_live._tcp.local.");

            let found_by_a = a.wait_for("127.0.0.1:7002", LIVE_WAIT);
            let found_by_b = b.wait_for("127.0.0.1:7001", LIVE_WAIT);
            assert_eq!(found_by_a, ["127.0.0.1:7002"]);
            assert_eq!(found_by_b, ["127.0.0.1:7001"]);
            assert!(a.joins.lock().unwrap().iter().all(|(_, replay)| !replay));
            assert!(b.joins.lock().unwrap().iter().all(|(_, replay)| *replay));
            // The worker logs the join once the agent answered it.
            let deadline = Instant::now() + LIVE_WAIT;
            let joined = |r: &Recorder| {
                r.log_lines()
                    .iter()
                    .any(|l| l.ends_with("[INFO] agent.mdns: Joined 1 hosts"))
            };
            while !(joined(&a) && joined(&b)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            assert!(joined(&a) && joined(&b));

            // Another cluster's agent is neither found nor finds anyone.
            std::thread::sleep(Duration::from_secs(1));
            assert!(c.joins.lock().unwrap().is_empty());
            assert_eq!(a.wait_for("", Duration::ZERO), ["127.0.0.1:7002"]);

            let begun = Instant::now();
            da.shutdown();
            da.shutdown();
            drop(db);
            drop(dc);
            assert!(begun.elapsed() < Duration::from_secs(10));
        });
    }

    #[test]
    #[ignore = "needs root for a network namespace: run by make mdns"]
    fn ip_families_can_be_disabled() {
        in_private_netns(|| {
            let (a, b, c) = (Recorder::new(), Recorder::new(), Recorder::new());
            let start = |j: &Arc<Recorder>, node: &str, port: u16, network: &MdnsConfig| {
                let addr = SocketAddr::from(([127, 0, 0, 1], port));
                let j: Arc<dyn Joiner> = j.clone();
                start_with(j, "fam", node, addr, network, false, POLL_INTERVAL).unwrap()
            };
            let v4 = MdnsConfig {
                disable_ipv6: true,
                ..lo()
            };
            let _da = start(&a, "alpha", 7011, &v4);
            let _db = start(&b, "beta", 7012, &v4);
            assert_eq!(a.wait_for("127.0.0.1:7012", LIVE_WAIT), ["127.0.0.1:7012"]);
            assert_eq!(b.wait_for("127.0.0.1:7011", LIVE_WAIT), ["127.0.0.1:7011"]);

            // IPv6 only: no packet reaches the IPv4-only agents.
            let d = Recorder::new();
            let v6 = MdnsConfig {
                disable_ipv4: true,
                ..lo()
            };
            let _dd = start(&d, "delta", 7014, &v6);

            // With neither family every poll fails as HashiCorp's does, and the agent is
            // still advertised: the others, listening, find it.
            let none = MdnsConfig {
                disable_ipv4: true,
                ..v4
            };
            let _dc = start(&c, "gamma", 7013, &none);
            let deadline = Instant::now() + LIVE_WAIT;
            let failed = || {
                c.log_lines().iter().any(|l| {
                    l.ends_with(
                        "[ERR] agent.mdns: Failed to poll for new hosts: \
                         Must enable at least one of IPv4 and IPv6 querying",
                    )
                })
            };
            while !failed() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            assert!(failed(), "{:?}", c.log_lines());
            let found_by_a = a.wait_for("127.0.0.1:7013", LIVE_WAIT);
            assert!(found_by_a.contains(&"127.0.0.1:7013".to_string()));
            // delta started first, so it would have been found by now.
            assert!(!found_by_a.contains(&"127.0.0.1:7014".to_string()));
            assert!(c.wait_for("", Duration::ZERO).is_empty());
        });
    }

    #[test]
    #[ignore = "needs root for a network namespace: run by make mdns"]
    fn agents_started_with_discovery_form_a_cluster() {
        use super::super::config::Config;
        use super::super::log::Level;

        in_private_netns(|| {
            let agent = |name: &str, port: u16| {
                let mut config = Config {
                    node_name: name.into(),
                    bind: format!("127.0.0.1:{port}"),
                    ..Config::default()
                };
                config.finish().unwrap();
                let agent = Agent::start(config, Logger::new(Level::Err, vec![])).unwrap();
                let advertise = agent.serf().local_addr();
                let discovery = start(agent.clone(), "e2e", name, advertise, &lo(), false).unwrap();
                (agent, discovery)
            };
            let (one, d1) = agent("one", 7101);
            let (two, d2) = agent("two", 7102);
            let deadline = Instant::now() + LIVE_WAIT;
            let alive = |a: &Agent| {
                a.members()
                    .unwrap()
                    .iter()
                    .filter(|m| m.status == serf::api::MemberStatus::Alive)
                    .count()
            };
            while (alive(&one) < 2 || alive(&two) < 2) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            assert_eq!((alive(&one), alive(&two)), (2, 2));
            drop(d1);
            drop(d2);
            one.shutdown();
            two.shutdown();
        });
    }
}
