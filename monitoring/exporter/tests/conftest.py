"""Fixtures: the auth server stand-in as a real Node process, tiny local servers, metric helpers.

The stand-in (tests/standins/auth_server) needs ``node`` and its ``node_modules`` (``make standin-deps``).
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from rozitech_auth_exporter.config import Config, Credentials
from rozitech_auth_exporter.probe import Prober
from rozitech_auth_exporter.state import ProbeState, StateCollector

# the repository's one stand-in harness (tests/standins/standin_harness.py)
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "standins"))
from standin_harness import LocalStandin, launch
from standin_harness import free_port as free_port  # re-exported for the tests

REPO = Path(__file__).resolve().parents[3]
JWT_SECRET = "exporter-test-secret-0123456789abcdef"
DEMO = Credentials(email="demo@rozitech.test", password="Demo-Passw0rd!")


class StandIn:
    """A running stand-in (fault control on), as these tests use it, over the repository's one stand-in
    harness (tests/standins/standin_harness.py): base URL and JSON control-API helpers."""

    def __init__(self, server: LocalStandin) -> None:
        self.server = server
        self.proc, self.port, self.url = server.proc, server.port, server.base_url

    def control(self, method: str, path: str, body: Any = None) -> Any:
        r = self.server.control(method, path, body)
        assert r.status_code in (200, 201), (path, r.status_code, r.text)
        return r.json()

    def faults(self, **faults: Any) -> None:
        self.control("PUT", "/faults", faults)

    def reset(self) -> None:
        self.server.reset()

    def stats(self) -> dict[str, Any]:
        return self.server.stats()

    def count(self, path: str) -> int:
        return self.server.path_stats(path)["count"]

    def output(self) -> str:
        return self.server.output()


@contextlib.contextmanager
def start_standin(env: dict[str, str] | None = None) -> Iterator[StandIn]:
    """The stand-in on a free loopback port with fault control on and ``env`` on top (harness ``launch``)."""
    with launch({"STANDIN_FAULT_CONTROL": "1", **(env or {})}, jwt_secret=JWT_SECRET) as server:
        yield StandIn(server)


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
