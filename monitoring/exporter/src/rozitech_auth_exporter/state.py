"""Probe results kept between cycles, and the Prometheus collector that exposes them.

The prober thread writes a :class:`ProbeState`; a scrape reads it under the same lock, so one scrape sees
the results of whole cycles and never starts a probe itself. Label values are bounded: ``probe`` is
``health`` or ``verify``; ``endpoint`` is ``health``, ``login``, ``refresh`` or ``me``; ``code`` is an HTTP
status code; ``reason`` and ``result`` are the fixed sets below. No user data goes into any label.
"""

from __future__ import annotations

import platform
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from rozitech_auth_exporter import METRIC_PREFIX, __version__
from rozitech_auth_exporter.ratelimit import RateLimit

PROBES = ("health", "verify")
ENDPOINTS = ("health", "login", "refresh", "me")
ERROR_REASONS = ("timeout", "connection", "tls", "invalid_response", "redirect_downgrade", "too_many_redirects")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SCHEDULE_NOTE = (
    "Probes run in the background every probe interval; a scrape returns the latest results and never "
    "triggers a probe, so several Prometheus servers do not add load on the auth server."
)


@dataclass
class ProbeResult:
    success: bool
    duration: float
    timestamp: float


class ProbeState:
    """Everything the exporter reports. Thread-safe: every method takes the lock."""

    def __init__(self, interval: float, max_requests: int, timeout: float = 5.0, clock=time.time) -> None:
        self.lock = threading.Lock()
        self.interval = interval
        self.max_requests = max_requests
        self.timeout = timeout
        self.started = clock()
        self.redirects: dict[str, int] = {}
        self.results: dict[str, ProbeResult] = {}
        self.responses: Counter[tuple[str, str]] = Counter()
        self.errors: Counter[tuple[str, str]] = Counter()
        self.logins: Counter[str] = Counter({"success": 0, "failure": 0})
        self.refreshes: Counter[str] = Counter({"success": 0, "failure": 0})
        self.skipped: Counter[str] = Counter({probe: 0 for probe in PROBES})
        self.cycles = 0
        self.cycle_requests: int | None = None
        self.last_cycle_end: float | None = None
        self.health_status_code: int | None = None
        self.health_body_ok: bool | None = None
        self.me_buckets = [0] * len(LATENCY_BUCKETS)
        self.me_count = 0
        self.me_sum = 0.0
        self.rate_limit: RateLimit | None = None
        self.rate_limit_reset_at: float | None = None
        self.backoff_until: dict[str, float] = {}
        self.tls_expiry: float | None = None

    # ------------------------------------------------------------------ writers (prober thread)
    def record_response(self, endpoint: str, code: int) -> None:
        with self.lock:
            self.responses[(endpoint, str(code))] += 1

    def record_error(self, endpoint: str, reason: str) -> None:
        with self.lock:
            self.errors[(endpoint, reason)] += 1

    def record_login(self, ok: bool) -> None:
        with self.lock:
            self.logins["success" if ok else "failure"] += 1

    def record_refresh(self, ok: bool) -> None:
        with self.lock:
            self.refreshes["success" if ok else "failure"] += 1

    def record_skip(self, probe: str) -> None:
        with self.lock:
            self.skipped[probe] += 1

    def record_rate_limit(self, limit: RateLimit, now: float) -> None:
        """Keep the latest announced budget; fields a response leaves out keep their previous value."""
        with self.lock:
            old = self.rate_limit
            self.rate_limit = RateLimit(
                limit=limit.limit if limit.limit is not None else (old.limit if old else None),
                remaining=limit.remaining if limit.remaining is not None else (old.remaining if old else None),
                reset_after=limit.reset_after,
                source=limit.source,
            )
            if limit.reset_after is not None:
                self.rate_limit_reset_at = now + limit.reset_after

    def set_backoff(self, probe: str, until: float) -> None:
        with self.lock:
            self.backoff_until[probe] = max(until, self.backoff_until.get(probe, 0.0))

    def backoff_left(self, probe: str, now: float) -> float:
        with self.lock:
            return max(0.0, self.backoff_until.get(probe, 0.0) - now)

    def set_redirects(self, endpoint: str, count: int) -> None:
        with self.lock:
            self.redirects[endpoint] = count

    def set_health(self, status_code: int | None, body_ok: bool | None) -> None:
        with self.lock:
            self.health_status_code = status_code
            self.health_body_ok = body_ok

    def observe_me(self, seconds: float) -> None:
        with self.lock:
            self.me_count += 1
            self.me_sum += seconds
            for index, bound in enumerate(LATENCY_BUCKETS):
                if seconds <= bound:
                    self.me_buckets[index] += 1

    def set_tls_expiry(self, timestamp: float | None) -> None:
        with self.lock:
            self.tls_expiry = timestamp

    def finish_probe(self, probe: str, success: bool, duration: float, timestamp: float) -> None:
        with self.lock:
            self.results[probe] = ProbeResult(success, duration, timestamp)

    def finish_cycle(self, requests_sent: int, timestamp: float) -> None:
        with self.lock:
            self.cycles += 1
            self.cycle_requests = requests_sent
            self.last_cycle_end = timestamp

    # ------------------------------------------------------------------ readers
    @property
    def stale_after(self) -> float:
        """Seconds without a finished cycle after which the prober counts as stalled: 3 intervals plus the
        longest a cycle may take (two probes, each bounded by ``timeout``)."""
        return 3 * self.interval + 2 * self.timeout

    def healthy(self, now: float) -> bool:
        """The prober is alive: a cycle finished within ``stale_after`` seconds (counted from the start while
        none has finished yet)."""
        with self.lock:
            last = self.last_cycle_end if self.last_cycle_end is not None else self.started
            return now - last <= self.stale_after

    def result(self, probe: str) -> ProbeResult | None:
        with self.lock:
            return self.results.get(probe)


class StateCollector(Collector):
    """Exposes a :class:`ProbeState` with the ``rozitech_auth_probe_`` prefix."""

    def __init__(self, state: ProbeState, clock=time.time) -> None:
        self.state = state
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        p = METRIC_PREFIX
        s = self.state
        now = self.clock()
        with s.lock:
            success = GaugeMetricFamily(
                f"{p}success", f"1 if the latest probe succeeded, else 0. {SCHEDULE_NOTE}", labels=["probe"]
            )
            duration = GaugeMetricFamily(
                f"{p}duration_seconds",
                f"Wall time of the latest probe, all its requests included. {SCHEDULE_NOTE}",
                labels=["probe"],
            )
            last = GaugeMetricFamily(
                f"{p}last_run_timestamp_seconds", "Unix time the latest probe finished.", labels=["probe"]
            )
            for probe in PROBES:
                result = s.results.get(probe)
                if result is not None:
                    success.add_metric([probe], 1.0 if result.success else 0.0)
                    duration.add_metric([probe], result.duration)
                    last.add_metric([probe], result.timestamp)
            yield success
            yield duration
            yield last

            status = GaugeMetricFamily(
                f"{p}health_http_status_code",
                "HTTP status of the latest health probe (0 when no response arrived).",
            )
            if "health" in s.results:
                status.add_metric([], float(s.health_status_code or 0))
            yield status
            body = GaugeMetricFamily(
                f"{p}health_body_status_ok",
                "1 if the latest health answer's JSON 'status' field said ok/healthy/up/pass, 0 if it said "
                "something else; absent when the body had no status field.",
            )
            if s.health_body_ok is not None:
                body.add_metric([], 1.0 if s.health_body_ok else 0.0)
            yield body

            hist = HistogramMetricFamily(
                f"{p}verify_request_duration_seconds",
                f"Duration of GET /api/auth/me calls that verified the cached token (HTTP 200). {SCHEDULE_NOTE}",
            )
            cumulative = [
                (repr(bound), float(count)) for bound, count in zip(LATENCY_BUCKETS, s.me_buckets, strict=True)
            ]
            cumulative.append(("+Inf", float(s.me_count)))
            hist.add_metric([], cumulative, sum_value=s.me_sum)
            yield hist

            responses = CounterMetricFamily(
                f"{p}responses",
                "HTTP responses received by the probes, by endpoint and status code.",
                labels=["endpoint", "code"],
            )
            for (endpoint, code), count in sorted(s.responses.items()):
                responses.add_metric([endpoint, code], float(count))
            yield responses
            errors = CounterMetricFamily(
                f"{p}request_errors",
                "Probe requests that got no usable HTTP response, by endpoint and reason (timeout: the probe's "
                "total deadline passed; connection; tls; invalid_response; redirect_downgrade: an https URL "
                "redirected to http; too_many_redirects).",
                labels=["endpoint", "reason"],
            )
            for (endpoint, reason), count in sorted(s.errors.items()):
                errors.add_metric([endpoint, reason], float(count))
            yield errors
            logins = CounterMetricFamily(f"{p}logins", "Logins of the probe account, by result.", labels=["result"])
            for result_name, count in sorted(s.logins.items()):
                logins.add_metric([result_name], float(count))
            yield logins
            refreshes = CounterMetricFamily(
                f"{p}token_refreshes",
                "Access token refreshes after a 401 from /api/auth/me, by result.",
                labels=["result"],
            )
            for result_name, count in sorted(s.refreshes.items()):
                refreshes.add_metric([result_name], float(count))
            yield refreshes
            skipped = CounterMetricFamily(
                f"{p}skipped", "Probes not sent because the exporter is backing off after a 429.", labels=["probe"]
            )
            for probe, count in sorted(s.skipped.items()):
                skipped.add_metric([probe], float(count))
            yield skipped

            rl = s.rate_limit
            limit = GaugeMetricFamily(
                f"{p}ratelimit_limit", "Requests allowed per rate-limit window, from the latest response's headers."
            )
            remaining = GaugeMetricFamily(
                f"{p}ratelimit_remaining",
                "Requests left in the current rate-limit window, from the latest response's headers.",
            )
            reset = GaugeMetricFamily(
                f"{p}ratelimit_reset_seconds",
                "Seconds until the rate-limit window resets (RateLimit reset, X-RateLimit-Reset or Retry-After), "
                "counted down at scrape time; absent when no header gave it.",
            )
            if rl is not None:
                if rl.limit is not None:
                    limit.add_metric([], rl.limit)
                if rl.remaining is not None:
                    remaining.add_metric([], rl.remaining)
            if s.rate_limit_reset_at is not None:
                reset.add_metric([], max(0.0, s.rate_limit_reset_at - now))
            yield limit
            yield remaining
            yield reset
            backoff = GaugeMetricFamily(
                f"{p}backoff_seconds",
                "Seconds left before the exporter probes again after a 429 (0 = not backing off).",
                labels=["probe"],
            )
            for probe in PROBES:
                backoff.add_metric([probe], max(0.0, s.backoff_until.get(probe, 0.0) - now))
            yield backoff

            tls = GaugeMetricFamily(
                f"{p}tls_earliest_cert_expiry_timestamp_seconds",
                "Unix time the first certificate of the target's verified chain expires (https targets only).",
            )
            if s.tls_expiry is not None:
                tls.add_metric([], s.tls_expiry)
            yield tls

            cycles = CounterMetricFamily(f"{p}cycles", "Probe cycles run.")
            cycles.add_metric([], float(s.cycles))
            yield cycles
            last_cycle = GaugeMetricFamily(
                f"{p}last_cycle_timestamp_seconds",
                "Unix time the latest probe cycle finished; absent until the first one has. The exporter's "
                "/-/healthy answers 503 when it is older than 3 intervals + 2 timeouts.",
            )
            if s.last_cycle_end is not None:
                last_cycle.add_metric([], s.last_cycle_end)
            yield last_cycle
            redirects = GaugeMetricFamily(
                f"{p}http_redirects",
                "Redirects followed by the latest request to each endpoint (like blackbox's probe_http_redirects).",
                labels=["endpoint"],
            )
            for endpoint, count in sorted(s.redirects.items()):
                redirects.add_metric([endpoint], float(count))
            yield redirects
            cycle_requests = GaugeMetricFamily(
                f"{p}cycle_requests", "Requests sent to the auth server in the latest cycle (never above the cap)."
            )
            if s.cycle_requests is not None:
                cycle_requests.add_metric([], float(s.cycle_requests))
            yield cycle_requests
            cap = GaugeMetricFamily(f"{p}cycle_requests_max", "Configured cap on requests per probe cycle.")
            cap.add_metric([], float(s.max_requests))
            yield cap
            interval = GaugeMetricFamily(f"{p}interval_seconds", "Configured time between probe cycles.")
            interval.add_metric([], s.interval)
            yield interval

        build = GaugeMetricFamily(
            f"{p}build_info",
            "Exporter build: version and Python version; always 1.",
            labels=["version", "python_version"],
        )
        build.add_metric([__version__, platform.python_version()], 1.0)
        yield build
