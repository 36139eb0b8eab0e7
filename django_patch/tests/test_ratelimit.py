"""Rate-limit-aware caching: the auth server's budget from every answer, stale identities served
(bounded) while it is low."""

from __future__ import annotations

import time

import pytest
from django.test import Client

from rozitech_remote_auth import ratelimit
from rozitech_remote_auth.conf import RemoteAuthConfigError, parse_settings
from rozitech_remote_auth.ratelimit import Budget, parse_budget
from tests.support import bearer, make_token, sample

pytestmark = pytest.mark.django_db

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (
            {"RateLimit-Limit": "150", "RateLimit-Remaining": "42", "RateLimit-Reset": "600"},
            Budget(150, 42, 600),
        ),
        ({"RateLimit": "limit=150, remaining=7, reset=30"}, Budget(150, 7, 30)),
        (
            {"RateLimit": '"default";r=12;t=90', "RateLimit-Policy": '"default";q=150;w=900'},
            Budget(150, 12, 90),
        ),
        (
            {
                "X-RateLimit-Limit": "150",
                "X-RateLimit-Remaining": "3",
                "X-RateLimit-Reset": str(int(NOW) + 120),
            },
            Budget(150, 3, 120),
        ),
        ({"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "200"}, Budget(100, 100, 0)),
        ({"Content-Type": "application/json"}, None),
        ({"RateLimit-Limit": "many", "RateLimit-Remaining": "1"}, None),
    ],
)
def test_budget_header_forms(headers, expected):
    assert parse_budget(headers, 200, now=NOW) == expected


def test_429_without_budget_headers_is_an_empty_budget_until_retry_after():
    assert parse_budget({"Retry-After": "45"}, 429, now=NOW) == Budget(0, 0, 45)


def budget(remaining: int, limit: int = 150, reset: int = 600) -> dict[str, str]:
    return {
        "RateLimit-Limit": str(limit),
        "RateLimit-Remaining": str(remaining),
        "RateLimit-Reset": str(reset),
    }


def test_every_answer_publishes_the_budget(client, upstream):
    upstream.headers = budget(97)
    assert (
        client.get("/api/default/", **bearer(make_token("u-1", "a@example.com"))).status_code == 200
    )
    assert sample("rozitech_remote_auth_upstream_ratelimit_remaining") == 97
    assert sample("rozitech_remote_auth_upstream_ratelimit_limit") == 150
    assert sample("rozitech_remote_auth_upstream_ratelimit_reset_seconds") == 600
    upstream.headers = budget(0)
    bad = make_token("u-2", "b@example.com", secret="another-secret-0123456789-abcdef")
    assert client.get("/api/default/", **bearer(bad)).status_code == 401  # 401s carry it too
    assert sample("rozitech_remote_auth_upstream_ratelimit_remaining") == 0


def test_stale_identities_are_served_only_while_the_budget_is_low(client, upstream, settings):
    settings.AUTH_SERVICE_CACHE_TTL = 1
    settings.AUTH_SERVICE_MAX_STALENESS = 60
    token = make_token("u-1", "a@example.com")
    upstream.headers = budget(100)  # plenty left
    assert client.get("/api/default/", **bearer(token)).status_code == 200
    time.sleep(1.1)  # past AUTH_SERVICE_CACHE_TTL
    assert client.get("/api/default/", **bearer(token)).status_code == 200
    assert upstream.calls == 2  # verified again: the budget allows it

    upstream.headers = budget(30)  # 30 of 150 = 0.2 <= 0.25: low
    other = make_token("u-2", "b@example.com")
    assert client.get("/api/default/", **bearer(other)).status_code == 200  # sees the low budget
    time.sleep(1.1)
    stale_before = sample("rozitech_remote_auth_stale_hits_total")
    for _ in range(3):
        assert client.get("/api/default/", **bearer(token)).status_code == 200
    assert upstream.calls == 3  # the stale identity served, no call
    assert sample("rozitech_remote_auth_stale_hits_total") == stale_before + 3


def test_staleness_is_bounded_by_the_setting(client, upstream, settings):
    settings.AUTH_SERVICE_CACHE_TTL = 1
    settings.AUTH_SERVICE_MAX_STALENESS = 2
    upstream.headers = budget(0)
    token = make_token("u-1", "a@example.com")
    assert client.get("/api/default/", **bearer(token)).status_code == 200
    time.sleep(1.2)
    assert client.get("/api/default/", **bearer(token)).status_code == 200
    assert upstream.calls == 1  # stale, served
    time.sleep(1.0)  # past the 2-s maximum staleness: the entry is gone
    assert client.get("/api/default/", **bearer(token)).status_code == 200
    assert upstream.calls == 2


def test_staleness_never_outlives_the_token(client, upstream, settings):
    settings.AUTH_SERVICE_CACHE_TTL = 300
    settings.AUTH_SERVICE_MAX_STALENESS = 900
    upstream.headers = budget(0)
    token = make_token("u-1", "a@example.com", exp_in=32)  # leeway 30 s: cached for ~2 s
    assert client.get("/api/default/", **bearer(token)).status_code == 200
    time.sleep(2.2)
    assert client.get("/api/default/", **bearer(token)).status_code == 200
    assert upstream.calls == 2


def test_budget_window_reset_ends_the_low_state(upstream, settings):
    upstream.headers = budget(1, reset=1)
    assert Client().get("/api/default/", **bearer(make_token("u-1", "a@x.com"))).status_code == 200
    assert ratelimit.budget_low("default", 0.25)
    time.sleep(1.1)
    assert not ratelimit.budget_low("default", 0.25)


@pytest.mark.parametrize(
    ("key", "value"),
    [("AUTH_SERVICE_RATELIMIT_LOW_RATIO", "1.5"), ("AUTH_SERVICE_MAX_STALENESS", "-1")],
)
def test_bad_ratelimit_settings_name_the_key(key, value):
    with pytest.raises(RemoteAuthConfigError) as raised:
        parse_settings({"AUTH_SERVICE_URL": "https://auth.example.com", key: value})
    assert raised.value.key == key
