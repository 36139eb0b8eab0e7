"""Configuration from command-line flags, environment variables and a YAML file.

Precedence: flag > environment (``AUTH_EXPORTER_*``) > YAML file (``--config`` / ``AUTH_EXPORTER_CONFIG``) >
default. The probe account is **never** a flag: it comes from a credentials file (YAML mapping with
``email`` and ``password``; ``--credentials-file`` / ``AUTH_EXPORTER_CREDENTIALS_FILE`` / ``credentials_file``
in YAML) or from ``AUTH_EXPORTER_PROBE_EMAIL`` + ``AUTH_EXPORTER_PROBE_PASSWORD``. Without an account only the
``/health`` probe runs. Errors raise :class:`ConfigError` naming the option (the CLI exits 2).
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ENV_PREFIX = "AUTH_EXPORTER_"
DEFAULT_PORT = 9747

_URL_RE = re.compile(r"^https?://[A-Za-z0-9\[\]]([A-Za-z0-9.\-:\[\]]*[A-Za-z0-9\]])?(:\d{1,5})?(/[^\s?#]*)?$")
_LISTEN_RE = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]*):(?P<port>\d{1,5})$")


class ConfigError(ValueError):
    """A bad or missing setting; the message names the option."""


@dataclass(frozen=True)
class Credentials:
    """The probe account. ``password`` is kept out of ``repr`` (and so out of logs and tracebacks)."""

    email: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Config:
    """All settings. Durations in seconds."""

    target_url: str
    credentials: Credentials | None = None
    interval: float = 30.0
    connect_timeout: float = 3.0
    timeout: float = 5.0
    ca_bundle: str | None = None
    listen_address: str = f"0.0.0.0:{DEFAULT_PORT}"
    max_requests_per_cycle: int = 6
    health_path: str = "/health"
    log_level: str = "INFO"
    follow_redirects: bool = True
    max_redirects: int = 10

    @property
    def listen_host_port(self) -> tuple[str, int]:
        """``listen_address`` split into (host, port); IPv6 hosts without brackets."""
        match = _LISTEN_RE.match(self.listen_address)
        assert match is not None  # checked in load()
        return match.group("host").strip("[]"), int(match.group("port"))

    @property
    def is_https(self) -> bool:
        return self.target_url.startswith("https://")


# option name → (flag, type, help); every option is also AUTH_EXPORTER_<NAME> and <name> in YAML.
_OPTIONS: dict[str, tuple[str, type, str]] = {
    "target_url": ("--target-url", str, "auth server base URL, e.g. https://auth.rozitech.com (required)"),
    "credentials_file": ("--credentials-file", str, "YAML file with the probe account: email, password"),
    "interval": ("--interval", float, "seconds between probe cycles (default 30)"),
    "connect_timeout": ("--connect-timeout", float, "timeout of one TCP connect attempt (per address), s (default 3)"),
    "timeout": (
        "--timeout",
        float,
        "total time allowed per probe: DNS, connect, TLS, headers, body and redirects, s (default 5)",
    ),
    "ca_bundle": ("--ca-bundle", str, "PEM bundle trusted for the target's certificate (default: system store)"),
    "listen_address": ("--listen-address", str, f"host:port for /metrics (default 0.0.0.0:{DEFAULT_PORT})"),
    "max_requests_per_cycle": ("--max-requests-per-cycle", int, "hard cap on requests per cycle (default 6)"),
    "health_path": ("--health-path", str, "path of the health endpoint (default /health)"),
    "log_level": ("--log-level", str, "DEBUG, INFO, WARNING or ERROR (default INFO)"),
    "follow_redirects": ("--follow-redirects", bool, "follow 3xx redirects like blackbox http_2xx (default true)"),
    "max_redirects": ("--max-redirects", int, "redirects followed per request at most, 0-20 (default 10)"),
}
_SECRET_KEYS = {"password", "probe_password", "email", "probe_email", "credentials"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rozitech-auth-exporter",
        description=(
            "Probe the Rozitech auth server on a schedule and serve the latest results on /metrics. "
            "Every option can also be set as AUTH_EXPORTER_<OPTION> or in the YAML file. The probe account "
            "comes from --credentials-file or AUTH_EXPORTER_PROBE_EMAIL/AUTH_EXPORTER_PROBE_PASSWORD, never a flag."
        ),
    )
    parser.add_argument("--config", help="YAML file with any of the options below (env: AUTH_EXPORTER_CONFIG)")
    for name, (flag, kind, text) in _OPTIONS.items():
        parser.add_argument(flag, dest=name, type=str if kind is bool else kind, default=None, help=text)
    parser.add_argument(
        "--healthcheck",
        action="store_true",
        help="ask the running exporter's /-/healthy on the listen port, exit 0 when healthy (container HEALTHCHECK)",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    return parser


def _read_yaml(path: str, what: str) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what}: {path} is not valid YAML ({type(exc).__name__})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{what}: {path} must hold a YAML mapping")
    return data


def load_credentials(path: str) -> Credentials:
    """Read ``{email, password}`` from a YAML file. The error messages never include the values."""
    data = _read_yaml(path, "credentials_file")
    email, password = data.get("email"), data.get("password")
    if not isinstance(email, str) or not email.strip():
        raise ConfigError(f"credentials_file: {path} needs a non-empty string 'email'")
    if not isinstance(password, str) or not password:
        raise ConfigError(f"credentials_file: {path} needs a non-empty string 'password'")
    return Credentials(email=email.strip(), password=password)


_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}


def _convert(name: str, kind: type, value: Any) -> Any:
    if kind is bool and value is not None:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE | _FALSE:
            return text in _TRUE
        raise ConfigError(f"{name}: expected true or false, got {value!r}")
    if value is None or kind is str:
        return None if value is None else str(value)
    try:
        if isinstance(value, bool):
            raise ValueError
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected {kind.__name__}, got {value!r}") from None


def load(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> tuple[Config, argparse.Namespace]:
    """Parse ``argv`` (default ``sys.argv[1:]``) and ``environ`` (default ``os.environ``) into a Config."""
    env = os.environ if environ is None else environ
    args = build_parser().parse_args(argv)
    config_file = args.config or env.get(f"{ENV_PREFIX}CONFIG")
    file_values = _read_yaml(config_file, "config") if config_file else {}
    bad = sorted(set(file_values) & _SECRET_KEYS)
    if bad:
        raise ConfigError(
            f"config: {config_file} must not hold the probe account ({', '.join(bad)}): use credentials_file"
        )
    unknown = sorted(set(file_values) - set(_OPTIONS))
    if unknown:
        raise ConfigError(f"config: unknown keys in {config_file}: {', '.join(unknown)}")

    values: dict[str, Any] = {}
    for name, (_flag, kind, _help) in _OPTIONS.items():
        raw = getattr(args, name)
        if raw is None:
            raw = env.get(f"{ENV_PREFIX}{name.upper()}") or None
        if raw is None:
            raw = file_values.get(name)
        if raw is not None:
            values[name] = _convert(name, kind, raw)

    if args.healthcheck or args.version:
        values.setdefault("target_url", "http://unused.invalid")

    credentials = None
    if values.get("credentials_file"):
        credentials = load_credentials(values["credentials_file"])
    elif env.get(f"{ENV_PREFIX}PROBE_EMAIL") or env.get(f"{ENV_PREFIX}PROBE_PASSWORD"):
        email, password = env.get(f"{ENV_PREFIX}PROBE_EMAIL", ""), env.get(f"{ENV_PREFIX}PROBE_PASSWORD", "")
        if not email.strip() or not password:
            raise ConfigError(f"{ENV_PREFIX}PROBE_EMAIL and {ENV_PREFIX}PROBE_PASSWORD must both be set")
        credentials = Credentials(email=email.strip(), password=password)
    values.pop("credentials_file", None)
    if "target_url" not in values:
        raise ConfigError(f"target_url: required (--target-url, {ENV_PREFIX}TARGET_URL or target_url in the YAML file)")
    values["target_url"] = values["target_url"].rstrip("/")
    return _validate(Config(credentials=credentials, **values)), args


def _validate(config: Config) -> Config:
    if not _URL_RE.match(config.target_url):
        raise ConfigError(f"target_url: must be http(s)://host[:port][/base-path], got {config.target_url!r}")
    if not 1 <= config.interval <= 3600:
        raise ConfigError(f"interval: must be within [1, 3600] seconds, got {config.interval}")
    for name in ("connect_timeout", "timeout"):
        value = getattr(config, name)
        if not 0 < value <= 60:
            raise ConfigError(f"{name}: must be within (0, 60] seconds, got {value}")
    if not 2 <= config.max_requests_per_cycle <= 20:
        raise ConfigError(f"max_requests_per_cycle: must be within [2, 20], got {config.max_requests_per_cycle}")
    if config.ca_bundle and not Path(config.ca_bundle).is_file():
        raise ConfigError(f"ca_bundle: {config.ca_bundle} is not a readable file")
    match = _LISTEN_RE.match(config.listen_address)
    if not match or not 0 < int(match.group("port")) < 65536:
        raise ConfigError(
            f"listen_address: must be host:port (e.g. 0.0.0.0:{DEFAULT_PORT}), got {config.listen_address!r}"
        )
    if not 0 <= config.max_redirects <= 20:
        raise ConfigError(f"max_redirects: must be within [0, 20], got {config.max_redirects}")
    if not config.health_path.startswith("/"):
        raise ConfigError(f"health_path: must start with /, got {config.health_path!r}")
    if config.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"log_level: must be DEBUG, INFO, WARNING or ERROR, got {config.log_level!r}")
    return config
