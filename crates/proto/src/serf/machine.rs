//! How a runtime drives a [`Serf`]: the [`Machine`] impl, and the periodic work HashiCorp's
//! serf.go runs in goroutines (`handleReap`, `handleReconnect`, `checkQueueDepth`), done here
//! when a timeout fires.

use std::net::SocketAddr;
use std::time::Instant;

use super::core::Serf;
use super::state::{Rejoin, SerfStatus};
use super::stats::QUEUE_CHECK_INTERVAL;
use crate::log::LogLine;
use crate::memberlist::machine::{self, Machine, StreamStatus};
use crate::memberlist::{OutboundStream, Transmit};
use crate::telemetry::{Histogram, Reading};

impl Machine for Serf {
    fn handle_packet(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        if self.state.status == SerfStatus::Shutdown {
            return;
        }
        self.memberlist
            .handle_packet(now, from, datagram, &mut self.state);
        self.advance_leave(now);
    }

    fn handle_stream_request(&mut self, now: Instant, data: &[u8]) -> StreamStatus {
        if self.state.status == SerfStatus::Shutdown {
            return StreamStatus::Done(None);
        }
        let status = machine::accept_stream(&mut self.memberlist, now, data, &mut self.state);
        self.after(now);
        status
    }

    fn handle_stream_reply(&mut self, now: Instant, id: u64, data: &[u8], eof: bool) -> bool {
        let done =
            machine::read_stream_reply(&mut self.memberlist, now, id, data, eof, &mut self.state);
        self.after(now);
        done
    }

    fn handle_stream_failure(&mut self, now: Instant, id: u64, error: String) {
        self.memberlist
            .handle_stream_reply(now, id, Err(error), &mut self.state);
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.state.status == SerfStatus::Shutdown {
            return;
        }
        self.memberlist.handle_timeout(now, &mut self.state);
        self.tick(now);
        self.after(now);
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.memberlist.poll_transmit()
    }

    fn poll_stream(&mut self) -> Option<OutboundStream> {
        self.memberlist.poll_stream()
    }

    fn gossip_rounds(&self) -> u64 {
        self.memberlist.stats().gossip_rounds
    }

    fn read_telemetry(&mut self, out: &mut dyn FnMut(Reading)) {
        self.memberlist.read_telemetry(out);
        for total in self.state.counters.totals() {
            out(Reading::Total(total));
        }
        self.state.samples.drain(out);
    }

    fn read_log(&mut self, out: &mut dyn FnMut(LogLine)) {
        self.memberlist.log.drain(out);
        self.state.log.drain(out);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.state.status == SerfStatus::Shutdown {
            return None;
        }
        let mut next = self
            .state
            .next_reap
            .min(self.state.next_reconnect)
            .min(self.state.next_queue_check);
        for t in [
            self.memberlist.poll_timeout(&self.state),
            self.leave_deadline(),
        ]
        .into_iter()
        .flatten()
        {
            next = next.min(t);
        }
        if let Some((t, _)) = self.state.pending_prunes.iter().min_by_key(|(t, _)| *t) {
            next = next.min(*t);
        }
        let coalescing = [
            self.state
                .member_coalescer
                .as_ref()
                .and_then(|c| c.deadline()),
            self.state
                .user_coalescer
                .as_ref()
                .and_then(|c| c.deadline()),
        ];
        let snapshot = [
            self.state.snapshot.as_ref().map(|s| s.next_clock_check),
            self.state.rejoin.next_try,
        ];
        let collectors = self
            .state
            .collectors
            .values()
            .map(|c| c.deadline)
            .chain(snapshot.into_iter().flatten());
        if let Some(t) = collectors.chain(coalescing.into_iter().flatten()).min() {
            next = next.min(t);
        }
        Some(next)
    }
}

impl Serf {
    /// Periodic serf work: the reaper, reconnects, pending prunes.
    fn tick(&mut self, now: Instant) {
        if now >= self.state.next_reap {
            self.state.next_reap = now + self.state.reap_interval;
            self.state.reap(now);
        }
        if now >= self.state.next_reconnect {
            self.state.next_reconnect = now + self.state.reconnect_interval;
            if let Some(addr) = self.state.reconnect_target() {
                self.memberlist.join(now, &[addr], &mut self.state);
            }
        }
        let due: Vec<String> = self
            .state
            .pending_prunes
            .iter()
            .filter(|(t, _)| now >= *t)
            .map(|(_, n)| n.clone())
            .collect();
        self.state.pending_prunes.retain(|(t, _)| now < *t);
        for name in due {
            self.state.erase(now, &name);
        }
        if now >= self.state.next_queue_check {
            self.state.next_queue_check = now + QUEUE_CHECK_INTERVAL;
            let q = self.state.queue_depths();
            self.state
                .samples
                .histogram(Histogram::QueueIntent, q.intent as f64);
            self.state
                .samples
                .histogram(Histogram::QueueEvent, q.event as f64);
            self.state
                .samples
                .histogram(Histogram::QueueQuery, q.query as f64);
            self.state.prune_queues();
        }
        self.state.expire_queries(now);
        self.state.flush_coalescers(now);
        self.state.record_clock_periodically(now);
        if std::mem::take(&mut self.state.rejoin.retry_after_failure) {
            self.state.rejoin.next_try = Some(now + Rejoin::RETRY);
        }
        if self.state.rejoin.in_flight.is_none()
            && self.state.rejoin.next_try.is_some_and(|t| now >= t)
        {
            self.state.rejoin.next_try = None;
            let addrs = self.state.rejoin.addrs.clone();
            self.state.rejoin.in_flight = Some(self.memberlist.join(now, &addrs, &mut self.state));
        }
        self.advance_leave(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memberlist::Profile;
    use crate::serf::Config;

    #[test]
    fn the_queue_check_prunes_a_queue_over_its_limit_and_counts_the_loss() {
        let start = Instant::now();
        let mut config = Config::new(Profile::Lan, "a", "127.0.0.1:7946".parse().unwrap());
        config.max_queue_depth = 2;
        let mut serf = Serf::new(config, start, 1).expect("config");
        for k in 0..5 {
            serf.user_event(start, &format!("e{k}"), b"", false)
                .expect("event");
        }
        assert_eq!(serf.queue_depths().event, 5);
        serf.handle_timeout(start + QUEUE_CHECK_INTERVAL);
        assert_eq!(serf.queue_depths().event, 2);
        assert_eq!(serf.counters().broadcasts_pruned, 3);
    }
}
