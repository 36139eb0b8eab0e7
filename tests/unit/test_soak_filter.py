"""roles/remote_auth/filter_plugins/remote_auth_soak.py: the soak's reading of the patch's metrics."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest

PLUGIN = Path(__file__).resolve().parents[2] / "roles/remote_auth/filter_plugins/remote_auth_soak.py"
_spec = importlib.util.spec_from_file_location("remote_auth_soak", PLUGIN)
soak = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(soak)

OUTAGES = ["circuit_open", "rate_limited", "timeout", "unavailable"]
REASONS = ["invalid", "forbidden", "rate_limited", "unavailable", "timeout", "circuit_open", "malformed", "refused"]


class App:
    """The patch's counters as the listener exposes them (same names, labels and help)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.lookups = Counter("rozitech_remote_auth_cache_requests", "lookups", registry=self.registry)
        self.failures = Counter("rozitech_remote_auth_verify_failures", "failures", ["reason"], registry=self.registry)
        self.requests = Counter(
            "rozitech_remote_auth_verify_requests", "verifications", ["result"], registry=self.registry
        )
        for reason in REASONS:
            self.failures.labels(reason=reason)

    def text(self) -> str:
        return generate_latest(self.registry).decode()


def test_counts_every_failure_but_the_auth_servers_own_outages():
    app = App()
    app.lookups.inc(40)
    app.failures.labels(reason="refused").inc(3)
    start = app.text()
    app.lookups.inc(100)
    app.failures.labels(reason="refused").inc(30)
    app.failures.labels(reason="invalid").inc(2)
    app.failures.labels(reason="rate_limited").inc(7)
    app.failures.labels(reason="timeout").inc(1)
    app.failures.labels(reason="malformed").inc(4)
    result = soak.soak_delta(start, app.text(), OUTAGES)
    assert result == {
        "requests": 104,  # 100 lookups + 4 malformed headers (no lookup for those)
        "failures": 36,  # refused 30 + invalid 2 + malformed 4; rate_limited and timeout left out
        "ratio": round(36 / 104, 4),
        "by_reason": {"invalid": 2, "malformed": 4, "rate_limited": 7, "refused": 30, "timeout": 1},
        "excluded": OUTAGES,
    }


def test_nothing_happened_is_zero_requests_and_no_ratio():
    app = App()
    app.lookups.inc(5)
    text = app.text()
    assert soak.soak_delta(text, text, OUTAGES) == {
        "requests": 0,
        "failures": 0,
        "ratio": 0.0,
        "by_reason": {},
        "excluded": OUTAGES,
    }


def test_a_counter_reset_counts_from_zero():
    before = App()
    before.lookups.inc(500)
    before.failures.labels(reason="invalid").inc(50)
    after = App()  # the app restarted during the soak: its counters began again
    after.lookups.inc(20)
    after.failures.labels(reason="invalid").inc(5)
    result = soak.soak_delta(before.text(), after.text(), OUTAGES)
    assert (result["requests"], result["failures"], result["ratio"]) == (20, 5, 0.25)


def test_excluding_nothing_counts_outages_too():
    app = App()
    start = app.text()
    app.lookups.inc(10)
    app.failures.labels(reason="unavailable").inc(10)
    assert soak.soak_delta(start, app.text(), [])["ratio"] == 1.0
    assert soak.soak_delta(start, app.text(), OUTAGES)["ratio"] == 0.0


def test_the_filter_is_registered_under_its_name():
    assert soak.FilterModule().filters() == {"remote_auth_soak_delta": soak.soak_delta}


def test_text_that_is_not_the_exposition_format_is_an_error():
    with pytest.raises(ValueError):
        soak.soak_delta("<html>not metrics</html>", "", OUTAGES)
