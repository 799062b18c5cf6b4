"""The event catalogue's contract: every event any Lua script emits decodes with its schema.

Each event type a script emits (found in the scripts' `emit_event(...)` calls) has a scenario
below that makes the scripts emit it through the public API, on real Redis and on fakeredis;
every entry of every events stream, and every message published, is then decoded with
app/schemas/events.py (unknown types, missing or extra fields fail).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from marshmallow import ValidationError
from quart.testing import QuartClient

from app.core.clock import now_ms
from app.schemas.events import EVENT_SCHEMAS, EventType, decode_event, encode_event
from app.services import Services
from app.store import keys
from app.store.scripts import lua_dir
from tests.support.definitions import hit_rate, pot
from tests.support.http import create_instance, expect, post, set_status, v1_body

Scenario = Callable[[QuartClient, dict[str, str]], Awaitable[None]]


async def a_win(client: QuartClient, headers: dict[str, str]) -> None:
    await create_instance(
        client, headers, {**_instance("ev-win"), "pots": [pot("mini", "0.70", hit_rate(1))]}
    )
    body = v1_body("ev-win", event_metadata={"n": 12345678901234567890, "s": "é"})
    assert (await expect(await post(client, "/jackpots/contribute", body, headers), 200))[
        "win_pot_id"
    ] == "mini"


async def an_opt_in_and_out(client: QuartClient, headers: dict[str, str]) -> None:
    await create_instance(client, headers, {**_instance("ev-opt"), "opt_in_required": True})
    for opt_in, value in ((True, "0.37"), (False, None)):
        body: dict[str, Any] = {
            "instance_id": "ev-opt",
            "player_id": "p1",
            "brand_id": "demo:brand1",
            "player_country": "DE",
            "opt_in": opt_in,
        }
        if value is not None:
            body |= {"contribution_value": value, "contribution_currency": "GBP"}
        await expect(await post(client, "/jackpots/optin", body, headers), 200)


async def a_raffle_draw(client: QuartClient, headers: dict[str, str]) -> None:
    raffle = {"ticket_cost": "0.50", "prizes": ["1", "2"], "draw": {"every": "1h"}}
    await create_instance(
        client, headers, {**_instance("ev-raffle"), "jackpot_type": "Raffle", "raffle": raffle}
    )
    await expect(await post(client, "/jackpots/contribute", v1_body("ev-raffle"), headers), 200)
    later = now_ms() + 3_600_000  # the round has ended
    with mock.patch("app.services.raffles.now_ms", lambda: later):
        await expect(await client.post("/admin/instances/ev-raffle/draw", headers=headers), 200)


async def an_empty_raffle_draw(client: QuartClient, headers: dict[str, str]) -> None:
    """No ticket: a RaffleNoWinnersEvent; the draw opens round 2 (RaffleRoundOpenedEvent), as
    the instance's creation opened round 1."""
    raffle = {"ticket_cost": "0.50", "prizes": ["1"], "draw": {"every": "1h"}}
    await create_instance(
        client, headers, {**_instance("ev-empty"), "jackpot_type": "Raffle", "raffle": raffle}
    )
    later = now_ms() + 3_600_000  # the round has ended
    with mock.patch("app.services.raffles.now_ms", lambda: later):
        await expect(await client.post("/admin/instances/ev-empty/draw", headers=headers), 200)


async def a_win_decision(client: QuartClient, headers: dict[str, str]) -> None:
    held = {**_instance("ev-held"), "pots": [pot("mini", "0.70", hit_rate(1))]}
    await create_instance(client, headers, {**held, "auto_payout_limit": "0.5"})
    response = await post(client, "/jackpots/contribute", v1_body("ev-held"), headers)
    assert (await expect(response, 200))["win_withheld"] is True
    path = f"/admin/instances/ev-held/wins/{response.headers['X-Contribution-Id']}/approve"
    await expect(await post(client, path, {"reason": "é checked"}, headers), 200)


async def status_changes(client: QuartClient, headers: dict[str, str]) -> None:
    await create_instance(client, headers, _instance("ev-status"))
    for action in ("pause", "resume", "terminate"):
        await set_status(client, headers, "ev-status", action)
    await set_status(client, headers, "ev-status", "terminate")  # done already: no event


SCENARIOS: dict[str, Scenario] = {
    EventType.JACKPOT_WIN.value: a_win,
    EventType.OPT_IN.value: an_opt_in_and_out,
    EventType.RAFFLE_WIN.value: a_raffle_draw,
    EventType.RAFFLE_NO_WINNERS.value: an_empty_raffle_draw,
    EventType.RAFFLE_ROUND_OPENED.value: an_empty_raffle_draw,
    EventType.WIN_DECISION.value: a_win_decision,
    EventType.INSTANCE_STATUS.value: status_changes,
}


def _instance(instance_id: str) -> dict[str, Any]:
    return {
        "id": instance_id,
        "name": f"Jackpot {instance_id}",
        "currency": "EUR",
        "contribution_type": {"Fixed": "1.00"},
        "allowed_brands": ["demo:brand1"],
        "house_share": "0.30",
        "pots": [pot("main", "0.70")],
    }


def emitted_types() -> set[str]:
    """The event types named in every script's emit_event(...) calls (includes expanded)."""
    found: set[str] = set()
    for path in sorted(Path(lua_dir()).rglob("*.lua")):
        found |= set(re.findall(r"emit_event\([^)]*'([A-Za-z]+)'", path.read_text()))
    return found


def test_every_emitted_event_type_is_in_the_catalogue_and_has_a_scenario() -> None:
    emitted = emitted_types()
    assert emitted >= {"JackpotWinEvent", "OptInEvent"}
    assert emitted <= {t.value for t in EventType}
    assert emitted <= set(SCENARIOS), emitted - set(SCENARIOS)


def test_only_the_emit_include_publishes_or_writes_an_events_stream() -> None:
    for path in sorted(Path(lua_dir()).rglob("*.lua")):
        if path.name == "events.lua":
            continue
        code = "\n".join(
            line for line in path.read_text().splitlines() if not line.lstrip().startswith("--")
        )
        assert not re.search(r"'S?PUBLISH'|'payload'", code), path.name


@pytest.mark.parametrize("event_type", sorted(SCENARIOS))
async def test_every_event_a_script_emits_decodes_with_its_schema(
    client: QuartClient, headers: dict[str, str], gateway: Services, event_type: str
) -> None:
    store = gateway.store
    before = {
        key: await store.client.xrange(key) for key in await store.client.keys("{jp:*}:events")
    }
    pubsub = store.client.pubsub()
    await pubsub.psubscribe("{jp:*}:channel")
    await pubsub.get_message(timeout=1)
    try:
        await SCENARIOS[event_type](client, headers)
        published = []
        while message := await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5):
            published.append(message["data"])
    finally:
        await pubsub.aclose()
    entries = []  # what the scenario emitted (the demo's instances emitted theirs before)
    for key in await store.client.keys("{jp:*}:events"):
        entries += [
            e for _, e in await store.client.xrange(key) if (_, e) not in before.get(key, [])
        ]
    assert entries, "the scenario emitted nothing"
    assert [entry["payload"] for entry in entries] == published
    for entry in entries:
        event = decode_event(entry["payload"])
        assert (event["event_type"].value, event["event_id"]) == (
            entry["event_type"],
            entry["event_id"],
        )
    assert event_type in {entry["event_type"] for entry in entries}


async def test_each_status_change_emits_one_status_event(
    client: QuartClient, headers: dict[str, str], gateway: Services
) -> None:
    await status_changes(client, headers)
    entries = await gateway.store.client.xrange(keys.instance_events("ev-status"))
    changes = [
        (data["previous_status"], data["status"])
        for data in (decode_event(fields["payload"])["data"] for _, fields in entries)
    ]
    assert changes == [("Active", "Paused"), ("Paused", "Active"), ("Active", "Terminated")]


async def test_a_win_event_carries_the_published_fields_exactly(
    client: QuartClient, headers: dict[str, str], gateway: Services
) -> None:
    await a_win(client, headers)
    [(_, entry)] = await gateway.store.client.xrange(keys.instance_events("ev-win"))
    data = decode_event(entry["payload"])["data"]
    assert set(data) == set(EVENT_SCHEMAS[EventType.JACKPOT_WIN]().fields)
    assert (data["brand_id"], data["player_id"], data["win_pot_id"]) == (
        "demo:brand1",
        "p1",
        "mini",
    )
    assert data["metadata"] == {"n": 12345678901234567890, "s": "é"}
    assert (data["win_amount"], data["seed"], data["seed_deficit"]) == ("0.7", "0", "0")
    assert data["currency_multipliers"]["EUR"] == Decimal(1)


def test_decoding_refuses_what_is_not_in_the_catalogue() -> None:
    good = encode_event(
        EventType.OPT_IN,
        "e1",
        {
            "instance_id": "i",
            "player_id": "p",
            "ext_player_id": "p",
            "player_brand_id": "o:b",
            "preferred_contribution_value": "0.5",
            "contribution_count": 1,
            "contribution_value": "0.5",
            "opted_in": True,
            "last_updated": 1,
        },
    )
    assert decode_event(good)["data"]["opted_in"] is True
    for bad in (
        good.replace("OptInEvent", "SomethingElse"),
        good.replace('"opted_in"', '"opted_out"'),  # an unknown field, a missing one
        good.replace('"0.5"', "0.5", 1),  # money is a decimal string, never a number
    ):
        with pytest.raises(ValidationError):
            decode_event(bad)


async def test_the_events_stream_cap_comes_from_configuration(
    client: QuartClient, headers: dict[str, str], gateway: Services
) -> None:
    gateway.store.events_cap = 5
    await create_instance(
        client, headers, {**_instance("capped"), "pots": [pot("m", "0.7", hit_rate(1))]}
    )
    for i in range(130):
        await expect(
            await post(
                client, "/jackpots/contribute", v1_body("capped", player_id=f"p{i}"), headers
            ),
            200,
        )
    # XADD MAXLEN ~ trims whole macro nodes (100 entries by default): near the cap, not at it
    assert 5 <= await gateway.store.client.xlen(keys.instance_events("capped")) <= 105


@pytest.mark.parametrize("event_type", sorted(SCENARIOS))
async def test_every_emitting_script_gives_its_stream_an_epoch(
    client: QuartClient, headers: dict[str, str], gateway: Services, event_type: str
) -> None:
    """The first event of a stream sets its epoch (base36 of that call's now_ms, SET NX);
    later events keep it; a stream lost with its epoch gets a new one."""
    await SCENARIOS[event_type](client, headers)
    streams = await gateway.store.client.keys("{jp:*}:events")
    assert streams
    for stream in streams:
        epoch = await gateway.store.client.get(stream + ":epoch")
        assert epoch is not None and re.fullmatch(r"[0-9a-z]{1,16}", epoch), stream


async def test_the_epoch_is_the_first_events_time_and_a_lost_stream_gets_another(
    client: QuartClient, headers: dict[str, str], gateway: Services
) -> None:
    redis = gateway.store.client

    async def epoch_and_times() -> tuple[int, list[int]]:
        epoch = await redis.get(keys.instance_events_epoch("ev-epoch"))
        entries = await redis.xrange(keys.instance_events("ev-epoch"))
        times = [decode_event(e["payload"])["data"]["timestamp"] for _, e in entries]
        return int(epoch, 36), times

    await create_instance(client, headers, _instance("ev-epoch"))
    await set_status(client, headers, "ev-epoch", "pause")
    await asyncio.sleep(0.005)
    await set_status(client, headers, "ev-epoch", "resume")
    epoch, times = await epoch_and_times()
    assert len(times) == 2 and epoch == times[0] < times[1]  # SET NX: the first one's
    await redis.delete(keys.instance_events("ev-epoch"), keys.instance_events_epoch("ev-epoch"))
    await asyncio.sleep(0.005)
    await set_status(client, headers, "ev-epoch", "pause")
    new_epoch, (time,) = await epoch_and_times()
    assert new_epoch == time != epoch
