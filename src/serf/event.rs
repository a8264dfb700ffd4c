//! What serf tells the application.

use super::member::Member;

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

/// An event for the application.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Member {
        kind: MemberEventType,
        members: Vec<Member>,
    },
}

/// The outcome of a command that completes later (join, leave), by the id the command returned.
#[derive(Debug, Clone, PartialEq)]
pub enum Completion {
    Join {
        id: u64,
        result: Result<usize, String>,
    },
    Leave {
        result: Result<(), String>,
    },
}
