"""Metrics view, multiprocess aggregation, gunicorn hooks, and no PII in labels or logs."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from rest_framework_simplejwt.tokens import AccessToken

from rozitech_remote_auth import gunicorn_hooks
from tests.support import bearer, failures, link_refusals, make_token

ROOT = Path(__file__).resolve().parents[1]
NAMES = (
    "rozitech_remote_auth_verify_duration_seconds_bucket",
    "rozitech_remote_auth_verify_requests_total",
    "rozitech_remote_auth_verify_failures_total",
    "rozitech_remote_auth_cache_requests_total",
    "rozitech_remote_auth_cache_hits_total",
    "rozitech_remote_auth_circuit_state",
)


def test_metrics_view_serves_all_metrics_without_auth(client):
    response = client.get("/metrics/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    for name in NAMES:
        assert name in text
    for reason in (
        "invalid",
        "forbidden",
        "rate_limited",
        "unavailable",
        "timeout",
        "circuit_open",
        "malformed",
    ):
        assert f'rozitech_remote_auth_verify_failures_total{{reason="{reason}"}}' in text


def test_metrics_view_is_get_only(client):
    assert client.post("/metrics/").status_code == 405


@pytest.mark.django_db
def test_no_token_email_or_user_id_in_labels_or_logs(client, upstream, settings, caplog):
    caplog.set_level(logging.DEBUG)
    secret_id, secret_email = "uid-7f3a9c", "private.person@example.com"
    token = make_token(secret_id, secret_email)
    rejected = make_token(secret_id, secret_email, secret="another-secret-0123456789-abcdef")
    client.get("/api/default/", **bearer(token))  # success
    client.get("/api/default/", **bearer(token))  # cache hit
    client.get("/api/default/", **bearer(rejected))  # 401
    client.get("/api/default/", HTTP_AUTHORIZATION=f"Bearer {token} {token}")  # malformed
    upstream.respond(429, {"success": False}, {"Retry-After": "30"})
    client.get("/api/default/", **bearer(make_token(secret_id, secret_email, jti="2")))
    upstream.respond(200, {"user": {"id": secret_id}})  # outside the contract
    client.get("/api/default/", **bearer(make_token(secret_id, secret_email, jti="3")))
    refused = link_refusals("linked_to_other")
    upstream.behaviour = None  # a refused link: the e-mail's local user is linked to another id
    client.get("/api/default/", **bearer(make_token("uid-other-9", secret_email, jti="4")))
    assert link_refusals("linked_to_other") == refused + 1
    upstream.respond(502, {"success": False})
    for index in range(settings.AUTH_SERVICE_BREAKER_FAIL_MAX + 1):  # trips, then fails fast
        client.get("/api/default/", **bearer(make_token(secret_id, secret_email, jti=str(index))))
    assert failures("circuit_open") >= 1

    logged = "\n".join(
        f"{record.getMessage()} {record.exc_text or ''}" for record in caplog.records
    )
    exposition = client.get("/metrics/").content.decode()
    for secret in (
        token,
        rejected,
        token[40:80],
        secret_id,
        "uid-other-9",
        secret_email,
        "private.person",
    ):
        assert secret not in logged
        assert secret not in exposition
    assert "rozitech_remote_auth" in {record.name for record in caplog.records}


@pytest.mark.django_db
def test_simplejwt_tokens_are_not_counted(client, upstream, django_user_model):
    user = django_user_model.objects.create(username="local")
    before = failures("invalid") + failures("malformed")
    client.get("/api/default/", **bearer(str(AccessToken.for_user(user))))
    assert failures("invalid") + failures("malformed") == before


# -- multiprocess mode (gunicorn) ------------------------------------------------------------------

WORKER = """
import os, django
django.setup()
from rozitech_remote_auth import metrics
metrics.record_failure("timeout", 0.2)
metrics.record_success(0.01)
metrics.set_circuit_state("{state}")
print(os.getpid())
"""

RENDER = """
import django
django.setup()
from django.test import RequestFactory
from rozitech_remote_auth.views import metrics_view
print(metrics_view(RequestFactory().get("/metrics/")).content.decode())
"""


def python(code: str, multiproc_dir: Path) -> str:
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir),
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
    }
    done = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.stdout


def test_multiprocess_values_are_aggregated_across_workers(tmp_path, monkeypatch):
    first = int(python(WORKER.format(state="closed"), tmp_path))
    second = int(python(WORKER.format(state="open"), tmp_path))
    assert list(tmp_path.glob("*.db"))

    text = python(RENDER, tmp_path)
    assert 'rozitech_remote_auth_verify_failures_total{reason="timeout"} 2.0' in text
    assert 'rozitech_remote_auth_verify_requests_total{result="success"} 2.0' in text
    assert "rozitech_remote_auth_verify_duration_seconds_count 4.0" in text
    # livemostrecent gauge: the newest write wins (the second worker opened its circuit last);
    # a dead process's file counts until child_exit marks it dead
    assert "rozitech_remote_auth_circuit_state 1.0" in text

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    gunicorn_hooks.child_exit(None, SimpleNamespace(pid=second))
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    assert not list(tmp_path.glob(f"gauge_livemostrecent_{second}.db"))
    assert list(tmp_path.glob(f"gauge_livemostrecent_{first}.db"))
    text = python(RENDER, tmp_path)
    assert "rozitech_remote_auth_circuit_state 0.0" in text
    assert 'rozitech_remote_auth_verify_failures_total{reason="timeout"} 2.0' in text


def test_on_starting_wipes_stale_files(tmp_path, monkeypatch):
    target = tmp_path / "prom"
    target.mkdir()
    (target / "counter_123.db").write_bytes(b"stale")
    (target / "keep.txt").write_text("not ours")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(target))
    gunicorn_hooks.on_starting(None)
    assert sorted(p.name for p in target.iterdir()) == ["keep.txt"]
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "new"))
    gunicorn_hooks.on_starting(None)
    assert (tmp_path / "new").is_dir()


def test_hooks_do_nothing_without_multiproc_dir(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    gunicorn_hooks.on_starting(None)
    gunicorn_hooks.child_exit(None, SimpleNamespace(pid=1))


def test_duration_histogram_and_reason_validation():
    from rozitech_remote_auth import metrics

    before = metrics.VERIFY_DURATION._sum.get()
    metrics.record_success(0.25)
    assert metrics.VERIFY_DURATION._sum.get() == pytest.approx(before + 0.25)
    with pytest.raises(ValueError, match="unknown failure reason"):
        metrics.record_failure("oops")


def test_child_exit_imports_nothing_while_gunicorn_reaps(tmp_path, monkeypatch):
    """gunicorn calls child_exit from its SIGCHLD handling, possibly re-entered while another
    worker's exit is handled: an import there raced on a half-initialised
    ``prometheus_client.multiprocess`` (AttributeError, ``mark_process_dead`` skipped).  The hook
    must run without executing any import statement."""
    import builtins

    live = tmp_path / "gauge_livemostrecent_4242.db"
    live.write_bytes(b"x")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    real_import = builtins.__import__
    imported: list[str] = []

    def recording_import(name, *args, **kwargs):
        imported.append(name)
        return real_import(name, *args, **kwargs)

    builtins.__import__ = recording_import
    try:
        gunicorn_hooks.child_exit(None, SimpleNamespace(pid=4242))
    finally:
        builtins.__import__ = real_import
    assert imported == []
    assert not live.exists()


def test_loading_the_hooks_as_gunicorn_config_imports_multiprocess_up_front():
    """``--config python:rozitech_remote_auth.gunicorn_hooks`` loads the module in the master
    before any worker exists: by then ``mark_process_dead`` must be importable and bound."""
    code = (
        "import importlib, sys\n"
        "assert 'prometheus_client.multiprocess' not in sys.modules\n"
        "hooks = importlib.import_module('rozitech_remote_auth.gunicorn_hooks')\n"
        "module = sys.modules['prometheus_client.multiprocess']\n"
        "print(hooks.multiprocess is module, callable(module.mark_process_dead))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"},
            "PYTHONPATH": str(ROOT / "src"),
        },
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True"]
