"""Raffle ticket views (operations 6, 7, 8) through the HTTP API: paging and sorting exactly,
brand filters, the player across raffles, and other operators' players never listed."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest
from quart.testing import QuartClient

from app.services import Services
from tests.conftest import DEMO, RIVAL, auth, load_demo
from tests.support.definitions import instance, pot
from tests.support.http import bet, create_instance, expect, set_status

BRANDS = ("demo:brand1", "demo:brand2", "rival:main")
TICKETS = "/jackpots/instances/raffle/tickets"


def raffle(instance_id: str, **fields: Any) -> dict[str, Any]:
    """A Percentage raffle: 1 ticket per whole EUR of base wager, tickets of every operator."""
    definition: dict[str, Any] = {
        "jackpot_type": "Raffle",
        "contribution_type": {"Percentage": "0.01"},
        "house_share": "0.5",
        "pots": [pot("pool", "0.5")],
        "allowed_brands": list(BRANDS),
        "raffle": {
            "ticket_cost": "1.00",
            "ticket_basis": "base_wager",
            "prizes": ["100"],
            "draw": {"every": "1d"},
        },
    }
    return instance(instance_id, **{**definition, **fields})


@pytest.fixture
async def headers(gateway: Services) -> dict[str, str]:
    await load_demo(gateway)
    return auth(gateway, DEMO)


@pytest.fixture
def rival(gateway: Services) -> dict[str, str]:
    return auth(gateway, RIVAL)


async def listing(client: QuartClient, headers: dict[str, str], path: str, **query: Any) -> Any:
    return await expect(await client.get(path, query_string=query, headers=headers), 200)


async def test_the_three_views_of_one_player(
    client: QuartClient, platform_auth: dict[str, str], headers: dict[str, str]
) -> None:
    await create_instance(client, platform_auth, raffle("r1"))
    await bet(client, headers, "r1", "p1", "2.50")
    await bet(client, headers, "r1", "p1", "0.75")  # 3.25: 3 tickets, 0.25 carried
    await bet(client, headers, "r1", "p2", "0.40")  # no ticket yet
    [record] = await listing(client, headers, f"{TICKETS}/r1/brand/demo:brand1/p1")
    assert record["instance_id"] == "r1"
    assert (record["brand_id"], record["player_id"]) == ("demo:brand1", "p1")
    assert (record["ticket_count"], record["accumulated_cost"]) == (3, "0.25")
    assert record["timestamp_start"] <= record["timestamp_end"]
    # A bare brand id is the caller's operator's brand; a player with no ticket has a record.
    [p2] = await listing(client, headers, f"{TICKETS}/r1/brand/brand1/p2")
    assert (p2["ticket_count"], p2["accumulated_cost"]) == (0, "0.4")
    assert await listing(client, headers, f"{TICKETS}/r1/brand/brand1/nobody") == []
    # Operation 6 lists ticket holders only.
    assert [r["player_id"] for r in await listing(client, headers, f"{TICKETS}/r1")] == ["p1"]


async def test_the_player_in_every_active_raffle(
    client: QuartClient, platform_auth: dict[str, str], headers: dict[str, str]
) -> None:
    for instance_id in ("a", "b", "paused", "other-brand"):
        brands = ["demo:brand2"] if instance_id == "other-brand" else list(BRANDS)
        await create_instance(client, platform_auth, raffle(instance_id, allowed_brands=brands))
    await create_instance(client, platform_auth, instance("plain"))
    for instance_id in ("a", "b", "paused"):
        await bet(client, headers, instance_id, "p1", "4")
    await bet(client, headers, "plain", "p1", "4")
    await set_status(client, platform_auth, "paused", "pause")
    found = await listing(client, headers, f"{TICKETS}/brand/demo:brand1/p1")
    assert sorted((r["instance_id"], r["ticket_count"]) for r in found) == [("a", 4), ("b", 4)]
    assert await listing(client, headers, f"{TICKETS}/brand/demo:brand2/p1") == []


async def test_another_operators_players_are_never_listed(
    client: QuartClient,
    platform_auth: dict[str, str],
    headers: dict[str, str],
    rival: dict[str, str],
) -> None:
    await create_instance(client, platform_auth, raffle("shared"))
    await create_instance(
        client, platform_auth, raffle("demo-only", allowed_brands=["demo:brand1"])
    )
    await bet(client, headers, "shared", "d1", "5")
    await bet(client, rival, "shared", "r1", "7", brand="rival:main")
    mine = await listing(client, headers, f"{TICKETS}/shared")
    assert [(r["brand_id"], r["player_id"]) for r in mine] == [("demo:brand1", "d1")]
    theirs = await listing(client, rival, f"{TICKETS}/shared")
    assert [(r["brand_id"], r["player_id"]) for r in theirs] == [("rival:main", "r1")]
    # Another operator's brand is forbidden, in the filter and in the player views.
    for path, query in [
        (f"{TICKETS}/shared", {"brand_id": "demo:brand1"}),
        (f"{TICKETS}/shared/brand/demo:brand1/d1", {}),
        (f"{TICKETS}/brand/demo:brand1/d1", {}),
    ]:
        response = await client.get(path, query_string=query, headers=rival)
        await expect(response, 403, "OPERATOR_FORBIDDEN")
    # An instance none of the caller's brands plays does not exist for it.
    await expect(await client.get(f"{TICKETS}/demo-only", headers=rival), 404, "INSTANCE_NOT_FOUND")
    # A jackpot without a raffle has no tickets.
    await create_instance(client, platform_auth, instance("plain"))
    await expect(await client.get(f"{TICKETS}/plain", headers=headers), 404, "NOT_A_RAFFLE")


@pytest.mark.parametrize(
    "query",
    [
        {"sort_field": "amount"},
        {"sort_direction": "0"},
        {"page": "0"},
        {"limit": "1001"},
        {"limit": "0"},
        {"color": "red"},
    ],
)
async def test_bad_paging_is_a_400(
    client: QuartClient,
    platform_auth: dict[str, str],
    headers: dict[str, str],
    query: dict[str, str],
) -> None:
    await create_instance(client, platform_auth, raffle("r1"))
    response = await client.get(f"{TICKETS}/r1", query_string=query, headers=headers)
    body = await expect(response, 400, "VALIDATION_ERROR")
    assert set(body["details"]) == set(query)


SORT_KEYS = {
    # Ties: by brand, then player id (the whole order reversed when descending).
    "ticket_count": lambda r: (r["ticket_count"], r["brand_id"], r["player_id"]),
    "timestamp_end": lambda r: (r["timestamp_end"], r["brand_id"], r["player_id"]),
    "player_id": lambda r: (r["player_id"], r["brand_id"]),
}


@pytest.mark.parametrize("redis_url", ["real"], indirect=True)
async def test_paging_and_sorting_are_exact_over_thousands_of_players(
    client: QuartClient,
    platform_auth: dict[str, str],
    headers: dict[str, str],
    rival: dict[str, str],
) -> None:
    await create_instance(client, platform_auth, raffle("big"))
    rng = random.Random(7)
    expected: dict[tuple[str, str], int] = {}
    for n in range(2000):
        brand = BRANDS[n % 3]
        player = f"p{rng.randrange(10**6):06d}-{n}"
        wager = Decimal(rng.randrange(0, 4000)) / 100  # 0 to 39.99: some hold no ticket
        await bet(
            client, rival if brand == "rival:main" else headers, "big", player, str(wager), brand
        )
        if int(wager) > 0:
            expected[(brand, player)] = int(wager)
    demo_expected = {k: v for k, v in expected.items() if not k[0].startswith("rival:")}
    for brand_filter, wanted in [
        (None, demo_expected),
        ("demo:brand2", {k: v for k, v in expected.items() if k[0] == "demo:brand2"}),
    ]:
        for field, key in SORT_KEYS.items():
            for direction in (1, -1):
                pages: list[dict[str, Any]] = []
                page = 1
                while True:
                    query: dict[str, Any] = {
                        "sort_field": field,
                        "sort_direction": direction,
                        "page": page,
                        "limit": 250,
                    }
                    if brand_filter:
                        query["brand_id"] = brand_filter
                    found = await listing(client, headers, f"{TICKETS}/big", **query)
                    pages += found
                    if len(found) < 250:
                        break
                    page += 1
                got = {(r["brand_id"], r["player_id"]): r["ticket_count"] for r in pages}
                assert len(pages) == len(got) == len(wanted)
                assert got == wanted
                assert pages == sorted(pages, key=key, reverse=direction == -1)
    # The last page stops short; a page past the end is empty.
    assert await listing(client, headers, f"{TICKETS}/big", page=100, limit=1000) == []
