"""Token helpers that need no secret: unverified claims, ownership, cache key, cache lifetimes.

The claims read here are **unverified**: they only decide *routing* (which authentication class
handles the token) and *how long* to cache an answer the auth server gave for this exact token.
Trust comes from the auth server's answer, never from these claims.

Auth-server access tokens (R2 in docs/architecture.md): HS256 JWTs (RFC 7519) with claims
``{userId, email, organizationId, type: "access", iss: "rozitech-auth", iat, exp}``.
simplejwt tokens carry a ``token_type`` claim instead.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import time
from collections.abc import Mapping
from typing import Any

__all__ = [
    "CACHE_KEY_PREFIX",
    "EXPIRED_SKEW_SECONDS",
    "cache_key",
    "expired",
    "is_owned",
    "negative_ttl",
    "positive_ttl",
    "unverified_claims",
]

#: Prefix of every cache key; bump the version when the cached value's shape changes.
CACHE_KEY_PREFIX = "rozitech_remote_auth:v1:"


def unverified_claims(token: str) -> dict[str, Any] | None:
    """Decode a compact JWS's payload without checking its signature.

    Returns the claims object, or ``None`` when ``token`` is not a JWT (not three
    base64url segments, header or payload not a JSON object): an opaque token.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header = json.loads(_b64url_decode(parts[0]))
        payload = json.loads(_b64url_decode(parts[1]))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        return None
    return payload


def _b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def is_owned(claims: Mapping[str, Any] | None, issuer: str | None) -> bool:
    """Whether the remote class should handle a token with these unverified ``claims``.

    * opaque (``claims is None``): ours;
    * a ``token_type`` claim (simplejwt's marker): not ours;
    * ``issuer`` configured and ``iss`` differs: not ours;
    * otherwise ours.
    """
    if claims is None:
        return True
    if "token_type" in claims:
        return False
    return not (issuer is not None and claims.get("iss") != issuer)


def cache_key(token: str) -> str:
    """``rozitech_remote_auth:v1:<sha256 hex of the whole token>`` (R5)."""
    return CACHE_KEY_PREFIX + hashlib.sha256(token.encode("utf-8")).hexdigest()


def _exp(claims: Mapping[str, Any] | None) -> float | None:
    if not claims:
        return None
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, (int, float)) or not math.isfinite(exp):
        return None
    return float(exp)


#: A token whose ``exp`` lies more than this many seconds in the past is refused without a call.
EXPIRED_SKEW_SECONDS = 5


def expired(claims: Mapping[str, Any] | None, now: float | None = None) -> bool:
    """Whether the unverified ``exp`` is past (more than :data:`EXPIRED_SKEW_SECONDS` ago).

    Safe on unverified claims: it only ever *refuses* a token, which the auth server would refuse
    too (``401 TOKEN_EXPIRED``).  It saves the upstream call (and rate-limit budget) that a client
    retrying with an expired token would otherwise cost on every request: a 401 is never cached
    past ``exp``.
    """
    exp = _exp(claims)
    return exp is not None and exp + EXPIRED_SKEW_SECONDS < (time.time() if now is None else now)


def positive_ttl(
    claims: Mapping[str, Any] | None, ttl: int, leeway: int, now: float | None = None
) -> int:
    """Seconds to cache a verified identity: ``min(ttl, exp - now - leeway)``, floored.

    Without an ``exp`` claim the configured ``ttl`` applies.  ``0`` means: do not cache.
    """
    exp = _exp(claims)
    if exp is None:
        return max(0, ttl)
    remaining = exp - (time.time() if now is None else now) - leeway
    return max(0, min(ttl, math.floor(remaining)))


def negative_ttl(claims: Mapping[str, Any] | None, ttl: int, now: float | None = None) -> int:
    """Seconds to remember an upstream 401: ``min(ttl, exp - now)``, never past ``exp``."""
    exp = _exp(claims)
    if exp is None:
        return max(0, ttl)
    remaining = exp - (time.time() if now is None else now)
    return max(0, min(ttl, math.floor(remaining)))
