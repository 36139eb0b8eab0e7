"""Concurrent requests in one process: user-sync races, single-flight, no global serialisation."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client

from rozitech_remote_auth import users
from tests.support import bearer, make_token

pytestmark = pytest.mark.django_db(transaction=True)

User = get_user_model()


def concurrently(count: int, request: Callable[[int], Any]) -> list[Any]:
    """Run ``request(i)`` in ``count`` threads released together; return results in order."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def worker(index: int) -> None:
        try:
            barrier.wait()
            results[index] = request(index)
        except Exception as exc:  # reported through results
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_ten_concurrent_first_logins_make_one_user(upstream, monkeypatch, settings):
    settings.AUTH_SERVICE_BULKHEAD_SLOTS = 0  # ten calls at once, as with ten hosts
    upstream.profiles["u-new"] = {"firstName": "Nina", "lastName": "New"}
    # ten different tokens of the same new user: no single-flight, ten syncs racing
    tokens = [make_token("u-new", "nina@example.com", jti=str(i)) for i in range(10)]
    # force the race: all ten have looked the user up (not found) before any creates it
    gate = threading.Barrier(10, timeout=10)
    real_create = users._create

    def racing_create(*args):
        gate.wait()
        return real_create(*args)

    monkeypatch.setattr(users, "_create", racing_create)

    results = concurrently(10, lambda i: Client().get("/api/default/", **bearer(tokens[i])))

    statuses = [getattr(r, "status_code", r) for r in results]
    assert statuses == [200] * 10
    assert upstream.calls == 10
    assert User.objects.filter(email__iexact="nina@example.com").count() == 1
    assert len({r.json()["pk"] for r in results}) == 1
    assert {r.json()["first_name"] for r in results} == {"Nina"}


def test_ten_concurrent_requests_with_one_uncached_token_make_one_upstream_call(upstream):
    upstream.delay = 0.3
    token = make_token("u-sf", "single@example.com")

    results = concurrently(10, lambda i: Client().get("/api/default/", **bearer(token)))

    assert [getattr(r, "status_code", r) for r in results] == [200] * 10
    assert upstream.calls == 1
    assert {r.json()["email"] for r in results} == {"single@example.com"}
    assert User.objects.count() == 1


def test_single_flight_shares_failures_too(upstream):
    upstream.delay = 0.3
    upstream.respond(503)
    token = make_token("u-sf", "single@example.com")

    results = concurrently(5, lambda i: Client().get("/api/default/", **bearer(token)))

    assert [getattr(r, "status_code", r) for r in results] == [503] * 5
    assert all(r["Retry-After"] == "5" for r in results)
    assert upstream.calls == 1


def test_different_tokens_are_verified_in_parallel(upstream, settings):
    """The breaker must not hold a lock across the upstream call (bulkhead off: it would bound
    the calls on purpose)."""
    settings.AUTH_SERVICE_BULKHEAD_SLOTS = 0
    upstream.delay = 0.4
    tokens = [make_token(f"u-p{i}", f"p{i}@example.com") for i in range(4)]

    started = time.monotonic()
    results = concurrently(4, lambda i: Client().get("/api/default/", **bearer(tokens[i])))
    elapsed = time.monotonic() - started

    assert [getattr(r, "status_code", r) for r in results] == [200] * 4
    assert upstream.calls == 4
    assert elapsed < 0.4 * 2.5, elapsed  # serialised would take >= 1.6 s
