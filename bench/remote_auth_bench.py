"""Benchmark of the remote-auth patch against the fixture app under gunicorn (issue 3, "Benchmarks").

Prints figures; never passes or fails on time.  Loopback only, no containers:

* the auth server stand-in (``node tests/standins/auth_server/server.js``, fault control on, rate
  limit 1 000 000) on a free port;
* a copy of ``tests/fixtures/saas_admin`` (migrated, one local user) under gunicorn, 3 sync workers,
  ``--timeout 120`` like production, started as:

  - ``local``: the app's own settings ``config.settings.quickstart`` (simplejwt only);
  - ``remote``: the patch's overlay (``rozitech_remote_auth.settings_overlay``), ``AUTH_SERVICE_URL``
    = the stand-in; default ``AUTH_SERVICE_*`` values (5 s read, 3 s connect, 8 s total, breaker
    5 failures / 30 s); identity cache = Django's default LocMem cache, i.e. **one cache per worker
    process**; metrics on (multiprocess mode, gunicorn hooks) as the rollout deploys it;
  - ``proxied``: the same overlay, ``AUTH_SERVICE_URL`` = a loopback TCP proxy (:mod:`conn_proxy`)
    that either keeps connections alive or forces ``Connection: close`` (fresh connection per call).

Run: ``python3 bench/remote_auth_bench.py`` (any Python >= 3.11; it creates ``.cache/bench-venv``
with the fixture's requirements + ``./django_patch`` and re-executes itself there).  Every process it
starts runs in its own process group and is killed on exit (also on Ctrl-C, SIGTERM, or the overall
time limit).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
VENV = ROOT / ".cache" / "bench-venv"
FIXTURE = ROOT / "tests" / "fixtures" / "saas_admin"
STANDIN = ROOT / "tests" / "standins" / "auth_server"
PATCH = ROOT / "django_patch"

DEMO_EMAIL = "demo@rozitech.test"
LOCAL_USER = ("bench", "bench@local.test", "bench-Passw0rd-1")
OVERALL_LIMIT_S = 420  # hard stop for the whole run (the measured part takes ~4 min)


# ---------------------------------------------------------------------------------------------
# venv bootstrap (stdlib only above this line's callers)
# ---------------------------------------------------------------------------------------------


def _inputs_hash() -> str:
    digest = hashlib.sha256()
    paths = [FIXTURE / "requirements.txt", PATCH / "pyproject.toml"]
    paths += sorted(p for p in (PATCH / "src").rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for path in paths:
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure_venv() -> Path:
    """Create/refresh ``.cache/bench-venv``; returns its python."""
    python = VENV / "bin" / "python"
    stamp = VENV / ".bench-inputs"
    wanted = _inputs_hash()
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    if not python.exists():
        print(f"[bench] creating {VENV.relative_to(ROOT)}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    print("[bench] installing the fixture's requirements and ./django_patch into the bench venv", flush=True)
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(FIXTURE / "requirements.txt")], check=True)
    # "./django_patch", never the bare name: that would fetch the unrelated PyPI package django-patch.
    subprocess.run([*pip, "--force-reinstall", "--no-deps", f"{PATCH}{os.sep}"], check=True, cwd=ROOT)
    # its runtime deps, if any are missing, with the redis extra (the shared-Redis rows)
    subprocess.run([*pip, f"{PATCH}{os.sep}[redis]"], check=True, cwd=ROOT)
    stamp.write_text(wanted)
    return python


def ensure_node_modules() -> None:
    if not (STANDIN / "node_modules" / ".package-lock.json").exists():
        print("[bench] npm ci in the stand-in", flush=True)
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], check=True, cwd=STANDIN)


# ---------------------------------------------------------------------------------------------
# processes
# ---------------------------------------------------------------------------------------------


class TimeLimit(Exception):
    """The overall time limit passed."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Proc:
    """A child process in its own process group (so gunicorn's workers go with the master)."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def stop(self, grace: float = 5.0) -> None:
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)
        # workers of a gunicorn master killed hard may outlive it: sweep the group once more
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Procs:
    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.items: list[Proc] = []

    def start(self, name: str, argv: list[str], cwd: Path, env: dict[str, str]) -> Proc:
        log = self.logdir / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(  # a list argv, no shell
                argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        proc = Proc(name, popen, log)
        self.items.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.items):
            proc.stop()
        self.items.clear()


def wait_http(url: str, proc: Proc, timeout: float = 30.0) -> None:
    import requests

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.tail()}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{proc.name} did not answer {url} within {timeout} s:\n{proc.tail()}")


# ---------------------------------------------------------------------------------------------
# the stand-in and the app
# ---------------------------------------------------------------------------------------------


class Standin:
    def __init__(self, procs: Procs) -> None:
        import requests

        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "PORT": str(self.port),
            "HOST": "127.0.0.1",
            "STANDIN_FAULT_CONTROL": "1",
            "RATE_LIMIT_MAX": "1000000",
            "STANDIN_SHUTDOWN_TIMEOUT_MS": "1000",
        }
        self.proc = procs.start("auth-standin", ["node", "server.js"], STANDIN, env)
        wait_http(f"{self.base}/health", self.proc)
        self.http = requests.Session()
        self._serial = 0
        self._serial_lock = threading.Lock()

    def mint(self, count: int) -> list[str]:
        """``count`` distinct access tokens for the demo user (distinct ``exp``: same-second tokens
        would otherwise be byte-identical)."""
        tokens = []
        for _ in range(count):
            with self._serial_lock:
                self._serial += 1
                serial = self._serial
            answer = self.http.post(
                f"{self.base}/__standin/tokens", json={"email": DEMO_EMAIL, "expiresIn": 3600 + serial}, timeout=5
            )
            answer.raise_for_status()
            tokens.append(answer.json()["accessToken"])
        return tokens

    def faults(self, **faults: Any) -> None:
        if faults:
            self.http.put(f"{self.base}/__standin/faults", json=faults, timeout=5).raise_for_status()
        else:
            self.http.delete(f"{self.base}/__standin/faults", timeout=5).raise_for_status()

    def me_stats(self) -> dict[str, int]:
        """``{"count": n, "<status>|dropped": n}`` for ``/api/auth/me`` since the last reset."""
        stats = self.http.get(f"{self.base}/__standin/stats", timeout=5).json()
        entry = stats.get("paths", {}).get("/api/auth/me", {})
        return {"count": int(entry.get("count", 0)), **{k: int(v) for k, v in entry.get("statuses", {}).items()}}

    def me_calls(self) -> int:
        return self.me_stats()["count"]

    def reset_stats(self) -> None:
        self.http.delete(f"{self.base}/__standin/stats", timeout=5).raise_for_status()


@dataclass
class App:
    """One gunicorn instance of the fixture app copy."""

    name: str
    procs: Procs
    python: Path
    app_dir: Path
    env_extra: dict[str, str]
    threads: int = 0  # 0: sync workers (production); > 0: gthread workers with this many threads
    port: int = 0
    proc: Proc | None = None
    base: str = ""

    def start(self) -> App:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, **self.env_extra}
        argv = [
            str(self.python.parent / "gunicorn"),
            "config.wsgi:application",
            "--workers",
            "3",
            "--worker-class",
            "gthread" if self.threads else "sync",
            *(["--threads", str(self.threads)] if self.threads else []),
            "--timeout",
            "120",
            "--bind",
            f"127.0.0.1:{self.port}",
        ]
        if "PROMETHEUS_MULTIPROC_DIR" in env:
            argv[2:2] = ["-c", "python:rozitech_remote_auth.gunicorn_hooks"]
        self.proc = self.procs.start(f"gunicorn-{self.name}", argv, self.app_dir, env)
        wait_http(f"{self.base}/api/home/", self.proc)
        # every worker imported Django before we measure: a few /api/home/ calls land on each
        for _ in range(12):
            _get(f"{self.base}/api/home/")
        return self

    def restart(self) -> App:
        if self.proc is not None:
            self.proc.stop()
        return self.start()

    def metric(self, name: str, labels: str = "") -> float:
        """Sum of one sample of ``/metrics/`` (the patch's view, mounted by the overlay)."""
        text = _get(f"{self.base}/metrics/").text
        pattern = re.compile(rf"^{re.escape(name)}(\{{[^}}]*\}})? ([0-9.e+-]+)$", re.MULTILINE)
        total = 0.0
        for match in pattern.finditer(text):
            if labels and labels not in (match.group(1) or ""):
                continue
            total += float(match.group(2))
        return total


def prepare_app(python: Path, work: Path) -> Path:
    app_dir = work / "saas_admin"
    shutil.copytree(FIXTURE, app_dir, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "db.sqlite3", ".env"))
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.quickstart"}
    run = {"cwd": app_dir, "env": env, "check": True, "stdout": subprocess.DEVNULL}
    subprocess.run([str(python), "manage.py", "migrate", "--noinput"], **run)  # type: ignore[call-overload]
    # the patch's identity-link tables, as the remote_auth role migrates them on a rollout
    patched = {
        **env,
        "DJANGO_SETTINGS_MODULE": "rozitech_remote_auth.settings_overlay",
        "REMOTE_AUTH_BASE_SETTINGS_MODULE": "config.settings.quickstart",
        "REMOTE_AUTH_ENV_FILE": os.devnull,
        "AUTH_SERVICE_URL": "http://127.0.0.1:9",
    }
    migrate = [str(python), "manage.py", "migrate", "rozitech_remote_auth", "--noinput"]
    subprocess.run(migrate, **{**run, "env": patched})  # type: ignore[call-overload]
    user, email, password = LOCAL_USER
    code = (
        "from django.contrib.auth import get_user_model; "
        f"get_user_model().objects.create_user({user!r}, {email!r}, {password!r})"
    )
    subprocess.run([str(python), "manage.py", "shell", "-c", code], **run)  # type: ignore[call-overload]
    return app_dir


#: ``.env`` lines of today's (pre-bulkhead) design: every worker may wait the full read timeout.
TODAY = ["AUTH_SERVICE_BULKHEAD_SLOTS=0", "AUTH_SERVICE_ADAPTIVE_TIMEOUT_MIN=0"]


def overlay_env(
    app_dir: Path, name: str, auth_url: str, work: Path, *, today: bool = False, cache_url: str = ""
) -> dict[str, str]:
    """The overlay's environment for app ``name``: the defaults written out; ``today``: bulkhead
    and adaptive read timeout off; ``cache_url``: the shared Redis cache.  Each app (= host) gets its
    own bulkhead directory."""
    env_file = app_dir / f".env.{name}"
    env_file.write_text(
        "\n".join(
            [
                "SECRET_KEY=not-read-by-quickstart",  # an app key the overlay ignores
                f"AUTH_SERVICE_URL={auth_url}",
                "AUTH_SERVICE_TIMEOUT=5",
                "AUTH_SERVICE_CONNECT_TIMEOUT=3",
                "AUTH_SERVICE_TOTAL_TIMEOUT=8",
                "AUTH_SERVICE_CACHE_TTL=300",
                "AUTH_SERVICE_NEGATIVE_CACHE_TTL=30",
                "AUTH_SERVICE_BREAKER_FAIL_MAX=5",
                "AUTH_SERVICE_BREAKER_RESET_TIMEOUT=30",
                "AUTH_SERVICE_RETRY_AFTER=5",
                f"AUTH_SERVICE_BULKHEAD_DIR={work / f'bulkhead-{name}'}",
                *(TODAY if today else []),
                *([f"AUTH_SERVICE_CACHE_URL={cache_url}"] if cache_url else []),
                "",
            ]
        )
    )
    env_file.chmod(0o640)
    return {
        "DJANGO_SETTINGS_MODULE": "rozitech_remote_auth.settings_overlay",
        "REMOTE_AUTH_BASE_SETTINGS_MODULE": "config.settings.quickstart",
        "REMOTE_AUTH_ENV_FILE": str(env_file),
        "REMOTE_AUTH_MOUNT_METRICS": "true",
        "PROMETHEUS_MULTIPROC_DIR": str(work / f"prometheus-{name}"),
    }


# ---------------------------------------------------------------------------------------------
# measuring
# ---------------------------------------------------------------------------------------------


def _get(url: str, token: str | None = None, timeout: float = 30.0) -> Any:
    import requests

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(url, headers=headers, timeout=timeout)


def timed_get(url: str, token: str | None = None, timeout: float = 30.0) -> tuple[float, int, Any]:
    """``(milliseconds, status, response)``; status 0 when the client gave up."""
    import requests

    started = time.perf_counter()
    try:
        response = _get(url, token, timeout)
    except requests.RequestException:
        return (time.perf_counter() - started) * 1000, 0, None
    return (time.perf_counter() - started) * 1000, response.status_code, response


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


@dataclass
class Row:
    label: str
    app: str
    n: int
    ok: int
    p50: float
    p99: float
    upstream: str
    note: str = ""


@dataclass
class Report:
    started: str
    load_before: str = ""
    load_after: str = ""
    rows: list[Row] = field(default_factory=list)
    concurrency: list[tuple[str, int, str, float]] = field(default_factory=list)
    outage: list[dict[str, Any]] = field(default_factory=list)
    hang: dict[str, Any] = field(default_factory=dict)
    hang_today: dict[str, Any] = field(default_factory=dict)


def latency_row(
    label: str,
    app: App,
    url_path: str,
    tokens: Iterator[str | None],
    n: int,
    upstream: Callable[[], str],
    note: str = "",
) -> Row:
    samples, ok = [], 0
    for _ in range(n):
        ms, status, _ = timed_get(app.base + url_path, next(tokens))
        samples.append(ms)
        ok += status == 200
    row = Row(label, app.name, n, ok, pct(samples, 50), pct(samples, 99), upstream(), note)
    print(f"[bench] {label}: p50 {row.p50:.1f} ms, p99 {row.p99:.1f} ms, {ok}/{n} ok", flush=True)
    return row


def concurrent_same_token(app: App, standin: Standin, n: int, how: str = "sync") -> tuple[str, int, str, float]:
    token = standin.mint(1)[0]
    before = standin.me_calls()
    barrier = threading.Barrier(n)

    def one(_: int) -> int:
        barrier.wait()
        return timed_get(f"{app.base}/api/me/", token)[1]

    started = time.perf_counter()
    with ThreadPoolExecutor(n) as pool:
        statuses = list(pool.map(one, range(n)))
    wall = (time.perf_counter() - started) * 1000
    calls = standin.me_calls() - before
    summary = ", ".join(f"{s}x{statuses.count(s)}" for s in sorted(set(statuses)))
    print(f"[bench] N={n} ({how}) same new token: {calls} upstream calls, statuses {summary}", flush=True)
    return f"N={n}, {how}", calls, summary, wall


def concurrent_same_token_hosts(apps: list[App], standin: Standin, n: int, how: str) -> tuple[str, int, str, float]:
    """``n`` concurrent requests with one new token, spread round-robin over ``apps`` (hosts)."""
    token = standin.mint(1)[0]
    before = standin.me_calls()
    barrier = threading.Barrier(n)

    def one(index: int) -> int:
        barrier.wait()
        return timed_get(f"{apps[index % len(apps)].base}/api/me/", token)[1]

    started = time.perf_counter()
    with ThreadPoolExecutor(n) as pool:
        statuses = list(pool.map(one, range(n)))
    wall = (time.perf_counter() - started) * 1000
    calls = standin.me_calls() - before
    summary = ", ".join(f"{s}x{statuses.count(s)}" for s in sorted(set(statuses)))
    print(f"[bench] N={n} ({how}) same new token: {calls} upstream calls, statuses {summary}", flush=True)
    return f"N={n}, {how}", calls, summary, wall


def start_redis(procs: Procs) -> str:
    """A throw-away ``redis-server`` on a free loopback port (no persistence); its URL."""
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = procs.start("redis", argv, ROOT, dict(os.environ))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return f"redis://127.0.0.1:{port}/0"
        time.sleep(0.05)
    proc.stop()
    return ""


def outage_run(app: App, standin: Standin, label: str, max_requests: int = 60) -> dict[str, Any]:
    """Sequential cache-miss requests while the auth server is down.  A request counts as
    "breaker open" when the app's ``verify_failures_total{reason="circuit_open"}`` grew."""
    closed: list[float] = []
    opened: list[float] = []
    statuses: dict[int, int] = {}
    retry_after: set[str] = set()
    streak = 0
    tokens = standin.mint(max_requests)
    fast_fail = 'reason="circuit_open"'
    last = app.metric("rozitech_remote_auth_verify_failures_total", fast_fail)
    for token in tokens:
        ms, status, response = timed_get(f"{app.base}/api/me/", token)
        statuses[status] = statuses.get(status, 0) + 1
        if response is not None and "Retry-After" in response.headers:
            retry_after.add(response.headers["Retry-After"])
        now = app.metric("rozitech_remote_auth_verify_failures_total", fast_fail)
        if now > last:
            opened.append(ms)
            streak += 1
        else:
            closed.append(ms)
            streak = 0
        last = now
        if streak >= 15:  # all 3 workers' breakers are open
            break
    result = {
        "label": label,
        "closed": closed,
        "open": opened,
        "statuses": statuses,
        "retry_after": sorted(retry_after),
    }
    print(
        f"[bench] outage {label}: {len(closed)} requests reached the transport "
        f"(median {statistics.median(closed) if closed else float('nan'):.1f} ms), "
        f"{len(opened)} failed fast (median {statistics.median(opened) if opened else float('nan'):.1f} ms), "
        f"statuses {statuses}",
        flush=True,
    )
    return result


def loop_until(
    stop: threading.Event, fn: Callable[[], tuple[float, int]], sink: list[tuple[float, float, int]]
) -> None:
    while not stop.is_set():
        ms, status = fn()
        sink.append((time.monotonic(), ms, status))


def health_throughput(app: App, seconds: float, threads: int = 4) -> tuple[float, list[tuple[float, float, int]]]:
    stop = threading.Event()
    done: list[tuple[float, float, int]] = []

    def health() -> tuple[float, int]:
        ms, status, _ = timed_get(f"{app.base}/api/home/", timeout=60)
        return ms, status

    workers = [threading.Thread(target=loop_until, args=(stop, health, done), daemon=True) for _ in range(threads)]
    start = time.monotonic()
    for worker in workers:
        worker.start()
    time.sleep(seconds)
    stop.set()
    for worker in workers:
        worker.join(70)
    finished = [d for d in done if d[0] - start <= seconds]
    return len(finished) / seconds, done


def hang_run(app: App, standin: Standin, seconds: float, stuck: int, health_threads: int = 4) -> dict[str, Any]:
    """``/api/home/`` throughput while ``/api/auth/me`` hangs and ``stuck`` clients keep sending
    cache-miss requests."""
    baseline, _ = health_throughput(app, 5.0, health_threads)
    print(f"[bench] /api/home/ baseline: {baseline:.0f} req/s", flush=True)
    # failures are never cached, so a token that got a 503 is still a cache miss next time
    tokens = itertools.cycle(standin.mint(stuck * 20))
    token_lock = threading.Lock()

    def next_token() -> str:
        with token_lock:
            return next(tokens)

    standin.reset_stats()
    standin.faults(latencyMs=60000, paths=["/api/auth/me"])
    stop = threading.Event()
    health_done: list[tuple[float, float, int]] = []
    auth_done: list[tuple[float, float, int]] = []

    def health() -> tuple[float, int]:
        ms, status, _ = timed_get(f"{app.base}/api/home/", timeout=60)
        return ms, status

    announced: list[tuple[float, int]] = []  # (monotonic, Retry-After) of the 503s

    def auth() -> tuple[float, int]:
        ms, status, response = timed_get(f"{app.base}/api/me/", next_token(), timeout=60)
        if response is not None and response.headers.get("Retry-After", "").isdigit():
            announced.append((time.monotonic(), int(response.headers["Retry-After"])))
        return ms, status

    start = time.monotonic()
    threads = [threading.Thread(target=loop_until, args=(stop, auth, auth_done), daemon=True) for _ in range(stuck)]
    threads += [
        threading.Thread(target=loop_until, args=(stop, health, health_done), daemon=True)
        for _ in range(health_threads)
    ]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(70)
    # recovery: the auth server answers again; uncached tokens until the first 200.  Compared with
    # the Retry-After of the last 503 before that moment (what a client was told to wait).
    last_told = max(announced)[1] if announced else 0
    standin.faults()
    back = time.monotonic()
    recovery = float("nan")
    for token in standin.mint(400):
        _, status, _ = timed_get(f"{app.base}/api/me/", token, timeout=60)
        if status == 200:
            recovery = time.monotonic() - back
            break
        time.sleep(0.1)
    buckets: list[int] = []
    step = 5.0
    for i in range(int(seconds // step)):
        lo, hi = start + i * step, start + (i + 1) * step
        buckets.append(sum(1 for t, _, s in health_done if lo < t <= hi and s == 200))
    in_window = [d for d in health_done if d[0] - start <= seconds]
    auth_window = [d for d in auth_done if d[0] - start <= seconds]
    auth_ms = [ms for _, ms, _ in auth_window]
    slow = [ms for ms in auth_ms if ms >= 1000]
    fast = [ms for ms in auth_ms if ms < 1000]
    result = {
        "seconds": seconds,
        "stuck": stuck,
        "health_threads": health_threads,
        "baseline_rps": baseline,
        "rps": len(in_window) / seconds,
        "buckets_rps": [b / step for b in buckets],
        "health_p50": pct([ms for _, ms, _ in in_window], 50),
        "health_max": max((ms for _, ms, _ in in_window), default=float("nan")),
        "auth_n": len(auth_window),
        "auth_statuses": {s: sum(1 for *_, x in auth_window if x == s) for s in sorted({x for *_, x in auth_window})},
        "auth_slow": (len(slow), pct(slow, 50), max(slow, default=float("nan"))),
        "auth_fast": (len(fast), pct(fast, 50), max(fast, default=float("nan"))),
        "upstream": standin.me_calls(),
        "circuit_open": app.metric("rozitech_remote_auth_verify_failures_total", 'reason="circuit_open"'),
        "timeouts": app.metric("rozitech_remote_auth_verify_failures_total", 'reason="timeout"'),
        "bulkhead_full": app.metric("rozitech_remote_auth_verify_failures_total", 'reason="bulkhead_full"'),
        "not_503_within_1s": sum(1 for _, ms, st in auth_window if not (st == 503 and ms < 1000)),
        "last_retry_after": last_told,
        "recovery_s": recovery,
        "load": loadavg(),
    }
    print(
        f"[bench] hang: /api/home/ {result['rps']:.1f} req/s (baseline {baseline:.0f}); "
        f"per 5 s: {', '.join(f'{b:.1f}' for b in result['buckets_rps'])}; auth {result['auth_statuses']}",
        flush=True,
    )
    return result


# ---------------------------------------------------------------------------------------------
# output
# ---------------------------------------------------------------------------------------------


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine() -> str:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    return (
        f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, Node {node}"
    )


def render(report: Report) -> str:
    out = [
        f"remote-auth benchmark, {report.started}, {machine()}",
        "gunicorn 3 sync workers, loopback; identity cache = LocMem per worker process; metrics on (multiprocess)",
        f"load average before / after: {report.load_before} / {report.load_after} (shared machine)",
        "",
        "| # | requests (sequential) | app | n | 200s | p50 ms | p99 ms | p50 - floor ms "
        "| upstream /api/auth/me calls |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    floor = report.rows[0].p50 if report.rows else 0.0
    for i, row in enumerate(report.rows):
        out.append(
            f"| {i} | {row.label} | {row.app} | {row.n} | {row.ok} | {row.p50:.1f} | {row.p99:.1f} | "
            f"{row.p50 - floor:+.1f} | {row.upstream} |"
        )
    notes = [f"- {i}: {row.note}" for i, row in enumerate(report.rows) if row.note]
    out += ["", *notes, ""]
    out += [
        "| concurrent requests, same new token (gunicorn workers) | upstream calls | statuses | wall ms |",
        "|---|---|---|---|",
    ]
    for n, calls, summary, wall in report.concurrency:
        out.append(f"| {n} | {calls} | {summary} | {wall:.0f} |")
    out += [
        "",
        "| auth server down (cache misses, sequential) | requests | p50 ms | p99 ms | max ms | statuses "
        "| Retry-After |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in report.outage:
        for key, what in (("closed", "breaker closed (call made)"), ("open", "breaker open (failed fast)")):
            values = run[key]
            statuses = ", ".join(f"{s}x{c}" for s, c in sorted(run["statuses"].items()))
            out.append(
                f"| {run['label']}: {what} | {len(values)} | {pct(values, 50):.1f} | {pct(values, 99):.1f} | "
                f"{max(values, default=float('nan')):.1f} | {statuses if key == 'closed' else '(same run)'} | "
                f"{'/'.join(run['retry_after']) or '-'} |"
            )
        if "cached" in run:
            status, ms = run["cached"]
            out.append(f"| {run['label']}: a token cached before the outage | 1 | {ms:.1f} | | | {status} | |")
    designs = [(name, h) for name, h in (("today", report.hang_today), ("new", report.hang)) if h]
    if designs:
        hang = designs[-1][1]

        def share(h: dict[str, Any], value: float) -> str:
            return f"{100 * value / h['baseline_rps']:.0f} %" if h["baseline_rps"] else "-"

        def hang_rows(h: dict[str, Any]) -> list[str]:
            worst = min(h["buckets_rps"], default=float("nan"))
            slow, fast = h["auth_slow"], h["auth_fast"]
            return [
                f"{h['baseline_rps']:.0f} req/s",
                f"{h['rps']:.1f} req/s ({share(h, h['rps'])})",
                f"{worst:.1f} req/s ({share(h, worst)})",
                ", ".join(f"{b:.0f}" for b in h["buckets_rps"]),
                f"{h['health_p50']:.0f} / {h['health_max']:.0f} ms",
                f"{h['auth_n']} / {h['auth_statuses']}",
                str(h["not_503_within_1s"]),
                f"{slow[0]}, {slow[1]:.0f} / {slow[2]:.0f} ms",
                f"{fast[0]}, {fast[1]:.0f} / {fast[2]:.0f} ms",
                str(h["upstream"]),
                f"{h['timeouts']:.0f} / {h['circuit_open']:.0f} / {h['bulkhead_full']:.0f}",
                f"{h['recovery_s']:.1f} s / {h['last_retry_after']} s",
                h["load"],
            ]

        labels = [
            "/api/home/ throughput, auth server healthy (baseline, 5 s)",
            "/api/home/ throughput, whole hang (share of the baseline)",
            "/api/home/ throughput, worst 5-s window (share of the baseline)",
            "... per 5-s window, req/s",
            "/api/home/ latency p50 / max",
            "authenticated requests finished / statuses",
            "... NOT answered 503 within 1 s (waited on the auth server or queued behind a request that did)",
            "... >= 1 s: n, p50 / max",
            "... < 1 s: n, p50 / max",
            "upstream calls (reached the stand-in)",
            "patch failures: timeout / circuit_open / bulkhead_full",
            "auth server back: time to the first uncached 200 / Retry-After of the last 503 before it",
            "load average at the end of the phase",
        ]
        columns = [hang_rows(h) for _, h in designs]
        out += [
            "",
            f"/api/home/ while /api/auth/me hangs: {hang['stuck']} clients looping cache-miss requests, "
            f"{hang['health_threads']} /api/home/ clients, {hang['seconds']:.0f} s per design, each on a fresh "
            "gunicorn (closed breakers). today = `AUTH_SERVICE_BULKHEAD_SLOTS=0`, "
            "`AUTH_SERVICE_ADAPTIVE_TIMEOUT_MIN=0` (every worker may wait the full 5-s read timeout); new = "
            "the defaults (1 call slot per host, 0.5-s wait budget, read timeout from observed latency, "
            "floor 0.5 s)",
            "",
            "| figure | " + " | ".join(name for name, _ in designs) + " |",
            "|---|" + "---|" * len(designs),
        ]
        for index, label in enumerate(labels):
            out.append(f"| {label} | " + " | ".join(column[index] for column in columns) + " |")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------


def run(args: argparse.Namespace, procs: Procs, work: Path) -> Report:
    # deferred: the proxy module sits next to this file
    sys.path.insert(0, str(BENCH_DIR))
    from conn_proxy import ConnProxy

    python = Path(sys.executable)
    report = Report(started=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), load_before=loadavg())
    n = args.requests

    print("[bench] starting the auth server stand-in", flush=True)
    standin = Standin(procs)
    proxy = ConnProxy(standin.port)
    print("[bench] preparing the fixture app (copy, migrate, local user)", flush=True)
    app_dir = prepare_app(python, work)
    local = App("local", procs, python, app_dir, {"DJANGO_SETTINGS_MODULE": "config.settings.quickstart"}).start()
    remote = App("remote", procs, python, app_dir, overlay_env(app_dir, "remote", standin.base, work)).start()
    proxied = App(
        "proxied", procs, python, app_dir, overlay_env(app_dir, "proxied", f"http://127.0.0.1:{proxy.port}", work)
    ).start()
    print(f"[bench] apps up: local {local.base}, remote {remote.base}, proxied {proxied.base}", flush=True)

    import requests

    user, _, password = LOCAL_USER
    answer = requests.post(f"{local.base}/api/token/", json={"username": user, "password": password}, timeout=10)
    answer.raise_for_status()
    local_token = answer.json()["access"]

    def upstream_delta(before: int) -> Callable[[], str]:
        return lambda: str(standin.me_calls() - before)

    def proxy_delta(before_calls: int, before_conns: int) -> Callable[[], str]:
        return lambda: f"{standin.me_calls() - before_calls} ({proxy.accepted - before_conns} new TCP connections)"

    def repeat(token: str | None) -> Iterator[str | None]:
        while True:
            yield token

    rows = report.rows
    rows.append(latency_row("/api/home/ (no auth, floor)", local, "/api/home/", repeat(None), n, lambda: "-"))
    rows.append(latency_row("(a) local simplejwt verification", local, "/api/me/", repeat(local_token), n, lambda: "-"))
    before = standin.me_calls()
    rows.append(
        latency_row(
            "(a') simplejwt token through the patched app",
            remote,
            "/api/me/",
            repeat(local_token),
            n,
            upstream_delta(before),
            "the remote class returns None for a token with `token_type`, simplejwt verifies it",
        )
    )
    hit_token = standin.mint(1)[0]
    for _ in range(30):  # each of the 3 workers' LocMem caches gets it
        _get(f"{remote.base}/api/me/", hit_token)
    before = standin.me_calls()
    rows.append(
        latency_row(
            "(b) remote, cache hit",
            remote,
            "/api/me/",
            repeat(hit_token),
            n,
            upstream_delta(before),
        )
    )
    misses = iter(standin.mint(n))
    before = standin.me_calls()
    rows.append(
        latency_row(
            "(c) remote, cache miss, connection reuse",
            remote,
            "/api/me/",
            misses,
            n,
            upstream_delta(before),
            "unique tokens (distinct `exp`), app -> stand-in directly, the patch's keep-alive Session",
        )
    )
    proxy.set_mode("keepalive")
    _get(f"{proxied.base}/api/me/", standin.mint(1)[0])  # not measured: opens one kept-alive connection
    misses = iter(standin.mint(n))
    before, conns = standin.me_calls(), proxy.accepted
    rows.append(
        latency_row(
            "(c') remote, cache miss, connection reuse, via proxy",
            proxied,
            "/api/me/",
            misses,
            n,
            proxy_delta(before, conns),
            "through the bench's loopback TCP proxy in keep-alive mode: the same extra hop as (d)",
        )
    )
    proxy.set_mode("close")
    misses = iter(standin.mint(n))
    before, conns = standin.me_calls(), proxy.accepted
    rows.append(
        latency_row(
            "(d) remote, cache miss, fresh connection per call",
            proxied,
            "/api/me/",
            misses,
            n,
            proxy_delta(before, conns),
            "the proxy forces `Connection: close` upstream (Node closes after each answer), so urllib3 "
            "reconnects each time; compare with (c')",
        )
    )

    for count in (10, 50):
        report.concurrency.append(concurrent_same_token(remote, standin, count))
    # not production: gthread workers, where requests of one process really run concurrently and the
    # patch's per-process single-flight (not the per-process cache) is what keeps the count at <= 3
    # (its own PROMETHEUS_MULTIPROC_DIR: gunicorn's on_starting hook wipes the directory's *.db files)
    gthread_env = overlay_env(app_dir, "gthread", standin.base, work)
    threaded = App("remote-gthread", procs, python, app_dir, gthread_env, threads=8).start()
    report.concurrency.append(concurrent_same_token(threaded, standin, 50, "gthread 3 x 8 threads"))
    if threaded.proc is not None:
        threaded.proc.stop()

    # outages: the stand-in drops connections (reset) on app "remote"; the proxy stops listening
    # (connection refused) on app "proxied".  Cached identities keep working: checked once.
    standin.faults(drop=True, paths=["/api/auth/me"])
    report.outage.append(outage_run(remote, standin, "drop (connection reset)"))
    ms, status, _ = timed_get(f"{remote.base}/api/me/", hit_token)
    print(f"[bench] cached token during the outage: HTTP {status} in {ms:.1f} ms", flush=True)
    report.outage[-1]["cached"] = (status, ms)
    standin.faults()
    proxy.stop()
    report.outage.append(outage_run(proxied, standin, "refused (port closed)"))

    # one new token, 50 concurrent requests over 2 hosts (2 gunicorn masters, 3 sync workers each):
    # LocMem per worker (today's production) vs one shared Redis (cache, breaker, single-flight)
    remote.restart()
    second = App("remote-b", procs, python, app_dir, overlay_env(app_dir, "remote-b", standin.base, work)).start()
    report.concurrency.append(concurrent_same_token_hosts([remote, second], standin, 50, "2 hosts x 3 sync, LocMem"))
    if second.proc is not None:
        second.proc.stop()
    redis_url = start_redis(procs) if shutil.which("redis-server") else ""
    if redis_url:
        hosts = [
            App(
                "redis-a",
                procs,
                python,
                app_dir,
                overlay_env(app_dir, "redis-a", standin.base, work, cache_url=redis_url),
            ),
            App(
                "redis-b",
                procs,
                python,
                app_dir,
                overlay_env(app_dir, "redis-b", standin.base, work, cache_url=redis_url),
            ),
        ]
        for host in hosts:
            host.start()
        report.concurrency.append(concurrent_same_token_hosts(hosts, standin, 50, "2 hosts x 3 sync, shared Redis"))
        for host in hosts:
            if host.proc is not None:
                host.proc.stop()
    else:
        print("[bench] redis-server not installed: the shared-Redis row is skipped", flush=True)

    # the hang, each design on a fresh app (closed breakers); the new one keeps the latency estimate
    # its bulkhead directory learnt in the rows above, as a running host would
    if "today" in args.designs:
        today = App(
            "remote-today", procs, python, app_dir, overlay_env(app_dir, "remote-today", standin.base, work, today=True)
        ).start()
        report.hang_today = hang_run(today, standin, args.hang_seconds, args.stuck)
        if today.proc is not None:
            today.proc.stop()
    if "new" in args.designs:
        remote.restart()
        report.hang = hang_run(remote, standin, args.hang_seconds, args.stuck)
    report.load_after = loadavg()
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per latency row (default 200)")
    parser.add_argument("--hang-seconds", type=float, default=60.0, help="length of the hang phase (default 60)")
    parser.add_argument("--stuck", type=int, default=6, help="clients looping cache-miss requests while hanging")
    parser.add_argument(
        "--designs",
        type=lambda v: set(v.split(",")),
        default={"today", "new"},
        help="hang phase for: today (no bulkhead, fixed read timeout), new (the defaults); default today,new",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (app copy, process logs)")
    parser.add_argument("--no-venv", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if not args.no_venv:
        python = ensure_venv()
        ensure_node_modules()
        if Path(sys.prefix).resolve() != VENV.resolve():
            # re-run this file with the bench venv's python (fixed argv, no shell)
            os.execv(str(python), [str(python), __file__, *sys.argv[1:], "--no-venv"])  # noqa: S606

    def on_signal(signum: int, _frame: Any) -> None:
        if signum == signal.SIGALRM:
            raise TimeLimit(f"overall limit of {OVERALL_LIMIT_S} s reached")
        raise KeyboardInterrupt

    # SIGINT explicitly too: a shell starting us in the background sets it to "ignore"
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGALRM, on_signal)
    signal.alarm(OVERALL_LIMIT_S)
    work = Path(tempfile.mkdtemp(prefix="rozitech-bench-"))
    procs = Procs(work)
    started = time.monotonic()
    try:
        report = run(args, procs, work)
    except (TimeLimit, KeyboardInterrupt) as exc:
        print(f"[bench] stopped: {str(exc) or 'interrupted'}; every process it started is stopped", file=sys.stderr)
        return 130
    finally:
        signal.alarm(0)
        procs.stop_all()
        if args.keep:
            print(f"[bench] kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print(render(report))
    print(f"\n(run took {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
