"""Connections to the shared Redis (``AUTH_SERVICE_CACHE_URL``): an outage costs no request time.

Every user of the shared Redis goes through :func:`connection_options`: Django's ``RedisCache``
(the identity cache and the rate-limit budget, through ``CACHES[...]["OPTIONS"]``, see
:func:`.conf.shared_cache_config`), the breaker's shared state and the shared single-flight
(:func:`.breaker.redis_client`).

redis-py's own options bound each attempt (R13):

* ``socket_connect_timeout`` and ``socket_timeout``: ``AUTH_SERVICE_CACHE_SOCKET_TIMEOUT``
  (0.5 s) for a blackholed host or a hung server;
* ``retry``: one immediate retry on a connection error only (a pooled connection that Redis
  closed when it restarted is replaced transparently), never on a timeout (a blackholed host
  costs one timeout, not two).

What redis-py has no option for is remembering an outage: without it every cache read, breaker
read, single-flight lock and rate-limit write of every request would pay its own failed
connection or timeout.  The connection classes here (redis-py's ``connection_class``) add that:
a failed connect (refused, name not found, connect timeout) or a command that timed out marks
that server down in this process for :data:`DOWN_SECONDS`; until then every connect and command
towards it raises :class:`redis.ConnectionError` at once, without touching the network, and the
callers' fallbacks (cache miss, the process's own breaker state, per-process single-flight) take
over.  After the window the next operation tries again: one attempt per process and window,
bounded by the socket timeout.  One warning per outage is logged, with the error's type only
(the URL may hold a password); recovery is logged once too.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.retry import Retry

__all__ = [
    "DOWN_SECONDS",
    "GatedConnection",
    "GatedSSLConnection",
    "GatedUnixDomainSocketConnection",
    "connection_options",
    "is_down",
    "reset",
]

logger = logging.getLogger("rozitech_remote_auth")

#: After a failed connect or a timed-out command, a Redis server is not asked again for this
#: many seconds (per process); requests use the per-process fallbacks meanwhile.
DOWN_SECONDS = 5.0

_lock = threading.Lock()
_down_until: dict[str, float] = {}  # server -> time.monotonic() until which it counts as down
_degraded: set[str] = set()  # servers whose outage has been logged and not yet its recovery


def is_down(server: str) -> bool:
    """Whether ``server`` (``host:port`` or a socket path) is marked down in this process."""
    return time.monotonic() < _down_until.get(server, 0.0)


def _mark_down(server: str, exc: BaseException) -> None:
    with _lock:
        _down_until[server] = time.monotonic() + DOWN_SECONDS
        first = server not in _degraded
        _degraded.add(server)
    if first:
        logger.warning(
            "shared Redis unreachable (%s): each worker uses its own state; retried every %.0f s",
            type(exc).__name__,
            DOWN_SECONDS,
        )


def _mark_up(server: str) -> None:
    if server not in _degraded:
        return
    with _lock:
        _degraded.discard(server)
        _down_until.pop(server, None)
    logger.info("shared Redis reachable again: shared state in use")


def reset() -> None:
    """Forget every remembered outage (tests; a fresh process starts without any)."""
    with _lock:
        _down_until.clear()
        _degraded.clear()


class _Gate:
    """Mixin for redis-py connection classes: fail at once while the server is marked down."""

    def _gate_server(self) -> str:
        path = getattr(self, "path", None)
        return str(path) if path else f"{getattr(self, 'host', '')}:{getattr(self, 'port', '')}"

    def _refuse_if_down(self) -> None:
        if is_down(self._gate_server()):
            raise redis.ConnectionError("shared Redis marked down; not retried yet")

    def connect(self) -> None:
        self._refuse_if_down()
        try:
            super().connect()  # type: ignore[misc]
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            _mark_down(self._gate_server(), exc)
            raise
        _mark_up(self._gate_server())

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        if is_down(self._gate_server()):
            self.disconnect()  # type: ignore[attr-defined]
            self._refuse_if_down()
        try:
            super().send_packed_command(command, check_health)  # type: ignore[misc]
        except redis.TimeoutError as exc:
            _mark_down(self._gate_server(), exc)
            raise

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().read_response(*args, **kwargs)  # type: ignore[misc]
        except redis.TimeoutError as exc:
            _mark_down(self._gate_server(), exc)
            raise


class GatedConnection(_Gate, Connection):
    """:class:`redis.connection.Connection` (``redis://``) that remembers an outage."""


class GatedSSLConnection(_Gate, SSLConnection):
    """:class:`redis.connection.SSLConnection` (``rediss://``) that remembers an outage."""


class GatedUnixDomainSocketConnection(_Gate, UnixDomainSocketConnection):
    """:class:`redis.connection.UnixDomainSocketConnection` (``unix://``), remembering an outage."""


_CLASSES = {
    "redis": GatedConnection,
    "rediss": GatedSSLConnection,
    "unix": GatedUnixDomainSocketConnection,
}


def connection_options(url: str, socket_timeout: float) -> dict[str, Any]:
    """redis-py connection options for ``url`` (``ConnectionPool.from_url`` keyword arguments,
    also Django's ``RedisCache`` ``OPTIONS``): short timeouts, one retry on a connection error,
    and the connection class of the URL's scheme that remembers an outage."""
    return {
        "socket_connect_timeout": socket_timeout,
        "socket_timeout": socket_timeout,
        "retry": Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
        "connection_class": _CLASSES.get(urlsplit(url).scheme, GatedConnection),
    }
