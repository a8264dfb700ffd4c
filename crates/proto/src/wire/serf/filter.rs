//! Query filters: each entry of `messageQuery.Filters` is `filter type byte | msgpack value`.

use super::bodies::FilterTag;
use crate::wire::error::{DecodeError, DecodeResult, ErrorKind};
use crate::wire::msgpack::{self, Decoder, Dialect, Field, GoString};

const FILTER_NODE: u8 = 0;
const FILTER_TAG: u8 = 1;

/// Which nodes a query is for. A node must pass every filter of a query.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// The node's name must be one of these.
    Nodes(Vec<GoString>),
    /// The node's tag must match the (unanchored, RE2) regular expression.
    Tag(FilterTag),
}

impl Filter {
    pub fn encode(&self, dialect: Dialect) -> Vec<u8> {
        match self {
            Filter::Nodes(names) => msgpack::to_vec_typed(FILTER_NODE, names, dialect),
            Filter::Tag(tag) => msgpack::to_vec_typed(FILTER_TAG, tag, dialect),
        }
    }

    pub fn decode(buf: &[u8]) -> DecodeResult<Filter> {
        let (&ty, rest) = buf
            .split_first()
            .ok_or(DecodeError::new(ErrorKind::Empty, 0))?;
        let mut dec = Decoder::new(rest);
        let filter = match ty {
            FILTER_NODE => Vec::<GoString>::decode(&mut dec).map(Filter::Nodes),
            FILTER_TAG => FilterTag::decode(&mut dec).map(Filter::Tag),
            value => {
                return Err(DecodeError::new(
                    ErrorKind::UnknownType {
                        what: "query filter",
                        value,
                    },
                    0,
                ))
            }
        };
        filter.map_err(|e| e.at_base(1))
    }
}
