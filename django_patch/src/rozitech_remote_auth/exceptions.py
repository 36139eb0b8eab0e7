"""DRF exceptions raised by :class:`~rozitech_remote_auth.authentication.RemoteJWTAuthentication`.

Status mapping (R6 in docs/architecture.md): upstream 401 and malformed Bearer credentials are DRF's
``AuthenticationFailed`` (401 with ``WWW-Authenticate: Bearer realm="api"``, RFC 6750 §3);
upstream 403 is ``PermissionDenied`` (403); everything that is the auth server's trouble
(outage, timeout, 5xx, open circuit, upstream 429) is :class:`AuthServiceUnavailable`: 503 with
``Retry-After`` (RFC 9110 §10.2.3, set by DRF's exception handler from ``wait``), never 401.
"""

from __future__ import annotations

from rest_framework import status
from rest_framework.exceptions import APIException

__all__ = ["AuthServiceUnavailable"]


class AuthServiceUnavailable(APIException):
    """503: the token could not be verified now; ``wait`` (seconds) becomes ``Retry-After``."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Authentication service temporarily unavailable; retry later."
    default_code = "auth_service_unavailable"

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        super().__init__(detail=detail)
        self.wait = max(1, int(retry_after))
