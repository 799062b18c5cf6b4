"""Contract tests of lua/contribute-13.lua through ContributionStore.contribute.

Every test runs on a private real redis-server and on fakeredis (the `store` fixture), except
those taking `real_redis_url`. Money is asserted exactly, in integer micro-units.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import uuid
from decimal import Decimal
from typing import Any

import pytest
from marshmallow import ValidationError

from app.core.limits import MAX_POTS
from app.core.refusals import Code
from app.schemas.admin import InstanceSchema
from app.schemas.events import EventType, decode_event
from app.services.engine import compile_engine
from app.store import ScriptRefusal, Store, keys
from app.store.connection import async_client
from app.store.contributions import (
    ContributionOutcome,
    PotDraw,
    PricedPreference,
    contribute_keys,
)
from app.store.script_table import CONTRIBUTE
from app.store.scripts import ScriptRunner
from app.triggers.hit_rate import HIT_RANDOM_BOUND
from tests.support.definitions import hit_rate, must_drop, pot
from tests.support.snapshots import snapshot

OP = "op1"
BRAND = "brand1"
NOW = 1_700_000_000_000
NO_HIT = HIT_RANDOM_BOUND - 1  # above any threshold below p = 1
M = 1_000_000  # micros per unit


# -- building instances ------------------------------------------------------------------
def definition(
    pots: list[dict[str, Any]],
    *,
    contribution: dict[str, str] | None = None,
    house: str = "0",
    instance_id: str = "jp1",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "id": instance_id,
        "name": "Test Jackpot",
        "currency": "EUR",
        "contribution_type": contribution or {"Fixed": "0.10"},
        "allowed_brands": [f"{OP}:{BRAND}"],
        "house_share": house,
        "pots": pots,
        **extra,
    }


async def create(
    store: Store, raw: dict[str, Any], *, drops: dict[str, int] | None = None
) -> dict[str, Any]:
    """Create the instance; MustDropBy pots start with drop value `drops[id]` (default: min)."""
    loaded = InstanceSchema().load(raw)
    engine = compile_engine(loaded)
    drops = drops or {}
    drop_values = [
        drops.get(p["id"], p["trigger"]["min"]) if p["trigger"]["type"] == "MustDropBy" else None
        for p in engine["pots"]
    ]
    created = await store.create_instance(
        InstanceSchema().dump(loaded),
        engine,
        now_ms=NOW - 60_000,
        status=loaded["status"],
        timestamp_start=loaded["timestamp_start"],
        timestamp_end=loaded["timestamp_end"],
        drop_values=drop_values,
    )
    assert created
    return engine


def draws(
    engine: dict[str, Any],
    randoms: dict[str, int] | None = None,
    next_drops: dict[str, int] | None = None,
) -> list[PotDraw]:
    randoms, next_drops = randoms or {}, next_drops or {}
    result = []
    for p in engine["pots"]:
        if p["trigger"]["type"] == "HitRate":
            result.append(PotDraw(p["id"], hit_input=randoms.get(p["id"], NO_HIT)))
        else:
            result.append(
                PotDraw(p["id"], reset_input=next_drops.get(p["id"], p["trigger"]["min"]))
            )
    return result


async def contribute(
    store: Store,
    engine: dict[str, Any],
    *,
    player: str = "p1",
    randoms: dict[str, int] | None = None,
    next_drops: dict[str, int] | None = None,
    now: int = NOW,
    **kwargs: Any,
) -> ContributionOutcome:
    kwargs.setdefault("contribution_id", str(uuid.uuid4()))
    kwargs.setdefault("event_id", str(uuid.uuid4()))
    return await store.contribute(
        engine["id"],
        operator_id=kwargs.pop("operator_id", OP),
        brand_id=kwargs.pop("brand_id", BRAND),
        player_id=player,
        now_ms=now,
        pots=draws(engine, randoms, next_drops),
        **kwargs,
    )


# -- reading state -------------------------------------------------------------------------
async def state(store: Store, instance_id: str = "jp1") -> dict[str, str]:
    return dict(await store.client.hgetall(keys.instance_state(instance_id)))


def money(values: dict[str, str], name: str) -> int:
    return int(values[name])


async def ledger(store: Store, instance_id: str = "jp1") -> list[dict[str, str]]:
    entries = await store.client.xrange(keys.instance_ledger(instance_id))
    return [fields for _, fields in entries]


async def assert_conserved(store: Store, engine: dict[str, Any]) -> dict[str, str]:
    """contributions + seed funding == pots + reserves + house + wins + returned (a terminated
    instance's closed pots), and the ledger agrees."""
    s = await state(store, engine["id"])
    pots = sum(
        money(s, f"pot:{p['id']}:value") + money(s, f"pot:{p['id']}:reserve")
        for p in engine["pots"]
    )
    left = money(s, "total:contributions") + money(s, "total:seed_funding")
    right = pots + money(s, "total:house") + money(s, "total:wins")
    right += int(s.get("total:returned") or 0)
    assert left == right, (left, right, s)
    entries = await ledger(store, engine["id"])

    def total(kind: str) -> int:
        return sum(int(e["amount"]) for e in entries if e["type"] == kind)

    assert total("contribution") == money(s, "total:contributions")
    assert total("seed_funding") == money(s, "total:seed_funding")
    assert total("win") == money(s, "total:wins")
    deficits = sum(money(s, f"pot:{p['id']}:deficit") for p in engine["pots"])
    assert deficits == sum(int(e["deficit"]) for e in entries if e["type"] == "win")
    return s


async def refused(store: Store, code: Code, call: Any, instance_id: str = "jp1") -> None:
    """`call()` is refused with `code` and leaves every key of the instance (if any) unchanged."""
    before = await snapshot(store, instance_id, expect_keys=False)
    with pytest.raises(ScriptRefusal) as caught:
        await call()
    assert caught.value.code is code, caught.value
    assert await snapshot(store, instance_id, expect_keys=False) == before


def ppm_part(amount: int, ppm: int) -> int:
    return amount * ppm // 1_000_000


# -- amount and split ------------------------------------------------------------------------
async def test_fixed_contribution_is_split_exactly_and_recorded(store: Store) -> None:
    engine = await create(
        store,
        definition(
            [
                pot(
                    "mini", "0.25", hit_rate(5000), reserve_share="0.15", seed="10", max_value="100"
                ),
                pot("major", "0.45", must_drop("2000", "5000"), reserve_share="0.15", seed="1000"),
            ],
            house="0.30",
        ),
    )
    out = await contribute(store, engine, gameround_id="round-1", source_id="starburst")
    assert not out.replay
    assert (out.amount, out.house) == (100_000, 30_000)
    assert out.win_pot_id is None and out.win_amount is None and out.win_id is None
    # p1 has no opt-in record: nothing is counted for them (contribute-13.lua's header)
    assert (out.tickets_awarded, out.contribution_count, out.timestamp) == (0, 0, NOW)
    assert (out.gameround_id, out.source_id) == ("round-1", "starburst")
    s = await state(store)
    # mini part 25_000: 3_750 to the reserve, 21_250 to the value
    assert money(s, "pot:mini:value") == 10 * M + 21_250
    assert money(s, "pot:mini:reserve") == 3_750
    # major part 45_000: 6_750 to the reserve, 38_250 to the value
    assert money(s, "pot:major:value") == 1000 * M + 38_250
    assert money(s, "pot:major:reserve") == 6_750
    assert money(s, "total:house") == 30_000
    assert money(s, "total:contributions") == 100_000
    assert s["last_updated"] == str(NOW)
    entry = (await ledger(store))[-1]
    assert entry["type"] == "contribution" and entry["id"] == out.contribution_id
    assert (entry["operator"], entry["brand"], entry["player"]) == (OP, BRAND, "p1")
    assert (entry["amount"], entry["house"]) == ("100000", "30000")
    assert (entry["pot:mini:value"], entry["pot:mini:reserve"]) == ("21250", "3750")
    assert (entry["pot:major:value"], entry["pot:major:reserve"]) == ("38250", "6750")
    assert entry["pot:mini:random"] == str(NO_HIT) and entry["pot:major:random"] == ""
    assert (entry["gameround"], entry["source"]) == ("round-1", "starburst")
    second = await contribute(store, engine)
    assert second.contribution_count == 0
    assert await store.client.exists(keys.instance_optins("jp1")) == 0
    await assert_conserved(store, engine)


async def test_the_callers_amount_is_contributed_fixed_defaults_to_the_engines(
    store: Store,
) -> None:
    percent = await create(
        store,
        definition(
            [pot("a", "0.5", hit_rate(10**12))],
            house="0.5",
            contribution={"Percentage": "0.01"},
            instance_id="pct",
        ),
    )
    fixed = await create(
        store, definition([pot("a", "0.5", hit_rate(10**12))], house="0.5", instance_id="fix")
    )
    out = await contribute(store, percent, amount=123_457)
    assert (out.amount, out.house) == (123_457, 123_457 - 61_728)
    out = await contribute(store, fixed, amount=98_765)  # 16 JPY for a Fixed 0.10 EUR
    assert out.amount == 98_765
    out = await contribute(store, fixed)
    assert out.amount == 100_000
    with pytest.raises(ScriptRefusal) as refused:
        await contribute(store, percent)
    assert refused.value.code is Code.BAD_ARGUMENT
    await assert_conserved(store, percent)
    await assert_conserved(store, fixed)


async def test_fixed_uses_the_opted_in_players_preferred_value(store: Store) -> None:
    engine = await create(store, definition([pot("a", "1", hit_rate(10**12))]))
    optins = keys.instance_optins("jp1")
    pk = keys.player_key(OP, BRAND, "fan")
    await store.client.hset(
        optins,
        mapping={
            f"{pk}|opted_in": "1",
            f"{pk}|value": "250000",
            f"{pk}|currency": "EUR",
            f"{pk}|value_raw": "0.25",
        },
    )
    # The caller must price the very preference stored: another is refused, naming it.
    stale = PricedPreference("200000|EUR|0.2", Decimal("0.2"), 200_000)
    for priced in (None, stale):
        await refused(
            store,
            Code.PREFERENCE_UNPRICED,
            lambda priced=priced: contribute(store, engine, player="fan", preference=priced),
        )
    with pytest.raises(ScriptRefusal) as caught:
        await contribute(store, engine, player="fan")
    assert caught.value.detail == "250000|EUR|0.25"
    # Priced (here paid in another currency: 0.24 of it, credited 240000), it applies.
    priced = PricedPreference("250000|EUR|0.25", Decimal("0.24"), 240_000)
    out = await contribute(store, engine, player="fan", preference=priced, paid="0.1")
    assert (out.amount, out.paid) == (240_000, Decimal("0.24"))
    await store.client.hset(optins, f"{pk}|value", "")  # no preference: the default
    assert (await contribute(store, engine, player="fan")).amount == 100_000
    await store.client.hset(optins, mapping={f"{pk}|opted_in": "0", f"{pk}|value": "250000"})
    assert (await contribute(store, engine, player="fan")).amount == 100_000  # opted out
    assert (await contribute(store, engine, player="other")).amount == 100_000
    assert await store.client.hget(optins, f"{pk}|count") == "3"
    s = await assert_conserved(store, engine)
    assert money(s, "total:contributions") == 240_000 + 3 * 100_000


async def test_a_percentage_instance_ignores_the_preferred_value(store: Store) -> None:
    engine = await create(
        store, definition([pot("a", "1", hit_rate(10**12))], contribution={"Percentage": "0.5"})
    )
    pk = keys.player_key(OP, BRAND, "p1")
    await store.client.hset(
        keys.instance_optins("jp1"), mapping={f"{pk}|opted_in": "1", f"{pk}|value": "250000"}
    )
    assert (await contribute(store, engine, amount=7)).amount == 7


@pytest.mark.parametrize(
    "amount",
    # the last two: amount * 333333 / 1e6 in doubles rounds to the wrong side of an integer
    [
        0,
        1,
        2,
        3,
        7,
        999_999,
        1_000_001,
        123_456_789,
        999_999_999_999_999,
        906_129_674_073_227,
        626_328_354_032_727,
    ],
)
async def test_split_parts_round_down_and_add_up_to_the_amount(store: Store, amount: int) -> None:
    engine = await create(
        store,
        definition(
            [
                pot("a", "0.333333", hit_rate(10**12), reserve_share="0.333333"),
                pot("b", "0.333333", hit_rate(10**12), reserve_share="0.5"),
                pot("c", "0.333333", hit_rate(10**12), reserve_share="0.999999"),
            ],
            house="0.000001",
            contribution={"Percentage": "1"},
        ),
    )
    out = await contribute(store, engine, amount=amount)
    assert out.win_pot_id is None
    entry = (await ledger(store))[-1]
    total = int(entry["house"])
    for p in engine["pots"]:
        part = ppm_part(amount, p["share_ppm"])
        to_reserve = ppm_part(part, p["reserve_ppm"])
        assert int(entry[f"pot:{p['id']}:reserve"]) == to_reserve
        assert int(entry[f"pot:{p['id']}:value"]) == part - to_reserve
        total += part
    assert total == amount == out.amount
    assert out.house == amount - 3 * ppm_part(amount, 333_333)
    s = await assert_conserved(store, engine)
    assert money(s, "total:house") == out.house


# -- caps, progressive, MustDropBy ----------------------------------------------------------
async def test_a_capped_pot_sends_its_overflow_to_the_reserve(store: Store) -> None:
    engine = await create(
        store,
        definition(
            [pot("a", "1", hit_rate(10**12), seed="0.90", max_value="1.00", reserve_share="0.10")],
            contribution={"Percentage": "1"},
        ),
    )
    await contribute(store, engine, amount=300_000)
    s = await state(store)
    # part 300_000: 30_000 reserve share, 270_000 for the value of which 100_000 fits
    assert money(s, "pot:a:value") == 1_000_000
    assert money(s, "pot:a:reserve") == 30_000 + 170_000
    await contribute(store, engine, amount=50_000)
    s = await state(store)
    assert money(s, "pot:a:value") == 1_000_000
    assert money(s, "pot:a:reserve") == 200_000 + 50_000
    await assert_conserved(store, engine)


async def test_a_non_progressive_pot_keeps_its_seed_and_pays_it(store: Store) -> None:
    engine = await create(
        store,
        definition(
            [
                pot("fixed", "0.5", hit_rate(10), seed="5", progressive=False),
                pot("prog", "0.5", hit_rate(10**12)),
            ],
        ),
    )
    for _ in range(3):
        await contribute(store, engine)
    s = await state(store)
    assert money(s, "pot:fixed:value") == 5 * M
    assert money(s, "pot:fixed:reserve") == 150_000
    out = await contribute(store, engine, randoms={"fixed": 0})
    assert (out.win_pot_id, out.win_amount, out.seed) == ("fixed", 5 * M, 5 * M)
    assert out.seed_deficit == 5 * M - 200_000
    s = await state(store)
    assert (money(s, "pot:fixed:value"), money(s, "pot:fixed:reserve")) == (5 * M, 0)
    assert money(s, "pot:fixed:deficit") == 5 * M - 200_000
    await assert_conserved(store, engine)


async def test_must_drop_by_drops_exactly_when_the_value_reaches_the_drop_value(
    store: Store,
) -> None:
    engine = await create(
        store,
        definition([pot("major", "1", must_drop("10.50", "20"), seed="10", max_value="20")]),
        drops={"major": 10_500_000},
    )
    for step in range(1, 5):
        out = await contribute(store, engine, next_drops={"major": 17_000_000})
        assert out.win_pot_id is None
        assert money(await state(store), "pot:major:value") == 10 * M + step * 100_000
    out = await contribute(store, engine, next_drops={"major": 17_000_000})
    assert (out.win_pot_id, out.win_amount) == ("major", 10_500_000)
    assert (out.seed, out.seed_deficit) == (10 * M, 10 * M)
    s = await state(store)
    assert money(s, "pot:major:value") == 10 * M
    assert money(s, "pot:major:drop_at") == 17_000_000
    win = [e for e in await ledger(store) if e["type"] == "win"]
    assert len(win) == 1 and win[0]["drop_at"] == "17000000" and win[0]["amount"] == "10500000"
    await assert_conserved(store, engine)


async def test_must_drop_by_pays_at_most_max_value_and_never_rests_above_its_drop_value(
    store: Store,
) -> None:
    engine = await create(
        store,
        definition(
            [
                pot(
                    "major",
                    "1",
                    must_drop("10.50", "20"),
                    seed="10",
                    max_value="20",
                    reserve_share="0.05",
                )
            ],
            contribution={"Percentage": "1"},
        ),
        drops={"major": 10_500_000},
    )
    out = await contribute(store, engine, amount=50 * M, next_drops={"major": 12_000_000})
    # uncapped value 10 + 47.5 crosses the drop value; the pot is capped at 20 first
    assert (out.win_pot_id, out.win_amount, out.seed_deficit) == ("major", 20 * M, 0)
    s = await state(store)
    assert money(s, "pot:major:reserve") == 2_500_000 + 37_500_000 - 10 * M
    rng = random.Random(7)
    wins = 0
    for _ in range(60):
        drop_at = money(await state(store), "pot:major:drop_at")
        next_drop = rng.randrange(10_500_000, 20 * M)
        out = await contribute(
            store,
            engine,
            amount=rng.randrange(0, 3 * M),
            next_drops={"major": next_drop},
        )
        s = await state(store)
        assert money(s, "pot:major:value") < money(s, "pot:major:drop_at")
        if out.win_amount is not None:
            wins += 1
            assert drop_at <= out.win_amount <= 20 * M
            assert money(s, "pot:major:drop_at") == next_drop
    assert wins >= 5
    await assert_conserved(store, engine)


async def test_a_zero_contribution_triggers_nothing(store: Store) -> None:
    engine = await create(
        store,
        definition(
            [pot("hr", "0.5", hit_rate(1)), pot("md", "0.5", must_drop("0", "1"))],
            contribution={"Percentage": "0.5"},
        ),
        drops={"md": 0},
    )
    out = await contribute(store, engine, amount=0, randoms={"hr": 0})
    assert (out.amount, out.win_pot_id, out.contribution_count) == (0, None, 0)
    out = await contribute(store, engine, amount=1, randoms={"hr": 0})
    assert out.win_pot_id == "hr"  # max_magic_number 1: every paid attempt hits
    await assert_conserved(store, engine)


# -- HitRate --------------------------------------------------------------------------------
def hit_threshold(amount: int, cost: int, magic: int) -> float:
    """p * 2^52 computed accurately (log1p/expm1) for comparison with the script's."""
    return -math.expm1(amount / cost * math.log1p(-1 / magic)) * HIT_RANDOM_BOUND


@pytest.mark.parametrize(
    ("magic", "cost", "amount"),
    [
        (2, "0.10", 100_000),
        (5000, "0.10", 100_000),
        (10**12, "0.000001", 300_000),
        (7, "0.30", 100_000),
        (50_000, "0.01", 2_500_000),
    ],
)
async def test_hit_rate_hits_exactly_below_the_probability_threshold(
    store: Store, magic: int, cost: str, amount: int
) -> None:
    engine = await create(
        store, definition([pot("a", "1", hit_rate(magic, cost))], contribution={"Percentage": "1"})
    )
    threshold = hit_threshold(amount, engine["pots"][0]["trigger"]["cost_per_attempt"], magic)
    margin = max(4.0, threshold * 1e-9)
    below = int(threshold - margin)
    above = int(threshold + margin) + 1
    assert 0 <= below < above < HIT_RANDOM_BOUND
    out = await contribute(store, engine, amount=amount, randoms={"a": below})
    assert out.win_pot_id == "a"
    out = await contribute(store, engine, amount=amount, randoms={"a": above})
    assert out.win_pot_id is None
    await assert_conserved(store, engine)


@pytest.mark.slow
@pytest.mark.parametrize(("amount", "seed"), [(100_000, 11), (50_000, 12)])
async def test_hit_rate_frequency_over_many_seeded_draws(
    store: Store, amount: int, seed: int
) -> None:
    """p = 1 - (1 - 1/10)^(amount / 0.10): 0.1 for one attempt, 0.0513 for half an attempt."""
    engine = await create(
        store,
        definition(
            [pot("a", "1", hit_rate(10, "0.10"), seed="1")], contribution={"Percentage": "1"}
        ),
    )
    rng = random.Random(seed)
    n = 800
    p = 1 - (1 - 1 / 10) ** (amount / 100_000)
    hits = expected = 0
    for _ in range(n):
        r = rng.randrange(HIT_RANDOM_BOUND)
        expected += r < p * HIT_RANDOM_BOUND
        out = await contribute(store, engine, amount=amount, randoms={"a": r})
        hits += out.win_pot_id == "a"
    sd = (n * p * (1 - p)) ** 0.5
    assert abs(hits - n * p) < 5 * sd, (hits, n * p)
    assert hits == expected
    await assert_conserved(store, engine)


# -- several hits, reseed, withheld ------------------------------------------------------
async def test_when_two_pots_hit_the_highest_wins_and_the_other_keeps_its_value(
    store: Store,
) -> None:
    engine = await create(
        store,
        definition(
            [
                pot("mini", "0.5", hit_rate(2), seed="10"),
                pot("major", "0.5", hit_rate(2), seed="100"),
            ]
        ),
    )
    out = await contribute(store, engine, randoms={"mini": 0, "major": 0})
    assert (out.win_pot_id, out.win_amount) == ("major", 100 * M + 50_000)
    s = await state(store)
    assert money(s, "pot:mini:value") == 10 * M + 50_000
    assert money(s, "pot:major:value") == 100 * M
    await assert_conserved(store, engine)


async def test_a_must_drop_pot_that_lost_to_a_higher_pot_drops_next_time(store: Store) -> None:
    engine = await create(
        store,
        definition(
            [
                pot("drop", "0.5", must_drop("1.00", "2.00"), seed="1"),
                pot("big", "0.5", hit_rate(2), seed="100"),
            ]
        ),
        drops={"drop": 1_050_000},
    )
    out = await contribute(store, engine, randoms={"big": 0})
    assert out.win_pot_id == "big"
    assert money(await state(store), "pot:drop:value") == 1_050_000
    out = await contribute(store, engine)
    assert (out.win_pot_id, out.win_amount) == ("drop", 1_100_000)
    await assert_conserved(store, engine)


async def test_reseed_takes_the_seed_from_the_reserve_then_records_the_deficit(
    store: Store,
) -> None:
    engine = await create(
        store,
        definition(
            [pot("a", "1", hit_rate(2), seed="1", reserve_share="0.5")],
            contribution={"Fixed": "1"},
        ),
    )
    for _ in range(3):
        await contribute(store, engine)
    s = await state(store)
    assert (money(s, "pot:a:value"), money(s, "pot:a:reserve")) == (2_500_000, 1_500_000)
    out = await contribute(store, engine, randoms={"a": 0})
    assert (out.win_amount, out.seed, out.seed_deficit) == (3 * M, M, 0)
    s = await state(store)
    assert (money(s, "pot:a:value"), money(s, "pot:a:reserve")) == (M, M)
    out = await contribute(store, engine, randoms={"a": 0})  # reserve 1.5 covers the seed
    assert (out.win_amount, out.seed_deficit) == (1_500_000, 0)
    out = await contribute(store, engine, randoms={"a": 0})  # reserve 0.5 + 0.5 covers it
    assert out.seed_deficit == 0
    assert money(await state(store), "pot:a:reserve") == 0
    out = await contribute(store, engine, randoms={"a": 0})  # reserve 0.5: short by 0.5
    assert (out.win_amount, out.seed_deficit) == (1_500_000, 500_000)
    s = await state(store)
    assert (money(s, "pot:a:value"), money(s, "pot:a:reserve")) == (M, 0)
    assert money(s, "pot:a:deficit") == 500_000
    assert money(s, "total:seed_funding") == M + 500_000
    funding = [e for e in await ledger(store) if e["type"] == "seed_funding"]
    assert [(e["amount"], e.get("reason")) for e in funding] == [
        ("1000000", None),
        ("500000", "reseed"),
    ]
    await assert_conserved(store, engine)


async def test_a_win_above_the_auto_payout_limit_is_withheld(store: Store) -> None:
    engine = await create(
        store,
        definition(
            [pot("a", "1", hit_rate(2), seed="10.40")],
            auto_payout_limit="10.50",
            contribution={"Percentage": "1"},
        ),
    )
    out = await contribute(store, engine, amount=100_000, randoms={"a": 0})
    assert (out.win_amount, out.win_withheld) == (10_500_000, False)  # equal is not above
    out = await contribute(store, engine, amount=100_001, randoms={"a": 0})
    assert (out.win_amount, out.win_withheld) == (10_500_001, True)
    newest = (await store.winners("jp1"))[0]
    assert newest.win_withheld and newest.win_amount == 10_500_001
    win = [e for e in await ledger(store) if e["type"] == "win"]
    assert [e["withheld"] for e in win] == ["0", "1"]
    await assert_conserved(store, engine)


async def test_without_a_limit_no_win_is_withheld(store: Store) -> None:
    engine = await create(
        store,
        definition([pot("a", "1", hit_rate(2), seed="900000000")], contribution={"Fixed": "1"}),
    )
    out = await contribute(store, engine, randoms={"a": 0})
    assert (out.win_amount, out.win_withheld) == (900_000_001 * M, False)


# -- wins and events ---------------------------------------------------------------------
async def test_a_win_is_listed_published_and_streamed(store: Store) -> None:
    engine = await create(
        store,
        definition(
            [
                pot("mini", "0.25", hit_rate(2), seed="10", reserve_share="0.15"),
                pot("major", "0.45", must_drop("2000", "5000"), seed="1000"),
            ],
            house="0.30",
        ),
    )
    pubsub = store.client.pubsub()
    await pubsub.subscribe(keys.instance_channel("jp1"))
    await pubsub.get_message(timeout=1)  # the subscribe confirmation
    metadata = {"ticket": "x/1", "n": 12345678901234567890, "nested": [1, "é", None]}
    out = await contribute(
        store,
        engine,
        randoms={"mini": 0},
        event_id="ev-1",
        jackpot_name="Daily Drop",
        event_metadata=metadata,
        currency_multipliers={"EUR": 1, "USD": "1.08"},
        gameround_id="g-9",
        source_id="starburst",
    )
    assert (out.win_pot_id, out.win_amount, out.seed_deficit) == ("mini", 10_021_250, 9_996_250)
    message = None
    for _ in range(20):
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
        if message:
            break
    await pubsub.aclose()
    assert message is not None
    events = await store.client.xrange(keys.instance_events("jp1"))
    assert len(events) == 1
    assert events[0][1]["payload"] == message["data"]
    assert events[0][1]["event_id"] == "ev-1"
    assert decode_event(message["data"])["event_type"] is EventType.JACKPOT_WIN
    envelope = json.loads(message["data"])
    assert envelope["event_type"] == "JackpotWinEvent" and envelope["event_id"] == "ev-1"
    assert envelope["data"] == {
        "instance_id": "jp1",
        "jackpot_name": "Daily Drop",
        "brand_id": f"{OP}:{BRAND}",
        "player_id": "p1",
        "source_id": "starburst",
        "win_pot_id": "mini",
        "win_amount": "10.02125",
        "seed": "10",
        "seed_deficit": "9.99625",
        "jackpot_currency": "EUR",
        "currency_multipliers": {"EUR": 1, "USD": 1.08},
        "win_withheld": False,
        "timestamp": NOW,
        "metadata": metadata,
    }
    winners = await store.winners("jp1")
    assert len(winners) == 1
    winner = winners[0]
    assert (winner.win_id, winner.win_pot_id, winner.win_amount) == (
        out.contribution_id,
        "mini",
        10_021_250,
    )
    assert (winner.operator_id, winner.brand_id, winner.player_id) == (OP, BRAND, "p1")
    assert (winner.currency, winner.timestamp, winner.gameround_id) == ("EUR", NOW, "g-9")
    assert (winner.seed, winner.seed_deficit, winner.source_id) == (10 * M, 9_996_250, "starburst")
    assert await store.winners("jp1", "mini") == winners
    assert await store.winners("jp1", "major") == []
    assert await store.pot_winners("jp1", ["mini", "major"]) == {"mini": winners, "major": []}
    await assert_conserved(store, engine)


async def test_no_event_and_no_winner_without_a_win(store: Store) -> None:
    engine = await create(store, definition([pot("a", "1", hit_rate(2))]))
    await contribute(store, engine)
    assert await store.client.exists(keys.instance_events("jp1")) == 0
    assert await store.winners("jp1") == []


async def test_winners_lists_are_capped_newest_first_and_filterable(store: Store) -> None:
    engine = await create(
        store,
        definition([pot("a", "0.5", hit_rate(2)), pot("b", "0.5", hit_rate(10**12))]),
    )
    players = ["w1", "w2", "w3", "w4", "w5"]
    for i, player in enumerate(players):
        await contribute(
            store,
            engine,
            player=player,
            randoms={"a": 0},
            winners_cap=3,
            brand_id="other" if i == 4 else BRAND,
        )
    winners = await store.winners("jp1")
    assert [w.player_id for w in winners] == ["w5", "w4", "w3"]
    assert [w.player_id for w in await store.winners("jp1", "a")] == ["w5", "w4", "w3"]
    assert [w.player_id for w in await store.winners("jp1", limit=2)] == ["w5", "w4"]
    mine = await store.winners("jp1", brand_path=f"{OP}:{BRAND}")
    assert [w.player_id for w in mine] == ["w4", "w3", "w2"]  # the brand's own index
    assert [w.player_id for w in await store.winners("jp1", brand_path=f"{OP}:other")] == ["w5"]
    assert await store.winners("jp1", brand_path="nobody:none") == []
    assert await store.winners("jp1", limit=0) == []
    assert len([e for e in await ledger(store) if e["type"] == "win"]) == 5  # ledger keeps all
    await assert_conserved(store, engine)


async def test_events_stream_is_capped(store: Store) -> None:
    engine = await create(store, definition([pot("a", "1", hit_rate(1))]))
    for _ in range(1150):
        await contribute(store, engine)
    length = await store.client.xlen(keys.instance_events("jp1"))
    assert 1000 <= length < 1150
    assert len(await store.winners("jp1")) == 100


# -- raffle tickets ---------------------------------------------------------------------
async def test_raffle_tickets_carry_the_accumulated_cost(store: Store) -> None:
    engine = await create(
        store,
        definition(
            [],
            house="1",
            jackpot_type="Raffle",
            contribution={"Percentage": "1"},
            raffle={"ticket_cost": "1.00", "prizes": ["100"], "draw": {"every": "1d"}},
        ),
    )
    expected = [(400_000, 0, 0, 400_000), (700_000, 1, 1, 100_000), (2_050_000, 2, 3, 150_000)]
    for i, (amount, awarded, total, carried) in enumerate(expected):
        out = await contribute(store, engine, amount=amount, now=NOW + i)
        assert (out.tickets_awarded, out.tickets_total, out.accumulated_cost) == (
            awarded,
            total,
            carried,
        )
    record = await store.player_tickets("jp1", OP, BRAND, "p1")
    assert record is not None
    assert (record.ticket_count, record.accumulated_cost) == (3, 150_000)
    assert (record.timestamp_start, record.timestamp_end) == (NOW, NOW + 2)
    assert (record.operator_id, record.brand_id, record.player_id) == (OP, BRAND, "p1")
    assert await store.player_tickets("jp1", OP, BRAND, "nobody") is None
    entry = (await ledger(store))[-1]
    assert (entry["ticket_basis"], entry["tickets"], entry["accumulated_cost"]) == (
        "2050000",
        "2",
        "150000",
    )
    s = await assert_conserved(store, engine)
    assert money(s, "total:house") == 3_150_000


async def base_wager_raffle(store: Store) -> dict[str, Any]:
    """A raffle whose tickets cost 1.00 of the base wager, beside one pot that never hits."""
    return await create(
        store,
        definition(
            [pot("a", "0.5", hit_rate(10**12))],
            house="0.5",
            raffle={
                "ticket_cost": "1.00",
                "ticket_basis": "base_wager",
                "prizes": ["100"],
                "draw": {"every": "1d"},
            },
        ),
    )


async def test_raffle_tickets_on_the_base_wager_and_the_ranking(store: Store) -> None:
    engine = await base_wager_raffle(store)
    out = await contribute(store, engine, player="a", base_wager=2_500_000)
    assert (out.amount, out.tickets_awarded, out.accumulated_cost) == (100_000, 2, 500_000)
    out = await contribute(store, engine, player="a", base_wager=600_000)
    assert (out.tickets_awarded, out.tickets_total, out.accumulated_cost) == (1, 3, 100_000)
    await contribute(store, engine, player="b", base_wager=5_000_000)
    await contribute(store, engine, player="c", base_wager=300_000)
    page = await store.ticket_page(
        "jp1", 1, operator_id=OP, brand_id=BRAND, order="t", descending=True, offset=0, count=10
    )
    assert [(r.player_id, r.ticket_count) for r in page] == [("b", 5), ("a", 3)]
    ascending = await store.ticket_page(
        "jp1", 1, operator_id=OP, brand_id=None, order="t", descending=False, offset=0, count=1
    )
    assert [(r.player_id, r.accumulated_cost) for r in ascending] == [("a", 100_000)]
    c = await store.player_tickets("jp1", OP, BRAND, "c")
    assert c is not None and (c.ticket_count, c.accumulated_cost) == (0, 300_000)
    await assert_conserved(store, engine)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_the_ticket_index_holds_exactly_each_players_current_members(
    store: Store, seed: int
) -> None:
    """Contributions that award tickets or none, some in the same millisecond: the index
    (KEYS[5]) holds, for each player with a ticket, exactly the six members of their current
    count and last contribution (none stale, none missing)."""
    engine = await base_wager_raffle(store)
    rng = random.Random(seed)
    cost: dict[str, int] = {}
    count: dict[str, int] = {}
    last: dict[str, int] = {}
    now = NOW
    for _ in range(40):
        player = rng.choice("abc")
        wager = rng.choice([0, 300_000, 700_000, 1_000_000, 2_500_000])
        now += rng.choice([0, 0, 1, 7])
        await contribute(store, engine, player=player, base_wager=wager, now=now)
        tickets, cost[player] = divmod(cost.get(player, 0) + wager, M)
        count[player] = count.get(player, 0) + tickets
        last[player] = now
    r = f"{1:010d}"
    expected = set()
    for p, c in count.items():
        if c > 0:
            expected |= {
                f"{r}|t|b|{OP}:{BRAND}|{c:016d}|{p}",
                f"{r}|t|o|{OP}|{c:016d}|{BRAND}|{p}",
                f"{r}|e|b|{OP}:{BRAND}|{last[p]:015d}|{p}",
                f"{r}|e|o|{OP}|{last[p]:015d}|{BRAND}|{p}",
                f"{r}|p|b|{OP}:{BRAND}|{p}",
                f"{r}|p|o|{OP}|{p}\0{BRAND}",
            }
    members = await store.client.zrange(keys.instance_ticket_ranking("jp1"), 0, -1)
    assert sorted(members) == sorted(expected)


async def test_no_tickets_without_a_raffle(store: Store) -> None:
    engine = await create(store, definition([pot("a", "1", hit_rate(10**12))]))
    out = await contribute(store, engine, base_wager=50 * M)
    assert (out.tickets_awarded, out.tickets_total, out.accumulated_cost) == (0, 0, 0)
    assert await store.player_tickets("jp1", OP, BRAND, "p1") is None
    assert await store.client.exists(keys.instance_tickets("jp1")) == 0


# -- refusals: each leaves every key unchanged ----------------------------------------------
async def test_an_unknown_instance_is_not_found(store: Store) -> None:
    engine = compile_engine(InstanceSchema().load(definition([pot("a", "1", hit_rate(2))])))
    await refused(store, Code.INSTANCE_NOT_FOUND, lambda: contribute(store, engine))
    assert await snapshot(store, "jp1", expect_keys=False) == {}


@pytest.mark.parametrize(
    ("action", "code"),
    [
        ("pause", Code.INSTANCE_NOT_ACTIVE),
        ("terminate", Code.INSTANCE_TERMINATED),
    ],
)
async def test_a_paused_or_terminated_instance_refuses(
    store: Store, action: str, code: Code
) -> None:
    engine = await create(store, definition([pot("a", "1", hit_rate(2))]))
    await contribute(store, engine)
    await store.set_status("jp1", action, now_ms=NOW, by="test")
    await refused(store, code, lambda: contribute(store, engine, randoms={"a": 0}))
    await assert_conserved(store, engine)


async def test_a_pending_instance_is_not_active(store: Store) -> None:
    engine = await create(
        store,
        definition([pot("a", "1", hit_rate(2))], status="Pending", timestamp_start=NOW - 1),
    )
    await refused(store, Code.INSTANCE_NOT_ACTIVE, lambda: contribute(store, engine))


async def test_the_time_window_is_enforced(store: Store) -> None:
    engine = await create(
        store,
        definition([pot("a", "1", hit_rate(2))], timestamp_start=NOW, timestamp_end=NOW + 1000),
    )
    await refused(store, Code.INSTANCE_NOT_STARTED, lambda: contribute(store, engine, now=NOW - 1))
    await refused(store, Code.INSTANCE_ENDED, lambda: contribute(store, engine, now=NOW + 1000))
    await refused(store, Code.INSTANCE_ENDED, lambda: contribute(store, engine, now=NOW + 5000))
    assert (await contribute(store, engine, now=NOW)).amount == 100_000
    assert (await contribute(store, engine, now=NOW + 999)).amount == 100_000
    await assert_conserved(store, engine)


async def test_opt_in_is_required_when_the_instance_says_so(store: Store) -> None:
    engine = await create(store, definition([pot("a", "1", hit_rate(2))], opt_in_required=True))
    await refused(store, Code.NOT_OPTED_IN, lambda: contribute(store, engine))
    pk = keys.player_key(OP, BRAND, "p1")
    optins = keys.instance_optins("jp1")
    await store.client.hset(optins, f"{pk}|opted_in", "0")
    await refused(store, Code.NOT_OPTED_IN, lambda: contribute(store, engine))
    await store.client.hset(optins, f"{pk}|opted_in", "1")
    out = await contribute(store, engine)
    assert (out.amount, out.contribution_count) == (100_000, 1)
    # another brand's player with the same id is another player
    await refused(store, Code.NOT_OPTED_IN, lambda: contribute(store, engine, brand_id="b2"))
    await assert_conserved(store, engine)


async def test_malformed_pot_draws_are_bad_arguments(store: Store) -> None:
    engine = await create(
        store,
        definition(
            [pot("hr", "0.5", hit_rate(2)), pot("md", "0.5", must_drop("1", "2"), seed="1")]
        ),
    )
    good = draws(engine)

    async def call(pots: list[PotDraw], **kwargs: Any) -> Any:
        return await store.contribute(
            "jp1",
            operator_id=OP,
            brand_id=BRAND,
            player_id="p1",
            contribution_id="c",
            event_id="e",
            now_ms=NOW,
            pots=pots,
            **kwargs,
        )

    bad_draws = [
        good[:1],  # a pot missing
        [good[1], good[0]],  # engine order
        [PotDraw("hr"), good[1]],  # HitRate without its random
        [PotDraw("hr", hit_input=HIT_RANDOM_BOUND), good[1]],  # random out of range
        [PotDraw("hr", hit_input=-1), good[1]],
        [good[0], PotDraw("md")],  # MustDropBy without its next drop value
        [good[0], PotDraw("md", reset_input=2 * M)],  # drop value must be < max
        [good[0], PotDraw("md", reset_input=M - 1)],  # and >= min
        [good[0], PotDraw("other", reset_input=M)],  # unknown pot id
    ]
    for pots in bad_draws:
        await refused(store, Code.BAD_ARGUMENT, lambda pots=pots: call(pots))
    for kwargs in [
        {"amount": -1},
        {"base_wager": -5},
        {"winners_cap": 0},
        {"idempotency_key": "k", "idempotency_ttl_ms": 0},
        {"request_hash": "two\nlines"},
    ]:
        await refused(store, Code.BAD_ARGUMENT, lambda kwargs=kwargs: call(good, **kwargs))
    await call(good)
    await assert_conserved(store, engine)


@pytest.mark.parametrize(
    ("index", "value"),
    [
        (0, "1.5"),  # now_ms
        (0, "1e12"),
        (1, ""),  # contribution id
        (6, "12345678901234567"),  # above 2^53
        (10, "yes"),  # idempotency flag
        (13, "0"),  # winners cap
        (14, "broadcast"),  # publish command
        (15, "0"),  # events stream cap
        (15, "many"),
        (16, ""),  # event id
        (18, ""),  # event metadata ('null' when none)
        (19, "[1, 2]"),  # multipliers must be an object
        (20, "1,5"),  # paid
        (23, "[]"),  # shown rates must be an object
        (24, "a\nb"),  # legacy fingerprint line
    ],
)
async def test_raw_arguments_are_checked_before_any_write(
    store: Store, index: int, value: str
) -> None:
    engine = await create(store, definition([pot("a", "1", hit_rate(2))]))
    args: list[Any] = [
        NOW,
        "c1",
        OP,
        BRAND,
        "p1",
        keys.player_key(OP, BRAND, "p1"),
        0,
        0,
        "",
        "",
        "",
        "",
        1000,
        100,
        "publish",
        1000,
        "e1",
        "",
        "null",
        "{}",
        "0",  # paid
        "",  # no priced preference
        "",
        "{}",  # shown rates
        "",  # no legacy fingerprint
        "a",
        0,
        "",
    ]
    ok_keys = contribute_keys("jp1", OP, None)
    good = list(args)
    args[index] = value
    await refused(store, Code.BAD_ARGUMENT, lambda: store.script(CONTRIBUTE, ok_keys, args))
    await assert_conserved(store, engine)
    # the same arguments unchanged apply: the refusal was the changed one's
    replay, _ = await store.script(CONTRIBUTE, ok_keys, good)
    assert replay == 0


# -- idempotency ----------------------------------------------------------------------------
async def test_a_repeated_idempotency_key_replays_the_first_outcome(store: Store) -> None:
    engine = await create(store, definition([pot("a", "1", hit_rate(2), seed="5")]))
    first = await contribute(
        store,
        engine,
        randoms={"a": 0},
        idempotency_key="k1",
        request_hash="h1",
        idempotency_ttl_ms=60_000,
    )
    assert not first.replay and first.win_pot_id == "a"
    before = await snapshot(store, "jp1")
    again = await contribute(
        store,
        engine,
        randoms={"a": 0},
        idempotency_key="k1",
        request_hash="h1",
        contribution_id="another-id",
        now=NOW + 10,
    )
    assert again.replay
    # the lean record keeps what the answer shows (lua/contribute-13.lua's header), exactly
    answered = (
        "contribution_id", "instance_id", "timestamp", "paid", "shown", "win_id", "win_pot_id",
        "win_amount", "win_withheld", "tickets_awarded", "raffle_round", "gameround_id",
    )  # fmt: skip
    assert {name: getattr(again, name) for name in answered} == {
        name: getattr(first, name) for name in answered
    }
    assert await snapshot(store, "jp1") == before
    ttl = await store.client.pttl(keys.instance_idempotency("jp1", OP, "k1"))
    assert 0 < ttl <= 60_000
    # a replay is answered even once the instance no longer takes contributions
    await store.set_status("jp1", "pause", now_ms=NOW, by="test")
    assert (await contribute(store, engine, idempotency_key="k1", request_hash="h1")).replay
    await assert_conserved(store, engine)


async def test_an_idempotency_key_with_another_request_is_a_mismatch(store: Store) -> None:
    engine = await create(store, definition([pot("a", "1", hit_rate(2))]))
    await contribute(store, engine, idempotency_key="k1", request_hash="h1")
    await refused(
        store,
        Code.IDEMPOTENCY_MISMATCH,
        lambda: contribute(store, engine, idempotency_key="k1", request_hash="h2"),
    )
    await assert_conserved(store, engine)


async def test_idempotency_keys_are_scoped_to_the_operator(store: Store) -> None:
    engine = await create(store, definition([pot("a", "1", hit_rate(2))]))
    first = await contribute(store, engine, idempotency_key="k1", request_hash="h1")
    other = await contribute(
        store, engine, idempotency_key="k1", request_hash="h1", operator_id="op2"
    )
    assert not first.replay and not other.replay
    assert first.contribution_id != other.contribution_id
    s = await assert_conserved(store, engine)
    assert money(s, "total:contributions") == 200_000


async def test_without_a_key_nothing_is_recorded_or_replayed(store: Store) -> None:
    engine = await create(store, definition([pot("a", "1", hit_rate(2))]))
    first = await contribute(store, engine, request_hash="h1")
    second = await contribute(store, engine, idempotency_key="", request_hash="h1")
    assert not first.replay and not second.replay
    assert await store.client.exists(keys.instance_idempotency("jp1", OP, "")) == 0
    s = await assert_conserved(store, engine)
    assert money(s, "total:contributions") == 200_000


# -- limits and cluster details -------------------------------------------------------------
async def test_an_instance_with_the_most_pots_can_win_its_last_pot(store: Store) -> None:
    pots = [pot(f"p{i}", "0.05", hit_rate(2)) for i in range(MAX_POTS)]
    with pytest.raises(ValidationError):
        InstanceSchema().load(definition([*pots, pot("extra", "0", hit_rate(2))]))
    engine = await create(store, definition(pots))
    out = await contribute(store, engine, randoms={f"p{MAX_POTS - 1}": 0})
    assert out.win_pot_id == f"p{MAX_POTS - 1}"
    last = await store.winners("jp1", f"p{MAX_POTS - 1}")
    assert [w.win_id for w in last] == [out.contribution_id]
    await assert_conserved(store, engine)


def test_every_key_is_in_the_instances_slot() -> None:
    for name in contribute_keys("jp1", OP, "key") + contribute_keys("jp1", OP, None):
        assert name.startswith(keys.instance_tag("jp1") + ":")
    # a fixed, small KEYS count whatever the number of pots (no placeholder slots)
    assert len(contribute_keys("jp1", OP, None)) == 13


@pytest.mark.real_redis
async def test_spublish_on_a_cluster_configured_store(real_redis_url: str) -> None:
    """On Redis Cluster the win event goes out with SPUBLISH (Redis 7 also serves it alone)."""
    store = Store(async_client(real_redis_url), ScriptRunner(), cluster=True)
    listener = async_client(real_redis_url)
    try:
        engine = await create(store, definition([pot("a", "1", hit_rate(2))]))
        pubsub = listener.pubsub()
        await pubsub.ssubscribe(keys.instance_channel("jp1"))
        await pubsub.get_message(timeout=1)  # the subscribe confirmation
        await contribute(store, engine, randoms={"a": 0}, event_id="ev-s")
        message = None
        for _ in range(20):
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
            if message:
                break
        await pubsub.aclose()
        assert message is not None
        assert json.loads(message["data"])["event_id"] == "ev-s"
    finally:
        await listener.aclose()
        await store.close()


async def test_concurrent_contributions_on_one_connection_pool_conserve_money(
    store: Store,
) -> None:
    engine = await create(
        store,
        definition(
            [
                pot("mini", "0.3", hit_rate(20), seed="1", reserve_share="0.2", max_value="2"),
                pot("major", "0.4", must_drop("3", "4"), seed="2", reserve_share="0.1"),
            ],
            house="0.3",
            contribution={"Percentage": "1"},
        ),
    )
    rng = random.Random(99)
    gate = asyncio.Semaphore(50)  # the client's pool holds 100 connections and does not wait

    async def one(i: int) -> ContributionOutcome:
        async with gate:
            return await contribute(
                store,
                engine,
                player=f"p{i % 7}",
                amount=rng.randrange(0, 400_000),
                randoms={"mini": rng.randrange(HIT_RANDOM_BOUND)},
                next_drops={"major": rng.randrange(3 * M, 4 * M)},
            )

    outcomes = await asyncio.gather(*(one(i) for i in range(300)))
    s = await assert_conserved(store, engine)
    assert money(s, "total:contributions") == sum(o.amount for o in outcomes)
    assert sum(o.win_amount or 0 for o in outcomes) == money(s, "total:wins")
    assert any(o.win_pot_id == "major" for o in outcomes)
    assert any(o.win_pot_id == "mini" for o in outcomes)
