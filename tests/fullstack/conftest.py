"""The full-stack sandbox as test fixtures: the published loopback ports of `make demo`'s containers.

Topology (tests/sandbox/up.yml, inventory/sandbox): the auth server stand-in (127.0.0.1:4000, its test-only
control API on), nginx + TLS for auth.rozitech.test (127.0.0.1:8443), two SaaS Admin hosts (127.0.0.1:8080,
127.0.0.1:8081) sharing one Redis, and on this machine's Docker engine the auth probe exporter
(127.0.0.1:9747), Prometheus (127.0.0.1:9090), Alertmanager (127.0.0.1:9093) and the alert sink, the webhook
receiver Alertmanager delivers to (127.0.0.1:9095, tests/sandbox/alert_sink). Everything here talks to those
ports or to `docker`. The stand-in is driven through the one harness, tests/standins/standin_harness.py
(`Sandbox.standin`); `Sandbox` keeps its own method names for the fault matrix. Tokens are never printed.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
from standin_harness import (
    DEMO_EMAIL,
    SANDBOX_APP_CONTAINERS,
    SANDBOX_APP_URLS,
    SANDBOX_AUTH_URL,
    SANDBOX_STANDIN_CONTAINER,
    StandinClient,
    metric_values,
)

ROOT = Path(__file__).resolve().parents[2]
AUTH = SANDBOX_AUTH_URL
APPS = SANDBOX_APP_URLS
# The containers behind APPS, in the same order: their private metrics listeners (remote_auth_metrics_listen).
APP_CONTAINERS = SANDBOX_APP_CONTAINERS
METRICS_PORT = 9748
# A page of the app that needs no token (the fixture, like the real app, has no /health/).
PUBLIC_PAGE = "/api/home/"
PROMETHEUS = os.environ.get("SANDBOX_PROMETHEUS_URL", "http://127.0.0.1:9090")
EXPORTER = os.environ.get("SANDBOX_EXPORTER_URL", "http://127.0.0.1:9747")
ALERTMANAGER = os.environ.get("SANDBOX_ALERTMANAGER_URL", "http://127.0.0.1:9093")
ALERT_SINK = os.environ.get("SANDBOX_ALERT_SINK_URL", "http://127.0.0.1:9095")
PROXY = ("127.0.0.1", int(os.environ.get("SANDBOX_PROXY_PORT", "8443")))
AUTH_DOMAIN = "auth.rozitech.test"
SANDBOX_CA = ROOT / ".cache" / "sandbox-pki"
EMAIL = DEMO_EMAIL
# The rollout's defaults (roles/remote_auth/defaults/main.yml), which the sandbox keeps.
READ_TIMEOUT = 5.0
TOTAL_DEADLINE = 8.0
BREAKER_RESET = 30.0

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 2.0) -> T:
    """Poll ``probe`` until it returns a truthy value; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = probe()
        except (requests.RequestException, OSError) as exc:
            last = exc  # not an answer: poll again
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def docker(*args: str, check: bool = True) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, check=False, timeout=120)
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    seconds: float
    body: Any = None


@dataclass
class Sandbox:
    """Calls into the sandbox; ``faults`` remembers what a test changed so teardown can undo it."""

    session: requests.Session = field(default_factory=requests.Session)
    standin: StandinClient = field(default_factory=lambda: StandinClient(AUTH))
    _metrics_urls: dict[str, str] = field(default_factory=dict)

    # -- the auth server stand-in (tests/standins/standin_harness.py) ---------------------------
    def control(self, method: str, path: str, **kwargs: Any) -> Any:
        """``/__standin<path>`` (``kwargs`` as for ``requests``): the answer's JSON; raises on an error status."""
        response = self.standin.control(method, path, **kwargs)
        response.raise_for_status()
        return response.json()

    def mint(self, count: int = 1) -> list[str]:
        """Fresh access tokens for the demo user, each distinct (its own ``expiresIn``)."""
        return self.standin.mint_distinct(count, email=EMAIL)

    def me_calls(self) -> int:
        """``GET /api/auth/me`` requests the app hosts made (not the exporter's), from the request log."""
        return sum(
            1
            for entry in self.standin.requests_log()
            if entry["path"] == "/api/auth/me"
            and str(entry.get("headers", {}).get("user-agent", "")).startswith("rozitech-remote-auth/")
        )

    def set_faults(self, **faults: Any) -> None:
        self.standin.set_faults(**faults)

    def clear(self) -> None:
        """No faults, a fresh rate-limit window for every client, an empty request log."""
        self.standin.clear()

    def standin_service(self, action: str) -> None:
        docker("exec", SANDBOX_STANDIN_CONTAINER, "systemctl", action, "auth-standin.service")

    # -- the app hosts -------------------------------------------------------------------------
    def get(self, app: str, path: str, token: str | None = None, timeout: float = 60) -> Answer:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        started = time.monotonic()
        response = requests.get(f"{app}{path}", headers=headers, timeout=timeout)
        seconds = time.monotonic() - started
        try:
            body = response.json()
        except ValueError:
            body = None
        return Answer(response.status_code, dict(response.headers), seconds, body)

    def me(self, app: str, token: str) -> Answer:
        return self.get(app, "/api/me/", token)

    def metrics_url(self, app: str) -> str:
        """The private metrics listener of ``app``'s container (its address on the sandbox network)."""
        if app not in self._metrics_urls:
            container = APP_CONTAINERS[APPS.index(app)]
            address = docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", container)
            self._metrics_urls[app] = f"http://{address}:{METRICS_PORT}/metrics"
        return self._metrics_urls[app]

    def app_metrics(self, app: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return metric_values(requests.get(self.metrics_url(app), timeout=10).text)

    def app_metric(self, app: str, name: str, reduce: Callable[[list[float]], float] = sum, **labels: str) -> float:
        """``reduce`` over the samples of ``name`` whose labels include ``labels`` (0 when none)."""
        wanted = set(labels.items())
        values = [v for (n, lbl), v in self.app_metrics(app).items() if n == name and wanted <= set(lbl)]
        return reduce(values) if values else 0.0

    # -- monitoring ----------------------------------------------------------------------------
    def alert_state(self, name: str) -> str:
        """``inactive``, ``pending`` or ``firing`` (the most advanced of the alert's instances)."""
        alerts = requests.get(f"{PROMETHEUS}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
        states = {a["state"] for a in alerts if a["labels"].get("alertname") == name}
        return "firing" if "firing" in states else "pending" if "pending" in states else "inactive"

    def notifications(self, since: int = 0) -> list[dict[str, Any]]:
        """What Alertmanager delivered to the alert sink after sequence number ``since``, oldest first: each
        ``{"seq", "received_at", "path" ("/critical" or "/warning"), "payload" (Alertmanager's webhook JSON)}``."""
        answer = self.session.get(f"{ALERT_SINK}/notifications", params={"since": since}, timeout=10)
        answer.raise_for_status()
        return answer.json()["notifications"]

    def last_notification(self) -> int:
        """The sequence number of the newest notification the sink holds (0 = none)."""
        return max((n["seq"] for n in self.notifications()), default=0)

    def query(self, expr: str) -> list[dict[str, Any]]:
        answer = requests.get(f"{PROMETHEUS}/api/v1/query", params={"query": expr}, timeout=10).json()
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def scalar(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None


def _healthy(sandbox: Sandbox) -> bool:
    sandbox.standin_service("start")
    docker("start", "rozitech-sandbox-redis", "rozitech-sandbox-exporter")
    sandbox.clear()
    return all(sandbox.get(app, PUBLIC_PAGE).status == 200 for app in APPS)


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    box = Sandbox()
    try:
        box.control("GET", "/faults")
    except requests.RequestException as exc:
        pytest.exit(f"the sandbox is not up ({type(exc).__name__}): run `make demo` first", returncode=2)
    yield box


@pytest.fixture
def clean(sandbox: Sandbox) -> Iterator[Sandbox]:
    """Every row starts and ends with: stand-in running without faults, fresh rate-limit window, Redis and
    the exporter running, a closed circuit (an uncached token verifies on every app host)."""
    wait_for("a healthy sandbox", lambda: _healthy(sandbox), timeout=60)
    wait_for("a closed circuit on every app host", lambda: _all_verify(sandbox), timeout=BREAKER_RESET + 30)
    yield sandbox
    wait_for("a healthy sandbox after the row", lambda: _healthy(sandbox), timeout=60)


def _all_verify(sandbox: Sandbox) -> bool:
    return all(sandbox.me(app, token).status == 200 for app, token in zip(APPS, sandbox.mint(len(APPS)), strict=True))
