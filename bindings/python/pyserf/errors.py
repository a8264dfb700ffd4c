"""The one place where libserf status codes become Python exceptions."""

from __future__ import annotations

from typing import Dict, Optional, Type

from . import _ffi


class SerfError(Exception):
    """Base of every pyserf error. ``status`` is the serf_status code (0 for Python-side errors)."""

    status: int = 0
    status_name: str = ""

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        self.message = message


class NullArgumentError(SerfError, ValueError):
    status = 1


class EncodingError(SerfError, ValueError):
    status = 2


class InvalidArgumentError(SerfError, ValueError):
    status = 3


class TooLargeError(InvalidArgumentError):
    status = 4


class SerfTimeoutError(SerfError, TimeoutError):
    status = 5


class NotFoundError(SerfError, LookupError):
    status = 6


class StoppedError(SerfError):
    """The node has left or was shut down."""

    status = 7


class SerfIOError(SerfError, OSError):
    status = 8


class JoinError(SerfError, ConnectionError):
    status = 9


class InternalError(SerfError):
    status = 10


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
