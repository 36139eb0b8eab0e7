"""Small client for the Prometheus HTTP API (``/api/v1``), stdlib only, for the monitoring checks.

Used by ``check_dashboard_queries.py``, ``alert_states.py``, the Molecule scenario of roles/monitoring_stack
and tests/sandbox/proof.py. Every function takes the base URL (``http://127.0.0.1:9090``) and raises
:class:`PromError` on a transport error or a ``status`` other than ``success``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

TIMEOUT = 10.0


class PromError(RuntimeError):
    """The API did not answer, or answered an error (``errorType``/``error`` in the message)."""


def api(base: str, path: str, params: dict[str, str] | None = None, *, method: str = "GET") -> Any:
    """Call ``<base>/api/v1/<path>`` and return its ``data``."""
    url = f"{base.rstrip('/')}/api/v1/{path}"
    body = None
    if params and method == "GET":
        url += "?" + urllib.parse.urlencode(params)
    elif params:
        body = urllib.parse.urlencode(params).encode()
    request = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            payload = json.load(response)
    except urllib.error.HTTPError as exc:
        try:
            payload = json.load(exc)
        except ValueError:
            raise PromError(f"{url}: HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise PromError(f"{url}: {exc}") from exc
    if payload.get("status") != "success":
        raise PromError(f"{path}: {payload.get('errorType')}: {payload.get('error')}")
    return payload["data"]


def query(base: str, expr: str) -> list[dict[str, Any]]:
    """Instant query at now; the result vector (``[{metric, value: [ts, "v"]}]``), scalars as one item."""
    data = api(base, "query", {"query": expr}, method="POST")
    if data["resultType"] in ("scalar", "string"):
        return [{"metric": {}, "value": data["result"]}]
    return data["result"]


def targets(base: str) -> list[dict[str, Any]]:
    """Active scrape targets, each with ``labels.job``, ``scrapeUrl``, ``health`` (up/down/unknown), ``lastError``."""
    return api(base, "targets", {"state": "active"})["activeTargets"]


def rules(base: str) -> list[dict[str, Any]]:
    """Every loaded rule (recording and alerting) with its group name as ``group``."""
    out = []
    for group in api(base, "rules")["groups"]:
        for rule in group["rules"]:
            out.append({**rule, "group": group["name"]})
    return out


def alert_states(base: str) -> list[tuple[str, str, int]]:
    """``(alert name, state, active instances)`` of every alerting rule; state is inactive, pending or firing."""
    return [
        (rule["name"], rule.get("state", "inactive"), len(rule.get("alerts", [])))
        for rule in rules(base)
        if rule.get("type") == "alerting"
    ]
