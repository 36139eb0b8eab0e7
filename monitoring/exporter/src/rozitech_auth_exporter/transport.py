"""The probes' HTTP transport: one total deadline per probe, every address of the target tried (RFC 8305).

``requests``/``urllib3`` give a connect timeout and a timeout *per socket read*, so a server that trickles
the status line or the headers one byte at a time can hold a request for ever, and urllib3 tries the
addresses of a name one after the other, each with the full connect timeout. This module plugs into a
``requests.Session`` (:func:`mount`) and changes three things for every request sent inside
``with deadline.active():``

* **name resolution** runs in a helper thread and is abandoned when the deadline passes
  (``socket.getaddrinfo`` itself has no timeout);
* **connect** follows Happy Eyeballs v2 (RFC 8305 section 4-5): addresses interleaved by family (the
  resolver's first family first), a new attempt started every ``HAPPY_EYEBALLS_DELAY`` seconds or as soon as
  the previous one fails, the first to connect wins; each attempt is bounded by ``connect_timeout`` and all of
  them by the deadline;
* **everything after connect** (TLS handshake, request, status line, headers, body) is bounded by a watchdog
  that shuts the socket down when the deadline passes, which ends any blocked read at once.

Also: for https, the connection keeps the expiry (``notAfter``) of the peer's certificate, read with public
APIs only (:func:`peer_cert_expiry`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

try:  # a runtime dependency of the image; without it only the leaf certificate's date is read
    from cryptography import x509
except ImportError:  # pragma: no cover - exercised only in a stripped-down install
    x509 = None  # type: ignore[assignment]

HAPPY_EYEBALLS_DELAY = 0.25  # RFC 8305 section 5: "Connection Attempt Delay", recommended 250 ms
_RESOLVER = ThreadPoolExecutor(max_workers=2, thread_name_prefix="probe-dns")
_local = threading.local()


class DeadlineExceeded(TimeoutError):
    """The probe's total deadline passed (DNS, connect, TLS or reading the answer)."""


class Deadline:
    """A point in ``time.monotonic()`` time; ``left()`` seconds remain (never negative)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.fired = False
        self.tls_expiry: float | None = None  # earliest notAfter seen on an https connection of this probe
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def left(self) -> float:
        return max(0.0, self.at - time.monotonic())

    @property
    def expired(self) -> bool:
        return self.fired or time.monotonic() >= self.at

    def check(self) -> float:
        """Seconds left; raises :class:`DeadlineExceeded` when none are."""
        left = self.left()
        if left <= 0 or self.fired:
            raise DeadlineExceeded(f"probe deadline of {self.seconds:g}s passed")
        return left

    @contextlib.contextmanager
    def active(self) -> Iterator[Deadline]:
        """Make this the deadline of the requests sent by this thread; arm the watchdog while inside."""
        previous = getattr(_local, "deadline", None)
        _local.deadline = self
        timer = threading.Timer(self.left(), self._fire)
        timer.daemon = True
        timer.start()
        try:
            yield self
        finally:
            timer.cancel()
            _local.deadline = previous
            with self._lock:
                sockets, self._sockets = self._sockets, []
            for sock in sockets:
                sock.close()

    def watch(self, sock: socket.socket) -> None:
        """Shut ``sock``'s connection down when the deadline passes (a duplicate fd survives TLS wrapping)."""
        duplicate = sock.dup()
        with self._lock:
            self._sockets.append(duplicate)
            fired = self.fired
        if fired:
            self._shutdown(duplicate)

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            sockets = list(self._sockets)
        for sock in sockets:
            self._shutdown(sock)

    @staticmethod
    def _shutdown(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def current_deadline() -> Deadline | None:
    return getattr(_local, "deadline", None)


# --------------------------------------------------------------------------------------------- resolve
def resolve(host: str, port: int, deadline: Deadline) -> list[tuple[Any, ...]]:
    """``getaddrinfo(host, port, TCP)`` abandoned at the deadline. Raises ``socket.gaierror`` or
    :class:`DeadlineExceeded`."""
    future = _RESOLVER.submit(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM)
    try:
        infos = future.result(timeout=deadline.check())
    except FutureTimeout:
        future.cancel()
        raise DeadlineExceeded(f"resolving {host} did not finish within the probe deadline") from None
    if not infos:
        raise socket.gaierror(socket.EAI_NONAME, f"{host}: no addresses")
    return infos


def interleave(infos: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """RFC 8305 section 4: alternate address families, starting with the resolver's first family."""
    if not infos:
        return []
    first = infos[0][0]
    preferred = [info for info in infos if info[0] == first]
    others = [info for info in infos if info[0] != first]
    ordered: list[tuple[Any, ...]] = []
    while preferred or others:
        if preferred:
            ordered.append(preferred.pop(0))
        if others:
            ordered.append(others.pop(0))
    return ordered


def happy_eyeballs_connect(
    infos: list[tuple[Any, ...]],
    deadline: Deadline,
    connect_timeout: float,
    socket_options: list[tuple[int, int, int]] | None = None,
    delay: float = HAPPY_EYEBALLS_DELAY,
) -> socket.socket:
    """Connect to the first address that answers (RFC 8305 section 5); returns a blocking socket.

    Each attempt may take ``connect_timeout`` seconds, all together at most what is left of ``deadline``.
    Raises :class:`DeadlineExceeded` (nothing connected in time) or the last ``OSError`` of the attempts.
    """
    queue = interleave(infos)
    selector = selectors.DefaultSelector()
    attempts: dict[socket.socket, float] = {}  # socket -> its own give-up time (monotonic)
    last_error: OSError | None = None
    next_start = time.monotonic()
    try:
        while queue or attempts:
            deadline.check()
            now = time.monotonic()
            if queue and (not attempts or now >= next_start):
                family, kind, proto, _name, address = queue.pop(0)
                sock = socket.socket(family, kind, proto)
                for level, option, value in socket_options or []:
                    sock.setsockopt(level, option, value)
                sock.setblocking(False)
                code = sock.connect_ex(address)
                if code in (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
                    attempts[sock] = now + connect_timeout
                    selector.register(sock, selectors.EVENT_WRITE)
                    next_start = now + delay
                else:
                    sock.close()
                    last_error = OSError(code, os.strerror(code))
                    next_start = now  # RFC 8305: the next attempt starts as soon as one fails
                continue
            wake = min([deadline.at, *attempts.values(), *([next_start] if queue else [])])
            for key, _events in selector.select(max(0.0, wake - now)):
                sock = key.fileobj  # type: ignore[assignment]
                selector.unregister(sock)
                del attempts[sock]
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code == 0:
                    sock.setblocking(True)
                    return sock
                sock.close()
                last_error = OSError(code, os.strerror(code))
                next_start = time.monotonic()
            now = time.monotonic()
            for sock, give_up in list(attempts.items()):
                if now >= give_up:
                    selector.unregister(sock)
                    del attempts[sock]
                    sock.close()
                    last_error = TimeoutError(f"connect timed out after {connect_timeout:g}s")
                    next_start = now
    finally:
        for sock in attempts:
            sock.close()
        selector.close()
    if isinstance(last_error, TimeoutError):
        raise last_error
    raise last_error or OSError("no address to connect to")


# --------------------------------------------------------------------------------------------- TLS
def peer_cert_expiry(tls: ssl.SSLSocket) -> float | None:
    """Earliest ``notAfter`` (Unix time) of the peer's verified chain, with public APIs only.

    ``SSLSocket.get_verified_chain()`` (public since Python 3.13, DER bytes, parsed with ``cryptography``) when
    available; else the verified leaf's ``notAfter`` from ``SSLSocket.getpeercert()``. None without a cert.
    """
    expiries: list[float] = []
    chain = getattr(ssl.SSLSocket, "get_verified_chain", None)
    if chain is not None and x509 is not None:
        for der in chain(tls) or []:
            if isinstance(der, bytes):
                expiries.append(x509.load_der_x509_certificate(der).not_valid_after_utc.timestamp())
    leaf = tls.getpeercert()
    if leaf and leaf.get("notAfter"):
        expiries.append(float(ssl.cert_time_to_seconds(str(leaf["notAfter"]))))
    return min(expiries) if expiries else None


# --------------------------------------------------------------------------------------------- urllib3 glue
class _DeadlineConnectionMixin:
    host: str
    port: int
    timeout: Any
    socket_options: Any
    _dns_host: str

    def _new_conn(self) -> socket.socket:
        deadline = current_deadline()
        if deadline is None:  # outside a probe: plain urllib3
            return super()._new_conn()  # type: ignore[misc]
        connect_timeout = self.timeout if isinstance(self.timeout, (int, float)) else deadline.seconds
        try:
            infos = resolve(self._dns_host, self.port, deadline)
            sock = happy_eyeballs_connect(infos, deadline, float(connect_timeout), self.socket_options)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc  # type: ignore[arg-type]
        except TimeoutError as exc:
            raise ConnectTimeoutError(self, f"connection to {self.host} timed out: {exc}") from exc
        except OSError as exc:
            raise NewConnectionError(self, f"failed to establish a new connection: {exc}") from exc  # type: ignore[arg-type]
        sock.settimeout(min(float(connect_timeout), deadline.left()) or 0.001)
        deadline.watch(sock)
        return sock


class DeadlineHTTPConnection(_DeadlineConnectionMixin, HTTPConnection):
    """urllib3's HTTP connection with the probe deadline and Happy Eyeballs."""


class DeadlineHTTPSConnection(_DeadlineConnectionMixin, HTTPSConnection):
    """urllib3's HTTPS connection with the probe deadline, Happy Eyeballs and the peer's certificate expiry."""

    def connect(self) -> None:
        super().connect()
        deadline = current_deadline()
        if deadline is not None and isinstance(self.sock, ssl.SSLSocket):
            expiry = peer_cert_expiry(self.sock)
            if expiry is not None:
                deadline.tls_expiry = expiry if deadline.tls_expiry is None else min(deadline.tls_expiry, expiry)


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = DeadlineHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = DeadlineHTTPSConnection


class DeadlineAdapter(HTTPAdapter):
    """A ``requests`` adapter whose pools use the deadline-aware connections."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


def mount(session: requests.Session) -> requests.Session:
    """Route ``session``'s http and https requests through :class:`DeadlineAdapter` (no retries)."""
    adapter = DeadlineAdapter(max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
