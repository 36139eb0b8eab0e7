"""The probes: ``/health`` and token verification against the auth server, on a fixed schedule.

One cycle (every ``interval`` seconds, started at fixed times so the rate does not drift):

1. ``health``: ``GET <target><health_path>`` — success when the status is 2xx and the JSON body's ``status``
   field (when it has one) says ``ok``/``healthy``/``up``/``pass``; for https targets, also the earliest
   certificate expiry of the chain (one extra TLS handshake, no HTTP request).
2. ``verify`` (only with a probe account): log in once (``POST /api/auth/login``) and keep the tokens; time
   ``GET /api/auth/me`` with the cached access token. A 401 from ``me`` on a token from an earlier cycle
   leads to one ``POST /api/auth/refresh`` (the refresh token rotates) and a second ``me``; when that fails
   too, one new login and a last ``me``. A 401 on a token fetched in the same cycle is a failure.

Bounds: every request (each redirect hop too) takes one unit of a per-cycle budget
(``max_requests_per_cycle``, default 6 = the worst case above: health, me, refresh, me, login, me); no retries
at the HTTP level. Each probe has **one total deadline** (``timeout``) covering every request it sends: name
resolution, connect (each address attempt also bounded by ``connect_timeout``; the addresses of the target are
tried by Happy Eyeballs, RFC 8305), TLS, status line, headers, body and redirect hops (see
:mod:`rozitech_auth_exporter.transport`), so a server that trickles bytes cannot hold the cycle.

Redirects are followed like blackbox_exporter's ``http_2xx`` module (``follow_redirects``, at most
``max_redirects`` hops; 301/302 turn a POST into a GET, 303 any method but HEAD, 307/308 keep it; the
``Authorization`` header is dropped when the host changes): the final status counts, the hop count is
exported, and a redirect from https to http is refused (reason ``redirect_downgrade``).

A 429 stops the probe at once and backs it off for the server's ``Retry-After`` when it sends one (it takes
precedence over the window's reset), else until the announced reset (``RateLimit`` reset /
``X-RateLimit-Reset``; one interval when none is given): while backing off the probe is
skipped and reported as failed. Both response shapes of the auth server are accepted: ``{"success": true,
"data": {...}}`` and the bare ``{...}``. Tokens and the password are never logged.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

from rozitech_auth_exporter import __version__
from rozitech_auth_exporter.config import Config
from rozitech_auth_exporter.ratelimit import parse_rate_limit
from rozitech_auth_exporter.state import ProbeState
from rozitech_auth_exporter.transport import Deadline, mount

log = logging.getLogger(__name__)

LOGIN, REFRESH, ME = "/api/auth/login", "/api/auth/refresh", "/api/auth/me"
OK_STATUSES = {"ok", "healthy", "up", "pass", "true"}
MAX_BODY_BYTES = 64 * 1024
MAX_BACKOFF_SECONDS = 3600.0
REDIRECT_CODES = (301, 302, 303, 307, 308)


class BudgetExhausted(Exception):
    """The cycle already sent ``max_requests_per_cycle`` requests."""


class RateLimited(Exception):
    """The auth server answered 429; the probe backs off until ``until`` (Unix time)."""

    def __init__(self, until: float) -> None:
        super().__init__(f"rate limited until {until:.0f}")
        self.until = until


class _Deadline(Exception):
    pass


@dataclass
class Reply:
    """One HTTP answer (the last of its redirect hops): status, body bytes (at most 64 KiB), seconds from the
    first send to the last byte, redirects followed, and why a redirect was not followed (None when it was)."""

    status: int
    body: bytes
    seconds: float
    redirects: int = 0
    refused: str | None = None

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def _payload(body: Any) -> dict[str, Any] | None:
    """The useful object of either shape: ``body["data"]`` when wrapped, else ``body`` itself."""
    if not isinstance(body, dict):
        return None
    data = body.get("data")
    return data if isinstance(data, dict) else body


class Budget:
    """Requests left in this cycle."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.used = 0

    def take(self) -> None:
        if self.used >= self.cap:
            raise BudgetExhausted
        self.used += 1


class Prober:
    """Runs probe cycles against ``config.target_url`` and writes the results into ``state``."""

    def __init__(self, config: Config, state: ProbeState, clock=time.time) -> None:
        self.config = config
        self.state = state
        self.clock = clock
        self.session = mount(requests.Session())
        self.session.verify = config.ca_bundle or True
        self.session.headers["User-Agent"] = f"rozitech-auth-exporter/{__version__}"
        self.session.trust_env = False  # no proxy or .netrc surprises: probe exactly the configured target
        self._access: str | None = None
        self._refresh: str | None = None
        self._last_ok: dict[str, bool | None] = {"health": None, "verify": None}
        self._deadline = Deadline(config.timeout)

    # ------------------------------------------------------------------ schedule
    def run_forever(self, stop: threading.Event) -> None:
        """Run a cycle now and then every ``interval`` seconds (fixed rate) until ``stop`` is set."""
        next_run = time.monotonic()
        while not stop.is_set():
            try:
                self.run_cycle()
            except Exception:  # a bug must not kill the schedule
                log.exception("probe cycle failed unexpectedly")
            next_run += self.config.interval
            now = time.monotonic()
            if next_run < now:  # a cycle overran: skip the missed slots, do not burst
                next_run = now + self.config.interval
            stop.wait(next_run - now)

    def run_cycle(self) -> int:
        """One cycle: health, then verify when there is a probe account. Returns the requests sent."""
        budget = Budget(self.config.max_requests_per_cycle)
        try:
            self.probe_health(budget)
            if self.config.credentials is not None:
                self.probe_verify(budget)
        finally:  # a cycle that ends by an unexpected error still counts as finished (the prober lives)
            self.state.finish_cycle(budget.used, self.clock())
        return budget.used

    # ------------------------------------------------------------------ HTTP
    def _send(self, endpoint: str, method: str, path: str, budget: Budget, **kwargs: Any) -> Reply | None:
        """Send one request and follow its redirects (one budget unit per hop), all inside the probe deadline.

        Counts every response and error; returns the last answer, or None when no response came.
        """
        deadline = self._deadline
        url = f"{self.config.target_url}{path}"
        origin = urlsplit(url)
        headers: dict[str, str] = dict(kwargs.pop("headers", None) or {})
        payload = kwargs.pop("json", None)
        redirects = 0
        start = time.perf_counter()
        try:
            while True:
                budget.take()
                response, body, reason = self._exchange(method, url, headers, payload, deadline)
                if response is None:
                    self.state.record_error(endpoint, reason or "connection")
                    log.debug("%s %s: no response (%s)", method, path, reason)
                    return None
                status = response.status_code
                now = self.clock()
                self.state.record_response(endpoint, status)
                limit = parse_rate_limit(response.headers, now, status)
                if limit is not None:
                    self.state.record_rate_limit(limit, now)
                if status == 429:
                    # Retry-After (what the server asks for) takes precedence over the window's reset.
                    wait = (limit.backoff_seconds() if limit is not None else None) or self.config.interval
                    until = now + min(max(wait, 1.0), MAX_BACKOFF_SECONDS)
                    probe = "health" if endpoint == "health" else "verify"
                    self.state.set_backoff(probe, until)
                    raise RateLimited(until)
                location = response.headers.get("Location")
                if status in REDIRECT_CODES and location and self.config.follow_redirects:
                    target = urljoin(url, location.strip())
                    refused = self._refuse_redirect(url, target, redirects)
                    if refused is not None:
                        self.state.record_error(endpoint, refused)
                        log.debug("%s %s: redirect not followed (%s)", method, path, refused)
                        return Reply(status, body, time.perf_counter() - start, redirects, refused)
                    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
                        method, payload = "GET", None
                    if urlsplit(target).netloc != origin.netloc:
                        headers.pop("Authorization", None)  # never hand a token to another host
                    url, redirects = target, redirects + 1
                    continue
                return Reply(status, body, time.perf_counter() - start, redirects)
        finally:
            self.state.set_redirects(endpoint, redirects)

    def _refuse_redirect(self, current: str, target: str, redirects: int) -> str | None:
        scheme = urlsplit(target).scheme
        if scheme not in ("http", "https"):
            return "invalid_response"
        if urlsplit(current).scheme == "https" and scheme == "http":
            return "redirect_downgrade"
        if redirects >= self.config.max_redirects:
            return "too_many_redirects"
        return None

    def _exchange(
        self, method: str, url: str, headers: dict[str, str], payload: Any, deadline: Deadline
    ) -> tuple[requests.Response | None, bytes, str | None]:
        """One HTTP exchange within ``deadline``: (response, body, None) or (None, b"", error reason)."""
        reason = None
        try:
            with deadline.active():
                response = self.session.request(
                    method,
                    url,
                    headers=headers,
                    json=payload,
                    timeout=(self.config.connect_timeout, max(deadline.check(), 0.001)),
                    allow_redirects=False,
                    stream=True,
                )
                try:
                    body = self._read_body(response, deadline)
                finally:
                    response.close()
            return response, body, None
        except (requests.exceptions.Timeout, _Deadline, urllib3.exceptions.ReadTimeoutError, TimeoutError):
            reason = "timeout"
        except requests.exceptions.SSLError:
            reason = "tls"
        except (requests.exceptions.ConnectionError, urllib3.exceptions.ProtocolError, OSError):
            reason = "connection"
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError):
            reason = "invalid_response"
        if deadline.expired:  # the watchdog cut the socket: whatever error that caused, it is the deadline
            reason = "timeout"
        return None, b"", reason

    @staticmethod
    def _read_body(response: requests.Response, deadline: Deadline) -> bytes:
        raw = response.raw
        chunks: list[bytes] = []
        size = 0
        read = getattr(raw, "read1", None) or (lambda amt: raw.read(amt))
        while True:
            if deadline.expired:
                raise _Deadline
            chunk = read(4096)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise requests.exceptions.ContentDecodingError("body too large")
        if deadline.expired:
            raise _Deadline
        return b"".join(chunks)

    # ------------------------------------------------------------------ health
    def probe_health(self, budget: Budget) -> bool:
        start = time.perf_counter()
        self._deadline = Deadline(self.config.timeout)
        if self.state.backoff_left("health", self.clock()) > 0:
            self.state.record_skip("health")
            return self._finish("health", False, start, "backing off after a 429")
        code: int | None = None
        body_ok: bool | None = None
        why = ""
        try:
            reply = self._send("health", "GET", self.config.health_path, budget)
        except RateLimited:
            code, reply, why = 429, None, "429 rate limited"
        except BudgetExhausted:
            reply, why = None, f"request cap ({self.config.max_requests_per_cycle}) reached following redirects"
        if reply is not None:
            code = reply.status
            body = reply.json()
            if isinstance(body, dict) and "status" in body and reply.refused is None:
                body_ok = str(body["status"]).strip().lower() in OK_STATUSES
            why = f"HTTP {code}" + ("" if body_ok is not False else f", body status {str(body['status'])[:40]!r}")
            if reply.redirects:
                why += f" after {reply.redirects} redirect(s)"
            if reply.refused is not None:
                why += f", redirect not followed ({reply.refused})"
        elif not why:
            why = "no response"
        ok = code is not None and 200 <= code < 300 and body_ok is not False and (reply is None or not reply.refused)
        self.state.set_health(code, body_ok)
        if self._deadline.tls_expiry is not None:  # read on the probe's own https connection, no extra handshake
            self.state.set_tls_expiry(self._deadline.tls_expiry)
        return self._finish("health", ok, start, why)

    # ------------------------------------------------------------------ verify
    def probe_verify(self, budget: Budget) -> bool:
        start = time.perf_counter()
        self._deadline = Deadline(self.config.timeout)
        if self.state.backoff_left("verify", self.clock()) > 0:
            self.state.record_skip("verify")
            return self._finish("verify", False, start, "backing off after a 429")
        try:
            ok, why = self._verify(budget)
        except RateLimited as exc:
            ok, why = False, f"429 rate limited, backing off for {exc.until - self.clock():.0f}s"
        except BudgetExhausted:
            ok, why = False, f"request cap ({self.config.max_requests_per_cycle}) reached"
        return self._finish("verify", ok, start, why)

    def _verify(self, budget: Budget) -> tuple[bool, str]:
        fresh = False
        if self._access is None:
            ok, why = self._login(budget)
            if not ok:
                return False, why
            fresh = True
        reply = self._send("me", "GET", ME, budget, headers=self._bearer())
        if reply is None:
            return False, "me: no response"
        if reply.status == 401 and not fresh:
            self._access = None
            if self._refresh is not None and self._do_refresh(budget):
                reply = self._send("me", "GET", ME, budget, headers=self._bearer())
                if reply is None:
                    return False, "me after refresh: no response"
            if reply.status == 401:
                self._access = None
                ok, why = self._login(budget)
                if not ok:
                    return False, why
                reply = self._send("me", "GET", ME, budget, headers=self._bearer())
                if reply is None:
                    return False, "me after login: no response"
        if reply.status == 401:
            self._access = None
        if reply.status != 200:
            return False, f"me: HTTP {reply.status}"
        user = (_payload(reply.json()) or {}).get("user")
        if not isinstance(user, dict) or not (user.get("email") or user.get("id")):
            self.state.record_error("me", "invalid_response")
            return False, "me: 200 without a user object"
        self.state.observe_me(reply.seconds)
        return True, f"me: HTTP 200 in {reply.seconds * 1000:.0f}ms"

    def _bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._access}"}

    def _take_tokens(self, reply: Reply) -> bool:
        data = _payload(reply.json()) or {}
        access, refresh = data.get("accessToken"), data.get("refreshToken")
        if not isinstance(access, str) or not access:
            return False
        self._access = access
        self._refresh = refresh if isinstance(refresh, str) and refresh else None
        return True

    def _login(self, budget: Budget) -> tuple[bool, str]:
        credentials = self.config.credentials
        assert credentials is not None
        self._access = self._refresh = None
        reply = self._send(
            "login", "POST", LOGIN, budget, json={"email": credentials.email, "password": credentials.password}
        )
        if reply is None:
            self.state.record_login(False)
            return False, "login: no response"
        if reply.status != 200:
            self.state.record_login(False)
            return False, f"login: HTTP {reply.status}"
        if not self._take_tokens(reply):
            self.state.record_login(False)
            self.state.record_error("login", "invalid_response")
            return False, "login: 200 without an accessToken"
        self.state.record_login(True)
        return True, "login ok"

    def _do_refresh(self, budget: Budget) -> bool:
        refresh_token, self._refresh = self._refresh, None  # single use: the server rotates it
        try:
            reply = self._send("refresh", "POST", REFRESH, budget, json={"refreshToken": refresh_token})
        except RateLimited:
            self.state.record_refresh(False)
            raise
        ok = reply is not None and reply.status == 200 and self._take_tokens(reply)
        self.state.record_refresh(ok)
        return ok

    # ------------------------------------------------------------------ bookkeeping
    def _finish(self, probe: str, ok: bool, start: float, why: str) -> bool:
        duration = time.perf_counter() - start
        self.state.finish_probe(probe, ok, duration, self.clock())
        previous = self._last_ok[probe]
        if previous is None or previous != ok:
            level = logging.INFO if ok else logging.WARNING
            log.log(level, "probe %s %s: %s", probe, "succeeded" if ok else "FAILED", why)
        else:
            log.debug("probe %s %s: %s", probe, "ok" if ok else "failed", why)
        self._last_ok[probe] = ok
        return ok
