"""What a caller learns when Redis fails: never sent (503, retry freely) versus sent but not
confirmed (504, retry with the same idempotency key); one log line per failure; /health stays
a liveness answer while /ready reports the store. Each test starts its own redis-server."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import pytest
import redis
from quart import Quart

from app import create_app
from app.services import Services
from app.store import Store, StoreOutcomeUnknown, StoreUnavailable
from tests.conftest import auth, load_demo, make_settings
from tests.support.definitions import instance
from tests.support.http import create_instance, expect, post, v1_body, view
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.real_redis
CONTRIBUTE = "/jackpots/contribute"
SOCKET_TIMEOUT_S = 0.3


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    server = RedisServer("--enable-debug-command", "yes")
    yield server
    server.stop()


@pytest.fixture
async def app(private_redis: RedisServer) -> AsyncIterator[Quart]:
    settings = make_settings(
        private_redis.url,
        redis_socket_timeout_s=SOCKET_TIMEOUT_S,
        redis_connect_timeout_s=0.3,
        config_refresh_s=60.0,  # configuration cached: a contribution is one EVALSHA
    )
    application = create_app(settings)
    async with application.test_app():
        yield application


@pytest.fixture
async def headers(app: Quart) -> dict[str, str]:
    gateway: Services = app.extensions["gateway"]
    await load_demo(gateway)
    headers = auth(gateway, _demo())
    await create_instance(app.test_client(), headers, instance("faults"))
    return headers


def _demo() -> Any:
    from tests.conftest import DEMO

    return DEMO


def store_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith("store ")]


async def test_redis_down_is_503_safe_to_retry_one_log_line_and_not_ready(
    app: Quart,
    headers: dict[str, str],
    private_redis: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = app.test_client()
    await expect(await client.get("/ready"), 200)
    private_redis.stop()
    await asyncio.sleep(0.05)  # the pooled connections see the server's close
    caplog.set_level(logging.WARNING, logger="jackpot_gateway")

    for _ in range(3):
        response = await post(client, CONTRIBUTE, v1_body("faults"), headers)
        body = await expect(response, 503, "STORE_UNAVAILABLE")
        assert response.headers["Retry-After"] == "1"
        assert body["details"]["retry_after"] == 1

    warnings = store_warnings(caplog)
    assert len(warnings) == 3
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in warnings)
    assert "unavailable" in warnings[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]

    await expect(await client.get("/health"), 200)  # liveness does not depend on Redis
    ready = await expect(await client.get("/ready"), 503)
    assert ready["ready"] is False
    assert ready["checks"]["store"].startswith("unavailable")

    winners = await client.get("/jackpots/instances/faults/winners", headers=headers)
    await expect(winners, 503, "STORE_UNAVAILABLE")


async def test_a_reply_lost_to_the_timeout_is_504_and_a_retry_with_the_key_replays_it(
    app: Quart,
    headers: dict[str, str],
    private_redis: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Redis is busy past the socket timeout (DEBUG SLEEP), then runs the script: the
    contribution was applied although the caller got no answer."""
    client = app.test_client()
    await expect(await post(client, CONTRIBUTE, v1_body("faults"), headers), 200)  # loads it
    before = await view(client, headers, "faults")
    body = v1_body("faults", idempotency_key="lost-reply")
    sleeper = redis.Redis(port=private_redis.port)
    stall = threading.Thread(target=sleeper.execute_command, args=("DEBUG", "SLEEP", 1))
    stall.start()
    await asyncio.sleep(0.1)  # Redis is asleep
    try:
        response = await post(client, CONTRIBUTE, body, headers)
    finally:
        await asyncio.to_thread(stall.join)
        sleeper.close()
    error = await expect(response, 504, "OUTCOME_UNKNOWN")
    assert response.headers["Retry-After"] == "1"
    assert "idempotency key" in error["error"]
    assert [r.getMessage().split(":")[0] for r in store_warnings(caplog)] == [
        f"store outcome_unknown on POST {CONTRIBUTE}"
    ]

    after = await view(client, headers, "faults")
    assert after["pots"]["main"]["current_value"] - before["pots"]["main"]["current_value"] == (
        Decimal("0.70")
    )

    query = {"instance_id": "faults", "idempotency_key": "lost-reply"}
    recorded = await client.get("/jackpots/contributions", query_string=query, headers=headers)
    outcome = await expect(recorded, 200)
    assert (outcome["contribution_amount"], outcome["contribution_currency"]) == (
        Decimal("1.00"),
        "EUR",
    )

    replay = await post(client, CONTRIBUTE, body, headers)
    await expect(replay, 204)
    assert replay.headers["X-Instance-Id"] == "faults"
    assert replay.headers["X-Contribution-Id"] == recorded.headers["X-Contribution-Id"]
    assert await view(client, headers, "faults") == after


async def test_the_store_tells_a_lost_read_from_a_lost_write(private_redis: RedisServer) -> None:
    """Redis asleep past the socket timeout: a read changed nothing (unavailable), a write
    may have been applied (outcome unknown); a refused connection is unavailable."""
    store = Store.from_settings(make_settings(private_redis.url, redis_socket_timeout_s=0.2))
    sleeper = redis.Redis(port=private_redis.port)
    try:
        await asyncio.gather(store.ping(), store.ping())  # two pooled connections
        stall = threading.Thread(target=sleeper.execute_command, args=("DEBUG", "SLEEP", 0.6))
        stall.start()
        await asyncio.sleep(0.1)
        read, write = await asyncio.gather(
            store.client.get("k"), store.client.set("k", "v"), return_exceptions=True
        )
        assert isinstance(read, StoreUnavailable)
        assert isinstance(write, StoreOutcomeUnknown)
        await asyncio.to_thread(stall.join)
        assert await store.client.get("k") == "v"  # the write was applied after all
        private_redis.stop()
        await asyncio.sleep(0.05)
        with pytest.raises(StoreUnavailable):
            await store.client.set("k", "w")
    finally:
        sleeper.close()
        await store.close()


async def test_the_scheduler_logs_one_line_per_tick_while_redis_is_away(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from schedulers.main import tick

    server = RedisServer()
    gateway = Services.create(make_settings(server.url, redis_connect_timeout_s=0.3))
    server.stop()
    caplog.set_level(logging.WARNING)
    try:
        for _ in range(2):
            await tick(gateway)
    finally:
        await gateway.close()
    lines = [r for r in caplog.records if r.name == "jackpot_gateway.scheduler"]
    assert len(lines) == 2
    assert all(r.exc_info is None and r.getMessage().startswith("store unavailable") for r in lines)
