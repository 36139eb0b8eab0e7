"""Identity cache on Django's cache framework; a cache outage is a miss (R5, R13 in
docs/architecture.md).

Keys: :func:`rozitech_remote_auth.tokens.cache_key` (sha256 of the whole token).  Values (plain
dicts, picklable by every backend)::

    {"v": 1, "kind": "ok", "identity": RemoteIdentity.to_dict(), "user_pk": <local user pk>}
    {"v": 1, "kind": "rejected"}          # upstream said 401 (negative cache)

Every lookup counts in ``rozitech_remote_auth_cache_requests_total``; lookups that return a
value of the current version count in ``..._cache_hits_total``.  Backend errors are logged
(without the key) and treated as a miss / a skipped write; after one, the cache is not asked
again for :data:`BACKEND_RETRY_SECONDS` (a hanging Redis costs one socket timeout per process and
window, not one per request).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.core.cache import caches

from . import metrics

__all__ = ["BACKEND_RETRY_SECONDS", "VALUE_VERSION", "cache_get", "cache_set"]

logger = logging.getLogger("rozitech_remote_auth")

VALUE_VERSION = 1
#: After a backend error the cache is skipped (every lookup a miss) for this many seconds.
BACKEND_RETRY_SECONDS = 5.0
_skip_until = 0.0


def _backend_failed(action: str, exc: Exception) -> None:
    global _skip_until
    if time.monotonic() >= _skip_until:
        logger.warning(
            "identity cache %s failed (%s): skipping the cache for %.0f s",
            action,
            type(exc).__name__,
            BACKEND_RETRY_SECONDS,
        )
    _skip_until = time.monotonic() + BACKEND_RETRY_SECONDS


def cache_get(alias: str, key: str) -> dict[str, Any] | None:
    """The cached value for ``key`` in cache ``alias``, or ``None`` (miss, stale shape, outage)."""
    metrics.CACHE_REQUESTS.inc()
    if time.monotonic() < _skip_until:
        return None
    try:
        value = caches[alias].get(key)
    except Exception as exc:  # any backend error is a miss (R13)
        _backend_failed("read", exc)
        return None
    if not isinstance(value, dict) or value.get("v") != VALUE_VERSION:
        return None
    metrics.CACHE_HITS.inc()
    return value


def cache_set(alias: str, key: str, value: dict[str, Any], ttl: int) -> None:
    """Store ``value`` for ``ttl`` seconds (skipped when ``ttl <= 0`` or the backend fails)."""
    if ttl <= 0 or time.monotonic() < _skip_until:
        return
    try:
        caches[alias].set(key, {"v": VALUE_VERSION, **value}, timeout=ttl)
    except Exception as exc:  # a failed write only costs a later upstream call
        _backend_failed("write", exc)
