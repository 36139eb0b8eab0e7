"""gunicorn server hooks for prometheus-client's multiprocess mode.

Use from the gunicorn config file::

    from rozitech_remote_auth.gunicorn_hooks import child_exit, on_starting  # noqa: F401

or as the whole config: ``gunicorn -c python:rozitech_remote_auth.gunicorn_hooks ...``.
``on_starting`` and ``child_exit`` do nothing unless ``PROMETHEUS_MULTIPROC_DIR`` is set;
``when_ready`` starts the private metrics listener (:mod:`.metrics_listener`) in the master
when ``REMOTE_AUTH_METRICS_LISTEN`` is set (a bad address or a failed bind is logged; the app
still starts).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

# Imported in the master at config load, not lazily in child_exit: several workers exiting at once
# raced on a half-initialised prometheus_client.multiprocess (AttributeError: mark_process_dead).
from prometheus_client import multiprocess

__all__ = ["child_exit", "on_starting", "when_ready"]

logger = logging.getLogger("rozitech_remote_auth")


def _multiproc_dir() -> Path | None:
    value = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
    return Path(value) if value else None


def on_starting(server: Any) -> None:
    """Master start: create the directory and delete stale ``*.db`` files of earlier runs."""
    directory = _multiproc_dir()
    if directory is None:
        return
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink(missing_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    """Worker exit: drop the worker's live gauges (``multiprocess.mark_process_dead``)."""
    if _multiproc_dir() is None:
        return
    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def when_ready(server: Any) -> None:
    """Master ready: serve the workers' metrics on ``REMOTE_AUTH_METRICS_LISTEN`` (private only).

    Logged on gunicorn's error log (``server.log``): the address, or why no listener runs.
    """
    from .metrics_listener import ENV_VAR, start_from_env

    try:
        started = start_from_env()
    except (ValueError, OSError) as exc:
        server.log.error("rozitech_remote_auth: metrics listener not started: %s", exc)
        return
    if started is not None:
        server.log.info("rozitech_remote_auth: metrics listener on %s", os.environ[ENV_VAR])
