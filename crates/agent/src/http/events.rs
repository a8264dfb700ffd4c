//! `GET /v1/events`: server-sent events. Each stream registers with the agent as an event
//! handler that queues the events' JSON (bounded; a stream that falls behind loses events and
//! is told how many), and gets a thread of its own that writes them as they come, with a
//! comment line every [`KEEPALIVE`] so that a client that went away is noticed.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use serf::api::Event;
use tiny_http::{Request, Response};

use super::{views, Context, MAX_EVENT_STREAMS};
use crate::service::{Agent, DropSite, EventHandler};

/// Events a stream may have queued before new ones are dropped for it.
const QUEUE: usize = 1024;
/// How often an idle stream writes a comment line.
const KEEPALIVE: Duration = Duration::from_secs(5);
/// How often a stream looks whether the server stops.
const TICK: Duration = Duration::from_millis(250);

/// The event streams' threads and a way to end them all.
#[derive(Default)]
pub struct Streams {
    ending: AtomicBool,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Streams {
    pub fn end_all(&self) {
        self.ending.store(true, Ordering::SeqCst);
    }

    pub fn join_all(&self) {
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}

/// Queues one stream's events.
struct Sink {
    events: Sender<(&'static str, String)>,
    dropped: Arc<AtomicU64>,
}

impl EventHandler for Sink {
    fn handle(&self, agent: &Agent, event: &Event) {
        let Some(record) = views::event(event) else {
            return;
        };
        if let Err(TrySendError::Full(_)) = self.events.try_send(record) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            agent.count_drops(DropSite::Stream, 1);
        }
    }
}

/// Answers `request` with an event stream on a thread of its own, or 503 when
/// [`MAX_EVENT_STREAMS`] are open.
pub fn start(request: Request, context: &Arc<Context>) {
    let open = context.open_streams.fetch_add(1, Ordering::SeqCst);
    if open >= MAX_EVENT_STREAMS {
        context.open_streams.fetch_sub(1, Ordering::SeqCst);
        let _ = request.respond(
            Response::from_string(format!("{MAX_EVENT_STREAMS} event streams are open\n"))
                .with_status_code(503),
        );
        return;
    }
    let (tx, rx) = crossbeam_channel::bounded(QUEUE);
    let dropped = Arc::new(AtomicU64::new(0));
    let handler = context.agent.register(Arc::new(Sink {
        events: tx,
        dropped: dropped.clone(),
    }));
    let ctx = context.clone();
    let spawned = std::thread::Builder::new()
        .name("serf-http-events".into())
        .spawn(move || {
            stream(request, &rx, &dropped, &ctx);
            ctx.agent.deregister(handler);
            ctx.open_streams.fetch_sub(1, Ordering::SeqCst);
        });
    match spawned {
        Ok(t) => {
            let mut threads = context
                .streams
                .threads
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            threads.retain(|t| !t.is_finished());
            threads.push(t);
        }
        Err(_) => {
            context.agent.deregister(handler);
            context.open_streams.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Writes the response head, then each event, until the client goes or the server stops.
fn stream(
    request: Request,
    events: &Receiver<(&'static str, String)>,
    dropped: &AtomicU64,
    context: &Context,
) {
    let mut out = request.into_writer();
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
                Connection: close\r\n\r\n: serf events\n\n";
    if out
        .write_all(head.as_bytes())
        .and_then(|_| out.flush())
        .is_err()
    {
        return;
    }
    let mut idle = Duration::ZERO;
    let mut reported = 0;
    while !context.streams.ending.load(Ordering::SeqCst) {
        let text = match events.recv_timeout(TICK) {
            Ok((kind, json)) => {
                idle = Duration::ZERO;
                let lost = dropped.load(Ordering::Relaxed);
                let mut text = String::new();
                if lost > reported {
                    text.push_str(&format!("event: dropped\ndata: {}\n\n", lost - reported));
                    reported = lost;
                }
                text.push_str(&sse(kind, &json));
                text
            }
            Err(RecvTimeoutError::Timeout) => {
                idle += TICK;
                if idle < KEEPALIVE {
                    continue;
                }
                idle = Duration::ZERO;
                ": keep-alive\n\n".to_string()
            }
            Err(RecvTimeoutError::Disconnected) => return,
        };
        if out
            .write_all(text.as_bytes())
            .and_then(|_| out.flush())
            .is_err()
        {
            return;
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
