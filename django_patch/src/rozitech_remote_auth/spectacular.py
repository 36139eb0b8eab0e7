"""drf-spectacular support: the OpenAPI security scheme of ``RemoteJWTAuthentication``.

Without it drf-spectacular logs ``could not resolve authenticator <class
'...RemoteJWTAuthentication'>`` on every schema build and documents no security for the views
that use it.  With it, every such view gets the security requirement ``remoteJwtAuth``: an HTTP
``bearer`` scheme with ``bearerFormat: JWT`` (``Authorization: Bearer <auth-server access
token>``, RFC 6750).

Loaded by ``RemoteAuthConfig.ready()`` only when drf-spectacular is importable (importing this
module registers the extension; it imports drf-spectacular, so never import it otherwise).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object

__all__ = ["SCHEME_NAME", "RemoteJWTAuthenticationScheme"]

#: Name of the security scheme in ``components.securitySchemes``.
SCHEME_NAME = "remoteJwtAuth"


class RemoteJWTAuthenticationScheme(OpenApiAuthenticationExtension):  # type: ignore[misc]
    """``remoteJwtAuth``: ``{"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}``."""

    target_class = "rozitech_remote_auth.authentication.RemoteJWTAuthentication"
    match_subclasses = True
    name = SCHEME_NAME

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        """The scheme object (OpenAPI 3.0 ``securitySchemes`` entry)."""
        scheme = build_bearer_security_scheme_object(
            header_name="HTTP_AUTHORIZATION",
            token_prefix="Bearer",  # noqa: S106 - the auth scheme's name, not a secret
            bearer_format="JWT",
        )
        scheme["description"] = (
            "Access token of the Rozitech auth server, verified by the app against the auth server "
            "(GET /api/auth/me)."
        )
        return scheme
