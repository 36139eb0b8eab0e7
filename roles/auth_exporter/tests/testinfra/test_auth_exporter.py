"""The Docker host after the auth_exporter role: the container, its files, its records, its metrics.

Plain pytest + testinfra, run against the Docker host (``--hosts=local://`` on the controller in the role's
Molecule scenario; ``--hosts=docker://...`` or ``ssh://...`` for a monitoring host). Needs
``AUTH_EXPORTER_TEST_CONTAINER`` (skipped without it, so other roles' verifiers that collect this folder skip it)
and, from the scenario: ``AUTH_EXPORTER_TEST_IMAGE``, ``AUTH_EXPORTER_TEST_CONFIG_DIR``,
``AUTH_EXPORTER_TEST_STATE_DIR``, ``AUTH_EXPORTER_TEST_METRICS_URL``, ``AUTH_EXPORTER_TEST_PASSWORD``.
The host needs ``docker``, ``curl`` and ``promtool`` (Debian package ``prometheus``).
"""

from __future__ import annotations

import json
import os

import pytest

CONTAINER = os.environ.get("AUTH_EXPORTER_TEST_CONTAINER", "")
IMAGE = os.environ.get("AUTH_EXPORTER_TEST_IMAGE", "rozitech-sandbox/auth-exporter:0.1.0")
CONFIG_DIR = os.environ.get("AUTH_EXPORTER_TEST_CONFIG_DIR", "/etc/rozitech-auth-exporter")
STATE_DIR = os.environ.get("AUTH_EXPORTER_TEST_STATE_DIR", "/var/lib/rozitech-rollout")
METRICS_URL = os.environ.get("AUTH_EXPORTER_TEST_METRICS_URL", "http://127.0.0.1:9747")
PASSWORD = os.environ.get("AUTH_EXPORTER_TEST_PASSWORD", "Demo-Passw0rd!")
UID = 10001

pytestmark = pytest.mark.skipif(not CONTAINER, reason="AUTH_EXPORTER_TEST_CONTAINER is not set (not an exporter host)")


@pytest.fixture(scope="module")
def inspect(host) -> dict:
    out = host.run(f"docker inspect {CONTAINER}")
    assert out.rc == 0, out.stderr
    return json.loads(out.stdout)[0]


def test_container_runs_the_pinned_image_with_a_restart_policy(inspect) -> None:
    assert inspect["State"]["Running"] is True
    assert inspect["Config"]["Image"] == IMAGE
    assert not IMAGE.endswith(":latest")
    assert inspect["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"


def test_container_is_locked_down(inspect) -> None:
    assert inspect["Config"]["User"] == f"{UID}:{UID}"
    assert inspect["HostConfig"]["ReadonlyRootfs"] is True
    assert inspect["HostConfig"]["CapDrop"] == ["ALL"]
    assert "no-new-privileges:true" in inspect["HostConfig"]["SecurityOpt"]
    assert any("--healthcheck" in part for part in inspect["Config"]["Healthcheck"]["Test"])


def test_no_secret_in_the_container_definition_or_log(host, inspect) -> None:
    assert PASSWORD not in json.dumps(inspect), "no password in docker inspect (env, command, labels)"
    env = inspect["Config"]["Env"]
    assert not [e for e in env if "PASSWORD" in e or "EMAIL" in e], env
    logs = host.run(f"docker logs {CONTAINER}")
    assert PASSWORD not in logs.stdout + logs.stderr
    assert "eyJ" not in logs.stdout + logs.stderr, "no JWT in the log"


def test_config_mounted_read_only(inspect) -> None:
    mounts = {m["Destination"]: m for m in inspect["Mounts"]}
    config = mounts["/etc/rozitech-auth-exporter"]
    assert config["Type"] == "bind" and config["RW"] is False
    assert config["Source"] == CONFIG_DIR


def test_files_on_the_host(host) -> None:
    creds = host.file(f"{CONFIG_DIR}/credentials.yml")
    assert creds.mode == 0o400 and creds.uid == UID
    config = host.file(f"{CONFIG_DIR}/config.yml")
    assert config.mode == 0o640 and config.uid == 0 and config.gid == UID
    assert PASSWORD not in config.content_string
    assert "credentials_file:" in config.content_string
    assert host.file(f"{CONFIG_DIR}/image").content_string.strip() == IMAGE


def test_rollout_state_recorded_the_files(host) -> None:
    release = host.file(f"{STATE_DIR}/current").content_string.strip()
    record = json.loads(host.file(f"{STATE_DIR}/releases/{release}/release.json").content_string)
    items = {item["path"]: item for item in record["items"] if item.get("component") == "auth_exporter"}
    assert items[f"{CONFIG_DIR}/credentials.yml"]["sensitive"] is True
    assert f"{CONFIG_DIR}/config.yml" in items
    assert f"{CONFIG_DIR}/image" in items, "the previous image tag is recorded for rollback"


def test_metrics_answer_and_pass_promtool(host) -> None:
    out = host.run(f"curl -fsS {METRICS_URL}/metrics")
    assert out.rc == 0, out.stderr
    assert "rozitech_auth_probe_build_info{python_version=" in out.stdout
    assert 'rozitech_auth_probe_success{probe="health"}' in out.stdout
    check = host.run(f"curl -fsS {METRICS_URL}/metrics | promtool check metrics")
    assert check.rc == 0 and check.stdout == "" and check.stderr == "", check.stdout + check.stderr
    assert host.run(f"curl -fsS {METRICS_URL}/-/healthy").rc == 0
