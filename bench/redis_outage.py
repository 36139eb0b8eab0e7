"""Request latency while the shared Redis is down, for the current patch and an older one (issue 14).

One fixture app (gunicorn, 3 sync workers, the patch's overlay with ``AUTH_SERVICE_CACHE_URL``) per case,
the auth server stand-in on loopback, and a Redis that goes away in one of two ways:

* ``refused``: a loopback ``redis-server`` is stopped (connections refused at once);
* ``blackholed``: a Redis container on a private Docker network (``10.211.77.0/24``, container
  ``rozitech-bench-redis``) is stopped, so its address stops answering at all (connect and read timeouts).

While Redis is down, 30 sequential authenticated requests (every third with a new token) and 6 ``/api/home/``;
then Redis comes back and, 6.5 s later, 4 requests with one new token show whether the shared cache serves
again (1 upstream call: yes). ``--old-src DIR`` adds the same cases with the patch's source from ``DIR``
(``PYTHONPATH``), e.g. ``git archive <commit> django_patch/src | tar -x -C /tmp/old``.

Run with the bench venv (``make bench`` creates it): ``.cache/bench-venv/bin/python bench/redis_outage.py``.
Prints a Markdown table; never passes or fails.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import remote_auth_bench as bench

NETWORK, SUBNET, ADDRESS = "rozitech-bench-redis", "10.211.77.0/24", "10.211.77.10"
CONTAINER, IMAGE = "rozitech-bench-redis", "rozitech-sandbox/redis:bookworm"


def docker(*args: str, check: bool = True) -> None:
    subprocess.run(["docker", *args], check=check, capture_output=True, text=True)


def loopback_redis(port: int) -> subprocess.Popen[bytes]:
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return proc


def redis_for(mode: str) -> tuple[str, Callable[[], None], Callable[[], None]]:
    """(URL, stop, start) of a Redis that goes away as ``mode`` says."""
    if mode == "refused":
        port = bench.free_port()
        procs = [loopback_redis(port)]

        def stop() -> None:
            procs[-1].terminate()
            procs[-1].wait(10)

        def start() -> None:
            procs.append(loopback_redis(port))

        return f"redis://127.0.0.1:{port}/0", stop, start
    docker("rm", "-f", CONTAINER, check=False)
    docker("run", "-d", "--name", CONTAINER, "--network", NETWORK, "--ip", ADDRESS, IMAGE)
    time.sleep(1.5)
    return (
        f"redis://{ADDRESS}:6379/0",
        lambda: docker("stop", "-t", "1", CONTAINER),
        lambda: docker("start", CONTAINER),
    )


def case(code: str, extra: dict[str, str], mode: str, ctx: dict[str, object]) -> str:
    standin: bench.Standin = ctx["standin"]  # type: ignore[assignment]
    work: Path = ctx["work"]  # type: ignore[assignment]
    url, stop, start = redis_for(mode)
    name = f"{code}-{mode}".replace(" ", "")
    env = bench.overlay_env(ctx["app_dir"], name, standin.base, work, cache_url=url)  # type: ignore[arg-type]
    app = bench.App(name, ctx["procs"], ctx["python"], ctx["app_dir"], {**env, **extra}).start()  # type: ignore[arg-type]
    token = standin.mint(1)[0]
    for _ in range(6):
        bench.timed_get(f"{app.base}/api/me/", token)
    stop()
    fresh = standin.mint(10)
    started = time.monotonic()
    answers = [bench.timed_get(f"{app.base}/api/me/", fresh[i % 10] if i % 3 == 0 else token) for i in range(30)]
    home = [bench.timed_get(f"{app.base}/api/home/")[0] for _ in range(6)]
    wall = time.monotonic() - started
    start()
    time.sleep(6.5)
    again = standin.mint(1)[0]
    calls = standin.me_calls()
    for _ in range(4):
        bench.timed_get(f"{app.base}/api/me/", again)
    back = standin.me_calls() - calls
    if app.proc is not None:
        app.proc.stop()
    if mode == "blackholed":
        docker("rm", "-f", CONTAINER, check=False)
    ms = [a[0] for a in answers]
    return (
        f"| {code} | {mode} | {len(ms)} | {statistics.median(ms):.0f} | {max(ms):.0f} | "
        f"{sum(1 for x in ms if x >= 1000)} | {sorted({a[1] for a in answers})} | {max(home):.0f} | "
        f"{wall:.1f} | {back} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--old-src", help="an older patch's src/ directory to measure beside the current one")
    parser.add_argument("--old-label", default="old", help="its name in the table")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rozitech-redis-outage-"))
    (work / "logs").mkdir()
    procs = bench.Procs(work / "logs")
    docker("network", "create", "--subnet", SUBNET, NETWORK, check=False)
    try:
        python = Path(sys.executable)
        ctx: dict[str, object] = {"procs": procs, "python": python, "work": work}
        ctx["standin"] = bench.Standin(procs)
        ctx["app_dir"] = bench.prepare_app(python, work)
        print(f"Redis outage, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load {bench.loadavg()}")
        print(
            "| patch | Redis | requests | p50 ms | max ms | >= 1 s | statuses | /api/home/ max ms | wall s "
            "| upstream calls for 4 requests, Redis back 6.5 s |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        codes = [("current", {})]
        if args.old_src:
            codes.append((args.old_label, {"PYTHONPATH": args.old_src}))
        for code, extra in codes:
            for mode in ("refused", "blackholed"):
                print(case(code, extra, mode, ctx), flush=True)
        print(f"load after: {bench.loadavg()}")
    finally:
        procs.stop_all()
        docker("rm", "-f", CONTAINER, check=False)
        docker("network", "rm", NETWORK, check=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
