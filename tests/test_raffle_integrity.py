"""Raffle integrity (issue 20), each defect as found by an auditor:

1. sales close at the round's end, to the millisecond, by the store's clock too;
2. nobody reading Redis during sales can predict (and so aim tickets at) the winner;
3. draws are on time after a scheduler crash (tests/test_scheduler_leases.py);
4. a round reads the same while it is archived, and reading it writes nothing;
5. exact sampling at any ticket count; an empty round says so (no empty win).

Contract tests run on real Redis and fakeredis (the `store` fixture); API tests through the
Quart test client on an injected services' clock (contributions keep the real one)."""

from __future__ import annotations

from app.clock import now_ms
from app.store import Store, keys
from tests.test_lua_contribute import BRAND, OP, M, contribute, ledger
from tests.test_lua_draw import draw, raffle

HOUR = 3_600_000
PK = f"{OP}:{BRAND}"


# -- 1. sales close at the round's end ----------------------------------------------------------
async def test_sales_close_at_the_rounds_end_to_the_millisecond(store: Store) -> None:
    ends = now_ms() + HOUR  # the store's clock is well before the end
    engine = await raffle(store, ["1"], ends=ends)
    before = await contribute(store, engine, player="a", amount=2 * M, now=ends - 1)
    at_end = await contribute(store, engine, player="b", amount=3 * M, now=ends)
    after = await contribute(store, engine, player="a", amount=1 * M, now=ends + 11)
    assert [o.raffle_round for o in (before, at_end, after)] == [1, 2, 2]
    assert await store.round_tickets("jp1", 1) == [(1, f"{PK}:a", 2)]
    assert await store.round_tickets("jp1", 2) == [(1, f"{PK}:b", 3), (2, f"{PK}:a", 1)]
    rounds = [e["round"] for e in await ledger(store) if e["type"] == "contribution"]
    assert rounds == ["1", "2", "2"]
    # The draw of round 1 runs over round 1's tickets only; round 2's stay for its draw.
    record = await draw(store, engine, [0], now=ends)
    assert [w["player_id"] for w in record["winners"]] == ["a"]
    assert record["tickets_total"] == "2"
    record = await draw(store, engine, [0], round_id=2, now=ends)
    assert (record["tickets_total"], record["players"]) == ("4", 2)


async def test_the_store_clock_closes_sales_when_the_callers_clock_is_behind(
    store: Store,
) -> None:
    ends = now_ms() - 5  # ended by the store's clock
    engine = await raffle(store, ["1"], ends=ends)
    # a web process whose clock is a minute behind
    late = await contribute(store, engine, player="a", amount=2 * M, now=ends - 60_000)
    assert (late.raffle_round, late.tickets_awarded) == (2, 2)
    assert await store.round_tickets("jp1", 1) == []
    assert await store.client.hget(keys.instance_tickets("jp1"), f"2|{PK}:a|tickets") == "2"
