//! A deterministic network simulator for sans-I/O protocol cores.
//!
//! Many [`Machine`]s share one virtual clock and an in-memory network with latency, jitter,
//! random loss, partitions, crashed nodes and starved (paused) nodes. Everything random comes from
//! one seed, so a failing run replays exactly from the seed it prints. Thousands of nodes and hours
//! of protocol time run in seconds because nothing waits for real time.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::memberlist::machine::{Machine, StreamStatus};

/// Network conditions, changeable while the simulation runs.
#[derive(Debug, Clone)]
pub struct NetworkConditions {
    /// One-way delay of every datagram and stream message.
    pub latency: Duration,
    /// Extra delay, uniform in `[0, jitter)`.
    pub jitter: Duration,
    /// Probability that a datagram is lost.
    pub loss: f64,
    /// Probability that a stream exchange does not complete before its deadline: the model of
    /// TCP under frame loss, whose retransmissions run past a probe's or a push/pull's deadline.
    pub stream_loss: f64,
}

impl Default for NetworkConditions {
    fn default() -> Self {
        NetworkConditions {
            latency: Duration::from_micros(500),
            jitter: Duration::from_micros(500),
            loss: 0.0,
            stream_loss: 0.0,
        }
    }
}

/// Counters of what the network did.
#[derive(Debug, Clone, Default)]
pub struct NetworkStats {
    pub datagrams_sent: u64,
    pub datagrams_lost: u64,
    pub bytes_sent: u64,
    pub streams_opened: u64,
    pub streams_failed: u64,
}

enum Delivery {
    Packet {
        to: usize,
        from: SocketAddr,
        data: Vec<u8>,
    },
    StreamRequest {
        to: usize,
        from: usize,
        id: u64,
        data: Vec<u8>,
        expect_reply: bool,
    },
    StreamReply {
        to: usize,
        id: u64,
        reply: Result<Vec<u8>, String>,
    },
}

/// A delivery waiting in the heap, ordered by its time and then by when it was scheduled, so
/// that equal times keep their order and a run replays exactly.
struct Scheduled {
    at: Instant,
    id: u64,
    delivery: Delivery,
}

impl Scheduled {
    fn key(&self) -> (Instant, u64) {
        (self.at, self.id)
    }
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

struct SimNode<M> {
    machine: M,
    addr: SocketAddr,
    up: bool,
    /// A starved node handles nothing (packets, timers) before this instant.
    paused_until: Option<Instant>,
    /// Bumped whenever the node's next timeout changes, to skip stale heap entries.
    timer_generation: u64,
    /// The timeout the heap holds for this node (with `timer_generation`); most handling leaves
    /// it as it was, and then nothing is pushed.
    scheduled: Option<Instant>,
    /// Partition group; nodes in different groups cannot reach each other.
    group: u32,
}

/// The simulated world.
pub struct Sim<M: Machine> {
    epoch: Instant,
    now: Instant,
    rng: SmallRng,
    seed: u64,
    nodes: Vec<SimNode<M>>,
    by_addr: HashMap<SocketAddr, usize>,
    deliveries: BinaryHeap<Reverse<Scheduled>>,
    timers: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    next_delivery_id: u64,
    pub network: NetworkConditions,
    pub stats: NetworkStats,
    /// How often, in virtual time, [`run_until_cond`](Self::run_until_cond) evaluates its
    /// condition (default 50 ms).
    pub check_interval: Duration,
}

impl<M: Machine> Sim<M> {
    /// An empty world whose clock starts at `epoch`.
    pub fn new(seed: u64, epoch: Instant) -> Sim<M> {
        Sim {
            epoch,
            now: epoch,
            rng: SmallRng::seed_from_u64(seed),
            seed,
            nodes: Vec::new(),
            by_addr: HashMap::new(),
            deliveries: BinaryHeap::new(),
            timers: BinaryHeap::new(),
            next_delivery_id: 0,
            network: NetworkConditions::default(),
            stats: NetworkStats::default(),
            check_interval: Duration::from_millis(50),
        }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn now(&self) -> Instant {
        self.now
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.epoch
    }

    /// A seed for a new node's own random choices, derived from the world's seed.
    pub fn node_seed(&mut self) -> u64 {
        self.rng.random()
    }

    /// Adds a node reachable at `addr`; returns its index.
    pub fn add(&mut self, addr: SocketAddr, machine: M) -> usize {
        let i = self.nodes.len();
        self.nodes.push(SimNode {
            machine,
            addr,
            up: true,
            paused_until: None,
            timer_generation: 0,
            scheduled: None,
            group: 0,
        });
        self.by_addr.insert(addr, i);
        self.after_handling(i);
        i
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn machine(&self, i: usize) -> &M {
        &self.nodes[i].machine
    }

    /// A node's machine, to drain what it reports to its application (events, completions)
    /// without the cost of [`with_machine`](Self::with_machine). Anything that may send or move
    /// its timers (a command) must go through `with_machine`, or the simulator will not see it.
    pub fn machine_mut(&mut self, i: usize) -> &mut M {
        &mut self.nodes[i].machine
    }

    /// Runs `f` on a node's machine (a command such as join or leave), then collects its output.
    pub fn with_machine<R>(&mut self, i: usize, f: impl FnOnce(&mut M, Instant) -> R) -> R {
        let now = self.now;
        let out = f(&mut self.nodes[i].machine, now);
        self.after_handling(i);
        out
    }

    pub fn addr(&self, i: usize) -> SocketAddr {
        self.nodes[i].addr
    }

    pub fn is_up(&self, i: usize) -> bool {
        self.nodes[i].up
    }

    /// Crashes a node: it stops handling anything and everything sent to it is lost.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].up = false;
    }

    /// Replaces a crashed node's machine (a restart) at the same address.
    pub fn restart(&mut self, i: usize, machine: M) {
        let node = &mut self.nodes[i];
        node.machine = machine;
        node.up = true;
        node.paused_until = None;
        node.scheduled = None;
        self.after_handling(i);
    }

    /// Starves a node: it processes nothing until `duration` from now, then catches up.
    pub fn pause(&mut self, i: usize, duration: Duration) {
        self.nodes[i].paused_until = Some(self.now + duration);
        self.after_handling(i);
    }

    /// Splits the nodes into partition groups (`group_of(i)`); nodes in different groups cannot
    /// reach each other.
    pub fn partition(&mut self, group_of: impl Fn(usize) -> u32) {
        for (i, n) in self.nodes.iter_mut().enumerate() {
            n.group = group_of(i);
        }
    }

    pub fn heal(&mut self) {
        self.partition(|_| 0);
    }

    /// Runs until `duration` of virtual time has passed.
    pub fn run_for(&mut self, duration: Duration) {
        let end = self.now + duration;
        self.run_until(end, |_| false);
    }

    /// Runs until `done` holds or `limit` of virtual time passed; returns whether `done` held.
    /// `done` is checked every [`check_interval`](Self::check_interval) of virtual time
    /// (conditions over thousands of nodes would otherwise cost more than the simulation).
    pub fn run_until_cond(&mut self, limit: Duration, mut done: impl FnMut(&Self) -> bool) -> bool {
        let end = self.now + limit;
        self.run_until(end, |s| done(s))
    }

    fn run_until(&mut self, end: Instant, mut done: impl FnMut(&Self) -> bool) -> bool {
        let mut next_check = self.now;
        loop {
            if self.now >= next_check {
                if done(self) {
                    return true;
                }
                next_check = self.now + self.check_interval;
            }
            let next_delivery = self.deliveries.peek().map(|Reverse(s)| s.at);
            let next_timer = self.next_live_timer();
            let next = match (next_delivery, next_timer) {
                (Some(a), Some((b, _))) => a.min(b),
                (Some(a), None) => a,
                (None, Some((b, _))) => b,
                (None, None) => end,
            };
            if next > end {
                self.now = end;
                return done(self);
            }
            self.now = self.now.max(next);
            if next_delivery == Some(next) {
                let Reverse(scheduled) = self.deliveries.pop().expect("peeked");
                self.deliver(scheduled.delivery);
            } else if let Some((_, i)) = next_timer {
                self.timers.pop();
                self.nodes[i].scheduled = None;
                let now = self.now;
                self.nodes[i].machine.handle_timeout(now);
                self.after_handling(i);
            }
        }
    }

    /// The earliest timer that is still current, discarding stale ones.
    fn next_live_timer(&mut self) -> Option<(Instant, usize)> {
        while let Some(&Reverse((t, i, generation))) = self.timers.peek() {
            let node = &self.nodes[i];
            if node.up && node.timer_generation == generation {
                return Some((t, i));
            }
            self.timers.pop();
        }
        None
    }

    fn deliver(&mut self, delivery: Delivery) {
        let now = self.now;
        let to = match &delivery {
            Delivery::Packet { to, .. }
            | Delivery::StreamRequest { to, .. }
            | Delivery::StreamReply { to, .. } => *to,
        };
        if !self.nodes[to].up {
            if let Delivery::StreamRequest {
                from,
                id,
                expect_reply: true,
                ..
            } = delivery
            {
                self.stats.streams_failed += 1;
                self.schedule(Delivery::StreamReply {
                    to: from,
                    id,
                    reply: Err("connection refused".into()),
                });
            }
            return;
        }
        if let Some(until) = self.nodes[to].paused_until.filter(|u| *u > now) {
            self.schedule_at(until, delivery);
            return;
        }
        let node = &mut self.nodes[to];
        match delivery {
            Delivery::Packet { from, data, .. } => node.machine.handle_packet(now, from, &data),
            Delivery::StreamRequest {
                from,
                id,
                data,
                expect_reply,
                ..
            } => {
                let reply = match node.machine.handle_stream_request(now, &data) {
                    StreamStatus::Done(reply) => reply,
                    StreamStatus::Incomplete => None,
                };
                if expect_reply {
                    let reply =
                        reply.ok_or_else(|| "connection closed without a reply".to_string());
                    self.schedule(Delivery::StreamReply {
                        to: from,
                        id,
                        reply,
                    });
                }
            }
            Delivery::StreamReply { id, reply, .. } => match reply {
                Ok(data) => {
                    node.machine.handle_stream_reply(now, id, &data, true);
                }
                Err(e) => node.machine.handle_stream_failure(now, id, e),
            },
        }
        self.after_handling(to);
    }

    /// Collects what node `i` wants sent and when it next wants to run.
    fn after_handling(&mut self, i: usize) {
        while let Some(t) = self.nodes[i].machine.poll_transmit() {
            self.stats.datagrams_sent += 1;
            self.stats.bytes_sent += t.payload.len() as u64;
            let Some(&to) = self.by_addr.get(&t.to) else {
                continue;
            };
            if self.rng.random::<f64>() < self.network.loss || !self.reachable(i, to) {
                self.stats.datagrams_lost += 1;
                continue;
            }
            let from = self.nodes[i].addr;
            self.schedule(Delivery::Packet {
                to,
                from,
                data: t.payload,
            });
        }
        while let Some(s) = self.nodes[i].machine.poll_stream() {
            self.stats.streams_opened += 1;
            // The generator is drawn only when streams can be lost, so that seeded runs without
            // stream loss replay as before.
            let lost = self.network.stream_loss > 0.0
                && self.rng.random::<f64>() < self.network.stream_loss;
            match self
                .by_addr
                .get(&s.to)
                .copied()
                .filter(|&to| self.reachable(i, to) && !lost)
            {
                Some(to) => self.schedule(Delivery::StreamRequest {
                    to,
                    from: i,
                    id: s.id,
                    data: s.payload,
                    expect_reply: s.expect_reply,
                }),
                None if s.expect_reply => {
                    self.stats.streams_failed += 1;
                    // A lost exchange fails when its deadline passes, an unreachable peer at once.
                    let (at, why) = if lost {
                        (s.deadline, "deadline passed")
                    } else {
                        (
                            s.deadline.min(self.now + self.network.latency),
                            "unreachable",
                        )
                    };
                    self.schedule_at(
                        at,
                        Delivery::StreamReply {
                            to: i,
                            id: s.id,
                            reply: Err(why.into()),
                        },
                    );
                }
                None => {}
            }
        }
        let node = &mut self.nodes[i];
        let next = node
            .machine
            .poll_timeout()
            .map(|t| node.paused_until.map_or(t, |p| t.max(p)).max(self.now));
        if next != node.scheduled {
            node.timer_generation += 1;
            node.scheduled = next;
            if let Some(t) = next {
                self.timers.push(Reverse((t, i, node.timer_generation)));
            }
        }
    }

    fn reachable(&self, from: usize, to: usize) -> bool {
        self.nodes[from].group == self.nodes[to].group
    }

    fn schedule(&mut self, delivery: Delivery) {
        let jitter = self.network.jitter.mul_f64(self.rng.random::<f64>());
        let at = self.now + self.network.latency + jitter;
        self.schedule_at(at, delivery);
    }

    fn schedule_at(&mut self, at: Instant, delivery: Delivery) {
        let id = self.next_delivery_id;
        self.next_delivery_id += 1;
        self.deliveries
            .push(Reverse(Scheduled { at, id, delivery }));
    }
}
