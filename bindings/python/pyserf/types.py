"""Plain data returned by pyserf: members, events, query updates, coordinates, key results."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple, Union


class MemberStatus(str, enum.Enum):
    NONE = "none"
    ALIVE = "alive"
    LEAVING = "leaving"
    LEFT = "left"
    FAILED = "failed"


class EventType(str, enum.Enum):
    MEMBER_JOIN = "member-join"
    MEMBER_LEAVE = "member-leave"
    MEMBER_FAILED = "member-failed"
    MEMBER_UPDATE = "member-update"
    MEMBER_REAP = "member-reap"
    USER = "user"
    QUERY = "query"
    SHUTDOWN = "shutdown"


@dataclass(frozen=True)
class Member:
    name: str
    addr: str
    port: int
    status: MemberStatus
    tags: Dict[str, str] = field(default_factory=dict)
    #: memberlist min, max, current; serf min, max, current
    protocol: Tuple[int, int, int, int, int, int] = (0, 0, 0, 0, 0, 0)

    @property
    def address(self) -> str:
        return f"[{self.addr}]:{self.port}" if ":" in self.addr else f"{self.addr}:{self.port}"


@dataclass(frozen=True)
class MemberEvent:
    type: EventType
    members: Tuple[Member, ...]


@dataclass(frozen=True)
class UserEvent:
    name: str
    payload: bytes
    ltime: int
    coalesce: bool
    type: EventType = EventType.USER


@dataclass(frozen=True)
class ShutdownEvent:
    reason: str
    type: EventType = EventType.SHUTDOWN


@dataclass(frozen=True)
class QueryAck:
    """A node acknowledged receipt of a query (only with ``request_ack=True``)."""

    from_node: str


@dataclass(frozen=True)
class QueryReply:
    """A node answered a query."""

    from_node: str
    payload: bytes


QueryUpdate = Union[QueryAck, QueryReply]


@dataclass(frozen=True)
class Coordinate:
    vec: Tuple[float, ...]
    error: float
    adjustment: float
    height: float


@dataclass(frozen=True)
class KeyResponse:
    num_nodes: int
    num_responses: int
    num_errors: int
    error: Optional[str]
    messages: Dict[str, str]
    keys: Dict[str, int]
    primary_keys: Dict[str, int]

    @property
    def ok(self) -> bool:
        return self.error is None
