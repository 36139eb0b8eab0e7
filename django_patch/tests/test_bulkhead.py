"""Bulkhead (call slots per host) and the read timeout that follows observed latency."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.test import Client

from rozitech_remote_auth.bulkhead import Bulkhead, BulkheadFull
from rozitech_remote_auth.client import get_client
from rozitech_remote_auth.conf import RemoteAuthConfigError, parse_settings
from rozitech_remote_auth.latency import LatencyEstimate
from tests.support import bearer, failures, make_token

ROOT = Path(__file__).resolve().parents[1]


def hold(bulkhead: Bulkhead, seconds: float, call_seconds: float = 5.0) -> threading.Thread:
    """Hold one slot for ``seconds`` in a thread; returns once the slot is held."""
    held = threading.Event()

    def run() -> None:
        with bulkhead.slot(call_seconds):
            held.set()
            time.sleep(seconds)

    thread = threading.Thread(target=run)
    thread.start()
    assert held.wait(5)
    return thread


def test_slot_busy_past_the_budget_fails_fast_with_the_holders_time_left(tmp_path):
    bulkhead = Bulkhead(tmp_path, slots=1, wait=0.2)
    holder = hold(bulkhead, 1.0, call_seconds=4.0)
    time.sleep(0.3)  # the holder is now older than the budget
    started = time.monotonic()
    with pytest.raises(BulkheadFull) as raised, bulkhead.slot(4.0):
        pass
    assert time.monotonic() - started < 0.05  # no waiting at all
    assert raised.value.retry_after == 4  # ceil(4.0 - 0.3): the holder's call ends by then
    holder.join()
    with bulkhead.slot(1.0):  # freed
        pass


def test_slot_younger_than_the_budget_is_waited_for(tmp_path):
    bulkhead = Bulkhead(tmp_path, slots=1, wait=0.5)
    holder = hold(bulkhead, 0.15)
    started = time.monotonic()
    with bulkhead.slot(1.0):
        waited = time.monotonic() - started
    holder.join()
    assert 0.05 < waited < 0.5


def test_waiting_stops_at_the_budget(tmp_path):
    bulkhead = Bulkhead(tmp_path, slots=1, wait=0.2)
    holder = hold(bulkhead, 1.0)
    started = time.monotonic()
    with pytest.raises(BulkheadFull), bulkhead.slot(1.0):
        pass
    assert 0.1 < time.monotonic() - started < 0.35
    holder.join()


def test_two_slots_admit_two_callers(tmp_path):
    bulkhead = Bulkhead(tmp_path, slots=2, wait=0.0)
    first = hold(bulkhead, 0.5)
    second = hold(bulkhead, 0.5)
    with pytest.raises(BulkheadFull), bulkhead.slot(1.0):
        pass
    first.join()
    second.join()


HOLDER = """
import sys, time
from pathlib import Path
from rozitech_remote_auth.bulkhead import Bulkhead
with Bulkhead(Path(sys.argv[1]), slots=1, wait=0.0).slot(30.0):
    print("held", flush=True)
    time.sleep(60)
"""


def test_slots_are_shared_by_processes_and_freed_when_the_holder_is_killed(tmp_path):
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "held"
        bulkhead = Bulkhead(tmp_path, slots=1, wait=0.0)
        with pytest.raises(BulkheadFull) as raised, bulkhead.slot(1.0):
            pass
        assert 29 <= raised.value.retry_after <= 30
        child.send_signal(signal.SIGKILL)  # no cleanup code runs: the kernel drops the flock
        child.wait(10)
        with bulkhead.slot(1.0):
            pass
    finally:
        child.kill()
        child.wait(10)


# -- through the app ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_hanging_auth_server_holds_one_worker_the_others_get_503_at_once(upstream, settings):
    settings.AUTH_SERVICE_BULKHEAD_WAIT = 0.1
    settings.AUTH_SERVICE_TIMEOUT = 1.0
    settings.AUTH_SERVICE_TOTAL_TIMEOUT = 1.5
    upstream.hang()
    stuck: list[int] = []
    first = threading.Thread(
        target=lambda: stuck.append(
            Client().get("/api/default/", **bearer(make_token("u-1", "a@example.com"))).status_code
        )
    )
    first.start()
    time.sleep(0.3)  # the first call holds the slot, older than the budget
    before = failures("bulkhead_full")
    started = time.monotonic()
    response = Client().get("/api/default/", **bearer(make_token("u-2", "b@example.com")))
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert elapsed < 0.2
    assert 1 <= int(response["Retry-After"]) <= 2  # until the holder's call must end
    assert failures("bulkhead_full") == before + 1
    first.join()
    upstream.release.set()
    assert stuck == [503]
    assert upstream.calls == 1  # the rejected request made no call
    # a bulkhead rejection is not an auth-server failure: only the one timeout counted
    assert get_client().breaker.fail_counter == 1


# -- adaptive read timeout -------------------------------------------------------------------


def test_estimate_follows_rfc_6298(tmp_path):
    estimate = LatencyEstimate(tmp_path / "latency")
    assert estimate.timeout(0.5, 5.0) == 5.0  # nothing observed yet: the full timeout
    estimate.observe(0.1)  # SRTT 0.1, RTTVAR 0.05
    assert estimate.timeout(0.0, 5.0) == pytest.approx(0.1 + 4 * 0.05)
    estimate.observe(0.3)  # RTTVAR 3/4*0.05 + 1/4*0.2 = 0.0875, SRTT 7/8*0.1 + 1/8*0.3 = 0.125
    assert estimate.timeout(0.0, 5.0) == pytest.approx(0.125 + 4 * 0.0875)
    assert estimate.timeout(1.0, 5.0) == 1.0  # the floor
    estimate.observe(4.0)
    assert estimate.timeout(0.0, 0.8) == 0.8  # the ceiling (AUTH_SERVICE_TIMEOUT)
    # another worker of the host reads the same estimate
    assert LatencyEstimate(tmp_path / "latency").timeout(0.0, 9.0) == pytest.approx(
        estimate.timeout(0.0, 9.0)
    )


@pytest.mark.django_db
def test_hang_after_fast_answers_costs_the_adaptive_timeout_not_the_full_one(upstream, settings):
    settings.AUTH_SERVICE_TIMEOUT = 3.0
    settings.AUTH_SERVICE_TOTAL_TIMEOUT = 4.0
    settings.AUTH_SERVICE_ADAPTIVE_TIMEOUT_MIN = 0.3
    for index in range(5):
        token = make_token(f"u-{index}", f"{index}@example.com")
        assert Client().get("/api/default/", **bearer(token)).status_code == 200
    assert get_client().read_timeout() == pytest.approx(0.3)  # loopback answers: the floor
    upstream.hang()
    started = time.monotonic()
    response = Client().get("/api/default/", **bearer(make_token("u-h", "h@example.com")))
    elapsed = time.monotonic() - started
    upstream.release.set()
    assert response.status_code == 503
    assert 0.25 < elapsed < 0.8  # not 3 s
    assert get_client().read_timeout(trial=True) == 3.0  # trial calls get the full timeout


@pytest.mark.django_db
def test_adaptive_timeout_can_be_turned_off(upstream, settings):
    settings.AUTH_SERVICE_TIMEOUT = 2.0
    settings.AUTH_SERVICE_ADAPTIVE_TIMEOUT_MIN = 0
    assert Client().get("/api/default/", **bearer(make_token("u-1", "a@x.com"))).status_code == 200
    assert get_client().read_timeout() == 2.0


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("AUTH_SERVICE_BULKHEAD_SLOTS", "-1"),
        ("AUTH_SERVICE_BULKHEAD_SLOTS", "1.5"),
        ("AUTH_SERVICE_BULKHEAD_WAIT", "-0.1"),
        ("AUTH_SERVICE_ADAPTIVE_TIMEOUT_MIN", "soon"),
    ],
)
def test_bad_bulkhead_settings_name_the_key(key, value):
    with pytest.raises(RemoteAuthConfigError) as raised:
        parse_settings({"AUTH_SERVICE_URL": "https://auth.example.com", key: value})
    assert raised.value.key == key


def test_bulkhead_defaults():
    cfg = parse_settings({"AUTH_SERVICE_URL": "https://auth.example.com"})
    assert (cfg.bulkhead_slots, cfg.bulkhead_wait, cfg.adaptive_timeout_min) == (1, 0.5, 0.5)
    assert cfg.bulkhead_dir is None


@pytest.mark.django_db(transaction=True)
def test_no_queueing_behind_a_holder_older_than_a_normal_answer(upstream, settings):
    """With answers known to take milliseconds, a slot held for 0.3 s is waiting on a hanging
    auth server: the next call gets its 503 at once, not after the 2-s budget."""
    settings.AUTH_SERVICE_TIMEOUT = 3.0
    settings.AUTH_SERVICE_TOTAL_TIMEOUT = 4.0
    settings.AUTH_SERVICE_ADAPTIVE_TIMEOUT_MIN = 1.5  # the holder waits 1.5 s
    settings.AUTH_SERVICE_BULKHEAD_WAIT = 2.0
    for _ in range(5):
        get_client().latency.observe(0.01)  # what a healthy loopback auth server answers in
    assert get_client().latency.expected() < 0.1
    upstream.hang()
    first = threading.Thread(
        target=lambda: Client().get("/api/default/", **bearer(make_token("u-h", "h@example.com")))
    )
    first.start()
    time.sleep(0.3)
    started = time.monotonic()
    response = Client().get("/api/default/", **bearer(make_token("u-2", "b@example.com")))
    elapsed = time.monotonic() - started
    upstream.release.set()
    first.join()
    assert response.status_code == 503
    assert response["Retry-After"] in ("1", "2")  # the holder's call ends 2 s after it began
    assert elapsed < 0.5  # queueing would have lasted until the holder's 1.5-s timeout


def test_a_waiter_keeps_waiting_for_a_new_young_holder(tmp_path):
    """Holder A releases, B takes the slot first: C still queues (B is young) instead of failing
    because A's age ran past the patience."""
    bulkhead = Bulkhead(tmp_path, slots=1, wait=0.5)
    first = hold(bulkhead, 0.12)
    order: list[str] = []

    def second() -> None:
        time.sleep(0.02)
        with bulkhead.slot(1.0, wait=0.15):
            order.append("b")
            time.sleep(0.1)

    b = threading.Thread(target=second)
    b.start()
    time.sleep(0.05)
    with bulkhead.slot(1.0, wait=0.15):  # A is 0.05 s old: wait; then B, younger than 0.15 s
        order.append("c")
    first.join()
    b.join()
    assert order in (["b", "c"], ["c", "b"])


def test_default_directory_is_per_app(monkeypatch, tmp_path):
    from rozitech_remote_auth.bulkhead import default_directory

    monkeypatch.delenv("RUNTIME_DIRECTORY", raising=False)
    monkeypatch.chdir(tmp_path)
    here = default_directory("https://auth.example.com")
    assert default_directory("https://auth.example.com") == here
    assert default_directory("https://other.example.com") != here
    (tmp_path / "other-app").mkdir()
    monkeypatch.chdir(tmp_path / "other-app")
    assert default_directory("https://auth.example.com") != here
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path / "run"))
    assert default_directory("https://auth.example.com").parent == tmp_path / "run"
