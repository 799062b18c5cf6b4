"""MustDropByTime: the pot drops at the first contribution at or after a hidden moment drawn
uniformly in each period (before drop_by). Lua contract tests on real Redis and fakeredis
(the `store` fixture), statistical checks of the moments, and the admin API."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from quart.testing import QuartClient

from app.core.refusals import Code
from app.schemas.admin import InstanceSchema
from app.services.engine import compile_engine
from app.store import ScriptRefusal, Store, keys
from app.store.contributions import ContributionOutcome, PotDraw
from app.triggers import initial_state, must_drop_by_time
from tests.conftest import make_settings
from tests.support.definitions import hit_rate, pot
from tests.support.http import create_instance, expect, post, v1_body
from tests.support.snapshots import snapshot

T0 = 1_700_000_000_000  # a multiple of 1 s and of 10 s, not of a day
DAY = 86_400_000
NO_HIT = 2**52 - 1


def time_pot(pot_id: str, share: str, period: str, drop_by: str | None = None, **kw: Any) -> Any:
    body: dict[str, Any] = {"period": period}
    if drop_by is not None:
        body["drop_by"] = drop_by
    return pot(pot_id, share, {"MustDropByTime": body}, **kw)


async def create(
    store: Store, pots: list[dict[str, Any]], moments: dict[str, int], now: int = T0
) -> dict[str, Any]:
    loaded = InstanceSchema().load(
        {
            "id": "jp1",
            "name": "Timed",
            "currency": "EUR",
            "contribution_type": {"Fixed": "1"},
            "allowed_brands": ["op1:brand1"],
            "house_share": "0",
            "pots": pots,
        }
    )
    engine = compile_engine(loaded)
    assert await store.create_instance(
        InstanceSchema().dump(loaded),
        engine,
        now_ms=now,
        status="Active",
        timestamp_start=None,
        timestamp_end=None,
        drop_values=[
            moments.get(p["id"], initial_state(p["trigger"], now)) for p in engine["pots"]
        ],
    )
    return engine


def inputs(engine: dict[str, Any], now: int, **fixed: tuple[int | None, int | None]) -> list[Any]:
    """Each pot's inputs: given ones, else drawn as the service draws them (HitRate: no hit)."""
    draws = []
    for p in engine["pots"]:
        trigger = p["trigger"]
        if p["id"] in fixed:
            draws.append(PotDraw(p["id"], *fixed[p["id"]]))
        elif trigger["type"] == "HitRate":
            draws.append(PotDraw(p["id"], NO_HIT))
        else:
            draws.append(PotDraw(p["id"], *must_drop_by_time.inputs(trigger, now)))
    return draws


async def contribute(
    store: Store, engine: dict[str, Any], now: int, **fixed: tuple[int | None, int | None]
) -> ContributionOutcome:
    return await store.contribute(
        "jp1",
        operator_id="op1",
        brand_id="brand1",
        player_id="p1",
        contribution_id=str(uuid.uuid4()),
        event_id=str(uuid.uuid4()),
        now_ms=now,
        pots=inputs(engine, now, **fixed),
    )


async def moment(store: Store, pot_id: str = "t") -> int:
    return int(await store.client.hget(keys.instance_state("jp1"), f"pot:{pot_id}:drop_at"))


async def test_the_first_contribution_at_or_after_the_moment_wins(store: Store) -> None:
    engine = await create(store, [time_pot("t", "1", "10s")], {"t": T0 + 4321})
    assert (await contribute(store, engine, T0 + 4320)).win_pot_id is None
    assert await moment(store) == T0 + 4321  # unchanged: still hidden in this period
    won = await contribute(store, engine, T0 + 4321)
    assert won.win_pot_id == "t"
    following = await moment(store)
    assert T0 + 10_000 <= following < T0 + 20_000  # the next period's moment
    assert (await contribute(store, engine, T0 + 4322)).win_pot_id is None
    assert (await contribute(store, engine, following - 1)).win_pot_id is None
    assert (await contribute(store, engine, following)).win_pot_id == "t"


async def test_a_period_without_a_win_gives_way_to_the_current_periods_moment(
    store: Store,
) -> None:
    engine = await create(store, [time_pot("t", "1", "1s")], {"t": T0 + 100})
    now = T0 + 5_500  # five periods later, nobody contributed
    late = (T0 + 5_900, T0 + 6_000)
    assert (await contribute(store, engine, now, t=late)).win_pot_id is None
    assert await moment(store) == T0 + 5_900  # this period's moment took over
    assert (await contribute(store, engine, T0 + 5_900, t=late)).win_pot_id == "t"
    # this period's moment may already be behind the first contribution: it wins at once
    early = (T0 + 9_200, T0 + 10_300)
    assert (await contribute(store, engine, T0 + 9_500, t=early)).win_pot_id == "t"
    assert await moment(store) == T0 + 10_300


async def test_drop_by_bounds_every_moment_of_a_day(store: Store) -> None:
    day = T0 - T0 % DAY + DAY
    window = 22 * 3_600_000  # 22:00
    compiled = compile_engine(
        InstanceSchema().load(
            {
                "name": "x",
                "currency": "EUR",
                "contribution_type": {"Fixed": "1"},
                "allowed_brands": ["op1:brand1"],
                "pots": [time_pot("t", "1", "1d", "22:00")],
            }
        )
    )["pots"][0]["trigger"]
    assert compiled == {"type": "MustDropByTime", "period_ms": DAY, "window_ms": window}
    for offset in range(0, DAY, 3_599_999):
        this_moment, next_moment = must_drop_by_time.inputs(compiled, day + offset)
        assert day <= this_moment < day + window
        assert day + DAY <= next_moment < day + DAY + window
    engine = await create(store, [time_pot("t", "1", "1d", "22:00")], {"t": day + 1000}, now=day)
    before = await snapshot(store, "jp1")
    for bad in ((day + window, day + DAY), (day - 1, day + DAY), (day, day + DAY + window)):
        with pytest.raises(ScriptRefusal) as caught:
            await contribute(store, engine, day + 5, t=bad)
        assert caught.value.code is Code.BAD_ARGUMENT
    assert await snapshot(store, "jp1") == before
    # the day passed without a contribution; at 23:00 the next day, after its drop_by, the
    # day's moment is behind the contribution: it wins (one rule for late contributions)
    now = day + DAY + 23 * 3_600_000
    drawn = (day + DAY + 5, day + 2 * DAY + 7)
    assert (await contribute(store, engine, now, t=drawn)).win_pot_id == "t"
    assert await moment(store) == day + 2 * DAY + 7


@pytest.mark.parametrize("previous_period", ["won", "quiet"])
async def test_a_late_contribution_drops_the_pot_whatever_the_previous_period_did(
    store: Store, previous_period: str
) -> None:
    """Issue 25, defect 6: a day whose only contribution comes after drop_by drops the pot,
    whether or not the day before had a win (40 draws of each history)."""
    day = T0 - T0 % DAY + DAY
    window = 22 * 3_600_000
    compiled = {"type": "MustDropByTime", "period_ms": DAY, "window_ms": window}
    late = day + DAY + 23 * 3_600_000  # the next day at 23:00, after its drop_by
    for n in range(40):
        stale = await store.client.keys(keys.instance_tag("jp1") + "*")
        if stale:
            await store.client.delete(*stale)
        engine = await create(store, [time_pot("t", "1", "1d", "22:00")], {"t": day + 1000}, day)
        if previous_period == "won":
            drawn = must_drop_by_time.inputs(compiled, day + 2000)
            assert (await contribute(store, engine, day + 2000, t=drawn)).win_pot_id == "t"
        drawn = must_drop_by_time.inputs(compiled, late)
        out = await contribute(store, engine, late, t=drawn)
        assert out.win_pot_id == "t", (n, previous_period)


async def test_the_highest_pot_still_wins(store: Store) -> None:
    engine = await create(
        store,
        [pot("big", "0.5", hit_rate(2), seed="500"), time_pot("t", "0.5", "10s", seed="5")],
        {"t": T0 + 10},
    )
    out = await contribute(store, engine, T0 + 20, big=(0, None))
    assert out.win_pot_id == "big"  # both hit; big holds more
    assert await moment(store) == T0 + 10  # the time pot keeps its passed moment
    assert (await contribute(store, engine, T0 + 30)).win_pot_id == "t"


@pytest.mark.real_redis
async def test_drop_moments_are_uniform_in_their_periods(real_redis_url: str) -> None:
    """Over many 1 s periods, contributing at offsets 99, 199, ..., 999 ms, the drop lands in
    the decile of its moment: the deciles fill evenly (chi-square, 9 degrees of freedom).
    Real Redis only: the other tests here prove fakeredis runs the same Lua."""
    # about statistics, not timeouts: a loaded machine must not fail it
    patient = make_settings(real_redis_url, redis_socket_timeout_s=60.0, redis_pool_timeout_s=60.0)
    store = Store.from_settings(patient)
    try:
        await _uniform_drops(store, periods=400)
    finally:
        await store.close()


async def _uniform_drops(store: Store, periods: int) -> None:
    engine = await create(store, [time_pot("t", "1", "1s")], {})
    counts = [0] * 10
    for k in range(periods):
        start = T0 + 1000 * k
        hidden = await moment(store)
        assert start <= hidden < start + 1000
        for offset in range(99, 1000, 100):
            if (await contribute(store, engine, start + offset)).win_pot_id:
                assert start + offset >= hidden
                assert offset // 100 == (hidden - start) // 100  # the first one after it
                counts[offset // 100] += 1
                break
    assert sum(counts) == periods  # one drop in every period
    expected = periods / 10
    chi_square = sum((c - expected) ** 2 / expected for c in counts)
    assert chi_square < 45.0, counts  # a uniform draw exceeds it with p < 1e-6


async def test_a_definition_with_an_unknown_trigger_is_refused_at_load(
    client: QuartClient, headers: dict[str, str]
) -> None:
    base = {
        "id": "odd",
        "name": "Odd",
        "currency": "EUR",
        "contribution_type": {"Fixed": "1.00"},
        "allowed_brands": ["demo:brand1"],
        "house_share": "0.3",
    }
    for trigger in (
        {"MustDropByMoon": {"phase": "full"}},
        {"MustDropByTime": {"period": "1h", "drop_by": "22:00"}},  # drop_by: daily periods only
        {"MustDropByTime": {"period": "0s"}},
        {"MustDropByTime": {"period": "1d", "drop_by": "25:00"}},
        {"MustDropByTime": {"period": "1d"}, **hit_rate(2)},  # exactly one trigger
    ):
        body = {**base, "pots": [pot("p", "0.7", trigger)]}
        await expect(await post(client, "/admin/instances", body, headers), 400, "VALIDATION_ERROR")
    response = await client.get("/admin/instances/odd", headers=headers)
    await expect(response, 404)


async def test_a_time_pot_drops_within_its_period_through_the_api(
    client: QuartClient, headers: dict[str, str]
) -> None:
    await create_instance(
        client,
        headers,
        {
            "id": "daily",
            "name": "Drop every second",
            "currency": "EUR",
            "contribution_type": {"Fixed": "1.00"},
            "allowed_brands": ["demo:brand1"],
            "house_share": "0.3",
            "pots": [time_pot("t", "0.7", "1s", seed="1")],
        },
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5  # a drop is due within about a second
    win = None
    while win is None and loop.time() < deadline:
        response = await post(client, "/jackpots/contribute", v1_body("daily"), headers)
        win = (await expect(response, 200))["win_pot_id"]
        await asyncio.sleep(0.02)
    assert win == "t"
