"""Steady load through an app host's nginx while the rollout, a no-change rerun, an automatic restore and the
rollbacks run on it: failed requests per phase, request rate, latency and load average.

Two ways to run it (the project's venv, a sandbox from ``make demo``; loopback ports of the sandbox only)::

    python bench/rollout_load.py                    # the phases below on rozitech-sandbox-app1 (~6 min)
    python bench/rollout_load.py watch --max-failed 0 -- ansible-playbook ... # load around one command

Phases (each one ``ansible-playbook -i inventory/sandbox ... --limit HOST`` while the load runs):

    rollout        remote_auth.yml with a changed setting (remote_auth_cache_ttl)
    rerun          the same command again: nothing changes, nothing restarts
    restore        a release whose health gate fails after the restart (--restore-args, default a wrong
                   remote_auth_issuer: the gate's token is refused): the role restores the host by itself
    rollback       rollback.yml: undoes the latest release (the setting change)
    rollback-all   rollback.yml -e rollout_release=all: back to the app as it was before the first rollout
                   (the socket unit removed: gunicorn's own socket again)
    first-rollout  remote_auth.yml: the first rollout onto that app (the switch to the socket unit)

A request fails when it gets anything but the status its path answered before the phase started (a 502 from
nginx when gunicorn's socket is gone, a timeout, a refused connection). The load is ``--threads`` clients, each
sending one request after the other on a new connection (``--path`` picks the URLs; the default, a view that
answers 401 without a token on the app before and after the rollout, goes through Django and DRF).

Output: one table (requests, failed, requests/s, median and max latency in ms, the machine's 1-min load
average at the phase's end), the failures' kinds, and each phase's ansible log under --log-dir (``watch``
also prints the command's output as it runs).
Exit status: 1 when a phase's command fails (except ``restore``, which must fail) or when failed requests
exceed --max-failed (default: no limit, the bench only prints).
"""

from __future__ import annotations

import argparse
import collections
import http.client
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "standins"))
from standin_harness import SANDBOX_APP_CONTAINERS, SANDBOX_APP_URLS  # the sandbox's addresses

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
DEFAULT_PATHS = ["/api/auth/verify"]
RESTORE_ARGS = "-e remote_auth_cache_ttl=303 -e remote_auth_issuer=https://wrong-issuer.invalid"


@dataclass
class Tally:
    """What one phase's load saw: latencies in seconds, failures by kind ('502', 'timeout', ...)."""

    latencies: list[float] = field(default_factory=list)
    failures: collections.Counter = field(default_factory=collections.Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


def request(url: urllib.parse.SplitResult, path: str, timeout: float) -> int:
    """One GET on a new connection; returns the HTTP status (raises OSError / http.client errors)."""
    conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close", "User-Agent": "rozitech-rollout-load"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def baseline(url: urllib.parse.SplitResult, paths: list[str], timeout: float) -> dict[str, int]:
    """The status each path answers now (3 tries each); exits when the app does not answer at all."""
    expected = {}
    for path in paths:
        for attempt in range(3):
            try:
                expected[path] = request(url, path, timeout)
                break
            except (OSError, http.client.HTTPException) as exc:
                if attempt == 2:
                    sys.exit(f"{url.geturl()}{path} does not answer: {exc}")
                time.sleep(1)
    return expected


class Load:
    """``threads`` clients looping over ``paths`` until stopped; counts what deviates from ``expected``."""

    def __init__(self, url: urllib.parse.SplitResult, expected: dict[str, int], threads: int, timeout: float):
        self.url, self.expected, self.timeout = url, expected, timeout
        self.tally = Tally()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.client, args=(i,), daemon=True) for i in range(threads)]

    def client(self, index: int) -> None:
        paths = list(self.expected)
        n = index
        while not self.stop.is_set():
            path = paths[n % len(paths)]
            n += 1
            start = time.monotonic()
            try:
                status = request(self.url, path, self.timeout)
                kind = None if status == self.expected[path] else str(status)
            except TimeoutError:
                kind = "timeout"
            except (OSError, http.client.HTTPException) as exc:
                kind = type(exc).__name__
            elapsed = time.monotonic() - start
            with self.tally.lock:
                self.tally.latencies.append(elapsed)
                if kind:
                    self.tally.failures[f"{path} {kind}"] += 1

    def __enter__(self) -> Load:
        self.started = time.monotonic()
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(self.timeout + 5)
        self.elapsed = time.monotonic() - self.started


@dataclass
class Result:
    phase: str
    rc: int
    seconds: float
    requests: int
    failed: int
    rate: float
    p50_ms: float
    max_ms: float
    load1: float
    failures: dict[str, int]


def run_phase(name: str, cmd: list[str], args: argparse.Namespace, url: urllib.parse.SplitResult) -> Result:
    """Runs ``cmd`` (its output to <log-dir>/<name>.log) while the load runs; 2 s of load before and after."""
    expected = baseline(url, args.path, args.timeout)
    env = dict(
        os.environ,
        PATH=f"{BIN}:{os.environ['PATH']}",
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
    )
    log = Path(args.log_dir) / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with Load(url, expected, args.threads, args.timeout) as load, log.open("w") as out:
        time.sleep(2)
        start = time.monotonic()
        pipe = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}
        with subprocess.Popen(cmd, cwd=ROOT, env=env, **pipe) as proc:
            for line in proc.stdout:
                out.write(line)
                if args.echo:
                    sys.stdout.write(line)
                    sys.stdout.flush()
        rc = proc.returncode
        seconds = time.monotonic() - start
        time.sleep(2)
    lat = load.tally.latencies
    failed = sum(load.tally.failures.values())
    return Result(
        phase=name,
        rc=rc,
        seconds=seconds,
        requests=len(lat),
        failed=failed,
        rate=len(lat) / load.elapsed if load.elapsed else 0.0,
        p50_ms=statistics.median(lat) * 1000 if lat else 0.0,
        max_ms=max(lat) * 1000 if lat else 0.0,
        load1=os.getloadavg()[0],
        failures=dict(load.tally.failures),
    )


def print_table(results: list[Result], args: argparse.Namespace) -> None:
    print(
        f"\nload: {args.threads} clients, GET {', '.join(args.path)} via {args.url}; "
        f"{os.cpu_count()} cores, load average now {os.getloadavg()[0]:.2f}"
    )
    head = (
        f"{'phase':<14} {'rc':>3} {'run s':>6} {'requests':>8} {'failed':>6} {'req/s':>6} "
        f"{'p50 ms':>7} {'max ms':>8} {'load1':>6}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        print(
            f"{r.phase:<14} {r.rc:>3} {r.seconds:>6.1f} {r.requests:>8} {r.failed:>6} {r.rate:>6.1f} "
            f"{r.p50_ms:>7.1f} {r.max_ms:>8.0f} {r.load1:>6.2f}"
        )
    for r in results:
        for kind, count in sorted(r.failures.items()):
            print(f"  {r.phase}: {count} x {kind}")
    print(f"logs: {args.log_dir}")


def phases(args: argparse.Namespace) -> list[tuple[str, list[str], bool]]:
    """(name, command, must_succeed) for the sandbox phases, in order."""
    play = ["ansible-playbook", "-i", args.inventory]
    limit = ["--limit", args.host]
    ttl = ["-e", f"remote_auth_cache_ttl={args.cache_ttl}"]
    table = {
        "rollout": ([*play, "playbooks/remote_auth.yml", *ttl, *limit], True),
        "rerun": ([*play, "playbooks/remote_auth.yml", *ttl, *limit], True),
        "restore": ([*play, "playbooks/remote_auth.yml", *args.restore_args.split(), *limit], False),
        "rollback": ([*play, "playbooks/rollback.yml", *limit], True),
        "rollback-all": ([*play, "playbooks/rollback.yml", "-e", "rollout_release=all", *limit], True),
        "first-rollout": ([*play, "playbooks/remote_auth.yml", *limit], True),
    }
    return [(name, *table[name]) for name in args.phases.split(",")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=SANDBOX_APP_URLS[0], help="the app host's nginx (default: app1's port)")
    parser.add_argument("--path", action="append", help=f"URL path to load (repeatable; default {DEFAULT_PATHS})")
    parser.add_argument("--threads", type=int, default=4, help="concurrent clients (default 4)")
    parser.add_argument("--timeout", type=float, default=30.0, help="per-request timeout, s (default 30)")
    parser.add_argument("--log-dir", default=str(ROOT / ".artifacts" / "rollout-load"), help="phase logs")
    parser.add_argument("--max-failed", type=int, default=None, help="exit 1 when a phase fails more requests")
    sub = parser.add_subparsers(dest="mode")
    watch = sub.add_parser("watch", help="load around one command: watch [--label L] -- CMD ...")
    watch.add_argument("--label", default="command")
    watch.add_argument("--quiet", action="store_true", help="only the log file gets the command's output")
    watch.add_argument("command", nargs=argparse.REMAINDER)
    parser.add_argument("--inventory", default="inventory/sandbox")
    parser.add_argument("--host", default=SANDBOX_APP_CONTAINERS[0], help="inventory host behind --url")
    parser.add_argument("--phases", default="rollout,rerun,restore,rollback,rollback-all,first-rollout")
    parser.add_argument("--cache-ttl", type=int, default=302, help="the changed setting of the rollout phase")
    parser.add_argument("--restore-args", default=RESTORE_ARGS, help="extra vars of a release whose gate fails")
    args = parser.parse_args(argv)
    args.path = args.path or DEFAULT_PATHS
    url = urllib.parse.urlsplit(args.url)

    args.echo = args.mode == "watch" and not args.quiet
    if args.mode == "watch":
        command = args.command[1:] if args.command[:1] == ["--"] else args.command
        if not command:
            parser.error("watch needs a command after --")
        plan = [(args.label, command, True)]
    else:
        plan = phases(args)

    results, status = [], 0
    for name, cmd, must_succeed in plan:
        print(f"[rollout-load] {name}: {' '.join(cmd)}", flush=True)
        result = run_phase(name, cmd, args, url)
        results.append(result)
        print(
            f"[rollout-load] {name}: rc={result.rc}, {result.requests} requests, {result.failed} failed, "
            f"{result.rate:.1f}/s, load average {result.load1:.2f}",
            flush=True,
        )
        if (result.rc == 0) != must_succeed:
            print(f"[rollout-load] {name}: rc={result.rc}, expected {'0' if must_succeed else 'a failure'}")
            status = 1
        if args.max_failed is not None and result.failed > args.max_failed:
            status = 1
    print_table(results, args)
    return status


if __name__ == "__main__":
    sys.exit(main())
