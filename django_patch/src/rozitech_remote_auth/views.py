"""Prometheus exposition of the patch's metrics (text format 0.0.4).

``GET <prefix>/metrics/`` → 200 ``text/plain; version=0.0.4``.  With ``PROMETHEUS_MULTIPROC_DIR``
set (gunicorn, several workers) the values of all workers are aggregated from that directory
(``prometheus_client.multiprocess.MultiProcessCollector``); otherwise the process registry is
served.  A plain Django view: no DRF authentication runs on it; restrict access at nginx.
"""

from __future__ import annotations

import os

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from . import metrics  # noqa: F401 - registers the metrics in this process
from .breaker import refresh_state
from .client import current_client

__all__ = ["metrics_view"]


def _render() -> bytes:
    client = current_client()
    if client is not None:  # a worker that never verified has no breaker: nothing to publish
        refresh_state(client.breaker, force=True)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Serve all metrics of this process (or of all workers in multiprocess mode)."""
    return HttpResponse(_render(), content_type=CONTENT_TYPE_LATEST)
