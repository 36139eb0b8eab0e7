"""One contract per setting: the role remote_auth and the patch agree on every .env key the role writes.

The Ansible side: the table ``__remote_auth_env_keys`` (roles/remote_auth/vars/main.yml: key, variable, check),
the variables' defaults (meta/argument_specs.yml, defaults/main.yml) and preflight.yml's checks of the numbers,
evaluated here by Ansible's own templating. The patch side: ``conf.parse_settings`` and the system check E003
(``checks._timeouts``). Every key: the patch reads it, with the role's default; every value: both sides accept
or both refuse it (two deliberate differences, listed below with their reason).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles/remote_auth"
sys.path.insert(0, str(ROOT / "django_patch/src"))

from rozitech_remote_auth import checks, conf  # noqa: E402  (django_patch/src, put on the path above)

TABLE: dict[str, dict[str, Any]] = yaml.safe_load((ROLE / "vars/main.yml").read_text())["__remote_auth_env_keys"]
SPEC = yaml.safe_load((ROLE / "meta/argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
DEFAULTS = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
PREFLIGHT = {task["name"]: task for task in yaml.safe_load((ROLE / "tasks/preflight.yml").read_text())}
NUMBERS_TASK = next(t for n, t in PREFLIGHT.items() if n.startswith("Check the numbers written to .env"))
ORDER_TASK = next(t for n, t in PREFLIGHT.items() if n.startswith("Check the timeouts' order"))

#: Settings of the patch the role has no variable for (set with remote_auth_extra_env).
PATCH_ONLY = {
    "AUTH_SERVICE_LINK_BY_EMAIL",
    "AUTH_SERVICE_LINK_REQUIRE_VERIFIED_EMAIL",
    "AUTH_SERVICE_LINK_PRIVILEGED",
    # The bulkhead, the adaptive read timeout and the rate-limit-aware caching (issue 14): the patch's
    # defaults are the production defaults; no role variable yet.
    "AUTH_SERVICE_BULKHEAD_SLOTS",
    "AUTH_SERVICE_BULKHEAD_WAIT",
    "AUTH_SERVICE_BULKHEAD_DIR",
    "AUTH_SERVICE_ADAPTIVE_TIMEOUT_MIN",
    "AUTH_SERVICE_RATELIMIT_LOW_RATIO",
    "AUTH_SERVICE_MAX_STALENESS",
}
URL = "https://auth.example.com"
TIMEOUT_KEYS = ("AUTH_SERVICE_CONNECT_TIMEOUT", "AUTH_SERVICE_TIMEOUT", "AUTH_SERVICE_TOTAL_TIMEOUT")


def env_text(value: Any) -> str:
    """A value as configure.yml writes it into .env."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def test_every_key_the_role_writes_is_a_setting_of_the_patch() -> None:
    assert set(TABLE) <= set(conf.SETTING_KEYS), set(TABLE) - set(conf.SETTING_KEYS)
    assert set(TABLE) | PATCH_ONLY == set(conf.SETTING_KEYS)
    assert [k for k in conf.SETTING_KEYS if k in TABLE] == list(TABLE), "the table follows conf.py's order"


@pytest.mark.parametrize("key", list(TABLE))
def test_the_variable_is_documented_with_the_key(key: str) -> None:
    option = SPEC[TABLE[key]["var"]]
    assert key in " ".join(option["description"]) if isinstance(option["description"], list) else option["description"]
    assert TABLE[key]["check"] in {"url", "redis_url", "str", "bool", "seconds", "count"}


@pytest.mark.parametrize("key", list(TABLE))
def test_the_role_default_is_the_patch_default(key: str) -> None:
    var = TABLE[key]["var"]
    field = conf._FIELD_BY_KEY[key]
    field_default = conf.RemoteAuthSettings.__dataclass_fields__[field].default
    if SPEC[var].get("required"):
        assert key == "AUTH_SERVICE_URL"
        assert var not in DEFAULTS
        with pytest.raises(conf.RemoteAuthConfigError):
            conf.parse_settings({})
        return
    assert DEFAULTS[var] == SPEC[var]["default"]
    parsed = conf.parse_settings({"AUTH_SERVICE_URL": URL, key: env_text(SPEC[var]["default"])})
    assert getattr(parsed, field) == field_default, (
        f"{var}={SPEC[var]['default']!r} but {key} defaults to {field_default!r}"
    )


# -- ranges ---------------------------------------------------------------------------------------------

SECONDS_CASES = [-1, 0, "0", 0.001, 0.5, 1, "2.5", 10, 10.5, 30, 60, 60.5, 61, 3600, "soon"]
COUNT_CASES = [-1, 0, "0", 1, 2, 1.5, "1.5", 30, 300, 86400, "many"]

#: Values the role refuses and the patch would take: (key or "*", value) -> why the role is stricter.
ROLE_STRICTER = {
    (
        "AUTH_SERVICE_CACHE_SOCKET_TIMEOUT",
        10.5,
    ): "a Redis timeout above 10 s makes every request wait that long in a Redis outage",
    ("AUTH_SERVICE_CACHE_SOCKET_TIMEOUT", 30): "same",
    ("AUTH_SERVICE_CACHE_SOCKET_TIMEOUT", 60): "same",
    ("AUTH_SERVICE_CACHE_SOCKET_TIMEOUT", 60.5): "same",
    ("AUTH_SERVICE_CACHE_SOCKET_TIMEOUT", 61): "same",
    ("AUTH_SERVICE_CACHE_SOCKET_TIMEOUT", 3600): "same",
}


def templar(variables: dict[str, Any]) -> Templar:
    return Templar(loader=DataLoader(), variables=variables)


def role_accepts(key: str, value: Any) -> bool:
    """preflight.yml's checks of this key (and, for a timeout, of the timeouts' order), run by Ansible."""
    variables: dict[str, Any] = {TABLE[k]["var"]: DEFAULTS[TABLE[k]["var"]] for k in TIMEOUT_KEYS}
    if key in TIMEOUT_KEYS:
        variables.update(_clamped_timeouts(key, value, role=True))
    item = {"key": key, "value": TABLE[key]}
    engine = templar({**variables, "item": item, "_remote_auth_value": value})
    if not engine.evaluate_conditional(trust_as_template(NUMBERS_TASK["ansible.builtin.assert"]["that"])):
        return False
    if key in TIMEOUT_KEYS:
        return all(
            engine.evaluate_conditional(trust_as_template(c)) for c in ORDER_TASK["ansible.builtin.assert"]["that"]
        )
    return True


def _clamped_timeouts(key: str, value: Any, *, role: bool) -> dict[str, Any]:
    """The three timeouts with ``key`` = value and the other two keeping connect <= read <= total when they can."""
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    defaults = {k: float(DEFAULTS[TABLE[k]["var"]]) for k in TIMEOUT_KEYS}
    connect, read, total = (defaults[k] for k in TIMEOUT_KEYS)
    if number > 0:
        if key == "AUTH_SERVICE_CONNECT_TIMEOUT":
            read, total = max(read, number), max(total, number)
        elif key == "AUTH_SERVICE_TIMEOUT":
            connect, total = min(connect, number), max(total, number)
        else:
            connect, read = min(connect, number), min(read, number)
    values = dict(zip(TIMEOUT_KEYS, (connect, read, total), strict=True))
    values[key] = value
    return {TABLE[k]["var"] if role else k: v for k, v in values.items()}


def patch_accepts(key: str, value: Any) -> bool:
    """conf.parse_settings of the .env text, and for a timeout the system check E003."""
    raw = {"AUTH_SERVICE_URL": URL, key: env_text(value)}
    if key in TIMEOUT_KEYS:
        raw.update({k: env_text(v) for k, v in _clamped_timeouts(key, value, role=False).items()})
    try:
        parsed = conf.parse_settings(raw)
    except conf.RemoteAuthConfigError:
        return False
    return key not in TIMEOUT_KEYS or not checks._timeouts(parsed)


NUMBER_CASES = [
    (key, value)
    for key, entry in TABLE.items()
    if entry["check"] in {"seconds", "count"}
    for value in (SECONDS_CASES if entry["check"] == "seconds" else COUNT_CASES)
]


@pytest.mark.parametrize(("key", "value"), NUMBER_CASES, ids=[f"{k}={v}" for k, v in NUMBER_CASES])
def test_the_role_and_the_patch_accept_the_same_numbers(key: str, value: Any) -> None:
    role, patch = role_accepts(key, value), patch_accepts(key, value)
    if (key, value) in ROLE_STRICTER:
        assert (role, patch) == (False, True), ROLE_STRICTER[(key, value)]
    else:
        verdict = {True: "accepts", False: "refuses"}
        assert role == patch, f"{key}={value!r}: preflight {verdict[role]}, the patch {verdict[patch]}"


def test_the_range_cases_reach_both_verdicts() -> None:
    """The cases above are not all accepted or all refused (a broken evaluation cannot pass)."""
    verdicts = {role_accepts(k, v) for k, v in NUMBER_CASES}
    assert verdicts == {True, False}
    assert role_accepts("AUTH_SERVICE_TIMEOUT", 61) is False
    assert role_accepts("AUTH_SERVICE_RETRY_AFTER", 0) is False
    assert role_accepts("AUTH_SERVICE_CACHE_TTL", 0) is True


def test_the_generated_docs_and_defaults_are_current() -> None:
    """tools/role_docs.py --check: the variable tables, the .env defaults and the patch's settings table."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools/role_docs.py"), "--check"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


# -- URLs -----------------------------------------------------------------------------------------------

URL_TASK = PREFLIGHT["Check the auth server variables"]
REDIS_TASK = next(t for n, t in PREFLIGHT.items() if n.startswith("Check the shared cache URL"))

#: (value, role accepts, patch accepts): the role wants a bare base URL; the patch is more lenient.
SERVICE_URL_CASES = [
    ("https://auth.example.com", True, True),
    ("https://auth.example.com/", True, True),
    ("http://10.0.0.5:4000", True, True),
    ("https://auth.example.com:65535", True, True),
    ("https://auth.example.com:65536", False, False),
    ("https://auth.example.com:99999", False, False),
    ("ftp://auth.example.com", False, False),
    ("https://user:secret@auth.example.com", False, False),
    ("https://auth.example.com?x=1", False, False),
    ("https://", False, False),
    ("not-a-url", False, False),
    # the role is stricter: a base URL without a path (the client appends /api/auth/me; the patch warns, W004)
    ("https://auth.example.com/api", False, True),
    # the role is stricter: host names and IPv4 only
    ("https://[::1]:4000", False, True),
]

#: (value, role's assert accepts, patch accepts)
CACHE_URL_CASES = [
    ("", True, True),
    ("redis://redis.internal:6379/0", True, True),
    ("rediss://:secret@redis.internal:6380/1", True, True),
    ("unix:///run/redis/redis.sock", True, True),
    ("http://redis.internal:6379", False, False),
    ("redis://", False, False),
    ("redis.internal:6379", False, False),
    # a bad port passes this assert; preflight's connection check (files/redis_preflight.py, before any change)
    # refuses it: "the URL cannot be parsed" (tests/unit/test_redis_preflight.py)
    ("redis://redis.internal:99999/0", True, False),
]


def role_accepts_url(task: dict[str, Any], var: str, value: str) -> bool:
    engine = templar({var: value})
    return all(engine.evaluate_conditional(trust_as_template(c)) for c in task["ansible.builtin.assert"]["that"])


def patch_accepts_url(key: str, value: str) -> bool:
    raw = {"AUTH_SERVICE_URL": URL, key: value}
    try:
        conf.parse_settings(raw)
    except conf.RemoteAuthConfigError:
        return False
    return True


@pytest.mark.parametrize(("value", "role", "patch"), SERVICE_URL_CASES, ids=[c[0] for c in SERVICE_URL_CASES])
def test_the_service_url_rules(value: str, role: bool, patch: bool) -> None:
    assert role_accepts_url(URL_TASK, "remote_auth_service_url", value) is role
    assert patch_accepts_url("AUTH_SERVICE_URL", value) is patch


@pytest.mark.parametrize(("value", "role", "patch"), CACHE_URL_CASES, ids=[c[0] or "empty" for c in CACHE_URL_CASES])
def test_the_cache_url_rules(value: str, role: bool, patch: bool) -> None:
    assert role_accepts_url(REDIS_TASK, "remote_auth_cache_url", value) is role
    assert patch_accepts_url("AUTH_SERVICE_CACHE_URL", value) is patch


# -- one line per .env key ------------------------------------------------------------------------------

ONE_LINE_TASK = PREFLIGHT["Check every value written to .env is one line (no control characters)"]
EXTRA_ENV_TASK = PREFLIGHT["Check remote_auth_extra_env (names like AUTH_SERVICE_X, one-line values)"]


def assert_holds(task: dict[str, Any], variables: dict[str, Any]) -> bool:
    that = task["ansible.builtin.assert"]["that"]
    engine = templar(variables)
    return all(engine.evaluate_conditional(trust_as_template(c)) for c in ([that] if isinstance(that, str) else that))


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("rozitech-saas-admin", True),
        ("", True),
        ("https://auth.example.com", True),
        ("ua\nAUTH_SERVICE_BRIDGE_SIMPLEJWT=false", False),
        ("ua\rAUTH_SERVICE_ISSUER=x", False),
        ("tab\tinside", False),
        ("nul\x00", False),
    ],
)
def test_a_value_with_a_line_break_never_reaches_env(value: str, ok: bool) -> None:
    """A line break would make configure.yml's KEY=value line write a second key (seen: ISSUER smuggling)."""
    entry = {"key": "AUTH_SERVICE_ISSUER", "value": TABLE["AUTH_SERVICE_ISSUER"]}
    assert assert_holds(ONE_LINE_TASK, {"item": entry, "_remote_auth_value": value}) is ok


@pytest.mark.parametrize(
    ("key", "value", "ok"),
    [
        ("AUTH_SERVICE_BULKHEAD_SLOTS", "2", True),
        ("AUTH_SERVICE_MAX_STALENESS", 600, True),
        ("AUTH_SERVICE_X", "a\nAUTH_SERVICE_URL=https://evil.example", False),
        ("AUTH SERVICE", "1", False),
        ("AUTH_SERVICE_X=1\nY", "1", False),
    ],
)
def test_extra_env_names_and_values(key: str, value: Any, ok: bool) -> None:
    assert assert_holds(EXTRA_ENV_TASK, {"item": key, "remote_auth_extra_env": {key: value}}) is ok


def test_the_service_url_message_hides_a_password() -> None:
    message = templar({"remote_auth_service_url": "https://ops:S3cretPw@auth.example.com"}).template(
        trust_as_template(URL_TASK["ansible.builtin.assert"]["fail_msg"])
    )
    assert "S3cretPw" not in message and "https://***@auth.example.com" in message
