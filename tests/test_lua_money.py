"""Exact 64-bit money in the contribute script (its Lua contract), on real Redis and on
fakeredis: pots and reserves exact up to 2^63 - 1 micro-units and refused beyond, lifetime
totals exact at any size. Lua numbers are doubles (exact below 2^53 only); the state a test
starts from is written into the instance's state hash, as a long-lived instance would have it."""

from __future__ import annotations

import pytest

from app.core.refusals import Code
from app.store import ScriptRefusal, Store, keys
from tests.support.definitions import hit_rate, pot
from tests.support.snapshots import snapshot
from tests.test_lua_contribute import contribute, create, definition, state

INT64_MAX = 2**63 - 1
TWO53 = 2**53
MONEY_FIELDS = (":value", ":reserve", "contributions", "house", "wins", "seed_funding")
NEVER = hit_rate(10**12, "1000000000")  # one attempt at 1e-12 per contribution


async def instance(store: Store, **pot_fields: object) -> dict[str, object]:
    return await create(
        store,
        definition(
            [pot("main", "1", pot_fields.pop("trigger", NEVER), **pot_fields)],  # type: ignore[arg-type]
            contribution={"Percentage": "1"},
        ),
    )


async def assert_conserved(store: Store, engine: dict[str, object]) -> None:
    """contributions + seed funding == pots + reserves + house + wins, in exact integers (the
    arranged state has no ledger behind it)."""
    s = {k: int(v) for k, v in (await state(store)).items() if k.endswith(MONEY_FIELDS)}
    held = sum(v for k, v in s.items() if k.endswith((":value", ":reserve")))
    assert s["total:contributions"] + s["total:seed_funding"] == (
        held + s["total:house"] + s["total:wins"]
    )


async def put(store: Store, **fields: int) -> None:
    """Arrange the state: e.g. put(store, **{"pot:main:value": 2**53 + 1})."""
    await store.client.hset(
        keys.instance_state("jp1"), mapping={k: str(v) for k, v in fields.items()}
    )


@pytest.mark.parametrize("start", [TWO53 - 3, TWO53 + 1, INT64_MAX - 10**15])
async def test_a_pot_grows_exactly_past_2_to_the_53(store: Store, start: int) -> None:
    engine = await instance(store)
    await put(store, **{"pot:main:value": start, "total:seed_funding": start})
    for k in range(1, 4):
        out = await contribute(store, engine, amount=7)
        assert out.amount == 7
        s = await state(store)
        assert s["pot:main:value"] == str(start + 7 * k)
        assert s["total:contributions"] == str(7 * k)
    await assert_conserved(store, engine)


async def test_a_reserve_grows_exactly_past_2_to_the_53(store: Store) -> None:
    engine = await instance(store, reserve_share="0.5")
    start = TWO53 + 1
    await put(store, **{"pot:main:reserve": start, "total:seed_funding": start})
    await contribute(store, engine, amount=3)  # floor(1.5) to the reserve, 2 to the value
    s = await state(store)
    assert (s["pot:main:value"], s["pot:main:reserve"]) == ("2", str(start + 1))
    await assert_conserved(store, engine)


async def test_beyond_2_to_the_63_a_contribution_is_refused_and_changes_nothing(
    store: Store,
) -> None:
    engine = await instance(store, reserve_share="0.5")
    await put(store, **{"pot:main:value": INT64_MAX - 1, "total:seed_funding": INT64_MAX - 1})
    frozen = await snapshot(store, "jp1")
    with pytest.raises(ScriptRefusal) as refused:
        await contribute(store, engine, amount=4)  # 2 more to a value at 2^63 - 2
    assert refused.value.code is Code.AMOUNT_OVERFLOW
    assert await snapshot(store, "jp1") == frozen
    await contribute(store, engine, amount=2)  # 1 more: exactly 2^63 - 1
    assert (await state(store))["pot:main:value"] == str(INT64_MAX)
    await put(store, **{"pot:main:value": 0, "pot:main:reserve": INT64_MAX})
    with pytest.raises(ScriptRefusal) as refused:
        await contribute(store, engine, amount=2)
    assert refused.value.code is Code.AMOUNT_OVERFLOW


async def test_lifetime_totals_never_limit_an_instance(store: Store) -> None:
    """Totals pass 2^63 and stay exact decimal strings; the instance goes on."""
    engine = await instance(store, trigger=hit_rate(1))
    near = INT64_MAX - 5
    await put(
        store,
        **{
            "total:contributions": near,
            "total:house": near,
            "total:wins": near,
            "total:seed_funding": near,
        },
    )
    for _ in range(3):
        out = await contribute(store, engine, amount=1000, randoms={"main": 0})
        assert out.win_amount == 1000
    s = await state(store)
    assert s["total:contributions"] == str(near + 3000)
    assert s["total:wins"] == str(near + 3000)
    assert s["total:house"] == str(near)
    await assert_conserved(store, engine)


async def test_a_win_above_2_to_the_53_is_paid_exactly(store: Store) -> None:
    engine = await instance(store, trigger=hit_rate(1), seed="1")
    value = TWO53 + 1  # odd: no double holds it
    await put(store, **{"pot:main:value": value, "total:seed_funding": value})
    out = await contribute(store, engine, amount=2, randoms={"main": 0})
    assert out.win_amount == value + 2
    s = await state(store)
    assert (s["pot:main:value"], s["total:wins"]) == ("1000000", str(value + 2))
    (win,) = [
        e for e in await store.client.xrange(keys.instance_ledger("jp1")) if e[1]["type"] == "win"
    ]
    assert win[1]["amount"] == str(value + 2)
    await assert_conserved(store, engine)


@pytest.mark.parametrize("start", [10**15 - 1, TWO53 - 2])
async def test_a_short_value_and_a_large_amount_add_exactly_across_2_to_the_53(
    store: Store, start: int
) -> None:
    """Values of at most 15 digits are added as Lua numbers (includes/money.lua's fast path)
    only while the sum stays below 2^53; this one crosses it."""
    engine = await instance(store)
    await put(store, **{"pot:main:value": start, "total:seed_funding": start})
    amount = TWO53 - 3
    out = await contribute(store, engine, amount=amount)
    assert out.amount == amount
    s = await state(store)
    assert s["pot:main:value"] == str(start + amount)
    assert s["total:contributions"] == str(amount)
    await assert_conserved(store, engine)
