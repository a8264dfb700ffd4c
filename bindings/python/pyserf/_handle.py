"""Base class for objects owning a native libserf handle."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any, Callable, Optional, Type, TypeVar

from .errors import ClosedError

T = TypeVar("T", bound="Handle")


class Handle:
    """Owns one native pointer and the function that frees it.

    ``close()`` is idempotent and thread-safe; the object is a context manager; ``__del__`` frees
    the pointer as a backstop when the object is garbage-collected without being closed.
    """

    _ptr: Optional[int] = None
    _free_fn: Optional[Callable[[Any], None]] = None

    def __init__(self, ptr: int, free_fn: Callable[[Any], None]) -> None:
        self._ptr = ptr
        self._free_fn = free_fn
        self._close_lock = threading.Lock()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran; every other call then raises ClosedError."""
        return self._ptr is None

    def _require(self) -> int:
        ptr = self._ptr
        if ptr is None:
            raise ClosedError(f"{type(self).__name__} is closed")
        return ptr

    def _before_free(self, ptr: int) -> None:
        """Hook for subclasses (runs once, just before the native free)."""

    def close(self) -> None:
        """Free the native object. Idempotent and thread-safe."""
        lock = getattr(self, "_close_lock", None)
        if lock is None:  # __init__ never finished
            return
        with lock:
            ptr, self._ptr = self._ptr, None
            if ptr is None:
                return
            self._before_free(ptr)
            if self._free_fn is not None:
                self._free_fn(ptr)

    def __enter__(self: T) -> T:
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
