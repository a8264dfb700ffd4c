//! HashiCorp's event filter syntax, shared by RPC `stream` requests and `-event-handler` specs.
//!
//! A filter is a comma-separated list of `member-join`, `member-leave`, `member-failed`,
//! `member-update`, `member-reap`, `user`, `user:<name>`, `query`, `query:<name>` and `*`; the
//! empty string means `*`. It is case-sensitive and nothing is trimmed (`member-join, user` is
//! invalid because of the space), exactly as Go's `ParseEventFilter` + `EventFilter.Valid`.

use std::fmt;
use std::str::FromStr;

use serf::api::{Event, MemberEventType};

/// One comma-separated element of a filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterElement {
    /// `*`: every event serf delivers to the application.
    All,
    /// `member-join`, `member-leave`, …
    Member(MemberEventType),
    /// `user` (`None`) or `user:<name>` (exact name). Go treats `user:` like `user`, so an
    /// empty name is stored as `None`.
    User(Option<String>),
    /// `query` or `query:<name>`, as for [`FilterElement::User`].
    Query(Option<String>),
}

impl FilterElement {
    fn parse(element: &str) -> Result<FilterElement, FilterError> {
        let named = |name: &str| (!name.is_empty()).then(|| name.to_string());
        // Go checks the `user:`/`query:` prefixes before validating, so `user:` + anything
        // (even a name containing `:`) is a user filter.
        if let Some(name) = element.strip_prefix("user:") {
            return Ok(FilterElement::User(named(name)));
        }
        if let Some(name) = element.strip_prefix("query:") {
            return Ok(FilterElement::Query(named(name)));
        }
        Ok(match element {
            "*" => FilterElement::All,
            "user" => FilterElement::User(None),
            "query" => FilterElement::Query(None),
            "member-join" => FilterElement::Member(MemberEventType::Join),
            "member-leave" => FilterElement::Member(MemberEventType::Leave),
            "member-failed" => FilterElement::Member(MemberEventType::Failed),
            "member-update" => FilterElement::Member(MemberEventType::Update),
            "member-reap" => FilterElement::Member(MemberEventType::Reap),
            other => {
                return Err(FilterError::Invalid {
                    element: other.to_string(),
                })
            }
        })
    }

    /// Go's `EventFilter.Invoke`. `Event::Shutdown` has no Go counterpart (HashiCorp's serf
    /// never hands a shutdown to the agent's handlers or streams), so nothing matches it, not
    /// even `*`.
    pub fn matches(&self, event: &Event) -> bool {
        let name_ok = |want: &Option<String>, got: &str| want.as_deref().is_none_or(|w| w == got);
        match (self, event) {
            (_, Event::Shutdown { .. }) => false,
            (FilterElement::All, _) => true,
            (FilterElement::Member(want), Event::Member { kind, .. }) => want == kind,
            (FilterElement::User(want), Event::User(user)) => name_ok(want, &user.name),
            (FilterElement::Query(want), Event::Query(query)) => name_ok(want, &query.name),
            _ => false,
        }
    }
}

impl fmt::Display for FilterElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilterElement::All => f.write_str("*"),
            FilterElement::Member(kind) => f.write_str(kind.as_str()),
            FilterElement::User(None) => f.write_str("user"),
            FilterElement::User(Some(name)) => write!(f, "user:{name}"),
            FilterElement::Query(None) => f.write_str("query"),
            FilterElement::Query(Some(name)) => write!(f, "query:{name}"),
        }
    }
}

/// A parsed filter: an event passes if any element matches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFilter {
    /// Never empty: the empty string parses to `[All]`.
    elements: Vec<FilterElement>,
}

/// A filter element HashiCorp's agent would reject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// The message is exactly the RPC error string Go's `stream` returns (`invalidFilter`), so
    /// the RPC layer can send `to_string()` as is; `element` is the offending raw element, which
    /// handler specs need for Go's `Invalid event script: …` message.
    #[error("Invalid event filter")]
    Invalid { element: String },
}

impl EventFilter {
    /// Parses HashiCorp's syntax; the first invalid element (in list order) is reported.
    pub fn parse(text: &str) -> Result<EventFilter, FilterError> {
        let text = if text.is_empty() { "*" } else { text };
        let elements = text
            .split(',')
            .map(FilterElement::parse)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(EventFilter { elements })
    }

    /// Whether the event passes (any element matches; see [`FilterElement::matches`]).
    pub fn matches(&self, event: &Event) -> bool {
        self.elements.iter().any(|e| e.matches(event))
    }

    /// The elements in the order written.
    pub fn elements(&self) -> &[FilterElement] {
        &self.elements
    }
}

impl FromStr for EventFilter {
    type Err = FilterError;

    fn from_str(s: &str) -> Result<EventFilter, FilterError> {
        EventFilter::parse(s)
    }
}

/// Writes the filter back in HashiCorp's syntax; `parse` of the output gives an equal filter.
impl fmt::Display for EventFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, element) in self.elements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{element}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Instant;

    use super::*;
    use serf::api::{Member, MemberStatus, QueryEvent, Tags, UserEvent};

    fn member_event(kind: MemberEventType) -> Event {
        Event::Member {
            kind,
            members: vec![Member {
                name: "a".into(),
                addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
                port: 7946,
                tags: Tags::new(),
                status: MemberStatus::Alive,
                protocol: [1, 5, 2],
                delegate: [2, 5, 4],
            }],
        }
    }

    fn user(name: &str) -> Event {
        Event::User(UserEvent {
            ltime: 1,
            name: name.into(),
            payload: vec![],
            coalesce: true,
        })
    }

    fn query(name: &str) -> Event {
        Event::Query(QueryEvent {
            ltime: 1,
            id: 7,
            name: name.into(),
            payload: vec![],
            source: "b".into(),
            deadline: Instant::now(),
        })
    }

    #[test]
    fn valid_elements_from_gos_tests_parse() {
        // TestEventScriptValid + TestParseEventFilter (event_handler_test.go, v0.9.4).
        for (text, want) in [
            ("", vec![FilterElement::All]),
            ("*", vec![FilterElement::All]),
            (
                "member-join",
                vec![FilterElement::Member(MemberEventType::Join)],
            ),
            (
                "member-leave",
                vec![FilterElement::Member(MemberEventType::Leave)],
            ),
            (
                "member-failed",
                vec![FilterElement::Member(MemberEventType::Failed)],
            ),
            (
                "member-update",
                vec![FilterElement::Member(MemberEventType::Update)],
            ),
            (
                "member-reap",
                vec![FilterElement::Member(MemberEventType::Reap)],
            ),
            ("user", vec![FilterElement::User(None)]),
            ("user:", vec![FilterElement::User(None)]),
            ("query", vec![FilterElement::Query(None)]),
            (
                "member-join,user:deploy,query:load",
                vec![
                    FilterElement::Member(MemberEventType::Join),
                    FilterElement::User(Some("deploy".into())),
                    FilterElement::Query(Some("load".into())),
                ],
            ),
            ("user:a:b", vec![FilterElement::User(Some("a:b".into()))]),
        ] {
            let filter = EventFilter::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(filter.elements(), want.as_slice(), "{text:?}");
        }
    }

    #[test]
    fn invalid_elements_are_rejected_with_gos_message() {
        for (text, bad) in [
            ("User", "User"),
            ("member", "member"),
            ("Query", "Query"),
            ("foo,bar", "foo"),
            ("member-join,bar", "bar"),
            ("member-join, user", " user"),
            ("member-join,", ""),
            (",", ""),
            ("User:deploy", "User:deploy"),
        ] {
            let err = EventFilter::parse(text).unwrap_err();
            assert_eq!(
                err,
                FilterError::Invalid {
                    element: bad.into()
                },
                "{text:?}"
            );
            assert_eq!(err.to_string(), "Invalid event filter");
        }
    }

    #[test]
    fn matching_follows_gos_invoke() {
        // TestEventScriptInvoke, plus the multi-element and shutdown cases.
        let join = member_event(MemberEventType::Join);
        let cases: &[(&str, &Event, bool)] = &[
            ("*", &join, true),
            ("user", &join, false),
            ("member-join", &join, true),
            ("member-leave", &join, false),
            ("member-reap", &member_event(MemberEventType::Reap), true),
            ("user:deploy", &user("deploy"), true),
            ("user:deploy", &user("restart"), false),
            ("user", &user("restart"), true),
            ("query:deploy", &query("deploy"), true),
            ("query:uptime", &query("deploy"), false),
            ("query", &query("deploy"), true),
            ("user", &query("deploy"), false),
            ("query:deploy", &user("deploy"), false),
            ("member-leave,user:x,query", &query("q"), true),
            ("member-leave,user:x", &user("y"), false),
        ];
        for (text, event, want) in cases {
            let filter = EventFilter::parse(text).unwrap();
            assert_eq!(filter.matches(event), *want, "{text:?} vs {event:?}");
        }
        let shutdown = Event::Shutdown {
            reason: "conflict".into(),
        };
        assert!(!EventFilter::parse("*").unwrap().matches(&shutdown));
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "*",
            "member-join,member-leave,member-failed,member-update,member-reap",
            "user,user:deploy,query,query:load,*",
        ] {
            let filter: EventFilter = text.parse().unwrap();
            assert_eq!(filter.to_string(), text);
            assert_eq!(EventFilter::parse(&filter.to_string()).unwrap(), filter);
        }
        // Spellings Go treats as equivalent come back canonical.
        assert_eq!(EventFilter::parse("").unwrap().to_string(), "*");
        assert_eq!(EventFilter::parse("user:").unwrap().to_string(), "user");
    }
}
