//! What the cores measure for HashiCorp's metrics, without a metrics library.
//!
//! The cores only count: monotonic totals in their stats structs
//! ([`Stats`](crate::memberlist::Stats), [`Counters`](crate::serf::Counters)), and
//! [`Samples`] for what a total cannot hold (timings and sizes, which go-metrics samples, and
//! counts keyed by an event's name). Whoever runs a core reads both through
//! [`Machine::read_telemetry`](crate::memberlist::machine::Machine::read_telemetry) and exports
//! them; the library's runtime hands them to the `metrics` facade under HashiCorp's names, which
//! are declared here and nowhere else.

/// A counter HashiCorp's memberlist or serf increments, with the running total a core keeps for
/// it. A reader turns totals into increments by remembering the last total it saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Total {
    pub name: &'static str,
    pub value: u64,
}

/// A distribution go-metrics samples (`MeasureSince`, `AddSample`): timers in milliseconds,
/// sizes in bytes, queue depths in entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Histogram {
    /// A push/pull exchange we started, in ms.
    PushPullNode,
    /// One probe round, in ms.
    ProbeNode,
    /// Depths of serf's broadcast queues at each queue check.
    QueueIntent,
    QueueEvent,
    QueueQuery,
    /// How far one Vivaldi update moved this node's coordinate, in ms.
    CoordinateAdjustment,
    /// Sizes of serf messages received and gossiped.
    MsgsReceived,
    MsgsSent,
}

impl Histogram {
    /// HashiCorp's name for it.
    pub const fn name(self) -> &'static str {
        match self {
            Histogram::PushPullNode => "memberlist.pushPullNode",
            Histogram::ProbeNode => "memberlist.probeNode",
            Histogram::QueueIntent => "serf.queue.Intent",
            Histogram::QueueEvent => "serf.queue.Event",
            Histogram::QueueQuery => "serf.queue.Query",
            Histogram::CoordinateAdjustment => "serf.coordinate.adjustment-ms",
            Histogram::MsgsReceived => "serf.msgs.received",
            Histogram::MsgsSent => "serf.msgs.sent",
        }
    }
}

/// Counters HashiCorp keys by a name that peers choose: `serf.events.<name>` and
/// `serf.queries.<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamedCounter {
    UserEvent,
    Query,
}

impl NamedCounter {
    /// The prefix the event's name is appended to, after a dot.
    pub const fn prefix(self) -> &'static str {
        match self {
            NamedCounter::UserEvent => "serf.events",
            NamedCounter::Query => "serf.queries",
        }
    }
}

/// One observation a total cannot hold.
#[derive(Debug, Clone, PartialEq)]
pub enum Sample {
    Histogram(Histogram, f64),
    /// One more event or query called `name`.
    Named(NamedCounter, Box<str>),
}

/// Observations waiting for a reader. Nothing is kept until the first [`Samples::drain`]: a
/// simulator that never reads them pays nothing, and a reader that stops (or falls behind by
/// more than [`Samples::CAPACITY`]) loses samples, never memory.
#[derive(Debug, Default)]
pub struct Samples {
    buffer: Option<Vec<Sample>>,
}

impl Samples {
    /// Samples kept between two reads; later ones are dropped until the next read.
    pub const CAPACITY: usize = 4096;

    pub fn histogram(&mut self, histogram: Histogram, value: f64) {
        self.push(|| Sample::Histogram(histogram, value));
    }

    pub fn named(&mut self, counter: NamedCounter, name: &str) {
        self.push(|| Sample::Named(counter, name.into()));
    }

    fn push(&mut self, sample: impl FnOnce() -> Sample) {
        if let Some(buffer) = &mut self.buffer {
            if buffer.len() < Self::CAPACITY {
                buffer.push(sample());
            }
        }
    }

    /// Hands every sample kept since the last call to `out`, and keeps samples from now on.
    pub fn drain(&mut self, out: &mut dyn FnMut(Reading)) {
        for sample in self.buffer.get_or_insert_with(Vec::new).drain(..) {
            out(Reading::Sample(sample));
        }
    }
}

/// What a core reports to [`Machine::read_telemetry`](crate::memberlist::machine::Machine::read_telemetry).
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    Total(Total),
    /// A level that goes up and down (`memberlist.health.score`).
    Gauge(&'static str, f64),
    Sample(Sample),
}
