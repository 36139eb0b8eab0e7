"""System checks: ids, conditions, deploy-only warnings."""

from __future__ import annotations

import sys

import pytest
from django.core.checks import run_checks

from rozitech_remote_auth.checks import check_deploy, check_settings


def ids(messages):
    return sorted(message.id for message in messages)


def test_test_settings_are_clean():
    assert check_settings() == []


def test_checks_are_registered_with_django():
    found = ids(run_checks(include_deployment_checks=True))
    assert not [i for i in found if i.startswith("rozitech_remote_auth.E")]
    assert "rozitech_remote_auth.W001" in found  # the test URL is http://


@pytest.mark.parametrize("url", [None, "", "ftp://auth.example.com", "https://"])
def test_bad_url_is_e002(settings, url):
    settings.AUTH_SERVICE_URL = url
    assert ids(check_settings()) == ["rozitech_remote_auth.E002"]
    assert check_deploy() == []


def test_unparseable_value_is_e001_naming_the_key(settings):
    settings.AUTH_SERVICE_CACHE_TTL = "forever"
    messages = check_settings()
    assert ids(messages) == ["rozitech_remote_auth.E001"]
    assert "AUTH_SERVICE_CACHE_TTL" in messages[0].msg
    assert messages[0].hint


@pytest.mark.parametrize(
    ("connect", "read", "total"),
    [(5, 2, 8), (3, 9, 8), (3, 5, 61), (3, 120, 120)],
)
def test_timeouts_out_of_bounds_are_e003(settings, connect, read, total):
    settings.AUTH_SERVICE_CONNECT_TIMEOUT = connect
    settings.AUTH_SERVICE_TIMEOUT = read
    settings.AUTH_SERVICE_TOTAL_TIMEOUT = total
    assert ids(check_settings()) == ["rozitech_remote_auth.E003"]


def test_sane_production_timeouts_pass(settings):
    settings.AUTH_SERVICE_CONNECT_TIMEOUT = 3
    settings.AUTH_SERVICE_TIMEOUT = 5
    settings.AUTH_SERVICE_TOTAL_TIMEOUT = 8
    assert check_settings() == []


def test_unknown_cache_alias_is_e004(settings):
    settings.AUTH_SERVICE_CACHE_ALIAS = "redis"
    messages = check_settings()
    assert ids(messages) == ["rozitech_remote_auth.E004"]
    assert "default" in messages[0].hint


def test_cache_url_without_the_redis_package_is_e006(settings, monkeypatch):
    settings.AUTH_SERVICE_CACHE_URL = "redis://cache:6379/0"
    assert check_settings() == []  # redis is installed in the test venv
    monkeypatch.setitem(sys.modules, "redis", None)  # import redis now raises ImportError
    messages = check_settings()
    assert ids(messages) == ["rozitech_remote_auth.E006"]
    assert "rozitech-remote-auth[redis]" in messages[0].hint


def test_missing_ca_bundle_is_e005(settings, tmp_path):
    settings.AUTH_SERVICE_CA_BUNDLE = str(tmp_path / "missing.pem")
    assert ids(check_settings()) == ["rozitech_remote_auth.E005"]
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    settings.AUTH_SERVICE_CA_BUNDLE = str(bundle)
    assert check_settings() == []


def test_http_url_warns_only_under_deploy(settings):
    settings.AUTH_SERVICE_URL = "http://auth.rozitech.com"
    assert check_settings() == []
    assert ids(check_deploy()) == ["rozitech_remote_auth.W001"]
    settings.AUTH_SERVICE_URL = "https://auth.rozitech.com"
    assert check_deploy() == []


def test_dummy_cache_warns_under_deploy(settings):
    settings.AUTH_SERVICE_URL = "https://auth.rozitech.com"
    settings.CACHES = {
        **settings.CACHES,
        "dummy": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"},
    }
    settings.AUTH_SERVICE_CACHE_ALIAS = "dummy"
    assert ids(check_deploy()) == ["rozitech_remote_auth.W002"]


def test_inert_patch_warns(settings):
    settings.REST_FRAMEWORK = {"DEFAULT_AUTHENTICATION_CLASSES": []}
    settings.AUTH_SERVICE_BRIDGE_SIMPLEJWT = False
    assert ids(check_settings()) == ["rozitech_remote_auth.W003"]


def test_url_with_api_suffix_warns(settings):
    settings.AUTH_SERVICE_URL = "https://auth.rozitech.com/api/"
    assert ids(check_settings()) == ["rozitech_remote_auth.W004"]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"AUTH_SERVICE_LINK_PRIVILEGED": "true"}, ["rozitech_remote_auth.W005"]),
        ({"AUTH_SERVICE_LINK_REQUIRE_VERIFIED_EMAIL": "false"}, ["rozitech_remote_auth.W006"]),
        (
            {"AUTH_SERVICE_LINK_BY_EMAIL": "false", "AUTH_SERVICE_LINK_PRIVILEGED": "true"},
            [],  # no linking by e-mail at all: nothing to loosen
        ),
        ({"AUTH_SERVICE_LINK_PRIVILEGED": "maybe"}, ["rozitech_remote_auth.E001"]),
    ],
)
def test_loosened_linking_policy_warns(settings, overrides, expected):
    for key, value in overrides.items():
        setattr(settings, key, value)
    assert ids(check_settings()) == expected
