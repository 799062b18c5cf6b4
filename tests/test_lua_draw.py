"""Contract tests of lua/draw_raffle-11.lua (with open_round-2.lua and the tickets awarded by
contribute-13.lua): weighted distinct winners, prizes and money, closing the round, refusals.

Randoms are injected, so every outcome is computed exactly by a plain linear scan here."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.clock import now_ms
from app.core.refusals import Code
from app.services.draws import commitment, snapshot_hash
from app.store import Store, keys
from tests.support.definitions import pot
from tests.test_lua_contribute import (
    BRAND,
    NOW,
    OP,
    M,
    assert_conserved,
    contribute,
    create,
    definition,
    ledger,
    money,
    refused,
    state,
)

TWO52 = 2**52
KEY_ID = "test-key"


def seed_of(round_id: int) -> str:
    return f"{round_id:064x}"


async def raffle(
    store: Store,
    prizes: list[Any],
    *,
    instance_id: str = "jp1",
    pots: bool = True,
    auto_payout_limit: str | None = None,
    ends: int | None = None,
) -> dict[str, Any]:
    """A raffle of 1 ticket per whole unit contributed (Percentage 100 %), half of it to its
    prize pot `pool`; round 1 open with seed_of(1)."""
    engine = await create(
        store,
        definition(
            [pot("pool", "0.5")] if pots else [],
            house="0.5" if pots else "1",
            instance_id=instance_id,
            jackpot_type="Raffle",
            contribution={"Percentage": "1"},
            auto_payout_limit=auto_payout_limit,
            raffle={"ticket_cost": "1.00", "prizes": prizes, "draw": {"every": "1d"}},
        ),
    )
    assert await store.open_round(
        instance_id,
        now_ms=NOW - 1,
        key_id=KEY_ID,
        commitment=commitment(seed_of(1)),
        ends=ends,
        next_key=KEY_ID,
        next_commitment=commitment(seed_of(2)),
        event_id="opened-1",
    )
    return engine


async def tickets(store: Store, engine: dict[str, Any], player: str, count: int) -> None:
    await contribute(store, engine, player=player, amount=count * M)


def picks_of(weights: list[int], randoms: list[int]) -> list[tuple[int, int, int]]:
    """(u, target, index) of each winner when prize j's ticket is u_j mod R (R: the tickets
    of the players not yet drawn), by a linear scan: the script checks what it is given."""
    left = list(weights)
    picks = []
    for u in randoms:
        remaining = sum(left)
        if remaining == 0:
            break
        target, acc = u % remaining, 0
        for position, held in enumerate(left):
            acc += held
            if acc > target:
                picks.append((u, target, position + 1))
                left[position] = 0
                break
    return picks


async def draw(
    store: Store,
    engine: dict[str, Any],
    randoms: list[int],
    *,
    round_id: int = 1,
    seed: str | None = None,
    now: int = NOW + 1,
    next_round: bool = True,
    picks: list[tuple[int, int, int]] | None = None,
    total: int | None = None,
) -> dict[str, Any]:
    """Draw round `round_id` over its live tickets (injected randoms: u_j mod R, as
    picks_of); `picks` and `total` replace what the tickets say."""
    tickets = await store.live_round_tickets(engine["id"], round_id)
    weights = [held for _, _, held in tickets]
    return await store.draw_raffle(
        engine["id"],
        now_ms=now,
        round_id=round_id,
        seed=seed or seed_of(round_id),
        snapshot=snapshot_hash(tickets),
        tickets_total=sum(weights) if total is None else total,
        picks=picks_of(weights, randoms) if picks is None else picks,
        event_id=f"event-{round_id}",
        jackpot_name="Raffle",
        currency_multipliers={},
        next_key=KEY_ID if next_round else None,
        next_commitment=commitment(seed_of(round_id + 1)) if next_round else None,
        next_ends=None,
        after_key=KEY_ID if next_round else None,
        after_commitment=commitment(seed_of(round_id + 2)) if next_round else None,
        opened_event_id=f"opened-{round_id + 1}",
        by="test",
    )


async def events_of(store: Store, event_type: str, instance_id: str = "jp1") -> list[Any]:
    """The payloads of one type of event in the instance's events stream."""
    found = []
    for _, entry in await store.client.xrange(keys.instance_events(instance_id)):
        payload = json.loads(entry["payload"])
        if payload["event_type"] == event_type:
            found.append(payload)
    return found


def replay(weights: list[int], randoms: list[int]) -> list[int]:
    """Winning positions (0-based, in order of first ticket): prize j goes to the holder of
    ticket u_j mod R among the players not yet drawn, R their tickets."""
    left = list(weights)
    winners = []
    for u in randoms:
        remaining = sum(left)
        if remaining == 0:
            break
        target, acc = u % remaining, 0
        for position, held in enumerate(left):
            acc += held
            if acc > target:
                winners.append(position)
                left[position] = 0
                break
    return winners


async def test_winners_are_the_holders_of_the_drawn_tickets(store: Store) -> None:
    engine = await raffle(store, ["1", "1", "1"])
    for player, count in [("a", 3), ("b", 1), ("c", 5)]:
        await tickets(store, engine, player, count)
    # Tickets in order of first ticket: a 0-2, b 3, c 4-8. u mod 9 = 3 -> b; then a and c
    # remain (8 tickets): 13 mod 8 = 5 -> c (a holds 0-2, c 3-7); then 7 mod 3 = 1 -> a.
    record = await draw(store, engine, [3, 13, 7])
    assert [w["player_id"] for w in record["winners"]] == ["b", "c", "a"]
    assert record["targets"] == ["3", "5", "1"]
    assert [w["index"] for w in record["winners"]] == [2, 3, 1]
    assert (record["tickets_total"], record["players"], record["unpaid_prizes"]) == ("9", 3, [])
    assert (record["seed"], record["commitment"]) == (seed_of(1), commitment(seed_of(1)))
    assert record["winners"][0]["operator_id"] == OP and record["winners"][0]["brand_id"] == BRAND


@pytest.mark.parametrize("redis_url", ["real"], indirect=True)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    weights=st.lists(st.integers(1, 50), min_size=0, max_size=12),
    randoms=st.lists(st.integers(0, TWO52 - 1), min_size=1, max_size=5),
)
async def test_the_script_draws_what_a_linear_scan_draws(
    store: Store, weights: list[int], randoms: list[int]
) -> None:
    await store.client.flushall()
    engine = await raffle(store, ["1"] * len(randoms))
    for position, count in enumerate(weights):
        await tickets(store, engine, f"p{position}", count)
    record = await draw(store, engine, randoms)
    expected = replay(weights, randoms)
    assert [w["player_id"] for w in record["winners"]] == [f"p{i}" for i in expected]
    assert len({w["player_id"] for w in record["winners"]}) == len(expected)
    assert record["unpaid_prizes"] == list(range(len(expected) + 1, len(randoms) + 1))


async def test_the_tree_holds_its_range_sums_after_awards_in_any_order(store: Store) -> None:
    """300 awards of 1 to 4 tickets to 70 players in random order, most of them several
    times, while the tree doubles up to 128 nodes: node i holds the tickets of indexes
    i - lowbit(i) + 1 .. i (contribute-13.lua's header), and a draw finds the holders that a
    linear scan finds."""
    engine = await raffle(store, ["1"] * 6)
    rng = random.Random(20261130)
    held: dict[str, int] = {}  # in order of first ticket: Fenwick index 1, 2, ...
    for _ in range(300):
        player, count = f"p{rng.randrange(70)}", rng.randint(1, 4)
        await tickets(store, engine, player, count)
        held[player] = held.get(player, 0) + count
    fields = await store.client.hgetall(keys.instance_tickets("jp1"))
    weights = list(held.values())
    assert (fields["1|n"], fields["1|size"], fields["1|total"]) == ("70", "128", str(sum(weights)))
    for i in range(1, 129):
        low = i - (i & -i) + 1
        assert int(fields.get(f"1|@{i}", 0)) == sum(weights[low - 1 : i]), i
    randoms = [rng.randrange(TWO52) for _ in range(6)]
    record = await draw(store, engine, randoms)
    players = list(held)
    assert [w["player_id"] for w in record["winners"]] == [
        players[i] for i in replay(weights, randoms)
    ]


@pytest.mark.parametrize("redis_url", ["real"], indirect=True)
async def test_draws_are_fair_chi_square_over_injected_randoms(store: Store) -> None:
    """500 rounds, weights 1:2:3:4:10, two prizes: the first winner is drawn in proportion
    to tickets, the second in proportion among the rest, never the first again."""
    weights = [1, 2, 3, 4, 10]
    total = sum(weights)
    engine = await raffle(store, ["0.000001", "0.000001"])
    rng = random.Random(20261130)
    trials = 500
    first, second = [0] * 5, [0] * 5
    for round_id in range(1, trials + 1):
        for position, count in enumerate(weights):
            await tickets(store, engine, f"p{position}", count)
        record = await draw(
            store, engine, [rng.randrange(TWO52), rng.randrange(TWO52)], round_id=round_id
        )
        a, b = (int(w["player_id"][1:]) for w in record["winners"])
        assert a != b
        first[a] += 1
        second[b] += 1
    p_first = [w / total for w in weights]
    p_second = [
        sum(weights[a] / total * weights[b] / (total - weights[a]) for a in range(5) if a != b)
        for b in range(5)
    ]
    for observed, probabilities in [(first, p_first), (second, p_second)]:
        chi2 = sum(
            (o - trials * p) ** 2 / (trials * p)
            for o, p in zip(observed, probabilities, strict=True)
        )
        assert chi2 < 18.47, (observed, chi2)  # df 4, p = 0.001


async def test_prizes_shortfall_withheld_and_conservation(store: Store) -> None:
    # The pot takes half of each contribution: 10 + 6 units -> 8 in the pot.
    engine = await raffle(store, [{"share": "0.5"}, "5", "100"], auto_payout_limit="4.5")
    await tickets(store, engine, "a", 10)
    await tickets(store, engine, "b", 6)
    await tickets(store, engine, "c", 1)  # 8.5 in the pot
    record = await draw(store, engine, [0, 0, 0])  # a, then b, then c
    winners = {w["player_id"]: w for w in record["winners"]}
    # 0.5 of 8.5 = 4.25 from the pot; 5: 4.25 left -> 4.25 from the pot, 0.75 operator
    # funding; 100: all operator funding.
    assert {p: (w["win_amount"], w["from_pot"], w["shortfall"]) for p, w in winners.items()} == {
        "a": ("4250000", "4250000", "0"),
        "b": ("5000000", "4250000", "750000"),
        "c": ("100000000", "0", "100000000"),
    }
    assert [winners[p]["win_withheld"] for p in "abc"] == [False, True, True]
    s = await assert_conserved(store, engine)
    assert money(s, "pot:pool:value") == 0
    assert money(s, "total:seed_funding") == 100_750_000
    assert money(s, "pot:pool:deficit") == 100_750_000
    assert money(s, "total:wins") == 109_250_000
    kinds = [e["type"] for e in await ledger(store)]
    assert kinds[-7:] == [
        "raffle_draw",
        "win",
        "win",
        "seed_funding",
        "win",
        "seed_funding",
        "raffle_round",
    ]
    listed = await store.winners("jp1")
    assert [(w.player_id, w.win_amount, w.win_withheld) for w in listed] == [
        ("c", 100_000_000, True),
        ("b", 5_000_000, True),
        ("a", 4_250_000, False),
    ]
    assert [w.player_id for w in await store.winners("jp1", "pool")] == ["c", "b", "a"]


async def test_a_raffle_without_pots_funds_every_prize(store: Store) -> None:
    engine = await raffle(store, ["2", "3"], pots=False)
    await tickets(store, engine, "a", 1)
    record = await draw(store, engine, [5, 5])
    assert [w["player_id"] for w in record["winners"]] == ["a"]
    assert record["unpaid_prizes"] == [2]
    assert record["prize_pot"] is None
    s = await state(store)
    assert money(s, "total:contributions") == money(s, "total:house") == 1 * M
    assert money(s, "total:seed_funding") == money(s, "total:wins") == 2 * M
    [funding] = [e for e in await ledger(store) if e["type"] == "seed_funding"]
    assert (funding["amount"], funding["reason"]) == ("2000000", "raffle_prize")


async def test_the_draw_closes_the_round(store: Store) -> None:
    engine = await raffle(store, ["1"])
    await tickets(store, engine, "a", 2)
    await draw(store, engine, [1])
    s = await state(store)
    assert (s["raffle:round"], s["raffle:key"]) == ("2", KEY_ID)
    assert "raffle:seed" not in s  # seeds are never stored
    assert s["raffle:commitment"] == commitment(seed_of(2))
    assert s["raffle:next_commitment"] == commitment(seed_of(3))
    # Tickets after the draw belong to round 2; round 1 is frozen.
    await tickets(store, engine, "a", 1)
    assert (await store.player_tickets("jp1", OP, BRAND, "a", 1)).ticket_count == 2  # type: ignore[union-attr]
    assert (await store.player_tickets("jp1", OP, BRAND, "a")).ticket_count == 1  # type: ignore[union-attr]
    assert await store.round_tickets("jp1", 1) == [(1, f"{OP}:{BRAND}:a", 2)]
    assert await store.round_tickets("jp1", 2) == [(1, f"{OP}:{BRAND}:a", 1)]
    # Round 1 cannot be drawn again; round 2 can.
    await refused(store, Code.ROUND_MISMATCH, lambda: draw(store, engine, [0]))
    record = await draw(store, engine, [0], round_id=2)
    assert record["winners"][0]["tickets"] == "1"


async def test_an_empty_round_pays_nothing_and_announces_no_winners(store: Store) -> None:
    """Issue 20, 5: an empty round sent a RaffleWinEvent with `winners: []`."""
    engine = await raffle(store, ["1", "1"])
    record = await draw(store, engine, [1, 2])
    assert (record["winners"], record["unpaid_prizes"], record["targets"]) == ([], [1, 2], [])
    assert await events_of(store, "RaffleWinEvent") == []
    [payload] = await events_of(store, "RaffleNoWinnersEvent")
    assert payload["data"] == {
        "instance_id": "jp1",
        "jackpot_name": "Raffle",
        "timestamp": NOW + 1,
        "round": 1,
        "reason": "NO_TICKETS",
        "unpaid_prizes": [1, 2],
    }
    await assert_conserved(store, engine)


async def test_the_win_event_lists_the_winners(store: Store) -> None:
    engine = await raffle(store, ["1.5"], auto_payout_limit="1")
    await tickets(store, engine, "a", 1)
    await draw(store, engine, [0])
    [payload] = await events_of(store, "RaffleWinEvent")
    assert payload["event_id"] == "event-1"
    data = payload["data"]
    assert (data["instance_id"], data["round"], data["win_withheld"]) == ("jp1", 1, True)
    assert data["winners"] == [
        {
            "player_id": "a",
            "brand_id": f"{OP}:{BRAND}",
            "currency": "EUR",
            "win_amount": "1.5",
            "win_withheld": True,
        }
    ]


async def test_refusals_change_nothing(store: Store) -> None:
    late = now_ms() + 3_600_000  # the round's end, ahead of the store's clock: sales are open
    engine = await raffle(store, ["1", "1"], ends=late)
    await tickets(store, engine, "a", 2)
    await refused(store, Code.ROUND_NOT_CLOSED, lambda: draw(store, engine, [0, 0]))
    # The round's tickets are not the snapshot's: the total, a target, an index.
    wrongs: list[dict[str, Any]] = [
        {"total": 3},
        {"picks": [(0, 2, 1)]},  # ticket 2 of 2
        {"picks": [(0, 0, 2)]},  # ticket 0 is at index 1
    ]
    for wrong in wrongs:
        await refused(
            store,
            Code.SNAPSHOT_MISMATCH,
            lambda wrong=wrong: draw(store, engine, [0, 0], now=late, **wrong),
        )
    # one player, two prizes: one winner expected, one random of at most 78 digits
    await refused(store, Code.BAD_ARGUMENT, lambda: draw(store, engine, [], now=late, picks=[]))
    await refused(store, Code.BAD_ARGUMENT, lambda: draw(store, engine, [10**78], now=late))
    plain = await create(store, definition([pot("a", "1")], instance_id="plain"))
    await refused(store, Code.NOT_A_RAFFLE, lambda: draw(store, plain, [0], now=late), "plain")
    record = await draw(store, engine, [0, 0], now=late)
    assert [w["player_id"] for w in record["winners"]] == ["a"]


# -- exact money at any size ------------------------------------------------------------------
INT64_MAX = 2**63 - 1
TWO53 = 2**53
Prize = tuple[str, int]  # ("share", ppm) or ("fixed", micros)


def definition_prizes(prizes: list[Prize]) -> list[Any]:
    return [
        {"share": format(Decimal(n).scaleb(-6), "f")}
        if kind == "share"
        else format(Decimal(n).scaleb(-6), "f")
        for kind, n in prizes
    ]


def expected_prizes(pot_value: int, prizes: list[Prize]) -> list[tuple[int, int, int]]:
    """(prize, from the pot, shortfall) of each prize in order, in Python integers: a share
    is of the pot's value at the draw; each prize takes from the pot what is left."""
    left, paid = pot_value, []
    for kind, n in prizes:
        prize = pot_value * n // 10**6 if kind == "share" else n
        from_pot = min(prize, left)
        left -= from_pot
        paid.append((prize, from_pot, prize - from_pot))
    return paid


async def arrange(store: Store, **fields: int) -> dict[str, int]:
    """Write state fields as a long-lived instance would hold them; the money state after."""
    if fields:
        await store.client.hset(
            keys.instance_state("jp1"), mapping={k: str(v) for k, v in fields.items()}
        )
    names = ("pot:pool:value", "pot:pool:deficit", "total:wins", "total:seed_funding")
    s = await state(store)
    return {name: int(s.get(name) or 0) for name in names}


async def assert_paid_exactly(
    store: Store, record: dict[str, Any], before: dict[str, int], paid: list[tuple[int, int, int]]
) -> None:
    """The record, the state, the ledger, the win records and the event carry `paid` exactly."""
    as_text = [(str(a), str(f), str(s)) for a, f, s in paid]
    assert [(w["win_amount"], w["from_pot"], w["shortfall"]) for w in record["winners"]] == as_text
    assert record["pot_value"] == str(before["pot:pool:value"])
    total, funded = sum(a for a, _, _ in paid), sum(s for _, _, s in paid)
    s = await state(store)
    assert s["pot:pool:value"] == str(before["pot:pool:value"] - sum(f for _, f, _ in paid))
    assert s["total:wins"] == str(before["total:wins"] + total)
    assert s["total:seed_funding"] == str(before["total:seed_funding"] + funded)
    assert s["pot:pool:deficit"] == str(before["pot:pool:deficit"] + funded)
    entries = await ledger(store)
    last_draw = max(i for i, e in enumerate(entries) if e["type"] == "raffle_draw")
    entries = entries[last_draw:]
    assert [(e["amount"], e["from_pot"], e["deficit"]) for e in entries if e["type"] == "win"] == (
        as_text
    )
    assert [e["amount"] for e in entries if e["type"] == "seed_funding"] == [
        str(s) for _, _, s in paid if s
    ]
    listed = {w.win_id: w.win_amount for w in await store.winners("jp1")}
    assert [listed[w["win_id"]] for w in record["winners"]] == [a for a, _, _ in paid]
    last = (await events_of(store, "RaffleWinEvent"))[-1]
    amounts = [w["win_amount"] for w in last["data"]["winners"]]
    assert [Decimal(a) for a in amounts] == [Decimal(a).scaleb(-6) for a, _, _ in paid]


SHARES: list[Prize] = [("share", 500_000), ("share", 333_333), ("share", 166_667)]


@pytest.mark.parametrize(
    "pot_value", [TWO53 - 1, TWO53, TWO53 + 1, 3 * TWO53 + 7, INT64_MAX - 1, INT64_MAX]
)
async def test_shares_of_a_pot_at_and_above_2_to_the_53_are_exact(
    store: Store, pot_value: int
) -> None:
    prizes = [*SHARES, ("fixed", 7_000_001)]
    engine = await raffle(store, definition_prizes(prizes))
    for player in "abcd":
        await tickets(store, engine, player, 1)
    before = await arrange(store, **{"pot:pool:value": pot_value})
    record = await draw(store, engine, [0, 0, 0, 0])  # a, b, c, d in order
    assert [w["player_id"] for w in record["winners"]] == list("abcd")
    await assert_paid_exactly(store, record, before, expected_prizes(pot_value, prizes))


async def test_totals_and_the_deficit_pass_2_to_the_63_exactly(store: Store) -> None:
    """Lifetime totals and a pot's deficit are decimal strings of any size (as the contribute
    script keeps them): a draw adds to them past 2^63 - 1, exactly."""
    prizes: list[Prize] = [("fixed", 3_000_000), ("share", 1_000_000)]
    engine = await raffle(store, definition_prizes(prizes))
    for player in "ab":
        await tickets(store, engine, player, 1)
    near = INT64_MAX - 2
    fields = {"pot:pool:deficit": near, "total:wins": near, "total:seed_funding": near}
    before = await arrange(store, **{"pot:pool:value": TWO53 + 1, **fields})
    record = await draw(store, engine, [0, 0])
    await assert_paid_exactly(store, record, before, expected_prizes(TWO53 + 1, prizes))
    s = await state(store)
    assert int(s["total:seed_funding"]) > INT64_MAX and s["pot:pool:value"] == "0"
    # the next round: one player, the fixed prize mostly operator funding
    await tickets(store, engine, "a", 1)
    before = await arrange(store)
    record = await draw(store, engine, [0, 0], round_id=2)
    await assert_paid_exactly(
        store, record, before, expected_prizes(before["pot:pool:value"], prizes[:1])
    )


@pytest.mark.parametrize("redis_url", ["real"], indirect=True)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    pot_value=st.one_of(
        st.integers(0, INT64_MAX),
        st.integers(TWO53 - 10**6, TWO53 + 10**6),
        st.integers(INT64_MAX - 10**7, INT64_MAX),
    ),
    shares=st.lists(st.integers(1, 10**6), min_size=1, max_size=3).filter(
        lambda ppms: sum(ppms) <= 10**6
    ),
    fixed=st.lists(st.integers(1, 10**15), max_size=2),
    order=st.randoms(use_true_random=False),
)
async def test_prizes_match_python_integers_at_any_pot_value(
    store: Store, pot_value: int, shares: list[int], fixed: list[int], order: random.Random
) -> None:
    await store.client.flushall()
    prizes: list[Prize] = [("share", n) for n in shares] + [("fixed", n) for n in fixed]
    order.shuffle(prizes)
    engine = await raffle(store, definition_prizes(prizes))
    for k in range(len(prizes)):
        await tickets(store, engine, f"p{k}", 1)
    before = await arrange(store, **{"pot:pool:value": pot_value})
    record = await draw(store, engine, [0] * len(prizes))
    await assert_paid_exactly(store, record, before, expected_prizes(pot_value, prizes))


async def test_an_engine_stored_with_a_list_of_prizes_still_draws(store: Store) -> None:
    """Engines hold the prizes as JSON text (app/services/engine.py); one stored before, with
    a list, draws the same."""
    engine = await raffle(store, [{"share": "0.5"}, "2"])
    stored = {
        **engine,
        "raffle": {**engine["raffle"], "prizes": [{"share_ppm": 500_000}, {"amount": 2 * M}]},
    }
    assert json.loads(engine["raffle"]["prizes"]) == stored["raffle"]["prizes"]
    await store.client.set(keys.instance_engine("jp1"), json.dumps(stored))
    for player in "ab":
        await tickets(store, engine, player, 2)  # 2 units in the pot
    record = await draw(store, engine, [0, 0])
    assert [(w["player_id"], w["win_amount"], w["shortfall"]) for w in record["winners"]] == [
        ("a", "1000000", "0"),
        ("b", "2000000", "1000000"),
    ]
