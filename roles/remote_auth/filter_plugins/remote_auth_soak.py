"""Filter of the remote_auth role's soak (tasks/soak.yml): what the patch's metrics did between two readings.

``remote_auth_soak_delta(start_text, end_text, excluded_reasons)`` parses two readings of the private
metrics listener (Prometheus text format, with ``prometheus_client.parser`` on the controller) and returns::

    {"requests": int,      # increase of rozitech_remote_auth_cache_requests_total
                           # + rozitech_remote_auth_verify_failures_total{reason="malformed"}
                           # (every request whose Bearer token the patch looked at)
     "failures": int,      # increase of rozitech_remote_auth_verify_failures_total over the
                           # reasons NOT in excluded_reasons
     "ratio": float,       # failures / requests (0.0 when requests is 0)
     "by_reason": {reason: increase},   # every reason that increased (excluded ones too)
     "excluded": [reason, ...]}

A counter that went down between the readings (the app restarted, its multiprocess directory was emptied)
counts from zero: its increase is the second reading, as Prometheus' increase() does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

LOOKUPS = "rozitech_remote_auth_cache_requests_total"
FAILURES = "rozitech_remote_auth_verify_failures_total"


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text or ""):
        for sample in family.samples:
            if sample.name in (LOOKUPS, FAILURES):
                key = (sample.name, tuple(sorted(sample.labels.items())))
                values[key] = values.get(key, 0.0) + sample.value
    return values


def _increase(start: float | None, end: float) -> float:
    if start is None or end < start:
        return end
    return end - start


def soak_delta(start_text: str, end_text: str, excluded_reasons: Iterable[str] = ()) -> dict[str, Any]:
    """What happened between two readings of the metrics listener (see the module docstring)."""
    excluded = sorted(set(excluded_reasons))
    start, end = _samples(start_text), _samples(end_text)
    lookups = 0.0
    by_reason: dict[str, int] = {}
    for key, value in end.items():
        name, labels = key
        increase = _increase(start.get(key), value)
        if name == LOOKUPS:
            lookups += increase
        else:
            reason = dict(labels).get("reason", "")
            if increase > 0:
                by_reason[reason] = by_reason.get(reason, 0) + round(increase)
    requests = round(lookups) + by_reason.get("malformed", 0)
    failures = sum(count for reason, count in by_reason.items() if reason not in excluded)
    return {
        "requests": requests,
        "failures": failures,
        "ratio": round(failures / requests, 4) if requests else 0.0,
        "by_reason": dict(sorted(by_reason.items())),
        "excluded": excluded,
    }


class FilterModule:
    """remote_auth_soak_delta."""

    def filters(self) -> dict[str, Any]:
        return {"remote_auth_soak_delta": soak_delta}
