"""The app host after the remote_auth role: package, .env, drop-in, service, records, real requests."""

from __future__ import annotations

import json

from conftest import APP_ROOT, APP_URL, DROPIN, PROBE_EMAIL, SERVICE, STATE_DIR

# Under Molecule (ansible connection) only the app hosts; `pytest --hosts=...` overrides this.
testinfra_hosts = ["ansible://saas_admin"]


def test_patch_is_installed_in_the_app_venv(host):
    out = host.run(f"{APP_ROOT}/venv/bin/python -m pip show rozitech-remote-auth")
    assert out.rc == 0, out.stderr
    assert "Name: rozitech-remote-auth" in out.stdout


def test_env_file_has_the_auth_keys_with_safe_permissions(host):
    env = host.file(f"{APP_ROOT}/.env")
    assert env.mode == 0o640
    assert env.user == "rozitech"
    lines = env.content_string.splitlines()
    urls = [line for line in lines if line.startswith("AUTH_SERVICE_URL=")]
    assert urls == ["AUTH_SERVICE_URL=http://auth-server:4000"], "one AUTH_SERVICE_URL, the new one"
    assert "AUTH_SERVICE_TIMEOUT=5" in lines
    assert any(line.startswith("SECRET_KEY=") for line in lines), "the app's own keys are kept"


def test_dropin_switches_the_settings_module(host):
    dropin = host.file(DROPIN)
    assert dropin.mode == 0o644
    assert "Environment=DJANGO_SETTINGS_MODULE=rozitech_remote_auth.settings_overlay" in dropin.content_string
    assert "Environment=REMOTE_AUTH_BASE_SETTINGS_MODULE=config.settings.quickstart" in dropin.content_string
    env = host.run(f"systemctl show -p Environment {SERVICE}").stdout
    assert "DJANGO_SETTINGS_MODULE=rozitech_remote_auth.settings_overlay" in env


def test_app_service_runs(host):
    service = host.service(SERVICE)
    assert service.is_running
    assert service.is_enabled


def test_rollout_state_recorded_before_the_change(host):
    state = host.file(STATE_DIR)
    assert state.mode == 0o700
    release = host.file(f"{STATE_DIR}/current").content_string.strip()
    record = json.loads(host.file(f"{STATE_DIR}/releases/{release}/release.json").content_string)
    assert record["status"] == "applied"
    by_path = {item["path"]: item for item in record["items"]}
    env_item = by_path[f"{APP_ROOT}/.env"]
    assert env_item["existed"] is True and env_item["sensitive"] is True
    assert by_path[DROPIN]["existed"] is False
    backup = host.file(f"{STATE_DIR}/releases/{release}/files/{env_item['key']}")
    assert backup.mode == 0o600
    assert "AUTH_SERVICE_URL=http://old-auth.invalid:4000" in backup.content_string, "the backup is the old .env"
    venv = [item for item in record["items"] if item["kind"] == "venv"]
    assert venv and not any(p.startswith("rozitech-remote-auth") for p in venv[0]["packages"])


def test_health(http):
    status, _, data = http.request("GET", f"{APP_URL}/health/")
    assert status == 200
    assert data == {"status": "ok"}


def test_pinned_view_accepts_an_auth_server_token(http):
    token = http.login()
    status, _, data = http.request("GET", f"{APP_URL}/api/auth/verify", token=token)
    assert status == 200, data
    assert data["user"]["email"].lower() == PROBE_EMAIL


def test_default_view_resolves_the_same_local_user(http):
    token = http.login()
    _, _, pinned = http.request("GET", f"{APP_URL}/api/auth/verify", token=token)
    status, _, data = http.request("GET", f"{APP_URL}/api/me/", token=token)
    assert status == 200, data
    assert data["user"]["id"] == pinned["user"]["id"]
    assert data["auth"] == "RemoteJWTAuthentication"


def test_a_bad_token_is_a_401_with_a_bearer_challenge(http):
    status, headers, _ = http.request("GET", f"{APP_URL}/api/me/", token="not-a-token")
    assert status == 401
    assert headers.get("www-authenticate", "").startswith("Bearer")


def test_metrics_count_verifications_without_user_data(http, host):
    token = http.login()
    http.request("GET", f"{APP_URL}/api/me/", token=token)
    status, _, text = http.request("GET", f"{APP_URL}/metrics/")
    assert status == 200
    assert "rozitech_remote_auth_verify_duration_seconds_bucket" in text
    assert 'rozitech_remote_auth_verify_requests_total{result="success"}' in text
    assert PROBE_EMAIL not in text and token not in text
    files = host.run("ls /run/rozitech-saas-admin-metrics").stdout.split()
    assert any(name.endswith(".db") for name in files), "multiprocess mode is on"


def test_identity_link_tables_migrated_and_the_probe_user_linked(host):
    """The role ran the patch's migration; the health gate's probe login linked its user by remote id."""
    env = (
        "DJANGO_SETTINGS_MODULE=rozitech_remote_auth.settings_overlay "
        "REMOTE_AUTH_BASE_SETTINGS_MODULE=config.settings.quickstart "
        f"REMOTE_AUTH_ENV_FILE={APP_ROOT}/.env"
    )
    out = host.run(
        f"cd {APP_ROOT} && runuser -u rozitech -- env {env} "
        f"{APP_ROOT}/venv/bin/python manage.py remote_auth_links report --json"
    )
    assert out.rc == 0, out.stderr
    lines = out.stdout.splitlines()  # the app's logging may print to stdout before the JSON
    report = json.loads("\n".join(lines[lines.index("{") :]))
    assert report["migrated"] is True
    assert report["linked"] >= 1
    assert report["conflicts"]["count"] == 0
