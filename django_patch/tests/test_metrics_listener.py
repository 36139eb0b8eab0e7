"""The private metrics listener: address checks, the workers' aggregate served off the app's URLconf."""

from __future__ import annotations

import socket
import urllib.request
from types import SimpleNamespace

import pytest

from rozitech_remote_auth import gunicorn_hooks, metrics_listener
from tests.test_metrics import WORKER, python


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:9748", ("127.0.0.1", 9748)),
        ("10.1.2.3:1", ("10.1.2.3", 1)),
        ("[fd00::1]:65535", ("fd00::1", 65535)),
        ("app1.internal:9748", ("app1.internal", 9748)),
    ],
)
def test_parse_listen(value, expected):
    assert metrics_listener.parse_listen(value) == expected


@pytest.mark.parametrize(
    "value", ["", "127.0.0.1", ":9748", "127.0.0.1:0", "127.0.0.1:65536", "host:port"]
)
def test_parse_listen_rejects_bad_values_naming_the_variable(value):
    with pytest.raises(ValueError, match="REMOTE_AUTH_METRICS_LISTEN must be host:port"):
        metrics_listener.parse_listen(value)


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "10.0.0.5", "172.18.0.3", "192.168.1.9", "::1", "fd00::1", "localhost"]
)
def test_private_addresses_are_accepted(host):
    assert metrics_listener.check_private(host, 9748)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "8.8.8.8", "154.65.107.211", "2001:4860::8888"])
def test_wildcard_and_public_addresses_are_refused(host):
    with pytest.raises(ValueError, match="not a loopback or private address"):
        metrics_listener.check_private(host, 9748)


def test_unresolvable_host_is_refused():
    with pytest.raises(ValueError, match="cannot resolve"):
        metrics_listener.check_private("no-such-host.invalid", 9748)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_when_ready_serves_every_workers_metrics(tmp_path, monkeypatch):
    """Two worker processes write their files; the master's listener serves their sum."""
    python(WORKER.format(state="closed"), tmp_path)
    python(WORKER.format(state="open"), tmp_path)
    port = _free_port()
    monkeypatch.setenv("REMOTE_AUTH_METRICS_LISTEN", f"127.0.0.1:{port}")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    started = []
    real_start = metrics_listener.start_from_env

    def start_and_keep():
        started.append(real_start())
        return started[-1]

    monkeypatch.setattr(metrics_listener, "start_from_env", start_and_keep)
    logged = []
    server = SimpleNamespace(
        log=SimpleNamespace(info=lambda *a: logged.append(a), error=lambda *a: logged.append(a))
    )
    gunicorn_hooks.when_ready(server)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
    finally:
        for http_server, _thread in started:
            http_server.shutdown()
            http_server.server_close()
    assert logged == [("rozitech_remote_auth: metrics listener on %s", f"127.0.0.1:{port}")]
    assert 'rozitech_remote_auth_verify_failures_total{reason="timeout"} 2.0' in text
    assert 'rozitech_remote_auth_verify_requests_total{result="success"} 2.0' in text


def test_when_ready_logs_and_carries_on_with_a_public_address(monkeypatch, tmp_path):
    monkeypatch.setenv("REMOTE_AUTH_METRICS_LISTEN", "0.0.0.0:9748")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    logged = []
    server = SimpleNamespace(
        log=SimpleNamespace(info=lambda *a: logged.append(a), error=lambda *a: logged.append(a))
    )
    gunicorn_hooks.when_ready(server)
    assert len(logged) == 1
    assert logged[0][0] == "rozitech_remote_auth: metrics listener not started: %s"
    assert "REMOTE_AUTH_METRICS_LISTEN=0.0.0.0:9748 resolves to 0.0.0.0" in str(logged[0][1])


def test_when_ready_does_nothing_without_the_variable(monkeypatch):
    monkeypatch.delenv("REMOTE_AUTH_METRICS_LISTEN", raising=False)
    calls = []
    gunicorn_hooks.when_ready(
        SimpleNamespace(log=SimpleNamespace(info=calls.append, error=calls.append))
    )
    assert calls == []


def test_listener_needs_the_multiprocess_directory():
    with pytest.raises(ValueError, match="PROMETHEUS_MULTIPROC_DIR"):
        metrics_listener.start("127.0.0.1:9748", "")
