"""Identity cache on Django's cache framework; a cache outage is a miss (DESIGN §4.1, §4.6).

Keys: :func:`rozitech_remote_auth.tokens.cache_key` (sha256 of the whole token).  Values (plain
dicts, picklable by every backend)::

    {"v": 1, "kind": "ok", "identity": RemoteIdentity.to_dict(), "user_pk": <local user pk>}
    {"v": 1, "kind": "rejected"}          # upstream said 401 (negative cache)

Every lookup counts in ``rozitech_remote_auth_cache_requests_total``; lookups that return a
value of the current version count in ``..._cache_hits_total``.  Backend errors are logged
(without the key) and treated as a miss / a skipped write.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.cache import caches

from . import metrics

__all__ = ["VALUE_VERSION", "cache_get", "cache_set"]

logger = logging.getLogger("rozitech_remote_auth")

VALUE_VERSION = 1


def cache_get(alias: str, key: str) -> dict[str, Any] | None:
    """The cached value for ``key`` in cache ``alias``, or ``None`` (miss, stale shape, outage)."""
    metrics.CACHE_REQUESTS.inc()
    try:
        value = caches[alias].get(key)
    except Exception as exc:  # any backend error is a miss (DESIGN §4.6)
        logger.warning("identity cache read failed, treating as miss: %s", type(exc).__name__)
        return None
    if not isinstance(value, dict) or value.get("v") != VALUE_VERSION:
        return None
    metrics.CACHE_HITS.inc()
    return value


def cache_set(alias: str, key: str, value: dict[str, Any], ttl: int) -> None:
    """Store ``value`` for ``ttl`` seconds (skipped when ``ttl <= 0`` or the backend fails)."""
    if ttl <= 0:
        return
    try:
        caches[alias].set(key, {"v": VALUE_VERSION, **value}, timeout=ttl)
    except Exception as exc:  # a failed write only costs a later upstream call
        logger.warning("identity cache write failed: %s", type(exc).__name__)
