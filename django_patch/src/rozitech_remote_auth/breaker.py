"""Circuit breaker towards the auth server (pybreaker); rule R8 of ``docs/architecture.md``.

What counts is decided by :meth:`.client.AuthClient.fetch_me`: transport failures (refused/reset
connections, timeouts), 5xx and 429 count; answers about one identity (401, 403, a malformed 200
identity) never do, so one user's bad record cannot open the circuit for everyone.
After ``AUTH_SERVICE_BREAKER_FAIL_MAX`` consecutive failures the circuit opens and calls fail
at once (:class:`pybreaker.CircuitBreakerError`) for ``AUTH_SERVICE_BREAKER_RESET_TIMEOUT``
seconds; then one trial call is let through (half-open) and closes or re-opens it.

State: per process by default (pybreaker's memory storage: with 3 gunicorn sync workers, each
worker needs its own ``fail_max`` failures, each costing up to the read timeout, before it fails
fast).  With ``AUTH_SERVICE_CACHE_URL`` set, :class:`SharedCircuitStorage` keeps the state, the
failure count and the opening time in that Redis, so every worker on every app host sharing it
opens the circuit after ``fail_max`` failures in total.  A Redis error never blocks a request:
the storage falls back to the process's own memory state for ``SHARED_STATE_RETRY_SECONDS``.

:func:`guarded` wraps pybreaker's ``calling()`` context manager: unlike
``CircuitBreaker.call``, it does not hold the breaker's lock while the guarded block runs, so
verifications of different tokens proceed in parallel within one process.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import pybreaker

from . import metrics

__all__ = [
    "SHARED_STATE_RETRY_SECONDS",
    "STATE_REFRESH_SECONDS",
    "CircuitOpen",
    "SharedCircuitStorage",
    "adopt_state",
    "build_breaker",
    "guarded",
    "redis_client",
    "seconds_until_trial",
    "shared_storage",
    "trial_due",
]

logger = logging.getLogger("rozitech_remote_auth")

CircuitOpen = pybreaker.CircuitBreakerError


class _MetricsListener(pybreaker.CircuitBreakerListener):
    """Publishes state changes to ``rozitech_remote_auth_circuit_state``."""

    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        metrics.set_circuit_state(new_state.name)
        old_name = old_state.name if old_state is not None else "none"
        log = logger.warning if new_state.name == "open" else logger.info
        log("auth server circuit breaker: %s -> %s", old_name, new_state.name)


#: After a Redis error the shared state is not asked again for this many seconds.
SHARED_STATE_RETRY_SECONDS = 5.0
#: Redis keys of the shared state expire after a day without writes.
_KEY_TTL_SECONDS = 86400

_T = TypeVar("_T")
_UNREACHABLE: Any = object()


class SharedCircuitStorage(pybreaker.CircuitBreakerStorage):
    """pybreaker storage in Redis: keys ``<namespace>:`` + ``state``, ``fail_counter``,
    ``success_counter``, ``opened_at`` (epoch seconds); they expire after a day without writes.

    ``client`` is a ``redis.Redis`` (short socket timeouts).  Every write also goes to a
    process-local :class:`pybreaker.CircuitMemoryStorage`; while Redis fails (any
    ``redis.RedisError``) reads and writes use that local state, Redis is retried after
    :data:`SHARED_STATE_RETRY_SECONDS`, and one warning per outage is logged (the error's
    type only: the Redis URL may hold a password).
    """

    def __init__(self, client: Any, namespace: str, state: str = pybreaker.STATE_CLOSED) -> None:
        super().__init__("rozitech-redis")
        import redis  # the extra rozitech-remote-auth[redis]

        self._redis = client
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._namespace = namespace
        self._local = pybreaker.CircuitMemoryStorage(state)
        self._lock = threading.Lock()
        self._skip_until = 0.0
        self._degraded = False
        self._shared(
            lambda: self._redis.set(self._key("state"), state, nx=True, ex=_KEY_TTL_SECONDS), None
        )

    def _key(self, name: str) -> str:
        return f"{self._namespace}:{name}"

    def _shared(self, operation: Callable[[], _T], fallback: _T) -> _T:
        """``operation()`` against Redis, or ``fallback`` while Redis is failing."""
        if time.monotonic() < self._skip_until:
            return fallback
        try:
            result = operation()
        except self._errors as exc:
            with self._lock:
                self._skip_until = time.monotonic() + SHARED_STATE_RETRY_SECONDS
                if not self._degraded:
                    self._degraded = True
                    logger.warning(
                        "circuit breaker: shared state unreachable (%s), using the process's own",
                        type(exc).__name__,
                    )
            return fallback
        if self._degraded:
            with self._lock:
                self._degraded = False
            logger.info("circuit breaker: shared state reachable again")
        return result

    def _get(self, name: str) -> Any:
        """The key's text, ``None`` when Redis has no such key, :data:`_UNREACHABLE` on error."""
        raw = self._shared(lambda: self._redis.get(self._key(name)), _UNREACHABLE)
        if raw is None or raw is _UNREACHABLE:
            return raw
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    def _set(self, name: str, value: Any) -> None:
        self._shared(lambda: self._redis.set(self._key(name), value, ex=_KEY_TTL_SECONDS), None)

    def _incr(self, name: str) -> None:
        def incr() -> None:
            pipe = self._redis.pipeline()
            pipe.incr(self._key(name))
            pipe.expire(self._key(name), _KEY_TTL_SECONDS)
            pipe.execute()

        self._shared(incr, None)

    @property
    def state(self) -> str:
        value = self._get("state")
        if value is _UNREACHABLE:
            return self._local.state
        if value is None:  # lost (Redis restarted, evicted, expired): closed, like pybreaker's own
            self._shared(
                lambda: self._redis.set(
                    self._key("state"), pybreaker.STATE_CLOSED, nx=True, ex=_KEY_TTL_SECONDS
                ),
                None,
            )
            value = pybreaker.STATE_CLOSED
        self._local.state = value  # what Redis said is what a later outage falls back to
        return str(value)

    @state.setter
    def state(self, state: str) -> None:
        self._local.state = state
        self._set("state", state)

    def increment_counter(self) -> None:
        self._local.increment_counter()
        self._incr("fail_counter")

    def reset_counter(self) -> None:
        self._local.reset_counter()
        self._set("fail_counter", 0)

    def increment_success_counter(self) -> None:
        self._local.increment_success_counter()
        self._incr("success_counter")

    def reset_success_counter(self) -> None:
        self._local.reset_success_counter()
        self._set("success_counter", 0)

    def _count(self, name: str, local: int) -> int:
        """The shared count ``name`` (0 when missing), or ``local`` while Redis is unreachable."""
        value = self._get(name)
        if value is _UNREACHABLE:
            return local
        return int(value) if value is not None else 0

    @property
    def counter(self) -> int:
        return self._count("fail_counter", self._local.counter)

    @property
    def success_counter(self) -> int:
        return self._count("success_counter", self._local.success_counter)

    @property
    def opened_at(self) -> datetime | None:
        value = self._get("opened_at")
        if value is _UNREACHABLE:
            return self._local.opened_at
        return datetime.fromtimestamp(float(value), tz=timezone.utc) if value is not None else None

    @opened_at.setter
    def opened_at(self, now: datetime) -> None:
        self._local.opened_at = now
        self._set("opened_at", f"{now.timestamp():.3f}")

    def acquire_trial(self, seconds: float) -> bool:
        """Take the one trial-call slot of a half-open circuit for ``seconds`` (``SET NX PX``).

        True when this process may make the trial call; also True while Redis is unreachable
        (the process's own state decides then).
        """
        token = f"{os.getpid()}:{threading.get_ident()}"
        taken = self._shared(
            lambda: self._redis.set(
                self._key("trial"), token, nx=True, px=max(1, int(seconds * 1000))
            ),
            True,
        )
        return bool(taken)

    def release_trial(self) -> None:
        """Free the trial slot (after the trial call ended, either way)."""
        self._shared(lambda: self._redis.delete(self._key("trial")), None)


def redis_client(url: str, socket_timeout: float) -> Any:
    """A ``redis.Redis`` for ``url`` (``AUTH_SERVICE_CACHE_URL``): short socket timeouts, and an
    outage remembered for every user of that Redis in this process (:mod:`.sharedredis`)."""
    import redis

    from .sharedredis import connection_options

    return redis.Redis.from_url(url, **connection_options(url, socket_timeout))


def shared_storage(client: Any, scope: str) -> SharedCircuitStorage:
    """A :class:`SharedCircuitStorage` on the Redis ``client`` (see :func:`redis_client`).

    ``scope`` (the auth server's URL) is hashed into the key namespace: apps that share a Redis
    but talk to different auth servers keep separate circuits.
    """
    digest = hashlib.sha256(scope.encode("utf-8")).hexdigest()[:16]
    return SharedCircuitStorage(client, namespace=f"rozitech_remote_auth:circuit:{digest}")


def build_breaker(
    fail_max: int, reset_timeout: float, storage: pybreaker.CircuitBreakerStorage | None = None
) -> pybreaker.CircuitBreaker:
    """A breaker (fresh and closed unless ``storage`` is shared and open elsewhere).

    A tripping failure re-raises the original exception.
    """
    breaker = pybreaker.CircuitBreaker(
        fail_max=fail_max,
        reset_timeout=reset_timeout,
        listeners=[_MetricsListener()],
        name="rozitech-auth-server",
        throw_new_error_on_trip=False,
        state_storage=storage,
    )
    metrics.set_circuit_state(breaker.current_state)
    return breaker


#: How often (at most) a process re-reads the breaker state for its circuit gauge, seconds.
STATE_REFRESH_SECONDS = 5.0
_refreshed_at = 0.0


def refresh_state(breaker: pybreaker.CircuitBreaker, *, force: bool = False) -> None:
    """Publish the shared breaker's current state on this process's gauge (at most every 5 s).

    With shared state another worker or host may open or close the circuit; pybreaker notices
    only when this process makes a call.  Called on every verification, cache hits included, and
    before each metrics scrape (``force``), so an idle worker's gauge does not keep reporting an
    open circuit that has closed (the gauge is ``livemostrecent``).  The cached state object is
    replaced *without* pybreaker's transition side effects: noticing "closed" late must not reset
    the shared failure count.  Never raises.
    """
    global _refreshed_at
    if not isinstance(breaker._state_storage, SharedCircuitStorage):
        return  # per-process breakers: the gauge follows each worker's own transitions
    now = time.monotonic()
    if not force and now - _refreshed_at < STATE_REFRESH_SECONDS:
        return
    _refreshed_at = now
    try:
        adopt_state(breaker, breaker.current_state)
    except Exception as exc:  # a broken state store must never fail a request
        logger.warning("circuit breaker: state refresh failed: %s", type(exc).__name__)


def adopt_state(breaker: pybreaker.CircuitBreaker, current: str) -> None:
    """Make ``current`` (the state the storage holds) this process's view and publish it on the
    circuit gauge, *without* pybreaker's transition side effects (noticing "open" late must not
    move the shared opening time; noticing "closed" late must not reset the shared failure
    count).  Called by :func:`refresh_state` and whenever this process fails fast on a circuit
    another process opened, so the gauge of every worker and host that refuses calls says open.
    """
    if current != breaker._state.name:  # pybreaker's cached state object (pinned 1.4)
        with breaker._lock:
            breaker._state = breaker._create_new_state(current, notify=False)
        logger.info("auth server circuit breaker: now %s (changed by another process)", current)
    metrics.set_circuit_state(current)


def seconds_until_trial(breaker: pybreaker.CircuitBreaker) -> float | None:
    """Seconds until an open circuit lets a trial call through; ``None`` when it is not open.

    What a 503's ``Retry-After`` should say while the circuit is open (RFC 9110 §10.2.3): a client
    that comes back earlier is refused again without any call.
    """
    if breaker.current_state != pybreaker.STATE_OPEN:
        return None
    opened_at = breaker._state_storage.opened_at
    if opened_at is None:
        return 0.0
    due = opened_at + timedelta(seconds=breaker.reset_timeout)
    return max(0.0, (due - datetime.now(timezone.utc)).total_seconds())


def trial_due(breaker: pybreaker.CircuitBreaker) -> bool:
    """Whether the next call would be a trial call (half-open, or open past the reset timeout)."""
    state = breaker.current_state
    if state == pybreaker.STATE_HALF_OPEN:
        return True
    if state != pybreaker.STATE_OPEN:
        return False
    opened_at = breaker._state_storage.opened_at
    return opened_at is None or datetime.now(timezone.utc) >= opened_at + timedelta(
        seconds=breaker.reset_timeout
    )


@contextlib.contextmanager
def guarded(breaker: pybreaker.CircuitBreaker, trial_seconds: float = 10.0) -> Iterator[None]:
    """Run the block under ``breaker``; exceptions escaping the block count as failures.

    Raises :data:`CircuitOpen` on entry while the circuit is open.  With shared state, one trial
    call at a time over every worker and host (a Redis slot held at most ``trial_seconds``): the
    others fail fast instead of all waiting on a hanging auth server together.
    """
    storage = breaker._state_storage
    slot = isinstance(storage, SharedCircuitStorage) and trial_due(breaker)
    if slot and not storage.acquire_trial(trial_seconds):
        adopt_state(breaker, breaker.current_state)  # open (or half-open) elsewhere: say so here
        raise CircuitOpen("a trial call towards the auth server is in progress elsewhere")
    try:
        ctx: Any = breaker.calling()
        with ctx:
            yield
    finally:
        if slot:
            storage.release_trial()
