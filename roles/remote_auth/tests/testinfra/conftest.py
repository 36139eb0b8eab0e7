"""Shared helpers for the testinfra checks of an app host after the remote_auth rollout.

Plain pytest: the Molecule scenario's verify.yml runs them, and so does
``pytest --hosts=docker://rozitech-sandbox-app1 roles/remote_auth/tests/testinfra`` against the sandbox.
Settings come from the environment, with the sandbox's values as defaults.
"""

from __future__ import annotations

import json
import os
import shlex

import pytest

APP_ROOT = os.environ.get("REMOTE_AUTH_TEST_APP_ROOT", "/opt/rozitech-saas-admin")
AUTH_URL = os.environ.get("REMOTE_AUTH_TEST_AUTH_URL", "http://auth-server:4000")
PROBE_EMAIL = os.environ.get("REMOTE_AUTH_TEST_EMAIL", "demo@rozitech.test")
PROBE_PASSWORD = os.environ.get("REMOTE_AUTH_TEST_PASSWORD", "Demo-Passw0rd!")
APP_URL = os.environ.get("REMOTE_AUTH_TEST_APP_URL", "http://127.0.0.1")
# The patch's private metrics listener (remote_auth_metrics_listen; the role's default address).
METRICS_URL = os.environ.get("REMOTE_AUTH_TEST_METRICS_URL", "http://127.0.0.1:9748/metrics")
SERVICE = "rozitech-saas-admin.service"
DROPIN = f"/etc/systemd/system/{SERVICE}.d/50-remote-auth.conf"
SOCKET_UNIT = "/etc/systemd/system/rozitech-saas-admin.socket"
STATE_DIR = "/var/lib/rozitech-rollout"


class Http:
    """curl on the host under test; returns (status, headers, json-or-text)."""

    def __init__(self, host) -> None:
        self.host = host

    def request(
        self, method: str, url: str, *, token: str | None = None, body: dict | None = None, header: str | None = None
    ) -> tuple[int, dict[str, str], object]:
        cmd = ["curl", "-sS", "-m", "20", "-X", method, "-D", "/dev/stderr", "-o", "-", url]
        if token is not None:
            cmd += ["-H", f"Authorization: Bearer {token}"]
        if header is not None:
            cmd += ["-H", header]
        if body is not None:
            cmd += ["-H", "Content-Type: application/json", "--data", json.dumps(body)]
        out = self.host.run(" ".join(shlex.quote(c) for c in cmd))
        assert out.rc == 0, f"curl {url} failed: {out.stderr[-300:]}"
        lines = [line.strip() for line in out.stderr.splitlines() if line.strip()]
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                key, value = line.split(":", 1)
                headers[key.strip().lower()] = value.strip()
        try:
            data: object = json.loads(out.stdout)
        except ValueError:
            data = out.stdout
        return status, headers, data

    def login(self) -> str:
        status, _, data = self.request(
            "POST", f"{AUTH_URL}/api/auth/login", body={"email": PROBE_EMAIL, "password": PROBE_PASSWORD}
        )
        assert status == 200, f"login on the auth server answered {status}: {data}"
        body = data.get("data", data)
        return body["accessToken"]


@pytest.fixture()
def http(host) -> Http:
    return Http(host)
