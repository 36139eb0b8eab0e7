"""pytest-django settings for the rozitech-remote-auth test suite (short timeouts).

Two environment variables switch what the identity tests run against (``tests/test_backends.py``
runs them in subprocesses so ``make test`` covers every combination):

* ``ROZITECH_TEST_POSTGRES``: ``host:port`` of a PostgreSQL the harness started (``tests/pg.py``);
  default: a file-backed SQLite database;
* ``ROZITECH_TEST_USER_MODEL=custom``: ``AUTH_USER_MODEL`` is ``customuser.EmailUser`` (e-mail as
  the username, 64-character e-mail, 20-character names); default: ``auth.User``.
"""

import os
import tempfile

SECRET_KEY = "test-only-secret-key-for-simplejwt-signing-0123456789abcdef"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost"]
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "rest_framework",
    "rozitech_remote_auth",
]
MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
]
ROOT_URLCONF = "tests.urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(tempfile.gettempdir(), "rozitech_remote_auth_tests.sqlite3"),
        # a file, not shared-cache memory: the concurrency tests write from threads
        "TEST": {
            "NAME": os.path.join(
                tempfile.gettempdir(), f"rozitech_remote_auth_test_{os.getpid()}.sqlite3"
            )
        },
        "OPTIONS": {"timeout": 20},
    }
}
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "broken": {"BACKEND": "tests.support.BrokenCache"},
}
if os.environ.get("ROZITECH_TEST_POSTGRES"):
    _host, _, _port = os.environ["ROZITECH_TEST_POSTGRES"].rpartition(":")
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "rozitech",
            "USER": "rozitech",
            "HOST": _host,
            "PORT": _port,
        }
    }
if os.environ.get("ROZITECH_TEST_USER_MODEL") == "custom":
    INSTALLED_APPS.append("tests.customuser")
    AUTH_USER_MODEL = "customuser.EmailUser"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rozitech_remote_auth.authentication.RemoteJWTAuthentication",
        "rest_framework_simplejwt.authentication.JWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "UNAUTHENTICATED_USER": None,
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

AUTH_SERVICE_URL = "http://127.0.0.1:9"  # replaced by the `upstream` fixture
AUTH_SERVICE_CONNECT_TIMEOUT = 0.5
AUTH_SERVICE_TIMEOUT = 0.5
AUTH_SERVICE_TOTAL_TIMEOUT = 1.0
AUTH_SERVICE_BREAKER_FAIL_MAX = 3
AUTH_SERVICE_BREAKER_RESET_TIMEOUT = 0.5
AUTH_SERVICE_RETRY_AFTER = 5
AUTH_SERVICE_ISSUER = ""
LOGGING_CONFIG = None
