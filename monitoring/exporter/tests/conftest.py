"""Fixtures: the auth server stand-in as a real Node process, tiny local servers, metric helpers.

The stand-in (tests/standins/auth_server) needs ``node`` and its ``node_modules`` (``make standin-deps``).
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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from rozitech_auth_exporter.config import Config, Credentials
from rozitech_auth_exporter.probe import Prober
from rozitech_auth_exporter.state import ProbeState, StateCollector

REPO = Path(__file__).resolve().parents[3]
STANDIN_DIR = REPO / "tests" / "standins" / "auth_server"
DEMO = Credentials(email="demo@rozitech.test", password="Demo-Passw0rd!")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class StandIn:
    """A running stand-in: base URL and control-API helpers (``/__standin``, fault control on)."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        self.proc, self.port, self.log_path = proc, port, log_path
        self.url = f"http://127.0.0.1:{port}"

    def control(self, method: str, path: str, body: Any = None) -> Any:
        r = requests.request(method, f"{self.url}/__standin{path}", json=body, timeout=10)
        assert r.status_code in (200, 201), (path, r.status_code, r.text)
        return r.json()

    def faults(self, **faults: Any) -> None:
        self.control("PUT", "/faults", faults)

    def reset(self) -> None:
        self.control("DELETE", "/faults")
        self.control("POST", "/rate-limit/reset")
        self.control("DELETE", "/requests")
        self.control("PUT", "/config", {"responseShape": "wrapped"})

    def stats(self) -> dict[str, Any]:
        return self.control("GET", "/stats")

    def count(self, path: str) -> int:
        return int(self.stats()["paths"].get(path, {}).get("count", 0))

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@contextlib.contextmanager
def start_standin(env: dict[str, str] | None = None) -> Iterator[StandIn]:
    node = shutil.which("node")
    if node is None or not (STANDIN_DIR / "node_modules" / "express-rate-limit").is_dir():
        pytest.fail(f"the auth stand-in needs node and `npm ci` in {STANDIN_DIR} (make standin-deps)")
    port = free_port()
    full_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "JWT_SECRET": "exporter-test-secret-0123456789abcdef",
        "STANDIN_FAULT_CONTROL": "1",
        **(env or {}),
    }
    fd, name = tempfile.mkstemp(prefix="auth-standin-", suffix=".log")
    log_path = Path(name)
    with os.fdopen(fd, "wb") as log:
        proc = subprocess.Popen(
            [node, "server.js"], cwd=STANDIN_DIR, env=full_env, stdout=log, stderr=subprocess.STDOUT
        )
    server = StandIn(proc, port, log_path)
    try:
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                pytest.fail(f"stand-in exited with {proc.returncode}:\n{server.output()}")
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(f"{server.url}/health", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"stand-in did not start:\n{server.output()}")
            time.sleep(0.05)
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log_path.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def standin_server() -> Iterator[StandIn]:
    """Wrapped shape, draft-6 + legacy headers, the production limit (150 per 15 min), fault control on."""
    with start_standin() as server:
        yield server


@pytest.fixture()
def standin(standin_server: StandIn) -> StandIn:
    standin_server.reset()
    return standin_server


class Exporter:
    """A prober + its state + a registry, driven cycle by cycle from the test (no background thread)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.state = ProbeState(
            interval=config.interval, max_requests=config.max_requests_per_cycle, timeout=config.timeout
        )
        self.registry = CollectorRegistry()
        self.registry.register(StateCollector(self.state))
        self.prober = Prober(config, self.state)

    def cycle(self) -> int:
        return self.prober.run_cycle()

    def text(self) -> str:
        return generate_latest(self.registry).decode()

    def value(self, name: str, **labels: str) -> float | None:
        """The sample ``name`` with exactly these labels, or None when absent."""
        for family in text_string_to_metric_families(self.text()):
            for sample in family.samples:
                if sample.name == name and sample.labels == labels:
                    return float(sample.value)
        return None


def make_exporter(url: str, credentials: Credentials | None = DEMO, **overrides: Any) -> Exporter:
    settings: dict[str, Any] = {"interval": 30.0, "timeout": 2.0, "connect_timeout": 1.0, **overrides}
    return Exporter(Config(target_url=url, credentials=credentials, **settings))


class TinyServer:
    """A raw TCP server on loopback running ``handler(conn)`` per connection; counts connections."""

    def __init__(self, handler) -> None:
        self.handler = handler
        self.connections = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            try:
                self.handler(conn)
            finally:
                with contextlib.suppress(OSError):
                    conn.close()

    def close(self) -> None:
        self._stop = True
        self.sock.close()


@pytest.fixture()
def tiny_server():
    servers: list[TinyServer] = []

    def factory(handler) -> TinyServer:
        server = TinyServer(handler)
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.close()


def read_request_head(conn: socket.socket) -> bytes | None:
    """Read one request up to the end of its header block (5-s timeout); ``None`` when the peer closed first."""
    conn.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return None
        data += chunk
    return data


def http_answer(status: int, body: bytes, content_type: str = "application/json"):
    """A handler that reads one request and answers ``status`` with ``body``, then closes."""

    def handler(conn: socket.socket) -> None:
        if read_request_head(conn) is None:
            return
        reason = {200: "OK", 503: "Service Unavailable"}.get(status, "Status")
        head = f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        conn.sendall(head.encode() + b"Connection: close\r\n\r\n" + body)

    return handler
