"""A loopback TCP proxy in front of the auth server stand-in, for the benchmark only.

Why: the patch has no setting to turn connection reuse off, and the stand-in always keeps
connections alive.  To measure cache misses **with a fresh TCP connection per call**, the
patched app talks to the stand-in through this proxy, in one of two modes:

* ``keepalive``: a plain byte pump, one upstream connection per client connection, nothing
  rewritten.  The app's ``requests.Session`` reuses its connection; so does the proxy.
* ``close``: the first request head on each client connection gets ``Connection: close``
  (any ``Connection``/``Keep-Alive`` header removed).  Node then answers with
  ``Connection: close`` and closes its side; the proxy closes the client side.  urllib3 sees
  ``Connection: close`` and opens a new connection for the next call, so every verification
  pays a TCP handshake on both hops (app -> proxy, proxy -> stand-in).

Switching modes closes every live connection, so no kept-alive connection carries over.
:meth:`ConnProxy.stop` closes the listening socket: new connections are then refused
(an "auth server stopped" outage).  Counters: ``accepted`` client connections.
"""

from __future__ import annotations

import contextlib
import socket
import threading

__all__ = ["ConnProxy"]

_HEAD_END = b"\r\n\r\n"
_MAX_HEAD = 64 * 1024


def _force_close(head: bytes) -> bytes:
    """Return the request head with ``Connection: close`` instead of any Connection/Keep-Alive."""
    lines = head.split(b"\r\n")
    kept = [lines[0]]
    for line in lines[1:]:
        name = line.split(b":", 1)[0].strip().lower()
        if name in (b"connection", b"keep-alive"):
            continue
        kept.append(line)
    kept.append(b"Connection: close")
    return b"\r\n".join(kept)


class ConnProxy:
    """Threaded TCP proxy ``127.0.0.1:<port>`` -> ``127.0.0.1:<upstream_port>``."""

    def __init__(self, upstream_port: int, mode: str = "keepalive") -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.mode = mode
        self.accepted = 0
        self._lock = threading.Lock()
        self._live: set[socket.socket] = set()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(256)
        self.port: int = self._listener.getsockname()[1]
        self._stopped = False
        self._thread = threading.Thread(target=self._serve, name="conn-proxy", daemon=True)
        self._thread.start()

    # -- control -----------------------------------------------------------------------------

    def set_mode(self, mode: str) -> None:
        """``keepalive`` or ``close``; drops every live connection."""
        if mode not in ("keepalive", "close"):
            raise ValueError(mode)
        with self._lock:
            self.mode = mode
        self.drop_all()

    def drop_all(self) -> None:
        with self._lock:
            live = list(self._live)
            self._live.clear()
        for sock in live:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def stop(self) -> None:
        """Close the listener (new connections are refused) and every live connection."""
        self._stopped = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._listener.close()
        self.drop_all()

    # -- internals ---------------------------------------------------------------------------

    def _serve(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                mode = self.mode
            threading.Thread(target=self._handle, args=(client, mode), daemon=True).start()

    def _track(self, *socks: socket.socket) -> None:
        with self._lock:
            self._live.update(socks)

    def _handle(self, client: socket.socket, mode: str) -> None:
        self._track(client)
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            self._close(client)
            return
        upstream.settimeout(None)
        self._track(upstream)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if mode == "close":
            buf = b""
            try:
                while _HEAD_END not in buf and len(buf) < _MAX_HEAD:
                    chunk = client.recv(65536)
                    if not chunk:
                        break
                    buf += chunk
                head, sep, rest = buf.partition(_HEAD_END)
                upstream.sendall(_force_close(head) + sep + rest if sep else buf)
            except OSError:
                self._close(client, upstream)
                return
        back = threading.Thread(target=self._pump, args=(upstream, client), daemon=True)
        back.start()
        self._pump(client, upstream)
        back.join()
        self._close(client, upstream)

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def _close(self, *socks: socket.socket) -> None:
        with self._lock:
            for sock in socks:
                self._live.discard(sock)
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.close()
