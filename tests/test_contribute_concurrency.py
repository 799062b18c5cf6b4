"""Several OS processes hammer one instance on a real Redis: money is conserved to the
micro-unit, the ledger agrees with the totals, and one idempotency key applies exactly once."""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest

from app.store import Store, keys
from app.store.connection import Timeouts, async_client
from app.store.contributions import ContributionOutcome
from app.store.scripts import ScriptRunner
from app.triggers.hit_rate import HIT_RANDOM_BOUND
from tests.support.definitions import hit_rate, must_drop, pot
from tests.test_lua_contribute import (
    M,
    assert_conserved,
    create,
    definition,
    draws,
    ledger,
    money,
    state,
)

pytestmark = [pytest.mark.real_redis, pytest.mark.slow]

PROCESSES = 4
PER_PROCESS = 1000
IN_FLIGHT = 32  # concurrent calls per process (the pool holds 100 connections)
NOW = 1_700_000_000_000
# These tests are about concurrency, not timeouts: a loaded machine must not fail them.
PATIENT = Timeouts(socket=60, connect=60, pool=60)


def hammer_definition() -> dict[str, Any]:
    return definition(
        [
            pot(
                "mini", "0.25", hit_rate(40, "0.10"), seed="1", reserve_share="0.15", max_value="5"
            ),
            pot("minor", "0.2", hit_rate(400, "0.10"), seed="5", reserve_share="0.05"),
            pot(
                "major",
                "0.2",
                must_drop("10", "14"),
                seed="10",
                reserve_share="0.2",
                max_value="14",
            ),
            pot("flat", "0.05", hit_rate(300, "0.10"), seed="2", progressive=False),
        ],
        house="0.3",
        contribution={"Percentage": "1"},
        raffle={"ticket_cost": "0.50", "prizes": ["10"], "draw": {"every": "1d"}},
        auto_payout_limit="6",
    )


async def _hammer(url: str, worker: int, engine: dict[str, Any]) -> list[tuple[int, int]]:
    """PER_PROCESS contributions with seeded draws; returns (amount, win amount) pairs."""
    store = Store(async_client(url, timeouts=PATIENT), ScriptRunner())
    rng = random.Random(1000 + worker)
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one(i: int) -> ContributionOutcome:
        randoms = {name: rng.randrange(HIT_RANDOM_BOUND) for name in ("mini", "minor", "flat")}
        next_drops = {"major": rng.randrange(10 * M, 14 * M)}
        async with gate:
            return await store.contribute(
                engine["id"],
                operator_id="op1",
                brand_id="brand1",
                player_id=f"w{worker}-p{i % 25}",
                contribution_id=f"{worker}-{i}",
                event_id=str(uuid.uuid4()),
                now_ms=NOW + i,
                pots=draws(engine, randoms, next_drops),
                amount=rng.randrange(0, 900_000),
                base_wager=rng.randrange(0, 3 * M),
            )

    try:
        outcomes = await asyncio.gather(*(one(i) for i in range(PER_PROCESS)))
    finally:
        await store.close()
    return [(o.amount, o.win_amount or 0) for o in outcomes]


def hammer(url: str, worker: int, engine: dict[str, Any]) -> list[tuple[int, int]]:
    return asyncio.run(_hammer(url, worker, engine))


async def _same_key(url: str, worker: int, engine: dict[str, Any], copies: int) -> list[Any]:
    store = Store(async_client(url, timeouts=PATIENT), ScriptRunner())

    async def one(i: int) -> ContributionOutcome:
        return await store.contribute(
            engine["id"],
            operator_id="op1",
            brand_id="brand1",
            player_id="dup",
            contribution_id=f"dup-{worker}-{i}",
            event_id=str(uuid.uuid4()),
            now_ms=NOW,
            pots=draws(engine, {"mini": 0}, None),  # this one wins the mini pot
            amount=777_777,
            idempotency_key="same-key",
            request_hash="body-hash",
        )

    try:
        outcomes = await asyncio.gather(*(one(i) for i in range(copies)))
    finally:
        await store.close()
    # what a replay answers (the lean idempotency record), then the amount the first applied
    return [(o.replay, o.contribution_id, o.win_pot_id, o.win_amount, o.amount) for o in outcomes]


def same_key(url: str, worker: int, engine: dict[str, Any], copies: int) -> list[Any]:
    return asyncio.run(_same_key(url, worker, engine, copies))


def _ready() -> bool:
    return True


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    """Spawned once for the module (a spawn imports the app: seconds per process)."""
    executor = ProcessPoolExecutor(PROCESSES, mp_context=multiprocessing.get_context("spawn"))
    with executor:
        assert all(f.result() for f in [executor.submit(_ready) for _ in range(PROCESSES)])
        yield executor


async def test_processes_hammering_one_instance_conserve_every_micro(
    real_redis_url: str, pool: ProcessPoolExecutor
) -> None:
    store = Store(async_client(real_redis_url, timeouts=PATIENT), ScriptRunner())
    try:
        engine = await create(store, hammer_definition())
        # The even players opt in: their opt-in records count their contributions (the
        # others have no record, so no counter: contribute-13.lua's header).
        opted = {f"w{w}-p{n}" for w in range(PROCESSES) for n in range(0, 25, 2)}
        for player in sorted(opted):
            await store.set_optin(
                "jp1",
                operator_id="op1",
                brand_id="brand1",
                player_id=player,
                opted_in=True,
                value_micros=None,
                value_raw=None,
                currency=None,
                now_ms=NOW,
                event_id=str(uuid.uuid4()),
            )
        loop = asyncio.get_running_loop()
        results = await asyncio.gather(
            *(
                loop.run_in_executor(pool, hammer, real_redis_url, worker, engine)
                for worker in range(PROCESSES)
            )
        )
        pairs = [pair for result in results for pair in result]
        assert len(pairs) == PROCESSES * PER_PROCESS
        s = await assert_conserved(store, engine)  # also: ledger sums == totals
        assert money(s, "total:contributions") == sum(amount for amount, _ in pairs)
        assert money(s, "total:wins") == sum(win for _, win in pairs)
        entries = await ledger(store)
        contributions = [e for e in entries if e["type"] == "contribution"]
        wins = [e for e in entries if e["type"] == "win"]
        assert len(contributions) == PROCESSES * PER_PROCESS
        assert len({e["id"] for e in contributions}) == PROCESSES * PER_PROCESS
        assert len(wins) == sum(1 for _, win in pairs if win)
        won_pots = {e["pot"] for e in wins}
        assert {"mini", "major"} <= won_pots, won_pots  # wins and reseeds did happen
        assert any(int(e["deficit"]) > 0 for e in wins)
        assert any(e["withheld"] == "1" for e in wins)
        for p in engine["pots"]:
            if p["max_value"] >= 0:
                assert money(s, f"pot:{p['id']}:value") <= p["max_value"]
        assert money(s, "pot:flat:value") == 2 * M
        assert money(s, "pot:major:value") < money(s, "pot:major:drop_at")
        counts = await store.client.hgetall(keys.instance_optins("jp1"))
        counted = {
            k.split(":")[2].removesuffix("|count"): int(v)
            for k, v in counts.items()
            if k.endswith("|count")
        }
        assert counted == {
            player: sum(1 for i in range(PER_PROCESS) if f"p{i % 25}" == player.split("-")[1])
            for player in opted
        }
        # Every micro of ticket basis is in a ticket (the round's Fenwick total) or carried.
        fields = await store.client.hgetall(keys.instance_tickets("jp1"))
        carried = sum(int(v) for k, v in fields.items() if k.endswith("|cost"))
        total_basis = sum(int(e["ticket_basis"]) for e in contributions)
        assert int(fields["1|total"]) * 500_000 + carried == total_basis
        holders = [k for k in fields if k.endswith("|tickets") and fields[k] != "0"]
        assert int(fields["1|n"]) == len(holders)
        events = await store.client.xlen(keys.instance_events("jp1"))
        published = len(wins) + len(opted)  # and an OptInEvent per opt-in
        assert events == published if published <= 1000 else events >= 1000
    finally:
        await store.close()


async def test_one_idempotency_key_sent_concurrently_applies_once(
    real_redis_url: str, pool: ProcessPoolExecutor
) -> None:
    store = Store(async_client(real_redis_url, timeouts=PATIENT), ScriptRunner())
    try:
        engine = await create(store, hammer_definition(), drops={"major": 13 * M})
        before = await state(store)
        loop = asyncio.get_running_loop()
        copies = 50
        results = await asyncio.gather(
            *(
                loop.run_in_executor(pool, same_key, real_redis_url, worker, engine, copies)
                for worker in range(PROCESSES)
            )
        )
        outcomes = [o for result in results for o in result]
        assert len(outcomes) == PROCESSES * copies
        applied = [o for o in outcomes if not o[0]]
        assert len(applied) == 1
        first = applied[0][1:4]
        assert all(o[1:4] == first for o in outcomes)  # every replay is the first outcome
        part = 777_777 * 250_000 // 1_000_000  # the mini pot's share
        to_value = part - part * 150_000 // 1_000_000  # less its reserve share
        assert applied[0][4] == 777_777
        assert first[1:] == ("mini", 1 * M + to_value)
        s = await assert_conserved(store, engine)
        assert money(s, "total:contributions") == money(before, "total:contributions") + 777_777
        entries = await ledger(store)
        assert len([e for e in entries if e["type"] == "contribution"]) == 1
        assert len([e for e in entries if e["type"] == "win"]) == 1
        assert len(await store.winners("jp1")) == 1
    finally:
        await store.close()
