"""Rate-limit budget from HTTP response headers.

Header families understood (all case-insensitive), in order of preference:

* combined ``RateLimit`` (IETF draft-ietf-httpapi-ratelimit-headers):
  - draft-7: ``RateLimit: limit=150, remaining=149, reset=900`` (+ ``RateLimit-Policy: 150;w=900``);
  - draft-8: ``RateLimit: "150-in-15min"; r=149; t=900`` with the limit in the policy header
    ``RateLimit-Policy: "150-in-15min"; q=150; w=900; pk=:...:`` (matched by policy name; with several
    policies the one with the fewest remaining requests wins);
* draft-6 separate fields: ``RateLimit-Limit``, ``RateLimit-Remaining``, ``RateLimit-Reset`` (seconds);
* legacy ``X-RateLimit-Limit``, ``X-RateLimit-Remaining``, ``X-RateLimit-Reset``: the reset there is a Unix
  time in seconds (values above 1e12 are taken as milliseconds); values below 1e9 are taken as seconds from
  now, as some servers send that;
* ``Retry-After`` (RFC 9110 §10.2.3: delay-seconds or an HTTP-date in any of the three forms, read as UTC):
  fills a missing or zero reset, and is kept apart as ``retry_after``: on a 429 or 503 it is what the server asks
  for and takes precedence over any reset (ietf-wg-httpapi/ratelimit-headers#160).

Missing fields are filled from the next family that has them. ``reset_after`` is ``None`` when no header
gives it. A 429 without any remaining count means ``remaining = 0``.
"""

from __future__ import annotations

import email.utils
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_EPOCH_MIN = 1e9  # below this, an X-RateLimit-Reset is a delay in seconds, not a Unix time
_EPOCH_MS_MIN = 1e12  # above this, it is a Unix time in milliseconds
#: Bounds of a ``Retry-After`` in seconds (the same as the Django patch's).
RETRY_AFTER_MIN = 1
RETRY_AFTER_MAX = 3600


@dataclass(frozen=True)
class RateLimit:
    """The budget one response announced.

    ``limit``: requests per window; ``remaining``: requests left in it; ``reset_after``: seconds from the
    response until the window resets (``None`` when unknown); ``source``: the header family that gave
    ``remaining`` (``draft-8``, ``draft-7``, ``draft-6``, ``legacy``, ``retry-after``, or ``status`` for a bare 429);
    ``retry_after``: the ``Retry-After`` header in seconds (:func:`parse_retry_after`), ``None`` without one.
    """

    limit: float | None
    remaining: float | None
    reset_after: float | None
    source: str
    retry_after: float | None = None

    def backoff_seconds(self) -> float | None:
        """How long to wait after a 429: ``Retry-After`` when the server sent one, else the reset; ``None``."""
        if self.retry_after is not None:
            return self.retry_after
        return self.reset_after or None


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip().strip('"'))
    except ValueError:
        return None
    if math.isnan(number) or math.isinf(number) or number < 0:
        return None
    return number


def parse_retry_after(value: str | None, now: float) -> int | None:
    """``Retry-After`` as whole seconds from ``now`` (Unix time), clamped to [RETRY_AFTER_MIN, RETRY_AFTER_MAX].

    delay-seconds (``1*DIGIT``) or an HTTP-date in any RFC 9110 §5.6.7 form (IMF-fixdate, RFC 850, asctime), always
    read as UTC: an asctime date has no zone and must not be read in the process's local time (urllib3#1896).
    ``None`` when unparseable. The Django patch's ``retry_after_seconds`` runs against the same case table
    (tests/shared/retry_after_cases.json).
    """
    if value is None:
        return None
    value = value.strip()
    if re.fullmatch(r"[0-9]+", value):
        seconds = float(value)
    else:
        try:
            parts = email.utils.parsedate_tz(value)
        except (TypeError, ValueError, IndexError):
            return None
        if parts is None:
            return None
        try:
            when = datetime(*parts[:6], tzinfo=UTC) - timedelta(seconds=parts[9] or 0)
        except (ValueError, OverflowError):
            return None
        seconds = when.timestamp() - now
    return int(min(RETRY_AFTER_MAX, max(RETRY_AFTER_MIN, math.ceil(min(seconds, RETRY_AFTER_MAX)))))


def _split_list(value: str) -> list[str]:
    """Split a structured-field list on commas outside quotes."""
    items, current, quoted = [], [], False
    for char in value:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            items.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    items.append("".join(current).strip())
    return [item for item in items if item]


def _params(item: str) -> tuple[str, dict[str, str]]:
    """``"name"; a=1; b=2`` → (``name``, {a: 1, b: 2}); the name is empty when the item starts with a parameter."""
    parts = [part.strip() for part in item.split(";") if part.strip()]
    name = parts.pop(0).strip('"') if parts and "=" not in parts[0] else ""
    params: dict[str, str] = {}
    for part in parts:
        key, sep, val = part.partition("=")
        if sep:
            params[key.strip().lower()] = val.strip()
    return name, params


def _draft8(value: str, policy: str | None) -> tuple[float | None, float | None, float | None] | None:
    items = [_params(item) for item in _split_list(value)]
    items = [(name, params) for name, params in items if "r" in params]
    if not items:
        return None
    quotas: dict[str, float | None] = {}
    for name, params in (_params(item) for item in _split_list(policy or "")):
        quotas[name] = _number(params.get("q"))
    best = min(items, key=lambda item: _number(item[1].get("r")) or 0.0)
    name, params = best
    return quotas.get(name), _number(params.get("r")), _number(params.get("t"))


def _draft7(value: str, policy: str | None) -> tuple[float | None, float | None, float | None] | None:
    fields: dict[str, str] = {}
    for item in _split_list(value):
        key, sep, val = item.partition("=")
        if sep:
            fields[key.strip().lower()] = val.split(";")[0].strip()
    if "remaining" not in fields and "limit" not in fields:
        return None
    limit = _number(fields.get("limit"))
    if limit is None and policy:
        limit = _number(_split_list(policy)[0].split(";")[0]) if _split_list(policy) else None
    return limit, _number(fields.get("remaining")), _number(fields.get("reset"))


def _legacy_reset(value: str | None, now: float) -> float | None:
    number = _number(value)
    if number is None:
        return None
    if number >= _EPOCH_MS_MIN:
        number /= 1000.0
    if number >= _EPOCH_MIN:
        return max(0.0, number - now)
    return number


def parse_rate_limit(headers: Mapping[str, str], now: float, status: int | None = None) -> RateLimit | None:
    """The budget announced by one response's ``headers`` (``now``: Unix time of the response).

    ``status`` 429 without a remaining count gives ``remaining = 0``. ``None`` when no family is present.
    """
    h = {key.lower(): value for key, value in headers.items()}
    families: list[tuple[str, tuple[float | None, float | None, float | None]]] = []
    combined = h.get("ratelimit")
    if combined:
        parsed = _draft8(combined, h.get("ratelimit-policy"))
        if parsed is not None:
            families.append(("draft-8", parsed))
        else:
            parsed = _draft7(combined, h.get("ratelimit-policy"))
            if parsed is not None:
                families.append(("draft-7", parsed))
    if any(key in h for key in ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset")):
        families.append(
            (
                "draft-6",
                (
                    _number(h.get("ratelimit-limit")),
                    _number(h.get("ratelimit-remaining")),
                    _number(h.get("ratelimit-reset")),
                ),
            )
        )
    if any(key in h for key in ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")):
        families.append(
            (
                "legacy",
                (
                    _number(h.get("x-ratelimit-limit")),
                    _number(h.get("x-ratelimit-remaining")),
                    _legacy_reset(h.get("x-ratelimit-reset"), now),
                ),
            )
        )
    retry_after = parse_retry_after(h.get("retry-after"), now)
    if not families and retry_after is None:
        return RateLimit(limit=None, remaining=0.0, reset_after=None, source="status") if status == 429 else None
    retry = float(retry_after) if retry_after is not None else None
    limit = remaining = reset = None
    source = "retry-after"
    for name, (f_limit, f_remaining, f_reset) in families:
        if remaining is None and f_remaining is not None:
            remaining, source = f_remaining, name
        limit = limit if limit is not None else f_limit
        reset = reset if reset is not None else f_reset
    if source == "retry-after" and families:
        source = families[0][0]
    if (reset is None or reset == 0) and retry is not None:
        reset = retry
    if remaining is None and status == 429:
        remaining = 0.0
    return RateLimit(limit=limit, remaining=remaining, reset_after=reset, source=source, retry_after=retry)
