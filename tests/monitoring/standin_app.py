#!/usr/bin/env python3
"""A tiny stand-in for the SaaS Admin's metrics and a TLS front for the auth server, for the Molecule scenario
of roles/monitoring_stack (the real app takes minutes to deploy; this takes a second).

* ``/metrics/`` on ``--metrics-port`` (default 80): the REAL metric objects of the patch
  (``django_patch/src/rozitech_remote_auth/metrics.py``, importable as ``rozitech_metrics``), fed by real
  token verifications: every ``--interval`` seconds one ``GET /api/auth/me`` against ``--auth-url`` with a
  token from ``POST /api/auth/login`` (recorded as success or as a failure reason the way the patch maps
  statuses), one with a forged token (an ``invalid`` rejection), and identity-cache lookups (3 of 4 hits).
* ``--tls-port`` (default 4443): HTTPS reverse proxy to ``--auth-url`` with ``--cert``/``--key``, so the
  exporter can probe an https target and report the certificate's expiry.

Python 3.11 stdlib + prometheus_client. Logs to stderr; exits on SIGTERM.
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import json
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import rozitech_metrics as metrics  # the patch's metrics module, copied under this name
from prometheus_client import start_http_server

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


def login(base: str, email: str, password: str) -> str:
    body = json.dumps({"email": email, "password": password}).encode()
    req = urllib.request.Request(f"{base}/api/auth/login", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        data = json.load(resp)
    data = data.get("data", data)
    return data["accessToken"]


def verify(base: str, token: str) -> None:
    """One verification, recorded like the patch does (status -> reason)."""
    start = time.monotonic()
    req = urllib.request.Request(f"{base}/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            resp.read()
        metrics.record_success(time.monotonic() - start)
    except urllib.error.HTTPError as exc:
        reason = {401: "invalid", 403: "forbidden", 429: "rate_limited"}.get(exc.code, "unavailable")
        metrics.record_failure(reason, time.monotonic() - start)
    except TimeoutError:
        metrics.record_failure("timeout", time.monotonic() - start)
    except (urllib.error.URLError, OSError):
        metrics.record_failure("unavailable", time.monotonic() - start)


def traffic(args: argparse.Namespace) -> None:
    token = ""
    while True:
        try:
            token = token or login(args.auth_url, args.email, args.password)
            verify(args.auth_url, token)
            verify(args.auth_url, "forged.token.value")
        except (urllib.error.URLError, OSError, KeyError, ValueError) as exc:
            print(f"standin-app: {exc}", flush=True)
            token = ""
        metrics.CACHE_REQUESTS.inc(4)
        metrics.CACHE_HITS.inc(3)
        metrics.set_circuit_state("closed")
        time.sleep(args.interval)


def make_proxy(target: str) -> type[http.server.BaseHTTPRequestHandler]:
    parsed = urllib.parse.urlsplit(target)

    class Proxy(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"host"}}
            conn = http.client.HTTPConnection(parsed.hostname, parsed.port or 80, timeout=10)
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except OSError:
                self.send_error(502)
                return
            finally:
                conn.close()
            self.send_response(resp.status)
            for key, value in resp.getheaders():
                if key.lower() not in HOP_BY_HOP | {"content-length"}:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _forward

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Proxy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--auth-url", default="http://auth-server:4000")
    parser.add_argument("--email", default="demo@rozitech.test")
    parser.add_argument("--password", default="Demo-Passw0rd!")
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--metrics-port", type=int, default=80)
    parser.add_argument("--tls-port", type=int, default=4443)
    parser.add_argument("--cert", default="/etc/standin-app/tls.crt")
    parser.add_argument("--key", default="/etc/standin-app/tls.key")
    args = parser.parse_args()
    start_http_server(args.metrics_port)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    server = http.server.ThreadingHTTPServer(("0.0.0.0", args.tls_port), make_proxy(args.auth_url))  # noqa: S104 (a test container)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    traffic(args)


if __name__ == "__main__":
    main()
