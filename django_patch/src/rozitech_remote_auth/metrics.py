"""Prometheus metrics of the remote-auth patch; rule R14 of ``docs/architecture.md``.

Multiprocess-safe: when ``PROMETHEUS_MULTIPROC_DIR`` is set before ``prometheus_client`` is
imported (gunicorn with several workers), values live in per-process files in that directory and
:func:`rozitech_remote_auth.views.metrics_view` aggregates them.  Labels never hold a token, an
e-mail address or a user id.

* ``rozitech_remote_auth_verify_duration_seconds`` (histogram): wall time of one verification
  (a cache miss: upstream call incl. retry, or a fail-fast on an open circuit), seconds;
* ``rozitech_remote_auth_verify_requests_total{result}`` (counter): verifications,
  ``result`` = ``success`` | ``failure``;
* ``rozitech_remote_auth_verify_failures_total{reason}`` (counter): failed verifications;
* ``rozitech_remote_auth_cache_requests_total`` (counter): identity-cache lookups;
* ``rozitech_remote_auth_cache_hits_total`` (counter): lookups answered from the cache
  (verified identities and remembered upstream 401s);
* ``rozitech_remote_auth_link_refusals_total{reason}`` (counter): remote identities refused a
  local user (:data:`LINK_REFUSAL_REASONS`: ``email_unverified``, ``privileged_account``,
  ``linked_to_other``, ``ambiguous_email``, ``linking_disabled``, ``unrepresentable``); each is
  also a verification failure with reason ``refused``;
* ``rozitech_remote_auth_circuit_state`` (gauge): 0 closed, 1 open, 2 half-open; in
  multiprocess mode the maximum over live workers (``livemax``);
* ``rozitech_remote_auth_upstream_ratelimit_remaining`` / ``..._limit`` / ``..._reset_seconds``
  (gauges): the auth server's rate-limit budget for this app's address as its last answer
  announced (:mod:`.ratelimit`; the most recent over live workers);
* ``rozitech_remote_auth_stale_hits_total`` (counter): cached identities served past
  ``AUTH_SERVICE_CACHE_TTL`` (at most ``AUTH_SERVICE_MAX_STALENESS``) because the budget is low.

``reason`` values: ``invalid`` (upstream 401), ``forbidden`` (upstream 403), ``rate_limited``
(upstream 429), ``unavailable`` (refused/reset connection, 5xx, unexpected answer),
``timeout`` (connect/read timeout or total deadline), ``circuit_open`` (failed fast),
``malformed`` (Bearer credentials break RFC 6750 §2.1; no upstream call), ``refused`` (the
auth server vouched for the token but no local user may be given to it: 403), ``bulkhead_full``
(every auth-server call slot of the host busy past its wait budget: failed fast, no call).
A *verification* is one attempt to establish an identity that the cache could not answer
(requests coalesced by single-flight count once), plus each malformed Bearer header.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "CACHE_HITS",
    "CACHE_REQUESTS",
    "CIRCUIT_STATE",
    "CIRCUIT_STATE_VALUES",
    "FAILURE_REASONS",
    "LINK_REFUSALS",
    "LINK_REFUSAL_REASONS",
    "RATELIMIT_LIMIT",
    "RATELIMIT_REMAINING",
    "RATELIMIT_RESET",
    "STALE_HITS",
    "VERIFY_DURATION",
    "VERIFY_FAILURES",
    "VERIFY_REQUESTS",
    "record_failure",
    "record_link_refusal",
    "record_success",
    "set_circuit_state",
    "set_ratelimit",
]

INVALID: Final = "invalid"
FORBIDDEN: Final = "forbidden"
RATE_LIMITED: Final = "rate_limited"
UNAVAILABLE: Final = "unavailable"
TIMEOUT: Final = "timeout"
CIRCUIT_OPEN: Final = "circuit_open"
MALFORMED: Final = "malformed"
REFUSED: Final = "refused"
BULKHEAD_FULL: Final = "bulkhead_full"

FAILURE_REASONS: Final = (
    INVALID,
    FORBIDDEN,
    RATE_LIMITED,
    UNAVAILABLE,
    TIMEOUT,
    CIRCUIT_OPEN,
    MALFORMED,
    REFUSED,
    BULKHEAD_FULL,
)

#: Why a remote identity was refused a local user (``rozitech_remote_auth_link_refusals_total``).
LINK_REFUSAL_REASONS: Final = (
    "email_unverified",  # first linking of an existing local user needs emailVerified: true
    "privileged_account",  # the local user is staff/superuser (AUTH_SERVICE_LINK_PRIVILEGED off)
    "linked_to_other",  # the e-mail's local user is linked to another remote id
    "ambiguous_email",  # several local users have the e-mail (case-insensitively)
    "linking_disabled",  # a local user has the e-mail and AUTH_SERVICE_LINK_BY_EMAIL is off
    "unrepresentable",  # the user model cannot hold the identity (e.g. e-mail too long for it)
)

#: pybreaker state name -> gauge value.
CIRCUIT_STATE_VALUES: Final = {"closed": 0, "open": 1, "half-open": 2}

VERIFY_DURATION = Histogram(
    "rozitech_remote_auth_verify_duration_seconds",
    "Wall time of one token verification against the auth server (cache misses), seconds.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
VERIFY_REQUESTS = Counter(
    "rozitech_remote_auth_verify_requests",
    "Token verifications by result (success, failure).",
    ["result"],
)
VERIFY_FAILURES = Counter(
    "rozitech_remote_auth_verify_failures",
    "Failed token verifications by reason.",
    ["reason"],
)
CACHE_REQUESTS = Counter(
    "rozitech_remote_auth_cache_requests",
    "Identity cache lookups.",
)
CACHE_HITS = Counter(
    "rozitech_remote_auth_cache_hits",
    "Identity cache lookups answered from the cache (verified identities and remembered 401s).",
)
LINK_REFUSALS = Counter(
    "rozitech_remote_auth_link_refusals",
    "Remote identities refused a local user, by reason (see the linking policy).",
    ["reason"],
)
CIRCUIT_STATE = Gauge(
    "rozitech_remote_auth_circuit_state",
    "Circuit breaker state towards the auth server: 0 closed, 1 open, 2 half-open.",
    # The most recent value over live workers: each worker publishes the (shared) state on every
    # verification and before a scrape (breaker.refresh_state), so the newest write is current.
    multiprocess_mode="livemostrecent",
)

RATELIMIT_REMAINING = Gauge(
    "rozitech_remote_auth_upstream_ratelimit_remaining",
    "Requests left in the auth server's rate-limit window, as its last /api/auth/me answer said.",
    multiprocess_mode="livemostrecent",
)
RATELIMIT_LIMIT = Gauge(
    "rozitech_remote_auth_upstream_ratelimit_limit",
    "Requests allowed per rate-limit window, as the auth server's last /api/auth/me answer said.",
    multiprocess_mode="livemostrecent",
)
RATELIMIT_RESET = Gauge(
    "rozitech_remote_auth_upstream_ratelimit_reset_seconds",
    "Seconds until the auth server's rate-limit window resets, as of its last answer.",
    multiprocess_mode="livemostrecent",
)
STALE_HITS = Counter(
    "rozitech_remote_auth_stale_hits",
    "Cached identities served past AUTH_SERVICE_CACHE_TTL because the rate-limit budget is low.",
)

for _result in ("success", "failure"):
    VERIFY_REQUESTS.labels(result=_result)
for _reason in FAILURE_REASONS:
    VERIFY_FAILURES.labels(reason=_reason)
for _reason in LINK_REFUSAL_REASONS:
    LINK_REFUSALS.labels(reason=_reason)


def record_link_refusal(reason: str) -> None:
    """Count one refused link; ``reason`` must be one of :data:`LINK_REFUSAL_REASONS`."""
    if reason not in LINK_REFUSAL_REASONS:
        raise ValueError(f"unknown link refusal reason {reason!r}")
    LINK_REFUSALS.labels(reason=reason).inc()


def record_success(duration: float) -> None:
    """Count one successful verification that took ``duration`` seconds."""
    VERIFY_DURATION.observe(duration)
    VERIFY_REQUESTS.labels(result="success").inc()


def record_failure(reason: str, duration: float | None = None) -> None:
    """Count one failed verification; ``reason`` must be one of :data:`FAILURE_REASONS`."""
    if reason not in FAILURE_REASONS:
        raise ValueError(f"unknown failure reason {reason!r}")
    if duration is not None:
        VERIFY_DURATION.observe(duration)
    VERIFY_REQUESTS.labels(result="failure").inc()
    VERIFY_FAILURES.labels(reason=reason).inc()


def set_ratelimit(limit: int, remaining: int, reset_seconds: int) -> None:
    """Publish the auth server's announced rate-limit budget."""
    RATELIMIT_LIMIT.set(limit)
    RATELIMIT_REMAINING.set(remaining)
    RATELIMIT_RESET.set(reset_seconds)


def set_circuit_state(state_name: str) -> None:
    """Publish a pybreaker state name (``closed``/``open``/``half-open``) as the gauge value."""
    CIRCUIT_STATE.set(CIRCUIT_STATE_VALUES.get(state_name, 0))
