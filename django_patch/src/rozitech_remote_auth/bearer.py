"""Parse the ``Authorization`` request header for a Bearer token (RFC 6750 §2.1).

Grammar (RFC 6750 §2.1, auth-scheme case-insensitive per RFC 9110 §11.1)::

    credentials = "Bearer" 1*SP b64token
    b64token    = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="

Outcomes of :func:`parse_authorization`:

* ``None``: no header, or another scheme (``Basic ...``): not ours, other classes may run;
* a token string: well-formed Bearer credentials;
* :class:`MalformedBearer`: the scheme is Bearer but the credentials break the grammar
  (bare ``Bearer``, ``Bearer a b``, ``Bearer a,Bearer b``, non-ASCII): a 401, no upstream call.
"""

from __future__ import annotations

import re

__all__ = ["MAX_TOKEN_LENGTH", "MalformedBearer", "parse_authorization"]

#: Tokens longer than this are refused outright (the auth server's JWTs are < 1 KiB).
MAX_TOKEN_LENGTH = 8192

_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_SCHEME = "bearer"


class MalformedBearer(ValueError):
    """Bearer credentials that break RFC 6750 §2.1 (the message never contains the token)."""


def parse_authorization(header: bytes | str | None) -> str | None:
    """Return the Bearer token of an ``Authorization`` header value, ``None`` if not Bearer.

    ``header`` is the raw value (``request.META["HTTP_AUTHORIZATION"]``, str or latin-1 bytes).
    Raises :class:`MalformedBearer` for Bearer credentials that do not match the grammar.
    """
    if header is None:
        return None
    if isinstance(header, bytes):
        header = header.decode("latin-1")
    text = header.strip(" \t")
    if not text:
        return None
    scheme, sep, rest = text.partition(" ")
    if scheme.lower() != _SCHEME:
        return None
    credentials = rest.strip(" ")
    if not sep or not credentials:
        raise MalformedBearer("Bearer credentials missing")
    if len(credentials) > MAX_TOKEN_LENGTH:
        raise MalformedBearer("Bearer token too long")
    if not _B64TOKEN.fullmatch(credentials):
        raise MalformedBearer("Bearer credentials must be a single b64token")
    return credentials
