"""How long to wait after a 429/503, from the auth server's headers: the repository's shared case table.

The Django patch's test suite runs the same table (``tests/shared/rate_limit_wait_cases.json``) against its
``parse_retry_after``: ``cases`` both must answer alike; ``differences`` are known ones, each side tested with
its own value.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from rozitech_auth_exporter.ratelimit import RETRY_AFTER_MAX, RETRY_AFTER_MIN, parse_rate_limit

from .conftest import REPO

TABLE = json.loads((REPO / "tests" / "shared" / "rate_limit_wait_cases.json").read_text())


def wait_seconds(headers: dict[str, str]) -> int | None:
    """The exporter's backoff after a 429 with ``headers``, as whole seconds clamped like the patch's."""
    parsed = parse_rate_limit(headers, TABLE["now"], 429)
    backoff = parsed.backoff_seconds() if parsed else None
    if backoff is None:
        return None
    return int(min(TABLE["max"], max(TABLE["min"], math.ceil(min(backoff, TABLE["max"])))))


@pytest.mark.parametrize("case", TABLE["cases"], ids=lambda case: case["name"])
def test_shared_wait_table(case: dict[str, Any]) -> None:
    assert wait_seconds(case["headers"]) == case["seconds"]
    assert (RETRY_AFTER_MIN, RETRY_AFTER_MAX) == (TABLE["min"], TABLE["max"])


@pytest.mark.parametrize("case", TABLE["differences"], ids=lambda case: case["name"])
def test_known_differences_exporter_side(case: dict[str, Any]) -> None:
    assert case["patch"] != case["exporter"], "no longer a difference: move it to cases"
    assert wait_seconds(case["headers"]) == case["exporter"]
