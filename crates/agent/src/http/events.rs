//! `GET /v1/events`: server-sent events. A stream is an event handler of the agent that
//! writes each event into its connection's outbox, so it costs no thread; a stream whose
//! client falls [`OUTBOX_LIMIT`](crate::server::outbox::OUTBOX_LIMIT) behind loses events and is told how many in a `dropped` event.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serf::api::Event;

use super::request;
use super::views;
use crate::server::outbox::{Outbox, Refused};
use crate::service::{Agent, DropSite, EventHandler};

/// The first bytes of a stream: the answer's head and a comment.
pub fn head() -> Vec<u8> {
    let mut out = request::open_ended(&[
        ("Content-Type", "text/event-stream"),
        ("Cache-Control", "no-cache"),
    ]);
    out.extend_from_slice(b": serf events\n\n");
    out
}

/// What an idle stream sends now and then, so that a client that went away is noticed.
pub const KEEPALIVE: &[u8] = b": keep-alive\n\n";

/// One stream's handler.
pub struct Sink {
    outbox: Arc<Outbox>,
    dropped: AtomicU64,
    /// How many drops the client has been told of.
    reported: Mutex<u64>,
}

impl Sink {
    pub fn new(outbox: Arc<Outbox>) -> Sink {
        Sink {
            outbox,
            dropped: AtomicU64::new(0),
            reported: Mutex::new(0),
        }
    }
}

impl EventHandler for Sink {
    fn handle(&self, agent: &Agent, event: &Event) {
        let Some((kind, json)) = views::event(event) else {
            return;
        };
        let mut text = String::new();
        let mut reported = self.reported.lock().unwrap_or_else(|e| e.into_inner());
        let dropped = self.dropped.load(Ordering::Relaxed);
        if dropped > *reported {
            text.push_str(&sse("dropped", &(dropped - *reported).to_string()));
        }
        text.push_str(&sse(kind, &json));
        match self.outbox.offer(text.as_bytes()) {
            Ok(()) => *reported = dropped,
            Err(Refused::Full) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                agent.count_drops(DropSite::Stream, 1);
            }
            Err(Refused::Closed) => {}
        }
    }
}

/// One server-sent event; each line of `data` on a `data:` line of its own.
fn sse(kind: &str, data: &str) -> String {
    let mut out = format!("event: {kind}\n");
    for line in data.lines() {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_data_line_is_prefixed_and_an_event_ends_with_a_blank_line() {
        assert_eq!(
            sse("user", "{\n  \"a\": 1\n}"),
            "event: user\ndata: {\ndata:   \"a\": 1\ndata: }\n\n"
        );
    }
}
