//! Telemetry: HashiCorp's metric names, collected the way HashiCorp's agent collects them.
//!
//! The protocol cores, the runtime and the agent emit HashiCorp's `memberlist.*`, `serf.*` and
//! `agent.*` metrics (see [`METRICS`]) through the [`metrics`] facade, at the points where Go's
//! memberlist 0.2.2 and serf 0.9.4 call go-metrics. Without a recorder those calls cost next to
//! nothing; a library user may install any `metrics` recorder (Prometheus, …) to get them. All
//! timers are histograms in **milliseconds** (go-metrics' `MeasureSince` with its default
//! millisecond granularity), byte sizes are in bytes, and the names are HashiCorp's, unchanged.
//!
//! This module is the recorder of the `serf` agent, a port of its go-metrics setup
//! (`command.go`):
//! - every name gets the prefix `serf-agent.` (`metrics.DefaultConfig("serf-agent")`);
//! - an in-memory sink aggregates over 10 s intervals and keeps one minute ([`inmem`]); the
//!   agent prints it on SIGUSR1 ([`Telemetry::dump_on_signal`], format of go-metrics'
//!   `InmemSignal`);
//! - optional statsd (UDP) and statsite (TCP) sinks receive every update as a
//!   `name:value|c`/`|g`/`|ms` line ([`sinks`]);
//! - when a sink is configured, gauge names also carry the host name after the prefix
//!   (`serf-agent.<host>.memberlist.health.score`): go-metrics' `EnableHostname`, which the
//!   agent turns off only when there is no sink.
//!
//! Go's runtime metrics (`runtime.num_goroutines`, `runtime.alloc_bytes`, …) have no
//! counterpart here.
//!
//! ```no_run
//! use serf_agent::telemetry::{install, TelemetryConfig};
//! let telemetry = install(TelemetryConfig {
//!     statsd_addr: Some("127.0.0.1:8125".into()),
//!     statsite_addr: None,
//!     prometheus: false,
//! })?;
//! let _dumper = telemetry.dump_on_signal()?; // SIGUSR1 prints the intervals to stderr
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod inmem;
pub mod sinks;

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use thiserror::Error;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use self::inmem::{Inmem, Interval};
use self::sinks::{LineSink, LineType, SinkKind};

/// HashiCorp's agent prefix (`metrics.DefaultConfig("serf-agent")`).
pub const AGENT_SERVICE: &str = "serf-agent";
/// Aggregation interval and retention of the in-memory sink (`NewInmemSink(10s, 1m)`).
pub const INTERVAL: Duration = Duration::from_secs(10);
pub const RETAIN: Duration = Duration::from_secs(60);
/// Distinct names whose totals [`Telemetry::snapshot`] keeps (names can be chosen by peers, e.g.
/// `serf.events.<name>`, so the map is bounded); later names still reach the intervals and sinks.
pub const MAX_TOTALS: usize = 4096;

/// The agent's telemetry settings (`statsd_addr`, `statsite_addr`; `host:port`). `None` or an
/// empty string leaves the sink out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TelemetryConfig {
    pub statsd_addr: Option<String>,
    pub statsite_addr: Option<String>,
    /// Also keep every metric for a Prometheus scrape ([`Telemetry::prometheus_text`]).
    pub prometheus: bool,
}

/// Everything [`Telemetry`] can be tuned with; [`Options::agent`] gives HashiCorp's agent setup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Prepended to every name, with a dot; empty for none.
    pub service: String,
    /// Inserted after the service in gauge names; `None` for none.
    pub hostname: Option<String>,
    pub interval: Duration,
    pub retain: Duration,
    /// How often the sinks flush (go-metrics: 100 ms).
    pub flush_interval: Duration,
}

impl Options {
    /// HashiCorp's agent: prefix `serf-agent`, 10 s intervals kept 1 minute, and the host name
    /// in gauge names only when `config` has a sink.
    pub fn agent(config: &TelemetryConfig) -> Options {
        let has_sink = [&config.statsd_addr, &config.statsite_addr]
            .iter()
            .any(|a| a.as_deref().is_some_and(|a| !a.is_empty()));
        Options {
            service: AGENT_SERVICE.to_string(),
            hostname: has_sink.then(hostname).flatten(),
            interval: INTERVAL,
            retain: RETAIN,
            flush_interval: sinks::FLUSH_INTERVAL,
        }
    }
}

#[derive(Debug, Error)]
pub enum TelemetryError {
    /// A `metrics` recorder was installed before (only one per process).
    #[error("a metrics recorder is already installed")]
    AlreadyInstalled,
    /// The sink address cannot be used (HashiCorp's agent words it this way).
    #[error("Failed to start {kind} sink. Got: {source}")]
    Sink {
        kind: &'static str,
        addr: String,
        source: io::Error,
    },
}

/// Builds the agent's telemetry ([`Options::agent`]) and installs it as the process-wide
/// `metrics` recorder. Call it once, early (before the serf node starts, so nothing is missed);
/// keep the returned handle for [`Telemetry::dump`], [`Telemetry::dump_on_signal`] and
/// [`Telemetry::snapshot`].
pub fn install(config: TelemetryConfig) -> Result<Telemetry, TelemetryError> {
    let telemetry = Telemetry::new(&config)?;
    metrics::set_global_recorder(telemetry.recorder())
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    Ok(telemetry)
}

/// Totals since start, by metric name as emitted (without the prefix or host name).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Sum of every counter's increments.
    pub counters: BTreeMap<String, f64>,
    /// Every gauge's latest value.
    pub gauges: BTreeMap<String, f64>,
    /// Every histogram's values (timers in milliseconds).
    pub samples: BTreeMap<String, Summary>,
}

impl Snapshot {
    /// One map of numbers: counters and gauges by name, histograms as `<name>.count`,
    /// `<name>.sum`, `<name>.min`, `<name>.max` and `<name>.mean`.
    pub fn flatten(&self) -> BTreeMap<String, f64> {
        let mut out: BTreeMap<String, f64> = self
            .counters
            .iter()
            .chain(&self.gauges)
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        for (name, s) in &self.samples {
            out.insert(format!("{name}.count"), s.count as f64);
            out.insert(format!("{name}.sum"), s.sum);
            out.insert(format!("{name}.min"), s.min);
            out.insert(format!("{name}.max"), s.max);
            out.insert(format!("{name}.mean"), s.mean());
        }
        out
    }
}

/// The values a histogram received.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

impl Summary {
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }

    fn add(&mut self, v: f64) {
        if self.count == 0 || v < self.min {
            self.min = v;
        }
        if self.count == 0 || v > self.max {
            self.max = v;
        }
        self.count += 1;
        self.sum += v;
    }
}

/// The agent's metrics: the in-memory intervals, the totals and the sinks. Cheap to clone.
#[derive(Clone)]
pub struct Telemetry {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("options", &self.shared.options)
            .field("sinks", &self.shared.sinks)
            .finish_non_exhaustive()
    }
}

struct Shared {
    options: Options,
    inmem: Inmem,
    sinks: Vec<LineSink>,
    totals: Mutex<Snapshot>,
    /// The exporter's recorder, fed every update alongside the sinks, and its renderer.
    prometheus: Option<(PrometheusRecorder, PrometheusHandle)>,
}

impl Telemetry {
    /// The agent's telemetry ([`Options::agent`]), not installed: use [`Telemetry::recorder`]
    /// with `metrics::with_local_recorder` or `metrics::set_global_recorder`.
    pub fn new(config: &TelemetryConfig) -> Result<Telemetry, TelemetryError> {
        Telemetry::with_options(Options::agent(config), config)
    }

    /// Telemetry with explicit options; the sinks start now (their threads connect in the
    /// background and retry every 5 s).
    ///
    /// # Panics
    /// If `options.interval` is zero.
    pub fn with_options(
        options: Options,
        config: &TelemetryConfig,
    ) -> Result<Telemetry, TelemetryError> {
        let mut sinks = Vec::new();
        // Statsite first, as the agent adds them to its fanout.
        for (kind, addr) in [
            (SinkKind::Statsite, &config.statsite_addr),
            (SinkKind::Statsd, &config.statsd_addr),
        ] {
            let Some(addr) = addr.as_deref().filter(|a| !a.is_empty()) else {
                continue;
            };
            let sink = LineSink::start(kind, addr, options.flush_interval).map_err(|source| {
                TelemetryError::Sink {
                    kind: kind.name(),
                    addr: addr.to_string(),
                    source,
                }
            })?;
            sinks.push(sink);
        }
        Ok(Telemetry {
            shared: Arc::new(Shared {
                inmem: Inmem::new(options.interval, options.retain),
                options,
                sinks,
                totals: Mutex::new(Snapshot::default()),
                prometheus: config.prometheus.then(|| {
                    let recorder = PrometheusBuilder::new().build_recorder();
                    let handle = recorder.handle();
                    (recorder, handle)
                }),
            }),
        })
    }

    /// A `metrics` recorder feeding this telemetry.
    pub fn recorder(&self) -> TelemetryRecorder {
        TelemetryRecorder {
            shared: self.shared.clone(),
        }
    }

    pub fn options(&self) -> &Options {
        &self.shared.options
    }

    /// The finished intervals in go-metrics' `InmemSignal` format (what SIGUSR1 prints); empty
    /// until the first interval is over. See [`Inmem::dump`].
    pub fn dump(&self) -> String {
        self.shared.inmem.dump(SystemTime::now())
    }

    /// The retained intervals, oldest first, the current one last. Names carry the prefix.
    pub fn intervals(&self) -> Vec<Interval> {
        self.shared.inmem.data(SystemTime::now())
    }

    /// Every metric in the Prometheus text format (`serf-agent.memberlist.msg.alive` as
    /// `serf_agent_memberlist_msg_alive`, with HELP and TYPE lines; timers as summaries), if
    /// the telemetry was built with `prometheus`.
    pub fn prometheus_text(&self) -> Option<String> {
        let (_, handle) = self.shared.prometheus.as_ref()?;
        handle.run_upkeep();
        Some(handle.render())
    }

    /// Totals since the recorder started, by name without prefix (for `serf info`).
    pub fn snapshot(&self) -> Snapshot {
        self.shared.lock_totals().clone()
    }

    /// Prints [`dump`](Self::dump) to stderr on every SIGUSR1, from a thread of its own, as
    /// go-metrics' `DefaultInmemSignal` does. Stops when the returned guard is dropped.
    pub fn dump_on_signal(&self) -> io::Result<SignalDump> {
        self.dump_on_signal_to(io::stderr())
    }

    /// [`dump_on_signal`](Self::dump_on_signal), writing to `out`.
    pub fn dump_on_signal_to(
        &self,
        mut out: impl Write + Send + 'static,
    ) -> io::Result<SignalDump> {
        let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGUSR1])?;
        let handle = signals.handle();
        let telemetry = self.clone();
        let thread = std::thread::Builder::new()
            .name("serf-telemetry-signal".into())
            .spawn(move || {
                for _ in signals.forever() {
                    let _ = out.write_all(telemetry.dump().as_bytes());
                    let _ = out.flush();
                }
            })?;
        Ok(SignalDump {
            handle,
            thread: Some(thread),
        })
    }
}

/// Keeps the SIGUSR1 dump running; dropping it stops the thread (the signal stays caught, so
/// it no longer kills the process).
#[derive(Debug)]
pub struct SignalDump {
    handle: signal_hook::iterator::Handle,
    thread: Option<JoinHandle<()>>,
}

impl Drop for SignalDump {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Shared {
    fn lock_totals(&self) -> std::sync::MutexGuard<'_, Snapshot> {
        self.totals.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn emit(&self, name: &str, value: f64, kind: LineType) {
        if self.sinks.is_empty() {
            return;
        }
        let line = sinks::line(name, value, kind);
        for sink in &self.sinks {
            sink.push(line.clone());
        }
    }
}

/// The `metrics` recorder of a [`Telemetry`].
#[derive(Clone)]
pub struct TelemetryRecorder {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for TelemetryRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryRecorder").finish_non_exhaustive()
    }
}

impl TelemetryRecorder {
    /// `key` under the service prefix, as the Prometheus exporter gets it (labels kept).
    fn exported_key(&self, key: &Key) -> Key {
        let name = self.exported_name(key.name());
        Key::from_parts(name, key.labels().cloned().collect::<Vec<_>>())
    }

    fn exported_name(&self, name: &str) -> String {
        match self.shared.options.service.as_str() {
            "" => name.to_string(),
            service => format!("{service}.{name}"),
        }
    }

    fn handle(&self, key: &Key, gauge: bool, exported: Exported) -> Arc<MetricHandle> {
        // go-metrics flattens labels into the name (their values, dot-separated) and the
        // in-memory sink turns spaces into underscores.
        let mut metric = key.name().to_string();
        for label in key.labels() {
            metric.push('.');
            metric.push_str(label.value());
        }
        let metric = metric.replace(' ', "_");
        let options = &self.shared.options;
        let mut full = String::with_capacity(metric.len() + 32);
        if !options.service.is_empty() {
            full.push_str(&options.service);
            full.push('.');
        }
        if let (true, Some(host)) = (gauge, &options.hostname) {
            full.push_str(host);
            full.push('.');
        }
        full.push_str(&metric);
        Arc::new(MetricHandle {
            shared: self.shared.clone(),
            metric,
            full,
            exported,
        })
    }
}

/// Descriptions and registrations reach the Prometheus exporter, when there is one, under
/// the prefixed name.
impl Recorder for TelemetryRecorder {
    fn describe_counter(&self, name: KeyName, unit: Option<Unit>, text: SharedString) {
        self.describe(name, |p, name| p.describe_counter(name, unit, text));
    }

    fn describe_gauge(&self, name: KeyName, unit: Option<Unit>, text: SharedString) {
        self.describe(name, |p, name| p.describe_gauge(name, unit, text));
    }

    fn describe_histogram(&self, name: KeyName, unit: Option<Unit>, text: SharedString) {
        self.describe(name, |p, name| p.describe_histogram(name, unit, text));
    }

    fn register_counter(&self, key: &Key, meta: &Metadata<'_>) -> Counter {
        let exported = self.export(key, |p, k| Exported::Counter(p.register_counter(k, meta)));
        Counter::from_arc(self.handle(key, false, exported))
    }

    fn register_gauge(&self, key: &Key, meta: &Metadata<'_>) -> Gauge {
        let exported = self.export(key, |p, k| Exported::Gauge(p.register_gauge(k, meta)));
        Gauge::from_arc(self.handle(key, true, exported))
    }

    fn register_histogram(&self, key: &Key, meta: &Metadata<'_>) -> Histogram {
        let exported = self.export(key, |p, k| {
            Exported::Histogram(p.register_histogram(k, meta))
        });
        Histogram::from_arc(self.handle(key, false, exported))
    }
}

impl TelemetryRecorder {
    fn describe(&self, name: KeyName, describe: impl FnOnce(&PrometheusRecorder, KeyName)) {
        if let Some((p, _)) = &self.shared.prometheus {
            describe(p, self.exported_name(name.as_str()).into());
        }
    }

    fn export(
        &self,
        key: &Key,
        register: impl FnOnce(&PrometheusRecorder, &Key) -> Exported,
    ) -> Exported {
        match &self.shared.prometheus {
            Some((p, _)) => register(p, &self.exported_key(key)),
            None => Exported::None,
        }
    }
}

/// A metric's handle in the Prometheus exporter, if there is one.
enum Exported {
    None,
    Counter(Counter),
    Gauge(Gauge),
    Histogram(Histogram),
}

/// One metric's name, resolved once per facade call.
struct MetricHandle {
    shared: Arc<Shared>,
    /// As emitted (labels flattened): the key of the totals.
    metric: String,
    /// With prefix (and host name for gauges): the key of the intervals and sinks.
    full: String,
    exported: Exported,
}

impl MetricHandle {
    fn set_gauge(&self, update: impl FnOnce(f64) -> f64) {
        let value = {
            let mut totals = self.shared.lock_totals();
            let current = totals.gauges.get(&self.metric).copied().unwrap_or(0.0);
            let value = update(current);
            if let Some(v) = totals.gauges.get_mut(&self.metric) {
                *v = value;
            } else if tracked(&totals) {
                totals.gauges.insert(self.metric.clone(), value);
            }
            value
        };
        if let Exported::Gauge(g) = &self.exported {
            g.set(value);
        }
        self.shared
            .inmem
            .set_gauge(&self.full, value, SystemTime::now());
        self.shared.emit(&self.full, value, LineType::Gauge);
    }
}

/// Whether the totals may take one more name.
fn tracked(totals: &Snapshot) -> bool {
    totals.counters.len() + totals.gauges.len() + totals.samples.len() < MAX_TOTALS
}

impl CounterFn for MetricHandle {
    fn increment(&self, value: u64) {
        let v = value as f64;
        {
            let mut totals = self.shared.lock_totals();
            if let Some(total) = totals.counters.get_mut(&self.metric) {
                *total += v;
            } else if tracked(&totals) {
                totals.counters.insert(self.metric.clone(), v);
            }
        }
        if let Exported::Counter(c) = &self.exported {
            c.increment(value);
        }
        self.shared
            .inmem
            .incr_counter(&self.full, v, SystemTime::now());
        self.shared.emit(&self.full, v, LineType::Counter);
    }

    /// Counters only go up here; an absolute value is taken as an increment by that much.
    fn absolute(&self, value: u64) {
        CounterFn::increment(self, value);
    }
}

impl GaugeFn for MetricHandle {
    fn increment(&self, value: f64) {
        self.set_gauge(|v| v + value);
    }

    fn decrement(&self, value: f64) {
        self.set_gauge(|v| v - value);
    }

    fn set(&self, value: f64) {
        self.set_gauge(|_| value);
    }
}

impl HistogramFn for MetricHandle {
    fn record(&self, value: f64) {
        {
            let mut totals = self.shared.lock_totals();
            if let Some(s) = totals.samples.get_mut(&self.metric) {
                s.add(value);
            } else if tracked(&totals) {
                let mut s = Summary::default();
                s.add(value);
                totals.samples.insert(self.metric.clone(), s);
            }
        }
        if let Exported::Histogram(h) = &self.exported {
            h.record(value);
        }
        self.shared
            .inmem
            .add_sample(&self.full, value, SystemTime::now());
        self.shared.emit(&self.full, value, LineType::Sample);
    }
}

/// The host name, as go-metrics takes it from `os.Hostname()`.
fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return None;
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..len]).into_owned();
    (!name.is_empty()).then_some(name)
}

/// What a metric measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// go-metrics' `IncrCounter`.
    Counter,
    /// go-metrics' `SetGauge`.
    Gauge,
    /// go-metrics' `AddSample` and `MeasureSince` (timers, in milliseconds).
    Histogram,
}

/// One of the metrics this crate emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricInfo {
    pub name: &'static str,
    pub kind: MetricKind,
    pub unit: Unit,
    pub description: &'static str,
}

const fn m(
    name: &'static str,
    kind: MetricKind,
    unit: Unit,
    description: &'static str,
) -> MetricInfo {
    MetricInfo {
        name,
        kind,
        unit,
        description,
    }
}

use MetricKind::{Counter as C, Gauge as G, Histogram as H};

/// Every metric name this crate emits, with HashiCorp's names. Not listed, because their names
/// vary: `serf.events.<event name>` and `serf.queries.<query name>` (counters, next to
/// `serf.events` and `serf.queries`) and `agent.invoke.<script>` (timer of each handler run).
pub const METRICS: &[MetricInfo] = &[
    m(
        "memberlist.msg.alive",
        C,
        Unit::Count,
        "alive messages that changed a node's state, refutations included",
    ),
    m(
        "memberlist.msg.suspect",
        C,
        Unit::Count,
        "nodes newly suspected",
    ),
    m(
        "memberlist.msg.dead",
        C,
        Unit::Count,
        "nodes newly declared dead or left",
    ),
    m(
        "memberlist.degraded.probe",
        C,
        Unit::Count,
        "probes run with an interval stretched by poor local health",
    ),
    m(
        "memberlist.degraded.timeout",
        C,
        Unit::Count,
        "suspicions that expired before the expected confirmations",
    ),
    m(
        "memberlist.health.score",
        G,
        Unit::Count,
        "Lifeguard local health score (0 is healthy), set when it changes",
    ),
    m(
        "memberlist.probeNode",
        H,
        Unit::Milliseconds,
        "duration of a probe, until ack or failure",
    ),
    m(
        "memberlist.pushPullNode",
        H,
        Unit::Milliseconds,
        "duration of a push/pull this node started",
    ),
    m(
        "memberlist.gossip",
        H,
        Unit::Milliseconds,
        "time spent in a gossip round, sending included",
    ),
    m(
        "memberlist.udp.sent",
        C,
        Unit::Bytes,
        "bytes of datagrams sent",
    ),
    m(
        "memberlist.udp.received",
        C,
        Unit::Bytes,
        "bytes of datagrams received",
    ),
    m(
        "memberlist.tcp.sent",
        C,
        Unit::Bytes,
        "bytes of stream requests and replies sent",
    ),
    m(
        "memberlist.tcp.accept",
        C,
        Unit::Count,
        "stream connections accepted",
    ),
    m(
        "memberlist.tcp.connect",
        C,
        Unit::Count,
        "push/pull streams opened",
    ),
    m(
        "serf.member.join",
        C,
        Unit::Count,
        "members joined or back, this node included",
    ),
    m(
        "serf.member.flap",
        C,
        Unit::Count,
        "failed members back within the flap timeout (60 s)",
    ),
    m(
        "serf.member.update",
        C,
        Unit::Count,
        "member tag or address updates",
    ),
    m("serf.member.failed", C, Unit::Count, "members failed"),
    m(
        "serf.member.left",
        C,
        Unit::Count,
        "members left gracefully",
    ),
    m(
        "serf.events",
        C,
        Unit::Count,
        "new user events, sent or received (also per name: serf.events.<name>)",
    ),
    m(
        "serf.queries",
        C,
        Unit::Count,
        "new queries, sent or received (also per name: serf.queries.<name>)",
    ),
    m(
        "serf.query_acks",
        C,
        Unit::Count,
        "acks to this node's queries",
    ),
    m(
        "serf.query_responses",
        C,
        Unit::Count,
        "responses to this node's queries",
    ),
    m(
        "serf.query_duplicate_acks",
        C,
        Unit::Count,
        "repeated acks, ignored",
    ),
    m(
        "serf.query_duplicate_responses",
        C,
        Unit::Count,
        "repeated responses, ignored",
    ),
    m(
        "serf.msgs.sent",
        H,
        Unit::Bytes,
        "size of each serf message gossiped",
    ),
    m(
        "serf.msgs.received",
        H,
        Unit::Bytes,
        "size of each serf message received",
    ),
    m(
        "serf.queue.Intent",
        H,
        Unit::Count,
        "intent broadcasts queued, sampled every 30 s",
    ),
    m(
        "serf.queue.Event",
        H,
        Unit::Count,
        "user-event broadcasts queued, sampled every 30 s",
    ),
    m(
        "serf.queue.Query",
        H,
        Unit::Count,
        "query broadcasts queued, sampled every 30 s",
    ),
    m(
        "serf.coordinate.adjustment-ms",
        H,
        Unit::Milliseconds,
        "how far each coordinate update moved this node",
    ),
    m(
        "serf.coordinate.rejected",
        C,
        Unit::Count,
        "coordinates refused by the Vivaldi client",
    ),
    m(
        "serf.coordinate.zero-rtt",
        C,
        Unit::Count,
        "pings with a zero round-trip time",
    ),
    m(
        "serf.snapshot.appendLine",
        H,
        Unit::Milliseconds,
        "time to append a snapshot record (and compact, if due)",
    ),
    m(
        "serf.snapshot.compact",
        H,
        Unit::Milliseconds,
        "time to compact the snapshot file",
    ),
    m("agent.ipc.accept", C, Unit::Count, "RPC clients accepted"),
    m(
        "agent.ipc.command",
        C,
        Unit::Count,
        "RPC commands received after the handshake",
    ),
];

/// Describes every metric of [`METRICS`] (unit and text) to the installed recorder, for
/// recorders that use descriptions (e.g. Prometheus exporters).
pub fn describe() {
    for info in METRICS {
        match info.kind {
            MetricKind::Counter => {
                metrics::describe_counter!(info.name, info.unit, info.description)
            }
            MetricKind::Gauge => metrics::describe_gauge!(info.name, info.unit, info.description),
            MetricKind::Histogram => {
                metrics::describe_histogram!(info.name, info.unit, info.description)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    fn local(hostname: Option<&str>) -> Telemetry {
        let options = Options {
            hostname: hostname.map(str::to_string),
            ..Options::agent(&TelemetryConfig::default())
        };
        Telemetry::with_options(options, &TelemetryConfig::default()).unwrap()
    }

    #[test]
    fn the_agent_prefix_and_no_host_name_without_sinks() {
        let o = Options::agent(&TelemetryConfig::default());
        assert_eq!(o.service, "serf-agent");
        assert_eq!(o.hostname, None);
        assert_eq!((o.interval, o.retain), (INTERVAL, RETAIN));
        let o = Options::agent(&TelemetryConfig {
            statsd_addr: Some(String::new()),
            statsite_addr: None,
            ..TelemetryConfig::default()
        });
        assert_eq!(o.hostname, None, "an empty address is no sink");
    }

    #[test]
    fn facade_calls_reach_intervals_and_totals() {
        let t = local(Some("host1"));
        metrics::with_local_recorder(&t.recorder(), || {
            metrics::counter!("serf.member.join").increment(1);
            metrics::counter!("serf.member.join").increment(2);
            metrics::gauge!("memberlist.health.score").set(3.0);
            metrics::gauge!("memberlist.health.score").decrement(1.0);
            metrics::histogram!("memberlist.gossip").record(0.5);
            metrics::histogram!("memberlist.gossip").record(1.5);
            metrics::counter!("serf.events.deploy now").increment(1);
            metrics::counter!("agent.invoke", "script" => "x.sh").increment(1);
        });
        let snap = t.snapshot();
        assert_eq!(snap.counters["serf.member.join"], 3.0);
        assert_eq!(snap.counters["serf.events.deploy_now"], 1.0);
        assert_eq!(snap.counters["agent.invoke.x.sh"], 1.0);
        assert_eq!(snap.gauges["memberlist.health.score"], 2.0);
        let gossip = snap.samples["memberlist.gossip"];
        assert_eq!(
            (gossip.count, gossip.sum, gossip.min, gossip.max),
            (2, 2.0, 0.5, 1.5)
        );
        let flat = snap.flatten();
        assert_eq!(flat["memberlist.gossip.mean"], 1.0);
        assert_eq!(flat["serf.member.join"], 3.0);

        let current = t.intervals().pop().unwrap();
        assert_eq!(current.counters["serf-agent.serf.member.join"].sum, 3.0);
        assert_eq!(current.counters["serf-agent.serf.member.join"].count, 2);
        // Only gauges carry the host name.
        assert_eq!(
            current.gauges["serf-agent.host1.memberlist.health.score"],
            2.0
        );
        assert_eq!(current.samples["serf-agent.memberlist.gossip"].count, 2);
    }

    #[test]
    fn short_intervals_show_up_in_the_dump() {
        let options = Options {
            interval: Duration::from_millis(50),
            retain: Duration::from_millis(300),
            ..Options::agent(&TelemetryConfig::default())
        };
        let t = Telemetry::with_options(options, &TelemetryConfig::default()).unwrap();
        metrics::with_local_recorder(&t.recorder(), || {
            metrics::counter!("serf.events").increment(1);
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let dump = loop {
            let d = t.dump();
            if !d.is_empty() || std::time::Instant::now() > deadline {
                break d;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(
            dump.contains("][C] 'serf-agent.serf.events': Count: 1 Sum: 1.000 LastUpdated: "),
            "{dump}"
        );
    }

    #[test]
    fn sinks_get_every_update_with_the_host_name_on_gauges() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let config = TelemetryConfig {
            statsd_addr: Some(server.local_addr().unwrap().to_string()),
            statsite_addr: None,
            ..TelemetryConfig::default()
        };
        let options = Options {
            hostname: Some("h".into()),
            flush_interval: Duration::from_millis(20),
            ..Options::agent(&config)
        };
        let t = Telemetry::with_options(options, &config).unwrap();
        metrics::with_local_recorder(&t.recorder(), || {
            metrics::counter!("memberlist.udp.sent").increment(120);
            metrics::gauge!("memberlist.health.score").set(1.0);
            metrics::histogram!("memberlist.probeNode").record(2.25);
        });
        let mut got = String::new();
        let mut buf = [0u8; 2048];
        while got.lines().count() < 3 {
            let n = server.recv(&mut buf).expect("statsd lines within 5 s");
            got.push_str(std::str::from_utf8(&buf[..n]).unwrap());
        }
        assert_eq!(
            got,
            "serf-agent.memberlist.udp.sent:120.000000|c\n\
             serf-agent.h.memberlist.health.score:1.000000|g\n\
             serf-agent.memberlist.probeNode:2.250000|ms\n"
        );
    }

    #[test]
    fn a_bad_sink_address_does_not_stop_the_agent() {
        // go-metrics' sinks never fail to start: HashiCorp's agent runs with any address.
        let telemetry = Telemetry::new(&TelemetryConfig {
            statsd_addr: Some("nowhere:x".into()),
            statsite_addr: Some("nowhere".into()),
            ..TelemetryConfig::default()
        });
        assert!(telemetry.is_ok());
    }

    /// The cores count, the runtime's exporter turns their totals and samples into HashiCorp's
    /// names, in step with the counters the cores keep: a simulated cluster (same thread, so a
    /// local recorder sees every node) joins, fires an event, queries, and loses a node, with
    /// an exporter per node read after every step as the runtime reads it after every turn.
    #[test]
    fn the_cores_counts_reach_hashicorps_names_in_step_with_their_counters() {
        use serf::runtime::MetricsExporter;
        use serf_proto::memberlist::machine::Machine;
        use serf_proto::memberlist::Profile;
        use serf_proto::serf::{Config, Event, MemberStatus, QueryParams, Serf};
        use serf_proto::sim::Sim;
        use std::net::SocketAddr;
        use std::time::Instant;

        let addr = |i: usize| SocketAddr::from(([127, 3, 0, i as u8 + 1], 7946));
        let name = |i: usize| format!("t{i}");
        let t = local(None);
        let mut exporters: Vec<MetricsExporter> =
            (0..3).map(|_| MetricsExporter::default()).collect();
        // Runs the world in 20 ms steps until `done` (or `limit`), exporting after each.
        let run = |world: &mut Sim<Serf>,
                   exporters: &mut [MetricsExporter],
                   limit: Duration,
                   done: &dyn Fn(&Sim<Serf>) -> bool| {
            let started = world.now();
            while !done(world) && world.now().duration_since(started) < limit {
                world.run_for(Duration::from_millis(20));
                for (i, exporter) in exporters.iter_mut().enumerate() {
                    world.with_machine(i, |s, _| exporter.export(s));
                }
            }
            done(world)
        };
        let world = metrics::with_local_recorder(&t.recorder(), || {
            let mut world: Sim<Serf> = Sim::new(7, Instant::now());
            for (i, exporter) in exporters.iter_mut().enumerate() {
                let seed = world.node_seed();
                let config = Config::new(Profile::Lan, &name(i), addr(i));
                world.add(addr(i), Serf::new(config, world.now(), seed).unwrap());
                // The first read makes the core keep samples, as the runtime's does at start.
                world.with_machine(i, |s, _| exporter.export(s));
                if i > 0 {
                    world.with_machine(i, |s, now| s.join(now, &[addr(0)], false).unwrap());
                }
            }
            let all_alive = |w: &Sim<Serf>| {
                (0..3).all(|i| {
                    (0..3).all(|of| {
                        w.machine(i).member(&name(of)).map(|m| m.status)
                            == Some(MemberStatus::Alive)
                    })
                })
            };
            assert!(run(
                &mut world,
                &mut exporters,
                Duration::from_secs(10),
                &all_alive
            ));
            world.with_machine(0, |s, now| {
                s.user_event(now, "deploy", b"v1", false).unwrap()
            });
            let params = QueryParams {
                request_ack: true,
                ..QueryParams::default()
            };
            world.with_machine(0, |s, now| s.query(now, "uptime", b"", &params).unwrap());
            for _ in 0..50 {
                run(
                    &mut world,
                    &mut exporters,
                    Duration::from_millis(20),
                    &|_| false,
                );
                for i in 1..3 {
                    world.with_machine(i, |s, now| {
                        while let Some(e) = s.poll_event() {
                            if let Event::Query(q) = e {
                                let _ = s.respond(now, q.ltime, q.id, b"up");
                            }
                        }
                    });
                }
            }
            world.kill(2);
            let failed = |w: &Sim<Serf>| {
                (0..2).all(|i| {
                    w.machine(i).member(&name(2)).map(|m| m.status) == Some(MemberStatus::Failed)
                })
            };
            assert!(run(
                &mut world,
                &mut exporters,
                Duration::from_secs(60),
                &failed
            ));
            run(&mut world, &mut exporters, Duration::from_secs(31), &|_| {
                false
            });
            world
        });

        let snap = t.snapshot();
        let counter = |n: &str| snap.counters.get(n).copied().unwrap_or(0.0) as u64;
        let samples = |n: &str| snap.samples.get(n).map_or(0, |s| s.count);
        let serf_sum = |f: fn(&serf_proto::serf::Counters) -> u64| -> u64 {
            (0..3).map(|i| f(world.machine(i).counters())).sum()
        };
        let ml_sum = |f: fn(&serf_proto::memberlist::Stats) -> u64| -> u64 {
            (0..3)
                .map(|i| f(world.machine(i).memberlist().stats()))
                .sum()
        };
        // Every node saw all three join (itself included), the event and the query.
        assert_eq!(counter("serf.member.join"), 9);
        assert_eq!(counter("serf.member.join"), serf_sum(|c| c.member_joins));
        assert_eq!(counter("serf.events"), 3);
        assert_eq!(counter("serf.events.deploy"), 3);
        assert_eq!(counter("serf.queries"), 3);
        assert_eq!(counter("serf.queries.uptime"), 3);
        assert_eq!(
            counter("serf.query_acks"),
            3,
            "all three ack, the sender too"
        );
        assert_eq!(counter("serf.query_responses"), 2);
        assert_eq!(
            counter("serf.query_responses"),
            serf_sum(|c| c.query_responses)
        );
        assert_eq!(counter("serf.member.failed"), 2);
        assert_eq!(
            counter("serf.member.failed"),
            serf_sum(|c| c.member_failures)
        );
        assert!(samples("serf.msgs.sent") > 0);
        assert_eq!(samples("serf.msgs.sent"), serf_sum(|c| c.msgs_sent));
        assert_eq!(samples("serf.msgs.received"), serf_sum(|c| c.msgs_received));
        // Sampled every 30 s on each running node (the killed one stopped before).
        assert!(samples("serf.queue.Intent") >= 2);
        assert_eq!(samples("serf.queue.Intent"), samples("serf.queue.Query"));
        assert_eq!(samples("serf.queue.Intent"), samples("serf.queue.Event"));
        assert!(samples("serf.coordinate.adjustment-ms") > 0);
        // memberlist
        assert_eq!(counter("memberlist.msg.alive"), ml_sum(|s| s.msg_alive));
        assert!(counter("memberlist.msg.alive") >= 9);
        assert_eq!(counter("memberlist.msg.suspect"), ml_sum(|s| s.msg_suspect));
        assert!(counter("memberlist.msg.suspect") >= 1);
        assert_eq!(counter("memberlist.msg.dead"), ml_sum(|s| s.msg_dead));
        assert!(counter("memberlist.msg.dead") >= 1);
        assert_eq!(counter("memberlist.udp.sent"), ml_sum(|s| s.bytes_sent));
        assert_eq!(
            counter("memberlist.udp.received"),
            ml_sum(|s| s.bytes_received)
        );
        assert_eq!(
            counter("memberlist.tcp.sent"),
            ml_sum(|s| s.stream_bytes_sent)
        );
        assert_eq!(
            counter("memberlist.tcp.connect"),
            ml_sum(|s| s.push_pulls_initiated)
        );
        assert!(counter("memberlist.tcp.connect") >= 2, "two joins");
        assert_eq!(samples("memberlist.probeNode"), ml_sum(|s| s.probes));
        assert!(samples("memberlist.pushPullNode") >= 2);
        assert_eq!(
            counter("memberlist.degraded.probe"),
            ml_sum(|s| s.degraded_probes)
        );
        // The survivors' failed probes of the dead node raised their health score.
        assert!(snap.gauges.contains_key("memberlist.health.score"));
        // The gossip timer is the runtime's: the sim has none, but counts rounds.
        assert!(ml_sum(|s| s.gossip_rounds) > 0);
        assert_eq!(
            world.machine(0).gossip_rounds(),
            world.machine(0).memberlist().stats().gossip_rounds
        );
    }

    #[test]
    fn the_catalog_has_unique_names() {
        let mut names: Vec<&str> = METRICS.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), METRICS.len());
        // Describing without a recorder is a no-op.
        describe();
    }
}
