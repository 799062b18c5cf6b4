"""The web process heals and stops gracefully (`jackpot-gateway serve` subprocesses on a
private redis-server): with WEB_CONCURRENCY=2 a killed worker is replaced while the other
serves; SIGTERM stops accepting, answers every request in flight (even one that waits on
Redis longer than Hypercorn's default 5 s grace), then exits 0."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import httpx
import psutil
import pytest
import redis

from app.schemas.admin import InstanceSchema
from app.services import Services
from tests.conftest import DEMO, load_demo, make_settings
from tests.support.definitions import instance
from tests.support.redis_server import RedisServer
from tests.support.web import WebServer

pytestmark = [pytest.mark.real_redis, pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    server = RedisServer("--enable-debug-command", "yes")
    yield server
    server.stop()


@pytest.fixture
async def token(private_redis: RedisServer) -> AsyncIterator[str]:
    services = Services.create(make_settings(private_redis.url))
    await load_demo(services)
    await services.admin.create_instance(InstanceSchema().load(instance("grace")))
    yield services.tokens.issue(DEMO)
    await services.close()


def _body(key: str) -> str:
    return json.dumps(
        {
            "instance_id": "grace",
            "token": "session",
            "brand_id": "demo:brand1",
            "player_id": "p1",
            "player_country": "DE",
            "base_wager": "1.00",
            "currency": "EUR",
            "idempotency_key": key,
        }
    )


async def _contribute(http: httpx.AsyncClient, server: WebServer, token: str, key: str) -> int:
    response = await http.post(
        server.url + "/jackpots/contribute",
        content=_body(key),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    return response.status_code


async def _totals(http: httpx.AsyncClient, server: WebServer, token: str) -> Decimal:
    response = await http.get(
        server.url + "/admin/instances/grace", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    return Decimal(response.json()["totals"]["contributions"])


async def test_sigterm_answers_every_request_in_flight_then_exits_0(
    private_redis: RedisServer, token: str
) -> None:
    server = WebServer(private_redis.url, REDIS_SOCKET_TIMEOUT_SECONDS="15")
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            assert await _contribute(http, server, token, "warm-up") == 200
            one = await _totals(http, server, token)
            # Redis sleeps 7 s: every contribution sent now is in flight at SIGTERM.
            sleeper = redis.Redis(port=private_redis.port, socket_timeout=30)
            stall = threading.Thread(target=sleeper.execute_command, args=("DEBUG", "SLEEP", 7))
            stall.start()
            await asyncio.sleep(0.2)
            in_flight = [
                asyncio.create_task(_contribute(http, server, token, f"k{i}")) for i in range(20)
            ]
            await asyncio.sleep(1)
            server.process.send_signal(15)
            await asyncio.sleep(0.5)
            with pytest.raises(httpx.ConnectError):  # no longer accepting
                await http.get(server.url + "/health")
            statuses = await asyncio.gather(*in_flight, return_exceptions=True)
            exit_code = await asyncio.to_thread(server.process.wait, 30)
            stall.join()
            sleeper.close()
        assert statuses == [200] * 20, statuses
        assert exit_code == 0, server.output()[-3000:]
    finally:
        server.stop()
    again = WebServer(private_redis.url)
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            assert await _totals(http, again, token) == one * 21
    finally:
        again.stop()


def _web_workers(server: WebServer) -> list[psutil.Process]:
    children = psutil.Process(server.process.pid).children()
    return [child for child in children if "resource_tracker" not in " ".join(child.cmdline())]


async def test_a_killed_web_worker_is_replaced_while_the_other_serves(
    private_redis: RedisServer, token: str
) -> None:
    server = WebServer(private_redis.url, WEB_CONCURRENCY="2")
    try:
        deadline = time.monotonic() + 20
        while len(_web_workers(server)) < 2:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        victim = _web_workers(server)[0]
        victim.kill()
        killed_at = time.monotonic()
        statuses: list[Any] = []
        replaced_after = None
        async with httpx.AsyncClient(timeout=10) as http:
            while time.monotonic() - killed_at < 5 or replaced_after is None:
                assert time.monotonic() - killed_at < 30, "no replacement"
                # a new connection each time: every worker's accept() gets its share
                async with httpx.AsyncClient(timeout=10) as fresh:
                    statuses.append(await _contribute(fresh, server, token, f"n{len(statuses)}"))
                workers = _web_workers(server)
                if replaced_after is None and len(workers) == 2 and victim not in workers:
                    replaced_after = time.monotonic() - killed_at
            assert server.process.poll() is None
            # the replacement serves too: every request of 40 is answered
            for i in range(40):
                async with httpx.AsyncClient(timeout=10) as fresh:
                    statuses.append(await _contribute(fresh, server, token, f"m{i}"))
            del http
        assert set(statuses) == {200}, statuses
        assert replaced_after is not None and replaced_after < 10
        assert "replacing it" in server.output()
        assert server.terminate(30) == 0, server.output()[-3000:]
    finally:
        server.stop()
