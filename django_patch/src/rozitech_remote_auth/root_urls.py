"""``ROOT_URLCONF`` used by the overlay with ``REMOTE_AUTH_MOUNT_METRICS=true``.

The app's own URLconf (``settings.REMOTE_AUTH_BASE_ROOT_URLCONF``) comes first, so its routes
win; then :mod:`rozitech_remote_auth.urls` (``metrics/``).  The app's ``handler400/403/404/500``
are carried over.  No app file is edited.
"""

from __future__ import annotations

from importlib import import_module

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.urls import include, path

_base_name = getattr(settings, "REMOTE_AUTH_BASE_ROOT_URLCONF", None)
if not _base_name:
    raise ImproperlyConfigured("REMOTE_AUTH_BASE_ROOT_URLCONF is not set (the app's ROOT_URLCONF).")
_base = import_module(_base_name)

for _handler in ("handler400", "handler403", "handler404", "handler500"):
    if hasattr(_base, _handler):
        globals()[_handler] = getattr(_base, _handler)

urlpatterns = [
    path("", include(_base_name)),
    path("", include("rozitech_remote_auth.urls")),
]
