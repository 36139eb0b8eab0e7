"""Print the sandbox proof: a real login on the auth server, its token used against the patched app.

Talks only to the sandbox's published loopback ports (tests/sandbox/up.yml):
auth server stand-in on 127.0.0.1:4000, the SaaS Admin fixture (nginx -> gunicorn) on 127.0.0.1:8080.
Tokens are never printed: only a sha256 fingerprint.

Exit status: 0 when what was seen matches the expectation (rolled out, or ``--expect-rolled-back``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys

import requests

AUTH = os.environ.get("SANDBOX_AUTH_URL", "http://127.0.0.1:4000")
APP = os.environ.get("SANDBOX_APP_URL", "http://127.0.0.1:8080")
EMAIL = os.environ.get("SANDBOX_PROBE_EMAIL", "demo@rozitech.test")
PASSWORD = os.environ.get("SANDBOX_PROBE_PASSWORD", "Demo-Passw0rd!")
APP_HOST = os.environ.get("SANDBOX_APP_CONTAINER", "rozitech-sandbox-app1")
EXPORTER = os.environ.get("SANDBOX_EXPORTER_URL", "http://127.0.0.1:9747")
PROXY_PORT = os.environ.get("SANDBOX_PROXY_PORT", "8443")
AUTH_DOMAIN = os.environ.get("SANDBOX_AUTH_DOMAIN", "auth.rozitech.test")
SANDBOX_CA = os.path.join(os.path.dirname(__file__), "..", "..", ".cache", "sandbox-pki", "ca.pem")


def fingerprint(token: str) -> str:
    """A printable stand-in for a token: its length and the first 12 hex digits of its sha256."""
    return f"sha256:{hashlib.sha256(token.encode()).hexdigest()[:12]} ({len(token)} chars)"


def unwrap(body: dict) -> dict:
    """Accept both auth-server response forms: ``{"success", "data": {...}}`` and the bare object."""
    return body.get("data", body) if isinstance(body, dict) else {}


def exporter_figures() -> str:
    """Key figures of the auth probe exporter, from its /metrics (prometheus-client's own parser)."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        text = requests.get(f"{EXPORTER}/metrics", timeout=5).text
    except requests.RequestException as exc:
        return f"not reachable ({type(exc).__name__})"
    values: dict[tuple[str, tuple], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    prefix = "rozitech_auth_probe_"

    def get(name: str, **labels: str) -> float | None:
        return values.get((prefix + name, tuple(sorted(labels.items()))))

    count = get("verify_request_duration_seconds_count") or 0
    total = get("verify_request_duration_seconds_sum") or 0
    too_many = sum(v for (n, lbl), v in values.items() if n == prefix + "responses_total" and ("code", "429") in lbl)
    return (
        f"health up={get('success', probe='health')}, verify up={get('success', probe='verify')}, "
        f"verify latency avg={total / count * 1000 if count else float('nan'):.1f} ms over {count:.0f}, "
        f"rate-limit remaining={get('ratelimit_remaining')}/{get('ratelimit_limit')}, 429s={too_many:.0f}"
    )


def proxy_figures() -> str:
    """GET https://<auth domain>/health through the sandbox's nginx, verified against the sandbox CA."""
    import socket
    import ssl

    try:
        ctx = ssl.create_default_context(cafile=SANDBOX_CA)
        with socket.create_connection(("127.0.0.1", int(PROXY_PORT)), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname=AUTH_DOMAIN) as tls:
                cert = tls.getpeercert()
                version = tls.version()
                request = f"GET /health HTTP/1.1\r\nHost: {AUTH_DOMAIN}\r\nConnection: close\r\n\r\n"
                tls.sendall(request.encode())
                status = tls.recv(64).split(b"\r\n", 1)[0].decode()
    except (OSError, ssl.SSLError) as exc:
        return f"not reachable ({type(exc).__name__}: {exc})"
    issuer = dict(x[0] for x in cert["issuer"]).get("commonName")
    return f"{status}, {version}, certificate for {AUTH_DOMAIN} issued by '{issuer}', valid until {cert['notAfter']}"


def host_shell(cmd: str) -> str:
    out = subprocess.run(["docker", "exec", APP_HOST, "sh", "-c", cmd], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).strip()


def main() -> int:
    try:
        return prove()
    except requests.RequestException as exc:
        print(f"cannot reach the sandbox ({type(exc).__name__}: {exc.__class__.__doc__.strip().splitlines()[0]})")
        print(f"  auth server {AUTH}, app {APP}: is it up? (make demo-up; docker ps --filter label=rozitech.sandbox=1)")
        return 1


def prove() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--expect-rolled-back", action="store_true", help="expect the pinned view to reject auth-server tokens again"
    )
    args = parser.parse_args()
    ok = True
    session = requests.Session()

    health = session.get(f"{AUTH}/health", timeout=5)
    print(f"1. auth server  GET {AUTH}/health -> {health.status_code} {health.json().get('status')}")

    login = session.post(f"{AUTH}/api/auth/login", json={"email": EMAIL, "password": PASSWORD}, timeout=5)
    body = unwrap(login.json())
    token = body.get("accessToken", "")
    print(f"2. login        POST {AUTH}/api/auth/login as {EMAIL} -> {login.status_code},")
    print(f"                 access token {fingerprint(token)}")
    if login.status_code != 200 or not token:
        print("   login failed: is the stand-in up? (make demo-up)")
        return 1

    headers = {"Authorization": f"Bearer {token}"}
    for n, path, label in (
        (3, "/api/auth/verify", "pinned view (authentication_classes = [JWTAuthentication])"),
        (4, "/api/me/", "default-auth view (REST_FRAMEWORK defaults)"),
    ):
        resp = session.get(f"{APP}{path}", headers=headers, timeout=15)
        try:
            data = resp.json()
        except ValueError:
            data = {"detail": resp.text[:120]}
        user = data.get("user") or {}
        shown = (
            f"user id={user.get('id')} username={user.get('username')} email={user.get('email')} "
            f"name={user.get('first_name', '')} {user.get('last_name', '')} via {data.get('auth')}"
            if resp.status_code == 200
            else f"{data.get('detail', data)} [WWW-Authenticate: {resp.headers.get('WWW-Authenticate', '-')}]"
        )
        print(f"{n}. app          GET {APP}{path} with that token -> {resp.status_code}: {shown}")
        print(f"                 {label}")
        if args.expect_rolled_back:
            ok &= resp.status_code == 401
        else:
            ok &= resp.status_code == 200 and (user.get("email") or "").lower() == EMAIL.lower()

    print(f"   auth proxy   https://{AUTH_DOMAIN}/health via 127.0.0.1:{PROXY_PORT}: {proxy_figures()}")
    unit = host_shell("systemctl show -p Environment rozitech-saas-admin.service")
    print(f"5. app host     {unit}")
    print(f"   .env         {host_shell('grep -E ^AUTH_SERVICE_URL= /opt/rozitech-saas-admin/.env')}")
    print(
        f"   releases     {host_shell('cat /var/lib/rozitech-rollout/current 2>/dev/null || echo none')}"
        " (records in /var/lib/rozitech-rollout on the host)"
    )
    print(f"6. exporter     {EXPORTER}/metrics: {exporter_figures()}")
    print()
    if args.expect_rolled_back:
        print(
            "RESULT:",
            "rolled back - the pinned view rejects auth-server tokens again" if ok else "NOT rolled back as expected",
        )
    else:
        print("RESULT:", "the SaaS Admin verifies auth-server tokens remotely" if ok else "the rollout is NOT working")
        print(
            "Next: make demo-rollback (one-command rollback), make demo-down (remove the sandbox);"
            " ansible-playbook -i inventory/sandbox playbooks/verify.yml (smoke check);"
            f" docker exec -it {APP_HOST} journalctl -u rozitech-saas-admin (app logs)"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
