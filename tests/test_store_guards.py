"""A state Redis that may evict keys would silently drop pots, ledgers and idempotency records:
the processes refuse to start on one, and /metrics shows the store's memory against its limit."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from app.edge.web import create_app
from tests.conftest import make_settings
from tests.support.redis_server import RedisClusterServers, RedisServer

pytestmark = pytest.mark.real_redis
BIN = Path(sys.executable).parent / "jackpot-gateway"
MAX_BYTES = 256 * 1024 * 1024


@pytest.fixture(scope="module", params=["allkeys-lru", "volatile-ttl"])
def evicting_redis(request: pytest.FixtureRequest) -> Iterator[tuple[RedisServer, str]]:
    server = RedisServer("--maxmemory", str(MAX_BYTES), "--maxmemory-policy", request.param)
    yield server, request.param
    server.stop()


@pytest.fixture(scope="module")
def limited_redis() -> Iterator[RedisServer]:
    server = RedisServer("--maxmemory", str(MAX_BYTES), "--maxmemory-policy", "noeviction")
    yield server
    server.stop()


def start(process: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "REDIS_URL": url,
        "JWT_SECRET": "g" * 40,
        "DRAW_KEY": "d" * 40,
        "PORT": "0",
    }
    return subprocess.run([str(BIN), process], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("process", ["serve", "worker", "scheduler"])
def test_no_process_starts_on_a_redis_that_may_evict(
    process: str, evicting_redis: tuple[RedisServer, str]
) -> None:
    server, policy = evicting_redis
    result = start(process, server.url)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: refusing to start: the state Redis has maxmemory-policy")
    assert policy in line and "noeviction" in line
    assert "Traceback" not in result.stdout


async def metric(url: str, name: str) -> float:
    app = create_app(make_settings(url))
    async with app.test_app():
        response = await app.test_client().get("/metrics")
        text = await response.get_data(as_text=True)
    [value] = [line.split()[-1] for line in text.splitlines() if line.startswith(name + " ")]
    return float(value)


async def test_metrics_show_the_store_memory_and_its_limit(limited_redis: RedisServer) -> None:
    assert await metric(limited_redis.url, "jg_redis_memory_max_bytes") == MAX_BYTES
    assert await metric(limited_redis.url, "jg_redis_memory_used_bytes") > 100_000


@pytest.mark.parametrize("redis_url", ["cluster"], indirect=True)
async def test_a_cluster_adds_up_its_primaries(
    redis_url: str, redis_cluster: RedisClusterServers
) -> None:
    clients = [redis.Redis(port=node.port) for node in redis_cluster.nodes]
    for client in clients:
        client.config_set("maxmemory", MAX_BYTES)
    try:
        assert await metric(redis_url, "jg_redis_memory_max_bytes") == 3 * MAX_BYTES
    finally:
        for client in clients:
            client.config_set("maxmemory", 0)
            client.close()


@pytest.mark.parametrize("cluster", [False, True], ids=["plain", "cluster"])
async def test_a_store_that_cannot_be_reached_is_no_reason_to_refuse(cluster: bool) -> None:
    from app.services import Services
    from app.store.embedded import free_port

    settings = make_settings(
        f"redis://127.0.0.1:{free_port()}/0", redis_cluster=cluster, redis_connect_timeout_s=0.3
    )
    services = Services.create(settings)
    try:
        assert await services.eviction_risk() is None
    finally:
        await services.close()
