"""Auth-server trouble: 503 + Retry-After (never 401), deadline, retry, circuit breaker, caches."""

from __future__ import annotations

import time

import pytest
from django.core.cache import caches

from rozitech_remote_auth.client import get_client
from rozitech_remote_auth.tokens import cache_key
from tests.support import bearer, failures, free_port, make_token, sample

pytestmark = pytest.mark.django_db


def assert_503(response, retry_after: str | tuple[str, ...] = "5") -> None:
    """503 + ``Retry-After``: the setting (5) on an outage; with the circuit open, the seconds to
    the trial call (the test settings' reset timeout is 0.5 s: "1")."""
    assert response.status_code == 503, response.content
    expected = (retry_after,) if isinstance(retry_after, str) else retry_after
    assert response["Retry-After"] in expected
    assert "WWW-Authenticate" not in response


def test_connection_refused_is_503(client, settings):
    settings.AUTH_SERVICE_URL = f"http://127.0.0.1:{free_port()}"
    before = failures("unavailable")
    assert_503(client.get("/api/default/", **bearer(make_token("u-1", "a@example.com"))))
    assert failures("unavailable") == before + 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_upstream_5xx_is_503(client, upstream, status):
    upstream.respond(status, {"success": False, "message": "down"})
    assert_503(client.get("/api/default/", **bearer(make_token("u-1", "a@example.com"))))
    assert (
        client.get("/api/default/", **bearer(make_token("u-1", "a@example.com"))).status_code == 503
    )
    assert upstream.calls == 2  # nothing cached


def test_upstream_503_retry_after_is_passed_on(client, upstream):
    upstream.respond(503, {"success": False}, {"Retry-After": "12"})
    assert_503(client.get("/api/default/", **bearer(make_token("u-1", "a@example.com"))), "12")


def test_upstream_not_answering_is_503_within_total_deadline(client, upstream):
    upstream.hang()
    before = failures("timeout")
    started = time.monotonic()
    assert_503(client.get("/api/default/", **bearer(make_token("u-1", "a@example.com"))))
    assert time.monotonic() - started < 1.0 + 0.3  # AUTH_SERVICE_TOTAL_TIMEOUT = 1.0 in tests
    assert failures("timeout") == before + 1


def test_outage_keeps_cached_identities_of_other_users_working(client, upstream):
    cached = make_token("u-c", "cached@example.com")
    assert client.get("/api/default/", **bearer(cached)).status_code == 200
    upstream.respond(503)
    assert_503(client.get("/api/default/", **bearer(make_token("u-n", "new@example.com"))))
    response = client.get("/api/default/", **bearer(cached))
    assert response.status_code == 200
    assert response.json()["email"] == "cached@example.com"


def test_upstream_429_becomes_503_with_upstream_retry_after(client, upstream):
    upstream.respond(
        429,
        {"success": False, "message": "Too many requests"},
        {"Retry-After": "30", "RateLimit-Limit": "150", "RateLimit-Remaining": "0"},
    )
    token = make_token("u-1", "a@example.com")
    before = failures("rate_limited")
    assert_503(client.get("/api/default/", **bearer(token)), "30")
    assert failures("rate_limited") == before + 1
    assert caches["default"].get(cache_key(token)) is None  # nothing cached
    assert_503(client.get("/api/default/", **bearer(token)), "30")
    assert upstream.calls == 2


def test_upstream_429_counts_as_a_breaker_failure(client, upstream, settings):
    """A 429 says the app as a whole is over its budget: FAIL_MAX of them open the circuit."""
    upstream.respond(429, {"success": False}, {"Retry-After": "30"})
    fail_max = settings.AUTH_SERVICE_BREAKER_FAIL_MAX
    answers = [
        client.get("/api/default/", **bearer(make_token("u-1", "a@example.com", jti=str(i))))
        for i in range(fail_max + 2)
    ]
    assert [a.status_code for a in answers] == [503] * (fail_max + 2)
    assert [a["Retry-After"] for a in answers[:fail_max]] == ["30"] * fail_max
    assert get_client().breaker.current_state == "open"
    assert upstream.calls == fail_max, "no upstream call once the circuit is open"


@pytest.mark.parametrize("phase", ["body", "head"])
def test_slow_drip_ends_within_total_deadline(client, upstream, settings, phase):
    """One byte every 0.4 s against a 0.5 s read timeout and a 0.8 s total deadline
    (the brief's 4 s / 5 s / 8 s scaled by 1/10): the read timeout never fires."""
    settings.AUTH_SERVICE_CONNECT_TIMEOUT = 0.3
    settings.AUTH_SERVICE_TIMEOUT = 0.5
    settings.AUTH_SERVICE_TOTAL_TIMEOUT = 0.8
    upstream.drip(0.4, phase=phase)
    before = failures("timeout")
    started = time.monotonic()
    assert_503(client.get("/api/default/", **bearer(make_token("u-1", "a@example.com"))))
    elapsed = time.monotonic() - started
    assert elapsed < 0.8 + 0.35, elapsed  # margin for a loaded CI machine only
    assert failures("timeout") == before + 1


def test_malformed_200_is_503_not_401(client, upstream):
    upstream.respond(200, {"success": True, "data": {"nothing": "here"}})
    assert_503(client.get("/api/default/", **bearer(make_token("u-1", "a@example.com"))))


def test_unexpected_4xx_is_503_and_does_not_trip(client, upstream, settings):
    upstream.respond(404, {"message": "no such route"})
    for _ in range(settings.AUTH_SERVICE_BREAKER_FAIL_MAX + 1):
        assert_503(client.get("/api/default/", **bearer(make_token("u-1", "a@example.com"))))
    assert get_client().breaker.current_state == "closed"


def test_redirect_is_not_followed(client, upstream):
    upstream.respond(301, {}, {"Location": "https://elsewhere.example.com/api/auth/me"})
    assert_503(client.get("/api/default/", **bearer(make_token("u-1", "a@example.com"))))
    assert upstream.calls == 1


# -- circuit breaker ---------------------------------------------------------------------------


def test_circuit_opens_fails_fast_and_half_opens(client, upstream, settings):
    upstream.respond(500)
    token = make_token("u-1", "a@example.com")
    fail_max = settings.AUTH_SERVICE_BREAKER_FAIL_MAX
    for _ in range(fail_max - 1):
        assert_503(client.get("/api/default/", **bearer(token)))
    # the failure that opens the circuit announces the time to the trial call (0.5 s: "1")
    assert_503(client.get("/api/default/", **bearer(token)), retry_after="1")
    assert upstream.calls == fail_max
    assert get_client().breaker.current_state == "open"
    assert sample("rozitech_remote_auth_circuit_state") == 1

    before = failures("circuit_open")
    started = time.monotonic()
    assert_503(client.get("/api/default/", **bearer(token)), retry_after="1")
    assert time.monotonic() - started < 0.1  # milliseconds, no upstream call
    assert upstream.calls == fail_max
    assert failures("circuit_open") == before + 1

    upstream.behaviour = None  # the auth server recovers
    time.sleep(settings.AUTH_SERVICE_BREAKER_RESET_TIMEOUT + 0.05)
    response = client.get("/api/default/", **bearer(token))
    assert response.status_code == 200
    assert upstream.calls == fail_max + 1
    assert get_client().breaker.current_state == "closed"
    assert sample("rozitech_remote_auth_circuit_state") == 0


def test_open_circuit_retry_after_is_the_time_to_the_trial_call(client, upstream, settings):
    settings.AUTH_SERVICE_BREAKER_RESET_TIMEOUT = 30
    upstream.respond(500)
    token = make_token("u-1", "a@example.com")
    for _ in range(settings.AUTH_SERVICE_BREAKER_FAIL_MAX - 1):
        assert_503(client.get("/api/default/", **bearer(token)))  # closed: the setting
    opening = client.get("/api/default/", **bearer(token))  # the failure that opens it
    assert opening.status_code == 503
    assert int(opening["Retry-After"]) == 30
    response = client.get("/api/default/", **bearer(token))  # failed fast
    assert response.status_code == 503
    assert 29 <= int(response["Retry-After"]) <= 30


def test_recovery_takes_no_longer_than_the_announced_retry_after(client, upstream, settings):
    """The breaker's half-open time and the 503's Retry-After agree: a client that comes back
    exactly when told (and not earlier) is served once the auth server is back."""
    settings.AUTH_SERVICE_BREAKER_RESET_TIMEOUT = 2
    upstream.respond(502)
    for index in range(settings.AUTH_SERVICE_BREAKER_FAIL_MAX):
        last = client.get("/api/default/", **bearer(make_token(f"u-{index}", "a@example.com")))
    announced_at = time.monotonic()
    announced = int(last["Retry-After"])
    assert announced == 2
    assert get_client().breaker.current_state == "open"
    upstream.behaviour = None  # the auth server is back at once
    time.sleep(max(0.0, announced - (time.monotonic() - announced_at)))
    fresh = client.get("/api/default/", **bearer(make_token("u-new", "new@example.com")))
    assert fresh.status_code == 200
    assert get_client().breaker.current_state == "closed"


def test_upstream_503_retry_after_longer_than_the_trial_is_kept(client, upstream, settings):
    settings.AUTH_SERVICE_BREAKER_RESET_TIMEOUT = 10
    settings.AUTH_SERVICE_BREAKER_FAIL_MAX = 1
    upstream.respond(503, {"success": False}, {"Retry-After": "40"})
    response = client.get("/api/default/", **bearer(make_token("u-1", "a@example.com")))
    assert_503(response, "40")
    upstream.respond(503, {"success": False}, {"Retry-After": "2"})
    settings.AUTH_SERVICE_BREAKER_FAIL_MAX = 1  # a fresh client: the circuit closed again
    response = client.get("/api/default/", **bearer(make_token("u-2", "b@example.com")))
    assert_503(response, "10")  # the trial call is 10 s away, later than the upstream's 2 s


def test_cached_identities_keep_working_while_circuit_is_open(client, upstream, settings):
    cached = make_token("u-c", "cached@example.com")
    assert client.get("/api/default/", **bearer(cached)).status_code == 200
    upstream.respond(500)
    for index in range(settings.AUTH_SERVICE_BREAKER_FAIL_MAX + 1):
        answer = client.get("/api/default/", **bearer(make_token(f"u-{index}", "n@example.com")))
        assert_503(answer, retry_after=("5", "1"))
    assert get_client().breaker.current_state == "open"
    assert client.get("/api/default/", **bearer(cached)).json()["email"] == "cached@example.com"


def test_failed_trial_call_reopens_circuit(client, upstream, settings):
    upstream.respond(502)
    token = make_token("u-1", "a@example.com")
    for _ in range(settings.AUTH_SERVICE_BREAKER_FAIL_MAX):
        client.get("/api/default/", **bearer(token))
    time.sleep(settings.AUTH_SERVICE_BREAKER_RESET_TIMEOUT + 0.05)
    # the trial call fails and re-opens the circuit: its 503 names the next trial (0.5 s: "1")
    assert_503(client.get("/api/default/", **bearer(token)), retry_after="1")
    assert get_client().breaker.current_state == "open"
    calls = upstream.calls
    assert_503(client.get("/api/default/", **bearer(token)), retry_after="1")
    assert upstream.calls == calls


def test_401s_never_trip_the_breaker(client, upstream, settings):
    for index in range(settings.AUTH_SERVICE_BREAKER_FAIL_MAX + 2):
        bad = make_token(f"u-{index}", "x@example.com", secret="another-secret-0123456789-abcdef")
        assert client.get("/api/default/", **bearer(bad)).status_code == 401
    assert get_client().breaker.current_state == "closed"


# -- retry ---------------------------------------------------------------------------------------


def test_connect_error_is_retried_once(client, upstream, settings):
    port = free_port()
    settings.AUTH_SERVICE_URL = f"http://127.0.0.1:{port}"
    attempts: list[float] = []
    original = get_client()._fetch_once

    def counting(token, remaining, read_timeout):
        attempts.append(remaining)
        return original(token, remaining, read_timeout)

    get_client()._fetch_once = counting  # type: ignore[method-assign]
    assert_503(client.get("/api/default/", **bearer(make_token("u-1", "a@example.com"))))
    assert len(attempts) == 2


def test_server_error_is_not_retried(client, upstream):
    upstream.respond(500)
    assert_503(client.get("/api/default/", **bearer(make_token("u-1", "a@example.com"))))
    assert upstream.calls == 1


def test_timeout_is_not_retried(client, upstream):
    upstream.hang()
    assert_503(client.get("/api/default/", **bearer(make_token("u-1", "a@example.com"))))
    assert upstream.calls == 1


# -- caches ---------------------------------------------------------------------------------------


def test_cache_backend_outage_is_a_miss_not_a_failure(client, upstream, settings):
    settings.AUTH_SERVICE_CACHE_ALIAS = "broken"
    token = make_token("u-1", "a@example.com")
    for _ in range(2):
        response = client.get("/api/default/", **bearer(token))
        assert response.status_code == 200
        assert response.json()["email"] == "a@example.com"
    assert upstream.calls == 2


def test_negative_cache_for_upstream_401(client, upstream):
    bad = make_token("u-1", "a@example.com", secret="another-secret-0123456789-abcdef")
    assert client.get("/api/default/", **bearer(bad)).status_code == 401
    assert client.get("/api/default/", **bearer(bad)).status_code == 401
    assert upstream.calls == 1


def test_negative_cache_never_past_exp(client, upstream):
    bad = make_token("u-1", "a@example.com", exp_in=1, secret="another-secret-0123456789-abcdef")
    assert client.get("/api/default/", **bearer(bad)).status_code == 401
    entry_ttl = caches["default"]._expire_info.get(caches["default"].make_key(cache_key(bad)))
    assert entry_ttl is None or entry_ttl - time.time() <= 1.0


def test_expired_token_is_refused_without_an_upstream_call(client, upstream):
    expired = make_token("u-1", "a@example.com", exp_in=-60)
    response = client.get("/api/default/", **bearer(expired))
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert upstream.calls == 0
    # Within the clock-skew allowance the auth server still decides (and says 401 here).
    just_expired = make_token("u-2", "b@example.com", exp_in=-2)
    assert client.get("/api/default/", **bearer(just_expired)).status_code == 401
    assert upstream.calls == 1


def test_negative_cache_can_be_disabled(client, upstream, settings):
    settings.AUTH_SERVICE_NEGATIVE_CACHE_TTL = 0
    bad = make_token("u-1", "a@example.com", secret="another-secret-0123456789-abcdef")
    client.get("/api/default/", **bearer(bad))
    client.get("/api/default/", **bearer(bad))
    assert upstream.calls == 2


def test_403_is_not_cached(client, upstream):
    upstream.respond(403)
    token = make_token("u-1", "a@example.com")
    assert client.get("/api/default/", **bearer(token)).status_code == 403
    assert client.get("/api/default/", **bearer(token)).status_code == 403
    assert upstream.calls == 2


def test_positive_ttl_stops_leeway_before_exp(client, upstream, settings):
    settings.AUTH_SERVICE_TOKEN_LEEWAY = 30
    short = make_token("u-1", "a@example.com", exp_in=20)  # exp - now - leeway < 0
    assert client.get("/api/default/", **bearer(short)).status_code == 200
    assert caches["default"].get(cache_key(short)) is None
    longer = make_token("u-2", "b@example.com", exp_in=100)
    assert client.get("/api/default/", **bearer(longer)).status_code == 200
    expires = caches["default"]._expire_info[caches["default"].make_key(cache_key(longer))]
    assert 60 <= expires - time.time() <= 70  # min(300, 100 - 30)


def test_connection_is_reused(client, upstream):
    for index in range(3):
        client.get("/api/default/", **bearer(make_token(f"u-{index}", f"{index}@example.com")))
    peers = {info["peer"] for info in upstream.requests}
    assert len(peers) == 1
