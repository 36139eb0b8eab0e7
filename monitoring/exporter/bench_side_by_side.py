#!/usr/bin/env python3
"""Side by side: blackbox_exporter (Debian package, module http_2xx on /health) and rozitech-auth-exporter,
against one auth server stand-in with its fault controls, in one run. Prints a Markdown table (figures, never
pass/fail): what each reports for up, down (forced 503), slow (2 s latency), 429 (forced on every path) and
the real rate limit exhausted; scrape duration and resident memory.

    .venv/bin/python monitoring/exporter/bench_side_by_side.py [--target URL --control URL]

Without ``--target`` it starts the stand-in itself (``node tests/standins/auth_server/server.js`` through the
repository's stand-in harness ``tests/standins/standin_harness.py``, fault control on, limit 150 per 15 min).
``--target`` points both exporters at another base URL (e.g. the sandbox proxy); ``--control`` is where that
stand-in's ``/__standin`` API answers (default: the target).
Needs ``prometheus-blackbox-exporter`` and ``node`` on PATH.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "standins"))
from standin_harness import StandinClient, free_port, launch, metric_values

HERE = Path(__file__).resolve().parent
INTERVAL = 2.0
P = "rozitech_auth_probe_"


def wait_http(url: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=1).status_code < 500:
                return
        time.sleep(0.1)
    raise SystemExit(f"{url} did not answer")


@contextlib.contextmanager
def process(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen(
        cmd, env={**os.environ, **(env or {})}, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def sample(text: str, name: str, **labels: str) -> str:
    """The sample ``name`` with exactly ``labels`` (``prometheus_client.parser``), formatted; ``-`` if absent."""
    value = metric_values(text).get((name, tuple(sorted(labels.items()))))
    if value is None:
        return "-"
    return f"{value:.3f}" if value != int(value) else str(int(value))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target")
    parser.add_argument("--control")
    args = parser.parse_args()
    blackbox = shutil.which("prometheus-blackbox-exporter")
    if blackbox is None:
        raise SystemExit("prometheus-blackbox-exporter is missing (apt-get install prometheus-blackbox-exporter)")
    with contextlib.ExitStack() as stack:
        if args.target:
            target = args.target.rstrip("/")
        else:
            target = stack.enter_context(launch({"STANDIN_FAULT_CONTROL": "1"}, inherit_env=True)).base_url
        standin = StandinClient(args.control or target)

        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        (tmp / "blackbox.yml").write_text(
            "modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n    http:\n      preferred_ip_protocol: ip4\n"
        )
        bb_port = free_port()
        bb = stack.enter_context(
            process([blackbox, f"--config.file={tmp / 'blackbox.yml'}", f"--web.listen-address=127.0.0.1:{bb_port}"])
        )
        bb_url = f"http://127.0.0.1:{bb_port}/probe?module=http_2xx&target={target}/health"
        creds = tmp / "credentials.yml"
        creds.write_text("email: demo@rozitech.test\npassword: 'Demo-Passw0rd!'\n")
        ours_port = free_port()
        ours = stack.enter_context(
            process(
                [
                    sys.executable,
                    "-m",
                    "rozitech_auth_exporter",
                    "--target-url",
                    target,
                    "--credentials-file",
                    str(creds),
                    "--interval",
                    str(INTERVAL),
                    "--listen-address",
                    f"127.0.0.1:{ours_port}",
                ],
                {"PYTHONPATH": str(HERE / "src")},
            )
        )
        ours_url = f"http://127.0.0.1:{ours_port}/metrics"
        wait_http(f"http://127.0.0.1:{bb_port}/")
        wait_http(ours_url)

        def faults(body: dict | None) -> None:
            if body is None:
                standin.clear_faults()
            else:
                standin.set_faults(**body)

        standin.reset_rate_limit()
        rows = []
        scenarios = [
            ("up", None, None),
            ("down (forced 503)", {"status": 503}, None),
            ("slow (2 s latency)", {"latencyMs": 2000}, None),
            ("429 (forced, every path, Retry-After 8)", {"status": 429, "retryAfter": 8}, None),
            ("rate limit exhausted (real 429 on /api/)", None, "exhaust"),
        ]
        for name, fault, special in scenarios:
            faults(None)
            standin.reset_rate_limit()
            if fault:
                faults(fault)
            if special == "exhaust":
                time.sleep(8)  # let the back-off of the forced 429 run out first
                with requests.Session() as other:
                    for _ in range(160):
                        other.get(f"{target}/api/auth/me", timeout=5)
            time.sleep(2 * INTERVAL + (2.5 if "slow" in name else 0.5))
            bb_start = time.perf_counter()
            bb_text = requests.get(bb_url, timeout=15).text
            bb_scrape = time.perf_counter() - bb_start
            ours_text = requests.get(ours_url, timeout=5).text
            rows.append(
                (
                    name,
                    sample(bb_text, "probe_success"),
                    sample(bb_text, "probe_http_status_code"),
                    sample(bb_text, "probe_duration_seconds"),
                    sample(ours_text, f"{P}success", probe="health"),
                    sample(ours_text, f"{P}success", probe="verify"),
                    sample(ours_text, f"{P}health_http_status_code"),
                    sample(ours_text, f"{P}duration_seconds", probe="verify"),
                    sample(ours_text, f"{P}ratelimit_remaining"),
                    sample(ours_text, f"{P}backoff_seconds", probe="verify"),
                    f"{bb_scrape * 1000:.0f}",
                )
            )
        faults(None)
        standin.reset_rate_limit()
        time.sleep(INTERVAL)
        bb_times, ours_times = [], []
        for _ in range(20):
            start = time.perf_counter()
            requests.get(bb_url, timeout=10)
            bb_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            requests.get(ours_url, timeout=10)
            ours_times.append(time.perf_counter() - start)
        bb_rss, ours_rss = rss_mib(bb.pid), rss_mib(ours.pid)
        stats = standin.stats()

    print(f"Target {target}; our probe interval {INTERVAL:g} s; blackbox probes on every scrape.\n")
    print(
        "| scenario | bb probe_success | bb status | bb duration s | ours success{health} | ours success{verify} "
        "| ours health status | ours verify duration s | ours ratelimit_remaining | ours backoff s | bb scrape ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()
    print("| figure | blackbox_exporter 0.23 | rozitech-auth-exporter |")
    print("|---|---|---|")
    print(
        f"| scrape duration, median of 20 (up) | {statistics.median(bb_times) * 1000:.1f} ms (runs the probe) "
        f"| {statistics.median(ours_times) * 1000:.1f} ms (serves the latest results) |"
    )
    print(f"| resident memory (VmRSS) at the end | {bb_rss:.1f} MiB | {ours_rss:.1f} MiB |")
    print(f"\n(stand-in saw {stats.get('total', '?')} requests in the last scenario window)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
