"""Single-flight across processes and hosts through the shared Redis (rules R11, R13).

The per-process :class:`~.singleflight.SingleFlight` coalesces the threads of one process; with
sync gunicorn workers each process serves one request at a time, so 50 concurrent requests with
one new token still cost one upstream call per worker and host.  :class:`SharedFlight` makes the
per-process leaders of every worker and host agree on one caller:

* the first takes a redis-py :class:`redis.lock.Lock` named ``<namespace>:<cache key>`` (``SET NX
  PX``: it expires by itself after ``hold`` seconds if its holder dies) and calls the auth server;
* the others block on that lock (redis-py polls every 10 ms) for at most ``wait`` seconds; once
  they hold it they look in the identity cache first, where the leader left a verified identity
  or a 401, and find a refusal the leader published (503 reasons, kept :data:`RESULT_SECONDS`)
  under ``<namespace>:<cache key>:refused``; only if neither is there do they call themselves;
* past ``wait``: :class:`~.singleflight.FlightTimeout` (the caller answers 503).

Keys are sha256 cache keys (no token); the refusal record is ``<reason> <retry_after>``.  Redis
errors never fail a request: :meth:`SharedFlight.lead` yields without coordination (each process
calls for itself, the behaviour without Redis) and Redis is not asked again for
:data:`RETRY_SECONDS`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

from .singleflight import FlightTimeout

__all__ = ["RESULT_SECONDS", "RETRY_SECONDS", "SharedFlight"]

logger = logging.getLogger("rozitech_remote_auth")

#: How long a leader's refusal (503 reasons) is handed to the callers that waited on it, seconds.
RESULT_SECONDS = 2.0
#: After a Redis error the shared flight is skipped for this many seconds.
RETRY_SECONDS = 5.0


class SharedFlight:
    """Cross-process single-flight on the Redis ``client`` (a ``redis.Redis``)."""

    def __init__(self, client: Any, namespace: str = "rozitech_remote_auth:flight") -> None:
        import redis

        self._redis = client
        self._namespace = namespace
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._skip_until = 0.0

    def _failed(self, exc: BaseException) -> None:
        if time.monotonic() >= self._skip_until:
            logger.warning(
                "shared single-flight unreachable (%s): each process calls for itself for %.0f s",
                type(exc).__name__,
                RETRY_SECONDS,
            )
        self._skip_until = time.monotonic() + RETRY_SECONDS

    @contextlib.contextmanager
    def lead(self, key: str, hold: float, wait: float) -> Iterator[bool]:
        """Be the one caller for ``key``; yields True when another caller went first (look in the
        cache and :meth:`refusal` before calling), False when this one is first (or Redis is
        unreachable).  Raises :class:`FlightTimeout` after ``wait`` seconds."""
        if time.monotonic() < self._skip_until:
            yield False
            return
        lock = self._redis.lock(
            f"{self._namespace}:{key}", timeout=hold, sleep=0.01, thread_local=False
        )
        try:
            waited = not lock.acquire(blocking=False)
            if waited and not lock.acquire(blocking=True, blocking_timeout=wait):
                raise FlightTimeout(key)
        except self._errors as exc:
            self._failed(exc)
            yield False
            return
        try:
            yield waited
        finally:
            with contextlib.suppress(*self._errors):  # expired meanwhile: nothing to release
                lock.release()

    def publish_refusal(self, key: str, reason: str, retry_after: int) -> None:
        """Hand a 503 outcome to the callers waiting on ``key`` (kept :data:`RESULT_SECONDS`)."""
        with contextlib.suppress(*self._errors):
            self._redis.set(
                f"{self._namespace}:{key}:refused",
                f"{reason} {retry_after}",
                px=int(RESULT_SECONDS * 1000),
            )

    def refusal(self, key: str) -> tuple[str, int] | None:
        """``(reason, retry_after)`` a leader published for ``key`` moments ago, or ``None``."""
        try:
            raw = self._redis.get(f"{self._namespace}:{key}:refused")
        except self._errors as exc:
            self._failed(exc)
            return None
        if raw is None:
            return None
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        reason, _, seconds = text.partition(" ")
        return (reason, int(seconds)) if seconds.isdigit() else None
