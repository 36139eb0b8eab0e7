"""TLS: the earliest certificate expiry of a real https server's chain (a local CA + leaf made by openssl)."""

from __future__ import annotations

import http.server
import inspect
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from rozitech_auth_exporter.tlsinfo import earliest_expiry
from rozitech_auth_exporter.transport import peer_cert_expiry

from .conftest import http_answer, make_exporter

P = "rozitech_auth_probe_"


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the test certificates (apt-get install openssl)")
    d = tmp_path_factory.mktemp("pki")
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(d / "ca.key"),
        "-out",
        str(d / "ca.pem"),
        "-days",
        "3650",
        "-subj",
        "/CN=exporter test CA",
    )
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(d / "leaf.key"),
        "-out",
        str(d / "leaf.csr"),
        "-subj",
        "/CN=localhost",
    )
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        str(d / "leaf.csr"),
        "-CA",
        str(d / "ca.pem"),
        "-CAkey",
        str(d / "ca.key"),
        "-CAcreateserial",
        "-days",
        "30",
        "-out",
        str(d / "leaf.pem"),
        "-extfile",
        str(d / "ext.cnf"),
    )
    return {"ca": d / "ca.pem", "cert": d / "leaf.pem", "key": d / "leaf.key"}


class _Health(http.server.BaseHTTPRequestHandler):
    redirect_to: str | None = None  # set by a test: every GET answers 301 to this URL

    def do_GET(self) -> None:
        if self.redirect_to:
            self.send_response(301)
            self.send_header("Location", self.redirect_to)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b'{"status":"ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def https_url(pki: dict[str, Path]) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki["cert"], pki["key"])
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://localhost:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _not_after(path: Path) -> float:
    out = subprocess.run(
        ["openssl", "x509", "-noout", "-enddate", "-in", str(path)], check=True, capture_output=True, text=True
    ).stdout
    return float(ssl.cert_time_to_seconds(out.strip().split("=", 1)[1]))


def test_earliest_expiry_is_the_leaf(https_url: str, pki: dict[str, Path]) -> None:
    leaf, ca = _not_after(pki["cert"]), _not_after(pki["ca"])
    assert leaf < ca
    assert earliest_expiry(https_url, str(pki["ca"]), timeout=5) == leaf


def test_untrusted_chain_raises(https_url: str) -> None:
    with pytest.raises(ssl.SSLError):
        earliest_expiry(https_url, None, timeout=5)


def test_https_probe_exports_the_expiry(https_url: str, pki: dict[str, Path]) -> None:
    exporter = make_exporter(https_url, credentials=None, ca_bundle=str(pki["ca"]))
    exporter.cycle()
    assert exporter.value(f"{P}success", probe="health") == 1
    assert exporter.value(f"{P}tls_earliest_cert_expiry_timestamp_seconds") == _not_after(pki["cert"])


def test_https_probe_without_the_ca_fails_as_tls(https_url: str) -> None:
    exporter = make_exporter(https_url, credentials=None)
    exporter.cycle()
    assert exporter.value(f"{P}success", probe="health") == 0
    assert exporter.value(f"{P}request_errors_total", endpoint="health", reason="tls") == 1
    assert exporter.value(f"{P}tls_earliest_cert_expiry_timestamp_seconds") is None


def test_http_to_https_redirect_is_followed_and_the_final_connection_gives_the_expiry(
    tiny_server, https_url: str, pki: dict[str, Path]
) -> None:
    # the case: a target answering 301 http -> https must not read as "auth server down"
    def handler(conn) -> None:
        conn.settimeout(5)
        conn.recv(4096)
        conn.sendall(f"HTTP/1.1 301 Moved\r\nLocation: {https_url}/health\r\nContent-Length: 0\r\n\r\n".encode())

    server = tiny_server(handler)
    exporter = make_exporter(server.url, credentials=None, ca_bundle=str(pki["ca"]))
    exporter.cycle()
    assert exporter.value(f"{P}success", probe="health") == 1
    assert exporter.value(f"{P}health_http_status_code") == 200
    assert exporter.value(f"{P}http_redirects", endpoint="health") == 1
    assert exporter.value(f"{P}tls_earliest_cert_expiry_timestamp_seconds") == _not_after(pki["cert"])


def test_https_to_http_downgrade_is_refused_with_its_own_reason(
    tiny_server, https_url: str, pki: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = tiny_server(http_answer(200, b'{"status":"ok"}'))
    monkeypatch.setattr(_Health, "redirect_to", f"{plain.url}/health")
    exporter = make_exporter(https_url, credentials=None, ca_bundle=str(pki["ca"]))
    assert exporter.cycle() == 1, "the http URL is never requested"
    assert plain.connections == 0
    assert exporter.value(f"{P}success", probe="health") == 0
    assert exporter.value(f"{P}health_http_status_code") == 301
    assert exporter.value(f"{P}request_errors_total", endpoint="health", reason="redirect_downgrade") == 1
    assert exporter.value(f"{P}http_redirects", endpoint="health") == 0


def test_expiry_is_read_without_private_attributes(https_url: str, pki: dict[str, Path]) -> None:
    class NoPrivate(ssl.SSLSocket):  # an SSLSocket whose private _sslobj cannot be read
        def __getattribute__(self, name: str):
            if name == "_sslobj" and inspect.stack()[1].filename.endswith("transport.py"):
                raise AssertionError("transport.py read SSLSocket._sslobj")
            return super().__getattribute__(name)

    context = ssl.create_default_context(cafile=str(pki["ca"]))
    context.sslsocket_class = NoPrivate
    host, port = "localhost", int(https_url.rsplit(":", 1)[1])
    with (
        socket.create_connection((host, port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        assert peer_cert_expiry(tls) == _not_after(pki["cert"])
