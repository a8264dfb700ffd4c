"""pyserf: HashiCorp Serf (gossip membership, events, queries) embedded via libserf's C ABI.

    import pyserf
    with pyserf.Serf("web-1", bind="127.0.0.1:7946", tags={"role": "web"}) as node:
        node.join(["127.0.0.1:7947"])
        print(node.members())
"""

from ._ffi import LIBRARY_PATH, LIBRARY_VERSION, LibraryNotFoundError
from ._serf import Event, KeyManager, Query, QueryResponse, Serf
from .errors import (
    ClosedError,
    EncodingError,
    InternalError,
    InvalidArgumentError,
    JoinError,
    KeyOperationError,
    NotFoundError,
    NullArgumentError,
    SerfError,
    SerfIOError,
    SerfTimeoutError,
    StoppedError,
    TooLargeError,
)
from .types import (
    Coordinate,
    EventType,
    KeyResponse,
    Member,
    MemberEvent,
    MemberStatus,
    QueryAck,
    QueryReply,
    QueryUpdate,
    ShutdownEvent,
    UserEvent,
)

__version__ = "0.3.0"  # the library's version (tests/test_ffi_header.py checks it)

__all__ = [
    "LIBRARY_PATH", "LIBRARY_VERSION", "LibraryNotFoundError",
    "Serf", "Event", "KeyManager", "Query", "QueryResponse",
    "SerfError", "ClosedError", "EncodingError", "InternalError", "InvalidArgumentError",
    "JoinError", "KeyOperationError", "NotFoundError", "NullArgumentError", "SerfIOError",
    "SerfTimeoutError", "StoppedError", "TooLargeError",
    "Coordinate", "EventType", "KeyResponse", "Member", "MemberEvent", "MemberStatus",
    "QueryAck", "QueryReply", "QueryUpdate", "ShutdownEvent", "UserEvent",
]
