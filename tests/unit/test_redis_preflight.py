"""roles/remote_auth/files/redis_preflight.py: one line per problem, never a piece of the password."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "roles/remote_auth/files/redis_preflight.py"


def run(url: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, REMOTE_AUTH_CACHE_URL=url)
    return subprocess.run([sys.executable, str(SCRIPT), "1"], env=env, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize(
    ("url", "secret", "expected"),
    [
        # An unencoded '#' or '/' in the password made urlsplit quote the password's first characters.
        ("redis://:S3c#ret@nowhere.invalid:6379/0", "S3c", "the Redis URL failed at url: the URL cannot be parsed"),
        ("redis://:pQ7/ss@nowhere.invalid:6379/0", "pQ7", "the Redis URL failed at url: the URL cannot be parsed"),
        ("redis://nowhere.invalid:99999/0", None, "the Redis URL failed at url: the URL cannot be parsed"),
        ("redis://[::1", None, "the Redis URL failed at url: the URL cannot be parsed"),
        ("nowhere.invalid:6379", None, "the Redis URL failed at url: the URL must start with redis://"),
        (
            "redis://:pw-not-logged@nowhere.invalid:6379/0",
            "pw-not-logged",
            "Redis at nowhere.invalid:6379 failed at resolve",
        ),
    ],
)
def test_bad_urls_give_one_line_without_the_password(url, secret, expected):
    done = run(url)
    assert done.returncode == 1
    assert done.stderr == "", "no traceback"
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), lines
    if secret:
        assert secret not in done.stdout
