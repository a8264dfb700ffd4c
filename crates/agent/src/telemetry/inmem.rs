//! In-memory aggregation over fixed intervals, as go-metrics' `InmemSink` does: every counter,
//! gauge and sample lands in the interval of wall-clock time it happened in (10 s by default,
//! aligned to multiples of the interval since the Unix epoch); the newest intervals are kept (one
//! minute's worth by default) and older ones dropped. [`Inmem::dump`] renders the finished
//! intervals the way go-metrics' `InmemSignal` prints them on SIGUSR1.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A rolled-up series of values (go-metrics' `AggregateSample`): what a counter or a sample
/// received during one interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aggregate {
    pub count: u64,
    pub sum: f64,
    pub sum_sq: f64,
    pub min: f64,
    pub max: f64,
    /// `sum` per second of the interval.
    pub rate: f64,
    pub last_updated: SystemTime,
}

impl Aggregate {
    fn new(at: SystemTime) -> Aggregate {
        Aggregate {
            count: 0,
            sum: 0.0,
            sum_sq: 0.0,
            min: 0.0,
            max: 0.0,
            rate: 0.0,
            last_updated: at,
        }
    }

    fn ingest(&mut self, v: f64, rate_denominator: f64, at: SystemTime) {
        self.count += 1;
        self.sum += v;
        self.sum_sq += v * v;
        if v < self.min || self.count == 1 {
            self.min = v;
        }
        if v > self.max || self.count == 1 {
            self.max = v;
        }
        self.rate = self.sum / rate_denominator;
        self.last_updated = at;
    }

    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }

    /// The sample standard deviation, computed as go-metrics does (0 below two values).
    pub fn stddev(&self) -> f64 {
        let n = self.count as f64;
        let div = n * (n - 1.0);
        if div == 0.0 {
            return 0.0;
        }
        let num = n * self.sum_sq - self.sum * self.sum;
        (num / div).max(0.0).sqrt()
    }
}

/// go-metrics' `AggregateSample.String()`.
impl std::fmt::Display for Aggregate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let updated = go_time(self.last_updated, true);
        if self.count == 0 {
            write!(f, "Count: 0")
        } else if self.stddev() == 0.0 {
            write!(
                f,
                "Count: {} Sum: {:.3} LastUpdated: {updated}",
                self.count, self.sum
            )
        } else {
            write!(
                f,
                "Count: {} Min: {:.3} Mean: {:.3} Max: {:.3} Stddev: {:.3} Sum: {:.3} LastUpdated: {updated}",
                self.count,
                self.min,
                self.mean(),
                self.max,
                self.stddev(),
                self.sum
            )
        }
    }
}

/// What was recorded during one interval, by full metric name.
#[derive(Debug, Clone, PartialEq)]
pub struct Interval {
    /// Start of the interval (a multiple of the interval length since the epoch).
    pub start: SystemTime,
    /// The last value each gauge was set to.
    pub gauges: BTreeMap<String, f64>,
    pub counters: BTreeMap<String, Aggregate>,
    /// Histogram values: timers (in milliseconds) and samples.
    pub samples: BTreeMap<String, Aggregate>,
}

impl Interval {
    fn new(start: SystemTime) -> Interval {
        Interval {
            start,
            gauges: BTreeMap::new(),
            counters: BTreeMap::new(),
            samples: BTreeMap::new(),
        }
    }
}

/// The aggregating sink: intervals of `interval`, at most `retain / interval` of them kept.
#[derive(Debug)]
pub struct Inmem {
    interval: Duration,
    max_intervals: usize,
    rate_denominator: f64,
    intervals: Mutex<VecDeque<Interval>>,
}

impl Inmem {
    /// # Panics
    /// If `interval` is zero.
    pub fn new(interval: Duration, retain: Duration) -> Inmem {
        assert!(!interval.is_zero(), "telemetry interval must not be zero");
        let max_intervals = (retain.as_nanos() / interval.as_nanos()).max(1);
        Inmem {
            interval,
            max_intervals: usize::try_from(max_intervals).unwrap_or(usize::MAX),
            rate_denominator: interval.as_secs_f64(),
            intervals: Mutex::new(VecDeque::new()),
        }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    pub fn set_gauge(&self, name: &str, value: f64, at: SystemTime) {
        self.with_interval(at, |i| {
            i.gauges.insert(name.to_string(), value);
        });
    }

    pub fn incr_counter(&self, name: &str, value: f64, at: SystemTime) {
        let denominator = self.rate_denominator;
        self.with_interval(at, |i| {
            i.counters
                .entry(name.to_string())
                .or_insert_with(|| Aggregate::new(at))
                .ingest(value, denominator, at);
        });
    }

    pub fn add_sample(&self, name: &str, value: f64, at: SystemTime) {
        let denominator = self.rate_denominator;
        self.with_interval(at, |i| {
            i.samples
                .entry(name.to_string())
                .or_insert_with(|| Aggregate::new(at))
                .ingest(value, denominator, at);
        });
    }

    /// Every retained interval, oldest first; the last one is the interval `now` falls in
    /// (created if nothing was recorded in it yet, as go-metrics' `Data` does).
    pub fn data(&self, now: SystemTime) -> Vec<Interval> {
        self.with_interval(now, |_| ());
        self.lock().iter().cloned().collect()
    }

    /// The finished intervals in go-metrics' `InmemSignal` format, one line per metric:
    /// `[<interval start>][G] 'name': 1.000` for gauges, and for counters (`[C]`) and samples
    /// (`[S]`) `Count: n Sum: s LastUpdated: t`, or with `Min: Mean: Max: Stddev:` when the
    /// values differ. Times are printed as Go prints a `time.Time`, in UTC. The interval still
    /// being aggregated is left out.
    pub fn dump(&self, now: SystemTime) -> String {
        let data = self.data(now);
        let mut out = String::new();
        for i in &data[..data.len().saturating_sub(1)] {
            let start = go_time(i.start, false);
            for (name, v) in &i.gauges {
                let _ = writeln!(out, "[{start}][G] '{name}': {v:.3}");
            }
            for (name, agg) in &i.counters {
                let _ = writeln!(out, "[{start}][C] '{name}': {agg}");
            }
            for (name, agg) in &i.samples {
                let _ = writeln!(out, "[{start}][S] '{name}': {agg}");
            }
        }
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Interval>> {
        self.intervals.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with_interval<R>(&self, at: SystemTime, f: impl FnOnce(&mut Interval) -> R) -> R {
        let start = truncate(at, self.interval);
        let mut intervals = self.lock();
        if intervals.back().map(|i| i.start) != Some(start) {
            intervals.push_back(Interval::new(start));
            while intervals.len() > self.max_intervals {
                intervals.pop_front();
            }
        }
        f(intervals.back_mut().expect("an interval was just ensured"))
    }
}

/// `t` rounded down to a multiple of `interval` since the epoch (Go's `Time.Truncate`, which
/// counts from year 1; both agree for whole seconds dividing 62 135 596 800).
fn truncate(t: SystemTime, interval: Duration) -> SystemTime {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
    let step = interval.as_nanos();
    let floored = since - since % step;
    let secs = u64::try_from(floored / 1_000_000_000).unwrap_or(u64::MAX);
    UNIX_EPOCH + Duration::new(secs, (floored % 1_000_000_000) as u32)
}

/// A time as Go's `time.Time.String()` prints it, in UTC: `2006-01-02 15:04:05 +0000 UTC`, with
/// the fraction of a second (trailing zeros cut) when `fraction`. Go adds the monotonic clock
/// reading (`m=+1.23`) to `time.Now()` values; that is left out.
pub fn go_time(t: SystemTime, fraction: bool) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    let mut s = format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    let nanos = since.subsec_nanos();
    if fraction && nanos > 0 {
        let digits = format!("{nanos:09}");
        s.push('.');
        s.push_str(digits.trim_end_matches('0'));
    }
    s.push_str(" +0000 UTC");
    s
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis)
    }

    const T0: u64 = 1_700_000_000; // 2023-11-14 22:13:20 UTC, a multiple of 10 s

    #[test]
    fn go_time_formats_like_go() {
        assert_eq!(go_time(at(0, 0), true), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(go_time(at(T0, 0), false), "2023-11-14 22:13:20 +0000 UTC");
        assert_eq!(
            go_time(at(T0, 250), true),
            "2023-11-14 22:13:20.25 +0000 UTC"
        );
        assert_eq!(go_time(at(T0, 250), false), "2023-11-14 22:13:20 +0000 UTC");
        // Leap day and a year boundary.
        assert_eq!(
            go_time(at(951_782_400, 0), false),
            "2000-02-29 00:00:00 +0000 UTC"
        );
        assert_eq!(
            go_time(at(1_704_067_199, 0), false),
            "2023-12-31 23:59:59 +0000 UTC"
        );
    }

    #[test]
    fn values_aggregate_per_interval() {
        let m = Inmem::new(Duration::from_secs(10), Duration::from_secs(60));
        m.incr_counter("c", 1.0, at(T0, 0));
        m.set_gauge("g", 1.0, at(T0, 1));
        m.add_sample("s", 2.0, at(T0 + 1, 0));
        m.set_gauge("g", 7.0, at(T0 + 5, 0));
        m.incr_counter("c", 3.0, at(T0 + 9, 999));
        m.incr_counter("c", 5.0, at(T0 + 10, 0));
        let data = m.data(at(T0 + 10, 1));
        assert_eq!(data.len(), 2);
        assert_eq!(data[0].start, at(T0, 0));
        assert_eq!(data[1].start, at(T0 + 10, 0));
        let c = data[0].counters["c"];
        assert_eq!((c.count, c.sum, c.min, c.max), (2, 4.0, 1.0, 3.0));
        assert_eq!(c.mean(), 2.0);
        assert!((c.rate - 0.4).abs() < 1e-12);
        assert!((c.stddev() - 2f64.sqrt()).abs() < 1e-12);
        assert_eq!(c.last_updated, at(T0 + 9, 999));
        assert_eq!(data[0].gauges["g"], 7.0);
        assert_eq!(data[0].samples["s"].count, 1);
        assert_eq!(data[1].counters["c"].sum, 5.0);
        assert!(data[1].gauges.is_empty());
    }

    #[test]
    fn only_a_minute_of_intervals_is_kept() {
        let m = Inmem::new(Duration::from_secs(10), Duration::from_secs(60));
        for k in 0..9 {
            m.incr_counter("c", k as f64, at(T0 + 10 * k, 0));
        }
        let data = m.data(at(T0 + 80, 0));
        assert_eq!(data.len(), 6);
        assert_eq!(data[0].start, at(T0 + 30, 0));
        assert_eq!(data[5].start, at(T0 + 80, 0));
        // Reading creates the current interval, which also pushes the oldest out.
        let data = m.data(at(T0 + 95, 0));
        assert_eq!(data.len(), 6);
        assert_eq!(data[0].start, at(T0 + 40, 0));
        assert!(data[5].counters.is_empty());
    }

    #[test]
    fn dump_prints_finished_intervals_in_inmem_signal_format() {
        let m = Inmem::new(Duration::from_secs(10), Duration::from_secs(60));
        m.set_gauge("serf-agent.memberlist.health.score", 2.0, at(T0, 0));
        m.incr_counter("serf-agent.serf.member.join", 1.0, at(T0 + 1, 500));
        m.incr_counter("serf-agent.serf.member.join", 1.0, at(T0 + 2, 0));
        m.add_sample("serf-agent.memberlist.gossip", 1.0, at(T0 + 3, 0));
        m.add_sample("serf-agent.memberlist.gossip", 3.0, at(T0 + 4, 0));
        // The current interval is not printed.
        m.incr_counter("serf-agent.serf.events", 1.0, at(T0 + 10, 0));
        let dump = m.dump(at(T0 + 11, 0));
        let expected = "\
[2023-11-14 22:13:20 +0000 UTC][G] 'serf-agent.memberlist.health.score': 2.000
[2023-11-14 22:13:20 +0000 UTC][C] 'serf-agent.serf.member.join': Count: 2 Sum: 2.000 LastUpdated: 2023-11-14 22:13:22 +0000 UTC
[2023-11-14 22:13:20 +0000 UTC][S] 'serf-agent.memberlist.gossip': Count: 2 Min: 1.000 Mean: 2.000 Max: 3.000 Stddev: 1.414 Sum: 4.000 LastUpdated: 2023-11-14 22:13:24 +0000 UTC
";
        assert_eq!(dump, expected);
        let fresh = Inmem::new(Duration::from_secs(10), Duration::from_secs(60));
        fresh.incr_counter("c", 1.0, at(T0, 0));
        assert_eq!(fresh.dump(at(T0 + 5, 0)), "", "nothing finished yet");
    }

    #[test]
    fn a_lone_value_has_no_spread() {
        let mut a = Aggregate::new(at(T0, 0));
        assert_eq!(a.to_string(), "Count: 0");
        a.ingest(-2.5, 10.0, at(T0, 0));
        assert_eq!((a.min, a.max, a.stddev()), (-2.5, -2.5, 0.0));
        assert_eq!(
            a.to_string(),
            "Count: 1 Sum: -2.500 LastUpdated: 2023-11-14 22:13:20 +0000 UTC"
        );
    }
}
