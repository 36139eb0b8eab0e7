#!/usr/bin/env python3
"""Run every panel query of the Grafana dashboards against a live Prometheus: an empty result is a broken panel.

Grafana cannot run here, so this is the check that the dashboards show data: each target's ``expr`` (with
Grafana's ``$__rate_interval``/``$__interval``/``$__range`` replaced by ``--rate-interval``) is sent to
``/api/v1/query`` (instant, at now). A result with at least one series passes (a NaN value, e.g. a latency
quantile with no traffic in the window, is data: the query and its series are right). ``--wait`` retries the
empty ones until they have data (fresh Prometheus: the first scrapes and rate windows need a minute).

    python tests/monitoring/check_dashboard_queries.py --prometheus http://127.0.0.1:9090 [--wait 120]

Exit status: 0 every query returned data, 1 some returned nothing or failed, 2 Prometheus unreachable.
``--no-nan`` also retries (and finally fails) results whose every value is NaN: the panel would draw
nothing yet (use it where traffic is known to flow, e.g. the Molecule scenario).
``--allow-empty REGEX`` lets panels whose title matches stay empty (reported as SKIP), e.g. the certificate
panel when the exporter probes a plain-http target.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prom_api import PromError, query

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "monitoring" / "grafana" / "dashboards"


def panel_queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """Yield ``(panel title, refId, expr)`` for every target of every panel (rows' nested panels too)."""
    stack = list(dashboard.get("panels", []))
    while stack:
        panel = stack.pop(0)
        stack[0:0] = panel.get("panels", [])
        for tgt in panel.get("targets", []):
            if not tgt.get("hide"):
                yield panel.get("title", "?"), tgt.get("refId", "?"), tgt["expr"]


def substitute(expr: str, rate_interval: str) -> str:
    """Replace Grafana's built-in interval variables (the only variables these dashboards use in queries)."""
    expr = re.sub(r"\$\{?__(rate_interval|interval|range)\}?", rate_interval, expr)
    if "$" in expr:
        raise ValueError(f"unresolved variable in {expr!r}")
    return expr


def run(
    base: str, exprs: list[tuple[str, str, str]], allow: re.Pattern[str] | None, wait: float, no_nan: bool = False
) -> int:
    deadline = time.monotonic() + wait
    pending = list(exprs)
    results: dict[tuple[str, str], str] = {}
    while True:
        still = []
        for title, ref, expr in pending:
            try:
                series = query(base, expr)
            except PromError as exc:
                results[(title, ref)] = f"ERROR {exc}"
                still.append((title, ref, expr))
                continue
            nan = sum(1 for s in series if math.isnan(float(s["value"][1])))
            if series and not (no_nan and nan == len(series)):
                note = f" ({nan} NaN: no events in the window)" if nan else ""
                results[(title, ref)] = f"OK    {len(series)} series{note}"
            elif series:
                results[(title, ref)] = "NAN   only NaN values"
                still.append((title, ref, expr))
            else:
                results[(title, ref)] = "EMPTY"
                still.append((title, ref, expr))
        pending = still
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(5)
    failed = 0
    for title, ref, expr in exprs:
        status = results[(title, ref)]
        if not status.startswith("OK") and allow and allow.search(title):
            status = f"SKIP  ({status.split()[0].lower()}, allowed by --allow-empty)"
        elif not status.startswith("OK"):
            failed += 1
        print(f"{status:<45} {title} [{ref}]: {expr}")
    print(f"{len(exprs) - failed}/{len(exprs)} panel queries returned data")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090", help="Prometheus base URL")
    parser.add_argument(
        "--dashboard", action="append", type=Path, help="dashboard JSON (default: all in monitoring/grafana/dashboards)"
    )
    parser.add_argument(
        "--rate-interval", default="2m", help="value for $__rate_interval/$__interval/$__range (default 2m)"
    )
    parser.add_argument("--wait", type=float, default=0, help="seconds to keep retrying empty queries (default 0)")
    parser.add_argument("--allow-empty", help="regex of panel titles allowed to return nothing")
    parser.add_argument("--no-nan", action="store_true", help="treat a result of only NaN values as empty")
    args = parser.parse_args(argv)
    exprs = []
    for path in args.dashboard or sorted(DASHBOARDS.glob("*.json")):
        for title, ref, expr in panel_queries(json.loads(path.read_text())):
            exprs.append((f"{path.stem}: {title}", ref, substitute(expr, args.rate_interval)))
    try:
        query(args.prometheus, "vector(1)")
    except PromError as exc:
        print(f"Prometheus at {args.prometheus} does not answer: {exc}", file=sys.stderr)
        return 2
    allow = re.compile(args.allow_empty) if args.allow_empty else None
    return run(args.prometheus, exprs, allow, args.wait, args.no_nan)


if __name__ == "__main__":
    sys.exit(main())
