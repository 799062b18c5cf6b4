"""Faults injected into real processes (marker `slow`; .ci/run runs them): Redis killed with
`kill -9` under load and restarted on its AOF, RQ workers killed mid-job and mid-delivery.
Every acknowledged contribution survives, money is conserved, retries apply once, and every
accepted asynchronous contribution ends in one outcome delivered with one delivery id."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis
from quart import Quart
from quart.testing import QuartClient
from rq import Queue
from rq.registry import StartedJobRegistry

from app import create_app
from app.store.embedded import free_port
from tests.conftest import DEMO, DRAW_KEY, SECRET, auth, load_demo, make_settings
from tests.support.definitions import instance
from tests.support.http import create_instance, post, v1_body, view
from tests.support.redis_server import RedisServer
from tests.test_api_contribute import conserved
from tests.test_procfile import descendants

pytestmark = [pytest.mark.slow, pytest.mark.real_redis]
ROOT = Path(__file__).resolve().parents[1]
CONTRIBUTE = "/jackpots/contribute"


class DurableRedis:
    """A redis-server with an AOF (`appendfsync` as given) that can be killed -9 and
    restarted on its directory and port."""

    def __init__(self, fsync: str) -> None:
        self.fsync = fsync
        self.port = free_port()
        self.dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"jg-aof-{self.port}"
        self.dir.mkdir()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.exceptions.RedisError:  # refused, or still loading its AOF
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        client.close()

    def kill9(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(params=["always", "everysec"])
def durable(request: pytest.FixtureRequest) -> Iterator[DurableRedis]:
    """`everysec` too: killing the Redis *process* loses nothing either (the AOF is written
    before the reply, only its fsync waits); a machine crash could lose about a second."""
    server = DurableRedis(request.param)
    yield server
    server.stop()


@pytest.fixture
async def durable_app(durable: DurableRedis) -> AsyncIterator[Quart]:
    settings = make_settings(durable.url, redis_socket_timeout_s=5.0, redis_connect_timeout_s=1.0)
    application = create_app(settings)
    async with application.test_app():
        await load_demo(application.extensions["gateway"])
        yield application


async def test_redis_killed_under_load_loses_no_acknowledged_contribution(
    durable_app: Quart, durable: DurableRedis
) -> None:
    client: QuartClient = durable_app.test_client()
    headers = auth(durable_app.extensions["gateway"], DEMO)
    await create_instance(client, headers, instance("aof"))
    count, in_flight = 200, 16
    acked: dict[str, str] = {}  # idempotency key -> contribution id answered with 200
    failures: dict[int, int] = {}
    gate = asyncio.Semaphore(in_flight)

    async def contribute(i: int) -> None:
        async with gate:
            body = v1_body("aof", idempotency_key=f"k{i}", player_id=f"p{i % 7}")
            response = await post(client, CONTRIBUTE, body, headers)
            if response.status_code == 200:
                acked[f"k{i}"] = response.headers["X-Contribution-Id"]
            else:
                failures[response.status_code] = failures.get(response.status_code, 0) + 1

    async def killer() -> None:
        while len(acked) < count // 3:  # noqa: ASYNC110 (polls a plain dict)
            await asyncio.sleep(0.005)
        durable.kill9()

    await asyncio.gather(killer(), *(contribute(i) for i in range(count)))
    assert count // 3 <= len(acked) < count
    print(f"appendfsync {durable.fsync}: {len(acked)} acknowledged before kill -9, {failures}")
    assert set(failures) <= {503, 504}, failures  # never a 500: the caller learns what it can

    durable.start()  # on the same directory: the AOF replays
    for key, contribution_id in acked.items():
        query = {"instance_id": "aof", "idempotency_key": key}
        recorded = await client.get("/jackpots/contributions", query_string=query, headers=headers)
        assert recorded.status_code == 200, key
        assert recorded.headers["X-Contribution-Id"] == contribution_id
    # Every caller retries with its key: each contribution is applied exactly once.
    for i in range(count):
        body = v1_body("aof", idempotency_key=f"k{i}", player_id=f"p{i % 7}")
        response = await post(client, CONTRIBUTE, body, headers)
        assert response.status_code in (200, 204)
        if f"k{i}" in acked:
            assert response.status_code == 204
    state = await view(client, headers, "aof")
    assert state["totals"]["contributions"] == Decimal(count)  # 1.00 EUR each, exactly
    conserved(state)


# -- workers killed mid-job and mid-delivery ---------------------------------------------------
class HoldingReceiver:
    """Records every delivery; can hold the next one open until released."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[str, bytes]] = []
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.release.set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.deliveries.append((self.headers["X-Jackpot-Delivery"], body))
                receiver.arrived.set()
                receiver.release.wait(30)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(Path(sys.executable).parent / "jackpot-gateway"), "worker"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def kill9(worker: subprocess.Popen[bytes]) -> None:
    """The machine takes the worker down: it and its work horse (RQ forks one per job, in a
    session of its own)."""
    for pid in [worker.pid, *descendants(worker.pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    worker.wait()


def abandon_now(connection: Any, queue_name: str) -> None:
    """What a live worker's maintenance does once a dead worker's heartbeat has expired (a
    minute or two later): the job is abandoned, and retried since it has retries left."""
    registry = StartedJobRegistry(queue=Queue(queue_name, connection=connection))
    registry.cleanup(time.time() + 600)
    # The dead worker's scheduler lock would expire as late: retries with a delay need it.
    for key in connection.keys("rq:scheduler-lock:*"):
        connection.delete(key)


async def eventually(condition: Any, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_workers_killed_mid_job_and_mid_delivery_apply_once_and_deliver_one_outcome(
    tmp_path: Path,
) -> None:
    state, queue = RedisServer(), RedisServer()
    receiver = HoldingReceiver()
    settings = make_settings(
        state.url, queue_redis_url=queue.url, callback_allowlist=("127.0.0.1",)
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "REDIS_URL": state.url,
        "QUEUE_REDIS_URL": queue.url,
        "JWT_SECRET": SECRET,
        "DRAW_KEY": DRAW_KEY,
        "CALLBACK_ALLOWLIST": "127.0.0.1",
        "LOG_FORMAT": "plain",
        # A held write must outlast the kill, not time out on a slow machine.
        "REDIS_SOCKET_TIMEOUT_SECONDS": "60",
    }
    log = tmp_path / "workers.log"
    queue_client = redis.Redis(port=queue.port)
    sleeper = redis.Redis(port=state.port)
    application = create_app(settings)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        async with application.test_app():
            gateway = application.extensions["gateway"]
            await load_demo(gateway)
            client = application.test_client()
            headers = auth(gateway, DEMO)
            for instance_id in ("mid-job", "mid-delivery"):
                await create_instance(client, headers, instance(instance_id))

            # 1. Killed mid-job: the state Redis holds every write until the test lifts the
            # pause, so the job is started and cannot finish however long the worker takes to
            # boot; the worker dies with its job started and unfinished.
            body = v1_body("mid-job", callback={"url": receiver.url})  # no idempotency key
            assert (await post(client, CONTRIBUTE, body, headers)).status_code == 200
            sleeper.execute_command("CLIENT", "PAUSE", 120_000, "WRITE")
            workers.append(start_worker(env, log))
            started = StartedJobRegistry(queue=Queue("contributions", connection=queue_client))
            await eventually(lambda: started.count == 1)
            await asyncio.sleep(0.3)
            kill9(workers[-1])
            log_mark = log.read_text()
            # RQ logged the job's start (by its id) and not its end.
            assert "contributions: contribution-" in log_mark
            assert "Successfully completed" not in log_mark
            sleeper.execute_command("CLIENT", "UNPAUSE")
            abandon_now(queue_client, "contributions")
            workers.append(start_worker(env, log))
            await eventually(lambda: len(receiver.deliveries) == 1)
            state_after = await view(client, headers, "mid-job")
            assert state_after["totals"]["contributions"] == Decimal("1")

            # 2. Killed mid-delivery: the callback is being POSTed when the worker dies.
            receiver.release.clear()
            receiver.arrived.clear()
            log_mark = log.read_text()
            body = v1_body("mid-delivery", idempotency_key="md-1", callback={"url": receiver.url})
            assert (await post(client, CONTRIBUTE, body, headers)).status_code == 200
            await eventually(receiver.arrived.is_set)
            kill9(workers[-1])
            assert "delivered" not in log.read_text().removeprefix(log_mark)
            receiver.release.set()
            abandon_now(queue_client, "callbacks")
            workers.append(start_worker(env, log))
            await eventually(lambda: len(receiver.deliveries) == 3, 60)  # first retry: 5 s
            (first_id, first_body), (again_id, again_body) = receiver.deliveries[1:]
            assert (again_id, again_body) == (first_id, first_body)
            assert (await view(client, headers, "mid-delivery"))["totals"]["contributions"] == 1
            # Nothing else was delivered or applied.
            await asyncio.sleep(1)
            assert len(receiver.deliveries) == 3
            assert (await view(client, headers, "mid-job"))["totals"] == state_after["totals"]
    finally:
        for worker in workers:
            if worker.poll() is None:
                kill9(worker)
        receiver.close()
        sleeper.close()
        queue_client.close()
        state.stop()
        queue.stop()
