"""The exporter's HTTP server: ``/metrics`` (Prometheus text format), ``/-/healthy`` and a small index page.

``/-/healthy`` answers 200 while the prober thread keeps finishing cycles (see ``ProbeState.healthy``), else
503; the container's HEALTHCHECK calls it through ``rozitech-auth-exporter --healthcheck``. Scrapes only read
the probe state.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

from rozitech_auth_exporter import __version__
from rozitech_auth_exporter.state import ProbeState

INDEX = (
    "<html><head><title>rozitech auth exporter</title></head><body><h1>rozitech auth exporter "
    f"{__version__}</h1><p><a href='/metrics'>/metrics</a> &middot; <a href='/-/healthy'>/-/healthy</a></p>"
    "</body></html>"
)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """No access log: scrapes every few seconds would drown the probe log."""


def make_app(registry: CollectorRegistry, state: ProbeState, clock: Callable[[], float] = time.time):
    metrics_app = make_wsgi_app(registry)

    def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            return metrics_app(environ, start_response)
        if path == "/-/healthy":
            ok = state.healthy(clock())
            start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"OK\n" if ok else b"prober stalled\n"]
        if path == "/":
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [INDEX.encode()]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]

    return app


def serve(host: str, port: int, app) -> tuple[WSGIServer, threading.Thread]:
    """Start serving ``app`` on host:port in a daemon thread; returns the server and the thread."""
    server_class = _Server6 if ":" in host else _Server
    httpd = make_server(host, port, app, server_class=server_class, handler_class=_QuietHandler)
    thread = threading.Thread(target=httpd.serve_forever, name="metrics-http", daemon=True)
    thread.start()
    return httpd, thread
