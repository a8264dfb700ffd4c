//! What serf tells the application.

use std::time::Instant;

use super::member::Member;
use super::query::{KeyAggregate, QueryUpdate};

/// The kinds of member events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberEventType {
    Join,
    Leave,
    Failed,
    Update,
    Reap,
}

impl MemberEventType {
    /// The name HashiCorp uses (`member-join`, …), also in handler environments and RPC streams.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberEventType::Join => "member-join",
            MemberEventType::Leave => "member-leave",
            MemberEventType::Failed => "member-failed",
            MemberEventType::Update => "member-update",
            MemberEventType::Reap => "member-reap",
        }
    }
}

/// A user event (`serf event`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEvent {
    pub ltime: u64,
    pub name: String,
    pub payload: Vec<u8>,
    /// The sender allowed coalescing it with later events of the same name.
    pub coalesce: bool,
}

/// A query to answer (at most once, before `deadline`) with `Serf::respond(ltime, id, …)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryEvent {
    pub ltime: u64,
    pub id: u32,
    pub name: String,
    pub payload: Vec<u8>,
    /// The node that asked.
    pub source: String,
    pub deadline: Instant,
}

/// An event for the application.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Member {
        kind: MemberEventType,
        members: Vec<Member>,
    },
    User(UserEvent),
    Query(QueryEvent),
    /// The node stopped by itself (it lost a name-conflict vote).
    Shutdown {
        reason: String,
    },
}

/// No address of a join answered; each one's reason as memberlist reported it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .reasons.join("; "))]
pub struct JoinFailed {
    pub reasons: Vec<String>,
}

/// The outcome of a command that completes later, by the handle the command returned.
#[derive(Debug, Clone, PartialEq)]
pub enum Completion {
    /// How many nodes a join contacted.
    Join {
        id: u64,
        result: Result<usize, JoinFailed>,
    },
    /// The leave intent has had its time to spread; the node gossips nothing new.
    Leave,
    /// Progress of a query this node sent (`handle` is its Lamport time).
    Query { handle: u64, update: QueryUpdate },
    /// A key operation finished (every node answered or the deadline passed).
    Keys { handle: u64, result: KeyAggregate },
}

/// What the user-event coalescer needs to know about a user event.
pub trait UserEventInfo {
    fn name(&self) -> &str;
    fn ltime(&self) -> u64;
    /// Whether the sender allowed coalescing; other events are delivered at once.
    fn coalesce(&self) -> bool;
}

impl UserEventInfo for UserEvent {
    fn name(&self) -> &str {
        &self.name
    }
    fn ltime(&self) -> u64 {
        self.ltime
    }
    fn coalesce(&self) -> bool {
        self.coalesce
    }
}
