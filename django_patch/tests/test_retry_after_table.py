"""``Retry-After`` as the patch reads it: the repository's shared case table, in several Django TIME_ZONEs.

The exporter's test suite runs the same table (``tests/shared/retry_after_cases.json``) against its own
parser, so both read an HTTP-date the same way (UTC, all three RFC 9110 forms, clamped).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from rozitech_remote_auth.retry_after import MAX_RETRY_AFTER, parse_retry_after, retry_after_seconds

TABLE = json.loads(
    (
        Path(__file__).resolve().parents[2] / "tests" / "shared" / "retry_after_cases.json"
    ).read_text()
)


@pytest.fixture(params=TABLE["zones"])
def time_zone(request: pytest.FixtureRequest, settings: Any) -> str:
    """Django's TIME_ZONE (which sets the process's TZ, like at startup) for the test."""
    settings.TIME_ZONE = request.param
    assert time.tzname[0]  # tzset ran
    return str(request.param)


@pytest.mark.parametrize("case", TABLE["cases"], ids=lambda case: case["name"])
def test_shared_retry_after_table(case: dict[str, Any], time_zone: str) -> None:
    assert retry_after_seconds(case["value"], TABLE["now"]) == case["seconds"]
    assert TABLE["max"] == MAX_RETRY_AFTER


def test_asctime_retry_after_is_120_in_amsterdam_and_chicago(settings: Any) -> None:
    """urllib3#1896: 120 s ahead in asctime form gave 1 in Europe/Amsterdam and 3600 in Chicago."""
    now = TABLE["now"]
    for zone in ("Europe/Amsterdam", "America/Chicago"):
        settings.TIME_ZONE = zone
        assert time.localtime(now).tm_gmtoff != 0
        assert parse_retry_after({"Retry-After": "Sun Nov 29 15:01:54 2026"}, now) == 120
