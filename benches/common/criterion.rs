//! The criterion settings the micro-benchmarks share: short runs, so `make bench` stays well
//! under its time budget, and the same for codec.rs and protocol.rs, whose figures the
//! protocol summary table puts side by side.

use std::time::Duration;

use criterion::Criterion;

pub fn short_runs() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(30)
}
