"""The whole API on a real 3-master Redis Cluster: every script stays in one slot."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import pytest
from quart.testing import QuartClient
from redis.crc import key_slot

from app import create_app
from app.cli import read_definitions
from app.services import Services
from app.store import keys
from tests.conftest import DEMO_FILE, DEMO_PASSWORDS, login, make_settings
from tests.support.definitions import hit_rate, instance, pot
from tests.support.events import authenticate, receive_until
from tests.support.http import contribution, create_instance
from tests.support.redis_server import RedisClusterServers


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisClusterServers]:
    servers = RedisClusterServers()
    yield servers
    servers.stop()


@pytest.fixture
async def cluster_client(cluster: RedisClusterServers) -> AsyncIterator[QuartClient]:
    settings = make_settings(
        cluster.url, redis_cluster=True, queue_redis_url="memory://queue", update_interval_s=0.5
    )
    app = create_app(settings)
    async with app.test_app():
        gateway: Services = app.extensions["gateway"]
        for node in cluster.nodes:  # a clean cluster for each test; we started it
            node.flush()
        await gateway.admin.apply(read_definitions(DEMO_FILE), DEMO_PASSWORDS.get)
        yield app.test_client()


async def test_contribute_opt_in_and_read_back_on_a_cluster(cluster_client: QuartClient) -> None:
    client = cluster_client
    token = await login(client, "demo-service", DEMO_PASSWORDS["DEMO_SERVICE_PASSWORD"])
    headers = {"Authorization": f"Bearer {token}"}
    opt_in = await client.post(
        "/jackpots/optin",
        headers=headers,
        json={
            "instance_id": "daily-drop",
            "player_id": "p1",
            "brand_id": "demo:brand1",
            "player_country": "GB",
            "opt_in": True,
        },
    )
    assert opt_in.status_code == 200, await opt_in.get_data(as_text=True)
    body = {
        "instance_id": "daily-drop",
        "token": "session",
        "brand_id": "brand1",
        "player_id": "p1",
        "player_country": "GB",
        "base_wager": "2.00",
        "currency": "EUR",
        "idempotency_key": "cluster-1",
    }
    first = await client.post("/jackpots/contribute", json=body, headers=headers)
    assert first.status_code == 200, await first.get_data(as_text=True)
    result = json.loads(await first.get_data(), parse_float=Decimal)
    assert result["contribution_amount"] == Decimal("0.1")
    replay = await client.post("/jackpots/contribute", json=body, headers=headers)
    assert replay.status_code == 204
    assert replay.headers["X-Contribution-Id"] == first.headers["X-Contribution-Id"]

    instance = await client.get("/admin/instances/daily-drop", headers=headers)
    totals = (await instance.get_json())["totals"]
    assert Decimal(totals["contributions"]) == Decimal("0.1")
    assert Decimal(totals["seed_funding"]) == Decimal("10") + Decimal("100") + Decimal("1000")

    view = await client.get(
        "/jackpots/instances/source/starburst/brand/brand1?player_id=p1&country_code=GB",
        headers=headers,
    )
    assert view.status_code == 200
    status = (await view.get_json())["optin_status"]
    assert status["opted_in"] is True and status["contribution_count"] == 1
    winners = await client.get("/jackpots/instances/daily-drop/winners", headers=headers)
    assert winners.status_code == 200


async def test_the_event_stream_delivers_on_a_cluster(cluster_client: QuartClient) -> None:
    """Sharded pub/sub: instances on different nodes both reach the websocket."""
    client = cluster_client
    token = await login(client, "demo-service", DEMO_PASSWORDS["DEMO_SERVICE_PASSWORD"])
    headers = {"Authorization": f"Bearer {token}"}
    lucky = instance("lucky", pots=[pot("mini", "0.7", hit_rate(1), seed="10")])
    await create_instance(client, headers, lucky)
    # redis-cli --cluster create gives each of the 3 masters a third of the slots
    thirds = {key_slot(keys.instance_tag(i).encode()) * 3 // 16384 for i in ("lucky", "daily-drop")}
    assert len(thirds) == 2
    async with client.websocket("/events") as ws:
        await ws.send(authenticate(token))
        await receive_until(ws, "Authenticated")
        body = {**contribution("lucky", "p1"), "event_metadata": {"tag": "cluster-win"}}
        response = await client.post("/jackpots/contribute", json=body, headers=headers)
        assert response.status_code == 200
        event = await receive_until(ws, "JackpotWinEvent")
        assert event["data"]["metadata"] == {"tag": "cluster-win"}
        assert Decimal(event["data"]["win_amount"]) == Decimal("10.7")
        opt_in = await client.post(
            "/jackpots/optin",
            headers=headers,
            json={
                "instance_id": "daily-drop",
                "player_id": "p2",
                "brand_id": "demo:brand1",
                "player_country": "GB",
                "opt_in": True,
            },
        )
        assert opt_in.status_code == 200
        assert (await receive_until(ws, "OptInEvent"))["data"]["player_id"] == "p2"


async def test_an_instance_created_after_the_stream_started_delivers_on_a_cluster(
    cluster_client: QuartClient,
) -> None:
    """Its channel's shard is subscribed on the next update tick (on a node the process had
    no subscription on yet): a win contributed right after the creation (usually before that
    tick) is read from its stream then, and a later one arrives through the new sharded
    subscription (the tick reads a stream only when it first follows the instance)."""
    client = cluster_client
    token = await login(client, "demo-service", DEMO_PASSWORDS["DEMO_SERVICE_PASSWORD"])
    headers = {"Authorization": f"Bearer {token}"}
    node = {
        i: key_slot(keys.instance_tag(i).encode()) * 3 // 16384
        for i in ("daily-drop", "weekly-raffle", "late")
    }
    assert node["late"] not in (node["daily-drop"], node["weekly-raffle"])
    async with client.websocket("/events") as ws:
        await ws.send(authenticate(token))
        authenticated = await receive_until(ws, "Authenticated")
        assert "late" not in authenticated["data"]["instance_ids"]
        await create_instance(
            client, headers, instance("late", pots=[pot("mini", "0.7", hit_rate(1), seed="10")])
        )
        tags = []
        for n in range(2):
            tags.append(f"late-{n}")
            body = {**contribution("late", "p1"), "event_metadata": {"tag": tags[-1]}}
            response = await client.post("/jackpots/contribute", json=body, headers=headers)
            assert response.status_code == 200
            event = await receive_until(ws, "JackpotWinEvent", within=10)
            assert event["data"]["instance_id"] == "late"
            assert event["data"]["metadata"] == {"tag": tags[-1]}
            assert Decimal(event["data"]["win_amount"]) == Decimal("10.7")
