"""The remote identity: parsed from ``GET /api/auth/me`` and carried as ``request.auth``.

Source: R1 in docs/architecture.md (identity contract).  ``GET {AUTH_SERVICE_URL}/api/auth/me``
answers 200 with either the wrapped form::

    {"success": true,
     "data": {"user": {"id", "email", "firstName", "lastName", ...},
              "organization": {...}, "licenses": {...}}}

or the bare form::

    {"user": {"id", "email", "firstName", "lastName", "emailVerified": true,
              "organization": {...}}}

Both are accepted.  Anything else is a contract violation (:class:`MalformedIdentity`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MalformedIdentity", "RemoteAuth", "RemoteIdentity", "parse_me_response"]

_MAX_FIELD = 320  # longest e-mail address allowed by RFC 5321 + margin; names are cut to it
#: Longest remote user id (the link table's column); longer ids are outside the contract.
MAX_ID_LENGTH = 255
_MAX_DEPTH = 32  # organization / licenses objects nested deeper are outside the contract
_UNSTORABLE = frozenset({"Cc", "Cs"})  # control characters (NUL: PostgreSQL refuses it), surrogates


class MalformedIdentity(ValueError):
    """The 200 body of ``/api/auth/me`` does not match the contract (message names the part)."""


@dataclass(frozen=True)
class RemoteIdentity:
    """Who the auth server says the token belongs to.

    ``id`` is the auth server's user id (string form), ``email`` as the server spells it,
    names default to ``""``; ``organization`` and ``licenses`` are the server's objects (or
    ``None``), ``email_verified`` is ``None`` when the server did not say.
    """

    id: str
    email: str
    first_name: str = ""
    last_name: str = ""
    organization: Mapping[str, Any] | None = None
    licenses: Mapping[str, Any] | None = None
    email_verified: bool | None = None

    @property
    def organization_id(self) -> str | None:
        """``organization.id`` as a string, when the server sent one."""
        if self.organization and self.organization.get("id") is not None:
            return str(self.organization["id"])
        return None

    def to_dict(self) -> dict[str, Any]:
        """A JSON/pickle-friendly dict (the cached form)."""
        return {
            "id": self.id,
            "email": self.email,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "organization": dict(self.organization) if self.organization is not None else None,
            "licenses": dict(self.licenses) if self.licenses is not None else None,
            "email_verified": self.email_verified,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RemoteIdentity:
        """Inverse of :meth:`to_dict`; raises ``KeyError``/``TypeError`` on a foreign shape."""
        return cls(
            id=str(data["id"]),
            email=str(data["email"]),
            first_name=str(data.get("first_name") or ""),
            last_name=str(data.get("last_name") or ""),
            organization=data.get("organization"),
            licenses=data.get("licenses"),
            email_verified=data.get("email_verified"),
        )


@dataclass(frozen=True)
class RemoteAuth:
    """``request.auth`` after a successful remote authentication.

    Carries the remote identity (``id``, ``email``, ``organization``) and the token's claims as
    decoded (the auth server verified the token; the claims are those of that token).  The raw
    token is deliberately not kept, so it cannot leak through ``repr`` or logs.  ``auth["claim"]``
    and ``auth.get("claim")`` read claims, like simplejwt's token objects.
    """

    identity: RemoteIdentity
    payload: Mapping[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """Auth-server user id."""
        return self.identity.id

    @property
    def email(self) -> str:
        """E-mail as the auth server spells it."""
        return self.identity.email

    @property
    def organization(self) -> Mapping[str, Any] | None:
        """The auth server's organization object, or ``None``."""
        return self.identity.organization

    @property
    def organization_id(self) -> str | None:
        """``organization.id`` (falls back to the token's ``organizationId`` claim)."""
        org_id = self.identity.organization_id
        if org_id is None and self.payload.get("organizationId") is not None:
            return str(self.payload["organizationId"])
        return org_id

    def __getitem__(self, claim: str) -> Any:
        return self.payload[claim]

    def get(self, claim: str, default: Any = None) -> Any:
        """A claim of the token, or ``default``."""
        return self.payload.get(claim, default)

    def __repr__(self) -> str:
        return "RemoteAuth(<remote identity>)"


def _printable(text: str) -> str:
    """``text`` without control characters (NUL included) and lone surrogates (unstorable)."""
    return "".join(ch for ch in text if unicodedata.category(ch) not in _UNSTORABLE)


def _text(user: Mapping[str, Any], key: str, *, required: bool, limit: int = _MAX_FIELD) -> str:
    value = user.get(key)
    if value is None:
        if required:
            raise MalformedIdentity(f"user.{key} missing")
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise MalformedIdentity(f"user.{key} has type {type(value).__name__}")
    try:
        text = str(value).strip()
    except ValueError:  # an int past Python's digit limit
        raise MalformedIdentity(f"user.{key} too long") from None
    if not required:  # names are attributes: cleaned and cut, never a reason to refuse
        return _printable(text)[:limit].strip()
    if len(text) > limit:
        raise MalformedIdentity(f"user.{key} too long")
    if _printable(text) != text:
        raise MalformedIdentity(f"user.{key} has control characters")
    if not text:
        raise MalformedIdentity(f"user.{key} empty")
    return text


def _depth(value: Any) -> int:
    """Nesting depth of a decoded JSON value (iterative: no recursion limit)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if level > _MAX_DEPTH:
            break
        children = (
            item.values() if isinstance(item, Mapping) else item if isinstance(item, list) else ()
        )
        stack.extend((child, level + 1) for child in children)
    return deepest


def _mapping_or_none(value: Any, where: str) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise MalformedIdentity(f"{where} is not an object")
    if _depth(value) > _MAX_DEPTH:
        raise MalformedIdentity(f"{where} nested deeper than {_MAX_DEPTH} levels")
    return value


def parse_me_response(body: Any) -> RemoteIdentity:
    """Parse the decoded JSON body of a 200 ``/api/auth/me`` answer (either form, see module doc).

    Raises :class:`MalformedIdentity` when the body is not an object, ``success`` is false, the
    user object is missing, ``id``/``email`` are missing, not strings/numbers, too long (e-mail
    320, id :data:`MAX_ID_LENGTH` characters) or hold control characters, the e-mail has no
    ``local@domain`` form, or ``organization``/``licenses`` are not objects or nest deeper than
    32 levels.  Names are attributes: control characters removed, cut to 320 characters.
    """
    if not isinstance(body, Mapping):
        raise MalformedIdentity("body is not a JSON object")
    if body.get("success") is False:
        raise MalformedIdentity("success is false")
    data = body.get("data")
    container: Mapping[str, Any] = data if isinstance(data, Mapping) and "user" in data else body
    user = container.get("user")
    if not isinstance(user, Mapping):
        raise MalformedIdentity("user object missing")
    email = _text(user, "email", required=True)
    local, _, domain = email.rpartition("@")
    if not local or not domain or any(ch.isspace() for ch in email):
        raise MalformedIdentity("user.email is not an e-mail address")
    organization = _mapping_or_none(
        container.get("organization") or user.get("organization"), "organization"
    )
    verified = user.get("emailVerified")
    return RemoteIdentity(
        id=_text(user, "id", required=True, limit=MAX_ID_LENGTH),
        email=email,
        first_name=_text(user, "firstName", required=False),
        last_name=_text(user, "lastName", required=False),
        organization=organization,
        licenses=_mapping_or_none(container.get("licenses"), "licenses"),
        email_verified=verified if isinstance(verified, bool) else None,
    )
