"""The meter report reads per-day counters the scripts keep (lua/includes/meters.lua); a full
replay of the ledger (app/services/books.py, the oracle) must give the very same figures, to
the micro-unit, for every period of whole UTC days, after a seeded random mix of
contributions, wins (paid and withheld), approvals, rejections, boosts and a termination whose
times cross midnight UTC (an operation at exactly midnight counts on the new day)."""

from __future__ import annotations

import json
import random
from dataclasses import asdict
from decimal import Decimal
from typing import Any

import pytest
from quart.testing import QuartClient

from app.core.clock import DAY_MS, now_ms
from app.core.money import from_micros
from app.services import Services, contributions, lifecycle, treasury
from app.services.admin import accounts as admin_accounts
from app.services.admin import instances as admin_instances
from app.services.books import replay
from app.store import keys
from tests.conftest import CLI
from tests.support.definitions import hit_rate, instance, must_drop, pot
from tests.support.http import contribution, create_instance, expect, post

MIDNIGHT = 1_796_515_200_000  # 2026-12-06 00:00 UTC
POTS = [
    pot("mini", "0.3", hit_rate(4, "0.50"), reserve_share="0.25", seed="1"),
    pot("major", "0.2", must_drop("5", "9"), reserve_share="0.1", seed="3", max_value="12"),
    pot("flat", "0.2", hit_rate(9, "0.50"), seed="2", progressive=False),
]


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock(MIDNIGHT - DAY_MS // 2)
    for module in (admin_accounts, admin_instances, contributions, lifecycle, treasury):
        monkeypatch.setattr(module, "now_ms", fake)
    return fake


async def traffic(
    client: QuartClient, headers: dict[str, str], clock: Clock, instance_id: str, seed: int
) -> None:
    """About 60 operations from noon before MIDNIGHT to the morning after, one of them at
    exactly MIDNIGHT and one at its last millisecond before."""
    rng = random.Random(seed)
    definition = instance(
        instance_id,
        pots=POTS,
        contribution_type={"Percentage": "0.5"},
        auto_payout_limit="6",
    )
    await create_instance(client, headers, definition)
    withheld: list[str] = []
    steps = 60
    for step in range(steps):
        if step == steps // 2 - 1:
            clock.now = MIDNIGHT - 1
        elif step == steps // 2:
            clock.now = MIDNIGHT
        else:
            clock.now += rng.randrange(0, DAY_MS // steps)
        roll = rng.random()
        if roll < 0.75:
            body = contribution(
                instance_id,
                f"p{rng.randrange(5)}",
                base_wager=f"{rng.randrange(0, 900)}.{rng.randrange(100):02d}",
            )
            response = await post(client, "/jackpots/contribute", body, headers)
            result = await expect(response, 200)
            if result["win_withheld"]:
                withheld.append(response.headers["X-Contribution-Id"])
        elif roll < 0.85:
            boost = {
                "pot_id": rng.choice(["mini", "major", "flat"]),
                "amount": f"{rng.randrange(1, 50)}.{rng.randrange(10**6):06d}",
                "target": "reserve",
            }
            path = f"/admin/instances/{instance_id}/boosts"
            await expect(await post(client, path, boost, headers), 201)
        elif withheld:
            win_id = withheld.pop(rng.randrange(len(withheld)))
            verb = rng.choice(["approve", "reject"])
            path = f"/admin/instances/{instance_id}/wins/{win_id}/{verb}"
            await expect(await post(client, path, {"reason": "checked"}, headers), 200)
    if seed % 2:
        clock.now += 1000
        await expect(
            await post(client, f"/admin/instances/{instance_id}/terminate", {}, headers), 200
        )
        if withheld:  # a rejection after the termination: all of it returned to the operator
            path = f"/admin/instances/{instance_id}/wins/{withheld[0]}/reject"
            await expect(await post(client, path, {"reason": "late"}, headers), 200)


def money(figures: dict[str, int]) -> dict[str, Any]:
    return {name: v if name == "hits" else from_micros(v) for name, v in figures.items()}


async def oracle(gateway: Services, instance_id: str, period: tuple[int, int]) -> Any:
    store = gateway.store
    last_id, _ = await store.books(instance_id)
    pot_ids = [p["id"] for p in POTS]
    return await replay(pot_ids, store.ledger_until(instance_id, last_id), period)


PERIODS = [
    (MIDNIGHT - DAY_MS, MIDNIGHT),  # the day before: ends at the last ms before midnight
    (MIDNIGHT, MIDNIGHT + DAY_MS),  # the day of: starts with the operation at midnight
    (MIDNIGHT - DAY_MS, MIDNIGHT + DAY_MS),
    (MIDNIGHT + DAY_MS, MIDNIGHT + 2 * DAY_MS),  # nothing happened
    (0, MIDNIGHT + 400 * DAY_MS),  # a long period: every counter is read and filtered
]


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
async def test_counters_equal_a_full_replay(
    client: QuartClient,
    headers: dict[str, str],
    gateway: Services,
    clock: Clock,
    seed: int,
) -> None:
    instance_id = f"metered-{seed}"
    await traffic(client, headers, clock, instance_id, seed)
    oracles = {period: await oracle(gateway, instance_id, period) for period in PERIODS}
    entries = [fields async for fields in gateway.store.ledger_until(instance_id, "+")]
    # The report does not read the ledger: it holds once the ledger is archived and trimmed.
    await gateway.store.client.xtrim(keys.instance_ledger(instance_id), maxlen=0)
    for period, books in oracles.items():
        assert not books.unknown and not books.corrupt
        query = {"from": period[0], "to": period[1]}
        response = await client.get(
            f"/admin/instances/{instance_id}/meters", headers=headers, query_string=query
        )
        report = await expect(response, 200)
        by_pot = {p["pot_id"]: p for p in report["pots"]}
        for pot_id, pot_books in books.pots.items():
            assert by_pot[pot_id]["cumulative"] == money(asdict(pot_books.meters)), pot_id
            assert by_pot[pot_id]["period"] == money(asdict(pot_books.period)), (pot_id, period)
            assert by_pot[pot_id]["last_awards"] == [
                {**award, "amount": from_micros(award["amount"])} for award in pot_books.awards
            ]
        hits = sum(p.meters.hits for p in books.pots.values())
        period_hits = sum(p.period.hits for p in books.pots.values())
        assert report["cumulative"] == {**money(books.totals), "hits": hits}
        assert report["period_totals"] == {**money(books.period_totals), "hits": period_hits}
    # the mix did what it is meant to exercise
    kinds = {fields["type"] for fields in entries}
    assert {"contribution", "win", "boost", "seed_funding"} <= kinds
    at_midnight = [f for f in entries if f["ts"] == str(MIDNIGHT)]
    assert at_midnight, "an operation at exactly midnight"


async def test_a_day_counter_is_named_by_the_utc_day_of_now(
    client: QuartClient, headers: dict[str, str], gateway: Services, clock: Clock
) -> None:
    """The last ms before midnight counts on 2026-12-05, midnight itself on 2026-12-06."""
    await create_instance(client, headers, instance("days", fixed="2.00"))
    for now in (MIDNIGHT - 1, MIDNIGHT):
        clock.now = now
        await expect(
            await post(client, "/jackpots/contribute", contribution("days", "p"), headers), 200
        )
    counters = await gateway.store.client.hgetall(keys.instance_meter("days"))
    assert counters["20261205|*|contributions"] == str(2_000_000)
    assert counters["20261206|*|contributions"] == str(2_000_000)
    assert counters["*|contributions"] == str(4_000_000)
    assert counters["20261206|main|contributions"] == str(1_400_000)
    assert Decimal(counters["20261205|*|house"]) == 600_000


async def test_raffle_prizes_count_as_the_replay_counts_them(
    client: QuartClient,
    headers: dict[str, str],
    gateway: Services,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Prizes paid from the prize pot (then from its reserve, then by the operator) and
    prizes of a raffle without pots: wins, hits and seed funding as the replay has them."""
    from app.services import raffles
    from tests.support.definitions import pot as make_pot
    from tests.test_raffle_rounds import HOUR, raffle

    # sales close by the store's clock too: the next real midnight, the draw on its day
    midnight = (now_ms() // DAY_MS + 1) * DAY_MS
    fake = Clock(midnight - HOUR // 2)
    for module in (admin_accounts, admin_instances, contributions, lifecycle, raffles, treasury):
        monkeypatch.setattr(module, "now_ms", fake)
    start = fake.now
    potless = {"pots": [], "house_share": "1"}
    for instance_id, fields in (("prized", {}), ("potless", potless)):
        definition = raffle(instance_id, **fields)
        if not fields:
            definition["pots"] = [make_pot("pool", "0.5", seed="1")]
        await expect(await post(client, "/admin/instances", definition, headers), 201)
        for player, wager in (("a", "300"), ("b", "500"), ("c", "200")):
            body = contribution(instance_id, player, base_wager=wager)
            await expect(await post(client, "/jackpots/contribute", body, headers), 200)
    fake.now = start + HOUR
    done = await gateway.lifecycle.run_due()
    assert ("draw", "prized@1") in done and ("draw", "potless@1") in done
    for instance_id in ("prized", "potless"):
        pot_ids = ["pool"] if instance_id == "prized" else []
        last_id, _ = await gateway.store.books(instance_id)
        periods = [
            (midnight - DAY_MS, midnight),
            (midnight, midnight + DAY_MS),
            (midnight - DAY_MS, midnight + DAY_MS),
        ]
        for period in periods:
            books = await replay(pot_ids, gateway.store.ledger_until(instance_id, last_id), period)
            assert books.totals["wins"] > 0 or period[0] < midnight == period[1]
            query = {"from": period[0], "to": period[1]}
            response = await client.get(
                f"/admin/instances/{instance_id}/meters", headers=headers, query_string=query
            )
            report = await expect(response, 200)
            hits = sum(p.meters.hits for p in books.pots.values())
            period_hits = sum(p.period.hits for p in books.pots.values())
            assert report["cumulative"] == {**money(books.totals), "hits": hits}
            assert report["period_totals"] == {**money(books.period_totals), "hits": period_hits}
            for p in report["pots"]:
                assert p["cumulative"] == money(asdict(books.pots[p["pot_id"]].meters))
                assert p["period"] == money(asdict(books.pots[p["pot_id"]].period))
                assert p["last_awards"] == []  # prizes are not jackpot awards


async def test_any_whole_day_period_is_answered(
    client: QuartClient, headers: dict[str, str], clock: Clock
) -> None:
    """Far past the year 9999 too (never a 5xx): the counters of the days it holds."""
    await create_instance(client, headers, instance("far"))
    clock.now = MIDNIGHT
    await expect(await post(client, "/jackpots/contribute", contribution("far", "p"), headers), 200)
    for to in (MIDNIGHT + DAY_MS, DAY_MS * 10**12):
        query = {"from": MIDNIGHT, "to": to}
        response = await client.get(
            "/admin/instances/far/meters", headers=headers, query_string=query
        )
        report = await expect(response, 200)
        assert report["period_totals"]["contributions"] == Decimal("1.00")


async def test_backfill_adds_the_ledger_written_before_the_counters(
    client: QuartClient,
    headers: dict[str, str],
    gateway: Services,
    clock: Clock,
    cli: CLI,
) -> None:
    """An instance created before the counters: its ledger is there, its counters are not
    (deleted here), and contributions go on after the upgrade. backfill-meters makes the
    report equal a full replay again, once."""
    await traffic(client, headers, clock, "older", 2)
    await gateway.store.client.delete(keys.instance_meter("older"))  # before the upgrade
    for player in ("p1", "p2", "p3"):
        clock.now += 60_000
        body = contribution("older", player, base_wager="40.00")
        await expect(await post(client, "/jackpots/contribute", body, headers), 200)
    code, out, _ = await cli("backfill-meters", "--instance", "older")
    assert code == 0 and json.loads(out)["backfilled"] is True
    for period in PERIODS:
        books = await oracle(gateway, "older", period)
        query = {"from": period[0], "to": period[1]}
        response = await client.get(
            "/admin/instances/older/meters", headers=headers, query_string=query
        )
        report = await expect(response, 200)
        hits = sum(p.meters.hits for p in books.pots.values())
        period_hits = sum(p.period.hits for p in books.pots.values())
        assert report["cumulative"] == {**money(books.totals), "hits": hits}
        assert report["period_totals"] == {**money(books.period_totals), "hits": period_hits}
        for p in report["pots"]:
            assert p["cumulative"] == money(asdict(books.pots[p["pot_id"]].meters))
            assert p["period"] == money(asdict(books.pots[p["pot_id"]].period))
    before = await gateway.store.client.hgetall(keys.instance_meter("older"))
    code, out, _ = await cli("backfill-meters", "--instance", "older")
    assert code == 0 and json.loads(out)["backfilled"] is False
    assert await gateway.store.client.hgetall(keys.instance_meter("older")) == before
