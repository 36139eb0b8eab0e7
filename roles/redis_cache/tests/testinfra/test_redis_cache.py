"""An app host after the redis_cache role: the live Redis (CONFIG GET with the password), the files, the records.

Molecule's testinfra verifier runs them (roles/redis_cache/molecule/default); the password comes from
REDIS_CACHE_TEST_PASSWORD, on redis-cli's stdin (never on its command line).
"""

from __future__ import annotations

import json
import os
import shlex

import pytest

PASSWORD = os.environ.get("REDIS_CACHE_TEST_PASSWORD", "molecule-Redis-pw-0123456789")
CONF = "/etc/redis/redis.conf"
AUTH_CONF = "/etc/redis/rozitech-auth.conf"
MARKER = "/etc/rozitech-rollout/redis-cache-started"
STATE_DIR = "/var/lib/rozitech-rollout"

testinfra_hosts = ["ansible://saas_admin"]


def redis(host, *commands: str, password: str | None = PASSWORD) -> list[str]:
    """Replies of redis-cli (raw, one line per element) to ``commands``, after AUTH when a password is given."""
    lines = ([f"AUTH {password}"] if password else []) + list(commands)
    script = "printf '%s\\n' " + " ".join(shlex.quote(line) for line in lines) + " | redis-cli -h 127.0.0.1 -p 6379"
    out = host.run(script)
    assert out.rc == 0, out.stderr
    return out.stdout.splitlines()


def test_package_installed_service_enabled_and_running(host):
    assert host.package("redis-server").is_installed
    service = host.service("redis-server")
    assert service.is_running
    assert service.is_enabled


def test_listens_on_loopback_only(host):
    sockets = {s for s in host.socket.get_listening_sockets() if s.endswith(":6379")}
    assert sockets == {"tcp://127.0.0.1:6379"}


def test_a_client_without_the_password_is_refused(host):
    replies = [r for r in redis(host, "PING", "GET anything", password=None) if r]  # a blank line after each error
    assert len(replies) == 2, replies
    assert all(r.startswith("NOAUTH") for r in replies), replies


def test_a_wrong_password_is_refused(host):
    replies = [r for r in redis(host, "PING", password="not-the-password-0000") if r]
    assert len(replies) == 2, replies
    assert replies[0].startswith("WRONGPASS"), replies
    assert replies[1].startswith("NOAUTH"), replies


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("maxmemory", str(64 * 1024 * 1024)),
        ("maxmemory-policy", "allkeys-lru"),
        ("save", ""),
        ("appendonly", "no"),
        ("bind", "127.0.0.1"),
        ("protected-mode", "yes"),
        ("port", "6379"),
    ],
)
def test_live_config(host, name, value):
    replies = redis(host, f"CONFIG GET {name}")
    assert replies == ["OK", name, value]


def test_the_password_is_only_in_the_root_redis_file(host):
    conf = host.file(CONF)
    assert (conf.user, conf.group, conf.mode) == ("root", "redis", 0o640)
    assert PASSWORD not in conf.content_string
    assert f"include {AUTH_CONF}" in conf.content_string
    auth = host.file(AUTH_CONF)
    assert (auth.user, auth.group, auth.mode) == ("root", "redis", 0o640)
    assert auth.content_string.splitlines()[-1] == f"requirepass {PASSWORD}"


def test_nothing_is_persisted(host):
    replies = redis(host, "SET rozitech:test 1", "BGSAVE", "CONFIG GET dir")
    assert replies[1] == "OK"
    assert replies[-2:] == ["dir", "/var/lib/redis"]
    assert not host.file("/var/lib/redis/appendonlydir").exists


def test_the_rollout_recorded_the_files_it_changed(host):
    records = host.run(f"ls {STATE_DIR}/releases").stdout.split()
    assert len(records) == 1, records  # converge wrote one release; idempotence and --check wrote none
    release = json.loads(host.file(f"{STATE_DIR}/releases/{records[0]}/release.json").content_string)
    paths = {item["path"]: item for item in release["items"] if item["component"] == "redis_cache"}
    assert set(paths) >= {CONF, AUTH_CONF}
    assert paths[CONF]["existed"] is True  # the package's own redis.conf, restored by a rollback
    assert paths[AUTH_CONF]["existed"] is False
    assert paths[AUTH_CONF]["sensitive"] is True
    fresh = host.backend.get_hostname() == "redis-cache-fresh"
    assert (MARKER in paths) is fresh


def test_the_marker_only_where_the_rollout_started_redis(host):
    fresh = host.backend.get_hostname() == "redis-cache-fresh"
    assert host.file(MARKER).exists is fresh
