"""GET /events channels: subscriptions by instance, brand and type (the snapshot covers only
those), recent wins and the next draw in a snapshot, the application heartbeat (Ping, Pong,
4408) with an injected clock, and message sizes at 1,000 visible instances."""

from __future__ import annotations

import json
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from quart.testing import QuartClient

from app.core.config import Settings
from app.services import Services
from app.services.definitions import read_definitions
from tests.conftest import DEMO, PLATFORM, RIVAL, auth, load_demo, make_settings
from tests.support.definitions import hit_rate, instance, pot
from tests.support.events import (
    PONG,
    ManualClock,
    authenticate,
    close_code,
    receive,
    receive_until,
    subscribe,
)
from tests.support.http import contribution, create_instance, expect, post

pytestmark = pytest.mark.timeout(120)
WINNING = [pot("mini", "0.5", hit_rate(1), seed="10"), pot("grand", "0.2")]


@pytest.fixture
def settings() -> Settings:
    return make_settings(
        f"memory://channels-{uuid.uuid4().hex}", update_interval_s=0.2, events_recent_wins=3
    )


@pytest.fixture
async def headers(gateway: Services, client: QuartClient) -> dict[str, str]:
    """Demo loaded, plus `lucky` (every contribution wins `mini`) for demo:brand1 and
    rival:main, and `private` (the same pots) for demo:brand2 only."""
    await load_demo(gateway)
    await create_instance(
        client,
        auth(gateway, PLATFORM),
        instance("lucky", pots=WINNING, allowed_brands=["demo:brand1", "rival:main"]),
    )
    headers = auth(gateway, DEMO)
    await create_instance(
        client, headers, instance("private", pots=WINNING, allowed_brands=["demo:brand2"])
    )
    return headers


async def win(
    client: QuartClient, headers: dict[str, str], instance_id: str, player: str = "p1"
) -> None:
    body = {**contribution(instance_id, player)}
    if instance_id == "private":
        body["brand_id"] = "demo:brand2"
    result = await expect(await post(client, "/jackpots/contribute", body, headers), 200)
    assert result["win_pot_id"] == "mini"


async def snapshot_of(ws: Any) -> dict[str, dict[str, Any]]:
    """The snapshot after Authenticated or Subscribed: channel -> update (until quiet)."""
    found = {}
    while True:
        try:
            message = await receive(ws, within=0.15)  # below the 0.2 s update tick
        except TimeoutError:
            return found
        if message["event_type"] == "JackpotUpdateEvent" and "recent_wins" in message["data"]:
            found[message["channel"]] = message


# -- subscriptions ---------------------------------------------------------------------------
async def test_subscribing_by_instance_brand_and_type_narrows_the_snapshot_and_the_events(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    async with client.websocket("/events") as ws:
        await ws.send(authenticate(gateway.tokens.issue(DEMO), instance_ids=["lucky"]))
        authenticated = await receive(ws)
        assert authenticated["data"]["channels"] == ["lucky"]
        assert set(authenticated["data"]["instance_ids"]) >= {"lucky", "private", "daily-drop"}
        assert list(await snapshot_of(ws)) == ["lucky"]
        # by brand: demo:brand2 plays daily-drop, weekly-raffle and private, not lucky
        await ws.send(subscribe("*", brands=["demo:brand2"]))
        subscribed = await receive_until(ws, "Subscribed")
        assert subscribed["data"]["channels"] == ["daily-drop", "private", "weekly-raffle"]
        assert sorted(await snapshot_of(ws)) == ["daily-drop", "private", "weekly-raffle"]
        await win(client, headers, "lucky")  # not subscribed
        await win(client, headers, "private")
        event = await receive_until(ws, "JackpotWinEvent")
        assert event["channel"] == "private"
        # by type: wins only, of lucky and private: no snapshot (updates not chosen)
        await ws.send(subscribe("JackpotWinEvent", instance_ids=["lucky", "private"]))
        subscribed = await receive_until(ws, "Subscribed")
        assert subscribed["data"]["channels"] == ["lucky", "private"]
        assert subscribed["data"]["events"] == ["JackpotWinEvent"]
        await win(client, headers, "lucky")
        message = await receive(ws)
        assert (message["event_type"], message["channel"]) == ("JackpotWinEvent", "lucky")


async def test_instances_another_operator_plays_cannot_be_subscribed(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    async with client.websocket("/events") as ws:
        await ws.send(authenticate(gateway.tokens.issue(RIVAL)))
        await receive_until(ws, "Authenticated")
        await ws.send(subscribe("*", instance_ids=["private", "lucky"], brands=["demo:brand2"]))
        assert (await receive_until(ws, "Subscribed"))["data"]["channels"] == ["lucky"]
        assert list(await snapshot_of(ws)) == ["lucky"]


# -- what a snapshot carries -------------------------------------------------------------------
async def test_a_snapshot_carries_each_instances_recent_wins_masked_per_viewer(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    for n in range(5):
        await win(client, headers, "lucky", player=f"p{n}")
    for principal, players in ((DEMO, ["p4", "p3", "p2"]), (RIVAL, ["***"] * 3)):
        async with client.websocket("/events") as ws:
            await ws.send(authenticate(gateway.tokens.issue(principal), instance_ids=["lucky"]))
            await receive_until(ws, "Authenticated")
            wins = (await snapshot_of(ws))["lucky"]["data"]["recent_wins"]
            assert [w["player_id"] for w in wins] == players  # the last 3 (a setting), newest first
            assert {w["brand_id"] for w in wins} == {"demo:brand1"}
            # the first win took the seed 10 and half of 1.00; later ones seed and half
            assert {Decimal(w["win_amount"]) for w in wins} == {Decimal("10.5")}
    # a new win is in the next snapshot (once the process has read it)
    async with client.websocket("/events") as watcher:
        await watcher.send(authenticate(gateway.tokens.issue(DEMO), events=["JackpotWinEvent"]))
        await receive_until(watcher, "Authenticated")
        await win(client, headers, "lucky", player="p9")
        await receive_until(watcher, "JackpotWinEvent")
    async with client.websocket("/events") as ws:
        await ws.send(authenticate(gateway.tokens.issue(DEMO), instance_ids=["lucky"]))
        await receive_until(ws, "Authenticated")
        wins = (await snapshot_of(ws))["lucky"]["data"]["recent_wins"]
        assert [w["player_id"] for w in wins] == ["p9", "p4", "p3"]


async def test_a_raffles_snapshot_carries_its_next_draw_time(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    view = await expect(await client.get("/admin/instances/weekly-raffle", headers=headers), 200)
    async with client.websocket("/events") as ws:
        await ws.send(authenticate(gateway.tokens.issue(DEMO)))
        await receive_until(ws, "Authenticated")
        snapshot = await snapshot_of(ws)
    raffle = snapshot["weekly-raffle"]["data"]
    assert raffle["jackpot_type"] == "Raffle" and raffle["name"]
    ends = view.get("raffle_round", {}).get("ends") if isinstance(view, dict) else None
    assert isinstance(raffle["next_draw_at"], int)
    if ends is not None:
        assert raffle["next_draw_at"] == ends
    assert raffle["next_draw_at"] > int(time.time() * 1000)
    assert snapshot["daily-drop"]["data"]["next_draw_at"] is None


# -- heartbeat ---------------------------------------------------------------------------------
async def test_a_silent_client_is_pinged_then_closed_4408(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    clock = gateway.events.clock = ManualClock()
    interval, timeout = gateway.events.ping_interval_s, gateway.events.pong_timeout_s
    assert (interval, timeout) == (25.0, 10.0)  # the defaults
    async with client.websocket("/events") as ws:
        await ws.send(authenticate(gateway.tokens.issue(DEMO), events=["JackpotWinEvent"]))
        authenticated = await receive_until(ws, "Authenticated")
        assert authenticated["data"]["ping_interval_s"] == interval
        await clock.advance(interval)
        ping = await receive(ws)
        assert ping == {"event_type": "Ping", "event_id": None, "channel": None, "data": {}}
        await clock.advance(timeout - 1)  # 34 s of silence: still open
        assert len(gateway.events.subscribers) == 1
        # closed once interval + timeout have passed, at the heartbeat's next look (every
        # fifth of the shorter of the two: 2 s here)
        await clock.advance(3)
        assert await close_code(ws) == 4408


async def test_answering_pings_keeps_a_socket_open_for_a_simulated_hour(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    clock = gateway.events.clock = ManualClock()
    step = 5.0
    async with client.websocket("/events") as ws:
        await ws.send(authenticate(gateway.tokens.issue(DEMO), events=["JackpotWinEvent"]))
        await receive_until(ws, "Authenticated")
        pings = 0
        for _ in range(int(3600 / step)):
            await clock.advance(step)
            if clock.now() % gateway.events.ping_interval_s == 0:
                assert (await receive(ws))["event_type"] == "Ping"
                pings += 1
                await ws.send(PONG)
                for _ in range(20):  # until the server has read it
                    (subscriber,) = gateway.events.subscribers
                    if subscriber.last_seen == clock.now():
                        break
                    await receive_nothing(ws)
        assert pings == 3600 / 25
        await win(client, headers, "lucky")
        assert (await receive(ws))["event_type"] == "JackpotWinEvent"  # still live
        # then it stops answering: closed 35 s later
        for _ in range(8):
            await clock.advance(step)
        assert await close_code(ws) == 4408


async def receive_nothing(ws: Any) -> None:
    with pytest.raises(TimeoutError):
        await receive(ws, within=0.005)


# -- sizes -------------------------------------------------------------------------------------
async def test_a_win_message_and_its_id_stay_small_at_1000_visible_instances(
    client: QuartClient, gateway: Services, tmp_path: Path
) -> None:
    await load_demo(gateway)
    many = [
        instance(f"i{n:04d}", pots=WINNING, allowed_brands=["demo:brand1", "rival:main"])
        for n in range(1000)
    ]
    path = tmp_path / "many.json"
    path.write_text(json.dumps({"instances": many}))
    await gateway.admin.apply(read_definitions(path), lambda name: None)
    async with client.websocket("/events") as ws:
        await ws.send(authenticate(gateway.tokens.issue(DEMO)))
        authenticated = await receive_until(ws, "Authenticated")
        assert len(authenticated["data"]["instance_ids"]) >= 1000
        body = {**contribution("i0999", "p1"), "event_metadata": {"campaign": "spring"}}
        await expect(await post(client, "/jackpots/contribute", body, auth(gateway, DEMO)), 200)
        while True:
            text = await ws.receive()
            if '"JackpotWinEvent"' in text:
                break
    size = len(text.encode() if isinstance(text, str) else text)
    event_id = parse_event(text)["event_id"]
    assert size <= 1024, size
    assert len(event_id.encode()) <= 64, event_id


def parse_event(text: str | bytes) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(text)
    return message
