"""Test support: a real local HTTP auth-server stand-in, token maker, a failing cache backend.

The stand-in is a ``ThreadingHTTPServer`` on 127.0.0.1 speaking HTTP/1.1 (keep-alive), serving
``GET /api/auth/me`` like the auth server (R1 in docs/architecture.md): it verifies HS256 tokens with its own
secret and answers the wrapped or the bare form.  Tests can replace the behaviour per request
(``upstream.behaviour = fn``) to produce 401/403/429/5xx, hangs, drips and resets.
"""

from __future__ import annotations

import importlib
import json
import socket
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from django.core.cache.backends.base import BaseCache
from prometheus_client import REGISTRY

OVERLAY = "rozitech_remote_auth.settings_overlay"


def load_overlay() -> Any:
    """Import the settings overlay afresh (it builds its settings at import) and forget it again."""
    sys.modules.pop(OVERLAY, None)
    try:
        return importlib.import_module(OVERLAY)
    finally:
        sys.modules.pop(OVERLAY, None)


AUTH_SECRET = "auth-server-secret-not-the-django-one-0123456789"


def make_token(
    user_id: str,
    email: str,
    *,
    exp_in: float = 3600,
    iss: str = "rozitech-auth",
    secret: str = AUTH_SECRET,
    **extra: Any,
) -> str:
    """An auth-server access token: HS256, claims in the server's order (userId first)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "userId": user_id,
        "email": email,
        "organizationId": "org-1",
        "type": "access",
        "iss": iss,
        "iat": now,
        "exp": int(now + exp_in),
    }
    claims.update(extra)
    return jwt.encode(claims, secret, algorithm="HS256")


class BrokenCache(BaseCache):
    """A cache backend whose every operation fails, like an unreachable Redis."""

    def __init__(self, location: str, params: dict[str, Any]) -> None:
        super().__init__(params)

    def get(self, key: str, default: Any = None, version: Any = None) -> Any:
        raise ConnectionError("cache down")

    def set(self, key: str, value: Any, timeout: Any = None, version: Any = None) -> None:
        raise ConnectionError("cache down")

    def add(self, *args: Any, **kwargs: Any) -> bool:
        raise ConnectionError("cache down")

    def delete(self, *args: Any, **kwargs: Any) -> bool:
        raise ConnectionError("cache down")

    def clear(self) -> None:
        raise ConnectionError("cache down")


Behaviour = Callable[["Handler", dict[str, Any]], bool]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for name, value in {**self.server.upstream.headers, **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:
        upstream = self.server.upstream
        if self.path != "/api/auth/me":
            self.send_json(404, {"success": False, "message": "not found"})
            return
        auth = self.headers.get("Authorization", "")
        token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else ""
        info = {"token": token, "peer": self.client_address}
        upstream.record(info)
        if upstream.delay:
            time.sleep(upstream.delay)
        behaviour = upstream.behaviour
        if behaviour is not None and behaviour(self, info):
            return
        self.answer_me(token)

    def answer_me(self, token: str) -> None:
        upstream = self.server.upstream
        try:
            claims = jwt.decode(token, AUTH_SECRET, algorithms=["HS256"])
        except jwt.PyJWTError:
            self.send_json(401, {"success": False, "message": "Invalid or expired token"})
            return
        profile = upstream.profiles.get(claims["userId"], {})
        user = {
            "id": claims["userId"],
            "email": profile.get("email", claims["email"]),
            "firstName": profile.get("firstName", "First"),
            "lastName": profile.get("lastName", "Last"),
            "emailVerified": profile.get("emailVerified", True),
        }
        if profile.get("emailVerified", True) is None:
            del user["emailVerified"]
        organization = {"id": claims.get("organizationId"), "name": "Org"}
        if upstream.form == "bare":
            self.send_json(200, {"user": {**user, "organization": organization}})
        else:
            body = {"user": user, "organization": organization, "licenses": {"saas": True}}
            self.send_json(200, {"success": True, "data": body})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    upstream: Upstream


class Upstream:
    """The running stand-in; ``calls`` counts ``/api/auth/me`` requests."""

    def __init__(self) -> None:
        self.form = "wrapped"
        self.profiles: dict[str, dict[str, Any]] = {}
        self.behaviour: Behaviour | None = None
        self.delay = 0.0
        self.headers: dict[str, str] = {}  # added to every answer (e.g. rate-limit headers)
        self.release = threading.Event()
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.server = _Server(("127.0.0.1", 0), Handler)
        self.server.upstream = self
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def calls(self) -> int:
        with self._lock:
            return len(self.requests)

    def record(self, info: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(info)

    def start(self) -> Upstream:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    # -- canned behaviours ------------------------------------------------------------------

    def respond(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        """Answer every request with ``status``."""

        def behaviour(handler: Handler, info: dict[str, Any]) -> bool:
            handler.send_json(status, body if body is not None else {"success": False}, headers)
            return True

        self.behaviour = behaviour

    def respond_raw(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        """Answer every request with ``status`` and exactly these body bytes."""

        def behaviour(handler: Handler, info: dict[str, Any]) -> bool:
            head = (
                f"HTTP/1.1 {status} Status\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            handler.wfile.write(head.encode() + body)  # one write: no Nagle/delayed-ACK stall
            return True

        self.behaviour = behaviour

    def hang(self) -> None:
        """Accept, read the request, never answer (until the test ends)."""

        def behaviour(handler: Handler, info: dict[str, Any]) -> bool:
            self.release.wait(10)
            handler.close_connection = True
            return True

        self.behaviour = behaviour

    def drip(self, interval: float, *, phase: str = "body") -> None:
        """Send the answer one byte every ``interval`` seconds (status line or body)."""

        def behaviour(handler: Handler, info: dict[str, Any]) -> bool:
            body = json.dumps({"user": {"id": "1", "email": "drip@example.com"}}).encode()
            head = (
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            if phase == "body":
                handler.wfile.write(head)
                payload = body
            else:
                payload = head + body
            handler.close_connection = True
            for index in range(len(payload)):
                try:
                    handler.wfile.write(payload[index : index + 1])
                    handler.wfile.flush()
                except OSError:
                    return True
                if self.release.wait(interval):
                    return True
            return True

        self.behaviour = behaviour


def free_port() -> int:
    """A port with nothing listening on it (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def sample(name: str, **labels: str) -> float:
    """Current value of a metric sample (0 when absent)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def failures(reason: str) -> float:
    return sample("rozitech_remote_auth_verify_failures_total", reason=reason)


def link_refusals(reason: str) -> float:
    return sample("rozitech_remote_auth_link_refusals_total", reason=reason)
