"""Django app config: registers the system checks, installs the simplejwt bridge and, when
drf-spectacular is installed, its authentication extension (:mod:`.spectacular`)."""

from __future__ import annotations

import importlib.util
import logging

from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger("rozitech_remote_auth")


class RemoteAuthConfig(AppConfig):
    """``rozitech_remote_auth``: added to ``INSTALLED_APPS`` by the settings overlay."""

    name = "rozitech_remote_auth"
    verbose_name = "Rozitech remote authentication"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        """Register checks; bridge simplejwt when ``AUTH_SERVICE_BRIDGE_SIMPLEJWT`` is true.

        With invalid settings no bridge is installed and the system checks report the error
        (``rozitech_remote_auth.E001``/``E002``).
        """
        from . import bridge, checks  # noqa: F401 - registration side effects
        from .conf import get_settings

        if importlib.util.find_spec("drf_spectacular") is not None:
            from . import spectacular  # noqa: F401 - registers the OpenAPI auth extension

        try:
            enabled = get_settings().bridge_simplejwt
        except ImproperlyConfigured as exc:
            logger.error("remote auth settings invalid, simplejwt bridge not installed: %s", exc)
            return
        if enabled:
            bridge.install()
