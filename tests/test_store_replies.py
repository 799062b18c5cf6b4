"""Every way Redis refuses to serve is answered truthfully (app.store.errors): a real
redis-server is made to answer LOADING (reloading its dataset), OOM (maxmemory with
noeviction), READONLY (a replica), MASTERDOWN (a replica whose master is gone) and BUSY
(another script past the busy threshold). Each contribution is answered 503
STORE_UNAVAILABLE with its reason and a Retry-After, applies nothing, /ready says the store
cannot take writes, and a websocket closes 1013, never with a traceback."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import redis
from quart import Quart
from redis.backoff import NoBackoff
from redis.retry import Retry

from app import create_app
from app.services import Services
from app.store.errors import REPLIES, StoreRefused, classify
from tests.conftest import DEMO, auth, load_demo, make_settings
from tests.support.definitions import instance
from tests.support.events import close_code
from tests.support.http import create_instance, expect, post, v1_body, view
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.real_redis
CONTRIBUTE = "/jackpots/contribute"


def _until(check: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "the fault did not start"
        time.sleep(0.01)


def _answers(client: redis.Redis, code: str) -> bool:
    try:
        client.set("probe", "1")
    except redis.RedisError as error:
        return str(error).startswith(code) or type(error).__name__ in ("BusyLoadingError",)
    return False


@contextlib.contextmanager
def loading(server: RedisServer) -> Iterator[None]:
    """DEBUG RELOAD of a dataset loaded slowly (key-load-delay): Redis answers LOADING to
    everyone else, as after a restart while it reads its AOF."""
    admin = redis.Redis(port=server.port)
    admin.execute_command("DEBUG", "POPULATE", 20000, "ballast")
    admin.config_set("loading-process-events-interval-bytes", 1024)
    admin.config_set("key-load-delay", 100)
    reload = threading.Thread(target=admin.execute_command, args=("DEBUG", "RELOAD"))
    reload.start()
    # No retries: redis-py 8 retries a LOADING reply with backoff, past the loading itself.
    probe = redis.Redis(port=server.port, retry=Retry(NoBackoff(), 0))
    _until(lambda: _answers(probe, "LOADING"))
    try:
        yield
    finally:
        reload.join()
        admin.config_set("key-load-delay", 0)
        admin.close()
        probe.close()


@contextlib.contextmanager
def out_of_memory(server: RedisServer) -> Iterator[None]:
    admin = redis.Redis(port=server.port)
    admin.config_set("maxmemory-policy", "noeviction")
    admin.config_set("maxmemory", 1)
    try:
        yield
    finally:
        admin.config_set("maxmemory", 0)
        admin.close()


@contextlib.contextmanager
def replica(server: RedisServer, serve_stale: bool) -> Iterator[None]:
    """A replica of a master that is not there (a failover demoted this node): read-only,
    and with replica-serve-stale-data no, not serving at all (MASTERDOWN)."""
    admin = redis.Redis(port=server.port)
    admin.config_set("replica-serve-stale-data", "yes" if serve_stale else "no")
    admin.execute_command("REPLICAOF", "127.0.0.1", 1)  # nothing listens on port 1
    try:
        yield
    finally:
        admin.execute_command("REPLICAOF", "NO", "ONE")
        admin.config_set("replica-serve-stale-data", "yes")
        admin.close()


@contextlib.contextmanager
def busy(server: RedisServer) -> Iterator[None]:
    """Another client's script runs past the busy threshold: Redis answers BUSY."""
    admin = redis.Redis(port=server.port)
    admin.config_set("busy-reply-threshold", 50)
    spinner = redis.Redis(port=server.port)

    def spin() -> None:
        with contextlib.suppress(redis.RedisError):
            spinner.eval("local i = 0 while true do i = i + 1 end", 0)

    thread = threading.Thread(target=spin)
    thread.start()
    probe = redis.Redis(port=server.port)
    _until(lambda: _answers(probe, "BUSY"))
    try:
        yield
    finally:
        while thread.is_alive():
            with contextlib.suppress(redis.RedisError):
                admin.script_kill()
            thread.join(0.1)
        admin.config_set("busy-reply-threshold", 5000)
        for client in (admin, spinner, probe):
            client.close()


# fault -> (how to make it, details.reason of a contribution, of /ready's write: a replica
# refuses a write as read-only before it looks at its master link)
FAULTS: dict[str, tuple[Callable[[RedisServer], Any], str, str]] = {
    "loading": (loading, "loading", "loading"),
    "oom": (out_of_memory, "out_of_memory", "out_of_memory"),
    "readonly": (lambda server: replica(server, serve_stale=True), "read_only", "read_only"),
    "masterdown": (lambda server: replica(server, False), "master_down", "read_only"),
    "busy": (busy, "busy_script", "busy_script"),
}


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    server = RedisServer("--enable-debug-command", "yes")
    yield server
    server.stop()


@pytest.fixture
async def app(private_redis: RedisServer) -> AsyncIterator[Quart]:
    settings = make_settings(
        private_redis.url,
        redis_socket_timeout_s=2.0,
        redis_connect_timeout_s=0.5,
        config_refresh_s=60.0,  # configuration cached: a contribution is one EVALSHA
    )
    application = create_app(settings)
    async with application.test_app():
        yield application


@pytest.fixture
async def headers(app: Quart) -> dict[str, str]:
    gateway: Services = app.extensions["gateway"]
    await load_demo(gateway)
    headers = auth(gateway, DEMO)
    await create_instance(app.test_client(), headers, instance("faults"))
    return headers


@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_a_refusing_store_is_503_with_its_reason_applies_nothing_and_is_not_ready(
    app: Quart,
    headers: dict[str, str],
    private_redis: RedisServer,
    caplog: pytest.LogCaptureFixture,
    fault: str,
) -> None:
    client = app.test_client()
    make_fault, reason, ready_reason = FAULTS[fault]
    await expect(await post(client, CONTRIBUTE, v1_body("faults"), headers), 200)  # loads it
    before = await view(client, headers, "faults")
    caplog.set_level(logging.WARNING, logger="jackpot_gateway")
    body = v1_body("faults", idempotency_key=f"during-{fault}")
    with make_fault(private_redis):
        answers = []
        for _ in range(3):
            response = await post(client, CONTRIBUTE, body, headers)
            answers.append((response, await response.get_json()))
        ready = await client.get("/ready")
        ready_body = await ready.get_json()
    for response, error in answers:
        assert response.status_code == 503, error
        assert error["code"] == "STORE_UNAVAILABLE"
        assert error["details"]["reason"] == reason
        assert response.headers["Retry-After"] == str(error["details"]["retry_after"])
    assert ready.status_code == 503 and ready_body["ready"] is False
    assert f"unavailable: {ready_reason}: " in ready_body["checks"]["store"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]

    # Nothing was applied: the same key now contributes (200, not a 204 replay), once.
    await expect(await client.get("/ready"), 200)
    assert await view(client, headers, "faults") == before
    await expect(await post(client, CONTRIBUTE, body, headers), 200)


def test_every_reply_of_the_table_is_a_refusal_that_ran_nothing() -> None:
    for code, refusal in REPLIES.items():
        error = classify(redis.ResponseError(f"{code} something"))
        assert isinstance(error, StoreRefused) and error.reason == refusal.reason
        assert error.retry_after == refusal.retry_after
    assert classify(redis.ResponseError("WRONGTYPE Operation against a key")) is None
    assert classify(ValueError("no store failure")) is None


async def test_a_websocket_authenticating_while_redis_is_down_closes_1013(
    app: Quart,
    headers: dict[str, str],
    private_redis: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    gateway: Services = app.extensions["gateway"]
    token = gateway.tokens.issue(DEMO)
    client = app.test_client()
    private_redis.stop()
    await asyncio.sleep(0.05)
    caplog.set_level(logging.WARNING)
    for url in (f"/events?token={token}", "/events"):
        async with client.websocket(url) as ws:
            if url == "/events":
                await ws.send(f'{{"Authenticate": {{"token": "{token}"}}}}')
            assert await close_code(ws) == 1013
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not errors, [r.getMessage() for r in errors]
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("store ")]
    assert len(lines) == 2 and all("websocket /events" in line for line in lines)


async def test_an_exhausted_pool_is_503_pool_exhausted_and_a_websocket_closes_1013(
    private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Every pooled connection busy past REDIS_POOL_TIMEOUT_SECONDS ("No connection
    available", as under a burst of a thousand websocket clients): nothing was sent."""
    settings = make_settings(private_redis.url, redis_max_connections=1, redis_pool_timeout_s=0.2)
    application = create_app(settings)
    async with application.test_app():
        gateway: Services = application.extensions["gateway"]
        await load_demo(gateway)
        headers = auth(gateway, DEMO)
        client = application.test_client()
        pool = gateway.store.client.connection_pool
        held = await pool.get_connection()
        caplog.set_level(logging.WARNING)
        try:
            response = await client.get("/jackpots/instances/any/winners", headers=headers)
            error = await expect(response, 503, "STORE_UNAVAILABLE")
            assert error["details"]["reason"] == "pool_exhausted"
            token = headers["Authorization"].split()[1]
            async with client.websocket(f"/events?token={token}") as ws:
                assert await close_code(ws) == 1013
        finally:
            await pool.release(held)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
