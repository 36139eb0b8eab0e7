"""Configuration: flags > env > YAML > defaults; the probe account only from a file or the environment."""

from __future__ import annotations

from pathlib import Path

import pytest
from rozitech_auth_exporter.config import Config, ConfigError, Credentials, load


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_defaults_with_only_a_target() -> None:
    cfg, _ = load(["--target-url", "https://auth.rozitech.com/"], {})
    assert cfg == Config(target_url="https://auth.rozitech.com")
    assert (cfg.interval, cfg.timeout, cfg.connect_timeout, cfg.max_requests_per_cycle) == (30.0, 5.0, 3.0, 6)
    assert cfg.listen_host_port == ("0.0.0.0", 9747)  # noqa: S104 - the default listen address
    assert cfg.credentials is None and cfg.is_https


def test_precedence_flag_over_env_over_yaml(tmp_path: Path) -> None:
    yml = write(
        tmp_path, "c.yml", "target_url: http://yaml:4000\ninterval: 60\ntimeout: 4\nlisten_address: '[::]:9100'\n"
    )
    env = {"AUTH_EXPORTER_CONFIG": yml, "AUTH_EXPORTER_INTERVAL": "45", "AUTH_EXPORTER_TARGET_URL": "http://env:4000"}
    cfg, _ = load(["--target-url", "http://flag:4000"], env)
    assert cfg.target_url == "http://flag:4000"
    assert cfg.interval == 45.0  # env over YAML
    assert cfg.timeout == 4.0  # YAML over default
    assert cfg.listen_host_port == ("::", 9100)


def test_credentials_from_a_file(tmp_path: Path) -> None:
    creds = write(tmp_path, "creds.yml", "email: demo@rozitech.test\npassword: 'Demo-Passw0rd!'\n")
    cfg, _ = load(["--target-url", "http://a:4000", "--credentials-file", creds], {})
    assert cfg.credentials == Credentials("demo@rozitech.test", "Demo-Passw0rd!")
    assert "Demo-Passw0rd!" not in repr(cfg), "the password never shows in a repr (logs, tracebacks)"


def test_credentials_from_the_environment() -> None:
    env = {"AUTH_EXPORTER_PROBE_EMAIL": "demo@rozitech.test", "AUTH_EXPORTER_PROBE_PASSWORD": "pw-123456"}
    cfg, _ = load(["--target-url", "http://a:4000"], env)
    assert cfg.credentials == Credentials("demo@rozitech.test", "pw-123456")
    with pytest.raises(ConfigError, match="must both be set"):
        load(["--target-url", "http://a:4000"], {"AUTH_EXPORTER_PROBE_EMAIL": "demo@rozitech.test"})


@pytest.mark.parametrize("flag", ["--password", "--probe-password", "--email"])
def test_no_flag_takes_the_account(flag: str) -> None:
    with pytest.raises(SystemExit) as exc:
        load(["--target-url", "http://a:4000", flag, "x"], {})
    assert exc.value.code == 2


def test_yaml_must_not_hold_the_account(tmp_path: Path) -> None:
    yml = write(tmp_path, "c.yml", "target_url: http://a:4000\npassword: secret-value\n")
    with pytest.raises(ConfigError) as exc:
        load(["--config", yml], {})
    assert "credentials_file" in str(exc.value) and "secret-value" not in str(exc.value)


def test_bad_credentials_file_never_echoes_the_content(tmp_path: Path) -> None:
    creds = write(tmp_path, "creds.yml", "email: demo@rozitech.test\npasword: typo-secret\n")
    with pytest.raises(ConfigError) as exc:
        load(["--target-url", "http://a:4000", "--credentials-file", creds], {})
    assert "password" in str(exc.value) and "typo-secret" not in str(exc.value)
    with pytest.raises(ConfigError, match="cannot read"):
        load(["--target-url", "http://a:4000", "--credentials-file", str(tmp_path / "missing.yml")], {})


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ([], "target_url: required"),
        (["--target-url", "ftp://a"], "target_url"),
        (["--target-url", "http://a", "--interval", "0.5"], "interval"),
        (["--target-url", "http://a", "--timeout", "0"], "timeout"),
        (["--target-url", "http://a", "--connect-timeout", "61"], "connect_timeout"),
        (["--target-url", "http://a", "--max-requests-per-cycle", "1"], "max_requests_per_cycle"),
        (["--target-url", "http://a", "--listen-address", "9747"], "listen_address"),
        (["--target-url", "http://a", "--ca-bundle", "/nonexistent.pem"], "ca_bundle"),
        (["--target-url", "http://a", "--health-path", "health"], "health_path"),
        (["--target-url", "http://a", "--log-level", "LOUD"], "log_level"),
    ],
)
def test_bad_values_name_the_option(args: list[str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        load(args, {})


def test_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown keys"):
        load(["--config", write(tmp_path, "a.yml", "target_url: http://a\nintervall: 3\n")], {})
    with pytest.raises(ConfigError, match="not valid YAML"):
        load(["--config", write(tmp_path, "b.yml", "target_url: [\n")], {})
    with pytest.raises(ConfigError, match="interval: expected float"):
        load(["--config", write(tmp_path, "c.yml", "target_url: http://a\ninterval: fast\n")], {})
