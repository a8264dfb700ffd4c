//! Lamport clocks, as serf keeps three of them (members, user events, queries).

/// A Lamport clock. `time` is the next value to use; witnessing a value moves past it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LamportClock(u64);

impl LamportClock {
    pub fn time(&self) -> u64 {
        self.0
    }

    /// Advances by one and returns the new time.
    pub fn increment(&mut self) -> u64 {
        self.0 += 1;
        self.0
    }

    /// Moves the clock past `v`: afterwards `time() > v`.
    pub fn witness(&mut self, v: u64) {
        if v >= self.0 {
            self.0 = v.saturating_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn witness_moves_past_the_value_and_never_back() {
        let mut c = LamportClock::default();
        assert_eq!(c.increment(), 1);
        c.witness(41);
        assert_eq!(c.time(), 42);
        c.witness(10);
        assert_eq!(c.time(), 42);
        c.witness(42);
        assert_eq!(c.time(), 43);
    }
}
