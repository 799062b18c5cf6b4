"""What a new user meets first: --version, --help that explains, a busy port said plainly,
and logs that stay one JSON object per line and quiet while idle."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from app.cli import build_parser
from schedulers.main import start_scheduler
from tests.conftest import make_settings

BIN = Path(sys.executable).parent / "jackpot-gateway"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"jackpot-gateway {version('jackpot-gateway')}"


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    actions = build_parser()._subparsers._group_actions  # type: ignore[union-attr]
    return dict(actions[0].choices)  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_every_command_and_option_explains_itself(name: str) -> None:
    command = _subcommands()[name]
    assert command.description and command.description.endswith("."), name
    for action in command._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"{name} {action.option_strings or action.dest} has no help"
    text = run(name, "--help").stdout
    assert command.description in " ".join(text.split())


@pytest.mark.parametrize("how", ["dev", "serve"])
def test_a_busy_port_is_one_line_that_says_what_to_do(how: str, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"PORT": str(port), "HOST": "127.0.0.1", "JWT_SECRET": "s" * 40, "DRAW_KEY": "d" * 40}
        # serve needs a Redis URL only to start; the port is checked before anything connects
        env["REDIS_URL"] = "redis://127.0.0.1:1/0"
        result = run(how, env=env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"port {port} on 127.0.0.1 is in use" in lines[0]
    assert "PORT=" in lines[0]
    assert "Traceback" not in result.stdout + result.stderr
    assert "dev server on" not in result.stdout  # no banner for a server that cannot start


def test_a_warning_in_json_mode_is_a_json_line() -> None:
    code = (
        "from app.core.logs import configure_logging; import warnings; "
        "configure_logging('web', json_lines=True); warnings.warn('a library warns')"
    )
    result = subprocess.run(
        [sys.executable, "-W", "default", "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.stderr == ""
    [line] = result.stdout.splitlines()
    record = json.loads(line)
    assert record["level"] == "WARNING" and "a library warns" in record["message"]


async def test_an_idle_scheduler_logs_nothing_each_second(caplog: pytest.LogCaptureFixture) -> None:
    from app.services import Services

    services = Services.create(make_settings("memory://idle-scheduler"))
    caplog.set_level(logging.INFO)
    scheduler = start_scheduler(services)
    try:
        await asyncio.sleep(2.5)
    finally:
        scheduler.shutdown(wait=False)
        await services.close()
    per_tick = [r for r in caplog.records if r.name.startswith("apscheduler.executors")]
    assert per_tick == []
    started = [r for r in caplog.records if r.name == "apscheduler.scheduler"]
    assert started, "the scheduler should still say that it started"
