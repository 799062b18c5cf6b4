"""GET /events through the app's test client: authentication and its close codes, the
snapshot, live wins and opt-ins, pot updates, filters, visibility and masking, resume."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from decimal import Decimal
from typing import Any

import pytest
from quart import Quart
from quart.testing import QuartClient

from app.core.config import Settings
from app.core.security import Principal
from app.services import Services
from app.store import keys
from tests.conftest import DEMO, PLATFORM, RIVAL, auth, load_demo, make_settings
from tests.support.definitions import hit_rate, instance, pot
from tests.support.events import (
    authenticate,
    close_code,
    pots,
    receive,
    receive_until,
    subscribe,
    tag_of,
)
from tests.support.http import contribution, create_instance, expect, post, set_status

pytestmark = pytest.mark.timeout(60)

EVENT_METADATA = {"campaign": "spring", "odds": Decimal("1.25"), "big": 12345678901234567890}


@pytest.fixture
def redis_url(request: pytest.FixtureRequest) -> str:
    """fakeredis, unless a test asks for both backends (BOTH)."""
    if getattr(request, "param", "fake") == "real":
        return str(request.getfixturevalue("real_redis_url"))
    return f"memory://events-{uuid.uuid4().hex}"


# Streams, pub/sub and XINFO on real Redis too; the rest is backend-independent.
BOTH = pytest.mark.parametrize("redis_url", ["real", "fake"], indirect=True)


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return make_settings(redis_url, update_interval_s=0.2, events_auth_timeout_s=0.5)


@pytest.fixture
async def headers(gateway: Services, client: QuartClient) -> dict[str, str]:
    """Demo loaded, plus `lucky` (every contribution of 1.00 wins its `mini` pot, and adds
    0.20 to its `grand` pot) shared with operator rival, and `private` (the same pots, demo's
    brands only)."""
    await load_demo(gateway)
    headers = auth(gateway, DEMO)
    winning = [pot("mini", "0.5", hit_rate(1), seed="10"), pot("grand", "0.2")]
    await create_instance(
        client,
        auth(gateway, PLATFORM),  # shared by two operators: the platform's to create
        instance(
            "lucky",
            pots=winning,
            house_share="0.3",
            allowed_brands=["demo:brand1", "rival:main"],
        ),
    )
    await create_instance(client, headers, instance("private", pots=winning, house_share="0.3"))
    return headers


async def win(client: QuartClient, headers: dict[str, str], instance_id: str, **fields: Any) -> str:
    """A contribution that wins; the tag in its event_metadata, which its win event carries."""
    tag = uuid.uuid4().hex
    metadata = {**fields.pop("event_metadata", {}), "tag": tag}
    body = {**contribution(instance_id, "p1"), **fields, "event_metadata": metadata}
    response = await post(client, "/jackpots/contribute", body, headers)
    result = await expect(response, 200)
    assert result["win_pot_id"] == "mini"
    return tag


async def connect(client: QuartClient, token: str, positions: dict[str, str] | None = None) -> Any:
    ws = client.websocket("/events")
    connection = await ws.__aenter__()
    await connection.send(authenticate(token, positions))
    return connection


# -- authentication ------------------------------------------------------------------------
async def test_first_frame_authenticates_then_a_snapshot_of_the_active_instances(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    await set_status(client, headers, "private", "pause")
    async with client.websocket("/events") as ws:
        await ws.send(authenticate(gateway.tokens.issue(DEMO)))
        first = await receive(ws)
        assert first["event_type"] == "Authenticated"
        assert first["data"]["operator_id"] == "demo"
        snapshot = {}
        for _ in range(3):  # daily-drop, lucky, weekly-raffle: Active; private is Paused
            message = await receive(ws)
            assert message["event_type"] == "JackpotUpdateEvent"
            snapshot[message["data"]["id"]] = message
    assert set(snapshot) == {"daily-drop", "lucky", "weekly-raffle"}
    daily = snapshot["daily-drop"]["data"]
    assert pots(snapshot["daily-drop"]) == {
        "mini": Decimal(10),
        "minor": Decimal(100),
        "major": Decimal(1000),
    }
    assert daily["status"] == "Active" and daily["currency"] == "EUR"
    assert daily["jackpot_type"] == "Jackpot"
    assert daily["allowed_brands"] == ["demo:brand1", "demo:brand2"]
    assert sorted(daily["allowed_sources"]) == ["sportsbook", "starburst"]
    assert {"timestamp_start", "timestamp_end", "last_updated"} <= set(daily)
    # an update carries its channel's position (before any event: offset 0-0)
    assert all(re.fullmatch(r"[0-9a-z]+:\d+-\d+", m["event_id"]) for m in snapshot.values())
    assert all(m["channel"] == i for i, m in snapshot.items())
    assert daily["name"] == "Daily Drop" and daily["next_draw_at"] is None
    assert daily["recent_wins"] == []


async def test_a_query_token_authenticates(client: QuartClient, gateway: Services) -> None:
    await load_demo(gateway)
    async with client.websocket(f"/events?token={gateway.tokens.issue(DEMO)}") as ws:
        assert (await receive(ws))["event_type"] == "Authenticated"


@pytest.mark.parametrize(
    "first_frame",
    [
        authenticate("not.a.token"),
        json.dumps({"Authenticate": {}}),
        json.dumps({"SubscribeRequest": {"events": [{"event_type": "*"}]}}),
        "not json",
    ],
    ids=["bad-token", "no-token", "not-authenticate", "not-json"],
)
async def test_a_bad_first_frame_closes_4401(
    client: QuartClient, gateway: Services, first_frame: str
) -> None:
    async with client.websocket("/events") as ws:
        await ws.send(first_frame)
        assert await close_code(ws) == 4401


async def test_a_bad_query_token_closes_4401(client: QuartClient) -> None:
    async with client.websocket("/events?token=forged") as ws:
        assert await close_code(ws) == 4401


async def test_silence_closes_4401(client: QuartClient) -> None:
    started = time.monotonic()
    async with client.websocket("/events") as ws:
        assert await close_code(ws) == 4401
    assert 0.4 < time.monotonic() - started < 3  # events_auth_timeout_s = 0.5 here


async def test_an_expired_token_closes_4401(client: QuartClient, gateway: Services) -> None:
    expired = gateway.tokens.issue(DEMO, now=time.time() - gateway.tokens.ttl_s - 60)
    async with client.websocket("/events") as ws:
        await ws.send(authenticate(expired))
        assert await close_code(ws) == 4401


async def test_the_socket_closes_4401_when_its_token_expires(
    client: QuartClient, gateway: Services
) -> None:
    await load_demo(gateway)
    expiring = gateway.tokens.issue(DEMO, now=time.time() - gateway.tokens.ttl_s + 1)
    async with client.websocket("/events") as ws:
        await ws.send(authenticate(expiring))
        assert (await receive(ws))["event_type"] == "Authenticated"
        started = time.monotonic()
        assert await close_code(ws, within=5) == 4401
    assert time.monotonic() - started < 3


@pytest.mark.usefixtures("cheap_passwords")
async def test_a_revoked_token_is_refused_and_an_open_socket_closes_4401(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    account = {"username": "ticker", "password": "ticker-password-1", "operator_id": "demo"}
    await expect(await client.post("/admin/accounts", json=account, headers=headers), 201)
    token = gateway.tokens.issue(Principal("ticker", "demo", ("operator",)))
    async with client.websocket("/events") as ws:
        await ws.send(authenticate(token))
        assert (await receive(ws))["event_type"] == "Authenticated"
        deleted = await client.delete("/admin/accounts/ticker", headers=headers)
        assert deleted.status_code == 204
        assert await close_code(ws, within=3) == 4401  # at the next tick (0.2 s here)
    async with client.websocket("/events") as ws:
        await ws.send(authenticate(token))
        assert await close_code(ws) == 4401


# -- what flows ----------------------------------------------------------------------------
@BOTH
async def test_a_win_reaches_the_client_with_its_fields_and_metadata_then_pots_update(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    async with client.websocket("/events") as ws:
        await ws.send(authenticate(gateway.tokens.issue(DEMO)))
        before = await receive_until(ws, "JackpotUpdateEvent")
        while before["data"]["id"] != "lucky":
            before = await receive_until(ws, "JackpotUpdateEvent")
        win_id = await win(client, headers, "lucky", event_metadata=EVENT_METADATA)
        # The win event and the next pot update may come in either order.
        event = update = None
        while event is None or update is None:
            message = await receive(ws)
            if message["event_type"] == "JackpotWinEvent":
                event = message
            elif message["data"]["id"] == "lucky" and pots(message)["grand"] > 0:
                update = message
        data = event["data"]
        assert tag_of(event) == win_id
        assert (data["instance_id"], data["win_pot_id"], data["player_id"]) == (
            "lucky",
            "mini",
            "p1",
        )
        assert data["brand_id"] == "demo:brand1" and data["jackpot_name"] == "Jackpot lucky"
        # the pot held its seed 10 plus half of the 1.00 contribution
        assert Decimal(data["win_amount"]) == Decimal("10.5")
        assert Decimal(data["seed"]) == Decimal(10) and data["jackpot_currency"] == "EUR"
        assert data["metadata"] == {**EVENT_METADATA, "tag": win_id}
        assert data["currency_multipliers"]["USD"] == Decimal("1.08")
        assert event["event_id"] != before["event_id"]
        # mini reseeded at 10 from an empty reserve (the deficit is operator money)
        assert pots(update) == {"mini": Decimal(10), "grand": Decimal("0.2")}


@BOTH
async def test_the_first_win_of_an_instance_created_after_connecting_is_delivered(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    """The win comes right after the creation, before the next update tick."""
    async with client.websocket("/events") as ws:
        await ws.send(authenticate(gateway.tokens.issue(DEMO)))
        assert "newcomer" not in (await receive_until(ws, "Authenticated"))["data"]["instance_ids"]
        winning = [pot("mini", "0.5", hit_rate(1), seed="10"), pot("grand", "0.2")]
        await create_instance(
            client, headers, instance("newcomer", pots=winning, house_share="0.3")
        )
        tag = await win(client, headers, "newcomer")
        event = await receive_until(ws, "JackpotWinEvent")
        assert (event["data"]["instance_id"], tag_of(event)) == ("newcomer", tag)
        assert Decimal(event["data"]["win_amount"]) == Decimal("10.5")


async def test_pot_updates_carry_only_changed_instances(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    async with client.websocket("/events") as ws:
        await ws.send(authenticate(gateway.tokens.issue(DEMO)))
        for _ in range(5):  # Authenticated + 4 snapshot updates
            await receive(ws)
        body = {**contribution("weekly-raffle", "p1"), "base_wager": "10.00"}
        await expect(await post(client, "/jackpots/contribute", body, headers), 200)
        update = await receive(ws)
        assert update["event_type"] == "JackpotUpdateEvent"
        assert update["data"]["id"] == "weekly-raffle"
        # 1% of 10.00 is 0.10; half of it to the prize pool
        assert pots(update) == {"prize-pool": Decimal("0.05")}
        with pytest.raises(TimeoutError):
            await receive(ws, within=0.6)  # three ticks: nothing else changed


async def test_opt_in_events_flow(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    async with client.websocket("/events") as ws:
        await ws.send(authenticate(gateway.tokens.issue(DEMO)))
        await receive_until(ws, "Authenticated")
        body = {
            "instance_id": "daily-drop",
            "player_id": "p7",
            "brand_id": "demo:brand2",
            "player_country": "DE",
            "opt_in": True,
        }
        await expect(await client.post("/jackpots/optin", json=body, headers=headers), 200)
        event = await receive_until(ws, "OptInEvent")
        data = event["data"]
        assert (data["instance_id"], data["player_id"], data["player_brand_id"]) == (
            "daily-drop",
            "p7",
            "demo:brand2",
        )
        assert data["opted_in"] is True


async def test_a_subscribe_request_filters_event_types_and_instances(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    async with client.websocket("/events") as ws:
        await ws.send(authenticate(gateway.tokens.issue(DEMO)))
        await ws.send(subscribe("JackpotWinEvent", instance_ids=["private"]))
        await receive_until(ws, "Subscribed")
        await win(client, headers, "lucky")  # another instance: filtered out
        await client.post(
            "/jackpots/optin",
            headers=headers,
            json={
                "instance_id": "private",
                "player_id": "p1",
                "brand_id": "demo:brand1",
                "player_country": "DE",
                "opt_in": True,
            },
        )  # another event type: filtered out
        win_id = await win(client, headers, "private")
        event = await receive(ws)  # no pot update, no opt-in, no other instance in between
        assert event["event_type"] == "JackpotWinEvent"
        assert tag_of(event) == win_id
        await ws.send(subscribe("*"))
        await receive_until(ws, "Subscribed")
        await win(client, headers, "lucky")
        assert (await receive_until(ws, "JackpotWinEvent"))["data"]["instance_id"] == "lucky"


async def test_a_bad_subscribe_request_is_answered_with_an_error(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    async with client.websocket("/events") as ws:
        await ws.send(authenticate(gateway.tokens.issue(DEMO)))
        await ws.send(subscribe("NoSuchEvent"))
        error = await receive_until(ws, "Error")
        assert error["data"]["code"] == "VALIDATION_ERROR"
        assert "events" in error["data"]["details"]


@BOTH
async def test_operators_see_only_their_instances_and_other_players_are_masked(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    rival = await connect(client, gateway.tokens.issue(RIVAL))
    demo = await connect(client, gateway.tokens.issue(DEMO))
    try:
        authenticated = await receive(rival)
        assert authenticated["data"]["instance_ids"] == ["lucky"]
        snapshot = await receive(rival)
        assert snapshot["data"]["id"] == "lucky"
        assert snapshot["data"]["allowed_brands"] == ["rival:main"]  # not demo's brands
        await receive_until(demo, "Authenticated")
        await win(client, headers, "private", event_metadata=EVENT_METADATA)
        shared = await win(client, headers, "lucky", event_metadata=EVENT_METADATA)
        seen_by_rival = await receive_until(rival, "JackpotWinEvent")
        assert seen_by_rival["data"]["instance_id"] == "lucky"  # never `private`
        assert seen_by_rival["data"]["player_id"] == "***"
        assert seen_by_rival["data"]["metadata"] is None
        assert Decimal(seen_by_rival["data"]["win_amount"]) == Decimal("10.5")
        first = await receive_until(demo, "JackpotWinEvent")
        second = await receive_until(demo, "JackpotWinEvent")
        assert [first["data"]["instance_id"], second["data"]["instance_id"]] == [
            "private",
            "lucky",
        ]
        assert second["data"]["player_id"] == "p1"
        assert second["data"]["metadata"] == {**EVENT_METADATA, "tag": shared}
    finally:
        await rival.__aexit__(None, None, None)
        await demo.__aexit__(None, None, None)


# -- resume (per channel: docs/events.md) ---------------------------------------------------
def positions_after(messages: list[dict[str, Any]]) -> dict[str, str]:
    """What a client keeps: the last event id received on each channel."""
    return {m["channel"]: m["event_id"] for m in messages if m["event_id"] is not None}


@BOTH
async def test_resume_replays_every_missed_event_in_order_once_then_live(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    token = gateway.tokens.issue(DEMO)
    async with client.websocket("/events") as ws:
        await ws.send(authenticate(token))
        await ws.send(subscribe("JackpotWinEvent", "OptInEvent"))
        await receive_until(ws, "Subscribed")
        await win(client, headers, "lucky")
        await win(client, headers, "private")
        seen = [await receive_until(ws, "JackpotWinEvent") for _ in range(2)]
    assert {m["channel"] for m in seen} == {"lucky", "private"}
    assert all(len(m["event_id"].encode()) <= 64 for m in seen)
    missed = []
    for n in range(50):  # alternate channels: the replay merges two streams
        missed.append(await win(client, headers, "lucky" if n % 2 else "private"))
        # Stream ids order events of different instances by the millisecond only: two
        # wins in one millisecond have no order between them to check.
        await asyncio.sleep(0.002)
    async with client.websocket("/events") as ws:
        await ws.send(authenticate(token, positions_after(seen)))
        assert (await receive(ws))["event_type"] == "Authenticated"
        # (the process may not have read the last ones yet: those come live, after the
        # pots' current values that follow a replay)
        replayed = [await receive_until(ws, "JackpotWinEvent") for _ in range(50)]
        assert [tag_of(m) for m in replayed] == missed
        assert len({m["event_id"] for m in replayed}) == 50
        for channel in ("lucky", "private"):  # each channel's offsets strictly increase
            offsets = [
                tuple(int(x) for x in m["event_id"].split(":")[1].split("-"))
                for m in replayed
                if m["channel"] == channel
            ]
            assert offsets == sorted(offsets) and len(set(offsets)) == 25
        live = await win(client, headers, "lucky")
        assert tag_of(await receive_until(ws, "JackpotWinEvent")) == live
        resume_from = positions_after(replayed[:25])
    # from the middle of the replay: the 25 after it, then the live one
    async with client.websocket("/events") as ws:
        await ws.send(authenticate(token, resume_from))
        assert (await receive(ws))["event_type"] == "Authenticated"
        again = [tag_of(await receive_until(ws, "JackpotWinEvent")) for _ in range(26)]
        assert again == [*missed[25:], live]


async def test_a_channel_without_a_position_gets_a_snapshot_and_no_replay(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    token = gateway.tokens.issue(DEMO)
    async with client.websocket("/events") as watcher:  # keeps the process up to date
        await watcher.send(authenticate(token))
        await receive_until(watcher, "Authenticated")
        await win(client, headers, "lucky")
        last = await receive_until(watcher, "JackpotWinEvent")
        await win(client, headers, "private")  # a channel the client gives no position for
        missed = await win(client, headers, "lucky")
        for _ in range(2):
            await receive_until(watcher, "JackpotWinEvent")
        async with client.websocket("/events") as ws:
            await ws.send(authenticate(token, {"lucky": last["event_id"]}))
            await receive_until(ws, "Authenticated")
            replayed = await receive(ws)
            assert replayed["event_type"] == "JackpotWinEvent"
            assert (replayed["channel"], tag_of(replayed)) == ("lucky", missed)
            updates = [await receive(ws) for _ in range(4)]
            assert {m["event_type"] for m in updates} == {"JackpotUpdateEvent"}
            channels = sorted(m["channel"] for m in updates)
            assert channels == ["daily-drop", "lucky", "private", "weekly-raffle"]


async def test_an_updates_event_id_is_its_channels_position_to_resume_from(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    """A ticker that shows only pot values still resumes exactly: an update carries the id
    of the last stream event of its channel before it."""
    token = gateway.tokens.issue(DEMO)
    async with client.websocket("/events") as ws:
        await ws.send(authenticate(token, instance_ids=["lucky"]))
        update = await receive_until(ws, "JackpotUpdateEvent")
        assert update["channel"] == "lucky"
    missed = [await win(client, headers, "lucky") for _ in range(2)]
    async with client.websocket("/events") as ws:
        await ws.send(authenticate(token, {"lucky": update["event_id"]}, instance_ids=["lucky"]))
        await receive_until(ws, "Authenticated")
        assert [tag_of(await receive_tag_any(ws)) for _ in missed] == missed


async def receive_tag_any(ws: Any) -> dict[str, Any]:
    return await receive_until(ws, "JackpotWinEvent")


async def receive_tag(ws: Any, tag: str) -> dict[str, Any]:
    """The win event with this tag (earlier wins the process had not read yet come live
    first)."""
    while True:
        event = await receive_until(ws, "JackpotWinEvent")
        if tag_of(event) == tag:
            return event


async def resume_failed(
    client: QuartClient, token: str, positions: dict[str, str]
) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """Reconnect with these positions: the ResumeFailed message, the snapshot of its channel
    that follows, and the open socket."""
    ws = client.websocket("/events")
    connection = await ws.__aenter__()
    await connection.send(authenticate(token, positions))
    assert (await receive(connection))["event_type"] == "Authenticated"
    failed = await receive(connection)
    assert failed["event_type"] == "ResumeFailed", failed
    snapshot = await receive(connection)
    assert snapshot["event_type"] == "JackpotUpdateEvent"
    assert snapshot["channel"] == failed["channel"] and "recent_wins" in snapshot["data"]
    return failed, snapshot, connection


@BOTH
async def test_a_trimmed_position_gets_resume_failed_and_a_snapshot_of_that_channel(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    token = gateway.tokens.issue(DEMO)
    async with client.websocket("/events") as ws:
        await ws.send(authenticate(token))
        await receive_until(ws, "Authenticated")
        await win(client, headers, "lucky")
        last = await receive_until(ws, "JackpotWinEvent")
    for _ in range(3):
        await win(client, headers, "lucky")
    # The capped stream dropped the oldest entries, the client's last one among them.
    await gateway.store.client.xtrim(keys.instance_events("lucky"), maxlen=2, approximate=False)
    failed, _, ws = await resume_failed(client, token, {"lucky": last["event_id"]})
    try:
        assert failed["data"]["reason"] == "trimmed"
        assert failed["data"]["position"] == last["event_id"]
        assert failed["event_id"] is None
        live = await win(client, headers, "lucky")
        await receive_tag(ws, live)
    finally:
        await ws.__aexit__(None, None, None)


@BOTH
async def test_a_lost_stream_changes_the_epoch_and_the_old_position_is_refused(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    token = gateway.tokens.issue(DEMO)
    async with client.websocket("/events") as ws:
        await ws.send(authenticate(token))
        await receive_until(ws, "Authenticated")
        await win(client, headers, "lucky")
        last = await receive_until(ws, "JackpotWinEvent")
    # Redis lost the instance's events (a flush, a restore): the stream and its epoch key.
    await gateway.store.client.delete(
        keys.instance_events("lucky"), keys.instance_events_epoch("lucky")
    )
    await asyncio.sleep(0.005)  # the new epoch is the ms of the next first event
    await win(client, headers, "lucky")
    failed, _, ws = await resume_failed(client, token, {"lucky": last["event_id"]})
    try:
        assert failed["data"]["reason"] == "epoch"
        old_epoch = last["event_id"].split(":")[0]
        assert failed["data"]["epoch"] != old_epoch
        live = await win(client, headers, "lucky")
        event = await receive_tag(ws, live)
        assert event["event_id"].split(":")[0] == failed["data"]["epoch"]
    finally:
        await ws.__aexit__(None, None, None)


@BOTH
async def test_a_position_ahead_of_the_stream_is_refused_and_live_events_still_flow(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    """Before epochs, such a cursor silently swallowed every live event."""
    token = gateway.tokens.issue(DEMO)
    async with client.websocket("/events") as ws:
        await ws.send(authenticate(token))
        await receive_until(ws, "Authenticated")
        await win(client, headers, "lucky")
        last = await receive_until(ws, "JackpotWinEvent")
    epoch, offset = last["event_id"].split(":")
    ahead = f"{epoch}:{int(offset.split('-')[0]) + 3_600_000}-0"  # an hour ahead
    failed, _, ws = await resume_failed(client, token, {"lucky": ahead})
    try:
        assert failed["data"]["reason"] == "ahead"
        tags = [await win(client, headers, "lucky") for _ in range(3)]
        assert [tag_of(await receive_until(ws, "JackpotWinEvent")) for _ in tags] == tags
    finally:
        await ws.__aexit__(None, None, None)


@pytest.mark.parametrize(
    "garbage", ["garbage!", "", "abc", "x" * 65, "0:1-2-3", "UPPER:1-0", "a:b"]
)
async def test_a_garbage_position_gets_resume_failed_invalid_and_a_snapshot(
    client: QuartClient, gateway: Services, headers: dict[str, str], garbage: str
) -> None:
    failed, _, ws = await resume_failed(client, gateway.tokens.issue(DEMO), {"lucky": garbage})
    try:
        assert (failed["channel"], failed["data"]["reason"]) == ("lucky", "invalid")
    finally:
        await ws.__aexit__(None, None, None)


async def test_positions_outside_the_subscription_are_ignored(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    """rival sees only `lucky`: a position for demo's `private` is not even judged."""
    async with client.websocket("/events") as ws:
        await ws.send(authenticate(gateway.tokens.issue(RIVAL), {"private": "garbage"}))
        assert (await receive(ws))["event_type"] == "Authenticated"
        snapshot = await receive(ws)
        assert (snapshot["event_type"], snapshot["channel"]) == ("JackpotUpdateEvent", "lucky")
        with pytest.raises(TimeoutError):
            await receive(ws, within=0.3)


async def test_the_old_all_instances_cursor_is_ignored(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    """An old client's `last_event_id` (a cursor over every instance, up to 17 KB) is not
    read: a fresh snapshot follows, with no ResumeFailed."""
    token = gateway.tokens.issue(DEMO)
    frame = json.dumps({"Authenticate": {"token": token, "last_event_id": "x" * 20_000}})
    async with client.websocket("/events") as ws:
        await ws.send(frame)
        assert (await receive(ws))["event_type"] == "Authenticated"
        assert (await receive(ws))["event_type"] == "JackpotUpdateEvent"


async def test_shutdown_closes_every_socket_1001(
    app: Quart, client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    async with client.websocket("/events") as ws:
        await ws.send(authenticate(gateway.tokens.issue(DEMO)))
        await receive(ws)
        for hook in app.extensions["shutdown_hooks"]:
            await hook()
        assert await close_code(ws) == 1001
    assert gateway.events.subscribers == set()


async def test_the_ticker_page_and_its_assets_are_served_without_a_cdn(
    client: QuartClient,
) -> None:
    page = await client.get("/ticker")
    assert page.status_code == 200 and page.content_type.startswith("text/html")
    html = await page.get_data(as_text=True)
    assert "/ticker/ticker.js" in html and "/ticker/ticker.css" in html
    assert "http://" not in html and "https://" not in html
    for name, kind in (("ticker.js", "text/javascript"), ("ticker.css", "text/css")):
        asset = await client.get(f"/ticker/{name}")
        assert asset.status_code == 200 and asset.content_type.startswith(kind)
    missing = await client.get("/ticker/secrets.txt")
    assert missing.status_code == 400
    assert (await missing.get_json())["code"] == "VALIDATION_ERROR"
