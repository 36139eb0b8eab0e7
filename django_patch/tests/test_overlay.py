"""The settings overlay (DJANGO_SETTINGS_MODULE=rozitech_remote_auth.settings_overlay)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from rozitech_remote_auth.conf import SETTING_KEYS
from tests.support import OVERLAY, load_overlay

AUTH_CLASS = "rozitech_remote_auth.authentication.RemoteJWTAuthentication"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def overlay_env(monkeypatch, tmp_path):
    for key in (*SETTING_KEYS, "REMOTE_AUTH_MOUNT_METRICS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("REMOTE_AUTH_BASE_SETTINGS_MODULE", "tests.app_settings")
    env_file = tmp_path / ".env"
    env_file.write_text(
        "SECRET_KEY=from-dotenv-must-not-leak\n"
        "DATABASE_URL=postgres://nope\n"
        "AUTH_SERVICE_URL=https://auth.rozitech.com/\n"
        "AUTH_SERVICE_CACHE_TTL=120\n"
        "AUTH_SERVICE_BRIDGE_SIMPLEJWT=false\n"
    )
    monkeypatch.setenv("REMOTE_AUTH_ENV_FILE", str(env_file))
    return env_file


def test_overlay_wraps_base_settings(overlay_env):
    module = load_overlay()
    classes = module.REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]
    assert classes == (
        AUTH_CLASS,
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    )
    assert module.INSTALLED_APPS[-1] == "rozitech_remote_auth"
    assert module.INSTALLED_APPS.count("rozitech_remote_auth") == 1
    assert module.AUTH_SERVICE_URL == "https://auth.rozitech.com"
    assert module.AUTH_SERVICE_CACHE_TTL == 120
    assert module.AUTH_SERVICE_BRIDGE_SIMPLEJWT is False
    assert module.AUTH_SERVICE_TIMEOUT == 7.0  # base module value, nothing overrides it
    assert module.AUTH_SERVICE_CONNECT_TIMEOUT == 3.0  # default
    assert module.SECRET_KEY.startswith("fixture-app-secret")  # .env SECRET_KEY ignored
    assert "DATABASE_URL" not in os.environ
    assert os.environ.get("SECRET_KEY") != "from-dotenv-must-not-leak"
    assert os.environ.get("AUTH_SERVICE_URL") is None  # the file is not loaded into os.environ


def test_base_module_is_not_mutated(overlay_env):
    import tests.app_settings as base

    load_overlay()
    assert AUTH_CLASS not in base.REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]
    assert "rozitech_remote_auth" not in base.INSTALLED_APPS


def test_environment_wins_over_env_file(overlay_env, monkeypatch):
    monkeypatch.setenv("AUTH_SERVICE_URL", "https://other.example.com")
    monkeypatch.setenv("AUTH_SERVICE_TIMEOUT", "4")
    module = load_overlay()
    assert module.AUTH_SERVICE_URL == "https://other.example.com"
    assert module.AUTH_SERVICE_TIMEOUT == 4.0


def test_class_inserted_once_and_moved_first(overlay_env, monkeypatch, tmp_path):
    base = tmp_path / "twice_settings.py"
    base.write_text(
        "from tests.app_settings import *  # noqa\n"
        "REST_FRAMEWORK = {'DEFAULT_AUTHENTICATION_CLASSES': ["
        "'rest_framework.authentication.SessionAuthentication', "
        f"'{AUTH_CLASS}']}}\n"
        "INSTALLED_APPS = ['rest_framework', 'rozitech_remote_auth']\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("REMOTE_AUTH_BASE_SETTINGS_MODULE", "twice_settings")
    module = load_overlay()
    assert module.REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"] == [
        AUTH_CLASS,
        "rest_framework.authentication.SessionAuthentication",
    ]
    assert module.INSTALLED_APPS == ["rest_framework", "rozitech_remote_auth"]


def test_missing_rest_framework_gets_drf_defaults_after_ours(overlay_env, monkeypatch, tmp_path):
    (tmp_path / "bare_settings.py").write_text("INSTALLED_APPS = []\nSECRET_KEY = 'x'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("REMOTE_AUTH_BASE_SETTINGS_MODULE", "bare_settings")
    module = load_overlay()
    assert module.REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"][0] == AUTH_CLASS
    assert len(module.REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]) == 3


def test_missing_base_module_variable_is_a_clear_error(overlay_env, monkeypatch):
    monkeypatch.delenv("REMOTE_AUTH_BASE_SETTINGS_MODULE")
    with pytest.raises(ImproperlyConfigured, match="REMOTE_AUTH_BASE_SETTINGS_MODULE"):
        load_overlay()


def test_missing_url_names_the_key(overlay_env):
    overlay_env.write_text("AUTH_SERVICE_TIMEOUT=5\n")
    with pytest.raises(ImproperlyConfigured, match="AUTH_SERVICE_URL"):
        load_overlay()


def test_invalid_value_names_the_key(overlay_env):
    overlay_env.write_text("AUTH_SERVICE_URL=https://a.example\nAUTH_SERVICE_CACHE_TTL=soon\n")
    with pytest.raises(ImproperlyConfigured, match="AUTH_SERVICE_CACHE_TTL"):
        load_overlay()


def test_env_file_defaults_to_dot_env_in_cwd(overlay_env, monkeypatch, tmp_path):
    monkeypatch.delenv("REMOTE_AUTH_ENV_FILE")
    monkeypatch.chdir(tmp_path)  # overlay_env wrote tmp_path/.env
    assert load_overlay().AUTH_SERVICE_URL == "https://auth.rozitech.com"


def test_mount_metrics_is_opt_in(overlay_env, monkeypatch):
    assert load_overlay().ROOT_URLCONF == "tests.urls"
    monkeypatch.setenv("REMOTE_AUTH_MOUNT_METRICS", "true")
    module = load_overlay()
    assert module.ROOT_URLCONF == "rozitech_remote_auth.root_urls"
    assert module.REMOTE_AUTH_BASE_ROOT_URLCONF == "tests.urls"


# -- real processes: the overlay as DJANGO_SETTINGS_MODULE ------------------------------------

PROBE = """
import django
django.setup()
from django.conf import settings
from rest_framework_simplejwt.authentication import JWTAuthentication
print("bridge", getattr(JWTAuthentication.authenticate, "__rozitech_bridge__", False))
print("apps", "rozitech_remote_auth" in settings.INSTALLED_APPS)
print("first", settings.REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"][0])
"""


def run(
    settings_module: str, tmp_path: Path, *args: str, env_file: str = ""
) -> subprocess.CompletedProcess:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AUTH_SERVICE_", "REMOTE_AUTH_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE=settings_module,
        REMOTE_AUTH_BASE_SETTINGS_MODULE="tests.app_settings",
        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
    )
    if env_file:
        env["REMOTE_AUTH_ENV_FILE"] = env_file
    return subprocess.run(
        [sys.executable, *args],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_process_with_overlay_is_bridged_and_passes_checks(tmp_path):
    (tmp_path / ".env").write_text("AUTH_SERVICE_URL=https://auth.rozitech.com\n")
    probe = run(OVERLAY, tmp_path, "-c", PROBE)
    assert probe.returncode == 0, probe.stderr
    assert "bridge True" in probe.stdout
    assert "apps True" in probe.stdout
    assert f"first {AUTH_CLASS}" in probe.stdout
    check = run(OVERLAY, tmp_path, "-m", "django", "check", "--deploy", "--fail-level", "ERROR")
    assert check.returncode == 0, check.stderr
    assert "rozitech_remote_auth.E" not in check.stdout + check.stderr


def test_process_without_overlay_is_not_patched(tmp_path):
    """After rollback (base settings module again) nothing is bridged."""
    probe = run("tests.app_settings", tmp_path, "-c", PROBE)
    assert probe.returncode == 0, probe.stderr
    assert "bridge False" in probe.stdout
    assert "apps False" in probe.stdout


def test_process_with_http_url_warns_under_deploy(tmp_path):
    (tmp_path / ".env").write_text("AUTH_SERVICE_URL=http://auth.internal\n")
    check = run(OVERLAY, tmp_path, "-m", "django", "check", "--deploy")
    assert "rozitech_remote_auth.W001" in check.stdout + check.stderr


def test_root_urls_mounts_metrics_after_app_routes(client, settings):
    import sys

    sys.modules.pop("rozitech_remote_auth.root_urls", None)
    settings.REMOTE_AUTH_BASE_ROOT_URLCONF = "tests.app_urls"
    settings.ROOT_URLCONF = "rozitech_remote_auth.root_urls"
    try:
        assert client.get("/metrics/").status_code == 200
        assert client.get("/api/auth/verify").status_code == 401  # the app's route, reached
        from django.urls import get_resolver

        assert get_resolver().resolve_error_handler(404).__name__ == "not_found"
    finally:
        sys.modules.pop("rozitech_remote_auth.root_urls", None)
