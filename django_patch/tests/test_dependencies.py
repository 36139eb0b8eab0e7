"""The installed dependencies lie inside the ranges pyproject.toml declares.

``breaker.py`` uses private pybreaker attributes and ``transport.py`` overrides urllib3's private
``HTTPConnection._new_conn``; their ranges are bounded to the versions the tests ran on.  This test fails
when the venv holds a version outside a declared range, so a suite that passed was run on a version
the wheel declares.
"""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def _declared() -> list[Requirement]:
    if sys.version_info < (3, 11):
        pytest.skip("tomllib needs Python 3.11")
    import tomllib

    with PYPROJECT.open("rb") as f:
        return [Requirement(line) for line in tomllib.load(f)["project"]["dependencies"]]


def _by_name() -> dict[str, Requirement]:
    return {req.name.lower(): req for req in _declared()}


@pytest.mark.parametrize("name", ["pybreaker", "urllib3"])
def test_private_api_dependencies_have_an_upper_bound(name: str) -> None:
    spec = _by_name()[name].specifier
    assert any(s.operator in ("<", "<=", "==", "~=") for s in spec), f"{name} is unbounded: {spec}"


def test_installed_versions_are_inside_the_declared_ranges() -> None:
    outside = {
        req.name: importlib.metadata.version(req.name)
        for req in _declared()
        if not req.specifier.contains(importlib.metadata.version(req.name), prereleases=True)
    }
    assert outside == {}, f"installed outside pyproject.toml's ranges: {outside}"
