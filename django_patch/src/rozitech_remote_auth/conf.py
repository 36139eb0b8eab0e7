"""Settings of the remote-auth patch: one parser, one frozen dataclass.

Every setting is a Django setting named like its ``.env`` key (``AUTH_SERVICE_*``).  The
settings overlay (:mod:`rozitech_remote_auth.settings_overlay`) reads the keys from the
environment / ``.env`` file and sets them; a project may also set them directly in its settings.
Values may be strings (as read from ``.env``) or already typed Python values.

Settings, in the order of :data:`SETTING_KEYS` (``make docs`` copies them into README.md's
Settings table, each with its default from :class:`RemoteAuthSettings`):

``AUTH_SERVICE_URL``
    base URL of the auth server, ``https://auth.rozitech.com`` (no ``/api``: the client appends
    ``/api/auth/me``)
``AUTH_SERVICE_TIMEOUT``
    read timeout per socket read, seconds
``AUTH_SERVICE_CONNECT_TIMEOUT``
    TCP connect timeout, seconds
``AUTH_SERVICE_TOTAL_TIMEOUT``
    hard deadline for one verification including the retry, seconds
``AUTH_SERVICE_CACHE_TTL``
    longest time a verified identity is cached, seconds (``0``: no caching)
``AUTH_SERVICE_NEGATIVE_CACHE_TTL``
    how long an upstream 401 is remembered, seconds (``0``: off)
``AUTH_SERVICE_TOKEN_LEEWAY``
    caching stops this many seconds before the token's ``exp``
``AUTH_SERVICE_CACHE_ALIAS``
    alias in ``CACHES`` used for the identity cache (Redis shares it across workers and hosts)
``AUTH_SERVICE_CACHE_URL``
    ``redis://``, ``rediss://`` or ``unix://`` URL of a Redis shared by every worker and app host:
    the overlay adds the cache alias ``rozitech_remote_auth`` (Django's built-in ``RedisCache``)
    and uses it instead of ``AUTH_SERVICE_CACHE_ALIAS``, and the circuit breaker keeps its state
    there. Needs ``rozitech-remote-auth[redis]``. May hold a password: never logged
``AUTH_SERVICE_CACHE_SOCKET_TIMEOUT``
    Redis connect and read timeout, seconds (a Redis outage costs at most this per cache
    operation)
``AUTH_SERVICE_CA_BUNDLE``
    PEM bundle to verify the auth server's TLS certificate; empty: requests' default
    (``REQUESTS_CA_BUNDLE`` or certifi)
``AUTH_SERVICE_RETRY_AFTER``
    ``Retry-After`` seconds sent with a 503 on outage, timeout or open circuit
``AUTH_SERVICE_BREAKER_FAIL_MAX``
    consecutive upstream failures that open the circuit
``AUTH_SERVICE_BREAKER_RESET_TIMEOUT``
    seconds the circuit stays open before one trial call
``AUTH_SERVICE_BRIDGE_SIMPLEJWT``
    route views pinned to simplejwt's ``JWTAuthentication`` through this patch (below)
``AUTH_SERVICE_ISSUER``
    expected ``iss`` of auth-server tokens; tokens with another ``iss`` are left to other classes
``AUTH_SERVICE_LINK_BY_EMAIL``
    the first login of a remote user may link an existing, unlinked local user with the same
    e-mail (``false``: refused, linked by ``manage.py remote_auth_links link``)
``AUTH_SERVICE_LINK_REQUIRE_VERIFIED_EMAIL``
    ... only when the auth server says ``emailVerified: true`` (absent = not verified)
``AUTH_SERVICE_LINK_PRIVILEGED``
    ... also when that local user is staff or superuser
``AUTH_SERVICE_BULKHEAD_SLOTS``
    auth-server calls one host may wait on at once (:mod:`.bulkhead`); ``0``: no bound
``AUTH_SERVICE_BULKHEAD_WAIT``
    seconds a call waits for a slot whose holder is younger than this; past it: 503 at once
``AUTH_SERVICE_BULKHEAD_DIR``
    host-local directory of the slots' lock files; empty: ``$RUNTIME_DIRECTORY`` or the temp dir
``AUTH_SERVICE_ADAPTIVE_TIMEOUT_MIN``
    floor of the read timeout that follows observed latency (:mod:`.latency`); ``0``: always
    ``AUTH_SERVICE_TIMEOUT``
``AUTH_SERVICE_RATELIMIT_LOW_RATIO``
    the auth server's budget is "low" at or below this share of its limit (:mod:`.ratelimit`)
``AUTH_SERVICE_MAX_STALENESS``
    while it is low: seconds a verified identity may be served from the cache (never past ``exp``
    minus the leeway); at most ``AUTH_SERVICE_CACHE_TTL`` when lower

Identity linking (:mod:`.users`): a local user is bound to the auth server's stable user id by
:class:`~.models.IdentityLink`; the three ``AUTH_SERVICE_LINK_*`` keys only govern the *first*
linking of a local user that existed before (checks ``W005``/``W006`` warn when loosened).

With ``AUTH_SERVICE_CACHE_URL`` set, the settings overlay adds the alias
:data:`SHARED_CACHE_ALIAS` to ``CACHES`` (Django's built-in ``RedisCache``, needs the ``redis``
package: extra ``rozitech-remote-auth[redis]``) and uses it as the identity cache, whatever
``AUTH_SERVICE_CACHE_ALIAS`` says; :mod:`.breaker` keeps the circuit state in the same Redis.
The URL may carry a password: it is never logged.

Errors: :class:`RemoteAuthConfigError` (an ``ImproperlyConfigured``) naming the offending key.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Callable
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

__all__ = [
    "SETTING_KEYS",
    "SHARED_CACHE_ALIAS",
    "RemoteAuthConfigError",
    "RemoteAuthSettings",
    "add_reset_hook",
    "get_settings",
    "parse_settings",
    "reset",
    "shared_cache_config",
]


class RemoteAuthConfigError(ImproperlyConfigured):
    """An ``AUTH_SERVICE_*`` value is missing or invalid; ``key`` names the setting."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


#: Alias of the Redis cache the overlay defines when ``AUTH_SERVICE_CACHE_URL`` is set.
SHARED_CACHE_ALIAS = "rozitech_remote_auth"


@dataclass(frozen=True)
class RemoteAuthSettings:
    """Parsed, validated settings (units: seconds; ``url`` has no trailing slash)."""

    url: str
    timeout: float = 5.0
    connect_timeout: float = 3.0
    total_timeout: float = 8.0
    cache_ttl: int = 300
    negative_cache_ttl: int = 30
    token_leeway: int = 30
    cache_alias: str = "default"
    cache_url: str | None = dataclasses.field(default=None, repr=False)  # may hold a password
    cache_socket_timeout: float = 0.5
    ca_bundle: str | None = None
    retry_after: int = 5
    breaker_fail_max: int = 5
    breaker_reset_timeout: float = 30.0
    bridge_simplejwt: bool = True
    issuer: str | None = None
    # -- identity linking (users.py): first linking of an existing local user --
    link_by_email: bool = True
    link_require_verified_email: bool = True
    link_privileged: bool = False
    # -- bulkhead, adaptive read timeout, rate-limit-aware caching --
    bulkhead_slots: int = 1
    bulkhead_wait: float = 0.5
    bulkhead_dir: str | None = None
    adaptive_timeout_min: float = 0.5
    ratelimit_low_ratio: float = 0.25
    max_staleness: int = 900

    @property
    def me_url(self) -> str:
        """``{AUTH_SERVICE_URL}/api/auth/me``: the identity endpoint (rule R1)."""
        return f"{self.url}/api/auth/me"


# -- value parsers: (key, raw value) -> typed value, raising RemoteAuthConfigError ---------------

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def _parse_url(key: str, value: Any) -> str:
    if _blank(value):
        raise RemoteAuthConfigError(key, "is required (base URL such as https://auth.rozitech.com)")
    if not isinstance(value, str):
        raise RemoteAuthConfigError(key, f"must be a string URL, got {type(value).__name__}")
    text = value.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https"):
        raise RemoteAuthConfigError(key, f"scheme must be https or http, got {parts.scheme!r}")
    try:
        host = parts.hostname
        _port = parts.port  # raises ValueError on a bad port
    except ValueError as exc:
        raise RemoteAuthConfigError(key, f"invalid host/port ({exc})") from None
    if not host:
        raise RemoteAuthConfigError(key, "has no host")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise RemoteAuthConfigError(key, "must not contain credentials, a query or a fragment")
    return text.rstrip("/")


def _number(key: str, value: Any, *, integer: bool) -> float:
    if isinstance(value, bool):
        raise RemoteAuthConfigError(key, "must be a number, got a boolean")
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise RemoteAuthConfigError(key, f"must be a number, got {value!r}") from None
    else:
        raise RemoteAuthConfigError(key, f"must be a number, got {type(value).__name__}")
    if not math.isfinite(number):
        raise RemoteAuthConfigError(key, "must be finite")
    if integer and number != int(number):
        raise RemoteAuthConfigError(key, f"must be a whole number of seconds/count, got {value!r}")
    return number


def _positive_float(key: str, value: Any) -> float:
    number = _number(key, value, integer=False)
    if number <= 0:
        raise RemoteAuthConfigError(key, f"must be > 0, got {value!r}")
    return number


def _non_negative_float(key: str, value: Any) -> float:
    number = _number(key, value, integer=False)
    if number < 0:
        raise RemoteAuthConfigError(key, f"must be >= 0, got {value!r}")
    return number


def _ratio(key: str, value: Any) -> float:
    number = _number(key, value, integer=False)
    if not 0 <= number <= 1:
        raise RemoteAuthConfigError(key, f"must be between 0 and 1, got {value!r}")
    return number


def _non_negative_int(key: str, value: Any) -> int:
    number = _number(key, value, integer=True)
    if number < 0:
        raise RemoteAuthConfigError(key, f"must be >= 0, got {value!r}")
    return int(number)


def _positive_int(key: str, value: Any) -> int:
    number = _number(key, value, integer=True)
    if number < 1:
        raise RemoteAuthConfigError(key, f"must be >= 1, got {value!r}")
    return int(number)


def _parse_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise RemoteAuthConfigError(
        key, f"must be a boolean (true/false/1/0/yes/no/on/off), got {value!r}"
    )


def _parse_alias(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RemoteAuthConfigError(key, "must be a non-empty cache alias")
    return value.strip()


_REDIS_SCHEMES = ("redis", "rediss", "unix")


def _parse_redis_url(key: str, value: Any) -> str | None:
    if _blank(value):
        return None
    if not isinstance(value, str):
        raise RemoteAuthConfigError(key, f"must be a string URL, got {type(value).__name__}")
    text = value.strip()
    try:
        parts = urlsplit(text)
    except ValueError:  # e.g. an unbalanced "[" in the password
        raise RemoteAuthConfigError(key, "has an invalid host or port") from None
    # The value may hold a password: error messages name the scheme, never the URL.
    if parts.scheme not in _REDIS_SCHEMES:
        raise RemoteAuthConfigError(
            key, f"scheme must be one of {', '.join(_REDIS_SCHEMES)}, got {parts.scheme!r}"
        )
    try:
        _port = parts.port  # raises ValueError on a bad port
        _host = parts.hostname  # raises ValueError on a malformed netloc
    except ValueError:
        raise RemoteAuthConfigError(key, "has an invalid host or port") from None
    if parts.scheme != "unix" and not parts.hostname:
        raise RemoteAuthConfigError(key, "has no host")
    if parts.scheme == "unix" and not parts.path:
        raise RemoteAuthConfigError(key, "has no socket path")
    try:
        from redis.connection import parse_url
    except ImportError:  # E006 names the missing package
        return text
    try:
        parse_url(text)  # the query options redis-py would reject at the first request
    except (ValueError, TypeError):
        raise RemoteAuthConfigError(
            key, "is not a URL redis-py accepts (check its options)"
        ) from None
    return text


def _optional_str(key: str, value: Any) -> str | None:
    if _blank(value):
        return None
    if not isinstance(value, str):
        raise RemoteAuthConfigError(key, f"must be a string, got {type(value).__name__}")
    return value.strip()


_Parser = Callable[[str, Any], Any]

#: (setting / .env key, dataclass field, parser). Keys absent or blank take the field default.
_SPEC: tuple[tuple[str, str, _Parser], ...] = (
    ("AUTH_SERVICE_URL", "url", _parse_url),
    ("AUTH_SERVICE_TIMEOUT", "timeout", _positive_float),
    ("AUTH_SERVICE_CONNECT_TIMEOUT", "connect_timeout", _positive_float),
    ("AUTH_SERVICE_TOTAL_TIMEOUT", "total_timeout", _positive_float),
    ("AUTH_SERVICE_CACHE_TTL", "cache_ttl", _non_negative_int),
    ("AUTH_SERVICE_NEGATIVE_CACHE_TTL", "negative_cache_ttl", _non_negative_int),
    ("AUTH_SERVICE_TOKEN_LEEWAY", "token_leeway", _non_negative_int),
    ("AUTH_SERVICE_CACHE_ALIAS", "cache_alias", _parse_alias),
    ("AUTH_SERVICE_CACHE_URL", "cache_url", _parse_redis_url),
    ("AUTH_SERVICE_CACHE_SOCKET_TIMEOUT", "cache_socket_timeout", _positive_float),
    ("AUTH_SERVICE_CA_BUNDLE", "ca_bundle", _optional_str),
    ("AUTH_SERVICE_RETRY_AFTER", "retry_after", _positive_int),
    ("AUTH_SERVICE_BREAKER_FAIL_MAX", "breaker_fail_max", _positive_int),
    ("AUTH_SERVICE_BREAKER_RESET_TIMEOUT", "breaker_reset_timeout", _positive_float),
    ("AUTH_SERVICE_BRIDGE_SIMPLEJWT", "bridge_simplejwt", _parse_bool),
    ("AUTH_SERVICE_ISSUER", "issuer", _optional_str),
    # -- identity linking --
    ("AUTH_SERVICE_LINK_BY_EMAIL", "link_by_email", _parse_bool),
    ("AUTH_SERVICE_LINK_REQUIRE_VERIFIED_EMAIL", "link_require_verified_email", _parse_bool),
    ("AUTH_SERVICE_LINK_PRIVILEGED", "link_privileged", _parse_bool),
    # -- bulkhead, adaptive read timeout, rate-limit-aware caching --
    ("AUTH_SERVICE_BULKHEAD_SLOTS", "bulkhead_slots", _non_negative_int),
    ("AUTH_SERVICE_BULKHEAD_WAIT", "bulkhead_wait", _non_negative_float),
    ("AUTH_SERVICE_BULKHEAD_DIR", "bulkhead_dir", _optional_str),
    ("AUTH_SERVICE_ADAPTIVE_TIMEOUT_MIN", "adaptive_timeout_min", _non_negative_float),
    ("AUTH_SERVICE_RATELIMIT_LOW_RATIO", "ratelimit_low_ratio", _ratio),
    ("AUTH_SERVICE_MAX_STALENESS", "max_staleness", _non_negative_int),
)

#: Every key this package reads, in documentation order.
SETTING_KEYS: tuple[str, ...] = tuple(key for key, _, _ in _SPEC)

_FIELD_BY_KEY = {key: field for key, field, _ in _SPEC}
_KEY_BY_FIELD = {field: key for key, field, _ in _SPEC}


def parse_settings(raw: Mapping[str, Any]) -> RemoteAuthSettings:
    """Parse ``{AUTH_SERVICE_*: value}`` into :class:`RemoteAuthSettings`.

    Missing or blank values take the defaults (the URL has none).  Raises
    :class:`RemoteAuthConfigError` naming the first invalid key.
    """
    values: dict[str, Any] = {}
    for key, field, parser in _SPEC:
        value = raw.get(key)
        if field != "url" and _blank(value):
            continue
        values[field] = parser(key, value)
    return RemoteAuthSettings(**values)


def shared_cache_config(parsed: RemoteAuthSettings) -> dict[str, Any]:
    """The ``CACHES`` entry for ``AUTH_SERVICE_CACHE_URL``: Django's built-in Redis backend.

    Its ``OPTIONS`` are :func:`.sharedredis.connection_options`: short socket timeouts
    (``AUTH_SERVICE_CACHE_SOCKET_TIMEOUT``), one retry on a connection error, and a connection
    class that remembers an outage, so a Redis outage is a quick cache miss
    (:mod:`rozitech_remote_auth.cache`) instead of a slow request.  Without the ``redis`` package
    (check ``E006`` names it) only the timeouts are set.
    """
    url = parsed.cache_url or ""
    try:
        from .sharedredis import connection_options
    except ImportError:
        options: dict[str, Any] = {
            "socket_connect_timeout": parsed.cache_socket_timeout,
            "socket_timeout": parsed.cache_socket_timeout,
        }
    else:
        options = connection_options(url, parsed.cache_socket_timeout)
    return {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": parsed.cache_url,
        "OPTIONS": options,
    }


def to_setting_values(parsed: RemoteAuthSettings) -> dict[str, Any]:
    """The inverse of :func:`parse_settings`: ``{AUTH_SERVICE_*: typed value}``."""
    return {_KEY_BY_FIELD[f.name]: getattr(parsed, f.name) for f in fields(parsed)}


# -- process-wide view on django.conf.settings --------------------------------------------------

_lock = threading.Lock()
_cached: RemoteAuthSettings | None = None
_reset_hooks: list[Callable[[], None]] = []


def get_settings() -> RemoteAuthSettings:
    """The parsed ``AUTH_SERVICE_*`` Django settings (memoised; reset when settings change)."""
    global _cached
    current = _cached
    if current is not None:
        return current
    from django.conf import settings

    parsed = parse_settings({key: getattr(settings, key, None) for key in SETTING_KEYS})
    with _lock:
        _cached = parsed
    return parsed


def add_reset_hook(hook: Callable[[], None]) -> None:
    """Register ``hook`` to run when the settings are reset (e.g. to rebuild the HTTP client)."""
    if hook not in _reset_hooks:
        _reset_hooks.append(hook)


def reset() -> None:
    """Forget the memoised settings and run the reset hooks."""
    global _cached
    with _lock:
        _cached = None
    for hook in list(_reset_hooks):
        hook()


def _on_setting_changed(*, setting: str, **_: Any) -> None:
    if setting in _FIELD_BY_KEY or setting == "CACHES":
        reset()


def _connect_signal() -> None:
    from django.core.signals import setting_changed

    setting_changed.connect(_on_setting_changed, dispatch_uid="rozitech_remote_auth.conf")


_connect_signal()
