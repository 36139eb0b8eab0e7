"""Issue 16 items 4 and 5: one total deadline per probe (DNS, connect, TLS, status line, headers, body), the
last-cycle time and an unhealthy ``/-/healthy`` when cycles stop finishing, and a dead first address.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests
from prometheus_client import CollectorRegistry
from rozitech_auth_exporter import transport
from rozitech_auth_exporter.probe import Budget
from rozitech_auth_exporter.server import make_app, serve
from rozitech_auth_exporter.state import ProbeState

from .conftest import free_port, http_answer, make_exporter

P = "rozitech_auth_probe_"
OK_BODY = b'{"status":"ok"}'


def _read_request(conn: socket.socket) -> bool:
    conn.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return False
        data += chunk
    return True


def trickle(prefix: bytes, payload: bytes, every: float = 0.2):
    """A handler that sends ``prefix`` at once, then ``payload`` one byte every ``every`` seconds."""

    def handler(conn: socket.socket) -> None:
        if not _read_request(conn):
            return
        with contextlib.suppress(OSError):
            conn.sendall(prefix)
            for byte in payload:
                conn.sendall(bytes([byte]))
                time.sleep(every)

    return handler


HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\nConnection: close\r\n\r\n"


@pytest.mark.parametrize(
    ("phase", "prefix", "payload"),
    [
        ("status line", b"", HEAD + OK_BODY),
        ("headers", b"HTTP/1.1 200 OK\r\n", HEAD[17:] + OK_BODY),
        ("body", HEAD, OK_BODY),
    ],
)
def test_a_trickling_server_cannot_hold_the_probe_past_its_deadline(tiny_server, phase, prefix, payload) -> None:
    # 15+ bytes at one per 0.2 s would take 3+ s; every single read returns within 0.2 s, so only a total
    # deadline stops it (a per-read timeout of 1 s never fires).
    server = tiny_server(trickle(prefix, payload))
    exporter = make_exporter(server.url, credentials=None, timeout=1.0, connect_timeout=1.0)
    start = time.monotonic()
    exporter.cycle()
    elapsed = time.monotonic() - start
    assert 0.9 < elapsed < 1.5, f"{phase}: the cycle took {elapsed:.2f}s with timeout=1"
    assert exporter.value(f"{P}success", probe="health") == 0
    assert exporter.value(f"{P}request_errors_total", endpoint="health", reason="timeout") == 1
    assert exporter.value(f"{P}duration_seconds", probe="health") < 1.5


def test_the_deadline_covers_every_request_of_the_verify_probe(tiny_server) -> None:
    # login answers at once with a token, then /me trickles: login + me share one 1 s deadline.
    login = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 24\r\nConnection: close\r\n\r\n"
        b'{"accessToken":"t-0001"}'
    )

    def handler(conn: socket.socket) -> None:
        if not _read_request(conn):
            return
        time.sleep(0.6)
        with contextlib.suppress(OSError):
            conn.sendall(login)

    server = tiny_server(handler)
    exporter = make_exporter(server.url, timeout=1.0, connect_timeout=1.0)
    start = time.monotonic()
    exporter.prober.probe_verify(Budget(6))
    elapsed = time.monotonic() - start
    assert elapsed < 1.4, f"login (0.6 s) + me (0.6 s) must stop at the 1 s probe deadline, took {elapsed:.2f}s"
    assert exporter.value(f"{P}request_errors_total", endpoint="me", reason="timeout") == 1


def test_slow_name_resolution_is_bounded_by_the_deadline(monkeypatch) -> None:
    real = socket.getaddrinfo

    def slow(host, *args, **kwargs):
        if host == "slow-dns.test":
            time.sleep(3)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow)
    exporter = make_exporter("http://slow-dns.test:9", credentials=None, timeout=1.0, connect_timeout=1.0)
    start = time.monotonic()
    exporter.cycle()
    assert time.monotonic() - start < 1.5
    assert exporter.value(f"{P}request_errors_total", endpoint="health", reason="timeout") == 1


def test_last_cycle_time_is_exported() -> None:
    exporter = make_exporter(f"http://127.0.0.1:{free_port()}", credentials=None)
    assert exporter.value(f"{P}last_cycle_timestamp_seconds") is None, "absent before the first cycle"
    before = time.time()
    exporter.cycle()
    assert before <= exporter.value(f"{P}last_cycle_timestamp_seconds") <= time.time()
    assert exporter.value(f"{P}cycles_total") == 1


def test_healthy_turns_503_when_cycles_stop_finishing() -> None:
    now = [1000.0]
    state = ProbeState(interval=30.0, max_requests=6, timeout=5.0, clock=lambda: now[0])
    assert state.stale_after == 3 * 30 + 2 * 5
    app = make_app(CollectorRegistry(), state, clock=lambda: now[0])
    httpd, _ = serve("127.0.0.1", 0, app)
    url = f"http://127.0.0.1:{httpd.server_address[1]}/-/healthy"
    try:
        now[0] = 1000.0 + 99
        assert requests.get(url, timeout=5).status_code == 200, "no cycle yet, but not overdue"
        now[0] = 1000.0 + 101
        assert requests.get(url, timeout=5).status_code == 503, "no cycle finished since the start"
        state.finish_cycle(1, 1100.0)
        now[0] = 1100.0 + 100
        assert requests.get(url, timeout=5).status_code == 200
        now[0] = 1100.0 + 101
        answer = requests.get(url, timeout=5)
        assert answer.status_code == 503
        assert answer.text == "prober stalled\n"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_the_prober_keeps_finishing_cycles_against_a_trickling_server(tiny_server) -> None:
    server = tiny_server(trickle(b"", HEAD + OK_BODY, every=0.1))
    exporter = make_exporter(server.url, credentials=None, interval=1.0, timeout=0.5, connect_timeout=0.5)
    stop = threading.Event()
    worker = threading.Thread(target=exporter.prober.run_forever, args=(stop,), daemon=True)
    worker.start()
    time.sleep(2.7)
    stop.set()
    worker.join(timeout=5)
    assert exporter.value(f"{P}cycles_total") == 3, "cycles at 0, 1 and 2 s, each cut at 0.5 s"
    assert exporter.state.healthy(time.time())
    assert time.time() - exporter.value(f"{P}last_cycle_timestamp_seconds") < 2


# 5. A dead first address -----------------------------------------------------------------------------------
@contextlib.contextmanager
def blackhole(port: int) -> Iterator[None]:
    """127.0.0.2:``port`` accepts no connection: its accept queue is full, so the kernel drops new SYNs and a
    connect there hangs (an unreachable address without needing a route to nowhere)."""
    listener = socket.socket()
    listener.bind(("127.0.0.2", port))
    listener.listen(0)
    filler = socket.socket()
    filler.setblocking(False)
    filler.connect_ex(("127.0.0.2", port))
    time.sleep(0.05)
    try:
        yield
    finally:
        filler.close()
        listener.close()


def _fake_resolver(monkeypatch, name: str, first: str, port: int) -> None:
    real = socket.getaddrinfo

    def resolver(host, *args, **kwargs):
        if host == name:
            tcp = (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "")
            return [(*tcp, (first, port)), (*tcp, ("127.0.0.1", port))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)


def test_5_dead_first_address_with_connect_timeout_equal_to_timeout_still_succeeds(tiny_server, monkeypatch) -> None:
    server = tiny_server(http_answer(200, OK_BODY))
    _fake_resolver(monkeypatch, "auth.example.test", "127.0.0.2", server.port)
    with blackhole(server.port):
        with socket.socket() as probe:  # the fixture really is dead: a plain connect times out
            probe.settimeout(0.5)
            with pytest.raises(TimeoutError):
                probe.connect(("127.0.0.2", server.port))
        exporter = make_exporter(
            f"http://auth.example.test:{server.port}", credentials=None, timeout=2.0, connect_timeout=2.0
        )
        start = time.monotonic()
        exporter.cycle()
        elapsed = time.monotonic() - start
    assert exporter.value(f"{P}success", probe="health") == 1
    assert exporter.value(f"{P}health_http_status_code") == 200
    assert elapsed < 1.0, f"the second address is tried after 250 ms, not after the dead one's timeout ({elapsed:.2f}s)"


def test_5b_refused_first_address_falls_through_at_once(tiny_server, monkeypatch) -> None:
    server = tiny_server(http_answer(200, OK_BODY))
    _fake_resolver(monkeypatch, "auth.example.test", "127.0.0.3", server.port)  # nothing listens there
    exporter = make_exporter(f"http://auth.example.test:{server.port}", credentials=None, timeout=2.0)
    start = time.monotonic()
    exporter.cycle()
    assert exporter.value(f"{P}success", probe="health") == 1
    assert time.monotonic() - start < 0.25, "a refused attempt starts the next one at once (RFC 8305)"


def test_5c_every_address_dead_fails_as_timeout_within_the_deadline(monkeypatch) -> None:
    port = free_port()
    real = socket.getaddrinfo

    def resolver(host, *args, **kwargs):
        if host == "dead.example.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.2", port))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    with blackhole(port):
        exporter = make_exporter(f"http://dead.example.test:{port}", credentials=None, timeout=1.0, connect_timeout=3)
        start = time.monotonic()
        exporter.cycle()
        assert time.monotonic() - start < 1.4
    assert exporter.value(f"{P}request_errors_total", endpoint="health", reason="timeout") == 1


def test_interleave_alternates_families_first_family_first() -> None:
    six = [(socket.AF_INET6, 1, 6, "", (f"2001:db8::{n}", 443, 0, 0)) for n in (1, 2, 3)]
    four = [(socket.AF_INET, 1, 6, "", (f"192.0.2.{n}", 443)) for n in (1, 2)]
    ordered = transport.interleave(six + four)
    assert [info[4][0] for info in ordered] == ["2001:db8::1", "192.0.2.1", "2001:db8::2", "192.0.2.2", "2001:db8::3"]
