"""site.yml preflights every role before any host changes: a bad monitoring variable stops the whole run there.

The structure: every role a step of site.yml applies has a preflight entry point (tasks/preflight.yml and the
argument_specs entry point ``preflight``), run by a play of site.yml before its first step. The behaviour: a
real ``ansible-playbook playbooks/site.yml`` on the sandbox inventory's monitoring host (this machine's Docker
engine, a local connection; read-only checks: no sandbox needed) with one bad auth_exporter or monitoring_stack
variable fails in "Preflight the monitoring hosts" naming the variable, changes nothing, and runs no later play:
the steps that change the auth proxy and the app hosts never start.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "playbooks/site.yml"


def tasks_of(play: dict) -> list[dict]:
    return [t for key in ("pre_tasks", "tasks", "post_tasks") for t in play.get(key) or []]


def included_roles(task: dict) -> list[tuple[str, str]]:
    """(role, tasks_from) of an include_role / import_role task (a loop over names counts each)."""
    for module in ("ansible.builtin.include_role", "ansible.builtin.import_role"):
        if module in task:
            args = task[module]
            names = task.get("loop") if "{{" in args["name"] else [args["name"]]
            return [(name, args.get("tasks_from", "main")) for name in names]
    return []


def test_every_role_of_site_yml_is_preflighted_before_the_first_step() -> None:
    plays = yaml.safe_load(SITE.read_text())
    first_step = next(i for i, play in enumerate(plays) if "ansible.builtin.import_playbook" in play)
    preflighted = {
        role
        for play in plays[:first_step]
        for task in tasks_of(play)
        for role, tasks_from in included_roles(task)
        if tasks_from == "preflight"
    }
    applied = set()
    for play in plays[first_step:]:
        for step in yaml.safe_load((SITE.parent / play["ansible.builtin.import_playbook"]).read_text()):
            applied |= {
                role for task in tasks_of(step) for role, tasks_from in included_roles(task) if tasks_from == "main"
            }
    assert applied == {"auth_proxy", "remote_auth", "auth_exporter", "monitoring_stack"}
    assert applied <= preflighted, f"no preflight play before the first step for {applied - preflighted}"
    for role in applied:
        assert (ROOT / "roles" / role / "tasks/preflight.yml").is_file()
        specs = yaml.safe_load((ROOT / "roles" / role / "meta/argument_specs.yml").read_text())["argument_specs"]
        assert specs["preflight"]["options"] == specs["main"]["options"], role


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        (
            "monitoring_stack_prometheus_publish_port=0",
            "monitoring_stack_prometheus_publish_port must be a port number (1-65535); got 0",
        ),
        ("auth_exporter_interval=0", "need 1 <= auth_exporter_interval <= 3600 (got 0)"),
    ],
)
def test_a_bad_monitoring_variable_stops_site_yml_in_preflight(bad: str, expected: str) -> None:
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    cmd = [
        str(Path(sys.executable).with_name("ansible-playbook")),
        *("-i", str(ROOT / "inventory/sandbox"), "--limit", "localhost", str(SITE)),
        *("-e", "auth_exporter_ca_bundle="),  # the sandbox CA exists only once `make demo` made it
        *("-e", bad),
    ]
    run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    out = re.sub(r"\s+", " ", run.stdout + run.stderr)
    plays = re.findall(r"^PLAY \[(.*?)\]", run.stdout, flags=re.MULTILINE)
    assert run.returncode != 0, out[-2000:]
    assert expected in out, out[-2000:]
    assert plays[-1] == "Preflight the monitoring hosts", plays
    recap = re.search(r"localhost\s*: ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=1", run.stdout)
    assert recap and recap.group(1) == "0", run.stdout[-1500:]
