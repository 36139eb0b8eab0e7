"""The rollout_state module run for real (``ansible localhost -m rollout_state``) on temp files."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "roles" / "rollout_state" / "library"
ANSIBLE = Path(sys.executable).with_name("ansible")
CFG = Path(__file__).with_name("ansible-unit.cfg")  # no project callbacks: the json output stays parseable


def run(state_dir: Path, check: bool = False, **args) -> dict:
    """Run the module once; return its result (``failed`` set on failure)."""
    args.setdefault("state_dir", str(state_dir))
    cmd = [
        str(ANSIBLE),
        "localhost",
        "-c",
        "local",
        "-M",
        str(LIBRARY),
        "-m",
        "rollout_state",
        "-a",
        json.dumps(args),
        "-e",
        f"ansible_python_interpreter={sys.executable}",
    ]
    if check:
        cmd += ["--check", "--diff"]
    env = dict(
        os.environ,
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_LOCALHOST_WARNING="0",
        ANSIBLE_CONFIG=str(CFG),
        ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
    )
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    data = json.loads(out.stdout)
    return data["plays"][0]["tasks"][0]["hosts"]["localhost"]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def tree(tmp_path: Path) -> tuple[Path, Path]:
    state = tmp_path / "state"
    files = tmp_path / "app"
    files.mkdir()
    (files / ".env").write_bytes(b"SECRET_KEY=s3cret\nAUTH_SERVICE_URL=http://old\n")
    (files / ".env").chmod(0o640)
    os.chown(files / ".env", 65534, 65534)  # owned by the app user, not by whoever restores it
    return state, files


def test_record_then_restore_is_byte_identical(tree):
    state, files = tree
    env = files / ".env"
    before = sha(env)
    result = run(state, action="record_file", release="r1", path=str(env), component="remote_auth", sensitive=True)
    assert result["changed"] is True
    assert result["item"]["existed"] is True and result["item"]["sha256"] == before
    assert (state / "current").read_text() == "r1\n"
    assert oct((state / "releases" / "r1" / "files" / result["item"]["key"]).stat().st_mode & 0o777) == "0o600"
    assert oct(state.stat().st_mode & 0o777) == "0o700"

    again = run(state, action="record_file", release="r1", path=str(env), component="remote_auth")
    assert again["changed"] is False, "a path is recorded once per release"

    env.write_bytes(b"SECRET_KEY=s3cret\nAUTH_SERVICE_URL=https://new\n")
    env.chmod(0o644)
    restored = run(state, action="restore")
    assert restored["changed"] is True
    assert [r["action"] for r in restored["restored"]] == ["restored"]
    assert sha(env) == before
    assert env.stat().st_mode & 0o777 == 0o640
    assert (env.stat().st_uid, env.stat().st_gid) == (65534, 65534)
    record = json.loads((state / "releases" / "r1" / "release.json").read_text())
    assert record["status"] == "rolled_back"


def test_a_file_that_did_not_exist_is_removed_with_its_new_parents(tree):
    state, files = tree
    dropin = files / "unit.d" / "sub" / "50-remote-auth.conf"
    run(state, action="record_file", release="r1", path=str(dropin), component="remote_auth")
    dropin.parent.mkdir(parents=True)
    dropin.write_text("[Service]\n")
    restored = run(state, action="restore")
    assert [r["action"] for r in restored["restored"]] == ["removed"]
    assert not (files / "unit.d").exists()


def test_rolling_back_twice_is_a_no_op(tree):
    state, files = tree
    env = files / ".env"
    run(state, action="record_file", release="r1", path=str(env))
    env.write_text("changed\n")
    assert run(state, action="restore")["changed"] is True
    second = run(state, action="restore")
    assert second["changed"] is False
    assert "already rolled back" in second["msg"]


def test_restore_to_an_older_release_undoes_every_newer_one(tree):
    state, files = tree
    env = files / ".env"
    original = env.read_bytes()
    run(state, action="record_file", release="r1", path=str(env))
    env.write_text("after r1\n")
    run(state, action="record_file", release="r2", path=str(env))
    env.write_text("after r2\n")
    run(state, action="restore", release="r2")
    assert env.read_text() == "after r1\n"
    run(state, action="restore", release="r1")
    assert env.read_bytes() == original


def test_unknown_release_fails_with_the_known_ones(tree):
    state, files = tree
    run(state, action="record_file", release="r1", path=str(files / ".env"))
    result = run(state, action="restore", release="nope")
    assert result.get("failed") is True
    assert "no release 'nope'" in result["msg"] and "r1" in result["msg"]
    assert run(state, action="restore", release="nope", missing_ok=True)["changed"] is False


def test_no_record_is_reported_not_failed(tmp_path):
    result = run(tmp_path / "state", action="restore")
    assert result["changed"] is False
    assert "no release recorded" in result["msg"]


def test_check_mode_writes_nothing(tree):
    state, files = tree
    run(state, check=True, action="record_file", release="r1", path=str(files / ".env"))
    assert not state.exists()
    run(state, action="record_file", release="r1", path=str(files / ".env"), sensitive=True)
    (files / ".env").write_text("SECRET_KEY=other\n")
    preview = run(state, check=True, action="restore")
    assert preview["changed"] is True
    assert (files / ".env").read_text() == "SECRET_KEY=other\n"
    assert "s3cret" not in json.dumps(preview), "a sensitive file's content never appears in a diff"


def test_prune_keeps_the_newest_and_the_current(tree):
    state, files = tree
    for n in range(1, 5):
        run(state, action="record_file", release=f"r{n}", path=str(files / ".env"))
    result = run(state, action="prune", retention=2)
    assert sorted(result["pruned"]) == ["r1", "r2"]
    assert sorted(os.listdir(state / "releases")) == ["r3", "r4"]


def test_bad_release_id_is_refused(tree):
    state, files = tree
    result = run(state, action="record_file", release="../../etc", path=str(files / ".env"))
    assert result.get("failed") is True
    assert "release id" in result["msg"]


def _tiny_wheel(tmp: Path, name: str, version: str, wheelhouse: Path) -> None:
    src = tmp / f"{name}-{version}"
    (src / name).mkdir(parents=True)
    (src / name / "__init__.py").write_text(f"VERSION = {version!r}\n")
    (src / "pyproject.toml").write_text(
        textwrap.dedent(f"""
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "{name}"
        version = "{version}"
    """)
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(wheelhouse),
            str(src),
        ],
        check=True,
        capture_output=True,
    )


def test_venv_package_set_is_reconciled(tmp_path):
    wheelhouse = tmp_path / "wheels"
    for name, version in (("rzt_tiny", "1.0"), ("rzt_tiny", "2.0"), ("rzt_extra", "0.1")):
        _tiny_wheel(tmp_path, name, version, wheelhouse)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [
        str(venv / "bin" / "python"),
        "-m",
        "pip",
        "-q",
        "--disable-pip-version-check",
        "install",
        "--no-index",
        "--find-links",
        str(wheelhouse),
    ]
    subprocess.run([*pip, "rzt_tiny==1.0"], check=True)
    state = tmp_path / "state"
    recorded = run(state, action="record_venv", release="r1", path=str(venv), component="remote_auth")
    assert "rzt_tiny==1.0" in recorded["item"]["packages"]
    subprocess.run([*pip, "rzt_tiny==2.0", "rzt_extra==0.1"], check=True)
    result = run(state, action="restore", pip_args=["--no-index", "--find-links", str(wheelhouse)])
    assert [r["action"] for r in result["restored"]] == ["reconciled"]
    freeze = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "freeze", "--all"], capture_output=True, text=True, check=True
    ).stdout
    assert "rzt-tiny==1.0" in freeze or "rzt_tiny==1.0" in freeze
    assert "rzt" + "_extra" not in freeze.replace("-", "_")


def test_a_run_id_this_host_never_recorded_undoes_what_came_after_it(tree):
    state, files = tree
    env = files / ".env"
    original = env.read_bytes()
    run(state, action="record_file", release="20200101T000000Z", path=str(env))
    env.write_text("after the 2020 run\n")
    # A run on 2021-01-01 changed nothing on this host; a later run did.
    run(state, action="record_file", release="29990101T000000Z", path=str(env))
    env.write_text("after a later run\n")
    result = run(state, action="restore", release="20210101T000000Z")
    assert result["changed"] is True
    assert env.read_text() == "after the 2020 run\n", "only what was recorded since 2021 is undone"
    again = run(state, action="restore", release="20210101T000000Z")
    assert again["changed"] is False
    run(state, action="restore", release="all")
    assert env.read_bytes() == original
    nothing = run(state, action="restore", release="29991231T000000Z")
    assert nothing["changed"] is False and "changed nothing on this host" in nothing["msg"]


def test_an_automatic_restore_discards_the_failed_release(tree):
    state, files = tree
    env = files / ".env"
    original = env.read_bytes()
    run(state, action="record_file", release="good", path=str(env))
    env.write_text("after the good release\n")
    run(state, action="record_file", release="bad", path=str(env))
    env.write_text("half-done bad release\n")
    discarded = run(state, action="restore", release="bad", discard=True)
    assert discarded["changed"] is True
    assert env.read_text() == "after the good release\n"
    assert (state / "current").read_text() == "good\n", "the pointer goes back to the release that happened"
    assert json.loads((state / "releases" / "bad" / "release.json").read_text())["status"] == "failed"
    rollback = run(state, action="restore")
    assert rollback["changed"] is True, "the one-command rollback still undoes the good release"
    assert env.read_bytes() == original
    assert run(state, action="restore")["changed"] is False


def _plan_module():
    """The module file imported as a Python module (make_plan is a pure function)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("rollout_state_module", LIBRARY / "rollout_state.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rel(rid: str, created: str, status: str = "applied", *items: tuple[str, str]) -> dict:
    return {"id": rid, "created": created, "status": status, "items": [{"component": c, "path": p} for c, p in items]}


# Issue 17's tour: run 1 changed every host, run 2 (an app-only change) only the app hosts.
TOUR = {
    "app1": [
        _rel("run2", "2026-11-29T16:34:50Z", "applied", ("remote_auth", "/opt/app/.env")),
        _rel("run1", "2026-11-29T16:00:40Z", "applied", ("remote_auth", "/opt/app/.env")),
    ],
    "app2": [
        _rel("run2", "2026-11-29T16:35:41Z", "applied", ("remote_auth", "/opt/app/.env")),
        _rel("run1", "2026-11-29T16:01:30Z", "applied", ("remote_auth", "/opt/app/.env")),
    ],
    "proxy": [_rel("run1", "2026-11-29T16:00:10Z", "applied", ("auth_proxy", "/etc/nginx/sites-enabled/auth"))],
    "monitoring": [_rel("run1", "2026-11-29T16:02:00Z", "applied", ("auth_exporter", "/etc/exporter.yml"))],
    "untouched": [],
}


def test_plain_plan_undoes_the_last_run_only_where_it_changed_something():
    plan = _plan_module().make_plan(TOUR, None)
    assert plan["runs"] == ["run2"]
    assert plan["plan"] == {"app1": ["run2"], "app2": ["run2"]}, "proxy and monitoring are left alone"
    assert plan["items"]["app1"] == ["run2 remote_auth /opt/app/.env"]


def test_the_next_plain_plan_undoes_the_run_before_everywhere():
    tour = {h: [dict(r, status="rolled_back") if r["id"] == "run2" else r for r in rels] for h, rels in TOUR.items()}
    plan = _plan_module().make_plan(tour, "")
    assert plan["runs"] == ["run1"]
    assert sorted(plan["plan"]) == ["app1", "app2", "monitoring", "proxy"]
    done = {h: [dict(r, status="rolled_back") for r in rels] for h, rels in tour.items()}
    nothing = _plan_module().make_plan(done, None)
    assert nothing["runs"] == [] and nothing["plan"] == {} and "nothing to roll back" in nothing["msg"]


def test_a_named_run_undoes_it_and_every_newer_one_the_same_on_every_host():
    plan = _plan_module().make_plan(TOUR, "run1")
    assert plan["runs"] == ["run2", "run1"]
    both = ["run2", "run1"]
    assert plan["plan"] == {"app1": both, "app2": both, "monitoring": ["run1"], "proxy": ["run1"]}
    assert _plan_module().make_plan(TOUR, "all")["plan"] == plan["plan"]


def test_an_unknown_run_names_the_variable_and_the_recorded_ids():
    mod = _plan_module()
    with pytest.raises(mod.PlanError) as err:
        mod.make_plan(TOUR, "does-not-exist", "rollout_release")
    assert str(err.value) == (
        "rollout_release=does-not-exist is not a release recorded on any host; recorded (newest first): run2, run1"
    )
    with pytest.raises(mod.PlanError, match=r"^rollout_release=a b is not a release id"):
        mod.make_plan(TOUR, "a b", "rollout_release")


def test_a_time_shaped_id_no_host_recorded_fails_instead_of_undoing_every_run_since():
    # A one-digit typo of a default id (a month early) must not plan the undo of every run since then.
    mod = _plan_module()
    with pytest.raises(mod.PlanError, match=r"^rollout_release=20261029T163450Z is not a release recorded on any host"):
        mod.make_plan(TOUR, "20261029T163450Z", "rollout_release")


def test_plan_and_restore_of_the_planned_runs_for_real(tree):
    state, files = tree
    env = files / ".env"
    original = env.read_bytes()
    run(state, action="record_file", release="run1", path=str(env), component="remote_auth")
    env.write_text("after run1\n")
    run(state, action="record_file", release="run2", path=str(env), component="remote_auth")
    env.write_text("after run2\n")
    info = run(state, action="info")
    assert [r["id"] for r in info["releases"]] == ["run2", "run1"]
    assert info["releases"][0]["items"] == [{"kind": "file", "path": str(env), "component": "remote_auth"}]
    plan = run(state, action="plan", hosts={"app1": info["releases"], "proxy": []}, release_name="rollout_release")
    assert plan["plan"] == {"app1": ["run2"]} and plan["runs"] == ["run2"]
    checked = run(state, check=True, action="restore", releases=plan["plan"]["app1"])
    assert checked["changed"] is True and env.read_text() == "after run2\n", "--check changes nothing"
    assert run(state, action="restore", releases=["run2"])["changed"] is True
    assert env.read_text() == "after run1\n"
    assert run(state, action="restore", releases=["run2"])["changed"] is False
    assert run(state, action="restore", releases=["run1"])["changed"] is True
    assert env.read_bytes() == original
    bad = run(state, action="plan", hosts={"app1": info["releases"]}, release="nope", release_name="rollout_release")
    assert bad["failed"] is True and bad["msg"].startswith("rollout_release=nope is not a release recorded")
