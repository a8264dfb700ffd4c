"""The one place where libserf status codes become Python exceptions."""

from __future__ import annotations

from typing import Dict, Optional, Type

from . import _ffi


class SerfError(Exception):
    """Base of every pyserf error. ``status`` is the serf_status code (0 for Python-side errors),
    ``status_name`` its name (``"SERF_ERR_INVALID"``...) and ``message`` the text."""

    status: int = 0
    status_name: str = ""

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        self.message = message


class NullArgumentError(SerfError, ValueError):
    """libserf got a NULL where it needs a value (SERF_ERR_NULL); a pyserf bug if it happens."""

    status = _ffi.SERF_ERR_NULL


class EncodingError(SerfError, ValueError):
    """A string was not valid UTF-8 (SERF_ERR_UTF8)."""

    status = _ffi.SERF_ERR_UTF8


class InvalidArgumentError(SerfError, ValueError):
    """An argument is out of range or malformed: address, key, option... (SERF_ERR_INVALID)."""

    status = _ffi.SERF_ERR_INVALID


class TooLargeError(InvalidArgumentError):
    """A message, name or tag set exceeds the protocol's limit (SERF_ERR_TOO_LARGE).

    Limits apply to the encoded message, as in HashiCorp's serf: a user event must encode to at
    most 512 bytes, a query and a query response to at most 1024, the encoded tags to 512.
    """

    status = _ffi.SERF_ERR_TOO_LARGE


class SerfTimeoutError(SerfError, TimeoutError):
    """Nothing happened within the time allowed (SERF_ERR_TIMEOUT)."""

    status = _ffi.SERF_ERR_TIMEOUT


class NotFoundError(SerfError, LookupError):
    """The named member, tag or pending query does not exist (SERF_ERR_NOT_FOUND)."""

    status = _ffi.SERF_ERR_NOT_FOUND


class StoppedError(SerfError):
    """The node has left or was shut down (SERF_ERR_STOPPED)."""

    status = _ffi.SERF_ERR_STOPPED


class SerfIOError(SerfError, OSError):
    """An operating-system error: binding sockets, reading a file... (SERF_ERR_IO)."""

    status = _ffi.SERF_ERR_IO


class JoinError(SerfError, ConnectionError):
    """A join reached none of the given addresses (SERF_ERR_JOIN)."""

    status = _ffi.SERF_ERR_JOIN


class InternalError(SerfError):
    """A bug in libserf (SERF_ERR_INTERNAL); the node stays usable."""

    status = _ffi.SERF_ERR_INTERNAL


class ClosedError(StoppedError):
    """The Python handle was closed; the native object is gone."""


class KeyOperationError(SerfError):
    """A key operation completed but some members reported failure; ``response`` has details."""

    def __init__(self, message: str, response: object) -> None:
        super().__init__(message)
        self.response = response


_BY_STATUS: Dict[int, Type[SerfError]] = {
    c.status: c
    for c in (
        NullArgumentError,
        EncodingError,
        InvalidArgumentError,
        TooLargeError,
        SerfTimeoutError,
        NotFoundError,
        StoppedError,
        SerfIOError,
        JoinError,
        InternalError,
    )
}


def error_for(status: int, context: str = "") -> SerfError:
    """Build the exception for a failed call (reads this thread's last error message)."""
    msg = (_ffi.lib.serf_last_error_message() or b"").decode("utf-8", "replace")
    name = (_ffi.lib.serf_status_name(status) or b"").decode()
    text = f"{context}: {msg}" if context else msg
    text = f"{text} [{name}]" if msg else f"{context or 'libserf'} failed [{name}]"
    cls = _BY_STATUS.get(status, SerfError)
    err = cls(text, status)
    err.status_name = name
    return err


def check(status: int, context: str = "") -> None:
    """Raise the matching SerfError unless ``status`` is SERF_OK."""
    if status != _ffi.SERF_OK:
        raise error_for(status, context)
