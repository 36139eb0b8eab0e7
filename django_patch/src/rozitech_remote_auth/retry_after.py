"""Read how long a client should wait from rate-limit / unavailability response headers.

Sources, in order of preference:

1. ``Retry-After`` (RFC 9110 §10.2.3): ``delay-seconds`` or an ``HTTP-date`` in any of the three
   forms of RFC 9110 §5.6.7 (IMF-fixdate, obsolete RFC 850, ANSI C asctime), always read as UTC
   whatever the process time zone (Django's ``TIME_ZONE`` sets ``TZ``), :func:`retry_after_seconds`;
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
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_tz

__all__ = ["MAX_RETRY_AFTER", "parse_retry_after", "retry_after_seconds"]

#: Upper bound (seconds) for a ``Retry-After`` passed on to clients.
MAX_RETRY_AFTER = 3600

_EPOCH_THRESHOLD = 1_000_000_000  # numbers above this are Unix times, not deltas
_RESET_PARAM = re.compile(r"(?:^|[;,\s])reset\s*=\s*(\d+)", re.IGNORECASE)


def _clamp(seconds: float) -> int:
    return int(min(MAX_RETRY_AFTER, max(1, math.ceil(min(seconds, MAX_RETRY_AFTER)))))


_DELAY_SECONDS = re.compile(r"[0-9]+")


def _delta_or_date(value: str, now: float) -> float | None:
    value = value.strip()
    if _DELAY_SECONDS.fullmatch(value):
        return float(value)
    try:
        parts = parsedate_tz(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parts is None:
        return None
    # HTTP dates are GMT (RFC 9110 §5.6.7): a date without a zone (asctime, "-0000") is UTC, never
    # local time (email.utils.mktime_tz and naive datetimes would read it in the process's TZ).
    try:
        when = datetime(*parts[:6], tzinfo=timezone.utc) - timedelta(seconds=parts[9] or 0)
    except (ValueError, OverflowError):
        return None
    return when.timestamp() - now


def retry_after_seconds(value: str, now: float | None = None) -> int | None:
    """One ``Retry-After`` value as whole seconds from ``now`` (Unix time; default: the clock).

    ``delay-seconds`` (``1*DIGIT``) or an HTTP-date in any RFC 9110 form, read as UTC; rounded up
    and clamped to ``[1, MAX_RETRY_AFTER]``.  ``None`` when ``value`` is neither.  The exporter's
    ``rozitech_auth_exporter.ratelimit.parse_retry_after`` is tested against the same case table
    (``tests/shared/retry_after_cases.json`` in the repository).
    """
    seconds = _delta_or_date(value, time.time() if now is None else now)
    return None if seconds is None else _clamp(seconds)


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
