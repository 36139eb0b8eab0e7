"""Preflight of the shared Redis (remote_auth_cache_url): resolve, connect, AUTH, PING, SELECT.

Run on an app host with the app's virtualenv Python; the URL comes from the first line of stdin (the role
passes it so) or the environment variable REMOTE_AUTH_CACHE_URL, never from argv (it may hold a password:
a command line is visible to every user of the host); the timeout in seconds from argv[1].
Uses redis-py when the virtualenv has it (after the first rollout it does), else speaks the few RESP
commands itself (a fresh app has no redis-py yet). Prints one line on stdout: ``ok host:port`` or
``Redis at host:port failed at <url|resolve|connect|auth|ping|select>: <error>``; the line never holds the
password. Exit status 0 when ok, 1 otherwise.
"""

from __future__ import annotations

import os
import socket
import ssl
import sys
from urllib.parse import unquote, urlsplit


def _target(parts) -> str:
    if parts.scheme == "unix":
        return parts.path
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"


def _clean(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def _resp(sock, *args: str) -> bytes:
    out = b"*%d\r\n" % len(args)
    for arg in args:
        data = arg.encode()
        out += b"$%d\r\n%s\r\n" % (len(data), data)
    sock.sendall(out)
    line = b""
    while not line.endswith(b"\r\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise ConnectionError("connection closed by the server")
        line += chunk
    return line.strip()


def check(url: str, timeout: float) -> dict:
    result = {"ok": False, "stage": "url", "target": "", "error": ""}
    try:  # urlsplit and .port raise ValueError on a bad port, bracket or an unencoded '#'/'/' in the password
        parts = urlsplit(url)
        password = unquote(parts.password) if parts.password else None
        username = unquote(parts.username) if parts.username else None
        if parts.scheme not in ("redis", "rediss", "unix"):
            result["error"] = "the URL must start with redis://, rediss:// or unix://"
            return result
        result["target"] = _target(parts)
        host, port = parts.hostname or "localhost", parts.port or 6379
    except ValueError:
        # The parser's message may quote a piece of the password: say what to check instead.
        result["error"] = (
            "the URL cannot be parsed (a port out of range, an unclosed [ or a character of the password that"
            " must be percent-encoded, e.g. # as %23, / as %2F, @ as %40)"
        )
        return result
    db = ((parts.path or "/0").lstrip("/") or "0") if parts.scheme != "unix" else "0"
    if parts.scheme != "unix":
        result["stage"] = "resolve"
        try:
            socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as err:
            result["error"] = f"cannot resolve {host}: {err}"
            return result
    result["stage"] = "connect"
    try:
        import redis  # optional: the app's virtualenv has it after the first rollout
    except ImportError:
        redis = None
    try:
        if redis is not None:
            client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
            result["stage"] = "ping"  # connects, sends AUTH and SELECT from the URL, then PING
            client.ping()
            client.close()
        else:
            if parts.scheme == "unix":
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(timeout)
                sock.connect(parts.path)
            else:
                sock = socket.create_connection((host, port), timeout=timeout)
                if parts.scheme == "rediss":
                    sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
            with sock:
                if password is not None:
                    result["stage"] = "auth"
                    reply = _resp(sock, "AUTH", *([username] if username else []), password)
                    if not reply.startswith(b"+OK"):
                        raise PermissionError(reply.decode(errors="replace"))
                result["stage"] = "ping"
                reply = _resp(sock, "PING")
                if not reply.startswith(b"+PONG"):
                    raise PermissionError(reply.decode(errors="replace"))
                result["stage"] = "select"
                reply = _resp(sock, "SELECT", db)
                if not reply.startswith(b"+OK"):
                    raise PermissionError(reply.decode(errors="replace"))
    except Exception as err:  # noqa: BLE001 (any failure is the answer, reported by stage)
        name = type(err).__name__
        if "Authentication" in name or any(w in str(err) for w in ("NOAUTH", "WRONGPASS", "invalid password")):
            result["stage"] = "auth"
        elif result["stage"] == "ping" and ("Connection" in name or "Timeout" in name):
            result["stage"] = "connect"
        result["error"] = _clean(f"{name}: {err}", password)
        return result
    result["ok"] = True
    return result


def main() -> int:
    timeout = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    url = os.environ.get("REMOTE_AUTH_CACHE_URL") or sys.stdin.readline().strip()
    result = check(url, timeout)
    if result["ok"]:
        print(f"ok {result['target']}")
        return 0
    where = f"Redis at {result['target']}" if result["target"] else "the Redis URL"
    print(f"{where} failed at {result['stage']}: {result['error']}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
