//! `serf agent`: reads the layered configuration, starts the agent, its event-handler scripts
//! and RPC server, prints HashiCorp's banner, joins, and then waits for signals: SIGINT leaves
//! gracefully (a second one forces the exit), SIGTERM leaves if `leave_on_terminate`, SIGHUP
//! reloads the log level, handlers and tags.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Weak};
use std::time::Duration;

use crossbeam_channel::{select, Receiver};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use super::config::{addr_parts, parse_tags, Config, ConfigError, Layer, MdnsLayer};
use super::flags::{FlagError, FlagSet};
use super::handlers::{DispatchContext, HandlerRunner, HandlerSpec, Responder, RunnerLimits};
use super::log::{Console, Gate, Level, Logger, Sink, Syslog};
use super::mdns::{self, Discovery};
use super::server::RpcServer;
use super::service::{
    self, addresses_of, check_interface, read_tags_file, Agent, DropSite, EventHandler, Setup,
};
use super::{duration, gotext};
use crate::http::HttpServer;
use crate::telemetry::{install, Telemetry, TelemetryConfig};
use serf::api::Event;

/// How long a graceful leave may take before the agent exits anyway (HashiCorp's 3 s).
const GRACEFUL_TIMEOUT: Duration = Duration::from_secs(3);

pub const USAGE: &str = include_str!("agent_usage.txt");

/// Runs `serf agent` with the arguments after the subcommand; returns the exit code. The steps
/// and their error texts follow HashiCorp's `Run`: the configuration, the log level, syslog,
/// telemetry, the checks of `setupAgent` (before anything is announced), then the start.
/// Logs are held back until the agent runs: after a failure none are shown.
pub fn run(args: &[String]) -> i32 {
    let Some(mut config) = read_config(args) else {
        return 1;
    };
    let level = match config.log_level.parse::<Level>() {
        Ok(l) => l,
        Err(e) => {
            ui_error(&e.to_string());
            return 1;
        }
    };
    let (console, gate) = Console::gated();
    let mut sinks: Vec<Box<dyn Sink>> = vec![Box::new(console)];
    if config.enable_syslog {
        match Syslog::open(&config.syslog_facility) {
            Ok(s) => sinks.push(Box::new(s)),
            Err(e) => {
                ui_error(&e);
                return 1;
            }
        }
    }
    let logger = Logger::new(level, sinks);
    // HashiCorp's agent sets up telemetry before serf: statsd/statsite sinks if configured,
    // and the in-memory intervals that SIGUSR1 dumps to stderr.
    let telemetry = match install(TelemetryConfig {
        statsd_addr: Some(config.statsd_addr.clone()),
        statsite_addr: Some(config.statsite_addr.clone()),
        prometheus: !config.http_addr.is_empty(),
    }) {
        Ok(t) => t,
        Err(e) => {
            ui_error(&e.to_string());
            return 1;
        }
    };
    crate::telemetry::describe();
    let _dump = match telemetry.dump_on_signal() {
        Ok(d) => d,
        Err(e) => {
            ui_error(&format!("Failed to install the SIGUSR1 handler: {e}"));
            return 1;
        }
    };
    let setup = match check_setup(&mut config) {
        Ok(s) => s,
        Err(message) => {
            ui_error(&message);
            return 1;
        }
    };
    match start(config, setup, args, logger.clone(), &gate, &telemetry) {
        Ok(running) => {
            // Start-up is over: what stays resident from here on is what the agent runs.
            crate::resident::release_file_pages();
            running.wait_for_exit()
        }
        Err(message) => {
            ui_error(&message);
            1
        }
    }
}

/// HashiCorp's `setupAgent` up to its announcement: the bind address, the interface (which
/// may pick the bind address), then the advertise address, key and profile.
fn check_setup(config: &mut Config) -> Result<Setup, String> {
    let bind = addr_parts(&config.bind).map_err(|e| format!("Invalid bind address: {e}"))?;
    let bind = if config.interface.is_empty() {
        bind
    } else {
        apply_interface(config, bind)?
    };
    service::setup(config, bind)
}

/// HashiCorp's `Ui.Output` with the agent's `==> ` prefix (stdout, as its CLI writes).
fn ui_output(message: &str) {
    println!("==> {message}");
}

/// HashiCorp's `Ui.Info` (four-space prefix, none for an empty line).
fn ui_info(message: &str) {
    if message.is_empty() {
        println!();
    } else {
        println!("    {message}");
    }
}

/// HashiCorp's `Ui.Error`: also stdout with `==> `, as HashiCorp's `BasicUi` has no error writer.
fn ui_error(message: &str) {
    println!("==> {message}");
}

/// Flags over files over defaults, then HashiCorp's checks. `None` after printing why.
fn read_config(args: &[String]) -> Option<Config> {
    let layer = parse_flags(args)?;
    let (layer, config_paths, tag_pairs) = layer;
    let mut config = Config::default();
    let result = (|| {
        let mut cli = layer;
        let tags =
            parse_tags(&tag_pairs).map_err(|e| ConfigError::Invalid(format!("Error: {e}")))?;
        if !tags.is_empty() {
            cli.tags = Some(tags);
        }
        // The flags' durations are checked before any file is read.
        for text in [&cli.retry_interval, &cli.broadcast_timeout]
            .into_iter()
            .flatten()
        {
            duration::parse_signed(text)
                .map_err(|e| ConfigError::Invalid(format!("Error: {e}")))?;
        }
        config.merge_paths(&config_paths)?;
        config.merge(&cli)?;
        config.finish()
    })();
    let warnings = match result {
        Ok(w) => w,
        Err(e) => {
            ui_error(&format!("{e}"));
            return None;
        }
    };
    for spec in &config.event_handlers {
        if let Err(e) = HandlerSpec::parse(spec) {
            ui_error(&e.to_string());
            return None;
        }
    }
    if !config.interface.is_empty() {
        if let Err(e) = check_interface(&config.interface) {
            ui_error(&format!("Invalid network interface: {e}"));
            return None;
        }
    }
    if let Err(e) = check_mdns(&config) {
        ui_error(&e);
        return None;
    }
    for w in warnings {
        ui_output(&w);
    }
    Some(config)
}

/// The command line as a config layer, plus the config paths and `-tag` pairs it names.
fn parse_flags(args: &[String]) -> Option<(Layer, Vec<String>, Vec<String>)> {
    let mut fs = FlagSet::new(USAGE.trim_end());
    let bind = fs.string("bind", "");
    let advertise = fs.string("advertise", "");
    let config_paths = fs.list("config-file");
    fs.list_into("config-dir", &config_paths);
    let encrypt = fs.string("encrypt", "");
    let keyring_file = fs.string("keyring-file", "");
    let handlers = fs.list("event-handler");
    let join = fs.list("join");
    let replay = fs.bool("replay", false);
    let log_level = fs.string("log-level", "");
    let node = fs.string("node", "");
    let protocol = fs.int("protocol", -1);
    let role = fs.string("role", "");
    let rpc_addr = fs.string("rpc-addr", "");
    let http_addr = fs.string("http-addr", "");
    let profile = fs.string("profile", "");
    let snapshot = fs.string("snapshot", "");
    let tags = fs.list("tag");
    let discover = fs.string("discover", "");
    let iface = fs.string("iface", "");
    let mdns_iface = fs.string("mdns-iface", "");
    let mdns_disable_ipv4 = fs.bool("mdns-disable-ipv4", false);
    let mdns_disable_ipv6 = fs.bool("mdns-disable-ipv6", false);
    let tags_file = fs.string("tags-file", "");
    let syslog = fs.bool("syslog", false);
    let retry_join = fs.list("retry-join");
    let retry_max = fs.int("retry-max", 0);
    let retry_interval = fs.string("retry-interval", "");
    let rejoin = fs.bool("rejoin", false);
    let disable_compression = fs.bool("disable-compression", false);
    let broadcast_timeout = fs.string("broadcast-timeout", "");
    // As in HashiCorp's agent, the usage after a bad flag has the `==> ` prefix, and
    // arguments after the flags are ignored.
    if let Err(e) = fs.try_parse(args) {
        if e != FlagError::Help {
            eprintln!("{e}");
        }
        ui_output(USAGE.trim_end());
        return None;
    }
    let text = |v: String| (!v.is_empty()).then_some(v);
    let yes = |v: bool| v.then_some(true);
    let layer = Layer {
        bind: text(bind.get()),
        advertise: text(advertise.get()),
        encrypt_key: text(encrypt.get()),
        keyring_file: text(keyring_file.get()),
        event_handlers: Some(handlers.get()),
        start_join: Some(join.get()),
        replay_on_join: yes(replay.get()),
        log_level: text(log_level.get()),
        node_name: text(node.get()),
        protocol: Some(protocol.get()).filter(|p| *p >= 0),
        role: text(role.get()),
        rpc_addr: text(rpc_addr.get()),
        http_addr: text(http_addr.get()),
        profile: text(profile.get()),
        snapshot_path: text(snapshot.get()),
        discover: text(discover.get()),
        interface: text(iface.get()),
        mdns: Some(MdnsLayer {
            interface: text(mdns_iface.get()),
            disable_ipv4: yes(mdns_disable_ipv4.get()),
            disable_ipv6: yes(mdns_disable_ipv6.get()),
        }),
        tags_file: text(tags_file.get()),
        enable_syslog: yes(syslog.get()),
        retry_join: Some(retry_join.get()),
        retry_max_attempts: Some(retry_max.get()),
        retry_interval: text(retry_interval.get()),
        rejoin_after_leave: yes(rejoin.get()),
        // Unlike HashiCorp's merge, a config file's `enable_compression: false` is honoured
        // when the flag is absent.
        enable_compression: disable_compression.get().then_some(false),
        broadcast_timeout: text(broadcast_timeout.get()),
        ..Layer::default()
    };
    Some((layer, config_paths.get(), tags.get()))
}

/// HashiCorp's checks of the mDNS settings, made only when an mDNS interface is named.
fn check_mdns(config: &Config) -> Result<(), String> {
    let mdns = &config.mdns;
    if mdns.interface.is_empty() {
        return Ok(());
    }
    if config.discover.is_empty() {
        return Err("mDNS interface specified without enabling mDNS discovery".into());
    }
    check_interface(&mdns.interface).map_err(|e| format!("Invalid mDNS network interface: {e}"))?;
    if mdns.disable_ipv4 && mdns.disable_ipv6 {
        return Err("Invalid mDNS configuration: both IPv4 and IPv6 are disabled".into());
    }
    Ok(())
}

/// `-iface`: bind to the interface's first usable address, or check that it has the bind IP.
/// Returns the bind address to use.
fn apply_interface(config: &mut Config, bind: SocketAddr) -> Result<SocketAddr, String> {
    let addrs = addresses_of(&config.interface)
        .map_err(|e| format!("Failed to get interface addresses: {e}"))?;
    if addrs.is_empty() {
        return Err(format!("Interface '{}' has no addresses", config.interface));
    }
    if bind.ip().is_unspecified() {
        let usable = addrs.iter().find(|ip| match ip {
            IpAddr::V4(v4) => !v4.is_link_local(),
            IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 != 0xfe80,
        });
        let Some(ip) = usable else {
            return Err(format!(
                "Failed to find usable address for interface '{}'",
                config.interface
            ));
        };
        ui_output(&format!(
            "Using interface '{}' address '{ip}'",
            config.interface
        ));
        let chosen = SocketAddr::new(*ip, bind.port());
        config.bind = chosen.to_string();
        return Ok(chosen);
    }
    if !addrs.contains(&bind.ip()) {
        return Err(format!(
            "Interface '{}' has no '{}' address",
            config.interface,
            bind.ip()
        ));
    }
    Ok(bind)
}

/// The parts of a started agent that the signal loop drives.
struct Running {
    agent: Arc<Agent>,
    scripts: Arc<ScriptHandler>,
    rpc: RpcServer,
    http: Option<HttpServer>,
    discovery: Option<Discovery>,
    config: Config,
    args_for_reload: Vec<String>,
    retry_failed: Receiver<()>,
}

fn start(
    config: Config,
    setup: Setup,
    args: &[String],
    logger: Logger,
    gate: &Gate,
    telemetry: &Telemetry,
) -> Result<Running, String> {
    ui_output("Starting Serf agent...");
    let bind = setup.bind;
    let agent = Agent::create(setup, config.clone(), logger.clone()).map_err(|e| e.to_string())?;
    let specs = parse_specs(&config.event_handlers)?;
    agent.set_handler_info(handler_info(&specs));
    let limits = RunnerLimits {
        queue_bytes: config.event_handler_queue_bytes,
        ..RunnerLimits::default()
    };
    let runner = HandlerRunner::new(specs, logger.clone(), limits);
    let scripts = Arc::new(ScriptHandler {
        runner,
        agent: Arc::downgrade(&agent),
    });
    agent.register(scripts.clone());

    // HashiCorp's order: mDNS discovery, then the RPC listener.
    let discovery = match start_discovery(&config, &agent) {
        Ok(d) => d,
        Err(e) => {
            agent.shutdown();
            return Err(e);
        }
    };
    let rpc = match gotext::listen_tcp(&config.rpc_addr).and_then(|l| {
        RpcServer::start(l, agent.clone(), config.rpc_auth.clone()).map_err(|e| e.to_string())
    }) {
        Ok(r) => r,
        Err(e) => {
            if let Some(d) = &discovery {
                d.shutdown();
            }
            agent.shutdown();
            return Err(format!("Error starting RPC listener: {e}"));
        }
    };
    let http = match start_http(&config, &agent, telemetry) {
        Ok(h) => h,
        Err(e) => {
            rpc.shutdown();
            if let Some(d) = &discovery {
                d.shutdown();
            }
            agent.shutdown();
            return Err(format!("Error starting HTTP listener: {e}"));
        }
    };
    ui_output("Starting Serf agent RPC...");
    ui_output("Serf agent running!");
    ui_info(&format!(
        "                  Node name: '{}'",
        config.node_name
    ));
    ui_info(&format!("                  Bind addr: '{bind}'"));
    if !config.advertise.is_empty() {
        if let Ok(a) = addr_parts(&config.advertise) {
            ui_info(&format!("Advertise addr: '{a}'"));
        }
    }
    let encrypted = agent.serf().stats().map(|s| s.encrypted).unwrap_or(false);
    ui_info(&format!(
        "                   RPC addr: '{}'",
        config.rpc_addr
    ));
    if let Some(http) = &http {
        ui_info(&format!(
            "                  HTTP addr: 'http://{}/'",
            http.local_addr()
        ));
    }
    ui_info(&format!("                  Encrypted: {encrypted}"));
    ui_info(&format!(
        "                   Snapshot: {}",
        !config.snapshot_path.is_empty()
    ));
    ui_info(&format!("                    Profile: {}", config.profile));
    ui_info(&format!(
        "Message Compression Enabled: {}",
        config.enable_compression
    ));
    if !config.discover.is_empty() {
        ui_info(&format!("               mDNS cluster: {}", config.discover));
    }

    if !config.start_join.is_empty() {
        ui_output(&format!(
            "Joining cluster...(replay: {})",
            config.replay_on_join
        ));
        match agent.join(&config.start_join, config.replay_on_join) {
            Ok(n) => ui_info(&format!("Join completed. Synced with {n} initial agents")),
            Err(e) => {
                if let Some(h) = &http {
                    h.shutdown();
                }
                rpc.shutdown();
                if let Some(d) = &discovery {
                    d.shutdown();
                }
                agent.shutdown();
                return Err(e.to_string());
            }
        }
    }
    ui_info("");
    ui_output("Log data will now stream in as it occurs:\n");
    gate.open();

    let (retry_tx, retry_failed) = crossbeam_channel::bounded(1);
    if !config.retry_join.is_empty() {
        let (agent, config) = (agent.clone(), config.clone());
        std::thread::spawn(move || {
            if !retry_join(&agent, &config) {
                let _ = retry_tx.send(());
            }
        });
    }
    Ok(Running {
        agent,
        scripts,
        rpc,
        http,
        discovery,
        config,
        args_for_reload: args.to_vec(),
        retry_failed,
    })
}

/// `-http-addr`: the HTTP view, if asked for, behind the same token as the RPC.
fn start_http(
    config: &Config,
    agent: &Arc<Agent>,
    telemetry: &Telemetry,
) -> Result<Option<HttpServer>, String> {
    if config.http_addr.is_empty() {
        return Ok(None);
    }
    let listener = gotext::listen_tcp(&config.http_addr)?;
    HttpServer::start(
        listener,
        agent.clone(),
        config.rpc_auth.clone(),
        telemetry.clone(),
    )
    .map(Some)
    .map_err(|e| e.to_string())
}

/// `-discover`: advertises this agent over mDNS and joins the peers it finds.
fn start_discovery(config: &Config, agent: &Arc<Agent>) -> Result<Option<Discovery>, String> {
    if config.discover.is_empty() {
        return Ok(None);
    }
    let local = agent
        .serf()
        .local_member()
        .map_err(|e| format!("Error starting mDNS listener: {e}"))?;
    let network = config.mdns_in_effect();
    if !network.interface.is_empty() {
        agent.logger().info(format!(
            "agent: Starting mDNS listener on interface {}",
            network.interface
        ));
    }
    mdns::start(
        agent.clone(),
        &config.discover,
        &config.node_name,
        SocketAddr::new(local.addr, local.port),
        &network,
        config.replay_on_join,
    )
    .map(Some)
    .map_err(|e| format!("Error starting mDNS listener: {e}"))
}

/// HashiCorp's `retryJoin`: until one join succeeds or the attempts run out (false then).
fn retry_join(agent: &Agent, config: &Config) -> bool {
    let mut attempt = 0;
    loop {
        if agent.is_shutdown() {
            return true;
        }
        agent.logger().info(format!(
            "agent: Joining cluster...(replay: {})",
            config.replay_on_join
        ));
        match agent.join(&config.retry_join, config.replay_on_join) {
            Ok(n) => {
                agent.logger().info(format!(
                    "agent: Join completed. Synced with {n} initial agents"
                ));
                return true;
            }
            Err(e) => {
                attempt += 1;
                if config.retry_max_attempts > 0 && attempt > config.retry_max_attempts {
                    agent
                        .logger()
                        .error("agent: maximum retry join attempts made, exiting");
                    return false;
                }
                agent.logger().warn(format!(
                    "agent: Join failed: {e}, retrying in {}",
                    super::duration::format(config.retry_interval)
                ));
                if agent.wait_shutdown(config.retry_interval) {
                    return true;
                }
            }
        }
    }
}

impl Running {
    /// Blocks until a signal, a `leave` over RPC, or a failed retry-join ends the agent.
    fn wait_for_exit(mut self) -> i32 {
        let (sig_tx, signals_rx) = crossbeam_channel::unbounded();
        let mut signals = match signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) {
            Ok(s) => s,
            Err(e) => {
                ui_error(&format!("Failed to install signal handlers: {e}"));
                self.stop();
                return 1;
            }
        };
        let signal_handle = signals.handle();
        let signal_thread = std::thread::spawn(move || {
            for s in signals.forever() {
                if sig_tx.send(s).is_err() {
                    return;
                }
            }
        });
        let (down_tx, down_rx) = crossbeam_channel::bounded(1);
        {
            let agent = self.agent.clone();
            std::thread::spawn(move || {
                while !agent.wait_shutdown(Duration::from_secs(3600)) {}
                let _ = down_tx.send(());
            });
        }
        let code = loop {
            let sig = select! {
                recv(signals_rx) -> s => match s { Ok(s) => s, Err(_) => break 1 },
                // Without retry-join the sender is gone at once: only a message means failure.
                recv(self.retry_failed) -> failed => if failed.is_ok() { break 1 } else {
                    self.retry_failed = crossbeam_channel::never();
                    continue;
                },
                recv(down_rx) -> _ => break 0,
            };
            ui_output(&format!("Caught signal: {}", signal_name(sig)));
            if sig == SIGHUP {
                self.reload();
                continue;
            }
            let graceful = (sig == SIGINT && !self.config.skip_leave_on_interrupt)
                || (sig == SIGTERM && self.config.leave_on_terminate);
            if !graceful {
                break 1;
            }
            ui_output("Gracefully shutting down agent...");
            let (left_tx, left_rx) = crossbeam_channel::bounded(1);
            let agent = self.agent.clone();
            std::thread::spawn(move || {
                let result = agent.leave();
                if let Err(e) = &result {
                    ui_error(&format!("Error: {e}"));
                }
                let _ = left_tx.send(result.is_ok());
            });
            break select! {
                recv(signals_rx) -> _ => 1,
                recv(left_rx) -> ok => if ok.unwrap_or(false) { 0 } else { 1 },
                default(GRACEFUL_TIMEOUT) => 1,
            };
        };
        signal_handle.close();
        let _ = signal_thread.join();
        self.stop();
        code
    }

    fn stop(&self) {
        if let Some(d) = &self.discovery {
            d.shutdown();
        }
        if let Some(http) = &self.http {
            http.shutdown();
        }
        self.rpc.shutdown();
        self.agent.shutdown();
        self.scripts.runner.shutdown();
    }

    /// SIGHUP: re-reads the configuration; the log level, the handlers and the tags change.
    fn reload(&mut self) {
        ui_output("Reloading configuration...");
        let Some(new) = read_config(&self.args_for_reload) else {
            ui_error("Failed to reload configs");
            return;
        };
        match new.log_level.parse::<Level>() {
            Ok(level) => self.agent.logger().set_level(level),
            Err(e) => ui_error(&e.to_string()),
        }
        if let Ok(specs) = parse_specs(&new.event_handlers) {
            self.agent.set_handler_info(handler_info(&specs));
            self.scripts.runner.reload(specs);
        }
        let tags = if new.tags_file.is_empty() {
            Some(new.tags.clone())
        } else {
            read_tags_file(std::path::Path::new(&new.tags_file))
                .ok()
                .flatten()
        };
        if let Some(tags) = tags {
            if let Err(e) = self.agent.set_tags(tags) {
                ui_error(&format!("Failed to update tags: {e}"));
            }
        }
        self.config = new;
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        SIGINT => "interrupt",
        SIGTERM => "terminated",
        SIGHUP => "hangup",
        _ => "signal",
    }
}

fn parse_specs(values: &[String]) -> Result<Vec<HandlerSpec>, String> {
    values
        .iter()
        .map(|v| HandlerSpec::parse(v).map_err(|e| e.to_string()))
        .collect()
}

/// `serf info`'s `event_handlers` section: `"<event>:<name>"` → script, one entry per filter
/// element, as HashiCorp's `EventScripts()` splits them.
fn handler_info(specs: &[HandlerSpec]) -> BTreeMap<String, String> {
    let mut info = BTreeMap::new();
    for spec in specs {
        for element in spec.filter.elements() {
            let key = element.to_string();
            let key = if key.contains(':') {
                key
            } else {
                format!("{key}:")
            };
            info.insert(key, spec.script.clone());
        }
    }
    info
}

/// Hands events to the script runner with the local node's name and tags as they are now,
/// and a way for query scripts to answer.
struct ScriptHandler {
    runner: HandlerRunner,
    agent: Weak<Agent>,
}

impl EventHandler for ScriptHandler {
    fn handle(&self, agent: &Agent, event: &Event) {
        let Ok(local) = agent.serf().local_member() else {
            return;
        };
        let responder: Option<Responder> = match event {
            Event::Query(q) => {
                let (weak, ltime, id) = (self.agent.clone(), q.ltime, q.id);
                Some(Arc::new(move |payload: &[u8]| {
                    let agent = weak.upgrade().ok_or("the agent has stopped")?;
                    agent
                        .serf()
                        .respond(ltime, id, payload)
                        .map_err(|e| e.to_string())
                }))
            }
            _ => None,
        };
        let dropped = self.runner.dispatch(
            event,
            DispatchContext {
                local_name: local.name,
                local_tags: local.tags,
                responder,
            },
        );
        agent.count_drops(DropSite::Handler, dropped);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MdnsConfig;

    fn config(json: &str) -> Config {
        let mut c = Config::default();
        c.merge(&serde_json::from_str(json).unwrap()).unwrap();
        c
    }

    #[test]
    fn mdns_flags_lie_over_the_config_files_mdns_block() {
        let args = ["-mdns-iface=lo", "-mdns-disable-ipv6"].map(String::from);
        let (flags, ..) = parse_flags(&args).unwrap();
        let mut c = config(r#"{"mdns":{"interface":"eth9","disable_ipv4":true}}"#);
        c.merge(&flags).unwrap();
        let want = MdnsConfig {
            interface: "lo".into(),
            disable_ipv4: true,
            disable_ipv6: true,
        };
        assert_eq!(c.mdns, want);
        let (flags, ..) = parse_flags(&[]).unwrap();
        c.merge(&flags).unwrap();
        assert_eq!(c.mdns, want, "absent flags change nothing");
    }

    #[test]
    fn mdns_settings_are_checked_as_hashicorp_checks_them() {
        let check = |json: &str| check_mdns(&config(json)).err();
        assert_eq!(check("{}"), None);
        // Only a named mDNS interface is checked: without one HashiCorp's agent starts with
        // both families disabled (and each poll fails).
        assert_eq!(
            check(r#"{"mdns":{"disable_ipv4":true,"disable_ipv6":true}}"#),
            None
        );
        assert_eq!(
            check(r#"{"interface":"lo","mdns":{"disable_ipv4":true,"disable_ipv6":true}}"#),
            None
        );
        assert_eq!(
            check(r#"{"mdns":{"interface":"lo"}}"#).unwrap(),
            "mDNS interface specified without enabling mDNS discovery"
        );
        assert_eq!(
            check(r#"{"discover":"c","mdns":{"interface":"no-such-if0"}}"#).unwrap(),
            "Invalid mDNS network interface: route ip+net: no such network interface"
        );
        assert_eq!(
            check(r#"{"discover":"c","mdns":{"interface":"lo","disable_ipv4":true,"disable_ipv6":true}}"#)
                .unwrap(),
            "Invalid mDNS configuration: both IPv4 and IPv6 are disabled"
        );
        assert_eq!(
            check(r#"{"discover":"c","mdns":{"interface":"lo","disable_ipv6":true}}"#),
            None
        );
    }
}
