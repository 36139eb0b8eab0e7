"""URLs of the patch: ``metrics/`` → :func:`rozitech_remote_auth.views.metrics_view`.

Mount with ``path("", include("rozitech_remote_auth.urls"))`` or let the overlay do it
(``REMOTE_AUTH_MOUNT_METRICS=true``, see :mod:`rozitech_remote_auth.root_urls`).
"""

from django.urls import path

from .views import metrics_view

app_name = "rozitech_remote_auth"

urlpatterns = [
    path("metrics/", metrics_view, name="metrics"),
]
