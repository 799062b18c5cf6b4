"""The ledger replay's rules on entries written by hand, including the raffle prizes' format
(`raffle_round`, `from_pot`, a shortfall funded by the operator)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from app.services.books import replay


async def entries(*items: dict[str, str]) -> AsyncIterator[dict[str, str]]:
    for item in items:
        yield item


async def test_a_raffle_prize_leaves_the_pot_by_from_pot_and_the_shortfall_is_operator_money() -> (
    None
):
    books = await replay(
        ["prize"],
        entries(
            {"type": "seed_funding", "pot": "prize", "amount": "0", "ts": "1"},
            {
                "type": "contribution",
                "amount": "1000",
                "house": "300",
                "pot:prize:value": "700",
                "pot:prize:reserve": "0",
                "ts": "2",
            },
            {"type": "raffle_draw", "round": "1", "ts": "3"},
            {
                "type": "win",
                "id": "w1",
                "pot": "prize",
                "amount": "1000",
                "from_pot": "700",
                "deficit": "300",
                "withheld": "0",
                "raffle_round": "1",
                "ts": "3",
            },
            {
                "type": "seed_funding",
                "pot": "prize",
                "amount": "300",
                "reason": "raffle_prize",
                "win": "w1",
                "ts": "3",
            },
            {"type": "raffle_round", "round": "2", "ts": "3"},
        ),
    )
    pot = books.pots["prize"]
    assert (pot.value, pot.reserve, pot.deficit) == (0, 0, 300)
    assert books.totals == {
        "contributions": 1000,
        "seed_funding": 300,
        "boosts": 0,
        "house": 300,
        "wins": 1000,
        "returned": 0,
    }
    assert (pot.meters.hits, pot.meters.wins) == (1, 1000)
    assert books.unknown == {}


async def test_a_raffle_without_a_prize_pot_pays_from_operator_money_only() -> None:
    books = await replay(
        [],
        entries(
            {
                "type": "win",
                "id": "w1",
                "pot": "",
                "amount": "500",
                "from_pot": "0",
                "deficit": "500",
                "withheld": "0",
                "raffle_round": "1",
                "ts": "3",
            },
            {
                "type": "seed_funding",
                "pot": "",
                "amount": "500",
                "reason": "raffle_prize",
                "win": "w1",
                "ts": "3",
            },
        ),
    )
    assert books.pots == {}
    assert (books.totals["wins"], books.totals["seed_funding"]) == (500, 500)


async def test_period_figures_count_only_entries_inside_it() -> None:
    contribution = {"type": "contribution", "amount": "10", "house": "10"}
    books = await replay(
        [],
        entries(
            {**contribution, "ts": "99"},
            {**contribution, "ts": "100"},
            {**contribution, "ts": "199"},
            {**contribution, "ts": "200"},
        ),
        period=(100, 200),
    )
    assert (books.totals["contributions"], books.period_totals["contributions"]) == (40, 20)
