"""DRF authentication against the central auth server: :class:`RemoteJWTAuthentication`.

Request header: ``Authorization: Bearer <token>`` (RFC 6750 §2.1, scheme case-insensitive).
Identity source: ``GET {AUTH_SERVICE_URL}/api/auth/me`` (R1 in
docs/architecture.md), via :mod:`.verify`.

``authenticate(request)`` returns

* ``None`` when there is no Bearer header, another scheme (``Basic ...``) or a token this class
  does not own (a simplejwt token: ``token_type`` claim; another ``iss`` than
  ``AUTH_SERVICE_ISSUER``), so that the next authentication class runs (R4);
* ``(user, RemoteAuth)`` for a verified token: ``user`` is the synced local Django user,
  :class:`~.identity.RemoteAuth` carries the remote id, e-mail and organization.

and raises

* ``AuthenticationFailed`` (401, ``WWW-Authenticate: Bearer realm="api"``) for malformed Bearer
  credentials (no upstream call), an upstream 401, or an inactive local user;
* ``PermissionDenied`` (403) for an upstream 403 (e.g. unverified account), and when no local
  user may be given to the identity (:class:`~.users.LinkRefused`: the code names the reason);
* :class:`~.exceptions.AuthServiceUnavailable` (503 + ``Retry-After``) for outage, timeout,
  5xx, open circuit and upstream 429 (with the upstream's ``Retry-After``).
"""

from __future__ import annotations

from typing import Any

from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed, PermissionDenied

from . import metrics
from .bearer import MalformedBearer, parse_authorization
from .conf import get_settings
from .exceptions import AuthServiceUnavailable
from .identity import RemoteAuth
from .tokens import is_owned, unverified_claims
from .users import LinkRefused, get_cached_user
from .verify import Refused, resolve

__all__ = ["RemoteJWTAuthentication"]


class RemoteJWTAuthentication(BaseAuthentication):
    """Verifies auth-server Bearer tokens remotely; see the module docstring for the contract."""

    www_authenticate_realm = "api"

    def authenticate(self, request: Any) -> tuple[Any, RemoteAuth] | None:
        """DRF hook: ``None`` (not ours), ``(user, RemoteAuth)``, or an APIException."""
        token = self._bearer_token(request)
        if token is None:
            return None
        claims = unverified_claims(token)
        if not is_owned(claims, get_settings().issuer):
            return None
        return self.authenticate_token(token, claims)

    def authenticate_header(self, request: Any) -> str:
        """``WWW-Authenticate`` value for 401 answers (RFC 6750 §3)."""
        return f'Bearer realm="{self.www_authenticate_realm}"'

    @staticmethod
    def _bearer_token(request: Any) -> str | None:
        try:
            return parse_authorization(get_authorization_header(request))
        except MalformedBearer as exc:
            metrics.record_failure(metrics.MALFORMED)
            raise AuthenticationFailed(str(exc), code="bad_authorization_header") from None

    def authenticate_token(
        self, token: str, claims: dict[str, Any] | None = None
    ) -> tuple[Any, RemoteAuth]:
        """Verify ``token`` (owned by this class) and return ``(user, RemoteAuth)``."""
        outcome, owns_user = resolve(token, claims)
        if isinstance(outcome, Refused):
            raise _exception_for(outcome)
        try:
            user = outcome.user if owns_user else get_cached_user(outcome.user_pk, outcome.identity)
        except LinkRefused as refusal:  # the link changed since the identity was cached
            raise PermissionDenied(str(refusal), code=refusal.reason) from None
        if not getattr(user, "is_active", True):
            raise AuthenticationFailed("User is inactive.", code="user_inactive")
        return user, RemoteAuth(identity=outcome.identity, payload=claims or {})


def _exception_for(outcome: Refused) -> Exception:
    if outcome.reason == metrics.INVALID:
        # Same body as simplejwt's InvalidToken, so clients keep refreshing on this code.
        return AuthenticationFailed(
            {"detail": "Token is invalid or expired", "code": "token_not_valid"},
            code="token_not_valid",
        )
    if outcome.reason == metrics.FORBIDDEN:
        return PermissionDenied("The account is not allowed to use this service.")
    if outcome.reason == metrics.REFUSED and outcome.link_refusal:
        refusal = LinkRefused(outcome.link_refusal)
        return PermissionDenied(str(refusal), code=refusal.reason)
    retry_after = outcome.retry_after or get_settings().retry_after
    return AuthServiceUnavailable(retry_after)
