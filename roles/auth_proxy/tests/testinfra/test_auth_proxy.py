"""The auth_proxy host after the role: nginx, TLS, redirect, forwarded headers, records, certificates.

Plain pytest-testinfra, run on the proxy host (commands run there, e.g. curl to 127.0.0.1):

    pytest --hosts=docker://rozitech-sandbox-proxy roles/auth_proxy/tests/testinfra/test_auth_proxy.py
    pytest --connection=ansible --ansible-inventory=<inv> --hosts=auth_proxy roles/auth_proxy/tests/testinfra

With the ansible backend, hosts outside the ``auth_proxy`` group are skipped (in case another scenario collects this
file too). Settings come from the environment, with the Molecule ``default`` scenario's values as defaults:

    AUTH_PROXY_TEST_DOMAIN        the auth domain (SNI, Host)                 auth.rozitech.test
    AUTH_PROXY_TEST_MODE          selfsigned | acme | provided                selfsigned
    AUTH_PROXY_TEST_CA            CA file on the host the served chain must verify against
                                  (default: the role's sandbox CA for selfsigned; for acme the file
                                  AUTH_PROXY_TEST_ACME_ROOTS_URL is downloaded to)
    AUTH_PROXY_TEST_ACME_ROOTS_URL  pebble's management /roots/0 (acme mode: the chain's root)
    AUTH_PROXY_TEST_UPSTREAM      the auth server stand-in, seen from the proxy host   auth-upstream:4000
    AUTH_PROXY_TEST_TRUST_PROXY   1 when the stand-in runs with TRUST_PROXY=1 (then req.ip is the client)
    AUTH_PROXY_TEST_SERIAL_FILE   file on the host holding the serial served before a forced renewal
    AUTH_PROXY_TEST_LIMIT_REQ     1 when the role ran with auth_proxy_limit_req (a burst on /api/ gets 429s)
    AUTH_PROXY_TEST_RETRY_AFTER   its auth_proxy_limit_req_retry_after                    2
"""

from __future__ import annotations

import json
import os
import shlex
import uuid

import pytest

DOMAIN = os.environ.get("AUTH_PROXY_TEST_DOMAIN", "auth.rozitech.test")
MODE = os.environ.get("AUTH_PROXY_TEST_MODE", "selfsigned")
UPSTREAM = os.environ.get("AUTH_PROXY_TEST_UPSTREAM", "auth-upstream:4000")
TRUST_PROXY = os.environ.get("AUTH_PROXY_TEST_TRUST_PROXY", "1") == "1"
ROOTS_URL = os.environ.get("AUTH_PROXY_TEST_ACME_ROOTS_URL", "")
SERIAL_FILE = os.environ.get("AUTH_PROXY_TEST_SERIAL_FILE", "")
LIMIT_REQ = os.environ.get("AUTH_PROXY_TEST_LIMIT_REQ", "") == "1"
SITE = f"/etc/nginx/sites-available/auth-proxy-{DOMAIN}.conf"
SITE_LINK = f"/etc/nginx/sites-enabled/auth-proxy-{DOMAIN}.conf"
TLS_DIR = f"/etc/letsencrypt/live/{DOMAIN}" if MODE == "acme" else f"/etc/nginx/tls/{DOMAIN}"
DEPLOY_HOOK = "/etc/letsencrypt/renewal-hooks/deploy/50-auth-proxy-nginx-reload"
STATE_DIR = "/var/lib/rozitech-rollout"
ACCESS_LOG = "/var/log/nginx/auth-proxy.access.log"
ROOTS_FILE = "/root/auth-proxy-test-acme-root.pem"


@pytest.fixture(autouse=True)
def _proxy_hosts_only(host):
    """Skip hosts that are not in the auth_proxy group (ansible backend only: --hosts=docker://... is explicit)."""
    if host.backend.NAME == "ansible":
        groups = host.ansible.get_variables().get("group_names", [])
        if "auth_proxy" not in groups:
            pytest.skip("not an auth_proxy host")


def run(host, *args: str):
    return host.run(" ".join(shlex.quote(a) for a in args))


@pytest.fixture()
def ca_file(host) -> str:
    """Path on the host of the CA the served chain must verify against."""
    if os.environ.get("AUTH_PROXY_TEST_CA"):
        return os.environ["AUTH_PROXY_TEST_CA"]
    if MODE == "acme":
        assert ROOTS_URL, "acme mode needs AUTH_PROXY_TEST_ACME_ROOTS_URL (pebble's /roots/0) or AUTH_PROXY_TEST_CA"
        out = run(host, "curl", "-sSfk", "-m", "10", "-o", ROOTS_FILE, ROOTS_URL)
        assert out.rc == 0, f"fetching the ACME root failed: {out.stderr}"
        return ROOTS_FILE
    return f"{TLS_DIR}/ca.pem"


def curl_https(host, path: str, ca: str, *extra: str) -> tuple[int, dict[str, str], str]:
    """GET https://DOMAIN<path> through 127.0.0.1:443 with SNI/Host = DOMAIN, verifying against ``ca``."""
    out = run(
        host,
        "curl",
        "-sS",
        "-m",
        "15",
        "--resolve",
        f"{DOMAIN}:443:127.0.0.1",
        "--cacert",
        ca,
        "-D",
        "/dev/stderr",
        "-o",
        "-",
        *extra,
        f"https://{DOMAIN}{path}",
    )
    assert out.rc == 0, f"curl https://{DOMAIN}{path} failed: {out.stderr[-400:]}"
    return _parse(out.stdout, out.stderr)


def curl_http(host, path: str) -> tuple[int, dict[str, str], str]:
    out = run(
        host,
        "curl",
        "-sS",
        "-m",
        "15",
        "-H",
        f"Host: {DOMAIN}",
        "-D",
        "/dev/stderr",
        "-o",
        "-",
        f"http://127.0.0.1{path}",
    )
    assert out.rc == 0, f"curl http://127.0.0.1{path} failed: {out.stderr[-400:]}"
    return _parse(out.stdout, out.stderr)


def _parse(body: str, head: str) -> tuple[int, dict[str, str], str]:
    lines = [line.strip() for line in head.splitlines() if line.strip()]
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            key, value = line.split(":", 1)
            headers[key.strip().lower()] = value.strip()
    return status, headers, body


def served_serial(host) -> str:
    out = host.run(
        f"openssl s_client -connect 127.0.0.1:443 -servername {shlex.quote(DOMAIN)} </dev/null 2>/dev/null"
        " | openssl x509 -noout -serial"
    )
    assert out.rc == 0 and out.stdout.startswith("serial="), f"no certificate served: {out.stderr}"
    return out.stdout.strip().split("=", 1)[1]


def test_nginx_runs_and_is_enabled(host):
    nginx = host.service("nginx")
    assert nginx.is_running
    assert nginx.is_enabled


def test_nginx_config_is_valid(host):
    out = host.run("nginx -t")
    assert out.rc == 0, out.stderr


def test_site_files(host):
    site = host.file(SITE)
    assert site.is_file and site.mode == 0o644 and site.user == "root"
    assert "Ansible managed" in site.content_string or "ansible" in site.content_string.lower()
    assert f"server_name {DOMAIN}" in site.content_string
    link = host.file(SITE_LINK)
    assert link.is_symlink and link.linked_to == SITE


def test_key_is_private(host):
    key = host.file(f"{TLS_DIR}/privkey.pem")
    assert key.exists
    # acme: live/ holds a symlink into archive/; certbot keeps the key 0600 there.
    real = host.file(key.linked_to) if key.is_symlink else key
    assert real.mode & 0o077 == 0, f"{real.path} is readable by group/others: {oct(real.mode)}"


def test_https_serves_the_upstream_health(host, ca_file):
    status, headers, body = curl_https(host, "/health", ca_file)
    assert status == 200, body
    data = json.loads(body)
    assert data["status"] == "ok" and data["service"] == "rozitech-auth"
    assert headers.get("strict-transport-security", "").startswith("max-age=")


def test_served_certificate_names_the_domain_and_verifies(host, ca_file):
    out = host.run(
        f"openssl s_client -connect 127.0.0.1:443 -servername {shlex.quote(DOMAIN)} -verify_return_error"
        f" -CAfile {shlex.quote(ca_file)} -verify_hostname {shlex.quote(DOMAIN)} </dev/null"
    )
    assert out.rc == 0, out.stdout[-600:] + out.stderr[-600:]
    assert "Verify return code: 0 (ok)" in out.stdout


def test_http_redirects_to_https(host):
    status, headers, _ = curl_http(host, "/api/auth/me?x=1")
    assert status in (301, 308)
    assert headers["location"] == f"https://{DOMAIN}/api/auth/me?x=1"


def test_acme_challenge_path_is_not_redirected(host):
    token = uuid.uuid4().hex
    status, headers, _ = curl_http(host, f"/.well-known/acme-challenge/{token}")
    assert status == 404, "a missing challenge is a 404 from the webroot, not a redirect"
    assert "location" not in headers


def test_forwarded_headers_reach_the_upstream(host, ca_file):
    agent = f"auth-proxy-test-{uuid.uuid4().hex}"
    status, _, _ = curl_https(host, "/health", ca_file, "-A", agent, "-H", "X-Forwarded-For: 203.0.113.9")
    assert status == 200
    out = run(host, "curl", "-sSf", "-m", "10", f"http://{UPSTREAM}/__standin/requests")
    assert out.rc == 0, f"the stand-in's request log (STANDIN_FAULT_CONTROL=1) is not reachable: {out.stderr}"
    seen = [r for r in json.loads(out.stdout)["requests"] if r["headers"].get("user-agent") == agent]
    assert seen, "the request did not reach the upstream"
    headers = seen[-1]["headers"]
    assert headers["host"] == DOMAIN
    assert headers["x-forwarded-proto"] == "https"
    assert headers["x-real-ip"] == "127.0.0.1"
    # nginx appends the address it saw to what the client sent: the last hop is the one to trust.
    assert headers["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    if TRUST_PROXY:
        assert seen[-1]["ip"] == "127.0.0.1", "with trust proxy = 1 hop the rate-limit key is the client, not nginx"


def test_access_log_records_status_and_upstream_time(host, ca_file):
    agent = f"auth-proxy-log-{uuid.uuid4().hex}"
    curl_https(host, "/health", ca_file, "-A", agent)
    lines = [line for line in host.file(ACCESS_LOG).content_string.splitlines() if agent in line]
    assert lines, "request not in the access log"
    assert '" 200 ' in lines[-1]
    assert "urt=" in lines[-1] and "urt=-" not in lines[-1]


@pytest.mark.parametrize(("flag", "accepted"), [("-tls1_1", False), ("-tls1_2", True), ("-tls1_3", True)])
def test_tls_versions(host, flag, accepted):
    # The client is allowed everything (SECLEVEL=0), so a refusal is the server's.
    out = host.run(
        f"openssl s_client -connect 127.0.0.1:443 -servername {shlex.quote(DOMAIN)} {flag}"
        " -cipher DEFAULT@SECLEVEL=0 </dev/null"
    )
    assert (out.rc == 0) is accepted, f"{flag}: rc={out.rc} {out.stderr[-300:]}"


def test_changes_were_recorded_for_rollback(host):
    """Every file the role wrote has a record (component auth_proxy) in some release; keys are sensitive."""
    assert host.file(STATE_DIR).mode == 0o700
    items: dict[str, dict] = {}
    for rel in host.run(f"ls {STATE_DIR}/releases").stdout.split():
        rec = json.loads(host.file(f"{STATE_DIR}/releases/{rel}/release.json").content_string)
        items.update({i["path"]: i for i in rec["items"] if i["component"] == "auth_proxy"})
    assert SITE in items and SITE_LINK in items
    if MODE != "acme":
        assert items[f"{TLS_DIR}/privkey.pem"]["sensitive"] is True
    else:
        assert DEPLOY_HOOK in items


@pytest.mark.skipif(MODE != "acme", reason="acme mode only")
def test_acme_renewal_setup(host):
    hook = host.file(DEPLOY_HOOK)
    assert hook.mode == 0o755 and "nginx -t" in hook.content_string and "reload" in hook.content_string
    timer = host.service("certbot.timer")
    assert timer.is_enabled and timer.is_running
    conf = host.file(f"/etc/letsencrypt/renewal/{DOMAIN}.conf").content_string
    assert "authenticator = webroot" in conf
    assert "server = https://" in conf


@pytest.mark.skipif(not SERIAL_FILE, reason="no forced renewal in this run")
def test_renewal_serves_a_new_serial(host):
    before = host.file(SERIAL_FILE).content_string.strip()
    assert before, "the serial before the renewal was not recorded"
    assert served_serial(host) != before, "nginx still serves the certificate from before the renewal"


@pytest.mark.skipif(not LIMIT_REQ, reason="auth_proxy_limit_req is off")
def test_limit_req_answers_429_with_retry_after(host, ca_file):
    """Runs last (pytest keeps file order): the burst uses up the limit for a moment.

    Every answer of the burst is kept (head and body, one file pair per request) and a 429 is read from those
    files: no second request after the burst, whose timing a loaded machine would decide.
    """
    burst = host.run(
        "d=$(mktemp -d) && for i in $(seq 1 25); do curl -s -m 15"
        f" --resolve {shlex.quote(DOMAIN)}:443:127.0.0.1 --cacert {shlex.quote(ca_file)}"
        f' -D "$d/$i.head" -o "$d/$i.body" https://{shlex.quote(DOMAIN)}/api/auth/me & done; wait;'
        ' for i in $(seq 1 25); do [ -s "$d/$i.head" ] || continue;'
        ' printf "@@head\\n"; cat "$d/$i.head"; printf "@@body\\n"; cat "$d/$i.body"; printf "\\n@@end\\n"; done;'
        ' rm -rf "$d"'
    )
    answers = []
    for chunk in burst.stdout.split("@@head\n")[1:]:
        head, _, rest = chunk.partition("@@body\n")
        answers.append(_parse(rest.split("\n@@end\n")[0], head))
    statuses = [status for status, _, _ in answers]
    assert len(answers) == 25, f"{len(answers)} of 25 requests of the burst were answered: {statuses}"
    limited = [(headers, body) for status, headers, body in answers if status == 429]
    assert limited, f"no 429 in a burst of 25: {statuses}"
    headers, body = limited[0]
    assert headers.get("retry-after") == os.environ.get("AUTH_PROXY_TEST_RETRY_AFTER", "2")
    assert json.loads(body)["code"] == "RATE_LIMITED"
    assert headers.get("strict-transport-security", "").startswith("max-age=")
