"""Settings validation at start-up: Settings.from_env and the CLI's exit on a bad setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.config import DEV_DRAW_KEY, DEV_SECRET, MIN_SECRET_BYTES, ConfigError, Settings

ROOT = Path(__file__).resolve().parents[1]
GOOD_SECRET = "s" * MIN_SECRET_BYTES
GOOD_KEY = "k" * MIN_SECRET_BYTES
GOOD = {"JWT_SECRET": GOOD_SECRET, "DRAW_KEY": GOOD_KEY}


def test_missing_secret_outside_dev_mode_is_a_one_line_error() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({})
    message = str(caught.value)
    assert message.startswith("JWT_SECRET is not set")
    assert "\n" not in message


def test_empty_secret_counts_as_missing() -> None:
    with pytest.raises(ConfigError, match=r"^JWT_SECRET is not set"):
        Settings.from_env({"JWT_SECRET": ""})


def test_weak_secret_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"JWT_SECRET": "s" * (MIN_SECRET_BYTES - 1)})
    message = str(caught.value)
    assert message == (
        f"JWT_SECRET is too weak: {MIN_SECRET_BYTES - 1} bytes, "
        f"at least {MIN_SECRET_BYTES} are required"
    )
    assert "\n" not in message


def test_secret_of_exactly_the_minimum_length_is_accepted() -> None:
    settings = Settings.from_env(GOOD)
    assert settings.jwt_secret == GOOD_SECRET
    assert settings.dev_mode is False


def test_secret_length_is_counted_in_bytes_not_characters() -> None:
    # 16 two-byte characters: 32 bytes, accepted; 15 of them (30 bytes) are not.
    assert Settings.from_env({**GOOD, "JWT_SECRET": "é" * 16}).jwt_secret == "é" * 16
    with pytest.raises(ConfigError, match="30 bytes"):
        Settings.from_env({"JWT_SECRET": "é" * 15})


def test_dev_mode_supplies_a_secret() -> None:
    by_argument = Settings.from_env({}, dev_mode=True)
    assert by_argument.jwt_secret == DEV_SECRET
    assert by_argument.dev_mode is True
    by_variable = Settings.from_env({"DEV_MODE": "true"})
    assert by_variable.jwt_secret == DEV_SECRET
    assert by_variable.dev_mode is True


def test_dev_mode_still_refuses_a_weak_explicit_secret() -> None:
    with pytest.raises(ConfigError, match=r"^JWT_SECRET is too weak"):
        Settings.from_env({"JWT_SECRET": "short"}, dev_mode=True)


def test_defaults() -> None:
    settings = Settings.from_env(GOOD)
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.queue_url == settings.redis_url
    assert settings.port == 8000
    assert settings.token_ttl_s == 1800
    assert settings.login_max_failures == 5
    assert settings.login_window_s == 900
    assert settings.max_body_bytes == 64 * 1024
    assert settings.callback_allowlist == ()


def test_values_are_read_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            **GOOD,
            "REDIS_URL": "redis://cache:6380/2",
            "QUEUE_REDIS_URL": "redis://queue:6379/0",
            "PORT": "9001",
            "LOGIN_MAX_FAILURES": "3",
            "REDIS_CLUSTER": "yes",
            "CALLBACK_ALLOWLIST": " 10.0.0.0/8, ,internal.example ",
            "REDIS_SOCKET_TIMEOUT_SECONDS": "0.5",
            "REDIS_CONNECT_TIMEOUT_SECONDS": "0.25",
            "REDIS_POOL_TIMEOUT_SECONDS": "3",
            "OPTIN_RETENTION_DAYS": "0",
        }
    )
    assert settings.optin_retention_days == 0
    assert (settings.redis_socket_timeout_s, settings.redis_connect_timeout_s) == (0.5, 0.25)
    assert settings.redis_pool_timeout_s == 3.0
    assert settings.redis_url == "redis://cache:6380/2"
    assert settings.queue_url == "redis://queue:6379/0"
    assert settings.port == 9001
    assert settings.login_max_failures == 3
    assert settings.redis_cluster is True
    assert settings.callback_allowlist == ("10.0.0.0/8", "internal.example")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PORT", "eighty", "PORT must be an integer, got 'eighty'"),
        ("TOKEN_TTL_SECONDS", "1.5", "TOKEN_TTL_SECONDS must be an integer, got '1.5'"),
        ("LOGIN_MAX_FAILURES", "0", "LOGIN_MAX_FAILURES must be >= 1, got 0"),
        ("MAX_BODY_BYTES", "10", "MAX_BODY_BYTES must be >= 1024, got 10"),
        ("CONFIG_REFRESH_SECONDS", "soon", "CONFIG_REFRESH_SECONDS must be a number, got 'soon'"),
        ("REDIS_CLUSTER", "maybe", "REDIS_CLUSTER must be true or false, got 'maybe'"),
        ("DEV_MODE", "2", "DEV_MODE must be true or false, got '2'"),
        ("OPTIN_RETENTION_DAYS", "-1", "OPTIN_RETENTION_DAYS must be >= 0, got -1"),
        ("REDIS_SOCKET_TIMEOUT_SECONDS", "0", "REDIS_SOCKET_TIMEOUT_SECONDS must be > 0, got 0.0"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**GOOD, name: value})
    assert str(caught.value) == message


def test_redis_url_must_be_a_redis_url() -> None:
    with pytest.raises(ConfigError, match=r"^REDIS_URL must be a redis://"):
        Settings.from_env({**GOOD, "REDIS_URL": "http://localhost:6379"})


# -- the CLI ---------------------------------------------------------------------------
def _cli_env(**extra: str) -> dict[str, str]:
    """A controlled environment: no JWT_SECRET or other settings leak in from ours."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    env.update(extra)
    return env


def _run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_serve_without_secret_exits_2_with_one_line_and_no_traceback() -> None:
    result = _run_cli("serve", env=_cli_env())
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: JWT_SECRET is not set")
    assert "Traceback" not in result.stderr


def test_console_script_refuses_a_bad_integer_the_same_way() -> None:
    script = Path(sys.executable).parent / "jackpot-gateway"
    result = subprocess.run(
        [str(script), "serve"],
        env=_cli_env(JWT_SECRET=GOOD_SECRET, DRAW_KEY=GOOD_KEY, PORT="eighty"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr == "error: PORT must be an integer, got 'eighty'\n"


def test_load_without_secret_also_exits_2(tmp_path: Path) -> None:
    definitions = tmp_path / "empty.yaml"
    definitions.write_text("operators: []\n")
    result = _run_cli("load", str(definitions), env=_cli_env())
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: JWT_SECRET is not set")


def test_dev_mode_listens_on_loopback_unless_told_and_logs_plain() -> None:
    dev = Settings.from_env({}, dev_mode=True)
    assert (dev.host, dev.log_json) == ("127.0.0.1", False)
    assert Settings.from_env({"HOST": "0.0.0.0"}, dev_mode=True).host == "0.0.0.0"
    production = Settings.from_env(GOOD)
    assert (production.host, production.log_json) == ("0.0.0.0", True)
    with pytest.raises(ConfigError, match="LOG_FORMAT must be json or plain"):
        Settings.from_env({**GOOD, "LOG_FORMAT": "xml"})


def test_trusted_proxies_are_addresses_or_networks() -> None:
    settings = Settings.from_env({**GOOD, "TRUSTED_PROXIES": " 10.0.0.0/8, 127.0.0.1 ,::1,"})
    assert settings.trusted_proxies == ("10.0.0.0/8", "127.0.0.1/32", "::1/128")
    assert Settings.from_env(GOOD).trusted_proxies == ()


@pytest.mark.parametrize("value", ["router", "10.0.0.0/33", "10.0.0.1/8/1", "*"])
def test_a_bad_trusted_proxy_is_a_one_line_error(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**GOOD, "TRUSTED_PROXIES": value})
    assert str(caught.value).startswith("TRUSTED_PROXIES must list IP addresses or networks")
    assert "\n" not in str(caught.value)


# -- the raffle draw key -------------------------------------------------------------------
def test_the_draw_key_is_required_outside_dev_mode_and_at_least_32_bytes() -> None:
    with pytest.raises(ConfigError, match=r"^DRAW_KEY is not set"):
        Settings.from_env({"JWT_SECRET": GOOD_SECRET})
    with pytest.raises(ConfigError, match=r"^DRAW_KEY is too weak: 31 bytes"):
        Settings.from_env({**GOOD, "DRAW_KEY": "k" * 31})
    with pytest.raises(ConfigError, match=r"^DRAW_KEY_PREVIOUS is too weak: 5 bytes"):
        Settings.from_env({**GOOD, "DRAW_KEY_PREVIOUS": "short"})
    rotated = Settings.from_env({**GOOD, "DRAW_KEY_PREVIOUS": f" {'a' * 32}, ,{'b' * 40}"})
    assert (rotated.draw_key, rotated.draw_keys_previous) == (GOOD_KEY, ("a" * 32, "b" * 40))
    dev = Settings.from_env({}, dev_mode=True)
    assert dev.draw_key == DEV_DRAW_KEY


def test_a_scheduler_without_a_draw_key_exits_2_with_one_line() -> None:
    result = _run_cli("scheduler", env=_cli_env(JWT_SECRET=GOOD_SECRET))
    assert result.returncode == 2
    assert result.stderr.startswith("error: DRAW_KEY is not set")
    assert result.stderr.count("\n") == 1
