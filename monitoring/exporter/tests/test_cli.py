"""The command as a process: live /metrics (checked by promtool), /-/healthy, --healthcheck, exit codes,
and no secret in the log even at DEBUG."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from .conftest import DEMO, StandIn, free_port

SRC = Path(__file__).resolve().parents[1] / "src"


def _env(**extra: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(SRC), **extra}


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "rozitech_auth_exporter", *args]


@contextlib.contextmanager
def running(args: list[str], env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], str]]:
    port = free_port()
    proc = subprocess.Popen(
        _cmd(*args, "--listen-address", f"127.0.0.1:{port}"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(requests.ConnectionError):
                cycles = re.search(
                    r"^rozitech_auth_probe_cycles_total (\S+)$", requests.get(f"{url}/metrics", timeout=1).text, re.M
                )
                if cycles and float(cycles.group(1)) >= 1:
                    break
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "exporter did not finish a cycle"
            time.sleep(0.1)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)


@pytest.fixture()
def creds_file(tmp_path: Path) -> str:
    path = tmp_path / "credentials.yml"
    path.write_text(f"email: {DEMO.email}\npassword: '{DEMO.password}'\n")
    path.chmod(0o600)
    return str(path)


def test_live_metrics_pass_promtool_and_no_secret_is_logged(standin: StandIn, creds_file: str) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is needed (Debian package `prometheus`: apt-get install -y prometheus)")
    args = ["--target-url", standin.url, "--credentials-file", creds_file, "--interval", "1", "--log-level", "DEBUG"]
    with running(args, _env()) as (proc, url):
        standin.faults(status=429, retryAfter=30, paths=["/api/"], times=1)  # make every family show up
        time.sleep(1.5)
        text = requests.get(f"{url}/metrics", timeout=5).text
        assert requests.get(f"{url}/-/healthy", timeout=5).status_code == 200
        assert requests.get(f"{url}/", timeout=5).status_code == 200
        check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
        assert check.returncode == 0 and check.stdout == "" and check.stderr == "", check.stdout + check.stderr
        port = url.rsplit(":", 1)[1]
        health = subprocess.run(_cmd("--healthcheck", "--listen-address", f"0.0.0.0:{port}"), env=_env())
        assert health.returncode == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        log = proc.stdout.read()
    assert 'rozitech_auth_probe_responses_total{code="429",endpoint="me"} 1.0' in text
    assert "rozitech_auth_probe_build_info{" in text
    assert "probe verify FAILED: 429" in log
    assert DEMO.password not in log
    assert "eyJ" not in log, "no JWT in the log"
    assert "Bearer" not in log


def test_account_from_the_environment(standin: StandIn) -> None:
    env = _env(
        AUTH_EXPORTER_TARGET_URL=standin.url,
        AUTH_EXPORTER_PROBE_EMAIL=DEMO.email,
        AUTH_EXPORTER_PROBE_PASSWORD=DEMO.password,
        AUTH_EXPORTER_INTERVAL="1",
    )
    with running([], env) as (_proc, url):
        time.sleep(0.3)
        assert 'rozitech_auth_probe_success{probe="verify"} 1.0' in requests.get(f"{url}/metrics", timeout=5).text


def test_exit_codes(tmp_path: Path) -> None:
    assert (
        subprocess.run(
            _cmd("--healthcheck", "--listen-address", f"127.0.0.1:{free_port()}"), env=_env(), capture_output=True
        ).returncode
        == 1
    )
    bad = subprocess.run(_cmd("--target-url", "nope"), env=_env(), capture_output=True, text=True)
    assert bad.returncode == 2 and "target_url" in bad.stderr
    with contextlib.closing(__import__("socket").socket()) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        taken = subprocess.run(
            _cmd("--target-url", "http://127.0.0.1:9", "--listen-address", f"127.0.0.1:{port}"),
            env=_env(),
            capture_output=True,
            text=True,
            timeout=10,
        )
    assert taken.returncode == 3
    version = subprocess.run(_cmd("--version"), env=_env(), capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("rozitech-auth-exporter ")
