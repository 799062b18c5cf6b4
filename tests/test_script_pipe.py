"""Script calls multiplexed over one connection per node (app.store.pipe), on real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aredis
import uvloop

from app.store import Store, StoreOutcomeUnknown, StoreUnavailable
from app.store.connection import async_client
from app.store.pipe import ReplyTimeout
from app.store.scripts import LuaScript, ScriptRefusal, ScriptRunner

pytestmark = pytest.mark.real_redis

ECHO = LuaScript("echo", 1, "return {KEYS[1], ARGV[1]}", Path("echo-1.lua"))
REFUSE = LuaScript("refuse", 0, "return redis.error_reply('BAD_ARGUMENT nope')", Path("r-0.lua"))
SCRIPTS = {"echo": ECHO, "refuse": REFUSE}


def reads_processed(url: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        return int(client.info("stats")["total_reads_processed"])
    finally:
        client.close()


@pytest.fixture
async def runner() -> AsyncIterator[ScriptRunner]:
    runner = ScriptRunner(SCRIPTS)
    yield runner
    runner.close()


async def test_calls_of_one_tick_share_a_write_and_get_their_own_replies(
    real_redis_url: str, runner: ScriptRunner
) -> None:
    client = async_client(real_redis_url)
    await runner.run(client, "echo", ["k"], ["warm"])  # connect and load the script
    before = reads_processed(real_redis_url)
    replies = await asyncio.gather(
        *(runner.run(client, "echo", [f"k{i}"], [i]) for i in range(200))
    )
    reads = reads_processed(real_redis_url) - before - 1  # the INFO of the second reading
    await client.aclose()
    assert replies == [[f"k{i}", str(i)] for i in range(200)]
    assert reads <= 10  # one command per call, but not one socket read per call


async def test_a_flushed_script_is_loaded_again(real_redis_url: str, runner: ScriptRunner) -> None:
    client = async_client(real_redis_url)
    assert await runner.run(client, "echo", ["a"], ["1"]) == ["a", "1"]
    await client.script_flush()
    assert await runner.run(client, "echo", ["b"], ["2"]) == ["b", "2"]
    await client.aclose()


async def test_a_refusal_leaves_the_connection_in_step(
    real_redis_url: str, runner: ScriptRunner
) -> None:
    client = async_client(real_redis_url)
    results = await asyncio.gather(
        runner.run(client, "echo", ["a"], ["1"]),
        runner.run(client, "refuse", [], []),
        runner.run(client, "echo", ["b"], ["2"]),
        return_exceptions=True,
    )
    await client.aclose()
    assert results[0] == ["a", "1"] and results[2] == ["b", "2"]
    assert isinstance(results[1], ScriptRefusal) and results[1].code == "BAD_ARGUMENT"


async def test_a_cancelled_call_does_not_shift_the_replies(
    real_redis_url: str, runner: ScriptRunner
) -> None:
    client = async_client(real_redis_url)
    await runner.run(client, "echo", ["k"], ["warm"])
    first = asyncio.ensure_future(runner.run(client, "echo", ["a"], ["1"]))
    await asyncio.sleep(0)  # written, not answered yet
    first.cancel()
    assert await runner.run(client, "echo", ["b"], ["2"]) == ["b", "2"]
    await client.aclose()


async def test_no_reply_in_time_is_an_unknown_outcome_then_it_reconnects(
    redis_server: object, real_redis_url: str, runner: ScriptRunner
) -> None:
    port = int(real_redis_url.rsplit(":", 1)[1].split("/")[0])
    client = aredis.Redis(port=port, socket_timeout=0.2, decode_responses=True)
    await runner.run(client, "echo", ["k"], ["warm"])
    admin = redis.Redis(port=port)
    admin.execute_command("CLIENT", "PAUSE", "600", "ALL")
    try:
        with pytest.raises(ReplyTimeout) as caught:
            await runner.run(client, "echo", ["a"], ["1"])
        assert isinstance(caught.value, StoreOutcomeUnknown)
    finally:
        admin.execute_command("CLIENT", "UNPAUSE")
        admin.close()
    assert await runner.run(client, "echo", ["b"], ["2"]) == ["b", "2"]
    await client.aclose()


async def test_a_connection_lost_after_sending_is_an_unknown_outcome(runner: ScriptRunner) -> None:
    async def swallow_and_hang_up(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await reader.read(100)  # the command arrived
        writer.close()

    server = await asyncio.start_server(swallow_and_hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = aredis.Redis(port=port, decode_responses=True)
    with pytest.raises(StoreOutcomeUnknown):
        await runner.run(client, "echo", ["a"], ["1"])
    server.close()
    await server.wait_closed()
    await client.aclose()


async def test_an_unreachable_redis_is_not_sent(runner: ScriptRunner) -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    client = aredis.Redis(port=port, decode_responses=True)
    with pytest.raises(StoreUnavailable):
        await runner.run(client, "echo", ["a"], ["1"])
    await client.aclose()


def test_the_pipe_runs_on_uvloop(real_redis_url: str) -> None:
    async def main() -> list[str]:
        store = Store(async_client(real_redis_url), ScriptRunner(SCRIPTS))
        try:
            return list(await store.runner.run(store.client, "echo", ["k"], ["uv"]))
        finally:
            await store.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(main()) == ["k", "uv"]
