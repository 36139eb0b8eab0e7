"""Token verification: cache, single-flight, auth-server call, user sync (DESIGN §4.1-4.6).

:func:`resolve` turns a Bearer token the remote class owns into an :data:`Outcome`:

0. a token whose unverified ``exp`` is past is refused at once (:func:`~.tokens.expired`: no
   upstream call, no metric: nothing was verified);
1. cache lookup by sha256 of the whole token: a verified identity (with the local user's pk)
   or a remembered upstream 401;
2. on a miss, one call per token per process (:class:`~.singleflight.SingleFlight`) to
   ``GET /api/auth/me`` (:mod:`.client`);
3. 200: sync the local user (:mod:`.users`; a refused link is a 403, not cached), cache
   ``{identity, user_pk}`` for
   ``min(AUTH_SERVICE_CACHE_TTL, exp - now - AUTH_SERVICE_TOKEN_LEEWAY)`` seconds;
   401: cache the rejection for ``min(AUTH_SERVICE_NEGATIVE_CACHE_TTL, exp - now)`` seconds;
   403, 429, 5xx, timeouts, open circuit: nothing cached; an open circuit's ``Retry-After`` is the
   time left until its trial call (at least ``AUTH_SERVICE_RETRY_AFTER`` when unknown).

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

from . import metrics
from .breaker import CircuitOpen, refresh_state, seconds_until_trial
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
        hit = _from_cache(cached)
        if hit is not None:
            return hit, False
    try:
        outcome, leader = _flights.do(
            key, lambda: _verify(token, claims, key, cfg), wait_timeout=cfg.total_timeout + 1
        )
    except FlightTimeout:
        return Refused(metrics.TIMEOUT, retry_after=cfg.retry_after), False
    return outcome, leader


def _from_cache(value: Mapping[str, Any]) -> Outcome | None:
    kind = value.get("kind")
    if kind == "rejected":
        return Refused(metrics.INVALID, cached=True)
    if kind == "ok":
        try:
            identity = RemoteIdentity.from_dict(value["identity"])
        except (KeyError, TypeError, ValueError):
            return None
        return Verified(identity=identity, user_pk=value.get("user_pk"), cached=True)
    return None


def _verify(
    token: str, claims: Mapping[str, Any] | None, key: str, cfg: RemoteAuthSettings
) -> Outcome:
    started = time.monotonic()
    try:
        answer = get_client().fetch_me(token)
    except CircuitOpen:
        # Retry-After: until the trial call (up to the reset timeout), not the generic 5 s.
        wait = seconds_until_trial(get_client().breaker)
        retry_after = max(1, math.ceil(wait)) if wait else cfg.retry_after
        outcome: Outcome = Refused(metrics.CIRCUIT_OPEN, retry_after=retry_after)
    except UpstreamFailure as failure:
        logger.warning(
            "auth server verification failed: reason=%s detail=%s", failure.reason, failure.detail
        )
        outcome = Refused(failure.reason, retry_after=failure.retry_after or cfg.retry_after)
    else:
        outcome = _from_answer(answer, claims, key, cfg)
    duration = time.monotonic() - started
    if isinstance(outcome, Verified):
        metrics.record_success(duration)
    elif outcome.reason == metrics.CIRCUIT_OPEN:
        metrics.record_failure(outcome.reason)  # no call made: not a verification latency
    else:
        metrics.record_failure(outcome.reason, duration)
    return outcome


def _from_answer(
    answer: UpstreamAnswer, claims: Mapping[str, Any] | None, key: str, cfg: RemoteAuthSettings
) -> Outcome:
    if answer.status == 200 and answer.identity is not None:
        try:
            user = sync_user(answer.identity)
        except LinkRefused as refusal:  # counted and recorded by users.py
            return Refused(metrics.REFUSED, link_refusal=refusal.reason)
        ttl = positive_ttl(claims, cfg.cache_ttl, cfg.token_leeway)
        cache_set(
            cfg.cache_alias,
            key,
            {"kind": "ok", "identity": answer.identity.to_dict(), "user_pk": user.pk},
            ttl,
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
