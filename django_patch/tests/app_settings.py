"""A base settings module shaped like the target app's ``config.settings.quickstart``.

It hard-codes ``REST_FRAMEWORK`` (simplejwt + session) and does not read ``.env`` (R3 in docs/architecture.md).
"""

import os
import tempfile

SECRET_KEY = "fixture-app-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
INSTALLED_APPS = (
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "rest_framework",
    "rest_framework_simplejwt",
)
ROOT_URLCONF = "tests.urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(tempfile.gettempdir(), "rozitech_remote_auth_fixture_app.sqlite3"),
    }
}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": (
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ),
}
AUTH_SERVICE_TIMEOUT = 7  # an earlier attempt's leftover: .env / environment override it
