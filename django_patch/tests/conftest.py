from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import caches
from django.test import Client

from rozitech_remote_auth import breaker, bridge, conf, ratelimit, sharedredis
from rozitech_remote_auth import cache as identity_cache
from tests.support import Upstream


@pytest.fixture(autouse=True)
def _isolation(settings: Any, tmp_path: Any) -> Iterator[None]:
    """Fresh settings memo, client (session + closed breaker), cache and bulkhead directory (with
    the shared latency estimate) for every test."""
    settings.AUTH_SERVICE_BULKHEAD_DIR = str(tmp_path / "bulkhead")
    caches["default"].clear()
    conf.reset()
    bridge.install()
    identity_cache._skip_until = 0.0
    breaker._refreshed_at = 0.0
    ratelimit._last = None
    sharedredis.reset()
    yield
    conf.reset()
    caches["default"].clear()


@pytest.fixture
def upstream(settings: Any) -> Iterator[Upstream]:
    server = Upstream().start()
    settings.AUTH_SERVICE_URL = server.url
    yield server
    server.stop()


@pytest.fixture
def client() -> Client:
    return Client()
