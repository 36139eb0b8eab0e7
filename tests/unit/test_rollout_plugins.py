"""The rollout_* action plugins (roles/rollout_state/action_plugins): check, record, apply in one task."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")
CFG = Path(__file__).with_name("ansible-unit.cfg")  # no project callbacks: the json output stays parseable


def play(tmp: Path, tasks: str, check: bool = False, **extra) -> dict:
    """Run ``tasks`` after rollout_state's main (release id ``extra['rollout_release_id']``); per-task results."""
    book = tmp / "play.yml"
    book.write_text(
        textwrap.dedent(
            """\
            - hosts: localhost
              gather_facts: false
              roles: [rollout_state]
              tasks:
            """
        )
        + textwrap.indent(textwrap.dedent(tasks), "    ")
    )
    cmd = [str(PLAYBOOK), "-i", "localhost,", "-c", "local", str(book)]
    cmd += ["-e", json.dumps({"ansible_python_interpreter": sys.executable, "rollout_state_dir": str(tmp / "state")})]
    cmd += ["-e", json.dumps(extra)]
    if check:
        cmd += ["--check", "--diff"]
    env = dict(
        os.environ,
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_LOCALHOST_WARNING="0",
        ANSIBLE_CONFIG=str(CFG),
        ANSIBLE_ROLES_PATH=str(ROOT / "roles"),
    )
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    data = json.loads(out.stdout)
    return {t["task"]["name"]: t["hosts"]["localhost"] for t in data["plays"][0]["tasks"]}


def items(tmp: Path, release: str) -> list[dict]:
    return json.loads((tmp / "state" / "releases" / release / "release.json").read_text())["items"]


TASKS = """\
- name: env
  rollout_lineinfile:
    path: {dir}/app/.env
    regexp: '^KEY='
    line: "KEY={{{{ value }}}}"
    create: true
    mode: "0640"
    rollout_sensitive: true
    rollout_component: app
  no_log: true
- name: conf
  rollout_copy:
    content: "conf {{{{ value }}}}\\n"
    dest: {dir}/app/conf.d/app.conf
    mode: "0644"
    rollout_parent: {{mode: "0755"}}
- name: gone
  rollout_file:
    path: {dir}/app/old.conf
    state: absent
"""


@pytest.fixture()
def app(tmp_path: Path) -> Path:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / ".env").write_bytes(b"SECRET_KEY=s3cret\nKEY=old\n")
    (tmp_path / "app" / "old.conf").write_bytes(b"old\n")
    return tmp_path


def test_records_each_file_before_changing_it(app):
    res = play(app, TASKS.format(dir=app), value="new", rollout_release_id="r1")
    assert [res[n]["changed"] for n in ("env", "conf", "gone")] == [True, True, True]
    assert [res[n]["rollout_recorded"] for n in ("conf", "gone")] == [True, True]  # env: no_log, censored
    recorded = {i["path"]: i for i in items(app, "r1")}
    assert recorded[f"{app}/app/.env"]["existed"] and recorded[f"{app}/app/.env"]["sensitive"]
    assert recorded[f"{app}/app/.env"]["component"] == "app"
    assert recorded[f"{app}/app/old.conf"]["component"] == "unknown"  # a play's own task: no role to name
    assert not recorded[f"{app}/app/conf.d/app.conf"]["existed"]
    assert recorded[f"{app}/app/conf.d/app.conf"]["missing_parents"] == [f"{app}/app/conf.d"]
    assert recorded[f"{app}/app/old.conf"]["existed"]
    assert (app / "app" / ".env").read_bytes() == b"SECRET_KEY=s3cret\nKEY=new\n"
    assert (app / "app" / "conf.d" / "app.conf").read_bytes() == b"conf new\n"
    assert not (app / "app" / "old.conf").exists()


def test_a_rerun_changes_and_records_nothing(app):
    play(app, TASKS.format(dir=app), value="new", rollout_release_id="r1")
    res = play(app, TASKS.format(dir=app), value="new", rollout_release_id="r2")
    assert [res[n]["changed"] for n in ("env", "conf", "gone")] == [False, False, False]
    assert not (app / "state" / "releases" / "r2").exists()


def test_check_mode_shows_the_change_and_records_nothing(app):
    res = play(app, TASKS.format(dir=app), check=True, value="new", rollout_release_id="r1")
    assert res["conf"]["changed"] and res["env"]["changed"]
    assert res["conf"]["diff"][0]["after"] == "conf new\n"
    assert "s3cret" not in json.dumps(res["env"])  # no_log: not even the censored result shows the file
    assert not (app / "state").exists()
    assert (app / "app" / ".env").read_bytes() == b"SECRET_KEY=s3cret\nKEY=old\n"
