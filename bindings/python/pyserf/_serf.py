"""The Serf node, queries and key management."""

from __future__ import annotations

import asyncio
import ctypes
import json
import socket
import time
from ctypes import byref, c_char_p, c_double, c_size_t, c_uint8, c_uint16, c_void_p
from typing import (
    Any,
    AsyncIterator,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Tuple,
    Union,
)

from . import _ffi
from ._ffi import lib
from ._handle import Handle
from .errors import (
    InvalidArgumentError,
    KeyOperationError,
    SerfTimeoutError,
    StoppedError,
    check,
    error_for,
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

Payload = Union[bytes, bytearray, memoryview]

_PROFILES = {
    "lan": _ffi.SERF_PROFILE_LAN,
    "wan": _ffi.SERF_PROFILE_WAN,
    "local": _ffi.SERF_PROFILE_LOCAL,
}
_EVENT_TYPES = {
    _ffi.SERF_EVENT_MEMBER_JOIN: EventType.MEMBER_JOIN,
    _ffi.SERF_EVENT_MEMBER_LEAVE: EventType.MEMBER_LEAVE,
    _ffi.SERF_EVENT_MEMBER_FAILED: EventType.MEMBER_FAILED,
    _ffi.SERF_EVENT_MEMBER_UPDATE: EventType.MEMBER_UPDATE,
    _ffi.SERF_EVENT_MEMBER_REAP: EventType.MEMBER_REAP,
}
_STATUSES = {
    _ffi.SERF_MEMBER_NONE: MemberStatus.NONE,
    _ffi.SERF_MEMBER_ALIVE: MemberStatus.ALIVE,
    _ffi.SERF_MEMBER_LEAVING: MemberStatus.LEAVING,
    _ffi.SERF_MEMBER_LEFT: MemberStatus.LEFT,
    _ffi.SERF_MEMBER_FAILED: MemberStatus.FAILED,
}
_LOG_LEVELS = {
    "off": _ffi.SERF_LOG_OFF,
    "error": _ffi.SERF_LOG_ERROR,
    "warn": _ffi.SERF_LOG_WARN,
    "info": _ffi.SERF_LOG_INFO,
    "debug": _ffi.SERF_LOG_DEBUG,
}
# Poll in slices so a blocking wait stays interruptible (Ctrl-C) from Python.
_SLICE_MS = 250


def _enc(s: str, what: str = "string") -> bytes:
    if not isinstance(s, str):
        raise TypeError(f"{what} must be str, not {type(s).__name__}")
    if "\x00" in s:
        raise InvalidArgumentError(f"{what} contains a NUL character")
    return s.encode("utf-8")


def _dec(b: Optional[bytes]) -> str:
    return "" if b is None else b.decode("utf-8", "replace")


def _payload(p: object, what: str = "payload") -> bytes:
    """``p`` as bytes, for every argument that takes raw bytes. Only bytes-like objects are
    accepted: ``bytes(5)`` would quietly send five NULs and a str has no one right encoding."""
    if not isinstance(p, (bytes, bytearray, memoryview)):
        raise TypeError(f"{what} must be bytes, bytearray or memoryview, not {type(p).__name__}")
    return bytes(p)


def _split_hostport(s: str, default_port: int) -> Tuple[str, int]:
    s = s.strip()
    if s.startswith("["):
        host, _, rest = s[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else default_port
        return host, port
    if s.count(":") == 1:
        host, _, port_s = s.partition(":")
        try:
            return host, int(port_s)
        except ValueError:
            raise InvalidArgumentError(f"bad port in address {s!r}") from None
    return s, default_port


def _guess_advertise() -> str:
    """This host's address from its own name (a local lookup, no traffic), for a wildcard bind
    without an explicit advertise address; loopback when the name does not resolve."""
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


async def _readable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    """Waits until `fd` is readable, without a thread: the event loop watches it."""
    fut: "asyncio.Future[None]" = loop.create_future()

    def ready() -> None:
        if not fut.done():
            fut.set_result(None)

    loop.add_reader(fd, ready)
    try:
        await fut
    finally:
        loop.remove_reader(fd)


def _member_from_ptr(m: int) -> Member:
    tags: Dict[str, str] = {}
    k, v = c_char_p(), c_char_p()
    for i in range(lib.serf_member_tag_count(m)):
        if lib.serf_member_tag_at(m, i, byref(k), byref(v)):
            tags[_dec(k.value)] = _dec(v.value)
    vers = (c_uint8 * 6)()
    lib.serf_member_versions(m, vers)
    return Member(
        name=_dec(lib.serf_member_name(m)),
        addr=_dec(lib.serf_member_addr(m)),
        port=int(lib.serf_member_port(m)),
        status=_STATUSES.get(lib.serf_member_status(m), MemberStatus.NONE),
        tags=tags,
        protocol=(vers[0], vers[1], vers[2], vers[3], vers[4], vers[5]),
    )


def _event_payload(ev: int) -> bytes:
    n = c_size_t(0)
    ptr = lib.serf_event_payload(ev, byref(n))
    return ctypes.string_at(ptr, n.value) if ptr and n.value else b""


class Query(Handle):
    """A query received by this node. Answer it with :meth:`respond` before its deadline.

    ``name``, ``payload``, ``ltime`` (Lamport time), ``id``, ``source`` (the sending node) and
    ``deadline`` (a ``time.monotonic()`` value) describe it.
    """

    type = EventType.QUERY

    def __init__(self, serf: "Serf", ev: int) -> None:
        super().__init__(ev, lib.serf_event_free)
        self._serf = serf
        self.name: str = _dec(lib.serf_event_name(ev))
        self.payload: bytes = _event_payload(ev)
        self.ltime: int = int(lib.serf_event_ltime(ev))
        self.id: int = int(lib.serf_event_query_id(ev))
        self.source: str = _dec(lib.serf_event_query_source(ev))
        self.deadline: float = time.monotonic() + lib.serf_event_query_remaining_ms(ev) / 1000.0

    @property
    def remaining(self) -> float:
        """Seconds left to answer."""
        return max(0.0, self.deadline - time.monotonic())

    def respond(self, payload: Payload = b"") -> None:
        """Answer the query (once, before its deadline) with ``payload``.

        Raises TypeError when ``payload`` is not bytes, bytearray or memoryview; TooLargeError
        when the encoded response (the payload, this node's name and a few dozen bytes of
        framing) exceeds 1024 bytes; NotFoundError when already answered or past the deadline.
        """
        data = _payload(payload)
        sp = self._serf._require()
        check(lib.serf_query_respond(sp, self._require(), data, len(data)), "query respond")

    def __repr__(self) -> str:
        return f"Query(name={self.name!r}, payload={self.payload!r}, source={self.source!r})"


Event = Union[MemberEvent, UserEvent, Query, ShutdownEvent]


class QueryResponse(Handle):
    """A query in flight: iterate it for :class:`QueryAck` / :class:`QueryReply` updates.

    Iteration finishes at the deadline or as soon as every expected node answered. ``acks`` and
    ``responses`` accumulate what was seen so far.
    """

    def __init__(self, q: int) -> None:
        super().__init__(q, lib.serf_query_free)
        self.acks: List[str] = []
        self.responses: Dict[str, bytes] = {}
        self._done = False

    @property
    def done(self) -> bool:
        """True once the query is over (deadline passed or every expected node answered)."""
        return self._done

    @property
    def remaining(self) -> float:
        """Seconds until the query's deadline (0 once past, or when closed)."""
        return lib.serf_query_remaining_ms(self._require()) / 1000.0 if self._ptr else 0.0

    def fileno(self) -> int:
        """Readable while updates wait (for select/poll/asyncio)."""
        return int(lib.serf_query_fd(self._require()))

    def next(self, timeout: Optional[float] = None) -> Optional[QueryUpdate]:
        """The next update; None when the query is over. ``timeout`` (seconds) raises
        SerfTimeoutError when nothing arrives in time; None waits up to the deadline."""
        if self._done:
            return None
        q = self._require()
        upd = _ffi.serf_query_update()
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            if end is None:
                slice_ms = _SLICE_MS
            else:
                slice_ms = max(0, min(_SLICE_MS, int((end - time.monotonic()) * 1000)))
            st = lib.serf_query_next(q, slice_ms, byref(upd))
            if st == _ffi.SERF_ERR_TIMEOUT:
                if end is not None and time.monotonic() >= end:
                    raise SerfTimeoutError("no query update in time", st)
                continue
            check(st, "query next")
            break
        if upd.kind == _ffi.SERF_QUERY_DONE:
            self._done = True
            return None
        node = _dec(upd.from_)
        if upd.kind == _ffi.SERF_QUERY_ACK:
            self.acks.append(node)
            return QueryAck(node)
        data = ctypes.string_at(upd.payload, upd.payload_len) if upd.payload else b""
        self.responses[node] = data
        return QueryReply(node, data)

    def __iter__(self) -> Iterator[QueryUpdate]:
        while True:
            u = self.next()
            if u is None:
                return
            yield u

    def wait(self) -> Dict[str, bytes]:
        """Collect until done; returns node -> response payload."""
        for _ in self:
            pass
        return dict(self.responses)

    async def __aiter__(self) -> AsyncIterator[QueryUpdate]:
        loop = asyncio.get_running_loop()
        fd = self.fileno()
        while True:
            try:
                u = self.next(timeout=0)
            except SerfTimeoutError:
                await _readable(loop, fd)
                continue
            if u is None:
                return
            yield u


class KeyManager:
    """Cluster-wide keyring operations (``serf keys``). Keys are base64 strings."""

    def __init__(self, serf: "Serf") -> None:
        self._serf = serf

    def _op(self, op: int, key: Optional[str]) -> KeyResponse:
        out = c_void_p()
        kb = None if key is None else _enc(key, "key")
        check(lib.serf_key_operation(self._serf._require(), op, kb, byref(out)), "key operation")
        r = out.value
        try:
            n, k = c_char_p(), c_char_p()
            cnt = c_size_t()
            msgs: Dict[str, str] = {}
            for i in range(lib.serf_key_result_message_count(r)):
                if lib.serf_key_result_message_at(r, i, byref(n), byref(k)):
                    msgs[_dec(n.value)] = _dec(k.value)
            keys: Dict[str, int] = {}
            for i in range(lib.serf_key_result_key_count(r)):
                if lib.serf_key_result_key_at(r, i, byref(k), byref(cnt)):
                    keys[_dec(k.value)] = cnt.value
            prim: Dict[str, int] = {}
            for i in range(lib.serf_key_result_primary_key_count(r)):
                if lib.serf_key_result_primary_key_at(r, i, byref(k), byref(cnt)):
                    prim[_dec(k.value)] = cnt.value
            err = lib.serf_key_result_error(r)
            resp = KeyResponse(
                num_nodes=int(lib.serf_key_result_num_nodes(r)),
                num_responses=int(lib.serf_key_result_num_responses(r)),
                num_errors=int(lib.serf_key_result_num_errors(r)),
                error=None if err is None else _dec(err),
                messages=msgs,
                keys=keys,
                primary_keys=prim,
            )
        finally:
            lib.serf_key_result_free(r)
        if resp.error is not None and op != _ffi.SERF_KEY_LIST:
            raise KeyOperationError(f"key operation failed: {resp.error}", resp)
        return resp

    def install(self, key: str) -> KeyResponse:
        """Add ``key`` to every member's keyring. Raises InvalidArgumentError for a malformed
        key, KeyOperationError when some member failed (its ``response`` says which)."""
        return self._op(_ffi.SERF_KEY_INSTALL, key)

    def use(self, key: str) -> KeyResponse:
        """Make the installed ``key`` the primary (encrypting) key everywhere. Raises as
        :meth:`install`."""
        return self._op(_ffi.SERF_KEY_USE, key)

    def remove(self, key: str) -> KeyResponse:
        """Remove ``key`` (not the primary) from every keyring. Raises as :meth:`install`."""
        return self._op(_ffi.SERF_KEY_REMOVE, key)

    def list(self) -> KeyResponse:
        """The keys the members hold (``keys``) and use as primary (``primary_keys``), with the
        number of nodes for each. Member failures are reported in the response, not raised."""
        return self._op(_ffi.SERF_KEY_LIST, None)


class Serf(Handle):
    """An embedded Serf node (one background protocol thread inside libserf).

    ``bind``/``advertise`` are "ip", "ip:port" or "[ipv6]:port" (port 0 picks a free one; see
    :attr:`port`). When binding a wildcard address without ``advertise``, this host's address
    (its name, resolved locally) is advertised. ``encrypt_key`` is base64 (as ``serf keygen``
    prints) or 16/24/32 raw bytes. ``tuning`` maps knob names (``probe_interval_ms``,
    ``gossip_interval_ms``... see ``pyserf._ffi.TUNING_KNOBS``) to values. ``keys`` is the
    node's :class:`KeyManager`. Call :meth:`close` (or use ``with``) when done; do not call it
    while another thread is inside a call on the same node.

    Raises InvalidArgumentError for a bad address, key or option, TooLargeError when the name
    exceeds 128 bytes or the encoded tags 512, SerfIOError when the address cannot be bound.
    """

    def __init__(
        self,
        node_name: str,
        bind: str = "0.0.0.0:7946",
        advertise: Optional[str] = None,
        tags: Optional[Mapping[str, str]] = None,
        profile: str = "lan",
        encrypt_key: Union[str, Payload, None] = None,
        snapshot_path: Optional[str] = None,
        *,
        keyring_file: Optional[str] = None,
        label: Optional[str] = None,
        rejoin_after_leave: bool = False,
        protocol_version: Optional[int] = None,
        event_queue_capacity: Optional[int] = None,
        coalesce: Optional[Tuple[float, float]] = None,
        user_coalesce: Optional[Tuple[float, float]] = None,
        disable_coordinates: bool = False,
        tuning: Optional[Mapping[str, int]] = None,
        log_level: str = "off",
    ) -> None:
        cfg_out = c_void_p()
        check(lib.serf_config_new(byref(cfg_out)), "config")
        cfg = cfg_out.value
        try:
            check(lib.serf_config_set_node_name(cfg, _enc(node_name, "node_name")), "node_name")
            host, port = _split_hostport(bind, 7946)
            if not 0 <= port <= 65535:
                raise InvalidArgumentError(f"bind port out of range: {port}")
            check(lib.serf_config_set_bind(cfg, _enc(host, "bind"), port), f"bind {bind!r}")
            if advertise is None and host in ("0.0.0.0", "::", ""):
                advertise = _guess_advertise()
            if advertise is not None:
                ahost, aport = _split_hostport(advertise, 0)
                if not 0 <= aport <= 65535:
                    raise InvalidArgumentError(f"advertise port out of range: {aport}")
                check(lib.serf_config_set_advertise(cfg, _enc(ahost, "advertise"), aport),
                      f"advertise {advertise!r}")
            if profile not in _PROFILES:
                raise InvalidArgumentError(f"profile must be one of {sorted(_PROFILES)}")
            check(lib.serf_config_set_profile(cfg, _PROFILES[profile]), "profile")
            for knob, value in (tuning or {}).items():
                if knob not in _ffi.TUNING_KNOBS:
                    raise InvalidArgumentError(f"unknown tuning knob {knob!r}")
                check(lib.serf_config_set_tuning(cfg, _ffi.TUNING_KNOBS[knob], int(value)), knob)
            for k, v in (tags or {}).items():
                check(lib.serf_config_set_tag(cfg, _enc(k, "tag key"), _enc(v, "tag value")),
                      f"tag {k!r}")
            if encrypt_key is not None:
                if isinstance(encrypt_key, str):
                    check(lib.serf_config_add_key_base64(cfg, _enc(encrypt_key, "key")), "key")
                else:
                    kb = _payload(encrypt_key, "encrypt_key (when not a base64 str)")
                    check(lib.serf_config_add_key(cfg, kb, len(kb)), "key")
            if keyring_file is not None:
                check(lib.serf_config_set_keyring_file(cfg, _enc(keyring_file)), "keyring_file")
            if label is not None:
                check(lib.serf_config_set_label(cfg, _enc(label, "label")), "label")
            if snapshot_path is not None:
                check(lib.serf_config_set_snapshot_path(cfg, _enc(snapshot_path)), "snapshot")
            if rejoin_after_leave:
                check(lib.serf_config_set_rejoin_after_leave(cfg, True), "rejoin")
            if protocol_version is not None:
                check(lib.serf_config_set_protocol_version(cfg, protocol_version), "protocol")
            if event_queue_capacity is not None:
                check(lib.serf_config_set_event_queue_capacity(cfg, event_queue_capacity),
                      "event_queue_capacity")
            if coalesce is not None:
                check(lib.serf_config_set_coalesce(
                    cfg, int(coalesce[0] * 1000), int(coalesce[1] * 1000)), "coalesce")
            if user_coalesce is not None:
                check(lib.serf_config_set_user_coalesce(
                    cfg, int(user_coalesce[0] * 1000), int(user_coalesce[1] * 1000)),
                    "user_coalesce")
            if disable_coordinates:
                check(lib.serf_config_set_disable_coordinates(cfg, True), "coordinates")
            if log_level not in _LOG_LEVELS:
                raise InvalidArgumentError(f"log_level must be one of {sorted(_LOG_LEVELS)}")
            check(lib.serf_config_set_log_level(cfg, _LOG_LEVELS[log_level]), "log_level")
            out = c_void_p()
            check(lib.serf_create(cfg, byref(out)), f"create node {node_name!r} on {bind!r}")
        finally:
            lib.serf_config_free(cfg)
        super().__init__(out.value, lib.serf_free)  # type: ignore[arg-type]
        self.name = node_name
        self.keys = KeyManager(self)

    def _before_free(self, ptr: int) -> None:
        lib.serf_shutdown(ptr)

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"port={self.port}"
        return f"Serf({self.name!r}, {state})"

    # --- lifecycle ---------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The port the node is bound to (the one picked when binding port 0)."""
        p = c_uint16()
        check(lib.serf_local_port(self._require(), byref(p)), "local port")
        return int(p.value)

    def join(self, addrs: Union[str, Iterable[str]], ignore_old: bool = False) -> int:
        """Join through any of ``addrs`` ("host", "host:port" or "[ipv6]:port"); returns how
        many nodes answered. ``ignore_old`` skips user events sent before the join. Raises
        JoinError when none answered, InvalidArgumentError for a bad address."""
        lst = [addrs] if isinstance(addrs, str) else list(addrs)
        arr = (c_char_p * max(1, len(lst)))(*[_enc(a, "address") for a in lst])
        n = c_size_t()
        check(lib.serf_join(self._require(), arr, len(lst), ignore_old, byref(n)),
              f"join {lst!r}")
        return int(n.value)

    def leave(self) -> None:
        """Leave gracefully (waits for the announcement to spread). The node stays readable.
        Raises StoppedError after shutdown, SerfTimeoutError when the leave did not finish."""
        check(lib.serf_leave(self._require()), "leave")

    def shutdown(self) -> None:
        """Stop without leaving (peers see a failure). Queued events stay readable."""
        check(lib.serf_shutdown(self._require()), "shutdown")

    def force_leave(self, node: str, prune: bool = False) -> None:
        """Announce that the failed member ``node`` left; with ``prune`` it is erased from every
        member list (``serf force-leave -prune``). Raises NotFoundError for an unknown member."""
        check(lib.serf_force_leave(self._require(), _enc(node, "node"), prune), "force leave")

    # --- members and tags --------------------------------------------------------------
    def members(self) -> List[Member]:
        """Every member this node knows, itself included (failed and left ones until reaped),
        sorted by name. Raises StoppedError after shutdown (it still works after leave)."""
        out = c_void_p()
        check(lib.serf_members(self._require(), byref(out)), "members")
        lst = out.value
        try:
            return [_member_from_ptr(lib.serf_members_get(lst, i))
                    for i in range(lib.serf_members_count(lst))]
        finally:
            lib.serf_members_free(lst)

    def local_member(self) -> Member:
        """This node as a :class:`Member`."""
        mine = c_void_p()
        check(lib.serf_local_member(self._require(), byref(mine)), "local member")
        try:
            return _member_from_ptr(lib.serf_members_get(mine, 0))
        finally:
            lib.serf_members_free(mine)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Set (or replace) these tags, one at a time, and gossip the change. Raises
        TooLargeError when the encoded tags would exceed 512 bytes (that tag and the ones after
        it are not set)."""
        p = self._require()
        for k, v in tags.items():
            check(lib.serf_set_tag(p, _enc(k, "tag key"), _enc(v, "tag value")), f"tag {k!r}")

    def delete_tags(self, keys: Union[str, Iterable[str]]) -> None:
        """Delete the tag ``keys`` (a name or several; absent ones are ignored) and gossip the
        change."""
        p = self._require()
        for k in [keys] if isinstance(keys, str) else keys:
            check(lib.serf_delete_tag(p, _enc(k, "tag key")), f"delete tag {k!r}")

    # --- user events -------------------------------------------------------------------
    def send_event(self, name: str, payload: Payload = b"", coalesce: bool = True) -> None:
        """Send the user event ``name`` with ``payload`` to every member, this node included.
        With ``coalesce``, nodes that coalesce user events may keep only the newest of a name.

        Raises TypeError when ``payload`` is not bytes, bytearray or memoryview; TooLargeError
        when the encoded message exceeds the 512-byte user-event limit: name, payload and about
        30 bytes of framing (a 4-byte name leaves 478 bytes of payload); StoppedError after
        leave or shutdown.
        """
        data = _payload(payload)
        check(lib.serf_send_event(self._require(), _enc(name, "event name"), data, len(data),
                                  coalesce), f"send event {name!r}")

    def _wrap_event(self, ev: int) -> Event:
        kind = lib.serf_event_type(ev)
        if kind == _ffi.SERF_EVENT_QUERY:
            return Query(self, ev)  # owns ev
        try:
            if kind in _EVENT_TYPES:
                members = tuple(_member_from_ptr(lib.serf_event_member(ev, i))
                                for i in range(lib.serf_event_member_count(ev)))
                return MemberEvent(_EVENT_TYPES[kind], members)
            if kind == _ffi.SERF_EVENT_USER:
                return UserEvent(_dec(lib.serf_event_name(ev)), _event_payload(ev),
                                 int(lib.serf_event_ltime(ev)), bool(lib.serf_event_coalesce(ev)))
            if kind == _ffi.SERF_EVENT_SHUTDOWN:
                return ShutdownEvent(_dec(lib.serf_event_shutdown_reason(ev)))
            raise InvalidArgumentError(f"unknown event type {kind}")
        finally:
            lib.serf_event_free(ev)

    def try_event(self) -> Optional[Event]:
        """The next queued event without waiting, or None. Raises StoppedError once the node
        is shut down and its queue is drained."""
        out = c_void_p()
        st = lib.serf_try_event(self._require(), byref(out))
        if st == _ffi.SERF_ERR_TIMEOUT:
            return None
        check(st, "try event")
        return self._wrap_event(out.value)  # type: ignore[arg-type]

    def poll_event(self, timeout: Optional[float] = None) -> Optional[Event]:
        """Wait up to ``timeout`` seconds (None: forever) for an event; None on timeout.
        Raises StoppedError once the node is shut down and its queue is drained."""
        p = self._require()
        end = None if timeout is None else time.monotonic() + max(0.0, timeout)
        out = c_void_p()
        while True:
            if end is None:
                ms = _SLICE_MS
            else:
                ms = max(0, min(_SLICE_MS, int((end - time.monotonic()) * 1000)))
            st = lib.serf_poll_event(p, ms, byref(out))
            if st == _ffi.SERF_OK:
                return self._wrap_event(out.value)  # type: ignore[arg-type]
            if st != _ffi.SERF_ERR_TIMEOUT:
                raise error_for(st, "poll event")
            if end is not None and time.monotonic() >= end:
                return None
            p = self._require()

    def events(self, timeout: Optional[float] = None) -> Iterator[Event]:
        """Yield events; stops when none arrives within ``timeout`` seconds (None: never) or
        when the node is stopped/closed."""
        while not self.closed:
            try:
                ev = self.poll_event(timeout)
            except StoppedError:
                return
            if ev is None:
                return
            yield ev

    async def aevents(self) -> AsyncIterator[Event]:
        """``async for ev in serf.aevents()``: waits on the event fd with ``loop.add_reader``
        (no extra thread). Ends when the node is stopped or closed."""
        loop = asyncio.get_running_loop()
        fd = self.event_fd
        while not self.closed:
            try:
                ev = self.try_event()
            except StoppedError:
                return
            if ev is not None:
                yield ev
                continue
            await _readable(loop, fd)

    @property
    def event_fd(self) -> int:
        """Readable exactly while events are queued. Owned by the node: never close it."""
        return int(lib.serf_event_fd(self._require()))

    @property
    def dropped_events(self) -> int:
        """Events dropped so far because the queue was full (they were not read in time)."""
        return int(lib.serf_dropped_events(self._require()))

    # --- queries -----------------------------------------------------------------------
    def query(
        self,
        name: str,
        payload: Payload = b"",
        filter_nodes: Optional[Iterable[str]] = None,
        filter_tags: Optional[Mapping[str, str]] = None,
        request_ack: bool = False,
        timeout: Optional[float] = None,
        relay_factor: int = 0,
    ) -> QueryResponse:
        """Send the query ``name`` with ``payload`` and return at once; read the answers from the
        returned :class:`QueryResponse`.

        Only the nodes in ``filter_nodes`` (when given) whose tags match every regular expression
        of ``filter_tags`` answer. ``request_ack`` asks them to acknowledge receipt;
        ``timeout`` is in seconds (None: serf's default, which grows with the cluster);
        ``relay_factor`` extra members (0 to 5) relay each response. Raises TypeError when
        ``payload`` is not bytes, bytearray or memoryview; TooLargeError when the encoded query
        exceeds 1024 bytes: name, payload, filters, this node's name and about 100 bytes of
        framing; InvalidArgumentError for a bad regular expression or timeout; StoppedError
        after leave or shutdown.
        """
        data = _payload(payload)
        pout = c_void_p()
        check(lib.serf_query_params_new(byref(pout)), "query params")
        params = pout.value
        try:
            for n in filter_nodes or ():
                check(lib.serf_query_params_add_node(params, _enc(n, "node")), "filter node")
            for k, rx in (filter_tags or {}).items():
                check(lib.serf_query_params_add_tag(params, _enc(k, "tag"), _enc(rx, "regex")),
                      f"filter tag {k!r}")
            check(lib.serf_query_params_set_request_ack(params, request_ack), "request_ack")
            if relay_factor:
                check(lib.serf_query_params_set_relay_factor(params, relay_factor), "relay")
            if timeout is not None:
                ms = int(timeout * 1000)
                if ms <= 0:
                    raise InvalidArgumentError("query timeout must be positive")
                check(lib.serf_query_params_set_timeout_ms(params, ms), "query timeout")
            out = c_void_p()
            check(lib.serf_query(self._require(), _enc(name, "query name"), data, len(data),
                                 params, byref(out)), f"query {name!r}")
        finally:
            lib.serf_query_params_free(params)
        return QueryResponse(out.value)  # type: ignore[arg-type]

    # --- coordinates and stats ---------------------------------------------------------
    def coordinate(self, node: Optional[str] = None) -> Coordinate:
        """The network coordinate this node holds for ``node`` (None: itself). Raises
        NotFoundError when coordinates are disabled or none is known for ``node`` yet."""
        c = _ffi.serf_coordinate()
        nb = None if node is None else _enc(node, "node")
        check(lib.serf_coordinate_get(self._require(), nb, byref(c)), "coordinate")
        return Coordinate(tuple(c.vec), c.error, c.adjustment, c.height)

    def rtt(self, node: str, other: Optional[str] = None) -> float:
        """Estimated round trip (seconds) between this node (or ``other``) and ``node``, from
        their coordinates. Raises NotFoundError when a coordinate is unknown."""
        secs = c_double()
        a = _enc(other if other is not None else self.name, "node")
        check(lib.serf_rtt(self._require(), a, _enc(node, "node"), byref(secs)), "rtt")
        return float(secs.value)

    def stats(self) -> Dict[str, Any]:
        """The node's counters (members, Lamport clocks, queue depths, HashiCorp's metrics) as
        a dict of numbers and booleans; ``serf_stats_json`` in serf.h lists the keys."""
        out = c_void_p()
        check(lib.serf_stats_json(self._require(), byref(out)), "stats")
        try:
            text = ctypes.string_at(out.value)  # type: ignore[arg-type]
        finally:
            lib.serf_string_free(out.value)
        result: Dict[str, Any] = json.loads(text)
        return result
