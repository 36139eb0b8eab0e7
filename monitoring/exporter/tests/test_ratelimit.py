"""Rate-limit header parsing: every family, synthetic edge cases and the stand-in's real headers."""

from __future__ import annotations

import email.utils
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from rozitech_auth_exporter.ratelimit import (
    RETRY_AFTER_MAX,
    RETRY_AFTER_MIN,
    RateLimit,
    parse_rate_limit,
    parse_retry_after,
)

from .conftest import DEMO, REPO, make_exporter, read_request_head, start_standin

NOW = 1_800_000_000.0


def test_draft6_separate_fields() -> None:
    headers = {"RateLimit-Limit": "150", "RateLimit-Remaining": "149", "RateLimit-Reset": "900"}
    assert parse_rate_limit(headers, NOW) == RateLimit(150, 149, 900, "draft-6")


def test_draft7_combined_field_with_policy() -> None:
    headers = {"RateLimit": "limit=150, remaining=12, reset=42", "RateLimit-Policy": "150;w=900"}
    assert parse_rate_limit(headers, NOW) == RateLimit(150, 12, 42, "draft-7")


def test_draft7_limit_only_in_policy() -> None:
    headers = {"ratelimit": "remaining=3, reset=10", "ratelimit-policy": "100;w=60"}
    assert parse_rate_limit(headers, NOW) == RateLimit(100, 3, 10, "draft-7")


def test_draft8_takes_the_quota_from_the_named_policy() -> None:
    headers = {
        "RateLimit": '"150-in-15min"; r=7; t=300',
        "RateLimit-Policy": '"150-in-15min"; q=150; w=900; pk=:MDEyMzQ1Njc4OWFi=:',
    }
    assert parse_rate_limit(headers, NOW) == RateLimit(150, 7, 300, "draft-8")


def test_draft8_several_policies_the_tightest_wins() -> None:
    headers = {
        "RateLimit": '"burst";r=40;t=1, "daily";r=2;t=3600',
        "RateLimit-Policy": '"burst";q=50;w=1, "daily";q=1000;w=86400',
    }
    assert parse_rate_limit(headers, NOW) == RateLimit(1000, 2, 3600, "draft-8")


@pytest.mark.parametrize(
    ("reset", "expected"),
    [
        (str(int(NOW) + 120), 120.0),  # Unix time in seconds
        (str(int(NOW + 90) * 1000), 90.0),  # Unix time in milliseconds
        ("45", 45.0),  # a delay, as some servers send
        (str(int(NOW) - 10), 0.0),  # already past: 0, never negative
    ],
)
def test_legacy_reset_is_an_epoch_time(reset: str, expected: float) -> None:
    headers = {"X-RateLimit-Limit": "150", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}
    assert parse_rate_limit(headers, NOW) == RateLimit(150, 0, expected, "legacy")


def test_standard_fields_win_over_legacy_and_fill_gaps() -> None:
    headers = {"RateLimit-Remaining": "5", "X-RateLimit-Limit": "150", "X-RateLimit-Remaining": "9"}
    assert parse_rate_limit(headers, NOW) == RateLimit(150, 5, None, "draft-6")


def test_missing_reset_is_none_and_zero_reset_uses_retry_after() -> None:
    assert parse_rate_limit({"RateLimit-Limit": "150", "RateLimit-Remaining": "3"}, NOW).reset_after is None
    zero = {"RateLimit-Limit": "150", "RateLimit-Remaining": "0", "RateLimit-Reset": "0", "Retry-After": "30"}
    assert parse_rate_limit(zero, NOW, 429) == RateLimit(150, 0, 30, "draft-6", retry_after=30)
    assert parse_rate_limit({"RateLimit-Remaining": "0", "RateLimit-Reset": "0"}, NOW).reset_after == 0


def test_retry_after_alone_on_a_429() -> None:
    assert parse_rate_limit({"Retry-After": "120"}, NOW, 429) == RateLimit(None, 0, 120, "retry-after", 120)
    date = email.utils.formatdate(NOW + 75, usegmt=True)
    assert parse_retry_after(date, NOW) == pytest.approx(75)
    assert parse_retry_after("soon", NOW) is None


def test_no_headers_and_garbage() -> None:
    assert parse_rate_limit({"Content-Type": "application/json"}, NOW) is None
    garbage = parse_rate_limit({"RateLimit-Limit": "lots", "RateLimit-Remaining": "-1", "RateLimit-Reset": "nan"}, NOW)
    assert garbage == RateLimit(None, None, None, "draft-6")


@pytest.mark.parametrize(
    ("family", "legacy", "source"),
    [
        ("draft-6", "false", "draft-6"),
        ("draft-7", "false", "draft-7"),
        ("draft-8", "false", "draft-8"),
        ("draft-6", "true", "draft-6"),
    ],
)
def test_real_headers_from_the_standin(family: str, legacy: str, source: str) -> None:
    """express-rate-limit's own headers, each family, before and at the limit (3 per window)."""
    env = {"RATE_LIMIT_MAX": "3", "RATE_LIMIT_HEADERS": family, "RATE_LIMIT_LEGACY_HEADERS": legacy}
    with start_standin(env) as server:
        body = {"email": DEMO.email, "password": DEMO.password}
        first = requests.post(f"{server.url}/api/auth/login", json=body, timeout=5)
        parsed = parse_rate_limit(first.headers, NOW, first.status_code)
        assert parsed is not None and parsed.source == source
        assert (parsed.limit, parsed.remaining) == (3, 2)
        assert parsed.reset_after is not None and 0 < parsed.reset_after <= 900
        for _ in range(3):
            last = requests.post(f"{server.url}/api/auth/login", json=body, timeout=5)
        assert last.status_code == 429
        limited = parse_rate_limit(last.headers, NOW, 429)
        assert (limited.limit, limited.remaining) == (3, 0)
        assert 0 < limited.reset_after <= 900


def test_real_legacy_headers_from_the_standin() -> None:
    """The stand-in always sends a standard family too: keep only its X-RateLimit-* (reset = epoch seconds)."""
    with start_standin({"RATE_LIMIT_MAX": "3", "RATE_LIMIT_LEGACY_HEADERS": "true"}) as server:
        r = requests.get(f"{server.url}/api/auth/me", timeout=5)
        now = time.time()
        legacy = {k: v for k, v in r.headers.items() if k.lower().startswith("x-ratelimit-")}
        assert float(legacy["X-RateLimit-Reset"]) > 1e9, "the stand-in sends an epoch time"
        parsed = parse_rate_limit(legacy, now, r.status_code)
        assert parsed is not None and parsed.source == "legacy"
        assert (parsed.limit, parsed.remaining) == (3, 2)
        assert 0 < parsed.reset_after <= 901


# One Retry-After behaviour for the exporter and the Django patch: the shared case table ----------------------
RETRY_AFTER_TABLE = json.loads((REPO / "tests" / "shared" / "retry_after_cases.json").read_text())


@pytest.fixture(params=RETRY_AFTER_TABLE["zones"])
def local_zone(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The process's local time zone set to each zone of the table (TZ + tzset, as Django's TIME_ZONE does)."""
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    yield request.param
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("case", RETRY_AFTER_TABLE["cases"], ids=lambda case: case["name"])
def test_retry_after_shared_table(case: dict[str, Any], local_zone: str) -> None:
    assert parse_retry_after(case["value"], RETRY_AFTER_TABLE["now"]) == case["seconds"]
    assert (RETRY_AFTER_MIN, RETRY_AFTER_MAX) == (RETRY_AFTER_TABLE["min"], RETRY_AFTER_TABLE["max"])


def test_retry_after_wins_over_the_ratelimit_reset() -> None:
    """ietf-wg-httpapi/ratelimit-headers#160: reset=30 and Retry-After: 120 on a 429 means 120."""
    headers = {"RateLimit": "limit=150, remaining=0, reset=30", "Retry-After": "120"}
    parsed = parse_rate_limit(headers, NOW, 429)
    assert parsed == RateLimit(150, 0, 30, "draft-7", retry_after=120)
    assert parsed.backoff_seconds() == 120
    assert parse_rate_limit({"RateLimit": "limit=150, remaining=0, reset=30"}, NOW, 429).backoff_seconds() == 30


def _answer_429(conn: socket.socket) -> None:
    if read_request_head(conn) is None:
        return
    body = b'{"success":false,"code":"RATE_LIMITED"}'
    conn.sendall(
        b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
        b"RateLimit: limit=150, remaining=0, reset=30\r\nRetry-After: 120\r\n"
        + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )


def test_exporter_backs_off_for_retry_after_not_the_reset(tiny_server) -> None:
    server = tiny_server(_answer_429)
    exporter = make_exporter(server.url, interval=30.0)
    exporter.cycle()
    assert exporter.value("rozitech_auth_probe_responses_total", endpoint="health", code="429") == 1
    assert 115 < exporter.value("rozitech_auth_probe_backoff_seconds", probe="health") <= 120
    assert 29 < exporter.value("rozitech_auth_probe_ratelimit_reset_seconds") <= 30, "the window's reset is still shown"
    connections = server.connections
    exporter.cycle()
    assert server.connections == connections, "no request while backing off"
