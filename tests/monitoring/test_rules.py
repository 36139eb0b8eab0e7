"""Prometheus side of issue 6: the rule files, their promtool unit tests, the thresholds template, the config."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from monitoring_helpers import PROM, ROLE, render, role_defaults, run_promtool

RULE_FILES = sorted((PROM / "rules").glob("*.yml"))
TEST_FILES = sorted((PROM / "tests").glob("*.test.yml"))
CASES = sorted((PROM / "tests" / "cases").glob("*.yml"))


def alerts() -> list[dict]:
    return [
        rule
        for path in RULE_FILES
        for g in yaml.safe_load(path.read_text())["groups"]
        for rule in g["rules"]
        if "alert" in rule
    ]


def test_promtool_check_rules(promtool: str) -> None:
    result = run_promtool(promtool, "check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_tests_are_built_from_their_cases() -> None:
    result = subprocess.run(
        [sys.executable, str(PROM / "tests" / "build.py"), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_promtool_test_rules(promtool: str) -> None:
    assert TEST_FILES
    result = run_promtool(promtool, "test", "rules", *map(str, TEST_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_summary_description_runbook_and_severity() -> None:
    names = [a["alert"] for a in alerts()]
    assert len(names) == len(set(names)), "duplicate alert names"
    for alert in alerts():
        annotations = alert.get("annotations", {})
        for key in ("summary", "description", "runbook"):
            assert annotations.get(key, "").strip(), f"{alert['alert']}: no {key}"
        assert alert.get("labels", {}).get("severity") in ("critical", "warning"), alert["alert"]


def test_every_alert_is_tested_firing_and_silent() -> None:
    fired: set[str] = set()
    silent: set[str] = set()
    for case in CASES:
        for test in yaml.safe_load(case.read_text())["tests"]:
            assert "interval" in test, f"{case.name}: {test.get('name')}: promtool 2.42 needs interval"
            for check in test.get("alert_rule_test", []):
                (fired if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {a["alert"] for a in alerts()}
    assert names - fired == set(), f"never shown firing: {sorted(names - fired)}"
    assert names - silent == set(), f"never shown silent: {sorted(names - silent)}"


def test_no_rule_matches_le_1_without_decimal() -> None:
    for path in RULE_FILES + TEST_FILES + CASES:
        code = re.sub(r"(?m)^\s*#.*$", "", path.read_text())
        assert not re.search(r'le\s*=~?\s*"1"', code), f'{path.name}: client_python writes le="1.0"'
    assert "fuzzy_compare" not in "".join(p.read_text() for p in TEST_FILES), "promtool 2.42 rejects fuzzy_compare"


def _numbers(text: str) -> dict[str, float]:
    out = {}
    for group in yaml.safe_load(text)["groups"]:
        for rule in group["rules"]:
            match = re.fullmatch(r"vector\(([0-9.eE+-]+)\)", rule["expr"].strip())
            assert match, rule
            out[rule["record"]] = float(match.group(1))
    return out


def test_thresholds_template_with_role_defaults_equals_the_tested_file() -> None:
    rendered = render(PROM / "thresholds.yml.j2", role_defaults())
    assert _numbers(rendered) == _numbers((PROM / "rules" / "thresholds.yml").read_text())


def test_thresholds_follow_the_variables() -> None:
    variables = role_defaults() | {
        "monitoring_stack_slo_objective": 0.995,
        "monitoring_stack_alert_cert_warning_days": 21,
    }
    numbers = _numbers(render(PROM / "thresholds.yml.j2", variables))
    assert abs(numbers["rozitech_auth:slo_error_budget_ratio"] - 0.005) < 1e-12
    assert numbers["rozitech_auth:threshold_cert_warning_days"] == 21


def _config_vars(tmp: Path) -> dict:
    return role_defaults() | {
        "__monitoring_stack_prometheus_container_config_dir": str(tmp),
        "__monitoring_stack_prometheus_container_port": 9090,
        "__monitoring_stack_alertmanager_container_port": 9093,
        "monitoring_stack_exporter_targets": ["rozitech-auth-exporter:9747"],
        "monitoring_stack_app_targets": ["app1.example:80", "app2.example:80"],
        "monitoring_stack_alertmanagers": ["alertmanager:9093"],
        "monitoring_stack_external_labels": {"env": "test"},
        "monitoring_stack_extra_scrape_configs": [{"job_name": "node", "static_configs": [{"targets": ["node:9100"]}]}],
    }


def test_prometheus_config_renders_and_passes_promtool(promtool: str, tmp_path: Path) -> None:
    shutil.copytree(PROM / "rules", tmp_path / "rules")
    text = render(PROM / "prometheus.yml.j2", _config_vars(tmp_path))
    (tmp_path / "prometheus.yml").write_text(text)
    result = run_promtool(promtool, "check", "config", str(tmp_path / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 3 rule files found" in result.stdout + result.stderr
    config = yaml.safe_load(text)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"prometheus", "auth_exporter", "saas_admin", "node"}
    assert jobs["saas_admin"]["metrics_path"] == "/metrics/"
    assert jobs["saas_admin"]["static_configs"][0]["targets"] == ["app1.example:80", "app2.example:80"]


def test_a_broken_config_is_rejected_by_promtool(promtool: str, tmp_path: Path) -> None:
    (tmp_path / "prometheus.yml").write_text("global:\n  scrape_interval: 15x\n")
    assert run_promtool(promtool, "check", "config", str(tmp_path / "prometheus.yml")).returncode != 0


def test_role_defaults_and_argument_specs_agree() -> None:
    specs = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    defaults = role_defaults()
    assert set(defaults) == set(specs), (
        f"only in defaults: {set(defaults) - set(specs)}; only in specs: {set(specs) - set(defaults)}"
    )
