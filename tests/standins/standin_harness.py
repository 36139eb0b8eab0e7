"""The one harness for the auth server stand-in (tests/standins/auth_server): control client and launcher.

Everything that drives the stand-in goes through this module: the stand-in's own tests
(tests/standins/test_auth_standin.py), the exporter's tests, the full-stack fixtures
(tests/fullstack/conftest.py) and the benches (bench/).  Standard library, ``requests`` and
``prometheus_client`` only.

* :class:`StandinClient`: the stand-in at a base URL, and its test-only control API ``/__standin/*``
  (on only with ``STANDIN_FAULT_CONTROL=1``; tests/standins/auth_server/README.md): mint tokens, set and
  clear faults, empty the rate limiter, read the request log and the per-path stats.
* :func:`launch`: ``node server.js`` on a free loopback port, waited for until ``/health`` answers, stopped
  (SIGTERM) on exit.  A :class:`LocalStandin` is a client that also holds the process and its log.
* ``SANDBOX_*``: where ``make demo``'s stand-in and app hosts answer (environment overrides).
* :func:`metric_values` / :func:`metric_sum`: Prometheus text read with ``prometheus_client.parser``
  (the app's and the exporter's metrics, for the benches and the full-stack tests).

Importing: tests/standins must be on ``sys.path``.  pytest runs from the repository root get it from
``pythonpath`` in pyproject.toml (and tests/standins is the stand-in tests' own directory); scripts insert it
themselves (``sys.path.insert(0, str(ROOT / "tests" / "standins"))``).  Tokens are never printed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

STANDIN_DIR = Path(__file__).resolve().parent / "auth_server"
DEMO_EMAIL = "demo@rozitech.test"
DEMO_PASSWORD = "Demo-Passw0rd!"  # the stand-in's seeded demo account (test only)
TEST_JWT_SECRET = "standin-test-secret-0123456789abcdef"
ME = "/api/auth/me"
# The sandbox (`make demo`, tests/sandbox/up.yml, inventory/sandbox): the stand-in's published port and its
# container, and the app hosts' published nginx ports with their containers, in the same order.
SANDBOX_AUTH_URL = os.environ.get("SANDBOX_AUTH_URL", "http://127.0.0.1:4000")
SANDBOX_STANDIN_CONTAINER = "rozitech-sandbox-auth"
SANDBOX_APP_URLS = tuple(os.environ.get("SANDBOX_APP_URLS", "http://127.0.0.1:8080,http://127.0.0.1:8081").split(","))
SANDBOX_APP_CONTAINERS = tuple(
    os.environ.get("SANDBOX_APP_CONTAINERS", "rozitech-sandbox-app1,rozitech-sandbox-app2").split(",")
)
START_TIMEOUT_S = 15.0


class StandinError(RuntimeError):
    """The stand-in cannot run here (no node, no node_modules) or did not start."""


class StandinClient:
    """The auth server stand-in at ``base_url``: plain requests and the control API ``/__standin/*``."""

    def __init__(self, base_url: str = SANDBOX_AUTH_URL, *, timeout: float = 10.0, serial_start: int = 0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.http = requests.Session()
        self._serial = serial_start
        self._serial_lock = threading.Lock()

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    # -- plain requests (keep-alive session) ---------------------------------------------------
    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.http.get(self.url(path), timeout=kw.pop("timeout", self.timeout), **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.http.post(self.url(path), timeout=kw.pop("timeout", self.timeout), **kw)

    def login(self, email: str = DEMO_EMAIL, password: str = DEMO_PASSWORD) -> requests.Response:
        return self.post("/api/auth/login", json={"email": email, "password": password})

    def healthy(self) -> bool:
        """``GET /health`` answers 200."""
        try:
            return requests.get(self.url("/health"), timeout=2).status_code == 200
        except requests.RequestException:
            return False

    # -- the control API ------------------------------------------------------------------------
    def control(self, method: str, path: str, json: Any = None, **kw: Any) -> requests.Response:
        """``/__standin<path>`` on a fresh connection (a keep-alive socket the stand-in dropped under a
        fault never affects it); the raw answer."""
        timeout = kw.pop("timeout", self.timeout)
        return requests.request(method, self.url(f"/__standin{path}"), json=json, timeout=timeout, **kw)

    def call(self, method: str, path: str, json: Any = None) -> Any:
        """:meth:`control`, raising on an error status; the answer's JSON."""
        answer = self.control(method, path, json)
        answer.raise_for_status()
        return answer.json()

    def next_serial(self, count: int = 1) -> int:
        """The first of ``count`` fresh serial numbers of this client (thread-safe)."""
        with self._serial_lock:
            first = self._serial + 1
            self._serial += count
        return first

    def mint(self, email: str = DEMO_EMAIL, expires_in: int | None = None) -> str:
        """An access token for ``email``, valid ``expires_in`` s (the stand-in's default when None).

        The stand-in signs ``{userId, email, ..., iat, exp}`` only: two tokens minted in the same second with
        the same lifetime are byte-identical.  Use :meth:`mint_distinct` for tokens that must differ."""
        body: dict[str, Any] = {"email": email}
        if expires_in is not None:
            body["expiresIn"] = expires_in
        return str(self.call("POST", "/tokens", body)["accessToken"])

    def mint_distinct(self, count: int = 1, expires_in: int = 3600, email: str = DEMO_EMAIL) -> list[str]:
        """``count`` tokens distinct from each other and from every earlier one of this client: each
        lifetime is ``expires_in`` plus a fresh serial number."""
        first = self.next_serial(count)
        return [self.mint(email, expires_in + first + i) for i in range(count)]

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """Replace the faults (``PUT /__standin/faults``); the stand-in's answer."""
        return self.call("PUT", "/faults", faults)

    def clear_faults(self) -> None:
        self.call("DELETE", "/faults")

    def reset_rate_limit(self) -> None:
        """Every client's rate-limit counter back to 0."""
        self.call("POST", "/rate-limit/reset")

    def requests_log(self) -> list[dict[str, Any]]:
        """The request log, oldest first (``{"path", "status", "headers", ...}``; no token in it)."""
        return self.call("GET", "/requests")["requests"]

    def clear(self) -> None:
        """No faults, a fresh rate-limit window for every client, an empty request log."""
        self.clear_faults()
        self.reset_rate_limit()
        self.call("DELETE", "/requests")

    def reset(self) -> None:
        """:meth:`clear`, an empty mailbox and the wrapped response shape; a new keep-alive session."""
        self.clear()
        self.call("DELETE", "/mailbox")
        self.call("PUT", "/config", {"responseShape": "wrapped"})
        self.http.close()
        self.http = requests.Session()

    def stats(self) -> dict[str, Any]:
        """``GET /__standin/stats``: ``{"paths": {path: {"count", "statuses": {...}}}, ...}``."""
        return self.call("GET", "/stats")

    def path_stats(self, path: str = ME) -> Counter[str]:
        """``{"count": n, "<status>": n, "dropped": n}`` for ``path`` since the stand-in started (or the
        stats were reset)."""
        entry = self.stats().get("paths", {}).get(path, {})
        counts: Counter[str] = Counter({k: int(v) for k, v in entry.get("statuses", {}).items()})
        counts["count"] = int(entry.get("count", 0))
        return counts


class LocalStandin(StandinClient):
    """A stand-in process started by :func:`launch`: the client plus the process, its port and its log."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        super().__init__(f"http://127.0.0.1:{port}")
        self.proc, self.port, self.log_path = proc, port, log_path

    def output(self) -> str:
        """What the process wrote to stdout and stderr so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_node() -> str:
    """The ``node`` executable; raises :class:`StandinError` when node or the stand-in's node_modules are
    missing (``make standin-deps``)."""
    node = shutil.which("node")
    if node is None:
        raise StandinError("node is not on PATH: the auth stand-in needs Node.js >= 18 (apt-get install nodejs npm)")
    if not (STANDIN_DIR / "node_modules" / "express-rate-limit").is_dir():
        raise StandinError(f"the auth stand-in has no node_modules: run `npm ci` in {STANDIN_DIR} (make standin-deps)")
    return node


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def launch(
    env: dict[str, str] | None = None,
    *,
    port: int | None = None,
    jwt_secret: str = TEST_JWT_SECRET,
    inherit_env: bool = False,
    start_timeout: float = START_TIMEOUT_S,
) -> Iterator[LocalStandin]:
    """Run ``node server.js`` on ``127.0.0.1:<port>`` (a free one by default) with ``env`` on top of
    ``PATH``, ``HOST``, ``PORT`` and ``JWT_SECRET`` (and this process's environment with ``inherit_env``).

    Yields once ``/health`` answers 200; raises :class:`StandinError` with the process's output when it
    exits or does not answer within ``start_timeout`` s.  Stops it (SIGTERM, then SIGKILL after 10 s) and
    removes its log on exit.  Fault control is off unless ``env`` has ``STANDIN_FAULT_CONTROL=1``."""
    node = require_node()
    port = port or free_port()
    base = dict(os.environ) if inherit_env else {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    full_env = {**base, "HOST": "127.0.0.1", "PORT": str(port), "JWT_SECRET": jwt_secret, **(env or {})}
    fd, name = tempfile.mkstemp(prefix="auth-standin-", suffix=".log")
    log_path = Path(name)
    with os.fdopen(fd, "wb") as log:
        proc = subprocess.Popen(
            [node, "server.js"], cwd=STANDIN_DIR, env=full_env, stdout=log, stderr=subprocess.STDOUT
        )
    server = LocalStandin(proc, port, log_path)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if proc.poll() is not None:
                raise StandinError(f"auth stand-in exited with {proc.returncode}:\n{server.output()}")
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(server.url("/health"), timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise StandinError(
                    f"auth stand-in did not answer /health within {start_timeout:.0f} s:\n{server.output()}"
                )
            time.sleep(0.05)
        yield server
    finally:
        server.http.close()
        _stop(proc)
        log_path.unlink(missing_ok=True)


# -- Prometheus text ------------------------------------------------------------------------------
Labels = tuple[tuple[str, str], ...]


def metric_values(text: str) -> dict[tuple[str, Labels], float]:
    """Every sample of a Prometheus text exposition: ``{(sample name, sorted labels): value}``."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def metric_sum(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` whose labels include ``labels`` (0 when there is none)."""
    wanted = set(labels.items())
    return sum(v for (n, lbl), v in metric_values(text).items() if n == name and wanted <= set(lbl))
