#!/usr/bin/env python3
"""Build the Grafana "Auth path" dashboard (``dashboards/auth-path.json``) as code.

Plain Python (no SDK to pin): the JSON model of Grafana 10.4 (``schemaVersion`` 39). Every panel queries
the datasource variable ``${datasource}`` (type prometheus), never a hard-coded datasource uid, and there are
no import placeholders (``__inputs``, ``${DS_...}``), so the file works both provisioned and imported.

Queries are written to return data whenever their job is scraped: series that only appear after an event
(a first 429) fall back to ``0 * <a series that is always there>`` per instance, so an empty panel means a
broken query, and ``tests/monitoring/check_dashboard_queries.py`` runs every one of them against a live
Prometheus. Metrics: ``rozitech_auth_probe_*`` (monitoring/exporter) and ``rozitech_remote_auth_*``
(django_patch/src/rozitech_remote_auth/metrics.py); SLO series from monitoring/prometheus/rules/slo.yml.

    python monitoring/grafana/build_dashboard.py           # rewrite the JSON
    python monitoring/grafana/build_dashboard.py --check   # exit 1 when the JSON is out of date
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "dashboards" / "auth-path.json"
UID = "rozitech-auth-path"
DS = {"type": "prometheus", "uid": "${datasource}"}
RI = "$__rate_interval"
# The probe runs every 30 s by default: its histogram needs a wider window than the scrape interval.
PROBE_WINDOW = "5m"

Panel = dict[str, Any]


def target(expr: str, legend: str, ref: str) -> dict[str, Any]:
    return {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref, "range": True, "instant": False}


def panel(
    pid: int,
    title: str,
    kind: str,
    pos: tuple[int, int, int, int],
    targets: list[dict[str, Any]],
    *,
    description: str,
    unit: str = "short",
    extra_defaults: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
) -> Panel:
    x, y, w, h = pos
    defaults: dict[str, Any] = {"unit": unit}
    defaults.update(extra_defaults or {})
    return {
        "id": pid,
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options or {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}},
    }


def row(pid: int, title: str, y: int) -> Panel:
    return {
        "id": pid,
        "type": "row",
        "title": title,
        "collapsed": False,
        "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
        "panels": [],
    }


def thresholds(*steps: tuple[float | None, str]) -> dict[str, Any]:
    return {"thresholds": {"mode": "absolute", "steps": [{"value": v, "color": c} for v, c in steps]}}


def quantiles(metric: str, window: str, by: str) -> list[dict[str, Any]]:
    return [
        target(
            f"histogram_quantile({q}, sum by ({by}) (rate({metric}_bucket[{window}])))",
            f"p{int(q * 100)}",
            ref,
        )
        for q, ref in ((0.5, "A"), (0.95, "B"), (0.99, "C"))
    ]


def panels() -> list[Panel]:
    up_mappings = [
        {"type": "value", "options": {"0": {"text": "down", "color": "red"}, "1": {"text": "up", "color": "green"}}}
    ]
    circuit_mappings = [
        {
            "type": "value",
            "options": {
                "0": {"text": "closed", "color": "green"},
                "1": {"text": "open", "color": "red"},
                "2": {"text": "half-open", "color": "orange"},
            },
        }
    ]
    return [
        row(1, "Is auth up?", 0),
        panel(
            2,
            "Up / down",
            "state-timeline",
            (0, 1, 16, 7),
            [
                target("max by (probe) (rozitech_auth_probe_success)", "auth server: {{probe}} probe", "A"),
                target('up{job=~"auth_exporter|saas_admin"}', "scrape {{job}} {{instance}}", "B"),
            ],
            description="Exporter probes of the auth server (health: GET /health; verify: GET /api/auth/me with the "
            "probe account) and whether Prometheus can scrape the exporter and the SaaS Admin hosts.",
            extra_defaults={
                "mappings": up_mappings,
                "color": {"mode": "thresholds"},
                **thresholds((None, "red"), (1, "green")),
            },
            options={"showValue": "never", "mergeValues": True, "rowHeight": 0.8, "legend": {"showLegend": False}},
        ),
        panel(
            3,
            "Certificate days left",
            "stat",
            (16, 1, 4, 7),
            [
                target(
                    "min by (instance) ("
                    "(rozitech_auth_probe_tls_earliest_cert_expiry_timestamp_seconds - time()) / 86400)",
                    "{{instance}}",
                    "A",
                )
            ],
            description="Days until the earliest notAfter of the auth server's verified chain (https targets only). "
            "Alerts: warning below 14 days, critical below 3.",
            unit="d",
            extra_defaults={
                "decimals": 1,
                "color": {"mode": "thresholds"},
                **thresholds((None, "red"), (3, "orange"), (14, "green")),
            },
            options={
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "colorMode": "value",
                "graphMode": "none",
            },
        ),
        panel(
            4,
            "Circuit state",
            "state-timeline",
            (20, 1, 4, 7),
            [target("max by (instance) (rozitech_remote_auth_circuit_state)", "{{instance}}", "A")],
            description="The SaaS Admin's circuit breaker towards the auth server: closed (normal), open (failing fast "
            "with 503), half-open (a trial call).",
            extra_defaults={
                "mappings": circuit_mappings,
                "color": {"mode": "thresholds"},
                **thresholds((None, "green"), (1, "red")),
            },
            options={"showValue": "auto", "mergeValues": True, "legend": {"showLegend": False}},
        ),
        row(5, "Is it fast?", 8),
        panel(
            6,
            "Verify latency, probe (GET /api/auth/me)",
            "timeseries",
            (0, 9, 12, 8),
            quantiles("rozitech_auth_probe_verify_request_duration_seconds", PROBE_WINDOW, "le"),
            description=f"p50/p95/p99 of the exporter's timed token verification over {PROBE_WINDOW} (one request per "
            "probe cycle). Alert: p95 above the threshold (default 0.5 s) for 10 minutes.",
            unit="s",
        ),
        panel(
            7,
            "Verify latency, app (cache misses)",
            "timeseries",
            (12, 9, 12, 8),
            quantiles("rozitech_remote_auth_verify_duration_seconds", "5m", "le"),
            description="p50/p95/p99 of token verifications by the SaaS Admin against the auth server, all app hosts, "
            "over 5m (no traffic = no value). Alert: p95 above the threshold (default 0.5 s) for 10 minutes.",
            unit="s",
        ),
        row(8, "Within the rate limit?", 17),
        panel(
            9,
            "429 rate",
            "timeseries",
            (0, 18, 8, 8),
            [
                target(
                    f'sum by (instance) (rate(rozitech_auth_probe_responses_total{{code="429"}}[{RI}]))'
                    f" or sum by (instance) (0 * rate(rozitech_auth_probe_responses_total[{RI}]))",
                    "probe {{instance}}",
                    "A",
                ),
                target(
                    "sum by (instance) (rate(rozitech_remote_auth_verify_failures_total"
                    f'{{reason="rate_limited"}}[{RI}]))',
                    "app {{instance}}",
                    "B",
                ),
            ],
            description="429 Too Many Requests per second seen by the probe and by the SaaS Admin hosts. "
            "Alert: any for 5 minutes.",
            unit="reqps",
        ),
        panel(
            10,
            "Rate-limit remaining vs limit",
            "timeseries",
            (8, 18, 8, 8),
            [
                target("max by (instance) (rozitech_auth_probe_ratelimit_limit)", "limit {{instance}}", "A"),
                target("min by (instance) (rozitech_auth_probe_ratelimit_remaining)", "remaining {{instance}}", "B"),
            ],
            description="The auth server's rate-limit headers as the probe sees them (per client IP and window). "
            "Alert: remaining below 10 % of the limit for 2 minutes.",
        ),
        panel(
            11,
            "Cache hit ratio",
            "timeseries",
            (16, 18, 8, 8),
            [
                target(
                    f"sum(rate(rozitech_remote_auth_cache_hits_total[{RI}]))"
                    f" / sum(rate(rozitech_remote_auth_cache_requests_total[{RI}]))",
                    "hit ratio",
                    "A",
                )
            ],
            description="Share of the SaaS Admin's identity-cache lookups answered from the cache (every answer from "
            "the cache is one request less against the rate limit). No traffic = no value.",
            unit="percentunit",
            extra_defaults={"min": 0, "max": 1},
        ),
        row(12, "What fails?", 26),
        panel(
            13,
            "Verify failures by reason",
            "timeseries",
            (0, 27, 12, 8),
            [target(f"sum by (reason) (rate(rozitech_remote_auth_verify_failures_total[{RI}]))", "{{reason}}", "A")],
            description="Failed verifications in the SaaS Admin per second: invalid/forbidden/malformed are "
            "rejections; unavailable, timeout, circuit_open and rate_limited are the auth path's fault (503 to users).",
            unit="reqps",
            extra_defaults={"custom": {"stacking": {"mode": "normal", "group": "A"}, "fillOpacity": 30}},
        ),
        panel(
            14,
            "Verify SLO: error ratio and burn rate",
            "timeseries",
            (12, 27, 12, 8),
            [
                target("rozitech_auth:verify_errors:ratio_rate5m", "error ratio 5m", "A"),
                target("rozitech_auth:verify_errors:ratio_rate1h", "error ratio 1h", "B"),
                target(
                    "rozitech_auth:verify_errors:ratio_rate1h / on() rozitech_auth:slo_error_budget_ratio",
                    "burn rate 1h (x budget)",
                    "C",
                ),
            ],
            description="Share of verifications failing for availability reasons, and how fast the 99.9 % SLO's error "
            "budget burns (1 = exactly on budget; pages at 14.4 over 1h+5m or 6 over 6h+30m).",
            unit="percentunit",
            options={"legend": {"displayMode": "table", "placement": "right", "showLegend": True}},
        ),
        panel(
            15,
            "Probe cycle age",
            "stat",
            (0, 35, 8, 5),
            [
                target(
                    "time() - max by (instance) (rozitech_auth_probe_last_cycle_timestamp_seconds)", "{{instance}}", "A"
                )
            ],
            description="Seconds since the exporter last finished a probe cycle (every probe interval when healthy). "
            "Alert AuthProbeCycleStale above 3 intervals + 60 s; no value while the exporter has no probe results "
            "(alert AuthProbeSeriesMissing).",
            unit="s",
            extra_defaults={
                "decimals": 0,
                "color": {"mode": "thresholds"},
                **thresholds((None, "green"), (90, "orange"), (150, "red")),
            },
            options={
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "colorMode": "value",
                "graphMode": "none",
            },
        ),
    ]


def dashboard() -> dict[str, Any]:
    return {
        "id": None,
        "uid": UID,
        "title": "Auth path",
        "description": "Is auth healthy, fast, and within its rate limit? The auth server seen by the probe exporter "
        "and token verification seen by the SaaS Admin (built by monitoring/grafana/build_dashboard.py).",
        "tags": ["rozitech", "auth"],
        "timezone": "utc",
        "editable": False,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "links": [],
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                    "includeAll": False,
                    "multi": False,
                    "options": [],
                    "refresh": 1,
                    "regex": "",
                    "skipUrlSync": False,
                }
            ]
        },
        "panels": panels(),
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the JSON is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT} is out of date: run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
