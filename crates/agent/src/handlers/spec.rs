//! `-event-handler` values: `[filter=]script`, parsed and validated as Go's agent does at
//! startup.

use crate::filter::{EventFilter, FilterError};

/// One `-event-handler` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerSpec {
    pub filter: EventFilter,
    /// Passed verbatim to `/bin/sh -c`; may be empty (Go accepts that too; it does nothing).
    pub script: String,
}

/// A spec with an invalid filter element; the message is the one HashiCorp's agent prints
/// before exiting at startup (`Invalid event script: Event 'foo' invoking 'x.sh'`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid event script: Event '{element}' invoking '{script}'")]
pub struct HandlerSpecError {
    pub element: String,
    pub script: String,
}

impl HandlerSpec {
    /// Go's `ParseEventScript` + `Valid`: no `=` means "all events"; otherwise the text before
    /// the first `=` must be a valid filter.
    pub fn parse(spec: &str) -> Result<HandlerSpec, HandlerSpecError> {
        let (filter, script) = spec.split_once('=').unwrap_or(("", spec));
        let filter = EventFilter::parse(filter).map_err(|FilterError::Invalid { element }| {
            HandlerSpecError {
                element,
                script: script.to_string(),
            }
        })?;
        Ok(HandlerSpec {
            filter,
            script: script.to_string(),
        })
    }
}
