"""HTTP transport with a hard total deadline per request.

``requests``' read timeout applies per socket read, so a server that sends one byte every
4 s never trips a 5 s read timeout.  This module enforces a wall-clock deadline: every request
made inside :func:`deadline` is watched by a timer that, when the deadline passes, shuts the
request's socket down (``socket.shutdown(SHUT_RDWR)``).  The blocked read then fails at once and
the caller sees :attr:`Deadline.expired` set.

Mechanism: :class:`DeadlineAdapter` (a ``requests`` ``HTTPAdapter``) makes urllib3 build
connections of :class:`_TrackedHTTPConnection` / :class:`_TrackedHTTPSConnection`, which tell the
current thread's :class:`Deadline` which connection (and raw socket) carries the request, on
connect (``_new_conn``) and on every request over a kept-alive connection (``request``).  A
connection's ``_rozitech_owner`` attribute names the deadline that may abort it, so a timer that
fires late can never touch a connection already reused by another request.

TCP connect itself is bounded by the connect timeout (the socket does not exist before it).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

__all__ = ["Deadline", "DeadlineAdapter", "deadline"]

_current = threading.local()
_owner_lock = threading.Lock()


class Deadline:
    """A wall-clock deadline (``time.monotonic()`` seconds) for the requests of one thread."""

    def __init__(self, at: float) -> None:
        self.at = at
        self.expired = False
        self._done = False
        self._conn: HTTPConnection | None = None

    def remaining(self) -> float:
        """Seconds left (may be negative)."""
        return self.at - time.monotonic()

    def attach(self, conn: HTTPConnection) -> None:
        """Record ``conn`` as the connection carrying this deadline's request.

        If the deadline already passed (the timer fired while TCP was connecting), the
        connection is shut down at once.
        """
        with _owner_lock:
            self._conn = conn
            conn._rozitech_owner = self  # type: ignore[attr-defined]
            expired = self.expired
        if expired:
            _shutdown(conn)

    def abort(self) -> None:
        """Timer callback: mark expired and shut the owned connection's socket down."""
        with _owner_lock:
            if self._done:
                return
            self.expired = True
            conn = self._conn
            if conn is None or getattr(conn, "_rozitech_owner", None) is not self:
                return
        _shutdown(conn)

    def finish(self) -> None:
        """Stop watching; a late timer becomes a no-op."""
        with _owner_lock:
            self._done = True
            conn = self._conn
            if conn is not None and getattr(conn, "_rozitech_owner", None) is self:
                conn._rozitech_owner = None  # type: ignore[attr-defined]
            self._conn = None


def _shutdown(conn: HTTPConnection) -> None:
    sock = conn.sock or getattr(conn, "_rozitech_raw_sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[Deadline]:
    """Run the block's HTTP requests (through :class:`DeadlineAdapter`) under a deadline.

    Yields the :class:`Deadline`; check ``expired`` after an exception (or even after a
    response) to tell a deadline abort from other failures.
    """
    watched = Deadline(time.monotonic() + seconds)
    timer = threading.Timer(max(0.0, seconds), watched.abort)
    timer.daemon = True
    previous = getattr(_current, "deadline", None)
    _current.deadline = watched
    timer.start()
    try:
        yield watched
    finally:
        timer.cancel()
        watched.finish()
        _current.deadline = previous


def _attach_current(conn: HTTPConnection) -> None:
    watched: Deadline | None = getattr(_current, "deadline", None)
    if watched is not None:
        watched.attach(conn)


class _TrackedMixin:
    def _new_conn(self) -> socket.socket:
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        self._rozitech_raw_sock = sock
        _attach_current(self)  # type: ignore[arg-type]
        return sock

    def request(self, *args: Any, **kwargs: Any) -> Any:
        _attach_current(self)  # type: ignore[arg-type]
        return super().request(*args, **kwargs)  # type: ignore[misc]


class _TrackedHTTPConnection(_TrackedMixin, HTTPConnection):
    pass


class _TrackedHTTPSConnection(_TrackedMixin, HTTPSConnection):
    pass


class _TrackedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _TrackedHTTPConnection


class _TrackedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _TrackedHTTPSConnection


_POOL_CLASSES = {"http": _TrackedHTTPConnectionPool, "https": _TrackedHTTPSConnectionPool}


class DeadlineAdapter(HTTPAdapter):
    """``HTTPAdapter`` whose connections report to the current :class:`Deadline`.

    No urllib3-level retries (``max_retries=0``): the client decides about its single retry.
    """

    def __init__(self, pool_maxsize: int = 20) -> None:
        super().__init__(pool_connections=4, pool_maxsize=pool_maxsize, max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_POOL_CLASSES)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        # Only plain HTTP(S) proxies: SOCKS managers bring their own connection classes.
        if getattr(manager, "pool_classes_by_scheme", {}).get("http") is HTTPConnectionPool:
            manager.pool_classes_by_scheme = dict(_POOL_CLASSES)
        return manager
