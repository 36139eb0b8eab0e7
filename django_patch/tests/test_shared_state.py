"""AUTH_SERVICE_CACHE_URL: a real Redis as the shared identity cache and shared circuit state.

Runs ``redis-server`` (Debian package ``redis-server``; ``.ci/run`` installs it) on a free
loopback port per test module.  Two :class:`AuthClient` objects stand for two gunicorn workers
(or two app hosts) sharing that Redis.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import caches

from rozitech_remote_auth import breaker as breaker_mod
from rozitech_remote_auth import conf, sharedredis
from rozitech_remote_auth.breaker import CircuitOpen
from rozitech_remote_auth.cache import cache_get, cache_set
from rozitech_remote_auth.client import AuthClient, UpstreamFailure
from rozitech_remote_auth.conf import RemoteAuthConfigError, parse_settings
from tests.support import load_overlay, make_token

REDIS_SERVER = shutil.which("redis-server")
needs_redis = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not installed")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_redis(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            str(REDIS_SERVER),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("redis-server did not start") from None
            time.sleep(0.05)


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    port = _free_port()
    proc = _start_redis(port)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def flushed(redis_url: str) -> str:
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    return redis_url


def _cfg(url: str, cache_url: str, **overrides: Any) -> conf.RemoteAuthSettings:
    raw = {
        "AUTH_SERVICE_URL": url,
        "AUTH_SERVICE_CACHE_URL": cache_url,
        "AUTH_SERVICE_BREAKER_FAIL_MAX": 4,
        "AUTH_SERVICE_BREAKER_RESET_TIMEOUT": 1,
        "AUTH_SERVICE_TIMEOUT": 1,
        "AUTH_SERVICE_CONNECT_TIMEOUT": 0.5,
        "AUTH_SERVICE_TOTAL_TIMEOUT": 2,
        # the clients here stand for workers on different hosts: no shared host-local bulkhead
        "AUTH_SERVICE_BULKHEAD_SLOTS": 0,
    }
    raw.update(overrides)
    return parse_settings(raw)


# -- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["redis://cache:6379/0", "rediss://:pw@cache.internal:6380/2", "unix:///run/redis.sock"],
)
def test_cache_url_accepts_redis_urls(value):
    assert (
        parse_settings(
            {"AUTH_SERVICE_URL": "https://a.example", "AUTH_SERVICE_CACHE_URL": value}
        ).cache_url
        == value
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("http://:s3cret@cache:6379", "scheme must be one of"),
        ("redis://:s3cret@cache:99999", "invalid host or port"),
        ("redis://:pa[ss@cache:6379/0", "invalid host or port"),
        ("redis://cache:6379/0?socket_timeout=abc", "redis-py accepts"),
        ("redis://", "has no host"),
    ],
)
def test_cache_url_errors_name_the_key_never_the_password(value, message):
    with pytest.raises(RemoteAuthConfigError) as info:
        parse_settings({"AUTH_SERVICE_URL": "https://a.example", "AUTH_SERVICE_CACHE_URL": value})
    assert info.value.key == "AUTH_SERVICE_CACHE_URL"
    assert message in str(info.value)
    assert "s3cret" not in str(info.value)


def test_overlay_adds_the_shared_cache_and_uses_it(monkeypatch, tmp_path):
    env = tmp_path / ".env"
    env.write_text(
        "AUTH_SERVICE_URL=https://auth.example\n"
        "AUTH_SERVICE_CACHE_URL=redis://:pw@cache.internal:6379/1\n"
        "AUTH_SERVICE_CACHE_SOCKET_TIMEOUT=0.25\n"
    )
    monkeypatch.setenv("REMOTE_AUTH_ENV_FILE", str(env))
    monkeypatch.setenv("REMOTE_AUTH_BASE_SETTINGS_MODULE", "tests.app_settings")
    values = vars(load_overlay())
    assert values["AUTH_SERVICE_CACHE_ALIAS"] == conf.SHARED_CACHE_ALIAS
    shared = values["CACHES"][conf.SHARED_CACHE_ALIAS]
    assert shared["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    assert shared["LOCATION"] == "redis://:pw@cache.internal:6379/1"
    options = dict(shared["OPTIONS"])
    retry = options.pop("retry")
    assert options == {
        "socket_connect_timeout": 0.25,
        "socket_timeout": 0.25,
        "connection_class": sharedredis.GatedConnection,
    }
    assert retry.get_retries() == 1  # a connection Redis closed is replaced once, at once
    from tests import app_settings

    for alias in getattr(app_settings, "CACHES", {}):
        assert alias in values["CACHES"]  # the app's own caches are kept


def test_overlay_keeps_djangos_default_cache_when_the_app_sets_none(monkeypatch, tmp_path):
    """Like the SaaS Admin's quickstart settings: no CACHES at all (Django's LocMem default)."""
    (tmp_path / "nocache_settings.py").write_text(
        "from tests.app_settings import *  # noqa\ndel CACHES\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    env = tmp_path / ".env"
    env.write_text(
        "AUTH_SERVICE_URL=https://auth.example\nAUTH_SERVICE_CACHE_URL=redis://cache:6379/0\n"
    )
    monkeypatch.setenv("REMOTE_AUTH_ENV_FILE", str(env))
    monkeypatch.setenv("REMOTE_AUTH_BASE_SETTINGS_MODULE", "nocache_settings")
    monkeypatch.delitem(
        sys.modules, "nocache_settings", raising=False
    )  # forgotten again afterwards
    overlay = load_overlay()
    assert set(overlay.CACHES) == {"default", conf.SHARED_CACHE_ALIAS}
    assert overlay.CACHES["default"]["BACKEND"] == "django.core.cache.backends.locmem.LocMemCache"


# -- the identity cache on a real Redis --------------------------------------------------------


@needs_redis
def test_identity_cache_round_trip_through_real_redis(settings, flushed):
    settings.CACHES = {
        **settings.CACHES,
        "shared": conf.shared_cache_config(_cfg("https://a.example", flushed)),
    }
    key = "rozitech_remote_auth:v1:" + "ab" * 32
    cache_set("shared", key, {"kind": "rejected"}, ttl=30)
    assert cache_get("shared", key) == {"v": 1, "kind": "rejected"}
    caches["shared"].close()


def test_identity_cache_on_an_unreachable_redis_is_a_fast_miss(settings):
    port = _free_port()  # nothing listens there
    settings.CACHES = {
        **settings.CACHES,
        "gone": conf.shared_cache_config(_cfg("https://a.example", f"redis://127.0.0.1:{port}/0")),
    }
    started = time.monotonic()
    assert cache_get("gone", "rozitech_remote_auth:v1:" + "cd" * 32) is None
    cache_set("gone", "rozitech_remote_auth:v1:" + "cd" * 32, {"kind": "rejected"}, ttl=30)
    assert time.monotonic() - started < 1.5


# -- the circuit state shared by two workers ---------------------------------------------------


def _fail(worker: AuthClient, token: str) -> str:
    try:
        worker.fetch_me(token)
    except CircuitOpen:
        return "open"
    except UpstreamFailure as exc:
        return exc.reason
    return "answered"


@needs_redis
def test_two_workers_open_the_circuit_together(upstream, flushed):
    upstream.respond(500)
    cfg = _cfg(upstream.url, flushed)
    first, second = AuthClient(cfg), AuthClient(cfg)
    token = make_token("u-1", "a@example.com")
    # fail_max (4) failures in total, split over both workers, open the circuit for both.
    assert [
        _fail(first, token),
        _fail(second, token),
        _fail(first, token),
        _fail(second, token),
    ] == ["unavailable"] * 4
    assert upstream.calls == 4
    assert first.breaker.current_state == second.breaker.current_state == "open"
    assert _fail(first, token) == "open"
    assert _fail(second, token) == "open"
    assert upstream.calls == 4  # failed fast: no request made
    # A third worker started later sees the open circuit too.
    assert _fail(AuthClient(cfg), token) == "open"

    upstream.behaviour = None  # the auth server recovers
    time.sleep(1.05)
    assert first.fetch_me(token).status == 200  # trial call closes the shared circuit
    assert second.breaker.current_state == "closed"
    assert second.fetch_me(token).status == 200
    assert upstream.calls == 6


@needs_redis
def test_per_process_breakers_without_a_cache_url(upstream):
    upstream.respond(500)
    cfg = parse_settings({"AUTH_SERVICE_URL": upstream.url, "AUTH_SERVICE_BREAKER_FAIL_MAX": 2})
    first, second = AuthClient(cfg), AuthClient(cfg)
    token = make_token("u-1", "a@example.com")
    assert [_fail(first, token), _fail(first, token)] == ["unavailable"] * 2
    assert first.breaker.current_state == "open"
    assert second.breaker.current_state == "closed"  # each worker counts for itself


def test_unreachable_shared_state_falls_back_to_the_process(upstream, caplog, monkeypatch):
    monkeypatch.setattr(breaker_mod, "SHARED_STATE_RETRY_SECONDS", 60.0)
    upstream.respond(500)
    port = _free_port()
    cfg = _cfg(upstream.url, f"redis://:s3cret@127.0.0.1:{port}/0")
    with caplog.at_level(logging.INFO, logger="rozitech_remote_auth"):
        worker = AuthClient(cfg)
        token = make_token("u-1", "a@example.com")
        outcomes = [_fail(worker, token) for _ in range(5)]
    assert outcomes == ["unavailable"] * 4 + ["open"]  # the local state still opens the circuit
    assert upstream.calls == 4
    warnings = [r for r in caplog.records if "shared state unreachable" in r.getMessage()]
    assert len(warnings) == 1  # once per outage, not per call
    assert "s3cret" not in caplog.text
    assert str(port) not in caplog.text


@needs_redis
def test_refresh_state_lets_an_idle_worker_see_the_shared_circuit(upstream, flushed, monkeypatch):
    from prometheus_client import REGISTRY

    upstream.respond(500)
    cfg = _cfg(upstream.url, flushed)
    busy, idle = AuthClient(cfg), AuthClient(cfg)
    token = make_token("u-1", "a@example.com")
    for _ in range(4):
        _fail(busy, token)
    assert busy.breaker.current_state == "open"
    assert idle.breaker._state.name == "closed"  # what the idle worker last saw

    monkeypatch.setattr(breaker_mod, "_refreshed_at", 0.0)
    breaker_mod.refresh_state(idle.breaker)
    assert idle.breaker._state.name == "open"
    assert REGISTRY.get_sample_value("rozitech_remote_auth_circuit_state") == 1

    upstream.behaviour = None
    time.sleep(1.05)
    assert busy.fetch_me(token).status == 200  # closes the shared circuit
    breaker_mod.refresh_state(idle.breaker)  # within 5 s of the last refresh: not asked again
    assert idle.breaker._state.name == "open"
    breaker_mod.refresh_state(idle.breaker, force=True)  # a scrape forces it
    assert idle.breaker._state.name == "closed"
    assert REGISTRY.get_sample_value("rozitech_remote_auth_circuit_state") == 0


@needs_redis
def test_one_trial_call_at_a_time_over_all_workers(upstream, flushed):
    """Half-open: one worker makes the trial call; the others fail fast instead of waiting too."""
    upstream.respond(500)
    cfg = _cfg(upstream.url, flushed)
    workers = [AuthClient(cfg) for _ in range(6)]
    token = make_token("u-1", "a@example.com")
    for worker in workers[:4]:
        _fail(worker, token)
    assert workers[0].breaker.current_state == "open"
    time.sleep(1.05)  # past the reset timeout: the next call is a trial call

    upstream.hang()  # the auth server now hangs: the trial call takes the read timeout (1 s)
    outcomes: list[str] = []
    threads = [
        threading.Thread(target=lambda w=w: outcomes.append(_fail(w, token))) for w in workers
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    upstream.release.set()
    assert sorted(outcomes) == ["open"] * 5 + ["timeout"], outcomes
    assert upstream.calls == 5  # 4 failures + 1 trial call
    assert time.monotonic() - started < 2.5
    assert workers[0].breaker.current_state == "open"  # the failed trial re-opened it


@needs_redis
def test_lost_keys_read_as_closed_not_as_a_stale_local_state(upstream, flushed):
    import redis

    upstream.respond(500)
    cfg = _cfg(upstream.url, flushed)
    opener, other = AuthClient(cfg), AuthClient(cfg)
    token = make_token("u-1", "a@example.com")
    for _ in range(4):
        _fail(opener, token)
    assert opener.breaker.current_state == "open"
    redis.Redis.from_url(flushed).flushdb()  # Redis restarted without persistence
    assert opener.breaker.current_state == "closed"
    assert other.breaker.current_state == "closed"
    upstream.behaviour = None
    assert opener.fetch_me(token).status == 200


def test_a_failing_cache_backend_is_skipped_for_a_while(settings, monkeypatch):
    from rozitech_remote_auth import cache as identity_cache

    port = _free_port()  # nothing listens there
    settings.CACHES = {
        **settings.CACHES,
        "gone": conf.shared_cache_config(_cfg("https://a.example", f"redis://127.0.0.1:{port}/0")),
    }
    calls = []
    real_get = caches["gone"].get
    monkeypatch.setattr(caches["gone"], "get", lambda *a, **k: calls.append(1) or real_get(*a, **k))
    key = "rozitech_remote_auth:v1:" + "ef" * 32
    for _ in range(5):
        assert cache_get("gone", key) is None
    assert len(calls) == 1  # asked once, then skipped for BACKEND_RETRY_SECONDS
    monkeypatch.setattr(identity_cache, "_skip_until", 0.0)
    assert cache_get("gone", key) is None
    assert len(calls) == 2


# -- single-flight across workers and hosts ------------------------------------------------------


def _shared_cache(settings: Any, url: str) -> None:
    settings.AUTH_SERVICE_CACHE_URL = url
    settings.CACHES = {
        **settings.CACHES,
        conf.SHARED_CACHE_ALIAS: conf.shared_cache_config(_cfg("https://a.example", url)),
    }
    settings.AUTH_SERVICE_CACHE_ALIAS = conf.SHARED_CACHE_ALIAS


def _leaders(count: int, token: str) -> list[Any]:
    """``count`` per-process leaders at once (each thread stands for one worker on some host:
    the per-process single-flight is bypassed), all for ``token``."""
    from rozitech_remote_auth import verify
    from rozitech_remote_auth.tokens import cache_key

    cfg = conf.get_settings()
    gate = threading.Barrier(count, timeout=10)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        gate.wait()
        results[index] = verify._lead(token, None, cache_key(token), cfg)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    return results


@needs_redis
@pytest.mark.django_db(transaction=True)
def test_one_upstream_call_for_one_new_token_over_every_worker_and_host(
    upstream, flushed, settings
):
    from rozitech_remote_auth.verify import Verified

    _shared_cache(settings, flushed)
    settings.AUTH_SERVICE_BULKHEAD_SLOTS = 0  # the workers stand for several hosts
    upstream.delay = 0.3
    results = _leaders(6, make_token("u-1", "a@example.com"))
    caches[conf.SHARED_CACHE_ALIAS].close()
    assert upstream.calls == 1
    assert all(isinstance(r, Verified) for r in results), results
    assert sum(1 for r in results if not r.cached) == 1  # the leader; 5 read the shared cache
    assert len({r.user_pk for r in results}) == 1


@needs_redis
@pytest.mark.django_db(transaction=True)
def test_followers_take_the_leaders_503_without_calling(upstream, flushed, settings):
    from rozitech_remote_auth.verify import Refused

    _shared_cache(settings, flushed)
    settings.AUTH_SERVICE_BULKHEAD_SLOTS = 0
    settings.AUTH_SERVICE_BREAKER_FAIL_MAX = 10
    upstream.delay = 0.3
    upstream.respond(502)
    results = _leaders(5, make_token("u-1", "a@example.com"))
    caches[conf.SHARED_CACHE_ALIAS].close()
    assert upstream.calls == 1
    assert [(r.reason, r.retry_after) for r in results if isinstance(r, Refused)] == [
        ("unavailable", 5)
    ] * 5


@pytest.mark.django_db(transaction=True)
def test_single_flight_without_redis_is_per_process(upstream, settings):
    port = _free_port()  # the shared cache is down: each worker calls for itself
    _shared_cache(settings, f"redis://127.0.0.1:{port}/0")
    settings.AUTH_SERVICE_BULKHEAD_SLOTS = 0
    # The user is linked beforehand: three simultaneous *first* logins of one identity are
    # test_concurrency's subject, not this one's.
    assert _leaders(1, make_token("u-1", "a@example.com", exp_in=1800))[0].user_pk is not None
    upstream.delay = 0.2
    results = _leaders(3, make_token("u-1", "a@example.com"))
    assert upstream.calls == 1 + 3
    assert [type(r).__name__ for r in results] == ["Verified"] * 3, results


# -- Redis down and back: no request waits on it -------------------------------------------------

#: AUTH_SERVICE_CACHE_SOCKET_TIMEOUT in the outage tests below, seconds.
SOCKET_TIMEOUT = 0.5


def _timed_requests(client: Any, token: str, count: int) -> list[float]:
    from tests.support import bearer

    seconds = []
    for _ in range(count):
        started = time.monotonic()
        response = client.get("/api/default/", **bearer(token))
        seconds.append(time.monotonic() - started)
        assert response.status_code == 200, response.content
    return seconds


@needs_redis
@pytest.mark.django_db
def test_a_stopped_redis_costs_requests_no_time_and_is_used_again_when_back(
    client, upstream, settings, monkeypatch
):
    """A stopped Redis (connection refused): every request is answered as fast as without a
    shared cache, verified by this worker itself; once Redis is back and the remembered outage
    has expired, the shared cache is used again."""
    from rozitech_remote_auth import cache as identity_cache

    monkeypatch.setattr(sharedredis, "DOWN_SECONDS", 1.0)
    monkeypatch.setattr(identity_cache, "BACKEND_RETRY_SECONDS", 1.0)
    port = _free_port()
    proc = _start_redis(port)
    try:
        _shared_cache(settings, f"redis://127.0.0.1:{port}/0")
        settings.AUTH_SERVICE_CACHE_SOCKET_TIMEOUT = SOCKET_TIMEOUT
        token = make_token("u-1", "a@example.com")
        _timed_requests(client, token, 3)
        assert upstream.calls == 1  # from the shared cache after the first

        proc.terminate()
        proc.wait(timeout=10)
        down = _timed_requests(client, token, 30)
        assert upstream.calls == 31  # every request verified by the worker itself
        print(f"\nRedis stopped: slowest {max(down):.3f} s, median {sorted(down)[15]:.3f} s")
        # refused connections: nothing to wait for, not even one socket timeout
        assert max(down) < SOCKET_TIMEOUT
        assert sharedredis.is_down(f"127.0.0.1:{port}")

        proc = _start_redis(port)
        time.sleep(1.1)  # the remembered outage (DOWN_SECONDS, patched to 1 s) expires
        fresh = make_token("u-2", "b@example.com")
        calls = upstream.calls
        _timed_requests(client, fresh, 3)
        assert upstream.calls == calls + 1  # the second and third from the shared cache again
        assert not sharedredis.is_down(f"127.0.0.1:{port}")
    finally:
        caches[conf.SHARED_CACHE_ALIAS].close()
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.django_db
def test_a_blackholed_redis_costs_one_socket_timeout_per_worker_and_window(
    client, upstream, settings, monkeypatch
):
    """A Redis that accepts connections but never answers (a hung server; a blackholed host
    costs the connect timeout the same way): the first request waits one socket timeout, then
    the outage is remembered for every user of that Redis (identity cache, breaker state,
    single-flight, rate-limit budget) and requests take no Redis time until it expires."""
    from rozitech_remote_auth import cache as identity_cache
    from rozitech_remote_auth import sharedflight

    # one window for every layer that remembers the outage (all 5 s in production)
    monkeypatch.setattr(sharedredis, "DOWN_SECONDS", 2.0)
    monkeypatch.setattr(identity_cache, "BACKEND_RETRY_SECONDS", 2.0)
    monkeypatch.setattr(breaker_mod, "SHARED_STATE_RETRY_SECONDS", 2.0)
    monkeypatch.setattr(sharedflight, "RETRY_SECONDS", 2.0)
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(64)  # never accept(): the kernel completes the handshake, nobody answers
    port = hung.getsockname()[1]
    try:
        _shared_cache(settings, f"redis://127.0.0.1:{port}/0")
        settings.AUTH_SERVICE_CACHE_SOCKET_TIMEOUT = SOCKET_TIMEOUT
        token = make_token("u-1", "a@example.com")
        started = time.monotonic()
        seconds = _timed_requests(client, token, 20)
        window = time.monotonic() - started
        print(f"\nRedis hung: first {seconds[0]:.3f} s, then slowest {max(seconds[1:]):.3f} s")
        assert SOCKET_TIMEOUT <= seconds[0] < 2 * SOCKET_TIMEOUT  # one timeout, not one per use
        assert max(seconds[1:]) < SOCKET_TIMEOUT  # not one more timeout
        assert window < sharedredis.DOWN_SECONDS
        assert upstream.calls == 20

        # the window (from the first failure, one socket timeout in) expires: tried once more
        time.sleep(seconds[0] + sharedredis.DOWN_SECONDS - window + 0.1)
        again = _timed_requests(client, token, 5)
        print(f"after the window: first {again[0]:.3f} s, then slowest {max(again[1:]):.3f} s")
        assert SOCKET_TIMEOUT <= again[0] < 2 * SOCKET_TIMEOUT
        assert max(again[1:]) < SOCKET_TIMEOUT
    finally:
        caches[conf.SHARED_CACHE_ALIAS].close()
        hung.close()


# -- the circuit gauge of a worker that fails fast on the shared circuit -----------------------


@needs_redis
def test_the_gauge_of_a_worker_failing_fast_on_the_shared_circuit_says_open(
    upstream, flushed, monkeypatch
):
    """Two breakers over one Redis (two workers or hosts): the first opens the circuit; the
    other, which never saw a failure, fails fast on it and its gauge says open (1)."""
    from prometheus_client import REGISTRY

    upstream.respond(500)
    cfg = _cfg(upstream.url, flushed)
    opener, other = AuthClient(cfg), AuthClient(cfg)
    token = make_token("u-1", "a@example.com")
    for _ in range(4):
        _fail(opener, token)
    assert opener.breaker.current_state == "open"
    # What the other process's gauge says until it learns otherwise (one gauge per process in
    # production; one registry here): closed, and no state refresh due for 5 s.
    breaker_mod.metrics.set_circuit_state("closed")
    monkeypatch.setattr(breaker_mod, "_refreshed_at", time.monotonic())
    assert other.breaker._state.name == "closed"

    assert _fail(other, token) == "open"
    assert upstream.calls == 4  # failed fast: no call
    assert other.breaker._state.name == "open"
    assert REGISTRY.get_sample_value("rozitech_remote_auth_circuit_state") == 1


@needs_redis
def test_the_gauge_says_open_while_another_worker_holds_the_trial_call(
    upstream, flushed, monkeypatch
):
    upstream.respond(500)
    from prometheus_client import REGISTRY

    cfg = _cfg(upstream.url, flushed)
    opener, other = AuthClient(cfg), AuthClient(cfg)
    token = make_token("u-1", "a@example.com")
    for _ in range(4):
        _fail(opener, token)
    time.sleep(1.05)  # past the reset timeout: the next call is the trial call
    storage = opener.breaker._state_storage
    assert storage.acquire_trial(5)  # the opener's trial call is under way
    breaker_mod.metrics.set_circuit_state("closed")
    monkeypatch.setattr(breaker_mod, "_refreshed_at", time.monotonic())
    assert _fail(other, token) == "open"
    assert REGISTRY.get_sample_value("rozitech_remote_auth_circuit_state") == 1
    storage.release_trial()


@pytest.mark.parametrize(
    ("url", "cls"),
    [
        ("redis://cache:6379/0", "GatedConnection"),
        ("rediss://:pw@cache:6380/0", "GatedSSLConnection"),
        ("unix:///run/redis.sock", "GatedUnixDomainSocketConnection"),
    ],
)
def test_each_url_scheme_keeps_its_transport_and_remembers_outages(url, cls):
    import redis

    pool = redis.ConnectionPool.from_url(url, **sharedredis.connection_options(url, 0.25))
    connection = pool.make_connection()
    assert type(connection).__name__ == cls
    assert connection.socket_timeout == 0.25
    assert connection.socket_connect_timeout == 0.25
    assert connection.retry.get_retries() == 1
    pool.disconnect()
