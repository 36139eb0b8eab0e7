"""The probes against a real HTTP server: the auth server stand-in (with its fault controls) or a tiny
local server, one test per "small input" of issue 5 plus the response shapes, body status, drip and latency.
"""

from __future__ import annotations

import json
import socket
import time

import requests
from rozitech_auth_exporter.config import Credentials
from rozitech_auth_exporter.server import make_app, serve

from .conftest import StandIn, free_port, http_answer, make_exporter

P = "rozitech_auth_probe_"


def me_count(exporter) -> float:
    return exporter.value(f"{P}verify_request_duration_seconds_count")


def test_up_both_probes_succeed_and_the_token_is_reused(standin: StandIn) -> None:
    exporter = make_exporter(standin.url)
    assert exporter.cycle() == 3  # health, login, me
    assert exporter.cycle() == 2  # health, me: the cached token is reused
    assert exporter.value(f"{P}success", probe="health") == 1
    assert exporter.value(f"{P}success", probe="verify") == 1
    assert exporter.value(f"{P}health_http_status_code") == 200
    assert exporter.value(f"{P}health_body_status_ok") == 1
    assert exporter.value(f"{P}logins_total", result="success") == 1
    assert exporter.value(f"{P}responses_total", endpoint="me", code="200") == 2
    assert me_count(exporter) == 2
    assert exporter.value(f"{P}ratelimit_limit") == 150
    assert exporter.value(f"{P}ratelimit_remaining") == 147  # login + 2 x me
    assert 0 < exporter.value(f"{P}ratelimit_reset_seconds") <= 900
    assert standin.count("/api/auth/login") == 1


def test_bare_response_shape(standin: StandIn) -> None:
    standin.control("PUT", "/config", {"responseShape": "bare"})
    exporter = make_exporter(standin.url)
    exporter.cycle()
    assert exporter.value(f"{P}success", probe="verify") == 1


# 1. Login answers 401 --------------------------------------------------------------------------------------
def test_1_login_401_fails_without_calling_me(standin: StandIn) -> None:
    exporter = make_exporter(standin.url, Credentials("demo@rozitech.test", "wrong-password"))
    exporter.cycle()
    assert exporter.value(f"{P}success", probe="verify") == 0
    assert exporter.value(f"{P}responses_total", endpoint="login", code="401") == 1
    assert exporter.value(f"{P}logins_total", result="failure") == 1
    assert standin.count("/api/auth/me") == 0, "/api/auth/me is not called"
    assert me_count(exporter) == 0, "no latency observation"
    assert exporter.value(f"{P}success", probe="health") == 1, "health is a separate probe"


# 2. /api/auth/me answers 401 with an expired token ---------------------------------------------------------
def test_2_expired_token_one_refresh_then_success(standin: StandIn) -> None:
    exporter = make_exporter(standin.url)
    exporter.cycle()
    expired = standin.control("POST", "/tokens", {"email": "demo@rozitech.test", "expiresIn": "-10s"})["accessToken"]
    exporter.prober._access = expired  # the cached token has expired meanwhile
    standin.control("DELETE", "/requests")
    assert exporter.cycle() == 4  # health, me (401), refresh, me (200)
    assert exporter.value(f"{P}success", probe="verify") == 1
    assert exporter.value(f"{P}responses_total", endpoint="me", code="401") == 1
    assert exporter.value(f"{P}token_refreshes_total", result="success") == 1
    assert exporter.value(f"{P}responses_total", endpoint="refresh", code="200") == 1
    assert exporter.value(f"{P}logins_total", result="success") == 1, "no new login"
    stats = standin.stats()["paths"]
    assert stats["/api/auth/refresh"]["statuses"] == {"200": 1}
    assert stats["/api/auth/me"]["statuses"] == {"401": 1, "200": 1}


def test_2b_refresh_rejected_then_one_login(standin: StandIn) -> None:
    exporter = make_exporter(standin.url)
    exporter.cycle()
    exporter.prober._access = "not-a-token"
    exporter.prober._refresh = "not-a-refresh-token"
    assert exporter.cycle() == 5  # health, me 401, refresh 401, login, me 200: within the cap
    assert exporter.value(f"{P}success", probe="verify") == 1
    assert exporter.value(f"{P}token_refreshes_total", result="failure") == 1
    assert exporter.value(f"{P}logins_total", result="success") == 2


# 3. Auth server answers 5xx ---------------------------------------------------------------------------------
def test_3_server_5xx_metrics_still_200_with_success_0(standin: StandIn) -> None:
    exporter = make_exporter(standin.url)
    exporter.cycle()
    standin.faults(status=503)
    exporter.cycle()
    port = free_port()
    httpd, _ = serve("127.0.0.1", port, make_app(exporter.registry, exporter.state))
    try:
        r = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    finally:
        httpd.shutdown()
    assert r.status_code == 200
    assert f'{P}success{{probe="health"}} 0.0' in r.text
    assert f'{P}success{{probe="verify"}} 0.0' in r.text
    assert f"{P}health_http_status_code 503.0" in r.text
    assert exporter.value(f"{P}responses_total", endpoint="me", code="503") == 1
    assert exporter.prober._access is not None, "a 5xx does not throw the token away"


# 4. A server that closes every connection at once ----------------------------------------------------------
def test_4_connection_closed_at_once_bounded_requests(tiny_server) -> None:
    server = tiny_server(lambda conn: None)  # accept, then close without a byte
    exporter = make_exporter(server.url)
    sent = [exporter.cycle() for _ in range(5)]
    assert sent == [2] * 5, "health + one login per cycle, no retries"
    time.sleep(0.1)
    assert server.connections == 10, "the server saw exactly the requests the exporter counted"
    assert exporter.value(f"{P}request_errors_total", endpoint="health", reason="connection") == 5
    assert exporter.value(f"{P}request_errors_total", endpoint="login", reason="connection") == 5
    assert exporter.value(f"{P}success", probe="verify") == 0
    assert exporter.value(f"{P}health_http_status_code") == 0
    assert exporter.value(f"{P}cycle_requests") <= exporter.value(f"{P}cycle_requests_max")


def test_4b_standin_drops_every_connection(standin: StandIn) -> None:
    exporter = make_exporter(standin.url)
    exporter.cycle()
    standin.faults(drop=True)
    assert [exporter.cycle() for _ in range(3)] == [2] * 3  # health, me
    assert standin.stats()["paths"]["/api/auth/me"]["statuses"].get("dropped") == 3
    assert exporter.value(f"{P}request_errors_total", endpoint="me", reason="connection") == 3


# 5. The stand-in's rate limit exhausted ---------------------------------------------------------------------
def test_5_rate_limit_exhausted_counts_429_and_backs_off(standin: StandIn) -> None:
    exporter = make_exporter(standin.url)
    exporter.cycle()
    with requests.Session() as other:  # another client behind the same address spends the rest of the budget
        for _ in range(150 - 2):
            other.get(f"{standin.url}/api/auth/me", timeout=5)
    exporter.cycle()
    assert exporter.value(f"{P}responses_total", endpoint="me", code="429") == 1
    assert exporter.value(f"{P}ratelimit_remaining") == 0
    reset = exporter.value(f"{P}ratelimit_reset_seconds")
    assert 0 < reset <= 900
    assert exporter.value(f"{P}success", probe="verify") == 0
    assert 0 < exporter.value(f"{P}backoff_seconds", probe="verify") <= 900
    before = standin.count("/api/auth/me")
    assert [exporter.cycle() for _ in range(3)] == [1] * 3, "only /health (not rate limited) while backing off"
    assert standin.count("/api/auth/me") == before, "no request to the limited API until the reset"
    assert exporter.value(f"{P}skipped_total", probe="verify") == 3
    assert exporter.value(f"{P}success", probe="verify") == 0
    assert exporter.value(f"{P}success", probe="health") == 1


def test_5b_forced_429_without_headers_backs_off_one_interval(tiny_server) -> None:
    server = tiny_server(http_answer(429, b'{"success":false,"code":"RATE_LIMITED"}'))
    exporter = make_exporter(server.url, interval=30.0)
    exporter.cycle()
    assert exporter.value(f"{P}responses_total", endpoint="health", code="429") == 1
    assert 25 < exporter.value(f"{P}backoff_seconds", probe="health") <= 30
    assert exporter.value(f"{P}ratelimit_remaining") == 0
    assert exporter.value(f"{P}ratelimit_reset_seconds") is None, "no header gave a reset"


# more inputs -------------------------------------------------------------------------------------------------
def test_health_body_status_not_ok(tiny_server) -> None:
    server = tiny_server(http_answer(200, json.dumps({"status": "degraded"}).encode()))
    exporter = make_exporter(server.url, credentials=None)
    assert exporter.cycle() == 1
    assert exporter.value(f"{P}success", probe="health") == 0
    assert exporter.value(f"{P}health_body_status_ok") == 0
    assert exporter.value(f"{P}success", probe="verify") is None, "no account: no verify probe"


def test_health_without_body_status_is_like_blackbox(tiny_server) -> None:
    server = tiny_server(http_answer(200, b"OK", "text/plain"))
    exporter = make_exporter(server.url, credentials=None)
    exporter.cycle()
    assert exporter.value(f"{P}success", probe="health") == 1
    assert exporter.value(f"{P}health_body_status_ok") is None


def test_drip_fed_body_hits_the_total_deadline(standin: StandIn) -> None:
    exporter = make_exporter(standin.url, timeout=1.0)
    exporter.cycle()
    standin.faults(dripIntervalMs=200, paths=["/api/auth/me"])
    start = time.monotonic()
    exporter.cycle()
    assert time.monotonic() - start < 2.5
    assert exporter.value(f"{P}request_errors_total", endpoint="me", reason="timeout") == 1
    assert exporter.value(f"{P}success", probe="verify") == 0


def test_latency_is_observed(standin: StandIn) -> None:
    exporter = make_exporter(standin.url)
    exporter.cycle()
    standin.faults(latencyMs=300, paths=["/api/auth/me"])
    exporter.cycle()
    assert exporter.value(f"{P}success", probe="verify") == 1
    assert exporter.value(f"{P}verify_request_duration_seconds_bucket", le="0.25") == 1
    assert exporter.value(f"{P}verify_request_duration_seconds_bucket", le="0.5") == 2
    assert exporter.value(f"{P}duration_seconds", probe="verify") >= 0.3


def test_unreachable_target(tiny_server) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exporter = make_exporter(f"http://127.0.0.1:{port}")
    assert exporter.cycle() == 2
    assert exporter.value(f"{P}request_errors_total", endpoint="health", reason="connection") == 1
    assert exporter.value(f"{P}success", probe="health") == 0
