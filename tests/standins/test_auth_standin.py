"""Behaviour of the auth server stand-in (tests/standins/auth_server), run as a real Node process.

Covers the auth server contract (R1 in docs/architecture.md: shapes, 401/403, refresh rotation, rate limit
headers) and the test-only control API (faults, request log, mailbox, token minting), through the harness
tests/standins/standin_harness.py. See tests/standins/auth_server/README.md.
"""

from __future__ import annotations

import base64
import json
import re
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import requests
from standin_harness import (
    DEMO_EMAIL,
    DEMO_PASSWORD,
    STANDIN_DIR,
    TEST_JWT_SECRET,
    LocalStandin,
    require_node,
)
from standin_harness import launch as start_standin

UNVERIFIED_EMAIL = "unverified@rozitech.test"


@pytest.fixture(scope="module")
def standin() -> Iterator[LocalStandin]:
    """Wrapped shape, draft-6 + legacy headers, limit 20 per window, fault control on, trust proxy off."""
    with start_standin({"RATE_LIMIT_MAX": "20", "STANDIN_FAULT_CONTROL": "1"}) as server:
        yield server


@pytest.fixture()
def auth(standin: LocalStandin) -> LocalStandin:
    """The module's stand-in, reset to a clean state before the test."""
    standin.reset()
    return standin


ME = "/api/auth/me"
USER_KEYS = {"id", "email", "firstName", "lastName", "emailVerified", "role"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, TEST_JWT_SECRET, algorithms=["HS256"], issuer="rozitech-auth")


def login_tokens(auth: LocalStandin, email: str = DEMO_EMAIL, password: str = DEMO_PASSWORD) -> dict[str, Any]:
    r = auth.login(email, password)
    assert r.status_code == 200, r.text
    body = r.json()
    return body["data"] if "data" in body else body


def assert_error(r: requests.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["success"] is False
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]


# ------------------------------------------------------------------------------------------------------
# health, login, me
# ------------------------------------------------------------------------------------------------------
def test_health_answers_json(auth: LocalStandin) -> None:
    r = auth.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["service"] == "rozitech-auth"
    assert isinstance(body["uptime"], (int, float)) and body["uptime"] >= 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["timestamp"])


def test_login_and_me_wrapped(auth: LocalStandin) -> None:
    r = auth.login("Demo@Rozitech.TEST", DEMO_PASSWORD)  # email is case-insensitive
    assert r.status_code == 200
    body = r.json()
    assert body["success"] is True
    data = body["data"]
    assert set(data) == {"accessToken", "refreshToken", "user"}
    assert set(data["user"]) == USER_KEYS
    assert data["user"]["email"] == DEMO_EMAIL
    uuid.UUID(data["user"]["id"])

    access = claims(data["accessToken"])
    assert access["type"] == "access"
    assert access["userId"] == data["user"]["id"]
    assert access["email"] == DEMO_EMAIL
    assert access["exp"] - access["iat"] == 15 * 60
    refresh = claims(data["refreshToken"])
    assert refresh["type"] == "refresh"
    assert refresh["jti"]
    assert refresh["exp"] - refresh["iat"] == 7 * 24 * 3600
    header = json.loads(base64.urlsafe_b64decode(data["accessToken"].split(".")[0] + "=="))
    assert header["alg"] == "HS256"

    me = auth.get(ME, headers=bearer(data["accessToken"]))
    assert me.status_code == 200
    me_body = me.json()
    assert me_body["success"] is True
    assert set(me_body["data"]) == {"user", "organization", "licenses"}
    user = me_body["data"]["user"]
    assert user == {
        "id": data["user"]["id"],
        "email": DEMO_EMAIL,
        "firstName": "Demo",
        "lastName": "User",
        "emailVerified": True,
        "role": "user",
    }
    org = me_body["data"]["organization"]
    assert org["name"] == "Rozitech Demo"
    assert org["slug"] == "rozitech-demo"
    assert org["id"] == access["organizationId"]
    assert isinstance(me_body["data"]["licenses"], dict)


def test_login_and_me_bare(auth: LocalStandin) -> None:
    r = auth.control("PUT", "/config", json={"responseShape": "bare"})
    assert r.status_code == 200 and r.json()["responseShape"] == "bare"
    body = auth.login().json()
    assert set(body) == {"accessToken", "refreshToken", "user"}
    assert body["user"]["email"] == DEMO_EMAIL

    me = auth.get(ME, headers=bearer(body["accessToken"])).json()
    assert set(me) == {"user"}
    assert me["user"]["emailVerified"] is True
    assert me["user"]["firstName"] == "Demo"
    assert me["user"]["organization"]["name"] == "Rozitech Demo"
    assert set(me["user"]) == USER_KEYS | {"organization"}

    refreshed = auth.post("/api/auth/refresh", json={"refreshToken": body["refreshToken"]}).json()
    assert set(refreshed) == {"accessToken", "refreshToken", "user"}
    # errors keep the same form in both shapes
    assert_error(auth.get(ME), 401, "NO_TOKEN")


def test_bare_shape_from_environment() -> None:
    with start_standin({"STANDIN_RESPONSE_SHAPE": "bare"}) as server:
        body = server.login().json()
        assert "success" not in body and "accessToken" in body


def test_me_rejections(auth: LocalStandin) -> None:
    tokens = login_tokens(auth)
    assert_error(auth.get(ME), 401, "NO_TOKEN")
    assert_error(auth.get(ME, headers={"Authorization": f"Token {tokens['accessToken']}"}), 401, "NO_TOKEN")
    assert_error(auth.get(ME, headers=bearer("not-a-jwt")), 401, "INVALID_TOKEN")
    forged = jwt.encode(
        {**claims(tokens["accessToken"]), "exp": int(time.time()) + 600},
        "some-other-secret-of-32-bytes-or-more",
        algorithm="HS256",
    )
    assert_error(auth.get(ME, headers=bearer(forged)), 401, "INVALID_TOKEN")
    wrong_iss = jwt.encode({**claims(tokens["accessToken"]), "iss": "someone-else"}, TEST_JWT_SECRET)
    assert_error(auth.get(ME, headers=bearer(wrong_iss)), 401, "INVALID_TOKEN")
    assert_error(auth.get(ME, headers=bearer(tokens["refreshToken"])), 401, "INVALID_TOKEN_TYPE")

    minted = auth.control("POST", "/tokens", json={"email": DEMO_EMAIL, "expiresIn": "-10s"})
    assert minted.status_code == 200
    expired = minted.json()["accessToken"]
    assert claims_unverified(expired)["exp"] < time.time()
    assert_error(auth.get(ME, headers=bearer(expired)), 401, "TOKEN_EXPIRED")

    fresh = auth.control("POST", "/tokens", json={"email": DEMO_EMAIL, "expiresIn": 60}).json()["accessToken"]
    assert auth.get(ME, headers=bearer(fresh)).status_code == 200
    assert_error(auth.control("POST", "/tokens", json={"email": "nobody@rozitech.test"}), 404, "USER_NOT_FOUND")


def claims_unverified(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def test_unverified_account_is_403(auth: LocalStandin) -> None:
    tokens = login_tokens(auth, UNVERIFIED_EMAIL)
    assert tokens["user"]["emailVerified"] is False
    assert_error(auth.get(ME, headers=bearer(tokens["accessToken"])), 403, "EMAIL_NOT_VERIFIED")


def test_bad_credentials(auth: LocalStandin) -> None:
    assert_error(auth.login(DEMO_EMAIL, "wrong-password"), 401, "INVALID_CREDENTIALS")
    assert_error(auth.login("nobody@rozitech.test", DEMO_PASSWORD), 401, "INVALID_CREDENTIALS")
    assert_error(auth.post("/api/auth/login", json={"email": DEMO_EMAIL}), 400, "VALIDATION_ERROR")
    r = auth.post("/api/auth/login", data="{nope", headers={"Content-Type": "application/json"})
    assert_error(r, 400, "INVALID_JSON")


# ------------------------------------------------------------------------------------------------------
# refresh, logout, signup, verify, reset
# ------------------------------------------------------------------------------------------------------
def test_refresh_rotates_and_revokes(auth: LocalStandin) -> None:
    first = login_tokens(auth)
    r = auth.post("/api/auth/refresh", json={"refreshToken": first["refreshToken"]})
    assert r.status_code == 200
    second = r.json()["data"]
    assert second["refreshToken"] != first["refreshToken"]
    assert claims(second["refreshToken"])["jti"] != claims(first["refreshToken"])["jti"]
    assert claims(second["accessToken"])["type"] == "access"
    assert auth.get(ME, headers=bearer(second["accessToken"])).status_code == 200

    # the old refresh token worked once
    assert_error(auth.post("/api/auth/refresh", json={"refreshToken": first["refreshToken"]}), 401, "TOKEN_REVOKED")
    # an access token is not a refresh token
    assert_error(
        auth.post("/api/auth/refresh", json={"refreshToken": second["accessToken"]}), 401, "INVALID_TOKEN_TYPE"
    )
    assert_error(auth.post("/api/auth/refresh", json={"refreshToken": "garbage"}), 401, "INVALID_TOKEN")

    out = auth.post("/api/auth/logout", json={"refreshToken": second["refreshToken"]})
    assert out.status_code == 200 and out.json()["success"] is True
    assert_error(auth.post("/api/auth/refresh", json={"refreshToken": second["refreshToken"]}), 401, "TOKEN_REVOKED")


def test_signup_mailbox_and_verify_email(auth: LocalStandin) -> None:
    email = f"New.User.{uuid.uuid4().hex[:8]}@Rozitech.test"
    r = auth.post(
        "/api/auth/signup",
        json={"email": email, "password": "Sup3r-secret", "firstName": "New", "lastName": "User"},
    )
    assert r.status_code == 201, r.text
    user = r.json()["data"]["user"]
    assert user["emailVerified"] is False and user["email"] == email
    uuid.UUID(user["id"])
    dup = auth.post(
        "/api/auth/signup",
        json={"email": email.lower(), "password": "Sup3r-secret", "firstName": "A", "lastName": "B"},
    )
    assert_error(dup, 409, "EMAIL_EXISTS")
    assert_error(
        auth.post("/api/auth/signup", json={"email": "x@y.z", "password": "short", "firstName": "A", "lastName": "B"}),
        400,
        "VALIDATION_ERROR",
    )

    tokens = login_tokens(auth, email.upper(), "Sup3r-secret")
    assert_error(auth.get(ME, headers=bearer(tokens["accessToken"])), 403, "EMAIL_NOT_VERIFIED")

    mail = auth.control("GET", "/mailbox", params={"email": email.lower()}).json()
    assert mail["count"] == 1
    message = mail["messages"][0]
    assert message["type"] == "verify-email" and message["userId"] == user["id"]
    assert_error(auth.post("/api/auth/verify-email", json={"token": "nope"}), 400, "INVALID_TOKEN")
    ok = auth.post("/api/auth/verify-email", json={"token": message["token"]})
    assert ok.status_code == 200 and ok.json()["success"] is True
    assert auth.get(ME, headers=bearer(tokens["accessToken"])).json()["data"]["user"]["emailVerified"] is True
    assert_error(auth.post("/api/auth/verify-email", json={"token": message["token"]}), 400, "INVALID_TOKEN")


def test_forgot_and_reset_password() -> None:
    # own server: this test changes a seeded password
    with start_standin({"STANDIN_FAULT_CONTROL": "1"}) as server:
        old = server.login().json()["data"]
        r = server.post("/api/auth/forgot-password", json={"email": "nobody@rozitech.test"})
        assert r.status_code == 200 and r.json()["success"] is True
        assert server.control("GET", "/mailbox", params={"type": "reset-password"}).json()["count"] == 0
        assert server.post("/api/auth/forgot-password", json={"email": "DEMO@rozitech.test"}).status_code == 200
        mail = server.control("GET", "/mailbox", params={"type": "reset-password"}).json()["messages"]
        assert [m["email"] for m in mail] == [DEMO_EMAIL]
        assert_error(
            server.post("/api/auth/reset-password", json={"token": "bad", "password": "N3w-password"}),
            400,
            "INVALID_TOKEN",
        )
        r = server.post("/api/auth/reset-password", json={"token": mail[0]["token"], "password": "N3w-password"})
        assert r.status_code == 200
        assert_error(server.login(), 401, "INVALID_CREDENTIALS")
        assert server.login(DEMO_EMAIL, "N3w-password").status_code == 200
        assert_error(server.post("/api/auth/refresh", json={"refreshToken": old["refreshToken"]}), 401, "TOKEN_REVOKED")


# ------------------------------------------------------------------------------------------------------
# rate limit
# ------------------------------------------------------------------------------------------------------
def exhaust(server: LocalStandin, limit: int, **kw: Any) -> requests.Response:
    for i in range(limit):
        r = server.get(ME, **kw)
        assert r.status_code == 401, (i, r.status_code)
    return server.get(ME, **kw)


def test_rate_limit_draft6_and_legacy_headers(auth: LocalStandin) -> None:
    first = auth.get(ME)
    assert first.headers["RateLimit-Limit"] == "20"
    assert first.headers["RateLimit-Remaining"] == "19"
    assert first.headers["RateLimit-Policy"] == "20;w=900"
    assert 0 < int(first.headers["RateLimit-Reset"]) <= 900
    assert first.headers["X-RateLimit-Limit"] == "20"
    assert first.headers["X-RateLimit-Remaining"] == "19"
    assert abs(int(first.headers["X-RateLimit-Reset"]) - (time.time() + 900)) < 5
    assert "Retry-After" not in first.headers

    # trust proxy is off: a forged X-Forwarded-For does not buy a new bucket
    r = exhaust(auth, 19, headers={"X-Forwarded-For": "203.0.113.9"})
    assert r.status_code == 429
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == {
        "success": False,
        "message": "Too many requests, please try again later.",
        "code": "RATE_LIMITED",
    }
    assert 0 < int(r.headers["Retry-After"]) <= 900
    assert r.headers["RateLimit-Remaining"] == "0"
    assert r.headers["X-RateLimit-Remaining"] == "0"
    assert "RateLimit" not in r.headers

    # every /api/ route shares the bucket; /health and the control API are not limited
    assert auth.login().status_code == 429
    assert auth.get("/health").status_code == 200
    assert auth.control("GET", "/faults").status_code == 200

    assert auth.control("POST", "/rate-limit/reset").json() == {"reset": True}
    assert auth.get(ME).headers["RateLimit-Remaining"] == "19"


def test_rate_limit_draft7_trust_proxy_no_legacy() -> None:
    env = {
        "RATE_LIMIT_MAX": "3",
        "RATE_LIMIT_WINDOW_MS": "60000",
        "RATE_LIMIT_HEADERS": "draft-7",
        "RATE_LIMIT_LEGACY_HEADERS": "false",
        "TRUST_PROXY": "loopback",
        "STANDIN_FAULT_CONTROL": "1",
    }
    with start_standin(env) as server:
        xff = {"X-Forwarded-For": "198.51.100.7"}
        first = server.get(ME, headers=xff)
        assert re.fullmatch(r"limit=3, remaining=2, reset=(\d+)", first.headers["RateLimit"])
        assert first.headers["RateLimit-Policy"] == "3;w=60"
        assert not any(h.lower().startswith("x-ratelimit") for h in first.headers)
        assert "RateLimit-Limit" not in first.headers

        r = exhaust(server, 2, headers=xff)
        assert r.status_code == 429
        m = re.fullmatch(r"limit=3, remaining=0, reset=(\d+)", r.headers["RateLimit"])
        assert m and 0 < int(m.group(1)) <= 60
        assert 0 < int(r.headers["Retry-After"]) <= 60
        assert r.json()["code"] == "RATE_LIMITED"

        # behind a trusted proxy each client IP has its own bucket
        other = server.get(ME, headers={"X-Forwarded-For": "198.51.100.8"})
        assert other.status_code == 401
        ips = {e["ip"] for e in server.control("GET", "/requests").json()["requests"] if e["path"] == ME}
        assert ips == {"198.51.100.7", "198.51.100.8"}

        forced = server.control("PUT", "/faults", json={"status": 429, "retryAfter": 12})
        assert forced.status_code == 200
        f = server.get("/health")
        assert f.status_code == 429
        assert f.headers["Retry-After"] == "12"
        assert f.headers["RateLimit"] == "limit=3, remaining=0, reset=12"


def test_rate_limit_draft8() -> None:
    with start_standin({"RATE_LIMIT_MAX": "2", "RATE_LIMIT_WINDOW_MS": "60000", "RATE_LIMIT_HEADERS": "draft-8"}) as s:
        first = s.get(ME)
        assert re.fullmatch(r'"2-in-1min"; r=1; t=\d+', first.headers["RateLimit"])
        assert re.fullmatch(r'"2-in-1min"; q=2; w=60; pk=:[A-Za-z0-9+/=]+:', first.headers["RateLimit-Policy"])
        assert first.headers["X-RateLimit-Limit"] == "2"
        r = exhaust(s, 1)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0


# ------------------------------------------------------------------------------------------------------
# faults
# ------------------------------------------------------------------------------------------------------
def put_faults(auth: LocalStandin, **faults: Any) -> dict[str, Any]:
    r = auth.control("PUT", "/faults", json=faults)
    assert r.status_code == 200, r.text
    return r.json()


def test_fault_latency(auth: LocalStandin) -> None:
    assert put_faults(auth, latencyMs=400)["active"] is True
    t0 = time.monotonic()
    r = auth.get("/health")
    elapsed = time.monotonic() - t0
    assert r.status_code == 200 and elapsed >= 0.4
    with pytest.raises(requests.ReadTimeout):
        auth.get("/health", timeout=0.15)
    t0 = time.monotonic()
    assert auth.control("GET", "/faults").status_code == 200  # control routes are never delayed
    assert time.monotonic() - t0 < 0.3


def test_fault_forced_status_with_retry_after(auth: LocalStandin) -> None:
    put_faults(auth, status=503, retryAfter=7)
    r = auth.get(ME)
    assert r.status_code == 503
    assert r.headers["Retry-After"] == "7"
    assert r.json() == {"success": False, "message": "Service Unavailable", "code": "STANDIN_FAULT"}
    assert auth.get("/health").status_code == 503

    put_faults(auth, status=502)
    r = auth.get("/health")
    assert r.status_code == 502 and "Retry-After" not in r.headers

    put_faults(auth, status=429, retryAfter=30)
    r = auth.login()
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "30"
    assert r.headers["RateLimit-Remaining"] == "0"
    assert r.headers["RateLimit-Reset"] == "30"
    assert r.headers["X-RateLimit-Remaining"] == "0"
    assert r.json()["code"] == "RATE_LIMITED"


def test_fault_drop(auth: LocalStandin) -> None:
    put_faults(auth, drop=True)
    with pytest.raises(requests.ConnectionError):
        requests.get(auth.url("/health"), timeout=5)
    assert auth.control("GET", "/faults").json()["drop"] is True  # control API unaffected
    auth.control("DELETE", "/faults")
    assert requests.get(auth.url("/health"), timeout=5).status_code == 200
    entries = auth.control("GET", "/requests").json()["requests"]
    assert entries[0]["dropped"] is True and entries[0]["status"] is None and entries[0]["fault"] is True
    assert entries[1]["dropped"] is False and entries[1]["status"] == 200


def test_fault_drip(auth: LocalStandin) -> None:
    put_faults(auth, dripIntervalMs=5, paths=["/health"])
    t0 = time.monotonic()
    r = auth.get("/health")
    elapsed = time.monotonic() - t0
    assert r.status_code == 200 and r.json()["status"] == "ok"
    assert elapsed >= 0.8 * 5e-3 * len(r.content)

    # each byte arrives in time for a per-read timeout, but the total takes long
    put_faults(auth, dripIntervalMs=300, paths=["/health"])
    with pytest.raises(requests.exceptions.ConnectionError):  # urllib3 ReadTimeout while streaming the body
        auth.get("/health", timeout=(1, 0.1))


def test_fault_paths_and_times(auth: LocalStandin) -> None:
    put_faults(auth, status=500, paths=["/api/auth/me"])
    assert auth.get(ME).status_code == 500
    assert auth.get("/health").status_code == 200
    assert auth.login().status_code == 200

    faults = put_faults(auth, status=503, times=2)
    assert faults["times"] == 2
    assert [auth.get("/health").status_code for _ in range(3)] == [503, 503, 200]
    assert auth.control("GET", "/faults").json()["active"] is False


def test_fault_validation_and_clear(auth: LocalStandin) -> None:
    for bad in ({"status": 42}, {"latencyMs": -1}, {"drop": "yes"}, {"paths": ["health"]}, {"bogus": 1}):
        r = auth.control("PUT", "/faults", json=bad)
        assert_error(r, 400, "VALIDATION_ERROR")
    put_faults(auth, status=500)
    cleared = auth.control("DELETE", "/faults").json()
    assert cleared["active"] is False and cleared["status"] is None
    assert auth.get("/health").status_code == 200


# ------------------------------------------------------------------------------------------------------
# request log, stats, logging hygiene
# ------------------------------------------------------------------------------------------------------
def test_request_log_and_stats(auth: LocalStandin) -> None:
    tokens = login_tokens(auth)
    auth.get(
        ME,
        headers={
            **bearer(tokens["accessToken"]),
            "X-Forwarded-For": "192.0.2.1",
            "X-Forwarded-Proto": "https",
            "X-Real-IP": "192.0.2.1",
            "User-Agent": "standin-test/1",
        },
    )
    auth.get(ME, headers={"Authorization": tokens["accessToken"]})  # no scheme at all
    auth.get("/health?token=secret-query")

    log = auth.control("GET", "/requests").json()
    assert log["count"] == 4
    login, me, no_scheme, health = log["requests"]
    assert (login["method"], login["path"], login["status"]) == ("POST", "/api/auth/login", 200)
    assert me["headers"] == {
        "host": f"127.0.0.1:{auth.port}",
        "x-forwarded-for": "192.0.2.1",
        "x-forwarded-proto": "https",
        "x-real-ip": "192.0.2.1",
        "user-agent": "standin-test/1",
        "authorization": "Bearer",
    }
    assert no_scheme["headers"]["authorization"] == "[redacted]"
    assert health["path"] == "/health"
    dumped = json.dumps(log)
    assert tokens["accessToken"] not in dumped and "secret-query" not in dumped

    stats = auth.control("GET", "/stats").json()
    assert stats["total"] == 4
    assert stats["paths"][ME] == {"count": 2, "statuses": {"200": 1, "401": 1}}
    assert stats["paths"]["/health"] == {"count": 1, "statuses": {"200": 1}}

    assert auth.control("DELETE", "/requests").status_code == 200
    assert auth.control("GET", "/requests").json()["count"] == 0
    assert auth.control("GET", "/stats").json()["total"] == 0


def test_stdout_log_has_no_secrets(auth: LocalStandin) -> None:
    tokens = login_tokens(auth)
    auth.get(ME, headers=bearer(tokens["accessToken"]))
    auth.post("/api/auth/refresh", json={"refreshToken": tokens["refreshToken"]})
    time.sleep(0.1)
    out = auth.output()
    assert re.search(r"POST /api/auth/login 200 \d+\.\dms", out)
    assert re.search(r"GET /api/auth/me 200 \d+\.\dms", out)
    for secret in (DEMO_PASSWORD, tokens["accessToken"], tokens["refreshToken"], tokens["accessToken"][:40]):
        assert secret not in out


def test_control_routes_absent_when_disabled() -> None:
    with start_standin({"RATE_LIMIT_MAX": "5"}) as server:
        for method, path in (
            ("GET", "/faults"),
            ("PUT", "/faults"),
            ("GET", "/requests"),
            ("GET", "/stats"),
            ("POST", "/rate-limit/reset"),
            ("PUT", "/config"),
            ("GET", "/mailbox"),
            ("POST", "/tokens"),
        ):
            r = server.control(method, path, json={"status": 500, "email": DEMO_EMAIL})
            assert_error(r, 404, "NOT_FOUND")
        assert server.get("/health").status_code == 200
        assert server.login().status_code == 200


def test_sigterm_finishes_in_flight_request() -> None:
    with start_standin({"STANDIN_FAULT_CONTROL": "1"}) as server:
        server.control("PUT", "/faults", json={"latencyMs": 600, "paths": ["/health"]})
        result: dict[str, Any] = {}

        def slow() -> None:
            result["response"] = requests.get(server.url("/health"), timeout=5)

        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.2)
        server.proc.send_signal(signal.SIGTERM)
        t.join(5)
        assert result["response"].status_code == 200
        assert server.proc.wait(timeout=5) == 0
        assert "SIGTERM received" in server.output()


def test_bad_configuration_exits_2() -> None:
    proc = subprocess.run(
        [require_node(), "server.js"],
        cwd=STANDIN_DIR,
        env={"RATE_LIMIT_HEADERS": "draft-9", "PORT": "0"},
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert proc.returncode == 2
    assert "RATE_LIMIT_HEADERS" in proc.stderr
