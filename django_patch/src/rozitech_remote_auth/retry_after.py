"""Read how long a client should wait from rate-limit / unavailability response headers.

Sources, in order of preference:

1. ``Retry-After`` (RFC 9110 §10.2.3): ``delay-seconds`` or an ``HTTP-date``;
2. ``RateLimit-Reset`` (IETF draft-ietf-httpapi-ratelimit-headers, draft 6, as sent by
   express-rate-limit ``standardHeaders: 'draft-6'``): delta seconds;
3. ``RateLimit: limit=..., remaining=..., reset=N`` (same draft, 7/8): ``reset`` delta seconds;
4. ``X-RateLimit-Reset`` (express-rate-limit legacy headers): Unix time in seconds, or delta
   seconds when the number is small.

Results are whole seconds, clamped to ``[1, MAX_RETRY_AFTER]``.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

__all__ = ["MAX_RETRY_AFTER", "parse_retry_after"]

#: Upper bound (seconds) for a ``Retry-After`` passed on to clients.
MAX_RETRY_AFTER = 3600

_EPOCH_THRESHOLD = 1_000_000_000  # numbers above this are Unix times, not deltas
_RESET_PARAM = re.compile(r"(?:^|[;,\s])reset\s*=\s*(\d+)", re.IGNORECASE)


def _clamp(seconds: float) -> int:
    return int(min(MAX_RETRY_AFTER, max(1, math.ceil(seconds))))


def _delta_or_date(value: str, now: float) -> float | None:
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return when.timestamp() - now


def _delta_or_epoch(value: str, now: float) -> float | None:
    value = value.strip()
    if not value.isdigit():
        return None
    number = float(value)
    return number - now if number > _EPOCH_THRESHOLD else number


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> int | None:
    """Seconds to wait according to ``headers`` (case-insensitive mapping), or ``None``."""
    current = time.time() if now is None else now
    candidates: list[float | None] = []
    if headers.get("Retry-After"):
        candidates.append(_delta_or_date(headers["Retry-After"], current))
    if headers.get("RateLimit-Reset"):
        candidates.append(_delta_or_epoch(headers["RateLimit-Reset"], current))
    if headers.get("RateLimit"):
        match = _RESET_PARAM.search(headers["RateLimit"])
        candidates.append(float(match.group(1)) if match else None)
    if headers.get("X-RateLimit-Reset"):
        candidates.append(_delta_or_epoch(headers["X-RateLimit-Reset"], current))
    for seconds in candidates:
        if seconds is not None:
            return _clamp(seconds)
    return None
