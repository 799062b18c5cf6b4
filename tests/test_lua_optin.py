"""Contract of lua/set_optin-5.lua and OptInStore, on real Redis and on fakeredis."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from decimal import Decimal
from typing import Any

import pytest

from app.core.money import format_amount, from_micros
from app.core.refusals import Code
from app.schemas.admin import InstanceSchema
from app.services.engine import compile_engine
from app.store import ScriptRefusal, Store, keys
from app.store.optins import OptInRecord
from app.store.script_table import SET_OPTIN
from app.triggers import initial_state
from tests.conftest import make_settings

NOW = 1_700_000_000_000
INSTANCE = "daily-drop"
OPERATOR, BRAND, PLAYER = "demo", "brand1", "p-1"
PK = keys.player_key(OPERATOR, BRAND, PLAYER)


def definition(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "id": INSTANCE,
        "name": "Daily Drop",
        "currency": "EUR",
        "opt_in_required": True,
        "contribution_type": {"Fixed": "0.10"},
        "allowed_brands": [f"{OPERATOR}:{BRAND}"],
        "house_share": "0.30",
        "pots": [
            {
                "id": "mini",
                "name": "Mini",
                "share": "0.70",
                "seed": "10",
                "trigger": {"HitRate": {"max_magic_number": 5000, "cost_per_attempt": "0.10"}},
            }
        ],
    }
    raw.update(overrides)
    loaded: dict[str, Any] = InstanceSchema().load(raw)
    return loaded


async def create(store: Store, **overrides: Any) -> str:
    loaded = definition(**overrides)
    engine = compile_engine(loaded)
    assert await store.create_instance(
        InstanceSchema().dump(loaded),
        engine,
        now_ms=NOW - 1000,
        status=loaded["status"],
        timestamp_start=loaded["timestamp_start"],
        timestamp_end=loaded["timestamp_end"],
        drop_values=[initial_state(pot["trigger"], NOW) for pot in engine["pots"]],
    )
    return str(loaded["id"])


async def set_optin(
    store: Store,
    opted_in: bool,
    *,
    value: int | None = None,
    raw: str | None = None,
    currency: str | None = None,
    now_ms: int = NOW,
    instance_id: str = INSTANCE,
    player_id: str = PLAYER,
    event_id: str | None = None,
) -> OptInRecord:
    return await store.set_optin(
        instance_id,
        operator_id=OPERATOR,
        brand_id=BRAND,
        player_id=player_id,
        opted_in=opted_in,
        value_micros=value,
        value_raw=raw,
        currency=currency,
        now_ms=now_ms,
        event_id=event_id or str(uuid.uuid4()),
        publish_mode="publish",
    )


async def snapshot(store: Store, pattern: str = "*") -> dict[str, Any]:
    """Every key matching `pattern` with its full content (hash, string, stream, zset)."""
    result: dict[str, Any] = {}
    for key in sorted(await store.client.keys(pattern)):
        kind = await store.client.type(key)
        if kind == "hash":
            result[key] = ("hash", await store.client.hgetall(key))
        elif kind == "string":
            result[key] = ("string", await store.client.get(key))
        elif kind == "stream":
            result[key] = ("stream", await store.client.xrange(key))
        elif kind == "zset":
            result[key] = ("zset", await store.client.zrange(key, 0, -1, withscores=True))
        else:
            raise AssertionError(f"unexpected type {kind} of {key}")
    return result


def instance_pattern(instance_id: str = INSTANCE) -> str:
    return keys.instance_tag(instance_id).replace("{", "\\{").replace("}", "\\}") + "*"


async def events(store: Store, instance_id: str = INSTANCE) -> list[dict[str, str]]:
    entries = await store.client.xrange(keys.instance_events(instance_id))
    return [fields for _, fields in entries]


async def next_message(pubsub: Any, wait_s: float = 3.0) -> dict[str, Any] | None:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
        if message is not None:
            return message
        await asyncio.sleep(0.01)
    return None


# -- the record ---------------------------------------------------------------------------


async def test_opt_in_with_a_preference_stores_and_returns_the_record(store: Store) -> None:
    await create(store)
    record = await set_optin(store, True, value=500_000, raw="0.43", currency="GBP")
    assert record == OptInRecord(
        opted_in=True,
        value_micros=500_000,
        value_raw="0.43",
        currency="GBP",
        contribution_count=0,
        last_updated=NOW,
    )
    assert await store.client.hgetall(keys.instance_optins(INSTANCE)) == {
        f"{PK}|opted_in": "1",
        f"{PK}|value": "500000",
        f"{PK}|value_raw": "0.43",
        f"{PK}|currency": "GBP",
        f"{PK}|count": "0",
        f"{PK}|updated": str(NOW),
    }
    assert await store.optin(INSTANCE, OPERATOR, BRAND, PLAYER) == record


async def test_opt_in_without_a_preference_stores_empty_value(store: Store) -> None:
    await create(store)
    record = await set_optin(store, True)
    assert record == OptInRecord(True, None, None, None, 0, NOW)
    stored = await store.client.hgetall(keys.instance_optins(INSTANCE))
    assert stored[f"{PK}|value"] == ""
    assert stored[f"{PK}|value_raw"] == ""
    assert stored[f"{PK}|currency"] == ""
    assert await store.optin(INSTANCE, OPERATOR, BRAND, PLAYER) == record


async def test_opt_out_flips_the_flag_and_keeps_the_preference(store: Store) -> None:
    await create(store)
    await set_optin(store, True, value=250_000, raw="0.25", currency="EUR")
    record = await set_optin(store, False, now_ms=NOW + 5)
    assert record == OptInRecord(False, 250_000, "0.25", "EUR", 0, NOW + 5)
    assert await store.optin(INSTANCE, OPERATOR, BRAND, PLAYER) == record


async def test_opt_out_ignores_a_preference_sent_with_it(store: Store) -> None:
    await create(store)
    await set_optin(store, True, value=250_000, raw="0.25", currency="EUR")
    record = await set_optin(store, False, value=900_000, raw="0.90", currency="EUR")
    assert (record.opted_in, record.value_micros, record.value_raw) == (False, 250_000, "0.25")


async def test_opting_in_again_keeps_the_contribution_count(store: Store) -> None:
    await create(store)
    await set_optin(store, True)
    # what the contribute script does on each contribution
    await store.client.hincrby(keys.instance_optins(INSTANCE), f"{PK}|count", 7)
    out = await set_optin(store, False, now_ms=NOW + 1)
    again = await set_optin(store, True, value=1_000_000, raw="1", currency="EUR", now_ms=NOW + 2)
    assert out.contribution_count == 7
    assert again == OptInRecord(True, 1_000_000, "1", "EUR", 7, NOW + 2)
    assert await store.optin(INSTANCE, OPERATOR, BRAND, PLAYER) == again


async def test_opting_in_with_no_value_clears_the_preference(store: Store) -> None:
    await create(store)
    await set_optin(store, True, value=250_000, raw="0.25", currency="EUR")
    await set_optin(store, False, now_ms=NOW + 1)
    record = await set_optin(store, True, now_ms=NOW + 2)
    assert record == OptInRecord(True, None, None, None, 0, NOW + 2)
    assert await store.optin(INSTANCE, OPERATOR, BRAND, PLAYER) == record


async def test_changing_the_preference_while_opted_in_updates_it(store: Store) -> None:
    await create(store)
    await set_optin(store, True, value=250_000, raw="0.25", currency="EUR")
    record = await set_optin(store, True, value=300_000, raw="0.33", currency="USD", now_ms=NOW + 9)
    assert record == OptInRecord(True, 300_000, "0.33", "USD", 0, NOW + 9)
    assert len(await events(store)) == 2


async def test_an_identical_repeat_changes_nothing_and_publishes_nothing(store: Store) -> None:
    await create(store)
    first = await set_optin(store, True, value=250_000, raw="0.25", currency="EUR")
    before = await snapshot(store, instance_pattern())
    assert keys.instance_optins(INSTANCE) in before and keys.instance_events(INSTANCE) in before
    repeat = await set_optin(
        store, True, value=250_000, raw="0.25", currency="EUR", now_ms=NOW + 60
    )
    assert repeat == first  # last_updated stays NOW
    assert await snapshot(store, instance_pattern()) == before
    await set_optin(store, False, now_ms=NOW + 70)
    before = await snapshot(store, instance_pattern())
    assert (await set_optin(store, False, now_ms=NOW + 80)).last_updated == NOW + 70
    assert await snapshot(store, instance_pattern()) == before
    assert len(await events(store)) == 2


async def test_a_first_opt_out_creates_a_record(store: Store) -> None:
    await create(store)
    assert await store.optin(INSTANCE, OPERATOR, BRAND, PLAYER) is None
    record = await set_optin(store, False)
    assert record == OptInRecord(False, None, None, None, 0, NOW)
    assert await store.optin(INSTANCE, OPERATOR, BRAND, PLAYER) == record
    assert len(await events(store)) == 1


async def test_players_are_kept_apart(store: Store) -> None:
    await create(store)
    await set_optin(store, True, player_id="alice")
    await set_optin(store, False, player_id="bob")
    alice = await store.optin(INSTANCE, OPERATOR, BRAND, "alice")
    bob = await store.optin(INSTANCE, OPERATOR, BRAND, "bob")
    assert alice is not None and alice.opted_in
    assert bob is not None and not bob.opted_in
    assert await store.optin(INSTANCE, OPERATOR, "brand2", "alice") is None


async def test_optins_many_reads_one_player_across_instances(store: Store) -> None:
    await create(store)
    await create(store, id="other")
    await set_optin(store, True)
    await set_optin(store, False, instance_id="other", now_ms=NOW + 1)
    records = await store.optins_many([INSTANCE, "other", "missing"], OPERATOR, BRAND, PLAYER)
    assert records == {
        INSTANCE: OptInRecord(True, None, None, None, 0, NOW),
        "other": OptInRecord(False, None, None, None, 0, NOW + 1),
    }
    assert await store.optins_many([], OPERATOR, BRAND, PLAYER) == {}


@pytest.mark.parametrize("status", ["Pending", "Paused"])
async def test_pending_and_paused_instances_accept_opt_ins(store: Store, status: str) -> None:
    await create(store, status="Pending", timestamp_start=NOW + 3_600_000)
    if status == "Paused":
        await store.set_status(INSTANCE, "activate", now_ms=NOW, by="test")
        await store.set_status(INSTANCE, "pause", now_ms=NOW, by="test")
    assert (await set_optin(store, True)).opted_in is True


# -- refusals -----------------------------------------------------------------------------


async def test_opting_in_to_a_terminated_instance_is_refused_and_writes_nothing(
    store: Store,
) -> None:
    await create(store)
    await set_optin(store, True, player_id="earlier")
    await store.set_status(INSTANCE, "terminate", now_ms=NOW, by="test")
    before = await snapshot(store)
    with pytest.raises(ScriptRefusal) as caught:
        await set_optin(store, True, value=250_000, raw="0.25", currency="EUR")
    assert caught.value.code is Code.INSTANCE_TERMINATED
    assert await snapshot(store) == before


async def test_opting_out_of_a_terminated_instance_is_allowed(store: Store) -> None:
    await create(store)
    await set_optin(store, True, value=250_000, raw="0.25", currency="EUR")
    await store.set_status(INSTANCE, "terminate", now_ms=NOW, by="test")
    record = await set_optin(store, False, now_ms=NOW + 1)
    assert record == OptInRecord(False, 250_000, "0.25", "EUR", 0, NOW + 1)


async def test_opting_in_after_the_end_is_refused_but_opting_out_is_not(store: Store) -> None:
    await create(store, timestamp_end=NOW + 100)
    await set_optin(store, True, now_ms=NOW + 99)
    before = await snapshot(store)
    with pytest.raises(ScriptRefusal) as caught:
        await set_optin(store, True, value=1_000_000, raw="1", currency="EUR", now_ms=NOW + 100)
    assert caught.value.code is Code.INSTANCE_ENDED
    assert await snapshot(store) == before
    assert (await set_optin(store, False, now_ms=NOW + 101)).opted_in is False


async def test_an_unknown_instance_is_refused_and_nothing_is_written(store: Store) -> None:
    await create(store)
    before = await snapshot(store)
    for opted_in in (True, False):
        with pytest.raises(ScriptRefusal) as caught:
            await set_optin(store, opted_in, instance_id="missing")
        assert caught.value.code is Code.INSTANCE_NOT_FOUND
    assert await snapshot(store) == before


def raw_args(**overrides: Any) -> list[Any]:
    args: dict[str, Any] = {
        "opt_in": "1",
        "now": NOW,
        "pk": PK,
        "value": "250000",
        "value_raw": "0.25",
        "currency": "EUR",
        "event_id": "e-1",
        "instance_id": INSTANCE,
        "player_id": PLAYER,
        "brand": f"{OPERATOR}:{BRAND}",
        "mode": "publish",
        "events_cap": 1000,
    }
    args.update(overrides)
    return list(args.values())


def script_keys(instance_id: str = INSTANCE) -> list[str]:
    return [
        keys.instance_state(instance_id),
        keys.instance_optins(instance_id),
        keys.instance_events(instance_id),
        keys.instance_channel(instance_id),
        keys.instance_events_epoch(instance_id),
    ]


async def test_well_formed_raw_arguments_are_accepted(store: Store) -> None:
    """The baseline of the malformed-argument cases below."""
    await create(store)
    reply = await store.script(SET_OPTIN, script_keys(), raw_args())
    assert list(reply) == ["1", "250000", "0.25", "EUR", "0", str(NOW)]


@pytest.mark.parametrize(
    "overrides",
    [
        {"opt_in": "yes"},
        {"opt_in": ""},
        {"now": "soon"},
        {"now": "0123"},
        {"now": "-5"},
        {"pk": ""},
        {"value": "0"},
        {"value": "-1"},
        {"value": "0.5"},
        {"value": "1e6"},
        {"value": "0250000"},
        {"value_raw": ""},
        {"currency": ""},
        {"value": "", "value_raw": "0.25", "currency": ""},
        {"value": "", "value_raw": "", "currency": "EUR"},
        {"event_id": ""},
        {"instance_id": ""},
        {"player_id": ""},
        {"brand": ""},
        {"mode": "broadcast"},
        {"events_cap": "0"},
        {"events_cap": ""},
    ],
    ids=lambda overrides: ",".join(f"{k}={v!r}" for k, v in overrides.items()),
)
async def test_malformed_arguments_are_refused_and_nothing_is_written(
    store: Store, overrides: dict[str, Any]
) -> None:
    await create(store)
    before = await snapshot(store)
    with pytest.raises(ScriptRefusal) as caught:
        await store.script(SET_OPTIN, script_keys(), raw_args(**overrides))
    assert caught.value.code is Code.BAD_ARGUMENT
    assert await snapshot(store) == before


async def test_arguments_are_checked_before_the_instance(store: Store) -> None:
    with pytest.raises(ScriptRefusal) as caught:
        await store.script(SET_OPTIN, script_keys("missing"), raw_args(opt_in="maybe"))
    assert caught.value.code is Code.BAD_ARGUMENT


async def test_python_refuses_a_preference_without_its_display_value(store: Store) -> None:
    await create(store)
    with pytest.raises(ValueError, match="value_raw and currency"):
        await set_optin(store, True, value=250_000, raw=None, currency="EUR")
    with pytest.raises(ValueError, match="positive"):
        await set_optin(store, True, value=0, raw="0", currency="EUR")
    assert await store.optin(INSTANCE, OPERATOR, BRAND, PLAYER) is None


# -- the event ----------------------------------------------------------------------------


def expected_event(event_id: str, **data: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "instance_id": INSTANCE,
        "player_id": PLAYER,
        "ext_player_id": PLAYER,
        "player_brand_id": f"{OPERATOR}:{BRAND}",
        "opted_in": True,
        "preferred_contribution_value": None,
        "contribution_value": None,
        "contribution_count": 0,
        "last_updated": NOW,
    }
    base.update(data)
    return {"event_type": "OptInEvent", "event_id": event_id, "data": base}


async def test_the_event_is_published_and_appended_to_the_events_stream(store: Store) -> None:
    await create(store)
    pubsub = store.client.pubsub()
    await pubsub.subscribe(keys.instance_channel(INSTANCE))
    try:
        event_id = str(uuid.uuid4())
        await set_optin(store, True, value=430_000, raw="0.37", currency="GBP", event_id=event_id)
        message = await next_message(pubsub)
    finally:
        await pubsub.unsubscribe()
        await pubsub.aclose()
    assert message is not None
    assert message["channel"] == keys.instance_channel(INSTANCE)
    published = json.loads(message["data"])
    assert published == expected_event(
        event_id,
        preferred_contribution_value="0.43",
        contribution_value="0.37",
    )
    assert list(published) == ["event_type", "event_id", "data"]
    assert await events(store) == [
        {"event_id": event_id, "event_type": "OptInEvent", "payload": message["data"]}
    ]


async def test_the_opt_out_event_carries_the_kept_preference_and_count(store: Store) -> None:
    await create(store)
    await set_optin(store, True, value=2_500_000, raw="2.5", currency="EUR")
    await store.client.hincrby(keys.instance_optins(INSTANCE), f"{PK}|count", 3)
    await set_optin(store, False, now_ms=NOW + 1, event_id="out-1")
    entries = await events(store)
    assert len(entries) == 2
    assert json.loads(entries[1]["payload"]) == expected_event(
        "out-1",
        opted_in=False,
        preferred_contribution_value="2.5",
        contribution_value="2.5",
        contribution_count=3,
        last_updated=NOW + 1,
    )


@pytest.mark.parametrize(
    "micros", [1, 10, 999_999, 1_000_000, 1_000_001, 12_345_678, 9_007_199_254_740_993]
)
async def test_event_money_is_an_exact_decimal_string(store: Store, micros: int) -> None:
    await create(store)
    raw = format_amount(from_micros(micros))
    await set_optin(store, True, value=micros, raw=raw, currency="EUR")
    data = json.loads((await events(store))[0]["payload"])["data"]
    assert data["preferred_contribution_value"] == raw
    assert Decimal(data["preferred_contribution_value"]) * 1_000_000 == micros
    assert (await store.optin(INSTANCE, OPERATOR, BRAND, PLAYER)) == OptInRecord(
        True, micros, raw, "EUR", 0, NOW
    )


async def test_large_integers_in_the_event_are_never_in_exponent_form(store: Store) -> None:
    await create(store)
    big_count = 123_456_789_012_345_678
    await store.client.hset(keys.instance_optins(INSTANCE), f"{PK}|count", big_count)
    record = await set_optin(store, True, now_ms=9_999_999_999_999)
    payload = (await events(store))[0]["payload"]
    assert '"contribution_count":123456789012345678,' in payload
    assert '"last_updated":9999999999999}' in payload
    assert record.contribution_count == big_count


async def test_special_characters_in_ids_are_escaped_in_the_event(store: Store) -> None:
    await create(store)
    player = 'quote"back\\slash/ünï'
    await set_optin(store, True, player_id=player, event_id="e-2")
    assert json.loads((await events(store))[0]["payload"])["data"]["player_id"] == player


async def test_the_events_stream_is_capped_near_1000(store: Store) -> None:
    await create(store)
    for i in range(1200):
        await set_optin(store, i % 2 == 0, now_ms=NOW + i)
    length = await store.client.xlen(keys.instance_events(INSTANCE))
    assert 1000 <= length < 1200
    last = json.loads((await events(store))[-1]["payload"])
    assert last["data"]["last_updated"] == NOW + 1199


@pytest.mark.real_redis
async def test_spublish_mode_publishes_on_the_shard_channel(real_redis_url: str) -> None:
    store = Store.from_settings(make_settings(real_redis_url))
    try:
        await create(store)
        pubsub = store.client.pubsub()
        await pubsub.ssubscribe(keys.instance_channel(INSTANCE))
        try:
            await store.set_optin(
                INSTANCE,
                operator_id=OPERATOR,
                brand_id=BRAND,
                player_id=PLAYER,
                opted_in=True,
                value_micros=None,
                value_raw=None,
                currency=None,
                now_ms=NOW,
                event_id="s-1",
                publish_mode="spublish",
            )
            message = await next_message(pubsub)
        finally:
            await pubsub.sunsubscribe()
            await pubsub.aclose()
        assert message is not None
        assert message["type"] == "smessage"
        assert json.loads(message["data"]) == expected_event("s-1")
    finally:
        await store.close()
