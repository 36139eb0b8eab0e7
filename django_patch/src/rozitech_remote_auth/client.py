"""Client for the auth server's identity endpoint; rules R1, R7-R10 of ``docs/architecture.md``.

``GET {AUTH_SERVICE_URL}/api/auth/me`` with ``Authorization: Bearer <token>`` (RFC 6750 §2.1).

* one ``requests.Session`` per process (connection reuse), rebuilt after ``fork()`` and when the
  settings change;
* connect timeout ``AUTH_SERVICE_CONNECT_TIMEOUT``, read timeout ``AUTH_SERVICE_TIMEOUT`` and a hard
  total deadline ``AUTH_SERVICE_TOTAL_TIMEOUT`` covering the retry (:mod:`.transport`);
* at most one retry, and only when the TCP connection could not be established;
* a circuit breaker (:mod:`.breaker`) counting what says the auth server is in trouble: transport
  failures, timeouts, 5xx and 429 (:data:`BREAKER_COUNTED_STATUSES`); never answers about one
  identity (401, 403, a 200 whose identity is malformed: :class:`IdentityAnswerInvalid`);
* a bulkhead (:mod:`.bulkhead`): at most ``AUTH_SERVICE_BULKHEAD_SLOTS`` calls per host wait on
  the auth server at once; the others fail fast (:class:`~.bulkhead.BulkheadFull`);
* a read timeout that follows the observed latency (:mod:`.latency`), between
  ``AUTH_SERVICE_ADAPTIVE_TIMEOUT_MIN`` and ``AUTH_SERVICE_TIMEOUT``; a half-open circuit's trial
  call always gets the full ``AUTH_SERVICE_TIMEOUT``;
* every answer's rate-limit headers are read (:mod:`.ratelimit`);
* redirects are not followed (a redirect is a misconfiguration, reported as unavailable);
* bodies larger than :data:`MAX_BODY_BYTES` are refused.

:meth:`AuthClient.fetch_me` returns an :class:`UpstreamAnswer` for every HTTP answer the contract
knows (200 with an identity, 401, 403, 429, other 4xx) and raises :class:`UpstreamFailure`
(``reason`` ``unavailable`` or ``timeout``), :data:`~.breaker.CircuitOpen` or
:class:`~.bulkhead.BulkheadFull` otherwise.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pybreaker
import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ReadTimeoutError

from . import __version__, metrics, ratelimit
from .breaker import (
    CircuitOpen,
    adopt_state,
    build_breaker,
    guarded,
    redis_client,
    shared_storage,
    trial_due,
)
from .bulkhead import Bulkhead, BulkheadFull, default_directory
from .conf import RemoteAuthSettings, add_reset_hook, get_settings
from .identity import MalformedIdentity, RemoteIdentity, parse_me_response
from .latency import LatencyEstimate
from .retry_after import parse_retry_after
from .sharedflight import SharedFlight
from .transport import DeadlineAdapter, deadline

__all__ = [
    "BREAKER_COUNTED_STATUSES",
    "MAX_BODY_BYTES",
    "AuthClient",
    "BulkheadFull",
    "IdentityAnswerInvalid",
    "UpstreamAnswer",
    "UpstreamFailure",
    "current_client",
    "get_client",
    "reset_client",
]

logger = logging.getLogger("rozitech_remote_auth")

#: A call queues behind a bulkhead slot's holder at least this long (seconds), whatever the
#: observed latency, while the holder is younger and the budget allows.
MIN_PATIENCE_SECONDS = 0.1

#: Largest accepted ``/api/auth/me`` body (decoded), bytes.
MAX_BODY_BYTES = 256 * 1024


@dataclass(frozen=True)
class UpstreamAnswer:
    """An HTTP answer of the auth server that the contract defines.

    ``status`` 200 carries ``identity``; 429 carries ``retry_after`` (seconds, from the
    upstream headers or ``AUTH_SERVICE_RETRY_AFTER``).
    """

    status: int
    identity: RemoteIdentity | None = None
    retry_after: int | None = None


class UpstreamFailure(Exception):
    """The auth server could not give a usable answer.

    ``reason`` is :data:`~.metrics.UNAVAILABLE` or :data:`~.metrics.TIMEOUT`; ``retry_after`` is
    the upstream's ``Retry-After`` on a 503, else ``None``.  ``str()`` never contains the token.
    """

    def __init__(self, reason: str, detail: str, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.retry_after = retry_after


class IdentityAnswerInvalid(UpstreamFailure):
    """A 200 whose body is not a usable identity: about one identity, so never a breaker
    failure (one user's bad record must not open the circuit for everyone).  Still a 503
    (``unavailable``)."""


#: Answers that count as breaker failures although they are HTTP answers (the server is in trouble).
BREAKER_COUNTED_STATUSES = frozenset({429})


class _CountedAnswer(Exception):
    """Carries an answer out of the breaker's block so that it counts as a failure."""

    def __init__(self, answer: UpstreamAnswer) -> None:
        super().__init__(f"HTTP {answer.status}")
        self.answer = answer


class _ConnectFailed(UpstreamFailure):
    """The TCP connection was not established: the one case that is retried."""


class _BearerAuth(requests.auth.AuthBase):
    """Sets ``Authorization: Bearer <token>``; as an explicit ``auth`` it also keeps
    ``requests`` from consulting ``~/.netrc``."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "_BearerAuth(<redacted>)"


def _is_connect_error(exc: requests.ConnectionError) -> bool:
    """True when urllib3 failed before a connection existed (refused, DNS, connect timeout)."""
    cause: Any = exc.args[0] if exc.args else None
    reason = getattr(cause, "reason", cause)
    return isinstance(reason, (NewConnectionError, ConnectTimeoutError))


def _is_read_timeout(exc: requests.ConnectionError) -> bool:
    """True for a read timeout that ``requests`` re-raised as ``ConnectionError`` (body phase)."""
    cause: Any = exc.args[0] if exc.args else None
    return isinstance(cause, ReadTimeoutError)


def _build_session(cfg: RemoteAuthSettings) -> requests.Session:
    session = requests.Session()
    adapter = DeadlineAdapter()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers.update(
        {"Accept": "application/json", "User-Agent": f"rozitech-remote-auth/{__version__}"}
    )
    if cfg.ca_bundle:
        session.verify = cfg.ca_bundle
    return session


class AuthClient:
    """Per-process client: owns the ``requests.Session`` and the circuit breaker."""

    def __init__(self, cfg: RemoteAuthSettings) -> None:
        self.cfg = cfg
        self.pid = os.getpid()
        self.session = _build_session(cfg)
        redis = redis_client(cfg.cache_url, cfg.cache_socket_timeout) if cfg.cache_url else None
        storage = shared_storage(redis, cfg.url) if redis is not None else None
        #: cross-process, cross-host single-flight (:mod:`.sharedflight`), with a shared cache only
        self.flight = SharedFlight(redis) if redis is not None else None
        self.breaker: pybreaker.CircuitBreaker = build_breaker(
            cfg.breaker_fail_max, cfg.breaker_reset_timeout, storage
        )
        # A malformed identity proves the server answers: a success for the breaker, not a failure.
        self.breaker.add_excluded_exception(IdentityAnswerInvalid)
        directory = Path(cfg.bulkhead_dir) if cfg.bulkhead_dir else default_directory(cfg.url)
        self.bulkhead = (
            Bulkhead(directory, cfg.bulkhead_slots, cfg.bulkhead_wait)
            if cfg.bulkhead_slots > 0
            else None
        )
        self.latency = LatencyEstimate(directory / "latency" if self.bulkhead else None)

    def close(self) -> None:
        """Close pooled connections."""
        self.session.close()

    def read_timeout(self, trial: bool = False) -> float:
        """The read timeout of the next call, seconds (see :mod:`.latency`)."""
        if trial or self.cfg.adaptive_timeout_min <= 0:
            return self.cfg.timeout
        return self.latency.timeout(self.cfg.adaptive_timeout_min, self.cfg.timeout)

    def _wait(self, trial: bool) -> float:
        """How long a call may queue for a bulkhead slot: never for a trial call (another
        worker's trial answers for the host), else ``AUTH_SERVICE_BULKHEAD_WAIT`` but no longer
        than an answer normally takes (``SRTT + 4 RTTVAR``, :mod:`.latency`): a holder older
        than that is waiting on a slow or hanging auth server, and queueing behind it would only
        take another worker away from the requests that need none."""
        if trial:
            return 0.0
        expected = self.latency.expected()
        if expected is None or self.cfg.adaptive_timeout_min <= 0:
            return self.cfg.bulkhead_wait
        # at least 0.1 s: scheduling jitter on a busy host is not a slow auth server
        return min(self.cfg.bulkhead_wait, max(expected, MIN_PATIENCE_SECONDS))

    def fetch_me(self, token: str) -> UpstreamAnswer:
        """``GET /api/auth/me`` for ``token``: breaker, bulkhead, retry policy and deadline.

        Raises :class:`UpstreamFailure` (transport failure, 5xx, answer outside the contract,
        deadline; :class:`IdentityAnswerInvalid` for a malformed 200),
        :data:`~.breaker.CircuitOpen` (failed fast, no request made) or
        :class:`~.bulkhead.BulkheadFull` (every call slot of the host busy: no request made, the
        breaker not touched).
        """
        trial = trial_due(self.breaker)
        state = self.breaker.current_state
        if not trial and state == pybreaker.STATE_OPEN:
            # before queueing for a slot; the circuit may have been opened by another worker or
            # host (shared state): this worker's gauge must say open too
            adopt_state(self.breaker, state)
            raise CircuitOpen("the circuit is open")
        read_timeout = self.read_timeout(trial)
        call_seconds = min(self.cfg.total_timeout, self.cfg.connect_timeout + read_timeout)
        with contextlib.ExitStack() as stack:
            if self.bulkhead is not None:
                try:
                    stack.enter_context(self.bulkhead.slot(call_seconds, wait=self._wait(trial)))
                # e.g. a read-only directory: no bound rather than no service
                except OSError as exc:
                    logger.warning("bulkhead unusable (%s): calling without it", type(exc).__name__)
            try:
                with guarded(self.breaker, trial_seconds=self.cfg.total_timeout + 1):
                    answer = self._fetch_with_retry(token, read_timeout)
                    if answer.status in BREAKER_COUNTED_STATUSES:
                        raise _CountedAnswer(answer)
                    return answer
            except _CountedAnswer as counted:
                return counted.answer

    def _fetch_with_retry(self, token: str, read_timeout: float) -> UpstreamAnswer:
        deadline_at = time.monotonic() + self.cfg.total_timeout
        last: _ConnectFailed | None = None
        for attempt in (1, 2):
            remaining = deadline_at - time.monotonic()
            if remaining <= 0:
                break
            try:
                return self._fetch_once(token, remaining, read_timeout)
            except _ConnectFailed as exc:
                last = exc
                logger.info("auth server connect failed (attempt %d): %s", attempt, exc.detail)
        if last is not None:
            raise UpstreamFailure(last.reason, last.detail)
        raise UpstreamFailure(metrics.TIMEOUT, "total deadline exhausted")

    def _fetch_once(self, token: str, remaining: float, read_timeout: float) -> UpstreamAnswer:
        timeout = (min(self.cfg.connect_timeout, remaining), min(read_timeout, remaining))
        started = time.monotonic()
        with deadline(remaining) as watch:
            try:
                response = self.session.get(
                    self.cfg.me_url,
                    auth=_BearerAuth(token),
                    timeout=timeout,
                    stream=True,
                    allow_redirects=False,
                )
                try:
                    body = self._read_body(response)
                finally:
                    response.close()
            except requests.ConnectTimeout:
                raise _ConnectFailed(metrics.TIMEOUT, "connect timeout") from None
            except requests.ConnectionError as exc:
                if watch.expired:
                    raise UpstreamFailure(metrics.TIMEOUT, "total deadline exceeded") from None
                if _is_connect_error(exc):
                    raise _ConnectFailed(metrics.UNAVAILABLE, "connection failed") from None
                if _is_read_timeout(exc):
                    raise UpstreamFailure(metrics.TIMEOUT, "read timeout") from None
                raise UpstreamFailure(metrics.UNAVAILABLE, type(exc).__name__) from None
            except requests.Timeout:
                raise UpstreamFailure(metrics.TIMEOUT, "read timeout") from None
            except (requests.RequestException, OSError) as exc:
                reason = metrics.TIMEOUT if watch.expired else metrics.UNAVAILABLE
                raise UpstreamFailure(reason, type(exc).__name__) from None
            if watch.expired:
                raise UpstreamFailure(metrics.TIMEOUT, "total deadline exceeded")
        self.latency.observe(time.monotonic() - started)
        ratelimit.observe(response.headers, response.status_code, self.cfg.cache_alias)
        return self._interpret(response.status_code, response.headers, body)

    @staticmethod
    def _read_body(response: requests.Response) -> bytes:
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(chunk_size=16384):
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise UpstreamFailure(metrics.UNAVAILABLE, "answer body too large")
            chunks.append(chunk)
        return b"".join(chunks)

    def _interpret(self, status: int, headers: Any, body: bytes) -> UpstreamAnswer:
        if status == 200:
            try:
                identity = parse_me_response(json.loads(body))
            except (ValueError, RecursionError, MalformedIdentity) as exc:
                # MalformedIdentity messages name the missing part, never a value.
                detail = str(exc) if isinstance(exc, MalformedIdentity) else "body is not JSON"
                raise IdentityAnswerInvalid(
                    metrics.UNAVAILABLE, f"200 outside the contract: {detail}"
                ) from None
            return UpstreamAnswer(200, identity=identity)
        if status == 429:
            return UpstreamAnswer(
                429, retry_after=parse_retry_after(headers) or self.cfg.retry_after
            )
        if 400 <= status < 500:
            return UpstreamAnswer(status)
        raise UpstreamFailure(
            metrics.UNAVAILABLE,
            f"HTTP {status}",
            retry_after=parse_retry_after(headers) if status == 503 else None,
        )


# -- one client per process ---------------------------------------------------------------------

_lock = threading.Lock()
_client: AuthClient | None = None


def get_client() -> AuthClient:
    """The process's :class:`AuthClient` for the current settings (created on first use)."""
    global _client
    cfg = get_settings()
    current = _client
    if current is not None and current.cfg is cfg and current.pid == os.getpid():
        return current
    with _lock:
        current = _client
        if current is None or current.cfg is not cfg or current.pid != os.getpid():
            if current is not None and current.pid == os.getpid():
                current.close()
            current = _client = AuthClient(cfg)
        return current


def current_client() -> AuthClient | None:
    """This process's client if it has one already (never builds one)."""
    current = _client
    return current if current is not None and current.pid == os.getpid() else None


def reset_client() -> None:
    """Drop the process's client (next use builds a new session and a closed breaker)."""
    global _client
    with _lock:
        if _client is not None and _client.pid == os.getpid():
            _client.close()
        _client = None


def _forget_after_fork() -> None:
    global _client, _lock
    _client = None
    _lock = threading.Lock()


add_reset_hook(reset_client)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
