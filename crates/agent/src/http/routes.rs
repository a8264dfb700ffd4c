//! What each request gets: the token check, the path, the method, then the answer of
//! `/metrics`, `/v1/members`, `/v1/coordinates` or `/`; `/v1/events` becomes a stream.

use super::request::{self, Request};
use super::views;
use super::Context;
use crate::service::AgentError;

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

/// What a request is answered with.
pub enum Reply {
    /// A whole answer; the connection closes after it.
    Whole(Vec<u8>),
    /// `/v1/events`, allowed: the caller opens the stream.
    Events,
}

/// The page, with everything it needs inside.
const PAGE: &str = include_str!("page.html");

pub fn reply(request: &Request, context: &Context) -> Reply {
    let (path, query) = request.url.split_once('?').unwrap_or((&request.url, ""));
    let params = views::query_params(query);
    let outcome = if !authorized(request, &params, &context.auth) {
        Err((401, "a token is required (rpc_auth)".to_string()))
    } else {
        match Route::of(path) {
            None => Err((404, format!("no such path: {path}"))),
            Some(_) if request.method != "GET" => {
                Err((405, format!("{} is not allowed here", request.method)))
            }
            Some(Route::Events) => return Reply::Events,
            Some(route) => respond(route, &params, context),
        }
    };
    Reply::Whole(match outcome {
        Ok((content_type, body)) => {
            request::answer(200, &[("Content-Type", content_type)], body.as_bytes())
        }
        Err((status, message)) => refusal(status, &message),
    })
}

/// A plain-text refusal, with the header its status calls for.
pub fn refusal(status: u16, message: &str) -> Vec<u8> {
    let mut headers = vec![("Content-Type", "text/plain; charset=utf-8")];
    match status {
        401 => headers.push(("WWW-Authenticate", "Bearer")),
        405 => headers.push(("Allow", "GET")),
        _ => {}
    }
    request::answer(status, &headers, format!("{message}\n").as_bytes())
}

/// A body and its content type, or a status and why.
type Outcome = Result<(&'static str, String), (u16, String)>;

fn respond(route: Route, params: &[(String, String)], context: &Context) -> Outcome {
    let unavailable = |e: AgentError| (503, e.to_string());
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
        Route::Events => unreachable!("answered by opening a stream"),
    }
}

/// Whether the request carries the token, when one is required.
fn authorized(request: &Request, params: &[(String, String)], token: &str) -> bool {
    if token.is_empty() {
        return true;
    }
    let bearer = request
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| t == token);
    bearer || params.iter().any(|(k, v)| k == "token" && v == token)
}
