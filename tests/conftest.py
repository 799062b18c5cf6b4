"""Fixtures: one private redis-server per test session, and a backend parameter that runs a
test on both real Redis and in-process fakeredis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from quart import Quart
from quart.testing import QuartClient

from app import create_app
from app.cli import main, read_definitions
from app.core import security
from app.core.config import Settings
from app.core.security import Principal
from app.services import Services
from app.store import Store
from tests.support.redis_server import RedisClusterServers, RedisServer

pytest_plugins = ["tests.support.browser"]  # the `browser` fixture for page tests

SECRET = "test-secret-that-is-long-enough-0123456789"
DRAW_KEY = "test-draw-key-that-is-long-enough-0123456789"


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


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterServers]:
    servers = RedisClusterServers()
    yield servers
    servers.stop()


# The backend table (after the `limits` library): a test module parametrizes `redis_url`
# indirectly with BACKENDS to run on all three; by default real Redis and fakeredis.
BACKENDS = ["real", "fake", pytest.param("cluster", marks=pytest.mark.real_redis)]
_CLUSTERS: dict[str, str] = {}  # cluster entry URL -> the plain Redis for its queues


@pytest.fixture(params=["real", "fake"])
def redis_url(request: pytest.FixtureRequest) -> str:
    """Run the test on real Redis and on fakeredis (and a 3-master cluster when asked)."""
    if request.param == "real":
        return str(request.getfixturevalue("real_redis_url"))
    if request.param == "cluster":
        cluster: RedisClusterServers = request.getfixturevalue("redis_cluster")
        for node in cluster.nodes:  # a clean cluster for each test; we started it
            node.flush()
        _CLUSTERS[cluster.url] = str(request.getfixturevalue("real_redis_url"))
        return cluster.url
    return f"memory://test-{uuid.uuid4().hex}"


def make_settings(redis_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "redis_url": redis_url,
        "jwt_secret": SECRET,
        "draw_key": DRAW_KEY,
    }
    if redis_url in _CLUSTERS:  # RQ needs a plain Redis for the queues
        values.update(redis_cluster=True, queue_redis_url=_CLUSTERS[redis_url])
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


# -- the web app ----------------------------------------------------------------------
DEMO_PASSWORDS = {
    "DEMO_SERVICE_PASSWORD": "demo-password-123",
    "RIVAL_SERVICE_PASSWORD": "rival-password-123",
    "PLATFORM_ADMIN_PASSWORD": "platform-password-123",
}
DEMO_FILE = Path(__file__).resolve().parents[1] / "examples" / "demo.yaml"


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Quart]:
    """The app with its serving hooks run (app.test_app), on real Redis and on fakeredis."""
    application = create_app(settings)
    async with application.test_app():
        yield application


@pytest.fixture
def client(app: Quart) -> QuartClient:
    return app.test_client()


@pytest.fixture
def gateway(app: Quart) -> Services:
    return app.extensions["gateway"]  # type: ignore[no-any-return]


@pytest.fixture
async def demo(gateway: Services) -> dict[str, Any]:
    """The demo definitions (examples/demo.yaml) loaded through the admin service."""
    return await gateway.admin.apply(read_definitions(DEMO_FILE), DEMO_PASSWORDS.get)


async def login(client: QuartClient, username: str, password: str) -> str:
    response = await client.post(
        "/authenticate/service", json={"username": username, "password": password}
    )
    assert response.status_code == 200, await response.get_data(as_text=True)
    return str((await response.get_json())["token"])


@pytest.fixture
async def demo_headers(client: QuartClient, demo: dict[str, Any]) -> dict[str, str]:
    """operator `demo`, roles operator + admin."""
    token = await login(client, "demo-service", DEMO_PASSWORDS["DEMO_SERVICE_PASSWORD"])
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def rival_headers(client: QuartClient, demo: dict[str, Any]) -> dict[str, str]:
    """operator `rival`, role operator only."""
    token = await login(client, "rival-service", DEMO_PASSWORDS["RIVAL_SERVICE_PASSWORD"])
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def platform_headers(client: QuartClient, demo: dict[str, Any]) -> dict[str, str]:
    """the provider's staff (operator `provider`, role platform): every operator's objects."""
    token = await login(client, "platform-admin", DEMO_PASSWORDS["PLATFORM_ADMIN_PASSWORD"])
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def cheap_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 with the smallest parameters: the demo accounts cost ~1 ms instead of ~0.7 s."""
    monkeypatch.setattr(
        security, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


# -- demo principals with tokens issued directly (no password hashing) ----------------------
DEMO = Principal("demo-service", "demo", ("admin", "operator"))
RIVAL = Principal("rival-service", "rival", ("operator",))
PLATFORM = Principal("platform-admin", "provider", ("platform",))  # the provider's staff
DEMO_SECRET = "demo-callback-secret-0123456789"  # examples/demo.yaml


async def load_demo(gateway: Services) -> None:
    """The demo definitions without their accounts (tokens are issued directly: hashing
    passwords for every test would cost half a second each)."""
    definitions = read_definitions(DEMO_FILE)
    await gateway.admin.apply({**definitions, "accounts": []}, lambda name: None)


def auth(gateway: Services, principal: Principal) -> dict[str, str]:
    return {"Authorization": f"Bearer {gateway.tokens.issue(principal)}"}


@pytest.fixture
def platform_auth(gateway: Services) -> dict[str, str]:
    """A token of the provider's staff (role platform): instances shared by several
    operators, currencies, operators."""
    return auth(gateway, PLATFORM)


@pytest.fixture
async def headers(gateway: Services) -> dict[str, str]:
    """The demo definitions loaded; a token of operator demo (roles operator + admin)."""
    await load_demo(gateway)
    return auth(gateway, DEMO)


CLI = Callable[..., Awaitable[tuple[int, str, str]]]


@pytest.fixture
def cli(redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> CLI:
    """`jackpot-gateway ARGS...` on this test's Redis (a fakeredis one is shared in-process),
    run in a thread: (exit status, stdout, stderr)."""
    for name in ("REDIS_CLUSTER", "QUEUE_REDIS_URL", "DEV_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("JWT_SECRET", SECRET)
    monkeypatch.setenv("DRAW_KEY", DRAW_KEY)

    async def run(*args: str) -> tuple[int, str, str]:
        code = await asyncio.to_thread(main, list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
