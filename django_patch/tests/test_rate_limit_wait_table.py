"""How long to wait after a 429/503, from the auth server's headers: the repository's shared case table.

The exporter's test suite runs the same table (``tests/shared/rate_limit_wait_cases.json``) against its own
parser: ``cases`` both must answer alike; ``differences`` are known ones, each side tested with its own value.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from requests.structures import CaseInsensitiveDict

from rozitech_remote_auth.retry_after import MAX_RETRY_AFTER, parse_retry_after

TABLE = json.loads(
    (
        Path(__file__).resolve().parents[2] / "tests" / "shared" / "rate_limit_wait_cases.json"
    ).read_text()
)


@pytest.mark.parametrize("case", TABLE["cases"], ids=lambda case: case["name"])
def test_shared_wait_table(case: dict[str, Any]) -> None:
    headers = CaseInsensitiveDict(case["headers"])
    assert parse_retry_after(headers, TABLE["now"]) == case["seconds"]
    assert TABLE["max"] == MAX_RETRY_AFTER


@pytest.mark.parametrize("case", TABLE["differences"], ids=lambda case: case["name"])
def test_known_differences_patch_side(case: dict[str, Any]) -> None:
    assert case["patch"] != case["exporter"], "no longer a difference: move it to cases"
    assert parse_retry_after(CaseInsensitiveDict(case["headers"]), TABLE["now"]) == case["patch"]
