"""Plain data returned by pyserf: members, events, query updates, coordinates, key results."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple, Union


class MemberStatus(str, enum.Enum):
    """A member's state as HashiCorp names it (``serf members`` prints these values)."""

    NONE = "none"
    ALIVE = "alive"
    LEAVING = "leaving"
    LEFT = "left"
    FAILED = "failed"


class EventType(str, enum.Enum):
    """The kind of an event; the values are HashiCorp's event names (``member-join``...)."""

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
    """A snapshot of one cluster member: ``name``, IP ``addr`` and gossip ``port``, ``status``,
    ``tags`` and ``protocol`` versions."""

    name: str
    addr: str
    port: int
    status: MemberStatus
    tags: Dict[str, str] = field(default_factory=dict)
    #: memberlist min, max, current; serf min, max, current
    protocol: Tuple[int, int, int, int, int, int] = (0, 0, 0, 0, 0, 0)

    @property
    def address(self) -> str:
        """``addr:port``, with the IPv6 address in brackets."""
        return f"[{self.addr}]:{self.port}" if ":" in self.addr else f"{self.addr}:{self.port}"


@dataclass(frozen=True)
class MemberEvent:
    """Members joined, left, failed, were updated or reaped (``type`` says which)."""

    type: EventType
    members: Tuple[Member, ...]


@dataclass(frozen=True)
class UserEvent:
    """A user event (:meth:`Serf.send_event` or ``serf event``) with its Lamport time ``ltime``
    and whether the sender allowed coalescing."""

    name: str
    payload: bytes
    ltime: int
    coalesce: bool
    type: EventType = EventType.USER


@dataclass(frozen=True)
class ShutdownEvent:
    """The node stopped by itself (it lost a name-conflict vote); ``reason`` says why."""

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
    """A Vivaldi network coordinate (HashiCorp's ``coordinate.Coordinate``)."""

    vec: Tuple[float, ...]
    error: float
    adjustment: float
    height: float


@dataclass(frozen=True)
class KeyResponse:
    """The cluster-wide outcome of a key operation (Go's ``KeyResponse``): nodes asked and
    answering, per-node ``messages``, and for :meth:`KeyManager.list` how many nodes hold each
    key (``keys``) and use it as primary (``primary_keys``). ``error`` summarizes failures."""

    num_nodes: int
    num_responses: int
    num_errors: int
    error: Optional[str]
    messages: Dict[str, str]
    keys: Dict[str, int]
    primary_keys: Dict[str, int]

    @property
    def ok(self) -> bool:
        """True when every member succeeded."""
        return self.error is None
