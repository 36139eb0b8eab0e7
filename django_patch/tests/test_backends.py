"""The identity tests again on a real PostgreSQL and with a custom ``AUTH_USER_MODEL``.

Production runs PostgreSQL (a value too long for a column is a ``DataError`` there, a NUL byte is
refused; SQLite takes both), and apps have their own user models.  pytest-django fixes the database
and the user model per process, so each combination runs the identity modules in a pytest
subprocess (``tests/settings.py`` reads ``ROZITECH_TEST_POSTGRES`` / ``ROZITECH_TEST_USER_MODEL``)
against a PostgreSQL that :mod:`tests.pg` starts on a private port and removes afterwards.

PostgreSQL must be installed (Debian ``postgresql``; ``.ci/run`` installs it): under CI a missing
PostgreSQL is a failure, elsewhere a skip saying what to install.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pg import PostgresServer, bindir

ROOT = Path(__file__).resolve().parents[1]
GENERIC = ["tests/test_identity_links.py", "tests/test_identity_fuzz.py"]
DEFAULT_MODEL_ONLY = ["tests/test_authentication.py", "tests/test_concurrency.py"]


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    if bindir() is None:
        message = "PostgreSQL is not installed: apt-get install postgresql (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    server = PostgresServer().start()
    try:
        yield server.address
    finally:
        server.stop()


def run_suite(files: list[str], **env: str) -> str:
    """Run ``files`` in a pytest subprocess with ``env``; the summary line, asserted all-pass."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *files],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    summary = output.strip().splitlines()[-1] if output.strip() else ""
    failed = [line for line in output.splitlines() if line.startswith(("FAILED", "ERROR"))]
    assert result.returncode == 0, "\n".join(failed) + "\n" + output[-6000:]
    assert re.search(r"\d+ passed", summary), summary
    assert not re.search(r"skipped|failed|error", summary), summary
    return summary


def test_identity_tests_on_sqlite_with_a_custom_user_model() -> None:
    run_suite(GENERIC, ROZITECH_TEST_USER_MODEL="custom")


def test_identity_tests_on_postgresql(postgres: str) -> None:
    run_suite(GENERIC + DEFAULT_MODEL_ONLY, ROZITECH_TEST_POSTGRES=postgres)


def test_identity_tests_on_postgresql_with_a_custom_user_model(postgres: str) -> None:
    run_suite(GENERIC, ROZITECH_TEST_POSTGRES=postgres, ROZITECH_TEST_USER_MODEL="custom")
