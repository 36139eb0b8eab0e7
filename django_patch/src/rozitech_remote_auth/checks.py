"""Django system checks for the remote-auth settings (R15 in docs/architecture.md).

Run by ``manage.py check`` (and ``check --deploy`` for the deploy-only ones).

Ids are ``rozitech_remote_auth.<code>``:

* ``E001``: an ``AUTH_SERVICE_*`` value cannot be parsed (the message names the key);
* ``E002``: ``AUTH_SERVICE_URL`` missing, not http(s), or without a host;
* ``E003``: timeouts outside ``0 < connect <= read <= total <= 60`` seconds;
* ``E004``: ``AUTH_SERVICE_CACHE_ALIAS`` is not a key of ``CACHES``;
* ``E005``: ``AUTH_SERVICE_CA_BUNDLE`` is not a readable file;
* ``E006``: ``AUTH_SERVICE_CACHE_URL`` is set but the ``redis`` package is missing;
* ``W001`` (``--deploy``): ``AUTH_SERVICE_URL`` is ``http://`` (tokens in clear text);
* ``W002`` (``--deploy``): the identity cache is ``DummyCache`` (every request goes upstream);
* ``W003``: the class is in no default list and the simplejwt bridge is off (patch inert);
* ``W004``: ``AUTH_SERVICE_URL`` ends in ``/api`` (the client appends ``/api/auth/me`` itself);
* ``W005``: ``AUTH_SERVICE_LINK_PRIVILEGED`` is on (a staff/superuser account may be linked to an
  auth-server user by e-mail at its first login);
* ``W006``: ``AUTH_SERVICE_LINK_REQUIRE_VERIFIED_EMAIL`` is off while linking by e-mail is on
  (whoever registers an existing user's address at the auth server gets that account).
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from .conf import RemoteAuthConfigError, RemoteAuthSettings, get_settings

__all__ = ["MAX_TIMEOUT", "check_deploy", "check_settings"]

#: Upper bound for every timeout, seconds (gunicorn kills sync workers after 120 s).
MAX_TIMEOUT = 60.0

_ID = "rozitech_remote_auth."
_AUTH_CLASS = "rozitech_remote_auth.authentication.RemoteJWTAuthentication"


def _load() -> tuple[RemoteAuthSettings | None, list[CheckMessage]]:
    try:
        return get_settings(), []
    except RemoteAuthConfigError as exc:
        if exc.key == "AUTH_SERVICE_URL":
            return None, [
                Error(
                    str(exc),
                    hint="Set AUTH_SERVICE_URL in the app's .env, e.g. https://auth.rozitech.com",
                    id=_ID + "E002",
                )
            ]
        return None, [
            Error(
                str(exc),
                hint="Fix or remove the key in .env; the README lists valid values.",
                id=_ID + "E001",
            )
        ]


def _timeouts(cfg: RemoteAuthSettings) -> list[CheckMessage]:
    bounds_ok = 0 < cfg.connect_timeout <= cfg.timeout <= cfg.total_timeout <= MAX_TIMEOUT
    if bounds_ok:
        return []
    return [
        Error(
            "Auth service timeouts out of bounds: connect="
            f"{cfg.connect_timeout}s read={cfg.timeout}s total={cfg.total_timeout}s.",
            hint="Need 0 < AUTH_SERVICE_CONNECT_TIMEOUT <= AUTH_SERVICE_TIMEOUT <= "
            f"AUTH_SERVICE_TOTAL_TIMEOUT <= {MAX_TIMEOUT:g} seconds.",
            id=_ID + "E003",
        )
    ]


def _cache_alias(cfg: RemoteAuthSettings) -> list[CheckMessage]:
    caches: dict[str, Any] = getattr(settings, "CACHES", {}) or {}
    if cfg.cache_alias in caches:
        return []
    return [
        Error(
            f"AUTH_SERVICE_CACHE_ALIAS {cfg.cache_alias!r} is not defined in CACHES.",
            hint=f"Use one of: {', '.join(sorted(caches)) or '(none defined)'}.",
            id=_ID + "E004",
        )
    ]


def _redis_package(cfg: RemoteAuthSettings) -> list[CheckMessage]:
    if not cfg.cache_url:
        return []
    try:
        import redis  # noqa: F401
    except ImportError:
        return [
            Error(
                "AUTH_SERVICE_CACHE_URL is set but the redis package is not installed.",
                hint="pip install 'rozitech-remote-auth[redis]' (the rollout does it when "
                "remote_auth_cache_url is set).",
                id=_ID + "E006",
            )
        ]
    return []


def _ca_bundle(cfg: RemoteAuthSettings) -> list[CheckMessage]:
    if not cfg.ca_bundle or (os.path.isfile(cfg.ca_bundle) and os.access(cfg.ca_bundle, os.R_OK)):
        return []
    return [
        Error(
            "AUTH_SERVICE_CA_BUNDLE does not name a readable file.",
            hint="Point it at a PEM bundle, or leave it empty for the system/certifi default.",
            id=_ID + "E005",
        )
    ]


def _auth_class_used(cfg: RemoteAuthSettings) -> list[CheckMessage]:
    rest_framework = getattr(settings, "REST_FRAMEWORK", {}) or {}
    classes = rest_framework.get("DEFAULT_AUTHENTICATION_CLASSES", ())
    if _AUTH_CLASS in classes or cfg.bridge_simplejwt:
        return []
    return [
        Warning(
            "RemoteJWTAuthentication is not in DEFAULT_AUTHENTICATION_CLASSES and the simplejwt "
            "bridge is off: no view authenticates against the auth server.",
            hint="Use DJANGO_SETTINGS_MODULE=rozitech_remote_auth.settings_overlay or set "
            "AUTH_SERVICE_BRIDGE_SIMPLEJWT=true.",
            id=_ID + "W003",
        )
    ]


def _url_path(cfg: RemoteAuthSettings) -> list[CheckMessage]:
    if not urlsplit(cfg.url).path.rstrip("/").endswith("/api"):
        return []
    return [
        Warning(
            "AUTH_SERVICE_URL ends in /api; requests would go to .../api/api/auth/me.",
            hint="Give the base URL only, e.g. https://auth.rozitech.com",
            id=_ID + "W004",
        )
    ]


def _linking_policy(cfg: RemoteAuthSettings) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    if cfg.link_by_email and cfg.link_privileged:
        messages.append(
            Warning(
                "AUTH_SERVICE_LINK_PRIVILEGED is on: a staff or superuser account is linked to the "
                "auth-server user with its e-mail at that user's first login.",
                hint="Leave it off and link administrators by hand: manage.py remote_auth_links "
                "link <remote id> <username>.",
                id=_ID + "W005",
            )
        )
    if cfg.link_by_email and not cfg.link_require_verified_email:
        messages.append(
            Warning(
                "AUTH_SERVICE_LINK_REQUIRE_VERIFIED_EMAIL is off: whoever registers an existing "
                "local user's e-mail at the auth server is given that local account.",
                hint="Turn it on (the default), or turn AUTH_SERVICE_LINK_BY_EMAIL off and link "
                "by hand.",
                id=_ID + "W006",
            )
        )
    return messages


@register(Tags.security, "rozitech_remote_auth")
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Errors for unusable settings (E001-E006), an inert patch (W003), a doubled /api (W004),
    a loosened linking policy (W005, W006)."""
    cfg, messages = _load()
    if cfg is None:
        return messages
    return [
        *_timeouts(cfg),
        *_cache_alias(cfg),
        *_redis_package(cfg),
        *_ca_bundle(cfg),
        *_auth_class_used(cfg),
        *_url_path(cfg),
        *_linking_policy(cfg),
    ]


@register(Tags.security, "rozitech_remote_auth", deploy=True)
def check_deploy(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Deploy-only warnings: clear-text auth URL (W001), no real identity cache (W002)."""
    try:
        cfg = get_settings()
    except RemoteAuthConfigError:
        return []  # reported by check_settings
    messages: list[CheckMessage] = []
    if cfg.url.lower().startswith("http://"):
        messages.append(
            Warning(
                "AUTH_SERVICE_URL uses http://: Bearer tokens travel in clear text.",
                hint="Use https:// (set AUTH_SERVICE_CA_BUNDLE for a private CA). Silence "
                "rozitech_remote_auth.W001 only for a loopback auth server.",
                id=_ID + "W001",
            )
        )
    caches: dict[str, Any] = getattr(settings, "CACHES", {}) or {}
    backend = str(caches.get(cfg.cache_alias, {}).get("BACKEND", ""))
    if backend.endswith("DummyCache"):
        messages.append(
            Warning(
                "The identity cache is DummyCache: every request calls the auth server "
                "(rate limit: 150 requests per window per client IP).",
                hint="Point AUTH_SERVICE_CACHE_ALIAS at a real cache (Redis or LocMem).",
                id=_ID + "W002",
            )
        )
    return messages
