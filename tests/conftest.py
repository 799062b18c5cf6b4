"""Fixtures: one private redis-server per test session, and a backend parameter that runs a
test on both real Redis and in-process fakeredis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from app.config import Settings
from app.store import Store
from tests.support.redis_server import RedisServer

SECRET = "test-secret-that-is-long-enough-0123456789"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture
def real_redis_url(redis_server: RedisServer) -> str:
    """A clean private real Redis (we started it, so flushing it is ours to do)."""
    redis_server.flush()
    return redis_server.url


@pytest.fixture(params=["real", "fake"])
def redis_url(request: pytest.FixtureRequest) -> str:
    """Run the test on real Redis and on fakeredis."""
    if request.param == "real":
        return str(request.getfixturevalue("real_redis_url"))
    return f"memory://test-{uuid.uuid4().hex}"


def make_settings(redis_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {"redis_url": redis_url, "jwt_secret": SECRET}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return make_settings(redis_url)


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[Store]:
    store = Store.from_settings(settings)
    yield store
    await store.close()
