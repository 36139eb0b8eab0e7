"""Alertmanager side of issue 16: the role's alertmanager.yml template, Prometheus' alerting section (targets,
runbook_url relabelling), the runbook sections the links point to, and the sandbox's webhook receiver.
amtool itself runs in the Molecule scenario (roles/monitoring_stack) against the real image."""

from __future__ import annotations

import json
import re
import shutil
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
import yaml
from monitoring_helpers import ALERTMANAGER, PROM, ROOT, render, role_defaults, run_promtool

sys.path.insert(0, str(ROOT / "tests" / "sandbox" / "alert_sink"))
import alert_sink

RULE_FILES = sorted((PROM / "rules").glob("*.yml"))
ALERTS = {
    rule["alert"]: rule
    for path in RULE_FILES
    for group in yaml.safe_load(path.read_text())["groups"]
    for rule in group["rules"]
    if "alert" in rule
}


def _am_vars(**extra: object) -> dict:
    variables = role_defaults() | {
        "monitoring_stack_alertmanager_receivers": [
            {"name": "pager", "webhook_configs": [{"url": "http://pager.example/hook", "send_resolved": True}]},
            {"name": "team-mail", "email_configs": [{"to": "ops@example.org"}]},
        ],
        "monitoring_stack_alertmanager_default_receiver": "team-mail",
        "monitoring_stack_alertmanager_global": {
            "smtp_smarthost": "smtp.example.org:587",
            "smtp_from": "am@example.org",
        },
    }
    variables["monitoring_stack_alertmanager_severity_routes"] = [
        {"severity": "critical", "receiver": "pager", "group_wait": "10s", "repeat_interval": "1h"},
        {"severity": "warning", "receiver": "team-mail", "repeat_interval": "12h"},
    ]
    return variables | extra


def _render_am(**extra: object) -> dict:
    return yaml.safe_load(render(ALERTMANAGER / "alertmanager.yml.j2", _am_vars(**extra)))


def test_routes_by_severity_to_the_inventory_receivers() -> None:
    config = _render_am()
    route = config["route"]
    assert route["receiver"] == "team-mail"
    assert route["group_by"] == ["alertname", "service"]
    assert (route["group_wait"], route["group_interval"], route["repeat_interval"]) == ("30s", "5m", "4h")
    assert route["routes"] == [
        {"matchers": ['severity="critical"'], "receiver": "pager", "group_wait": "10s", "repeat_interval": "1h"},
        {"matchers": ['severity="warning"'], "receiver": "team-mail", "repeat_interval": "12h"},
    ]
    assert [r["name"] for r in config["receivers"]] == ["pager", "team-mail"]
    assert config["receivers"][0]["webhook_configs"][0] == {"url": "http://pager.example/hook", "send_resolved": True}
    assert config["global"] == {
        "resolve_timeout": "5m",
        "smtp_from": "am@example.org",
        "smtp_smarthost": "smtp.example.org:587",
    }


def test_every_severity_of_the_rules_has_a_route() -> None:
    severities = {rule["labels"]["severity"] for rule in ALERTS.values()}
    routed = {r["severity"] for r in _am_vars()["monitoring_stack_alertmanager_severity_routes"]}
    defaults = yaml.safe_load((ROOT / "roles" / "monitoring_stack" / "defaults" / "main.yml").read_text())
    assert severities == routed == {r["severity"] for r in defaults["monitoring_stack_alertmanager_severity_routes"]}


def _matched(matchers: list[str]) -> set[str]:
    """The alert names of the rules that ``alertname`` matchers select (= or =~, anchored like Alertmanager)."""
    names = set(ALERTS)
    for matcher in matchers:
        label, op, value = re.fullmatch(r'(\w+)(=~|=)"(.*)"', matcher).groups()
        assert label == "alertname", matcher
        names = {n for n in names if (re.fullmatch(value, n) if op == "=~" else n == value)}
    return names


def test_auth_server_down_inhibits_the_latency_and_rate_limit_alerts() -> None:
    rules = _render_am()["inhibit_rules"]
    down = next(r for r in rules if r["source_matchers"] == ['alertname="AuthServerDown"'])
    assert _matched(down["source_matchers"]) == {"AuthServerDown"}
    # every name in the matcher is a real alert (a renamed rule would silently stop being inhibited)
    assert _matched(down["target_matchers"]) == {
        "AuthVerifyLatencyHighApp",
        "AuthVerifyLatencyHighProbe",
        "AuthProbeRateLimited",
        "AuthAppRateLimited",
        "AuthRateLimitBudgetLow",
    }
    listed = set(re.findall(r"Auth\w+", down["target_matchers"][0]))
    assert listed <= set(ALERTS), f"not alerts of the rules: {listed - set(ALERTS)}"
    # the probe's and the app's alerts carry different instance/job labels: only service may be equal
    assert down["equal"] == ["service"]
    assert {ALERTS[n]["labels"]["service"] for n in _matched(down["target_matchers"]) | {"AuthServerDown"}} == {
        "rozitech-auth"
    }
    cert = next(r for r in rules if r["source_matchers"] == ['alertname="AuthCertificateExpiryCritical"'])
    assert _matched(cert["target_matchers"]) == {"AuthCertificateExpiringSoon"}


def test_no_inhibit_rules_renders_no_section() -> None:
    assert "inhibit_rules" not in _render_am(monitoring_stack_alertmanager_inhibit_rules=[])


def _prom_config(tmp: Path, **extra: object) -> tuple[str, dict]:
    variables = role_defaults() | {
        "__monitoring_stack_prometheus_container_config_dir": str(tmp),
        "__monitoring_stack_prometheus_container_port": 9090,
        "__monitoring_stack_alertmanager_container_port": 9093,
        "monitoring_stack_exporter_targets": ["rozitech-auth-exporter:9747"],
        "monitoring_stack_app_targets": ["app1.example:80"],
    }
    text = render(PROM / "prometheus.yml.j2", variables | extra)
    return text, yaml.safe_load(text)


def test_prometheus_sends_to_the_roles_alertmanager_with_a_runbook_link(promtool: str, tmp_path: Path) -> None:
    shutil.copytree(PROM / "rules", tmp_path / "rules")
    text, config = _prom_config(tmp_path, monitoring_stack_alertmanagers=["other-am:9093"])
    (tmp_path / "prometheus.yml").write_text(text)
    result = run_promtool(promtool, "check", "config", str(tmp_path / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    alerting = config["alerting"]
    targets = ["rozitech-alertmanager:9093", "other-am:9093"]
    assert alerting["alertmanagers"] == [{"static_configs": [{"targets": targets}]}]
    relabel = alerting["alert_relabel_configs"]
    assert relabel[0] == {"source_labels": ["alertname"], "action": "lowercase", "target_label": "__tmp_runbook_anchor"}
    assert relabel[1]["target_label"] == "runbook_url"
    assert relabel[1]["replacement"] == "docs/runbook.md#$1"
    assert relabel[2] == {"action": "labeldrop", "regex": "__tmp_runbook_anchor"}


def test_no_alertmanager_and_no_targets_renders_no_alerting_section(tmp_path: Path) -> None:
    _, config = _prom_config(tmp_path, monitoring_stack_alertmanager_enabled=False)
    assert "alerting" not in config
    _, config = _prom_config(tmp_path, monitoring_stack_alert_runbook_url="", monitoring_stack_alertmanagers=["a:9093"])
    assert "alert_relabel_configs" not in config["alerting"]


def test_a_dollar_in_the_runbook_url_stays_literal(tmp_path: Path) -> None:
    _, config = _prom_config(tmp_path, monitoring_stack_alert_runbook_url="https://wiki.example/a$b")
    assert config["alerting"]["alert_relabel_configs"][1]["replacement"] == "https://wiki.example/a$$b#$1"


def test_every_alert_has_its_runbook_section() -> None:
    """runbook_url = docs/runbook.md#<lowercased alert name>: each must be a heading of the runbook."""
    anchors = {
        re.sub(r"[^a-z0-9 _-]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in (ROOT / "docs" / "runbook.md").read_text().splitlines()
        if line.startswith("#")
    }
    missing = sorted(name for name in ALERTS if name.lower() not in anchors)
    assert missing == [], f"alerts without a '### <name>' section in docs/runbook.md: {missing}"


# -- the sandbox's webhook receiver ------------------------------------------------------------------


@pytest.fixture
def sink() -> str:
    server = alert_sink.serve("127.0.0.1:0")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def test_the_sink_records_what_alertmanager_posts(sink: str) -> None:
    firing = {
        "version": "4",
        "status": "firing",
        "receiver": "sandbox-critical",
        "alerts": [{"status": "firing", "labels": {"alertname": "AuthServerDown"}, "annotations": {"runbook": "x"}}],
    }
    assert _post(f"{sink}/critical", json.dumps(firing).encode()) == 200
    assert _post(f"{sink}/warning", json.dumps(firing | {"status": "resolved"}).encode()) == 200
    assert _post(f"{sink}/critical", b"[1, 2]") == 400
    assert _post(f"{sink}/critical", b"not json") == 400
    got = _get(f"{sink}/notifications")["notifications"]
    assert [(n["seq"], n["path"], n["payload"]["status"]) for n in got] == [
        (1, "/critical", "firing"),
        (2, "/warning", "resolved"),
    ]
    assert got[0]["payload"] == firing
    assert [n["seq"] for n in _get(f"{sink}/notifications?since=1")["notifications"]] == [2]
    assert _get(f"{sink}/-/healthy") == {"status": "ok"}


def test_alert_routes_prints_no_secret_of_a_receiver() -> None:
    import alert_routes

    receiver = {
        "name": "page",
        "email_configs": [{"to": "oncall@example.org", "auth_password": "marker-secret-1"}],
        "slack_configs": [{"api_url": "https://hooks.example/marker-secret-2", "channel": "#auth"}],
        "pagerduty_configs": [{"routing_key": "marker-secret-3"}],
        "webhook_configs": [{"url": "https://user:marker-secret-4@hooks.example:8443/marker-secret-5?t=6"}],
    }
    assert alert_routes._targets(receiver) == [
        "email oncall@example.org",
        "pagerduty",
        "slack #auth",
        "webhook to hooks.example:8443",
    ]
    assert alert_routes._targets({"webhook_configs": [{"url": "<secret>"}]}) == ["webhook"]
