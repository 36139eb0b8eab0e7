"""The auth server's rate-limit budget, read from every ``/api/auth/me`` answer (rule R5).

Header forms (all case-insensitive; the first complete one wins):

1. ``RateLimit-Limit`` / ``RateLimit-Remaining`` / ``RateLimit-Reset`` (IETF
   draft-ietf-httpapi-ratelimit-headers draft 6, express-rate-limit ``standardHeaders: 'draft-6'``;
   reset in delta seconds);
2. ``RateLimit: limit=150, remaining=42, reset=600`` (draft 7);
3. ``RateLimit: "default";r=42;t=600`` with ``RateLimit-Policy: "default";q=150;w=900`` (draft 8
   and later: ``r`` remaining, ``t`` reset, ``q`` the quota);
4. ``X-RateLimit-Limit`` / ``X-RateLimit-Remaining`` / ``X-RateLimit-Reset`` (express-rate-limit's
   legacy headers; reset as Unix time, or delta seconds when small).

A 429 without any of them counts as ``remaining = 0`` until its ``Retry-After``.

:func:`observe` publishes the budget (gauges ``rozitech_remote_auth_upstream_ratelimit_remaining``,
``..._limit``, ``..._reset_seconds``) and remembers it for :func:`budget_low`, per process and in
the identity cache (shared by every worker and host with ``AUTH_SERVICE_CACHE_URL``) under
:data:`STATE_KEY` until the window resets.  :func:`budget_low` is True while ``remaining <=
AUTH_SERVICE_RATELIMIT_LOW_RATIO x limit``: then :mod:`.verify` serves cached identities past
``AUTH_SERVICE_CACHE_TTL`` (up to ``AUTH_SERVICE_MAX_STALENESS`` and never past ``exp`` minus the
leeway) instead of calling the auth server again.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

from django.core.cache import caches

from . import metrics
from .retry_after import parse_retry_after

__all__ = ["STATE_KEY", "Budget", "budget_low", "observe", "parse_budget"]

logger = logging.getLogger("rozitech_remote_auth")

#: Identity-cache key of the last budget seen (not a sha256: never collides with a token's key).
STATE_KEY = "rozitech_remote_auth:ratelimit"

_EPOCH_THRESHOLD = 1_000_000_000
_PARAM = re.compile(r"(?:^|[;,\s])([a-z]+)\s*=\s*\"?(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class Budget:
    """``remaining`` of ``limit`` requests until the window resets in ``reset`` seconds."""

    limit: int
    remaining: int
    reset: int


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    text = value.strip()
    return int(text) if text.isdigit() else None


def _reset(value: int | None, now: float) -> int | None:
    if value is None:
        return None
    return max(0, int(value - now)) if value > _EPOCH_THRESHOLD else value


def _params(value: str | None) -> dict[str, int]:
    return {k.lower(): int(v) for k, v in _PARAM.findall(value or "")}


def parse_budget(
    headers: Mapping[str, str], status: int, now: float | None = None
) -> Budget | None:
    """The budget an answer announces, or ``None`` when it says nothing (see the module doc)."""
    current = time.time() if now is None else now
    limit, remaining = (
        _int(headers.get("RateLimit-Limit")),
        _int(headers.get("RateLimit-Remaining")),
    )
    reset = _int(headers.get("RateLimit-Reset"))
    if limit is None or remaining is None:
        combined, policy = (
            _params(headers.get("RateLimit")),
            _params(headers.get("RateLimit-Policy")),
        )
        limit = combined.get("limit", policy.get("q"))
        remaining = combined.get("remaining", combined.get("r"))
        reset = combined.get("reset", combined.get("t", policy.get("w")))
    if limit is None or remaining is None:
        limit = _int(headers.get("X-RateLimit-Limit"))
        remaining = _int(headers.get("X-RateLimit-Remaining"))
        reset = _reset(_int(headers.get("X-RateLimit-Reset")), current)
    if (limit is None or remaining is None) and status == 429:
        return Budget(limit=0, remaining=0, reset=parse_retry_after(headers, current) or 60)
    if limit is None or remaining is None:
        return None
    return Budget(limit=limit, remaining=min(remaining, limit), reset=reset or 0)


_last: tuple[Budget, float] | None = None  # (budget, time.time() it was seen)


def observe(headers: Mapping[str, str], status: int, alias: str) -> Budget | None:
    """Read the budget of one answer; publish and remember it.  Never raises."""
    global _last
    try:
        budget = parse_budget(headers, status)
    except (TypeError, ValueError):
        return None
    if budget is None:
        return None
    now = time.time()
    _last = (budget, now)
    metrics.set_ratelimit(budget.limit, budget.remaining, budget.reset)
    value = {"limit": budget.limit, "remaining": budget.remaining, "until": now + budget.reset}
    try:  # not through .cache: this key must not count as an identity lookup
        caches[alias].set(STATE_KEY, value, timeout=max(1, budget.reset))
    except Exception as exc:  # a cache outage only loses the sharing
        logger.debug("rate-limit budget not shared (%s)", type(exc).__name__)
    return budget


def _low(limit: int, remaining: int, ratio: float) -> bool:
    return remaining <= ratio * limit


def budget_low(alias: str, ratio: float) -> bool:
    """Whether the budget seen last (here or, through a shared cache, by any worker or host) is
    at or below ``ratio`` of the limit and its window has not reset yet."""
    now = time.time()
    if _last is not None:
        budget, seen = _last
        if now < seen + budget.reset and _low(budget.limit, budget.remaining, ratio):
            return True
    try:
        shared = caches[alias].get(STATE_KEY)
    except Exception:  # a cache outage: only this process's own knowledge
        return False
    if not isinstance(shared, dict):
        return False
    try:
        until, limit, remaining = (
            float(shared["until"]),
            int(shared["limit"]),
            int(shared["remaining"]),
        )
    except (KeyError, TypeError, ValueError):
        return False
    return now < until and _low(limit, remaining, ratio)
