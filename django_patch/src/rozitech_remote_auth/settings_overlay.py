"""Settings overlay: ``DJANGO_SETTINGS_MODULE=rozitech_remote_auth.settings_overlay``.

Wraps the app's own settings module without editing it (R16 in docs/architecture.md).

Environment (set by the systemd drop-in):

* ``REMOTE_AUTH_BASE_SETTINGS_MODULE`` (required): the app's settings module, e.g.
  ``config.settings.quickstart``;
* ``REMOTE_AUTH_ENV_FILE`` (default ``.env`` in the current directory): file to read the
  ``AUTH_SERVICE_*`` keys from;
* ``REMOTE_AUTH_MOUNT_METRICS`` (optional, default false): when true, ``ROOT_URLCONF`` becomes
  :mod:`rozitech_remote_auth.root_urls` (the app's URLs, then ``metrics/``).

Steps, in order:

1. import the base module and copy its upper-case names into this module;
2. read **only** the keys of :data:`rozitech_remote_auth.conf.SETTING_KEYS`: from ``os.environ``
   first, then the env file (``dotenv_values``: the file is parsed, never loaded into
   ``os.environ``), then the base module; parse them with :func:`~.conf.parse_settings`
   (``ImproperlyConfigured`` naming the key on invalid values or a missing
   ``AUTH_SERVICE_URL``) and set them as settings;
3. put ``rozitech_remote_auth.authentication.RemoteJWTAuthentication`` first in
   ``REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]`` (exactly once);
4. append ``rozitech_remote_auth`` to ``INSTALLED_APPS`` (once);
5. when ``AUTH_SERVICE_CACHE_URL`` is set: add the Redis cache
   :data:`~.conf.SHARED_CACHE_ALIAS` to ``CACHES`` (:func:`~.conf.shared_cache_config`) and point
   ``AUTH_SERVICE_CACHE_ALIAS`` at it.

The base module's objects are copied, never mutated.
"""

from __future__ import annotations

import copy
import importlib
import os
from typing import Any

from django.conf import global_settings
from django.core.exceptions import ImproperlyConfigured
from dotenv import dotenv_values

from rozitech_remote_auth.conf import (
    SETTING_KEYS,
    SHARED_CACHE_ALIAS,
    parse_settings,
    shared_cache_config,
    to_setting_values,
)

_AUTH_CLASS = "rozitech_remote_auth.authentication.RemoteJWTAuthentication"
_APP = "rozitech_remote_auth"
_APP_ENTRIES = (_APP, "rozitech_remote_auth.apps.RemoteAuthConfig")
#: DRF's own default when a project does not set DEFAULT_AUTHENTICATION_CLASSES.
_DRF_DEFAULT_AUTH = (
    "rest_framework.authentication.SessionAuthentication",
    "rest_framework.authentication.BasicAuthentication",
)
_TRUE = {"1", "true", "yes", "on"}


def _base_module_name() -> str:
    name = os.environ.get("REMOTE_AUTH_BASE_SETTINGS_MODULE", "").strip()
    if not name:
        raise ImproperlyConfigured(
            "REMOTE_AUTH_BASE_SETTINGS_MODULE is not set: it must name the app's own settings "
            "module (e.g. config.settings.quickstart) when DJANGO_SETTINGS_MODULE is "
            "rozitech_remote_auth.settings_overlay."
        )
    if name == __name__:
        raise ImproperlyConfigured(
            "REMOTE_AUTH_BASE_SETTINGS_MODULE must name the app's settings module, not the overlay."
        )
    return name


def _read_keys(base: dict[str, Any]) -> dict[str, Any]:
    env_file = os.environ.get("REMOTE_AUTH_ENV_FILE", "").strip() or ".env"
    from_file = dotenv_values(env_file) if os.path.isfile(env_file) else {}
    raw: dict[str, Any] = {}
    for key in SETTING_KEYS:
        if key in os.environ:
            raw[key] = os.environ[key]
        elif from_file.get(key) is not None:
            raw[key] = from_file[key]
        elif key in base:
            raw[key] = base[key]
    return raw


def _with_auth_class_first(rest_framework: Any) -> dict[str, Any]:
    config = dict(rest_framework or {})
    classes = config.get("DEFAULT_AUTHENTICATION_CLASSES", _DRF_DEFAULT_AUTH)
    merged = [_AUTH_CLASS, *(entry for entry in classes if entry != _AUTH_CLASS)]
    config["DEFAULT_AUTHENTICATION_CLASSES"] = (
        tuple(merged) if isinstance(classes, tuple) else merged
    )
    return config


def _with_app(installed_apps: Any) -> Any:
    apps = list(installed_apps or [])
    if not any(entry in _APP_ENTRIES for entry in apps):
        apps.append(_APP)
    return tuple(apps) if isinstance(installed_apps, tuple) else apps


def build(base_module_name: str) -> dict[str, Any]:
    """The overlay's settings for ``base_module_name`` (upper-case names only)."""
    module = importlib.import_module(base_module_name)
    values = {name: getattr(module, name) for name in dir(module) if name.isupper()}
    parsed = parse_settings(_read_keys(values))
    values.update(to_setting_values(parsed))
    if parsed.cache_url:
        # An app without CACHES runs on Django's default ("default": LocMem): keep it.
        base_caches = values.get("CACHES") or copy.deepcopy(global_settings.CACHES)
        values["CACHES"] = {**base_caches, SHARED_CACHE_ALIAS: shared_cache_config(parsed)}
        values["AUTH_SERVICE_CACHE_ALIAS"] = SHARED_CACHE_ALIAS
    values["REST_FRAMEWORK"] = _with_auth_class_first(values.get("REST_FRAMEWORK"))
    values["INSTALLED_APPS"] = _with_app(values.get("INSTALLED_APPS"))
    values["REMOTE_AUTH_BASE_SETTINGS_MODULE"] = base_module_name
    if os.environ.get("REMOTE_AUTH_MOUNT_METRICS", "").strip().lower() in _TRUE:
        values["REMOTE_AUTH_BASE_ROOT_URLCONF"] = values.get("ROOT_URLCONF")
        values["ROOT_URLCONF"] = "rozitech_remote_auth.root_urls"
    return values


globals().update(build(_base_module_name()))
