"""Full-stack figures on the sandbox (issue 8, "bench/"): one markdown table, measured on ``make demo``'s containers.

Prints figures; never passes or fails on time.  Talks only to the sandbox's published loopback ports and
to the local Docker engine:

* the app hosts: the ``saas_admin`` group of ``inventory/sandbox`` (``ansible-inventory``), each
  container's published port 80 (``docker port``; ``rozitech-sandbox-app1`` -> ``http://127.0.0.1:8080``),
  or ``--app URL`` (repeatable).  Requests go to ``GET /api/me/`` (the default-auth view) through the
  host's nginx -> gunicorn; clients pick a host at random.  The app's verify metrics are read from
  each host's private metrics listener (``<container address>:9748``, ``docker inspect``; with ``--app``,
  ``<URL>/metrics/``) (``rozitech_remote_auth_*``, summed over hosts);
* the auth server stand-in on ``http://127.0.0.1:4000``, through the harness
  ``tests/standins/standin_harness.py`` (its test-only control API,
  ``tests/standins/auth_server/README.md``): ``POST /__standin/tokens`` mints tokens for the demo user,
  ``GET /__standin/stats`` counts ``/api/auth/me`` calls, ``PUT /__standin/faults`` injects faults,
  ``POST /__standin/rate-limit/reset`` empties the limiter (150 per 15 min per client IP);
* the exporter (``http://127.0.0.1:9747/metrics``, container ``rozitech-sandbox-exporter``).

Rows:

1. throughput through the patched app, cache hit and cache miss (each request a new token), with
   ``--clients`` concurrent clients: requests/s, p50/p99 ms.  The miss rows empty the stand-in's rate
   limiter in the background (every 0.2 s) so that they measure the app, not the limiter;
2. ``/api/auth/me`` calls per 1,000 app requests for a token mix (``--mix-*`` flags): N users, each with
   its own token, requests spread over time (exponential think time), tokens re-minted at the refresh
   point; the stand-in's count minus the exporter's own probe calls (from the exporter's metrics).  The
   whole run, its second half (caches warm; the default 600 s makes that half one cache TTL long), and
   the second half scaled to a 15-min window, against the budget of 150 per client IP.  The limiter is
   emptied every 0.2 s so the demand is measured, not capped (``--mix-real-limit`` keeps it);
3. fail fast while the auth server is down (``--down-mode drop``: the stand-in drops every
   ``/api/auth/me`` connection; ``stop``: ``systemctl stop auth-standin`` in its container; ``both``, the
   default, runs one then the other): sequential uncached requests until every worker's breaker is open
   (a request counts as failed fast when the app's ``..._verify_failures_total{reason="circuit_open"}``
   grew during it; ``--down-streak`` of those in a row = all open), then the steady fail-fast latency, a
   token cached before the outage, ``/api/home/``, and the time until uncached tokens get 200 again after
   the fault is removed;
4. rollout / no-change / rollback wall times: not measured here, read from the ``bench/README.md``
   table written from ``bench/rollout_wall_times.py`` (or ``--rollout-times``);
5. the exporter's scrape time (``--scrapes`` sequential scrapes) and memory (``docker stats --no-stream``,
   VmRSS of its main process).

Every fault it sets is removed in a ``finally`` (faults cleared, the stand-in started again, the rate
limiter emptied, the breakers given time to close), so the sandbox is left as it was found.

Run after ``make demo``: ``make bench-fullstack`` (= ``.venv/bin/python bench/fullstack_bench.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "standins"))
from standin_harness import DEMO_EMAIL, ME, SANDBOX_STANDIN_CONTAINER, StandinClient, metric_sum

ROOT = Path(__file__).resolve().parent.parent
INVENTORY = ROOT / "inventory" / "sandbox"
BENCH_README = ROOT / "bench" / "README.md"
APP_PATH = "/api/me/"
WINDOW_S = 900  # the auth server's rate-limit window (express-rate-limit, 15 min)
WINDOW_BUDGET = 150  # requests per window per client IP
TRANSPORT = ("unavailable", "timeout")  # failure reasons of calls that reached the transport


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile of ``values`` (``q`` in 0..100); NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), -(-int(q * len(ordered)) // 100)))
    return ordered[rank - 1]


def loadavg() -> str:
    """The 1/5/15-min load averages as ``"a b c"``."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def log(message: str) -> None:
    """Progress on stderr (the table goes to stdout)."""
    print(f"[fullstack] {message}", file=sys.stderr, flush=True)


def docker(*args: str, check: bool = True) -> str:
    """Run ``docker <args>`` and return its stdout (stripped)."""
    out = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    if check and out.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout.strip()


def statuses(codes: list[int]) -> str:
    """``"200x10, 503x2"`` (0 = the client gave up or the connection failed)."""
    return ", ".join(f"{code}x{count}" for code, count in sorted(Counter(codes).items())) or "-"


# ---------------------------------------------------------------------------------------------
# the sandbox
# ---------------------------------------------------------------------------------------------


def discover_apps() -> list[tuple[str, str]]:
    """``[(container, base URL)]`` for the ``saas_admin`` hosts of ``inventory/sandbox``.

    The URL is the container's published port 80 on loopback (``docker port``).  Raises RuntimeError
    when the inventory has no such host or a container publishes no port 80 (is the sandbox up?).
    """
    tool = shutil.which("ansible-inventory") or str(ROOT / ".venv" / "bin" / "ansible-inventory")
    out = subprocess.run(
        [tool, "-i", str(INVENTORY), "--list"], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    hosts = json.loads(out).get("saas_admin", {}).get("hosts", [])
    if not hosts:
        raise RuntimeError(f"no saas_admin hosts in {INVENTORY}")
    apps = []
    for host in hosts:
        mapping = docker("port", host, "80/tcp").splitlines()
        if not mapping:
            raise RuntimeError(f"{host} publishes no port 80: is the sandbox up (make demo)?")
        address = mapping[0].replace("0.0.0.0", "127.0.0.1")  # noqa: S104 (a published address, not a bind)
        apps.append((host, f"http://{address}"))
    return apps


def mint_near(standin: StandinClient, expires_in: int) -> str:
    """A new access token for the demo user, valid ``expires_in`` seconds minus 0..49 s.

    The stand-in signs ``{userId, email, ..., iat, exp}`` only, so two tokens minted in the same second with
    the same lifetime are byte-identical (one cache entry): the lifetime is shortened by ``serial % 50`` (the
    client's serial number), which keeps up to 50 tokens a second distinct.
    """
    return standin.mint(DEMO_EMAIL, max(31, expires_in - standin.next_serial() % 50))


@contextlib.contextmanager
def limiter_emptied(standin: StandinClient, every: float = 0.2) -> Iterator[None]:
    """Empty the stand-in's rate limiter every ``every`` s while the block runs (and once before)."""
    standin.reset_rate_limit()
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every):
            with contextlib.suppress(requests.RequestException):
                standin.reset_rate_limit()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


class Apps:
    """The app hosts: requests spread at random, metrics summed over hosts."""

    def __init__(self, bases: list[str], metrics_urls: list[str]) -> None:
        self.bases = bases
        self.metrics_urls = metrics_urls
        self._local = threading.local()

    def session(self) -> requests.Session:
        """One keep-alive session per client thread (nginx keeps client connections alive)."""
        sess = getattr(self._local, "session", None)
        if sess is None:
            sess = self._local.session = requests.Session()
        return sess

    def get(self, token: str | None, path: str = APP_PATH, timeout: float = 30.0) -> tuple[float, int, Any]:
        """``(ms, status, response)`` of one request to a random host; status 0 when it failed."""
        base = random.choice(self.bases)  # noqa: S311 (load spreading, not security)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        started = time.perf_counter()
        try:
            answer = self.session().get(f"{base}{path}", headers=headers, timeout=timeout)
        except requests.RequestException:
            return (time.perf_counter() - started) * 1000, 0, None
        return (time.perf_counter() - started) * 1000, answer.status_code, answer

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the ``name`` samples whose labels include ``labels``, over every host."""
        return sum(metric_sum(requests.get(url, timeout=10).text, name, **labels) for url in self.metrics_urls)

    def circuit_open_count(self) -> float:
        """``rozitech_remote_auth_verify_failures_total{reason="circuit_open"}`` over every host."""
        return self.metric("rozitech_remote_auth_verify_failures_total", reason="circuit_open")


def exporter_me_calls(exporter: str) -> float:
    """``/api/auth/me`` requests the exporter itself has made (its ``*_responses_total{endpoint="me"}``,
    answers only); 0 when the exporter does not answer."""
    try:
        text = requests.get(f"{exporter}/metrics", timeout=5).text
    except requests.RequestException:
        return 0.0
    return metric_sum(text, "rozitech_auth_probe_responses_total", endpoint="me")


# ---------------------------------------------------------------------------------------------
# measurements
# ---------------------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the table."""

    figure: str
    n: str = ""
    value: str = ""
    p50: float | None = None
    p99: float | None = None
    detail: str = ""


@dataclass
class Report:
    """Everything printed."""

    started: str
    load_before: str
    apps: list[tuple[str, str]]
    params: list[str] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    load_after: str = ""
    notes: list[str] = field(default_factory=list)


def throughput(
    apps: Apps, tokens: Callable[[int], str], count: int, clients: int
) -> tuple[float, list[float], list[int]]:
    """``count`` requests by ``clients`` concurrent clients; ``tokens(i)`` is the i-th request's token.

    Returns (requests/s over the wall time, latencies ms, statuses).
    """
    latencies: list[float] = [0.0] * count
    codes: list[int] = [0] * count
    counter = iter(range(count))
    lock = threading.Lock()

    def client() -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            latencies[i], codes[i], _ = apps.get(tokens(i))

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(client) for _ in range(clients)]:
            future.result()
    wall = time.perf_counter() - started
    return count / wall, latencies, codes


def run_throughput(apps: Apps, standin: StandinClient, args: argparse.Namespace, report: Report) -> None:
    """Rows 1a/1b: cache hit and cache miss throughput."""
    clients = args.clients
    hit_tokens = standin.mint_distinct(clients)
    for token in hit_tokens:  # every worker on every host caches each client's token
        for _ in range(12 * len(apps.bases)):
            apps.get(token)
    before = standin.path_stats(ME)
    log(f"cache hit: {args.requests} requests, {clients} clients")
    rps, lat, codes = throughput(apps, lambda i: hit_tokens[i % clients], args.requests, clients)
    calls = standin.path_stats(ME)["count"] - before["count"]
    report.rows.append(
        Row(
            f"1a. throughput, cache hit ({clients} clients, {clients} tokens)",
            str(args.requests),
            f"{rps:.0f} req/s",
            pct(lat, 50),
            pct(lat, 99),
            f"{statuses(codes)}; upstream /api/auth/me calls {calls}",
        )
    )
    log(f"minting {args.requests} tokens for the cache-miss row")
    miss_tokens = standin.mint_distinct(args.requests)
    before = standin.path_stats(ME)
    log(f"cache miss: {args.requests} requests, {clients} clients, a new token each")
    with limiter_emptied(standin):
        rps, lat, codes = throughput(apps, lambda i: miss_tokens[i], args.requests, clients)
    after = standin.path_stats(ME)
    report.rows.append(
        Row(
            f"1b. throughput, cache miss ({clients} clients, a new token per request)",
            str(args.requests),
            f"{rps:.0f} req/s",
            pct(lat, 50),
            pct(lat, 99),
            f"{statuses(codes)}; upstream calls {after['count'] - before['count']} "
            f"(429s {after['429'] - before['429']}; the limiter is emptied every 0.2 s)",
        )
    )


def run_mix(apps: Apps, standin: StandinClient, args: argparse.Namespace, report: Report) -> None:
    """Row 2: upstream calls per 1,000 app requests for a realistic token mix."""
    users, seconds, think = args.mix_users, args.mix_seconds, args.mix_think
    lifetime, refresh_at = args.mix_token_ttl, args.mix_refresh_at
    refresh_age = lifetime * refresh_at
    report.params.append(
        f"token mix (row 2): {users} active users, each with its own token, one request every {think:g} s "
        f"on average (exponential think time) for {seconds:g} s; token lifetime {lifetime} s, re-minted at "
        f"{refresh_at:.0%} of it ({refresh_age:.0f} s); users start with tokens of uniformly spread ages "
        f"(0..{refresh_age:.0f} s, a steady-state population), caches as the earlier rows left them "
        f"(other tokens: a cold start for these users); "
        + (
            "the stand-in's rate limit applies"
            if args.mix_real_limit
            else "limiter emptied every 0.2 s (demand, not capped)"
        )
    )
    rng = random.Random(args.seed)  # noqa: S311 (a reproducible mix, not security)
    start = time.monotonic()
    events: list[tuple[float, int]] = []  # (s since start, HTTP status) of each app request
    remints = 0
    lock = threading.Lock()

    def user(index: int) -> None:
        nonlocal remints
        local = random.Random(rng.random() + index)  # noqa: S311
        age0 = local.uniform(0, refresh_age)
        token = mint_near(standin, int(lifetime - age0))
        born = time.monotonic() - age0
        while True:
            time.sleep(local.expovariate(1 / think))
            now = time.monotonic()
            if now - start >= seconds:
                return
            if now - born >= refresh_age:
                token = mint_near(standin, int(lifetime))
                born = now
                with lock:
                    remints += 1
            _, code, _ = apps.get(token)
            with lock:
                events.append((time.monotonic() - start, code))

    standin.reset_rate_limit()
    before, exporter_before = standin.path_stats(ME), exporter_me_calls(args.exporter)
    verif_before = apps.metric("rozitech_remote_auth_verify_requests_total")
    # halfway counts, to show the warm half apart from the cold start
    half: dict[str, float] = {}

    def halfway() -> None:
        time.sleep(seconds / 2)
        half["calls"] = standin.path_stats(ME)["count"] - exporter_me_calls(args.exporter)
        with lock:
            half["requests"] = len(events)

    log(f"token mix: {users} users for {seconds:g} s")
    threads = [threading.Thread(target=user, args=(i,), daemon=True) for i in range(users)]
    threads.append(threading.Thread(target=halfway, daemon=True))
    limiter = contextlib.nullcontext() if args.mix_real_limit else limiter_emptied(standin)
    with limiter:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(seconds + 60)
    after, exporter_after = standin.path_stats(ME), exporter_me_calls(args.exporter)
    verifications = apps.metric("rozitech_remote_auth_verify_requests_total") - verif_before
    exporter_calls = exporter_after - exporter_before
    calls = after["count"] - before["count"] - exporter_calls
    too_many = after["429"] - before["429"]
    n = len(events)
    per_1000 = 1000 * calls / n if n else float("nan")
    codes = [code for _, code in events]
    report.rows.append(
        Row(
            f"2. /api/auth/me calls per 1,000 app requests ({users} users, whole run)",
            str(n),
            f"{per_1000:.0f}",
            detail=f"{statuses(codes)}; {calls:.0f} upstream calls from the app (stand-in count "
            f"{after['count'] - before['count']} minus the exporter's {exporter_calls:.0f}; the app's own "
            f"verifications {verifications:.0f}); {remints} re-mints; 429s {too_many}",
        )
    )
    span, window_calls, basis = seconds, calls, "whole run, cold start included"
    if half.get("requests"):
        late_calls = (after["count"] - exporter_after) - half["calls"]
        late_n = n - half["requests"]
        if seconds / 2 >= args.cache_ttl:  # the half holds a round of cache expiries: steady state
            span, window_calls, basis = seconds / 2, late_calls, "second half"
        else:
            basis += f"; the second half is shorter than the cache TTL ({args.cache_ttl} s), so it misses expiries"
        report.rows.append(
            Row(
                f"2'. ... second half of the run only ({seconds / 2:g} s, caches warm)",
                str(late_n),
                f"{1000 * late_calls / late_n:.0f}" if late_n else "-",
                detail=f"{late_calls:.0f} upstream calls",
            )
        )
    per_window = window_calls / span * WINDOW_S
    report.rows.append(
        Row(
            "2''. the same mix over a 15-min window: /api/auth/me calls per app IP (limit 150)",
            "",
            f"{per_window:.0f}",
            detail=f"= {window_calls:.0f} calls / {span:g} s ({basis}) x 900 s: {per_window / WINDOW_BUDGET:.0%} "
            f"of 150; {per_window / users:.1f} per user, so the budget fills at "
            f"~{WINDOW_BUDGET * users / per_window:.0f} active users like these"
            if window_calls
            else "no upstream calls",
        )
    )


def run_down(apps: Apps, standin: StandinClient, args: argparse.Namespace, report: Report, mode: str) -> None:
    """Rows 3a-3d for ``mode`` (``drop``/``stop``): fail fast while the auth server is down, then recovery.

    Restores in ``finally``: faults cleared (``drop``) or the stand-in started again (``stop``).
    """
    cached = standin.mint_distinct(1)[0]
    warm_before = standin.path_stats(ME)["count"]
    throughput(apps, lambda _: cached, 40 * len(apps.bases), 4)  # 4 concurrent clients reach every worker
    holders = standin.path_stats(ME)["count"] - warm_before  # one upstream call per process (or host) caching it
    tokens = iter(standin.mint_distinct(args.down_requests + args.down_steady + 10))
    attempted: list[float] = []  # requests that reached the transport (breaker closed in that worker)
    early_fast: list[float] = []  # failed fast while other workers' breakers were still closed
    fail_fast: list[float] = []  # the current run of failed-fast requests
    codes: list[int] = []
    retry_after: set[str] = set()
    open_streak_needed = args.down_streak
    cached_codes: list[int] = []
    cached_ms: list[float] = []
    recovery_s = float("nan")
    time_to_open = float("nan")
    standin.reset_rate_limit()
    log(f"auth server down ({mode}): sequential uncached requests until the breakers are open")
    failed_before = sum(apps.metric("rozitech_remote_auth_verify_failures_total", reason=r) for r in TRANSPORT)
    failed_after = failed_before
    fault_on = time.monotonic()
    try:
        if mode == "drop":
            standin.set_faults(drop=True, paths=[ME])
        else:
            docker("exec", SANDBOX_STANDIN_CONTAINER, "systemctl", "stop", "auth-standin.service")
        streak = 0
        opened_at = None
        for _ in range(args.down_requests):
            opened = apps.circuit_open_count()
            ms, code, answer = apps.get(next(tokens))
            codes.append(code)
            if answer is not None and answer.headers.get("Retry-After"):
                retry_after.add(answer.headers["Retry-After"])
            if apps.circuit_open_count() > opened:
                streak += 1
                fail_fast.append(ms)
                if opened_at is None:
                    opened_at = time.monotonic()
            else:
                streak = 0
                opened_at = None
                early_fast.extend(fail_fast)  # a fail-fast followed by a call: breakers not all open yet
                fail_fast.clear()
                attempted.append(ms)
            if streak >= open_streak_needed:
                break
        time_to_open = (opened_at - fault_on) if opened_at is not None else float("nan")
        failed_after = sum(apps.metric("rozitech_remote_auth_verify_failures_total", reason=r) for r in TRANSPORT)
        steady = []
        for _ in range(args.down_steady):
            ms, code, answer = apps.get(next(tokens))
            codes.append(code)
            if answer is not None and answer.headers.get("Retry-After"):
                retry_after.add(answer.headers["Retry-After"])
            steady.append(ms)
        for _ in range(20):
            ms, code, _ = apps.get(cached)
            cached_codes.append(code)
            cached_ms.append(ms)
        health = [apps.get(None, "/api/home/")[0] for _ in range(20)]
    finally:
        fault_off = time.monotonic()
        if mode == "drop":
            standin.clear_faults()
        else:
            docker("exec", SANDBOX_STANDIN_CONTAINER, "systemctl", "start", "auth-standin.service", check=False)
            deadline = time.monotonic() + 60
            while not standin.healthy() and time.monotonic() < deadline:
                time.sleep(0.2)
        with contextlib.suppress(requests.RequestException):
            standin.reset_rate_limit()
    log("fault removed; waiting until uncached tokens get 200 again (breakers half-open after their reset timeout)")
    good = 0
    deadline = time.monotonic() + args.recovery_limit
    while time.monotonic() < deadline:
        _, code, _ = apps.get(next(tokens, None) or standin.mint_distinct(1)[0])
        good = good + 1 if code == 200 else 0
        if good >= 10:
            recovery_s = time.monotonic() - fault_off
            break
        time.sleep(0.1)
    what = "stand-in drops every /api/auth/me connection" if mode == "drop" else "stand-in process stopped"
    report.rows.append(
        Row(
            f"3a {mode}. auth server down ({what}): uncached requests that still tried upstream, "
            "until every breaker is open",
            str(len(attempted)),
            f"{time_to_open:.1f} s to open" if time_to_open == time_to_open else "not opened",
            pct(attempted, 50),
            pct(attempted, 99),
            f"sequential; max {max(attempted, default=0):.0f} ms; plus {len(early_fast)} that already failed fast "
            f"(another worker's breaker open); the app's unavailable/timeout failures "
            f"+{failed_after - failed_before:.0f}",
        )
    )
    report.rows.append(
        Row(
            f"3b {mode}. ... steady fail-fast (every breaker open)",
            str(len(steady)),
            "",
            pct(steady, 50),
            pct(steady, 99),
            f"statuses over 3a+3b: {statuses(codes)}; Retry-After {'/'.join(sorted(retry_after)) or '-'}",
        )
    )
    report.rows.append(
        Row(
            f"3c {mode}. ... a token cached before the outage (20 requests); /api/home/ (20)",
            "20; 20",
            statuses(cached_codes),
            pct(health, 50),
            pct(health, 99),
            f"p50/p99 are /api/home/; the cached token: p50 {pct(cached_ms, 50):.0f} ms, warmed by 4 concurrent "
            f"clients, which made {holders} upstream call(s) (= processes or caches holding it)",
        )
    )
    report.rows.append(
        Row(
            f"3d {mode}. ... fault removed: until 10 uncached requests in a row get 200",
            "",
            f"{recovery_s:.1f} s" if recovery_s == recovery_s else f"> {args.recovery_limit:g} s",
            detail="breaker reset timeout 30 s (per worker process)",
        )
    )


def run_exporter(args: argparse.Namespace, report: Report) -> None:
    """Rows 5a/5b: the exporter's scrape time and memory."""
    http = requests.Session()
    times = []
    size = 0
    for _ in range(args.scrapes):
        started = time.perf_counter()
        answer = http.get(f"{args.exporter}/metrics", timeout=10)
        times.append((time.perf_counter() - started) * 1000)
        size = len(answer.content)
    report.rows.append(
        Row(
            "5a. exporter scrape (GET /metrics, sequential)",
            str(args.scrapes),
            f"{size / 1024:.1f} KiB",
            pct(times, 50),
            pct(times, 99),
            f"{args.exporter}/metrics",
        )
    )
    name = args.exporter_container
    stats = docker("stats", "--no-stream", "--format", "{{.MemUsage}}, CPU {{.CPUPerc}}", name, check=False)
    rss = "?"
    with contextlib.suppress(RuntimeError, OSError, ValueError):
        pid = docker("inspect", "-f", "{{.State.Pid}}", name)
        status = Path(f"/proc/{pid}/status").read_text()
        rss = next(line.split(":", 1)[1].strip() for line in status.splitlines() if line.startswith("VmRSS"))
    if rss == "?":
        with contextlib.suppress(RuntimeError, StopIteration):
            status = docker("exec", name, "cat", "/proc/1/status")
            rss = next(line.split(":", 1)[1].strip() for line in status.splitlines() if line.startswith("VmRSS"))
    report.rows.append(
        Row(
            f"5b. exporter memory ({name})",
            "",
            stats.split(" / ")[0] if stats else "?",
            detail=f"docker stats --no-stream: {stats or 'no answer'}; VmRSS of its main process {rss}",
        )
    )


def rollout_rows(args: argparse.Namespace) -> list[Row]:
    """Rows 4a-4c from ``--rollout-times`` or the ``bench/README.md`` table (not measured here)."""
    labels = (
        ("full rollout on fresh hosts", "4a. full rollout on fresh hosts (site.yml)"),
        ("second run, no change", "4b. second run, no change (site.yml)"),
        ("one-command rollback", "4c. one-command rollback (rollback.yml)"),
    )
    source = "(from bench/rollout_wall_times.py)"
    if args.rollout_times:
        values = [v.strip() for v in args.rollout_times.split(",")]
        if len(values) != 3:
            raise SystemExit("--rollout-times wants three numbers: full,no-change,rollback (seconds)")
        return [
            Row(f"{label} {source}", "1", f"{float(v):.1f} s", detail="given with --rollout-times")
            for (_, label), v in zip(labels, values, strict=True)
        ]
    rows = []
    text = BENCH_README.read_text() if BENCH_README.exists() else ""
    for key, label in labels:
        match = re.search(rf"^\| {re.escape(key)}[^|]*\|\s*([0-9.]+)\s*\|\s*([^|]*)\|", text, re.MULTILINE)
        if match:
            rows.append(
                Row(
                    f"{label} {source}",
                    "1",
                    f"{float(match.group(1)):.1f} s",
                    detail=f"changed: {match.group(2).strip()}; recorded in bench/README.md",
                )
            )
        else:
            rows.append(
                Row(f"{label} {source}", "", "not recorded", detail="run make bench-rollout, or pass --rollout-times")
            )
    return rows


# ---------------------------------------------------------------------------------------------
# output
# ---------------------------------------------------------------------------------------------


def fmt_ms(value: float | None) -> str:
    """A latency cell: one decimal, blank when not applicable."""
    if value is None or value != value:
        return ""
    return f"{value:.1f}"


def render(report: Report) -> str:
    """The heading lines and the one markdown table."""
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    out = [
        f"full-stack benchmark on the sandbox, {report.started}, {os.cpu_count()} cores ({cpu}), "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}",
        "app hosts: " + ", ".join(f"{name} {url}" for name, url in report.apps),
        f"load average before / after: {report.load_before} / {report.load_after} (shared machine)",
        *report.params,
        "",
        "| # | figure | n | value | p50 ms | p99 ms | detail |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for row in report.rows:
        number, _, figure = row.figure.partition(". ")
        out.append(
            f"| {number} | {figure} | {row.n} | {row.value} | {fmt_ms(row.p50)} | {fmt_ms(row.p99)} | {row.detail} |"
        )
    out += [f"- {note}" for note in report.notes]
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    """Command-line flags (every default printed by ``--help``)."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n", 1)[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--app", action="append", default=[], help="app base URL (repeatable); default: inventory/sandbox"
    )
    parser.add_argument("--standin", default="http://127.0.0.1:4000", help="auth server stand-in (control API on)")
    parser.add_argument("--exporter", default="http://127.0.0.1:9747", help="the exporter's base URL")
    parser.add_argument("--exporter-container", default="rozitech-sandbox-exporter", help="its container")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients in the throughput rows")
    parser.add_argument("--requests", type=int, default=600, help="requests per throughput row")
    parser.add_argument("--mix-users", type=int, default=25, help="active users in the token mix")
    parser.add_argument(
        "--mix-seconds",
        type=float,
        default=600.0,
        help="length of the token mix run, s (its second half: steady state)",
    )
    parser.add_argument("--mix-think", type=float, default=3.0, help="mean time between one user's requests, s")
    parser.add_argument("--mix-token-ttl", type=int, default=900, help="access token lifetime, s (stand-in: 15m)")
    parser.add_argument("--mix-refresh-at", type=float, default=0.8, help="re-mint at this fraction of the lifetime")
    parser.add_argument(
        "--mix-real-limit",
        action="store_true",
        help="keep the stand-in's limiter (150 / 15 min) during the mix; default: emptied every 0.2 s (demand)",
    )
    parser.add_argument(
        "--cache-ttl",
        type=int,
        default=300,
        help="the app's AUTH_SERVICE_CACHE_TTL, s (row 2'' uses the second half only when it is at least this long)",
    )
    parser.add_argument("--seed", type=int, default=8, help="random seed of the mix")
    parser.add_argument(
        "--down-mode", choices=("drop", "stop", "both"), default="both", help="how the auth server is down"
    )
    parser.add_argument("--down-requests", type=int, default=60, help="at most this many requests until open")
    parser.add_argument("--down-streak", type=int, default=15, help="fail-fast requests in a row = all open")
    parser.add_argument("--down-steady", type=int, default=50, help="requests measured with every breaker open")
    parser.add_argument("--recovery-limit", type=float, default=90.0, help="wait at most this long for recovery, s")
    parser.add_argument("--scrapes", type=int, default=50, help="exporter scrapes")
    parser.add_argument("--rollout-times", default="", help="full,no-change,rollback seconds (else bench/README.md)")
    parser.add_argument("--skip", default="", help="comma list of rows to skip: throughput,mix,down,exporter")
    return parser.parse_args()


def main() -> int:
    """Measure, then print the table."""
    args = parse_args()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    apps_found = [(url, url) for url in args.app] if args.app else discover_apps()
    if args.app:
        metrics_urls = [f"{url}/metrics/" for url in args.app]
    else:
        template = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
        metrics_urls = [f"http://{docker('inspect', '-f', template, host)}:9748/metrics" for host, _ in apps_found]
    apps = Apps([url for _, url in apps_found], metrics_urls)
    standin = StandinClient(args.standin, serial_start=random.randint(10_000, 20_000))  # noqa: S311
    if not standin.healthy():
        raise SystemExit(f"the stand-in does not answer at {args.standin}/health: run make demo first")
    for _, url in apps_found:
        if requests.get(f"{url}/api/home/", timeout=10).status_code != 200:
            raise SystemExit(f"{url}/api/home/ does not answer 200: run make demo first")
    report = Report(started=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), load_before=loadavg(), apps=apps_found)
    report.params.append(
        f"throughput (row 1): {args.clients} concurrent clients, {args.requests} requests per row, GET {APP_PATH}, "
        "keep-alive to nginx; app = nginx -> gunicorn 3 sync workers per host"
    )
    started = time.monotonic()
    try:
        if "throughput" not in skip:
            run_throughput(apps, standin, args, report)
        if "mix" not in skip:
            run_mix(apps, standin, args, report)
        if "down" not in skip:
            for mode in ("drop", "stop") if args.down_mode == "both" else (args.down_mode,):
                run_down(apps, standin, args, report, mode)
        report.rows.extend(rollout_rows(args))
        if "exporter" not in skip:
            run_exporter(args, report)
    finally:
        # never leave a fault behind, whatever happened above
        with contextlib.suppress(requests.RequestException):
            standin.clear_faults()
        with contextlib.suppress(requests.RequestException):
            standin.reset_rate_limit()
    report.load_after = loadavg()
    report.notes.append(f"run took {time.monotonic() - started:.0f} s; p50/p99 are client-side wall times")
    print(render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
