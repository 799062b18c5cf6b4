"""Reconciliation: the ledger replayed from its first entry against the live state, each
difference reported to the micro-unit."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from decimal import Decimal
from typing import Any

import pytest
from quart.testing import QuartClient

from app.core.security import Principal
from app.services import Services
from app.store import keys
from tests.conftest import CLI, auth
from tests.support.definitions import hit_rate, instance, must_drop, pot
from tests.support.http import contribution, create_instance, expect, post, view
from tests.support.money import assert_conserved

RIVAL_ADMIN = Principal("rival-admin", "rival", ("admin",))
POTS = [
    pot("mini", "0.25", hit_rate(4, "0.10"), seed="1", reserve_share="0.15", max_value="5"),
    pot("major", "0.40", must_drop("3", "6"), seed="2", reserve_share="0.1", max_value="6"),
    pot("flat", "0.05", hit_rate(30, "0.10"), seed="2", progressive=False),
]


async def reconcile(client: QuartClient, headers: dict[str, str], instance_id: str) -> Any:
    response = await client.get(f"/admin/instances/{instance_id}/reconciliation", headers=headers)
    return await expect(response, 200)


async def busy_instance(client: QuartClient, headers: dict[str, str], instance_id: str) -> None:
    """Contributions with wins and reseeds (with deficits), and boosts."""
    await create_instance(client, headers, instance(instance_id, pots=POTS, fixed="0.77"))
    boost = {"pot_id": "mini", "amount": "0.5"}
    await expect(await post(client, f"/admin/instances/{instance_id}/boosts", boost, headers), 201)
    for number in range(30):
        body = contribution(instance_id, f"p{number % 4}")
        await expect(await post(client, "/jackpots/contribute", body, headers), 200)


async def test_untouched_books_balance(
    client: QuartClient, headers: dict[str, str], gateway: Services
) -> None:
    await busy_instance(client, headers, "books")
    report = await reconcile(client, headers, "books")
    ledger = await gateway.store.client.xrange(keys.instance_ledger("books"))
    assert report["balanced"] is True
    assert report["differences"] == []
    assert report["unknown_entries"] == {}
    assert report["entries_replayed"] == len(ledger)
    assert report["as_of_entry"] == ledger[-1][0]
    assert report["conservation"]["difference"] == 0
    # Every pot field and total was compared, and agrees with the instance view.
    state = await view(client, headers, "books")
    compared = {line["field"]: line for line in report["compared"]}
    for pot_id, amounts in state["pots"].items():
        assert compared[f"pot:{pot_id}:value"]["live"] == amounts["current_value"]
        assert compared[f"pot:{pot_id}:reserve"]["ledger"] == amounts["reserve"]
        assert compared[f"pot:{pot_id}:deficit"]["ledger"] == amounts["seed_deficit"]
    for name, amount in state["totals"].items():
        assert compared[f"total:{name}"]["ledger"] == amount
    assert state["totals"]["wins"] > 0 and state["totals"]["boosts"] == Decimal("0.5")
    assert_conserved(state)


@pytest.mark.parametrize(
    ("field", "micros"),
    [("pot:major:value", 1), ("pot:mini:reserve", -250_000), ("total:house", 7)],
)
async def test_a_corruption_is_flagged_to_the_micro_unit(
    client: QuartClient, headers: dict[str, str], gateway: Services, field: str, micros: int
) -> None:
    await busy_instance(client, headers, "books")
    await gateway.store.client.hincrby(keys.instance_state("books"), field, micros)
    report = await reconcile(client, headers, "books")
    assert report["balanced"] is False
    [difference] = report["differences"]
    assert difference["field"] == field
    assert difference["difference"] == Decimal(micros) / 1_000_000
    assert difference["live"] - difference["ledger"] == difference["difference"]
    # A pot or total moved alone also breaks the conservation law by as much (house and
    # pots are on opposite sides of it from nothing: either way the sign follows).
    assert abs(report["conservation"]["difference"]) == abs(difference["difference"])


async def test_an_entry_of_unknown_type_is_reported(
    client: QuartClient, headers: dict[str, str], gateway: Services
) -> None:
    await busy_instance(client, headers, "books")
    await gateway.store.client.xadd(keys.instance_ledger("books"), {"type": "mystery"})
    report = await reconcile(client, headers, "books")
    assert (report["balanced"], report["unknown_entries"]) == (False, {"mystery": 1})


async def test_scoping_and_unknown_instances(
    client: QuartClient, headers: dict[str, str], gateway: Services
) -> None:
    await create_instance(client, headers, instance("books"))
    rival = auth(gateway, RIVAL_ADMIN)
    response = await client.get("/admin/instances/books/reconciliation", headers=rival)
    await expect(response, 404, "INSTANCE_NOT_FOUND")
    response = await client.get("/admin/instances/nowhere/reconciliation", headers=headers)
    await expect(response, 404, "INSTANCE_NOT_FOUND")


@pytest.mark.real_redis
@pytest.mark.parametrize("redis_url", ["real"], indirect=True)
async def test_zero_differences_during_and_after_concurrent_load(
    client: QuartClient, headers: dict[str, str]
) -> None:
    """Contributions (with wins), boosts and reconciliations all at once on a real Redis:
    every report, taken mid-flight, balances."""
    await create_instance(client, headers, instance("hot", pots=POTS, fixed="0.77"))

    async def contribute(number: int) -> None:
        body = contribution("hot", f"p{number % 16}")
        await expect(await post(client, "/jackpots/contribute", body, headers), 200)

    async def boost(number: int) -> None:
        body = {"pot_id": ["mini", "major", "flat"][number % 3], "amount": "0.000001"}
        await expect(await post(client, "/admin/instances/hot/boosts", body, headers), 201)

    # At most 32 requests in flight: within the connection pool, however loaded the machine.
    slots = asyncio.Semaphore(32)

    async def limited(request: Awaitable[Any]) -> Any:
        async with slots:
            return await request

    work = [contribute(n) for n in range(300)] + [boost(n) for n in range(30)]
    reports = [reconcile(client, headers, "hot") for _ in range(10)]
    # Reports spread among the writes, so each is taken while others are in flight.
    mixed = work[:]
    for index, report in enumerate(reports):
        mixed.insert(index * 33 + 16, report)
    done = await asyncio.gather(*(limited(request) for request in mixed))
    mid_flight = [result for result in done if isinstance(result, dict)]
    assert len(mid_flight) == len(reports)
    assert all(report["balanced"] and report["differences"] == [] for report in mid_flight)
    final = await reconcile(client, headers, "hot")
    assert final["balanced"] and final["differences"] == []
    totals = (await view(client, headers, "hot"))["totals"]
    assert totals["contributions"] == Decimal("0.77") * 300
    assert totals["boosts"] == Decimal("0.000030")
    assert totals["wins"] > 0


async def test_cli_reconcile(
    client: QuartClient, headers: dict[str, str], gateway: Services, cli: CLI
) -> None:
    await busy_instance(client, headers, "books")
    code, out, _ = await cli("reconcile", "--instance", "books")
    assert (code, json.loads(out)["balanced"]) == (0, True)
    await gateway.store.client.hincrby(keys.instance_state("books"), "pot:mini:value", 1)
    code, out, _ = await cli("reconcile", "--instance", "books")
    report = json.loads(out)
    assert code == 3
    assert [(d["field"], d["difference"]) for d in report["differences"]] == [
        ("pot:mini:value", 0.000001)
    ]


# -- the verdict against deliberate corruptions (issue 25) -------------------------------------
BOOKS_FIELDS = [
    *(f"pot:{p['id']}:{name}" for p in POTS for name in ("value", "reserve", "deficit")),
    *(
        f"total:{name}"
        for name in ("contributions", "seed_funding", "boosts", "house", "wins", "returned")
    ),
]


@pytest.mark.parametrize("field", BOOKS_FIELDS)
@pytest.mark.parametrize("micros", [1, 2**64])
async def test_every_stored_amount_is_compared_exactly_at_any_size(
    client: QuartClient, headers: dict[str, str], gateway: Services, field: str, micros: int
) -> None:
    """Each pot, reserve, deficit and total, moved by one micro-unit or by 2^64 (past what a
    Redis integer holds), is the one difference reported, to the micro-unit."""
    await busy_instance(client, headers, "books")
    state_key = keys.instance_state("books")
    held = int(await gateway.store.client.hget(state_key, field) or 0)
    await gateway.store.client.hset(state_key, field, str(held + micros))
    report = await reconcile(client, headers, "books")
    assert report["balanced"] is False
    [difference] = report["differences"]
    assert (difference["field"], difference["difference"]) == (field, Decimal(micros) / 10**6)


@pytest.mark.parametrize("field", ["pot:mini:reserve", "total:wins", "total:returned"])
@pytest.mark.parametrize("value", ["12.5", "x", "-", "1e3"])
async def test_a_stored_amount_that_is_not_an_integer_is_named(
    client: QuartClient, headers: dict[str, str], gateway: Services, field: str, value: str
) -> None:
    await busy_instance(client, headers, "books")
    await gateway.store.client.hset(keys.instance_state("books"), field, value)
    report = await reconcile(client, headers, "books")
    assert report["balanced"] is False
    assert report["corrupt"] == [f"state {field} = {value!r}"]
    [line] = [line for line in report["compared"] if line["field"] == field]
    assert (line["live"], line["difference"]) == (None, None)


@pytest.mark.parametrize("change", ["amount", "drop", "duplicate", "garble"])
async def test_a_changed_ledger_is_flagged(
    client: QuartClient, headers: dict[str, str], gateway: Services, change: str
) -> None:
    await busy_instance(client, headers, "books")
    ledger_key = keys.instance_ledger("books")
    client_ = gateway.store.client
    entries = await client_.xrange(ledger_key)
    [(entry_id, fields)] = [e for e in entries if e[1]["type"] == "contribution"][:1]
    if change == "amount":  # the entry rewritten (a stream entry cannot be edited: re-added)
        await client_.xdel(ledger_key, entry_id)
        await client_.xadd(ledger_key, {**fields, "house": str(int(fields["house"]) + 1)})
    elif change == "drop":
        await client_.xdel(ledger_key, entry_id)
    elif change == "duplicate":
        await client_.xadd(ledger_key, fields)
    else:
        await client_.xadd(ledger_key, {**fields, "amount": "1.5"})
    report = await reconcile(client, headers, "books")
    assert report["balanced"] is False, report
    if change == "garble":
        [corrupt] = report["corrupt"]
        assert corrupt.startswith("ledger entry ") and "amount = '1.5'" in corrupt


async def test_a_win_record_decided_without_its_ledger_entry_is_flagged(
    client: QuartClient, headers: dict[str, str], gateway: Services
) -> None:
    """The record of defect 2 (rejected, no money moved, no ledger entry) is unbalanced even
    though every amount agrees."""
    await create_instance(
        client,
        headers,
        instance("held", pots=[pot("main", "0.7", hit_rate(1))], auto_payout_limit="0"),
    )
    response = await post(client, "/jackpots/contribute", contribution("held", "p1"), headers)
    win_id = (await expect(response, 200)) and response.headers["X-Contribution-Id"]
    assert (await reconcile(client, headers, "held"))["balanced"] is True
    wins_key = keys.instance_wins("held")
    raw = await gateway.store.client.hget(wins_key, win_id)
    await gateway.store.client.hset(wins_key, win_id, raw[:-1] + ',"decision":"rejected"}')
    report = await reconcile(client, headers, "held")
    assert (report["balanced"], report["differences"]) == (False, [])
    assert report["decisions"] == [f"win {win_id}: the record says rejected, the ledger undecided"]
