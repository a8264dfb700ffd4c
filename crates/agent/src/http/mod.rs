//! The agent's HTTP view, off unless `http_addr` is set: what an operator scrapes or looks at,
//! beside the RPC that HashiCorp's tools speak. Nothing on the wire or in the RPC changes.
//!
//! - `GET /metrics`: every metric the agent keeps, in Prometheus' text format.
//! - `GET /v1/members`: the records of `serf members -format=json`, with its filters as query
//!   parameters (`status`, `name`, `tag=key=value`, each a pattern anchored at both ends).
//! - `GET /v1/coordinates`: every member's Vivaldi coordinate, as this agent holds it.
//! - `GET /v1/events`: server-sent events, one per member or user event as it happens.
//! - `GET /`: a page that shows the cluster live (see `page.html`).
//!
//! tiny_http parses the requests; a few threads answer them (each answer is quick), and each
//! event stream gets a thread of its own, up to [`MAX_EVENT_STREAMS`]. A client that takes
//! nothing for [`WRITE_LIMIT`] is disconnected. tiny_http itself bounds neither the number of
//! connections nor how long a request may take to arrive (it runs a thread per connection). With `rpc_auth` set,
//! every path needs the same token, as `Authorization: Bearer <token>` or `?token=<token>`.

mod events;
mod views;

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tiny_http::{Header, Method, Request, Response, Server};

use crate::service::Agent;
use crate::telemetry::Telemetry;

/// Threads answering requests other than event streams.
const ANSWERING_THREADS: usize = 2;
/// Event streams served at once; more are answered 503.
pub const MAX_EVENT_STREAMS: usize = 16;
/// The longest request line (path and query) taken; a longer one is answered 413.
pub const MAX_URL: usize = 8 << 10;
/// The largest request body taken (no path takes one); a larger one is answered 413.
pub const MAX_BODY: usize = 64 << 10;
/// A client that takes nothing of an answer or an event stream for this long is disconnected.
pub const WRITE_LIMIT: Duration = Duration::from_secs(10);

/// The running HTTP view; [`HttpServer::shutdown`] stops it.
pub struct HttpServer {
    addr: SocketAddr,
    server: Arc<Server>,
    stop: Arc<AtomicBool>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    streams: Arc<events::Streams>,
}

/// What every answering thread needs.
struct Context {
    agent: Arc<Agent>,
    auth: String,
    telemetry: Telemetry,
    stop: Arc<AtomicBool>,
    streams: Arc<events::Streams>,
    open_streams: AtomicUsize,
}

impl HttpServer {
    /// Serves on `listener` until shut down. `auth` is the `rpc_auth` token (empty: none).
    pub fn start(
        listener: TcpListener,
        agent: Arc<Agent>,
        auth: String,
        telemetry: Telemetry,
    ) -> io::Result<HttpServer> {
        let addr = listener.local_addr()?;
        // Accepted sockets inherit the send timeout from the listener (Linux), so every write
        // tiny_http and the event streams make is bounded. (A receive timeout would be
        // inherited too, but on the listener it also bounds accept, which ends tiny_http's
        // accept loop.)
        socket2::SockRef::from(&listener).set_write_timeout(Some(WRITE_LIMIT))?;
        let server = Arc::new(Server::from_listener(listener, None).map_err(io::Error::other)?);
        let stop = Arc::new(AtomicBool::new(false));
        let streams = Arc::new(events::Streams::default());
        let context = Arc::new(Context {
            agent,
            auth,
            telemetry,
            stop: stop.clone(),
            streams: streams.clone(),
            open_streams: AtomicUsize::new(0),
        });
        let mut threads = Vec::new();
        for _ in 0..ANSWERING_THREADS {
            let (server, context) = (server.clone(), context.clone());
            threads.push(
                std::thread::Builder::new()
                    .name("serf-http".into())
                    .spawn(move || answer_until_stopped(&server, &context))?,
            );
        }
        Ok(HttpServer {
            addr,
            server,
            stop,
            threads: Mutex::new(threads),
            streams,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops answering, ends the event streams and waits for every thread.
    pub fn shutdown(&self) {
        if self.stop.swap(true, Ordering::SeqCst) {
            return;
        }
        self.server.unblock();
        self.streams.end_all();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            let _ = t.join();
        }
        self.streams.join_all();
    }
}

fn answer_until_stopped(server: &Server, context: &Arc<Context>) {
    while !context.stop.load(Ordering::SeqCst) {
        match server.recv_timeout(Duration::from_millis(500)) {
            Ok(Some(request)) => answer(request, context),
            Ok(None) => {}
            Err(_) => return,
        }
    }
}

/// The paths served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Page,
    Metrics,
    Members,
    Coordinates,
    Events,
}

impl Route {
    fn of(path: &str) -> Option<Route> {
        Some(match path {
            "/" => Route::Page,
            "/metrics" => Route::Metrics,
            "/v1/members" => Route::Members,
            "/v1/coordinates" => Route::Coordinates,
            "/v1/events" => Route::Events,
            _ => return None,
        })
    }
}

fn answer(request: Request, context: &Arc<Context>) {
    let url = request.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let params = views::query_params(query);
    let too_big = url.len() > MAX_URL || request.body_length().is_some_and(|n| n > MAX_BODY);
    let outcome = if too_big {
        Err((413, "request too large".to_string()))
    } else if !authorized(&request, &params, &context.auth) {
        Err((401, "a token is required (rpc_auth)".to_string()))
    } else {
        match Route::of(path) {
            None => Err((404, format!("no such path: {path}"))),
            Some(_) if *request.method() != Method::Get => {
                Err((405, format!("{} is not allowed here", request.method())))
            }
            Some(Route::Events) => return events::start(request, context),
            Some(route) => respond(route, &params, context),
        }
    };
    let response = match outcome {
        Ok((content_type, body)) => Response::from_string(body).with_header(header(content_type)),
        Err((status, message)) => {
            let mut r = Response::from_string(format!("{message}\n"))
                .with_status_code(status)
                .with_header(header("text/plain; charset=utf-8"));
            if status == 401 {
                r = r.with_header(
                    Header::from_bytes("WWW-Authenticate", "Bearer").expect("a valid header"),
                );
            }
            if status == 405 {
                r = r.with_header(Header::from_bytes("Allow", "GET").expect("a valid header"));
            }
            r
        }
    };
    let _ = request.respond(response);
}

/// A body and its content type, or a status and why.
type Outcome = Result<(&'static str, String), (u16, String)>;

fn respond(route: Route, params: &[(String, String)], context: &Context) -> Outcome {
    let unavailable = |e: crate::service::AgentError| (503, e.to_string());
    match route {
        Route::Page => Ok(("text/html; charset=utf-8", PAGE.to_string())),
        Route::Metrics => context
            .telemetry
            .prometheus_text()
            .map(|text| ("text/plain; version=0.0.4; charset=utf-8", text))
            .ok_or((503, "metrics are not kept".to_string())),
        Route::Members => {
            let filter = views::MembersQuery::parse(params).map_err(|e| (400, e))?;
            let members = context.agent.members().map_err(unavailable)?;
            Ok(("application/json", views::members(&members, &filter)))
        }
        Route::Coordinates => {
            let members = context.agent.members().map_err(unavailable)?;
            let local = context
                .agent
                .serf()
                .local_member()
                .map_err(|e| (503, e.to_string()))?;
            let body = views::coordinates(&local.name, &members, |name| {
                context.agent.coordinate(name).ok().flatten()
            });
            Ok(("application/json", body))
        }
        Route::Events => unreachable!("streams are answered on their own thread"),
    }
}

/// The page, with everything it needs inside.
const PAGE: &str = include_str!("page.html");

fn header(content_type: &str) -> Header {
    Header::from_bytes("Content-Type", content_type).expect("a valid header")
}

/// Whether the request carries the token, when one is required.
fn authorized(request: &Request, params: &[(String, String)], token: &str) -> bool {
    if token.is_empty() {
        return true;
    }
    let bearer = request.headers().iter().any(|h| {
        h.field.equiv("Authorization")
            && h.value
                .as_str()
                .strip_prefix("Bearer ")
                .is_some_and(|t| t == token)
    });
    bearer || params.iter().any(|(k, v)| k == "token" && v == token)
}
