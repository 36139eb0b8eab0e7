"""Shared paths and helpers of the monitoring checks (rules, dashboards, role templates)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import jinja2
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "monitoring" / "prometheus"
GRAFANA = ROOT / "monitoring" / "grafana"
ALERTMANAGER = ROOT / "monitoring" / "alertmanager"
ROLE = ROOT / "roles" / "monitoring_stack"


def run_promtool(promtool: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *args], capture_output=True, text=True, cwd=cwd, timeout=120, check=False)


def role_defaults() -> dict[str, Any]:
    return yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())


def render(template: Path, variables: dict[str, Any]) -> str:
    """Render a role template the way Ansible would, for the filters these templates use."""
    env = jinja2.Environment(  # noqa: S701 (renders YAML, not HTML)
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=True
    )
    env.filters["to_json"] = lambda v: json.dumps(v)
    env.filters["to_nice_yaml"] = lambda v, indent=2, width=80: yaml.safe_dump(
        v, indent=indent, width=width, default_flow_style=False, sort_keys=True
    )
    env.filters["bool"] = lambda v: v if isinstance(v, bool) else str(v).lower() in ("1", "true", "yes", "on")
    return env.from_string(template.read_text()).render(ansible_managed="Ansible managed (test render)", **variables)
