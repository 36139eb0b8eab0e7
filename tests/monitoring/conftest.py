"""pytest fixtures of the monitoring checks; the helpers live in monitoring_helpers.py."""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="session")
def promtool() -> str:
    path = shutil.which("promtool")
    if not path:
        pytest.fail(
            "promtool is missing: apt-get install -y prometheus (Debian 12 gives promtool 2.42; .ci/run does it)"
        )
    return path
