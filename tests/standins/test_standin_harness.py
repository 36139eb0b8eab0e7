"""The stand-in harness (tests/standins/standin_harness.py) against a real stand-in process."""

from __future__ import annotations

import jwt
import pytest
import requests
from standin_harness import (
    DEMO_EMAIL,
    ME,
    TEST_JWT_SECRET,
    StandinError,
    launch,
    metric_sum,
    metric_values,
)

METRICS = """\
# HELP rozitech_auth_probe_responses_total Answers by endpoint and status.
# TYPE rozitech_auth_probe_responses_total counter
rozitech_auth_probe_responses_total{endpoint="me",status="200"} 7.0
rozitech_auth_probe_responses_total{endpoint="me",status="429"} 2.0
rozitech_auth_probe_responses_total{endpoint="login",status="200"} 3.0
# HELP rozitech_auth_probe_up Whether the last probe succeeded.
# TYPE rozitech_auth_probe_up gauge
rozitech_auth_probe_up 1.0
"""


def test_metric_sum_filters_by_name_and_labels() -> None:
    assert metric_sum(METRICS, "rozitech_auth_probe_responses_total", endpoint="me") == 9.0
    assert metric_sum(METRICS, "rozitech_auth_probe_responses_total", endpoint="me", status="429") == 2.0
    assert metric_sum(METRICS, "rozitech_auth_probe_responses_total") == 12.0
    assert metric_sum(METRICS, "rozitech_auth_probe_up") == 1.0
    assert metric_sum(METRICS, "rozitech_auth_probe_responses_total", endpoint="refresh") == 0.0
    assert metric_values(METRICS)[("rozitech_auth_probe_up", ())] == 1.0


def test_client_mints_distinct_tokens_counts_calls_and_clears_faults() -> None:
    with launch({"STANDIN_FAULT_CONTROL": "1"}) as server:
        tokens = server.mint_distinct(3, expires_in=600)
        assert len(set(tokens)) == 3
        lifetimes = [c["exp"] - c["iat"] for c in (jwt.decode(t, TEST_JWT_SECRET, ["HS256"]) for t in tokens)]
        assert lifetimes == [601, 602, 603]
        assert {jwt.decode(t, TEST_JWT_SECRET, ["HS256"])["email"] for t in tokens} == {DEMO_EMAIL}

        assert server.get(ME, headers={"Authorization": f"Bearer {tokens[0]}"}).status_code == 200
        assert server.set_faults(status=503, paths=[ME])["active"] is True
        assert server.get(ME, headers={"Authorization": f"Bearer {tokens[1]}"}).status_code == 503
        stats = server.path_stats(ME)
        assert (stats["count"], stats["200"], stats["503"]) == (2, 1, 1)
        assert [e["path"] for e in server.requests_log() if e["path"] == ME] == [ME, ME]

        server.clear()
        assert server.get(ME, headers={"Authorization": f"Bearer {tokens[2]}"}).status_code == 200
        assert [e["status"] for e in server.requests_log() if e["path"] == ME] == [200]
        assert server.healthy()
    assert not server.healthy(), "the process is stopped when the block ends"


def test_control_api_is_off_without_fault_control() -> None:
    with launch() as server:
        assert server.control("GET", "/faults").status_code == 404
        with pytest.raises(requests.HTTPError):
            server.mint()


def test_launch_names_the_failure_with_the_process_output() -> None:
    with pytest.raises(StandinError, match="exited with 2") as failure, launch({"RATE_LIMIT_HEADERS": "draft-9"}):
        pass
    assert "RATE_LIMIT_HEADERS" in str(failure.value)
