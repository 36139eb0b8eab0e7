"""Single-flight per process (R11 in docs/architecture.md): one call per key at a time,
shared by its waiters.

The first thread to ask for a key (the *leader*) runs the function; threads asking for the same
key meanwhile wait and receive the leader's result, or its exception re-raised.  Keys are the
cache keys (sha256 of the token), so no token is stored here.
"""

from __future__ import annotations

import os
import threading
from typing import Callable, Generic, TypeVar

__all__ = ["FlightTimeout", "SingleFlight"]

T = TypeVar("T")


class FlightTimeout(Exception):
    """A waiter gave up before the leader finished."""


class _Flight(Generic[T]):
    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: T | None = None
        self.error: BaseException | None = None


class SingleFlight(Generic[T]):
    """Coalesces concurrent calls with the same key within this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[str, _Flight[T]] = {}
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._flights = {}

    def do(self, key: str, fn: Callable[[], T], wait_timeout: float) -> tuple[T, bool]:
        """Run ``fn`` once for all concurrent callers with ``key``.

        Returns ``(result, leader)``; ``leader`` is True for the caller that ran ``fn``.  A waiter
        re-raises the leader's exception, or raises :class:`FlightTimeout` after
        ``wait_timeout`` seconds.
        """
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leader:
            if not flight.done.wait(wait_timeout):
                raise FlightTimeout(key)
            if flight.error is not None:
                raise flight.error
            return flight.result, False  # type: ignore[return-value]
        try:
            flight.result = fn()
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                self._flights.pop(key, None)
            flight.done.set()
        return flight.result, True

    def in_flight(self) -> int:
        """Number of keys currently being computed (for tests and diagnostics)."""
        with self._lock:
            return len(self._flights)
