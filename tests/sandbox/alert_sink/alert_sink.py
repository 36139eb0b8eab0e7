#!/usr/bin/env python3
"""The sandbox's webhook receiver: records every notification Alertmanager delivers, and shows them.

    python3 alert_sink.py [--listen 0.0.0.0:9095]

- ``POST /<any path>`` with Alertmanager's webhook JSON (version 4: ``status``, ``receiver``, ``groupLabels``,
  ``alerts[]`` with ``status``, ``labels``, ``annotations``, ``startsAt``, ``endsAt``) → 200; the body is kept
  with the path it came to (the sandbox's receivers differ by path: ``/critical``, ``/warning``) and the time
  it arrived. A body that is not a JSON object → 400, not kept.
- ``GET /notifications`` → ``{"notifications": [{"seq", "received_at" (UTC, ISO 8601), "path", "payload"}]}``,
  oldest first; ``?since=N`` only those with ``seq > N``.
- ``GET /-/healthy`` → 200.

Kept in memory only (a test harness, not a store): a restart starts empty. One line per notification on stdout
(status, receiver, alert names), nothing else of the payload. Standard library only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

MAX_BODY = 1 << 20  # bytes; Alertmanager's groups here are a few kB


class Store:
    """The notifications received so far, in arrival order (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[dict[str, Any]] = []

    def add(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            item = {
                "seq": len(self._items) + 1,
                "received_at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                "path": path,
                "payload": payload,
            }
            self._items.append(item)
            return item

    def since(self, seq: int) -> list[dict[str, Any]]:
        with self._lock:
            return [item for item in self._items if item["seq"] > seq]


def make_handler(store: Store) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "rozitech-alert-sink/1"

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/-/healthy":
                self._send(200, {"status": "ok"})
            elif url.path == "/notifications":
                try:
                    since = int(parse_qs(url.query).get("since", ["0"])[0])
                except ValueError:
                    self._send(400, {"error": "since must be an integer"})
                    return
                self._send(200, {"notifications": store.since(since)})
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_BODY:
                self._send(400, {"error": f"body must be 1..{MAX_BODY} bytes"})
                return
            try:
                payload = json.loads(self.rfile.read(length))
            except ValueError:
                payload = None
            if not isinstance(payload, dict):
                self._send(400, {"error": "body must be a JSON object"})
                return
            item = store.add(urlsplit(self.path).path, payload)
            names = sorted({str(a.get("labels", {}).get("alertname")) for a in payload.get("alerts", [])})
            status, receiver = payload.get("status"), payload.get("receiver")
            print(f"#{item['seq']} {item['path']} {status} receiver={receiver} {','.join(names)}", flush=True)
            self._send(200, {"seq": item["seq"]})

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per notification above is enough

    return Handler


def serve(listen: str, store: Store | None = None) -> ThreadingHTTPServer:
    """A server bound to ``listen`` (``host:port``; port 0 = any free port), not yet serving."""
    host, _, port = listen.rpartition(":")
    return ThreadingHTTPServer((host or "0.0.0.0", int(port)), make_handler(store or Store()))  # noqa: S104


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="0.0.0.0:9095", help="host:port to listen on (default %(default)s)")
    args = parser.parse_args(argv)
    server = serve(args.listen)
    print(f"alert sink listening on {args.listen}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
