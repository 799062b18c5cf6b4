"""The Procfile as ops run it: honcho starts web (two Hypercorn workers), worker and scheduler
against a private Redis; a synchronous and an asynchronous contribution (with its callback)
go through; /metrics adds up the processes; SIGTERM stops everything with exit codes 0 and
leaves no process behind."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from app.store.embedded import free_port
from app.store.keys import OPERATORS
from tests.conftest import DEMO_PASSWORDS, DEMO_SECRET, DRAW_KEY, SECRET
from tests.support.redis_server import RedisServer
from tests.support.redis_values import found_in_redis

pytestmark = [pytest.mark.slow, pytest.mark.real_redis]
ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


METRICS_TOKEN = "metrics-token-0123456789"


def call(url: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    return status, (json.loads(text) if text.startswith(("{", "[")) else text)


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(
                {
                    "body": json.loads(body),
                    "id": self.headers["X-Jackpot-Delivery"],
                    "authorization": self.headers["Authorization"],
                }
            )
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()


def test_honcho_runs_the_procfile_and_sigterm_stops_it_cleanly(
    tmp_path: Path, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    hook, received = receiver
    redis_server = RedisServer()
    port = free_port()
    env = {
        **os.environ,
        **DEMO_PASSWORDS,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT),  # this checkout's code in every process
        "REDIS_URL": redis_server.url,
        "JWT_SECRET": SECRET,
        "METRICS_TOKEN": METRICS_TOKEN,
        "DRAW_KEY": DRAW_KEY,
        "WEB_CONCURRENCY": "2",
        "CALLBACK_ALLOWLIST": "127.0.0.1",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "DEFINITIONS_FILE": str(ROOT / "examples" / "demo.yaml"),
    }
    honcho = None
    try:
        release = subprocess.run(
            ["honcho", "-f", str(ROOT / "Procfile"), "run", "sh", "-c", procfile("release")],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert release.returncode == 0, release.stderr
        honcho = subprocess.Popen(
            [
                "honcho",
                "-f",
                str(ROOT / "Procfile"),
                "start",
                "-p",
                str(port),
                "web",
                "worker",
                "scheduler",
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: call(base + "/ready")[0] == 200, 30)
        _, login = call(
            base + "/authenticate/service",
            {"username": "demo-service", "password": DEMO_PASSWORDS["DEMO_SERVICE_PASSWORD"]},
        )
        token = login["token"]
        body = {
            "instance_id": "weekly-raffle",
            "token": "player-session",
            "brand_id": "demo:brand1",
            "player_id": "p1",
            "player_country": "DE",
            "base_wager": "10.00",
            "currency": "EUR",
        }
        status, sync = call(base + "/jackpots/contribute", body, token)
        assert (status, sync.get("contribution_amount")) == (200, 0.1), sync
        credential = "Bearer receiver-credential-" + secrets.token_hex(8)
        session = "player-session-" + secrets.token_hex(8)
        status, _ = call(
            base + "/jackpots/contribute",
            {
                **body,
                "token": session,
                "idempotency_key": "async-1",
                "callback": {"url": hook, "headers": {"Authorization": credential}},
            },
            token,
        )
        assert status == 200
        wait_for(lambda: len(received) == 1, 30)
        assert received[0]["body"]["contribution_amount"] == 0.1
        assert received[0]["authorization"] == credential
        assert received[0]["body"]["contribution_id"]
        # Both web workers and the worker process write metrics; /metrics adds them up.
        _, text = call(base + "/metrics", token=METRICS_TOKEN)
        assert 'jg_contributions_total{instance="weekly-raffle"} 2.0' in text.splitlines()

        processes = descendants(honcho.pid)
        assert len(processes) >= 5  # shells/commands, two web workers, worker, scheduler
        honcho.send_signal(signal.SIGTERM)
        output, _ = honcho.communicate(timeout=30)
        stopped = dict(re.findall(r"(\w+)\.1 +\| .*?stopped \(rc=(-?\d+)\)", output))
        stopped.update(re.findall(r"system +\| (\w+)\.1 stopped \(rc=(-?\d+)\)", output))
        assert stopped == {"web": "0", "worker": "0", "scheduler": "0"}, output
        assert honcho.returncode == 143  # honcho's own code when it was sent SIGTERM
        wait_for(lambda: not any(alive(pid) for pid in processes), 10)
        # No process logged a secret, and none is left in Redis (the jobs' records included).
        for text in (DEMO_SECRET, credential, session):
            assert text not in output
        searched = {"secret": DEMO_SECRET, "credential": credential, "token": session}
        assert found_in_redis(redis_server.url, searched, {OPERATORS: {"secret"}}) == []
    finally:
        if honcho is not None and honcho.poll() is None:
            os.killpg(honcho.pid, signal.SIGKILL)
            honcho.wait()
        redis_server.stop()


def procfile(name: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        key, _, command = line.partition(":")
        if key == name:
            return command.strip()
    raise KeyError(name)


def wait_for(condition: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("timed out")
