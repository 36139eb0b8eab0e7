"""The app host after the remote_auth role: package, .env, drop-in, service, records, real requests."""

from __future__ import annotations

import json
import shlex

from conftest import APP_ROOT, APP_URL, DROPIN, METRICS_URL, PROBE_EMAIL, SERVICE, SOCKET_UNIT, STATE_DIR

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


def test_baseline_stored_with_the_release(host):
    """What preflight saw before the change, beside the release's record (the rollback checks against it)."""
    release = host.file(f"{STATE_DIR}/current").content_string.strip()
    baseline = host.file(f"{STATE_DIR}/releases/{release}/remote_auth_baseline.json")
    assert baseline.mode == 0o600
    data = json.loads(baseline.content_string)
    assert data["release"] == release
    assert [(c["var"], c["url"], c["status"]) for c in data["checks"]] == [
        ("remote_auth_gate_public_urls", f"{APP_URL}/admin/login/", 200),
        ("remote_auth_gate_url", f"{APP_URL}/api/auth/verify", 401),
        ("remote_auth_gate_default_url", f"{APP_URL}/api/me/", 401),
    ]


def test_the_app_has_no_health_view_and_its_pages_answer(http):
    """The fixture has the real app's shape: no /health/, a broken /, its own public pages."""
    assert http.request("GET", f"{APP_URL}/health/")[0] == 404
    assert http.request("GET", f"{APP_URL}/")[0] == 500
    for path in ("/api/home/", "/api/docs/", "/api/schema/", "/admin/login/"):
        assert http.request("GET", f"{APP_URL}{path}")[0] == 200, path


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


def test_metrics_are_not_served_through_the_public_site(http):
    status, _, text = http.request("GET", f"{APP_URL}/metrics/")
    assert status == 404
    assert "rozitech_remote_auth_" not in str(text)


def test_schema_documents_the_remote_bearer_scheme_without_a_warning(http, host):
    status, _, text = http.request("GET", f"{APP_URL}/api/schema/")
    assert status == 200
    assert "remoteJwtAuth:" in str(text)
    assert "bearerFormat: JWT" in str(text)
    # drf-spectacular writes its warnings to the workers' stderr: the journal (or gunicorn's error log).
    logs = host.run(
        f"journalctl -u {SERVICE} --no-pager -o cat; cat /var/log/gunicorn/error.log 2>/dev/null; true"
    ).stdout
    assert "could not resolve authenticator" not in logs


def test_metrics_count_verifications_without_user_data(http, host):
    """Every worker's metrics on the private listener (multiprocess files aggregated by the master)."""
    token = http.login()
    http.request("GET", f"{APP_URL}/api/me/", token=token)
    status, _, text = http.request("GET", METRICS_URL)
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


def test_socket_unit_holds_the_apps_socket(host):
    unit = host.file(SOCKET_UNIT)
    assert unit.mode == 0o644 and unit.user == "root"
    assert f"ListenStream={APP_ROOT}/run/gunicorn.sock" in unit.content_string.splitlines()
    assert host.run(f"systemctl is-active {SOCKET_UNIT.rsplit('/', 1)[1]}").stdout.strip() == "active"
    dropin = host.file(DROPIN).content_string.splitlines()
    assert "Requires=rozitech-saas-admin.socket" in dropin and "After=rozitech-saas-admin.socket" in dropin
    # One listening socket on the path (systemd's; gunicorn inherited it: bound by itself there would be two or
    # one that systemd does not hold). `ss -p` cannot see the app user's fds without CAP_SYS_PTRACE: systemd only.
    listening = host.run(f"ss -xlpH src {APP_ROOT}/run/gunicorn.sock").stdout.strip().splitlines()
    assert len(listening) == 1, listening
    assert '("systemd",pid=1,' in listening[0], listening[0]
    master = host.run(f"systemctl show -p MainPID --value {SERVICE}").stdout.strip()
    assert host.run(f"pgrep -P {master}").stdout.split(), "gunicorn has workers"


def test_socket_unit_recorded_as_new(host):
    """The release that added the socket unit recorded that it did not exist (so the rollback removes it)."""
    records = [
        json.loads(host.file(f"{STATE_DIR}/releases/{release}/release.json").content_string)
        for release in host.file(f"{STATE_DIR}/releases").listdir()
    ]
    items = [item for record in records for item in record["items"] if item["path"] == SOCKET_UNIT]
    assert items, f"no release recorded {SOCKET_UNIT}"
    assert items[0]["existed"] is False and len(items) == 1, items


def test_restart_under_load_drops_nothing(host):
    """Two clients loop through nginx while the unit restarts: every answer is the one before the restart."""
    url = f"{APP_URL}/api/auth/verify"
    script = f"""
        set -u
        before=$(systemctl show -p MainPID --value {SERVICE})
        out=$(mktemp)
        end=$((SECONDS + 6))
        client() {{ while [ $SECONDS -lt $end ]; do curl -s -o /dev/null -m 30 -w '%{{http_code}}\\n' {url}; done; }}
        client >> "$out" & client >> "$out" &
        sleep 1.5
        systemctl restart {SERVICE}
        wait
        echo "pids $before $(systemctl show -p MainPID --value {SERVICE})"
        sort "$out" | uniq -c
        rm -f "$out"
    """
    baseline = host.run(f"curl -s -o /dev/null -w '%{{http_code}}' {url}").stdout.strip()
    out = host.run(f"bash -c {shlex.quote(script)}")
    assert out.rc == 0, out.stderr
    lines = out.stdout.split("\n")
    pids = lines[0].split()[1:]
    assert pids[0] != pids[1], f"the unit did not restart: {pids}"
    counts = {code: int(n) for n, code in (line.split() for line in lines[1:] if line.strip())}
    assert set(counts) == {baseline}, f"answers during the restart: {counts}, expected only {baseline}"
    assert counts[baseline] >= 20, counts
