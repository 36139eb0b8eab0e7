"""``rozitech-auth-exporter``: load the configuration, start the prober thread and the metrics server.

Exit codes: 0 after SIGTERM/SIGINT, 1 when ``--healthcheck`` finds the exporter unhealthy, 2 on a
configuration error, 3 when the listen address cannot be bound.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import urllib.request
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector

from rozitech_auth_exporter import __version__, config
from rozitech_auth_exporter.probe import Prober
from rozitech_auth_exporter.server import make_app, serve
from rozitech_auth_exporter.state import ProbeState, StateCollector

log = logging.getLogger("rozitech_auth_exporter")


def healthcheck(cfg: config.Config) -> int:
    """GET http://127.0.0.1:<listen port>/-/healthy (the listen host when it is not a wildcard)."""
    host, port = cfg.listen_host_port
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 - a wildcard listen address is reached on loopback
        host = "127.0.0.1" if host != "::" else "::1"
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/-/healthy"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return 0 if response.status == 200 else 1
    except OSError as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1


def build(cfg: config.Config) -> tuple[CollectorRegistry, ProbeState, Prober]:
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    state = ProbeState(interval=cfg.interval, max_requests=cfg.max_requests_per_cycle, timeout=cfg.timeout)
    registry.register(StateCollector(state))
    return registry, state, Prober(cfg, state)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        cfg, args = config.load(argv)
    except config.ConfigError as exc:
        print(f"rozitech-auth-exporter: configuration error: {exc}", file=sys.stderr)
        return 2
    if args.version:
        print(f"rozitech-auth-exporter {__version__}")
        return 0
    if args.healthcheck:
        return healthcheck(cfg)
    logging.basicConfig(
        level=cfg.log_level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("urllib3").setLevel(logging.WARNING)  # its debug lines would carry URLs and headers
    registry, state, prober = build(cfg)
    host, port = cfg.listen_host_port
    try:
        httpd, _ = serve(host, port, make_app(registry, state))
    except OSError as exc:
        print(f"rozitech-auth-exporter: cannot listen on {cfg.listen_address}: {exc.strerror}", file=sys.stderr)
        return 3
    account = "with a probe account" if cfg.credentials else "without a probe account (health only)"
    log.info(
        "rozitech-auth-exporter %s: probing %s every %ss %s, at most %d requests per cycle; metrics on %s",
        __version__,
        cfg.target_url,
        cfg.interval,
        account,
        cfg.max_requests_per_cycle,
        cfg.listen_address,
    )
    stop = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    worker = threading.Thread(target=prober.run_forever, args=(stop,), name="prober", daemon=True)
    worker.start()
    stop.wait()
    httpd.shutdown()
    worker.join(timeout=cfg.timeout * cfg.max_requests_per_cycle + 5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
