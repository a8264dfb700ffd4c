//! Lifeguard's suspicion timer, and the cluster-size scaling of memberlist's timeouts.
//!
//! A suspected node gets a long grace period to refute, so one slow accuser cannot kill it; each
//! independent peer that also suspects it is evidence, and shortens the wait (logarithmically) down
//! to a floor. The timer is passive: it only answers when the node should be declared dead, and the
//! caller compares that with its own clock.

use std::collections::HashSet;
use std::time::{Duration, Instant};

/// The deadline for declaring one suspected node dead.
#[derive(Debug, Clone)]
pub struct Suspicion {
    /// Everyone whose accusation has been counted, the first accuser included, so that our own
    /// suspicion gossiped back to us is not mistaken for a confirmation.
    accusers: HashSet<Vec<u8>>,
    confirmations: u32,
    /// Confirmations that drive the timeout down to `min`.
    k: u32,
    min: Duration,
    max: Duration,
    start: Instant,
    /// Current timeout, measured from `start`.
    timeout: Duration,
}

impl Suspicion {
    /// `from` is the first accuser; `k` expected confirmations; min/max timeouts; `now` the start.
    ///
    /// The wait starts at `max`, or at `min` when no confirmations are expected (too few peers for
    /// any to arrive).
    pub fn new(from: Vec<u8>, k: u32, min: Duration, max: Duration, now: Instant) -> Self {
        Suspicion {
            accusers: HashSet::from([from]),
            confirmations: 0,
            k,
            min,
            max,
            start: now,
            timeout: if k >= 1 { max } else { min },
        }
    }

    /// A suspect message from `from`: returns true if it is a new independent confirmation (not
    /// the original accuser, not seen before, while confirmations < k), in which case the caller
    /// should re-gossip it, and the deadline shrinks.
    ///
    /// With `c` confirmations the timeout is `max - ln(c+1)/ln(k+1) × (max - min)`, floored to
    /// whole milliseconds and never below `min`, measured from the start. The arithmetic is done in
    /// `f64` seconds, as memberlist does, so both agree on the deadline to the millisecond.
    pub fn confirm(&mut self, from: &[u8]) -> bool {
        if self.confirmations >= self.k || self.accusers.contains(from) {
            return false;
        }
        self.accusers.insert(from.to_vec());
        self.confirmations += 1;

        let frac = (f64::from(self.confirmations) + 1.0).ln() / (f64::from(self.k) + 1.0).ln();
        let (min, max) = (self.min.as_secs_f64(), self.max.as_secs_f64());
        let millis = (1000.0 * (max - frac * (max - min))).floor();
        // `as` saturates, so a degenerate input cannot wrap or panic.
        self.timeout = Duration::from_millis(millis as u64).max(self.min);
        true
    }

    /// When the node should be declared dead if still suspect. May already be past, right after a
    /// confirmation: the node is then due immediately.
    pub fn deadline(&self) -> Instant {
        // `Instant` cannot reach arbitrarily far; absurd timeouts settle for a reachable, still
        // distant, deadline instead of panicking.
        let mut timeout = self.timeout;
        loop {
            if let Some(deadline) = self.start.checked_add(timeout) {
                return deadline;
            }
            timeout /= 2;
        }
    }

    pub fn confirmations(&self) -> u32 {
        self.confirmations
    }

    /// The confirmations expected (0 when too few peers could give any).
    pub fn k(&self) -> u32 {
        self.k
    }
}

/// The shortest suspicion timeout for a cluster of `n` nodes (memberlist's `suspicionTimeout`):
/// `suspicion_mult × max(1, log10(max(1, n))) × interval`, with the scale floored to thousandths
/// as Go does. Bigger clusters need longer for gossip to reach the suspect, so it can refute.
pub fn suspicion_timeout(suspicion_mult: u32, n: usize, interval: Duration) -> Duration {
    let scale = (n.max(1) as f64).log10().max(1.0);
    // Truncation, like Go's `time.Duration(scale * 1000)`.
    let scale_thousandths = (scale * 1000.0) as u128;
    let nanos = u128::from(suspicion_mult)
        .saturating_mul(scale_thousandths)
        .saturating_mul(interval.as_nanos())
        / 1000;
    let secs = nanos / 1_000_000_000;
    match u64::try_from(secs) {
        // The remainder is below 10^9, so it fits.
        Ok(secs) => Duration::new(secs, (nanos % 1_000_000_000) as u32),
        Err(_) => Duration::MAX,
    }
}

/// The push/pull interval for a cluster of `n` nodes (memberlist's `pushPullScale`): unchanged up
/// to 32 nodes, then one more multiple per doubling (×2 up to 64, ×3 up to 128, …), so full-state
/// syncs do not swamp the network as the cluster grows.
pub fn push_pull_scale(interval: Duration, n: usize) -> Duration {
    const THRESHOLD: usize = 32;
    if n <= THRESHOLD {
        return interval;
    }
    // ceil(log2(n)) - log2(32) + 1, in integers.
    let ceil_log2 = (n - 1).ilog2() + 1;
    interval.saturating_mul(ceil_log2 - THRESHOLD.ilog2() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Who confirms, in order, and whether each should count.
    type Confirms<'a> = &'a [(&'a str, bool)];

    /// Accuse from `"me"`, then confirm from each of `from`, checking what counted.
    fn run(k: u32, min: Duration, max: Duration, from: Confirms) -> (Suspicion, Duration) {
        let start = Instant::now();
        let mut s = Suspicion::new(b"me".to_vec(), k, min, max, start);
        for (name, new) in from {
            assert_eq!(s.confirm(name.as_bytes()), *new, "{name}");
        }
        let timeout = s.deadline() - start;
        (s, timeout)
    }

    #[test]
    fn go_remaining_time_table() {
        let (min, max) = (2000 * MS, 30_000 * MS);
        let cases: [(Confirms, Duration); 6] = [
            (&[], max),
            (&[("a", true)], 16_000 * MS),
            (&[("a", true), ("b", true)], 7810 * MS),
            (&[("a", true), ("b", true), ("c", true)], min),
            (&[("a", true), ("b", true), ("c", true), ("d", false)], min),
            (
                &[
                    ("a", true),
                    ("b", true),
                    ("c", true),
                    ("d", false),
                    ("e", false),
                ],
                min,
            ),
        ];
        for (from, want) in cases {
            let (s, timeout) = run(3, min, max, from);
            assert_eq!(timeout, want, "{from:?}");
            assert_eq!(s.confirmations(), from.len().min(3) as u32);
        }
    }

    #[test]
    fn go_timer_table() {
        let (min, max) = (500 * MS, 2000 * MS);
        let cases: [(u32, Confirms, Duration); 6] = [
            (0, &[], max),
            (1, &[("me", false), ("foo", true)], 1250 * MS),
            (
                1,
                &[("me", false), ("foo", true), ("foo", false), ("foo", false)],
                1250 * MS,
            ),
            // Go's timer test allows ±25 ms around 810 ms; the exact value is 811 ms.
            (2, &[("me", false), ("foo", true), ("bar", true)], 811 * MS),
            (
                3,
                &[("me", false), ("foo", true), ("bar", true), ("baz", true)],
                min,
            ),
            (
                3,
                &[
                    ("me", false),
                    ("foo", true),
                    ("bar", true),
                    ("baz", true),
                    ("zoo", false),
                ],
                min,
            ),
        ];
        for (confirmations, from, want) in cases {
            let (s, timeout) = run(3, min, max, from);
            assert_eq!(timeout, want, "{from:?}");
            assert_eq!(s.confirmations(), confirmations);
        }
    }

    #[test]
    fn zero_k_uses_min() {
        let (s, timeout) = run(0, 25 * MS, 30_000 * MS, &[("foo", false)]);
        assert_eq!(timeout, 25 * MS);
        assert_eq!(s.confirmations(), 0);
    }

    #[test]
    fn confirmation_can_make_it_due_now() {
        let start = Instant::now();
        let mut s = Suspicion::new(b"me".to_vec(), 1, 100 * MS, 30_000 * MS, start);
        let now = start + 200 * MS;
        assert!(s.deadline() > now);
        assert!(s.confirm(b"foo"));
        assert_eq!(s.deadline(), start + 100 * MS);
        assert!(s.deadline() <= now);
    }

    #[test]
    fn lan_three_nodes() {
        // n = 3, SuspicionMult 4, SuspicionMaxTimeoutMult 6, ProbeInterval 1 s.
        let min = suspicion_timeout(4, 3, Duration::from_secs(1));
        assert_eq!(min, Duration::from_secs(4));
        assert_eq!(min * 6, Duration::from_secs(24));
        // k = SuspicionMult - 2 = 2 would exceed n - 2 = 1, so no confirmations are expected.
        let (_, timeout) = run(0, min, min * 6, &[("other", false)]);
        assert_eq!(timeout, Duration::from_secs(4));
    }

    #[test]
    fn degenerate_inputs_do_not_panic() {
        let start = Instant::now();
        let mut s = Suspicion::new(Vec::new(), u32::MAX, Duration::MAX, Duration::ZERO, start);
        assert_eq!(s.deadline(), start);
        assert!(s.confirm(b"x"));
        assert!(s.deadline() > start);

        let mut s = Suspicion::new(Vec::new(), 2, 5 * MS, Duration::MAX, start);
        assert!(s.deadline() > start);
        assert!(s.confirm(b"x"));
        assert!(s.confirm(b"y"));
        assert_eq!(s.deadline(), start + 5 * MS);
        assert!(!s.confirm(b""));
    }

    #[test]
    fn go_suspicion_timeout_table() {
        for (n, ms) in [
            (5, 1000),
            (10, 1000),
            (50, 1698),
            (100, 2000),
            (500, 2698),
            (1000, 3000),
        ] {
            assert_eq!(
                suspicion_timeout(3, n, Duration::from_secs(1)) / 3,
                ms * MS,
                "{n}"
            );
        }
        // Values printed by Go for other multipliers and intervals.
        assert_eq!(suspicion_timeout(4, 0, Duration::from_secs(1)), 4000 * MS);
        assert_eq!(suspicion_timeout(4, 50, Duration::from_secs(1)), 6792 * MS);
        assert_eq!(
            suspicion_timeout(5, 50, Duration::from_secs(5)),
            42_450 * MS
        );
        assert_eq!(
            suspicion_timeout(3, 50, Duration::from_micros(1_234_567)),
            Duration::from_nanos(6_288_884_298)
        );
        assert_eq!(
            suspicion_timeout(4, 1_000_000, Duration::from_secs(1)),
            Duration::from_secs(24)
        );
        assert_eq!(
            suspicion_timeout(u32::MAX, usize::MAX, Duration::MAX),
            Duration::MAX
        );
    }

    #[test]
    fn go_push_pull_scale_table() {
        let sec = Duration::from_secs(1);
        for n in 0..=32 {
            assert_eq!(push_pull_scale(sec, n), sec, "{n}");
        }
        for n in 33..=64 {
            assert_eq!(push_pull_scale(sec, n), 2 * sec, "{n}");
        }
        for n in 65..=128 {
            assert_eq!(push_pull_scale(sec, n), 3 * sec, "{n}");
        }
        assert_eq!(push_pull_scale(sec, 1 << 20), 16 * sec);
        assert_eq!(push_pull_scale(sec, (1 << 20) + 1), 17 * sec);
        assert_eq!(push_pull_scale(Duration::MAX, usize::MAX), Duration::MAX);
    }
}
