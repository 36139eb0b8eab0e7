"""Token verification: cache, single-flight, auth-server call, user sync (rules R4-R13).

:func:`resolve` turns a Bearer token the remote class owns into an :data:`Outcome`:

0. a token whose unverified ``exp`` is past is refused at once (:func:`~.tokens.expired`: no
   upstream call, no metric: nothing was verified);
1. cache lookup by sha256 of the whole token: a verified identity (with the local user's pk)
   or a remembered upstream 401;
2. on a miss, one call per token per process (:class:`~.singleflight.SingleFlight`) and, with a
   shared cache, over every worker and host (:class:`~.sharedflight.SharedFlight`) to
   ``GET /api/auth/me`` (:mod:`.client`);
3. 200: sync the local user (:mod:`.users`; a refused link is a 403, not cached), cache
   ``{identity, user_pk}``: fresh for
   ``min(AUTH_SERVICE_CACHE_TTL, exp - now - AUTH_SERVICE_TOKEN_LEEWAY)`` seconds, kept (and
   served while the auth server's rate-limit budget is low, :mod:`.ratelimit`) for up to
   ``min(AUTH_SERVICE_MAX_STALENESS, exp - now - AUTH_SERVICE_TOKEN_LEEWAY)`` seconds;
   401: cache the rejection for ``min(AUTH_SERVICE_NEGATIVE_CACHE_TTL, exp - now)`` seconds;
   403, 429, 5xx, timeouts, open circuit, full bulkhead: nothing cached.  While the circuit is
   open (opened by this very failure too) a 503's ``Retry-After`` is the time left until the
   breaker's trial call, so recovery never takes longer than announced; otherwise
   ``AUTH_SERVICE_RETRY_AFTER``.

Metrics: one ``verify_requests_total``/``verify_failures_total`` count and one duration
observation per leader call (see :mod:`.metrics`).  Logs carry reasons and timings only.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

from . import metrics, ratelimit
from .breaker import CircuitOpen, refresh_state, seconds_until_trial
from .bulkhead import BulkheadFull
from .cache import cache_get, cache_set
from .client import UpstreamAnswer, UpstreamFailure, get_client
from .conf import RemoteAuthSettings, get_settings
from .identity import RemoteIdentity
from .singleflight import FlightTimeout, SingleFlight
from .tokens import cache_key, expired, negative_ttl, positive_ttl
from .users import LinkRefused, sync_user

__all__ = ["Outcome", "Refused", "Verified", "resolve"]

logger = logging.getLogger("rozitech_remote_auth")


@dataclass(frozen=True)
class Verified:
    """The token is valid. ``user`` is set for the caller that synced it (else load by pk)."""

    identity: RemoteIdentity
    user_pk: Any
    user: Any = None
    cached: bool = False


@dataclass(frozen=True)
class Refused:
    """The token was not accepted; ``reason`` is one of :data:`.metrics.FAILURE_REASONS`.

    ``retry_after`` (seconds) is set for the reasons that map to 503; ``link_refusal`` (one of
    :data:`.metrics.LINK_REFUSAL_REASONS`) for reason ``refused`` (403).
    """

    reason: str
    retry_after: int | None = None
    cached: bool = False
    link_refusal: str | None = None


Outcome = Union[Verified, Refused]

_flights: SingleFlight[Outcome] = SingleFlight()


def resolve(token: str, claims: Mapping[str, Any] | None) -> tuple[Outcome, bool]:
    """Verify ``token`` (unverified ``claims`` only size the cache lifetimes).

    Returns ``(outcome, owns_user)``: ``owns_user`` is True when ``outcome.user`` was loaded
    for this caller.  Raises only unexpected errors (e.g. database errors during user sync).
    """
    cfg = get_settings()
    refresh_state(get_client().breaker)
    if expired(claims):
        return Refused(metrics.INVALID), False
    key = cache_key(token)
    cached = cache_get(cfg.cache_alias, key)
    if cached is not None:
        hit = _from_cache(cached, cfg)
        if hit is not None:
            return hit, False
    try:
        outcome, leader = _flights.do(
            key, lambda: _lead(token, claims, key, cfg), wait_timeout=cfg.total_timeout + 1
        )
    except FlightTimeout:
        return Refused(metrics.TIMEOUT, retry_after=cfg.retry_after), False
    # a user object loaded for this very caller (a shared-flight follower got only its pk)
    return outcome, leader and isinstance(outcome, Verified) and outcome.user is not None


def _lead(
    token: str, claims: Mapping[str, Any] | None, key: str, cfg: RemoteAuthSettings
) -> Outcome:
    """This process's leader for ``key``: with a shared cache, also one caller over every worker
    and host (:mod:`.sharedflight`); a follower takes the leader's result from the cache or its
    published refusal, and calls itself only when neither is there."""
    flight = get_client().flight
    if flight is None:
        return _verify(token, claims, key, cfg)
    try:
        with flight.lead(key, hold=cfg.total_timeout + 1, wait=cfg.total_timeout + 1) as waited:
            if waited:
                cached = cache_get(cfg.cache_alias, key)
                hit = _from_cache(cached, cfg) if cached is not None else None
                if hit is not None:
                    return hit
                refusal = flight.refusal(key)
                if refusal is not None:
                    return Refused(refusal[0], retry_after=refusal[1])
            outcome = _verify(token, claims, key, cfg)
            if isinstance(outcome, Refused) and outcome.retry_after is not None:
                flight.publish_refusal(key, outcome.reason, outcome.retry_after)
            return outcome
    except FlightTimeout:
        return Refused(metrics.TIMEOUT, retry_after=cfg.retry_after)


def _from_cache(value: Mapping[str, Any], cfg: RemoteAuthSettings) -> Outcome | None:
    """A cached outcome, or ``None`` (unknown shape, or stale while the budget is not low)."""
    kind = value.get("kind")
    if kind == "rejected":
        return Refused(metrics.INVALID, cached=True)
    if kind == "ok":
        fresh_until = value.get("fresh_until")
        stale = isinstance(fresh_until, (int, float)) and time.time() >= fresh_until
        if stale and not ratelimit.budget_low(cfg.cache_alias, cfg.ratelimit_low_ratio):
            return None  # past AUTH_SERVICE_CACHE_TTL and the budget allows a call: verify again
        try:
            identity = RemoteIdentity.from_dict(value["identity"])
        except (KeyError, TypeError, ValueError):
            return None
        if stale:
            metrics.STALE_HITS.inc()
        return Verified(identity=identity, user_pk=value.get("user_pk"), cached=True)
    return None


def _verify(
    token: str, claims: Mapping[str, Any] | None, key: str, cfg: RemoteAuthSettings
) -> Outcome:
    started = time.monotonic()
    try:
        answer = get_client().fetch_me(token)
    except CircuitOpen:
        outcome: Outcome = Refused(
            metrics.CIRCUIT_OPEN, retry_after=_retry_after(cfg, upstream=None)
        )
    except BulkheadFull as full:
        # every call slot of this host is busy past its budget: no call made, breaker untouched
        outcome = Refused(metrics.BULKHEAD_FULL, retry_after=full.retry_after)
    except UpstreamFailure as failure:
        logger.warning(
            "auth server verification failed: reason=%s detail=%s", failure.reason, failure.detail
        )
        outcome = Refused(
            failure.reason, retry_after=_retry_after(cfg, upstream=failure.retry_after)
        )
    else:
        outcome = _from_answer(answer, claims, key, cfg)
    duration = time.monotonic() - started
    if isinstance(outcome, Verified):
        metrics.record_success(duration)
    elif outcome.reason in (metrics.CIRCUIT_OPEN, metrics.BULKHEAD_FULL):
        metrics.record_failure(outcome.reason)  # no call made: not a verification latency
    else:
        metrics.record_failure(outcome.reason, duration)
    return outcome


def _retry_after(cfg: RemoteAuthSettings, *, upstream: int | None) -> int:
    """The ``Retry-After`` (whole seconds) of a 503 for an upstream failure or an open circuit.

    While the circuit is open (this failure opened or re-opened it, or it was open already) it is
    the time left until the breaker lets its trial call through, so a client that comes back when
    told to is the trial call or finds the circuit closed: recovery never takes longer than
    announced.  An upstream 503's own ``Retry-After`` (``upstream``) is kept when it is later.
    With the circuit closed (or open past its reset timeout, a trial call under way): ``upstream``
    or ``AUTH_SERVICE_RETRY_AFTER``.
    """
    wait = seconds_until_trial(get_client().breaker)
    if wait is not None and wait > 0:
        return max(math.ceil(wait), upstream or 1)
    if upstream is not None:
        return upstream
    return cfg.retry_after


def _from_answer(
    answer: UpstreamAnswer, claims: Mapping[str, Any] | None, key: str, cfg: RemoteAuthSettings
) -> Outcome:
    if answer.status == 200 and answer.identity is not None:
        try:
            user = sync_user(answer.identity)
        except LinkRefused as refusal:  # counted and recorded by users.py
            return Refused(metrics.REFUSED, link_refusal=refusal.reason)
        fresh = positive_ttl(claims, cfg.cache_ttl, cfg.token_leeway)
        # kept up to AUTH_SERVICE_MAX_STALENESS, served past `fresh` only while the budget is low
        ttl = positive_ttl(claims, max(cfg.cache_ttl, cfg.max_staleness), cfg.token_leeway)
        cache_set(
            cfg.cache_alias,
            key,
            {
                "kind": "ok",
                "identity": answer.identity.to_dict(),
                "user_pk": user.pk,
                "fresh_until": time.time() + fresh,
            },
            ttl if fresh > 0 else 0,
        )
        return Verified(identity=answer.identity, user_pk=user.pk, user=user)
    if answer.status == 401:
        if cfg.negative_cache_ttl > 0:
            cache_set(
                cfg.cache_alias,
                key,
                {"kind": "rejected"},
                negative_ttl(claims, cfg.negative_cache_ttl),
            )
        return Refused(metrics.INVALID)
    if answer.status == 403:
        return Refused(metrics.FORBIDDEN)
    if answer.status == 429:
        logger.warning("auth server rate-limited verification (HTTP 429)")
        return Refused(metrics.RATE_LIMITED, retry_after=answer.retry_after or cfg.retry_after)
    logger.warning("auth server answered HTTP %d, outside the contract", answer.status)
    return Refused(metrics.UNAVAILABLE, retry_after=cfg.retry_after)
