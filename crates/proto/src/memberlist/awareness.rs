//! Lifeguard's local health score.
//!
//! A node that misses its own deadlines (a slow CPU, a stalled network) would otherwise accuse
//! healthy peers. Failed probes and having to refute raise the score, successful probes lower it,
//! and the node waits proportionally longer before it judges anyone else.

use std::time::Duration;

/// How unhealthy this node believes itself to be: 0 is healthy, `max - 1` the worst.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Awareness {
    max: usize,
    score: usize,
}

impl Awareness {
    /// `max_multiplier` bounds how far timeouts can stretch (memberlist's
    /// `AwarenessMaxMultiplier`, 8 by default).
    pub fn new(max_multiplier: usize) -> Self {
        Awareness {
            max: max_multiplier,
            score: 0,
        }
    }

    /// Move the score by `delta`, staying within `[0, max - 1]`.
    pub fn apply_delta(&mut self, delta: isize) {
        let moved = if delta < 0 {
            self.score.saturating_sub(delta.unsigned_abs())
        } else {
            self.score.saturating_add(delta.unsigned_abs())
        };
        self.score = moved.min(self.max.saturating_sub(1));
    }

    pub fn score(&self) -> usize {
        self.score
    }

    /// `timeout × (score + 1)`: how long to wait for peers given our own health.
    pub fn scale_timeout(&self, timeout: Duration) -> Duration {
        let factor = u32::try_from(self.score.saturating_add(1)).unwrap_or(u32::MAX);
        timeout.saturating_mul(factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_table() {
        let cases: [(isize, usize, u64); 14] = [
            (0, 0, 1),
            (-1, 0, 1),
            (-10, 0, 1),
            (1, 1, 2),
            (-1, 0, 1),
            (10, 7, 8),
            (-1, 6, 7),
            (-1, 5, 6),
            (-1, 4, 5),
            (-1, 3, 4),
            (-1, 2, 3),
            (-1, 1, 2),
            (-1, 0, 1),
            (-1, 0, 1),
        ];
        let mut a = Awareness::new(8);
        for (i, (delta, score, secs)) in cases.into_iter().enumerate() {
            a.apply_delta(delta);
            assert_eq!(a.score(), score, "case {i}");
            assert_eq!(
                a.scale_timeout(Duration::from_secs(1)),
                Duration::from_secs(secs),
                "case {i}"
            );
        }
    }

    #[test]
    fn extremes_do_not_panic() {
        let mut a = Awareness::new(0);
        a.apply_delta(isize::MAX);
        assert_eq!(a.score(), 0);

        let mut a = Awareness::new(usize::MAX);
        a.apply_delta(isize::MAX);
        a.apply_delta(isize::MAX);
        a.apply_delta(isize::MAX);
        assert_eq!(a.score(), usize::MAX - 1);
        assert_eq!(a.scale_timeout(Duration::MAX), Duration::MAX);
        assert_eq!(
            a.scale_timeout(Duration::from_nanos(1)),
            Duration::from_nanos(u64::from(u32::MAX))
        );
        a.apply_delta(isize::MIN);
        a.apply_delta(isize::MIN);
        a.apply_delta(isize::MIN);
        assert_eq!(a.score(), 0);
    }
}
