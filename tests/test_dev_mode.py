"""`jackpot-gateway dev`: one command, an embedded store, demo data, a clean Ctrl-C."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import redis

from tests.support.redis_server import free_port

ROOT = Path(__file__).resolve().parents[1]
CONSOLE_SCRIPT = Path(sys.executable).parent / "jackpot-gateway"
BANNER = re.compile(r"dev server on (?P<base>http://\S+)\s+\(store: (?P<store>[^)]+)\)")
CREDENTIALS = re.compile(r"username (?P<username>\S+)\s+password (?P<password>\S+)")
REDIS_PORT = re.compile(r"private redis-server on port (?P<port>\d+)")

pytestmark = pytest.mark.slow


class DevServer:
    """A `dev` process whose output is read by a thread, so the test can wait on it."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [*command, "dev", "--port", str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stdout: queue.Queue[str] = queue.Queue()
        self.lines: list[str] = []
        self.errors: list[str] = []
        threading.Thread(target=self._pump, args=(self.process.stdout, True), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.process.stderr, False), daemon=True).start()

    def _pump(self, stream: object, is_stdout: bool) -> None:
        for line in stream:  # type: ignore[attr-defined]
            if is_stdout:
                self.lines.append(line)
                self.stdout.put(line)
            else:
                self.errors.append(line)

    def output(self) -> str:
        return "".join(self.lines) + "".join(self.errors)

    def wait_until_healthy(self, timeout: float = 15) -> str:
        """The banner, once /health answers."""
        deadline = time.monotonic() + timeout
        base = f"http://127.0.0.1:{self.port}"
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"dev exited early:\n{self.output()}"
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        else:
            raise AssertionError(f"dev did not answer /health in {timeout} s:\n{self.output()}")
        # The banner is printed before serving starts; give the reader thread a moment.
        deadline = time.monotonic() + 5
        while "Ctrl-C" not in "".join(self.lines) and time.monotonic() < deadline:
            time.sleep(0.05)
        return "".join(self.lines)

    def interrupt(self, timeout: float = 10) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


@pytest.fixture
def dev_env(tmp_path: Path) -> dict[str, str]:
    """No JWT_SECRET, no REDIS_URL, no demo passwords: dev mode supplies them."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture
def started() -> Iterator[list[DevServer]]:
    servers: list[DevServer] = []
    yield servers
    for server in servers:
        server.kill()


def exercise(base: str, banner: str) -> None:
    """Log in with the printed demo credentials and use the admin API."""
    credentials = CREDENTIALS.search(banner)
    assert credentials, banner
    assert credentials["username"] == "demo-service"
    assert credentials["password"] == "demo-password-123"
    response = httpx.post(
        f"{base}/authenticate/service",
        json={"username": credentials["username"], "password": credentials["password"]},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    headers = {"Authorization": f"Bearer {response.json()['token']}"}
    response = httpx.get(f"{base}/admin/instances", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert [view["definition"]["id"] for view in response.json()] == [
        "daily-drop",
        "weekly-raffle",
    ]
    response = httpx.get(f"{base}/currencies/brand2", headers=headers, timeout=10)
    assert response.json()["multipliers"]["USD"] == 1.1


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.skipif(not CONSOLE_SCRIPT.exists(), reason="the console script is not installed")
def test_dev_with_a_private_redis_server(dev_env: dict[str, str], started: list[DevServer]) -> None:
    if not any(Path(d, "redis-server").exists() for d in dev_env["PATH"].split(os.pathsep)):
        pytest.skip("redis-server is not on PATH")
    server = DevServer([str(CONSOLE_SCRIPT)], dev_env)
    started.append(server)
    banner = server.wait_until_healthy()
    match = BANNER.search(banner)
    assert match, banner
    assert match["base"] == f"http://127.0.0.1:{server.port}"
    redis_port = REDIS_PORT.search(match["store"])
    assert redis_port, banner
    port = int(redis_port["port"])
    client = redis.Redis(port=port)
    try:
        assert client.ping()
        assert client.hexists("jg:operators", "demo")
    finally:
        client.close()

    exercise(match["base"], banner)

    assert server.interrupt() == 0, server.output()
    assert "Traceback" not in server.output()
    assert not listening(port), "the private redis-server outlived dev mode"


def test_dev_falls_back_to_fakeredis_without_redis_server(
    dev_env: dict[str, str], started: list[DevServer], tmp_path: Path
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    server = DevServer([sys.executable, "-m", "app.cli"], {**dev_env, "PATH": str(empty)})
    started.append(server)
    banner = server.wait_until_healthy()
    match = BANNER.search(banner)
    assert match, banner
    assert match["store"] == "fakeredis"
    exercise(match["base"], banner)

    # Over a real socket, a chunked body (no Content-Length) is capped as well.
    def chunks() -> Iterator[bytes]:
        for _ in range(100):
            yield b" " * 1024

    response = httpx.post(
        f"{match['base']}/authenticate/service",
        content=chunks(),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 413
    assert response.json()["code"] == "BODY_TOO_LARGE"
    assert server.interrupt() == 0, server.output()
    assert "Traceback" not in server.output()


def readme_tour() -> str:
    """The README's five-minute tour: its shell block that starts with `B=localhost:8000`."""
    text = (ROOT / "README.md").read_text()
    match = re.search(r"```sh\n(B=localhost:8000\n.*?)```", text, re.S)
    assert match, "the README has no tour block starting with B=localhost:8000"
    return match[1]


def json_values(text: str) -> list[object]:
    """Every JSON value printed one after another (curl prints bodies with or without a
    trailing newline)."""
    decoder, values, at = json.JSONDecoder(), [], 0
    while at < len(text):
        if text[at].isspace():
            at += 1
            continue
        value, at = decoder.raw_decode(text, at)
        values.append(value)
    return values


@pytest.mark.skipif(shutil.which("curl") is None, reason="the tour uses curl")
def test_the_readme_tour_runs_as_written(dev_env: dict[str, str], started: list[DevServer]) -> None:
    """Every command of the tour answers what the README says it shows: the opt-in, a
    contribution of the fixed 0.10, 204 for the repeated request and the first answer read back
    (applied once), the instance, and a balanced reconciliation of the two entries' money."""
    server = DevServer([sys.executable, "-m", "app.cli"], {**dev_env, "PYTHONPATH": str(ROOT)})
    started.append(server)
    server.wait_until_healthy()
    tour = readme_tour().replace("B=localhost:8000", f"B=127.0.0.1:{server.port}", 1)
    ran = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", tour],
        env={**dev_env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{dev_env['PATH']}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stderr
    printed = json_values(ran.stdout)
    assert len(printed) == 7, ran.stdout
    health, optin, first, again, read_back, view, books = printed
    assert isinstance(health, dict) and "version" in health
    assert optin == optin | {"opted_in": True}
    assert isinstance(first, dict) and first["instance_id"] == "daily-drop"
    assert Decimal(str(first["contribution_amount"])) == Decimal("0.10")
    assert again == 204
    assert read_back == first
    assert isinstance(view, dict) and view["definition"]["id"] == "daily-drop"
    assert Decimal(view["totals"]["contributions"]) == Decimal(str(first["contribution_amount"]))
    assert isinstance(books, dict) and books["balanced"] is True, books
    assert server.interrupt() == 0, server.output()
