//! Hands what a core counted to the `metrics` facade, under HashiCorp's names.
//!
//! The cores only count (see `serf_proto::telemetry`); after each turn of the loop the runtime
//! reads their totals and samples and turns them into `metrics` calls. Without a recorder
//! installed those calls cost next to nothing; the agent installs one (statsd, statsite, the
//! SIGUSR1 dump), and a library user may install any other.

use std::collections::HashMap;

use serf_proto::memberlist::machine::Machine;
use serf_proto::telemetry::{Reading, Sample};

/// Exports one core's counts; keeps the last total seen of each counter, so that only
/// increments are reported. Public for runtimes of one's own (the simulator's tests use it).
#[derive(Debug, Default)]
pub struct MetricsExporter {
    last: HashMap<&'static str, u64>,
}

impl MetricsExporter {
    pub fn export(&mut self, machine: &mut impl Machine) {
        machine.read_telemetry(&mut |reading| match reading {
            Reading::Total(total) => {
                let last = self.last.entry(total.name).or_default();
                if total.value > *last {
                    metrics::counter!(total.name).increment(total.value - *last);
                    *last = total.value;
                }
            }
            Reading::Gauge(name, value) => metrics::gauge!(name).set(value),
            Reading::Sample(Sample::Histogram(histogram, value)) => {
                metrics::histogram!(histogram.name()).record(value);
            }
            Reading::Sample(Sample::Named(counter, name)) => {
                metrics::counter!(format!("{}.{name}", counter.prefix())).increment(1);
            }
        });
    }
}
