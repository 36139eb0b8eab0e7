"""The reversible simplejwt bridge."""

from __future__ import annotations

import pytest
from rest_framework_simplejwt.authentication import JWTAuthentication

from rozitech_remote_auth import bridge
from tests.support import bearer, make_token

pytestmark = pytest.mark.django_db


def test_install_is_idempotent_and_reversible():
    assert bridge.is_installed()
    patched = JWTAuthentication.authenticate
    assert bridge.install() is True
    assert JWTAuthentication.authenticate is patched  # not wrapped twice
    original = patched.__wrapped__
    assert bridge.uninstall() is True
    assert JWTAuthentication.authenticate is original
    assert not bridge.is_installed()
    assert bridge.uninstall() is False
    bridge.install()


def test_pinned_view_without_bridge_rejects_remote_tokens(client, upstream):
    token = make_token("u-1", "a@example.com")
    bridge.uninstall()
    try:
        assert client.get("/api/auth/verify", **bearer(token)).status_code == 401
        assert upstream.calls == 0
    finally:
        bridge.install()
    assert client.get("/api/auth/verify", **bearer(token)).status_code == 200


def test_ready_respects_the_setting(settings):
    from django.apps import apps

    bridge.uninstall()
    settings.AUTH_SERVICE_BRIDGE_SIMPLEJWT = False
    apps.get_app_config("rozitech_remote_auth").ready()
    assert not bridge.is_installed()
    settings.AUTH_SERVICE_BRIDGE_SIMPLEJWT = True
    apps.get_app_config("rozitech_remote_auth").ready()
    assert bridge.is_installed()


def test_ready_with_invalid_settings_does_not_bridge(settings):
    from django.apps import apps

    bridge.uninstall()
    settings.AUTH_SERVICE_URL = None
    apps.get_app_config("rozitech_remote_auth").ready()
    assert not bridge.is_installed()
