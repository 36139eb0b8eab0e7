"""Grafana side of issue 6 without a Grafana: schema-level lint of the dashboards and provisioning files.

Checks what Grafana would reject or silently mis-render, and what makes a dashboard non-portable: a fixed
uid of at most 40 characters, no import placeholders (``__inputs``, ``${DS_...}``), every query on the
``${datasource}`` variable, unique panel ids and refIds, panels inside the 24-column grid without overlaps,
PromQL that parses (promtool), and only metric names that the exporter, the app or the rules produce.
The live counterpart (every query returns data) is check_dashboard_queries.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from check_dashboard_queries import panel_queries, substitute
from monitoring_helpers import GRAFANA, PROM, ROLE, ROOT, render, role_defaults, run_promtool

DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
PANEL_TYPES = {"timeseries", "stat", "gauge", "state-timeline", "table", "bargauge", "row", "text", "status-history"}
VAR_DS = "${datasource}"


def all_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def known_metrics() -> set[str]:
    """Series names the dashboards may use: the exporter's README table, the app's metrics module, the rules."""
    names: set[str] = set()
    readme = (ROOT / "monitoring" / "exporter" / "README.md").read_text()
    for name, kind in re.findall(r"^\| `([a-z_]+)`(?: / `[a-z_]+`)? \| (gauge|counter|histogram) \|", readme, re.M):
        full = f"rozitech_auth_probe_{name}"
        names.update({full, f"{full}_bucket", f"{full}_sum", f"{full}_count"} if kind == "histogram" else {full})
    app = (ROOT / "django_patch" / "src" / "rozitech_remote_auth" / "metrics.py").read_text()
    for kind, name in re.findall(r'(Counter|Gauge|Histogram)\(\s*"([a-z_]+)"', app):
        if kind == "Counter":
            names.add(f"{name}_total")
        elif kind == "Histogram":
            names.update({f"{name}_bucket", f"{name}_sum", f"{name}_count"})
        else:
            names.add(name)
    for path in (PROM / "rules").glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            names.update(rule["record"] for rule in group["rules"] if "record" in rule)
    return names


@pytest.fixture(params=DASHBOARDS, ids=[p.name for p in DASHBOARDS])
def dashboard(request: pytest.FixtureRequest) -> dict[str, Any]:
    text = request.param.read_text()
    assert "__inputs" not in text and "${DS_" not in text, "import placeholders: provisioned dashboards need none"
    return json.loads(text)


def test_dashboards_exist_and_are_built_from_code() -> None:
    assert [p.name for p in DASHBOARDS] == ["auth-path.json"]
    result = subprocess.run(
        [sys.executable, str(GRAFANA / "build_dashboard.py"), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_top_level_model(dashboard: dict[str, Any]) -> None:
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", dashboard["uid"]), dashboard["uid"]
    assert dashboard["title"].strip()
    assert dashboard.get("id") is None, "a provisioned dashboard must not carry a database id"
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 36
    assert dashboard["time"]["from"] and dashboard["time"]["to"]
    variables = dashboard["templating"]["list"]
    ds_vars = [v for v in variables if v["type"] == "datasource"]
    assert len(ds_vars) == 1 and ds_vars[0]["name"] == "datasource" and ds_vars[0]["query"] == "prometheus"


def test_every_datasource_reference_uses_the_variable(dashboard: dict[str, Any]) -> None:
    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            ds = node.get("datasource")
            if ds is not None and where != "annotations":
                assert isinstance(ds, dict) and ds.get("uid") == VAR_DS, f"hard-coded datasource: {ds}"
            for key, value in node.items():
                walk(value, "annotations" if key == "annotations" else where)
        elif isinstance(node, list):
            for item in node:
                walk(item, where)

    walk(dashboard, "")


def test_panels_ids_types_and_targets(dashboard: dict[str, Any]) -> None:
    panels = all_panels(dashboard)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    for panel in panels:
        assert panel["type"] in PANEL_TYPES, panel["type"]
        assert panel.get("title", "").strip(), panel["id"]
        if panel["type"] in ("row", "text"):
            continue
        assert panel.get("description", "").strip(), f"{panel['title']}: no description"
        targets = panel.get("targets", [])
        assert targets, f"{panel['title']}: no query"
        refs = [t["refId"] for t in targets]
        assert len(refs) == len(set(refs)), f"{panel['title']}: duplicate refId"
        for tgt in targets:
            assert tgt.get("expr", "").strip(), f"{panel['title']} [{tgt['refId']}]: empty expr"
            assert "legendFormat" in tgt


def test_grid_layout_has_no_overlaps(dashboard: dict[str, Any]) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in all_panels(dashboard):
        pos = panel["gridPos"]
        assert 0 <= pos["x"] and pos["w"] > 0 and pos["x"] + pos["w"] <= 24, f"{panel['title']}: outside the grid"
        assert pos["h"] > 0 and pos["y"] >= 0
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_issue_6_panels_are_there(dashboard: dict[str, Any]) -> None:
    exprs = " ".join(expr for _, _, expr in panel_queries(dashboard))
    for needle in (
        "rozitech_auth_probe_success",  # up/down timeline
        "histogram_quantile(0.5, sum by (le) (rate(rozitech_auth_probe_verify_request_duration_seconds_bucket",
        "histogram_quantile(0.99, sum by (le) (rate(rozitech_remote_auth_verify_duration_seconds_bucket",
        'code="429"',
        "rozitech_auth_probe_ratelimit_remaining",
        "rozitech_auth_probe_ratelimit_limit",
        "rozitech_auth_probe_tls_earliest_cert_expiry_timestamp_seconds",
        "rozitech_remote_auth_cache_hits_total",
        "sum by (reason) (rate(rozitech_remote_auth_verify_failures_total",
        "rozitech_remote_auth_circuit_state",
    ):
        assert needle in exprs, needle
    assert 'le="1"' not in exprs


def test_queries_use_only_known_metrics(dashboard: dict[str, Any]) -> None:
    known = known_metrics()
    assert "rozitech_auth_probe_verify_request_duration_seconds_bucket" in known
    assert "rozitech_remote_auth_verify_failures_total" in known
    for title, ref, expr in panel_queries(dashboard):
        for name in re.findall(r"\b(rozitech_[a-z0-9_:]+)", expr):
            assert name in known, f"{title} [{ref}]: unknown series {name}"


def test_every_query_parses(dashboard: dict[str, Any], promtool: str, tmp_path: Path) -> None:
    rules = [
        {"record": f"dashboard_check:q{i}", "expr": substitute(expr, "1m")}
        for i, (_, _, expr) in enumerate(panel_queries(dashboard))
    ]
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run_promtool(promtool, "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_provisioning_files() -> None:
    variables = role_defaults() | {
        "monitoring_stack_grafana_datasource_url": "http://rozitech-prometheus:9090",
        "__monitoring_stack_grafana_container_dashboards_dir": "/var/lib/grafana-dashboards",
    }
    ds = yaml.safe_load(render(GRAFANA / "provisioning" / "datasources" / "prometheus.yml.j2", variables))
    assert ds["apiVersion"] == 1
    (source,) = ds["datasources"]
    assert (
        source["type"] == "prometheus"
        and source["access"] == "proxy"
        and source["url"] == "http://rozitech-prometheus:9090"
    )
    assert len(source["uid"]) <= 40
    provider = yaml.safe_load(render(GRAFANA / "provisioning" / "dashboards" / "rozitech.yml.j2", variables))
    (prov,) = provider["providers"]
    assert prov["type"] == "file" and prov["options"]["path"] == "/var/lib/grafana-dashboards"
    role_vars = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    assert role_vars["__monitoring_stack_grafana_container_dashboards_dir"] == prov["options"]["path"]
