"""GET /currencies/{brand_id} and GET /jackpots/sources through the HTTP API (operations 2, 15)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from quart.testing import QuartClient

from app.cli import read_definitions
from tests.conftest import DEMO_FILE
from tests.support.definitions import instance, seeded_pots
from tests.support.http import create_instance, expect, put_source

DEMO = read_definitions(DEMO_FILE)


pytestmark = pytest.mark.usefixtures("cheap_passwords")


def merged_multipliers(currencies: dict[str, Any], brand_path: str) -> dict[str, Decimal]:
    """The rule: the defaults, with the brand's overrides on top."""
    merged = {ccy: Decimal(m) for ccy, m in currencies["multipliers"].items()}
    merged.update(
        {ccy: Decimal(m) for ccy, m in currencies["brand_overrides"].get(brand_path, {}).items()}
    )
    return merged


# -- currencies ----------------------------------------------------------------------------
async def test_currencies_merge_brand_overrides_over_the_defaults(
    client: QuartClient, demo_headers: dict[str, str]
) -> None:
    currencies = DEMO["currencies"]
    brand2 = await expect(await client.get("/currencies/demo:brand2", headers=demo_headers), 200)
    brand1 = await expect(await client.get("/currencies/demo:brand1", headers=demo_headers), 200)
    assert brand2 == {
        "brand_id": "demo:brand2",
        "base_currency": currencies["base_currency"],
        "multipliers": merged_multipliers(currencies, "demo:brand2"),
    }
    assert brand1 == {
        "brand_id": "demo:brand1",
        "base_currency": currencies["base_currency"],
        "multipliers": merged_multipliers(currencies, "demo:brand1"),
    }
    # The override changes USD only, and only for brand2.
    assert brand2["multipliers"]["USD"] == Decimal("1.10")
    assert brand1["multipliers"]["USD"] == Decimal("1.08")
    assert {c: m for c, m in brand2["multipliers"].items() if c != "USD"} == {
        c: m for c, m in brand1["multipliers"].items() if c != "USD"
    }


async def test_currencies_multipliers_are_exact_json_numbers(
    client: QuartClient, demo_headers: dict[str, str]
) -> None:
    response = await client.get("/currencies/demo:brand2", headers=demo_headers)
    text = await response.get_data(as_text=True)
    assert '"USD":1.1' in text and '"GBP":0.86' in text and '"SEK":11.4' in text


async def test_bare_brand_id_resolves_to_the_callers_operator(
    client: QuartClient, demo_headers: dict[str, str], rival_headers: dict[str, str]
) -> None:
    bare = await expect(await client.get("/currencies/brand2", headers=demo_headers), 200)
    assert bare["multipliers"] == merged_multipliers(DEMO["currencies"], "demo:brand2")
    assert bare["base_currency"] == DEMO["currencies"]["base_currency"]
    # rival's own bare brand: no overrides, the defaults.
    main = await expect(await client.get("/currencies/main", headers=rival_headers), 200)
    assert main["multipliers"] == merged_multipliers(DEMO["currencies"], "rival:main")


async def test_currencies_of_another_operators_brand_are_forbidden(
    client: QuartClient, demo_headers: dict[str, str], rival_headers: dict[str, str]
) -> None:
    await expect(
        await client.get("/currencies/rival:main", headers=demo_headers), 403, "OPERATOR_FORBIDDEN"
    )
    await expect(
        await client.get("/currencies/demo:brand2", headers=rival_headers),
        403,
        "OPERATOR_FORBIDDEN",
    )


async def test_currencies_of_an_unknown_brand_are_not_found(
    client: QuartClient, demo_headers: dict[str, str]
) -> None:
    for brand in ("demo:brand9", "brand9"):
        await expect(
            await client.get(f"/currencies/{brand}", headers=demo_headers), 404, "BRAND_NOT_FOUND"
        )


async def test_currencies_follow_an_admin_change(
    client: QuartClient, demo_headers: dict[str, str], platform_headers: dict[str, str]
) -> None:
    currencies = {
        "base_currency": "EUR",
        "multipliers": {"EUR": "1", "USD": "1.08", "GBP": "0.86", "SEK": "11.4", "JPY": "162"},
        "decimals": {"JPY": 0},
        "brand_overrides": {"demo:brand1": {"GBP": "0.8725"}},
    }
    response = await client.put("/admin/currencies", json=currencies, headers=platform_headers)
    await expect(response, 200)
    brand1 = await expect(await client.get("/currencies/demo:brand1", headers=demo_headers), 200)
    brand2 = await expect(await client.get("/currencies/demo:brand2", headers=demo_headers), 200)
    assert brand1["multipliers"] == merged_multipliers(currencies, "demo:brand1")
    assert brand1["multipliers"]["GBP"] == Decimal("0.8725")
    # brand2 lost its override: the defaults again.
    assert brand2["multipliers"] == merged_multipliers(currencies, "demo:brand2")
    assert brand2["multipliers"]["USD"] == Decimal("1.08")


# -- sources -------------------------------------------------------------------------------
def demo_source(source_id: str) -> dict[str, Any]:
    return next(s for s in DEMO["sources"] if s["source_id"] == source_id)


async def test_sources_of_an_owner(client: QuartClient, demo_headers: dict[str, str]) -> None:
    found = await expect(
        await client.get("/jackpots/sources?owner_id=demo:brand1", headers=demo_headers), 200
    )
    assert found == [demo_source("starburst")]
    found = await expect(
        await client.get("/jackpots/sources?owner_id=demo:brand2", headers=demo_headers), 200
    )
    assert found == [demo_source("sportsbook")]
    # A bare brand id is a brand of the caller's operator.
    bare = await expect(
        await client.get("/jackpots/sources?owner_id=brand2", headers=demo_headers), 200
    )
    assert bare == [demo_source("sportsbook")]


async def test_sources_name_filter_is_a_case_insensitive_substring(
    client: QuartClient, demo_headers: dict[str, str]
) -> None:
    await create_instance(client, demo_headers, instance("lobby", fixed="0.10", pots=seeded_pots()))
    book = await put_source(
        client, demo_headers, "book-of-dead", ["lobby"], source_name="Book of Dead"
    )
    alive = await put_source(
        client, demo_headers, "dead-or-alive", ["lobby", "daily-drop"], source_name="Dead or ALIVE"
    )
    # Same name on another brand: not the owner asked for.
    await put_source(
        client, demo_headers, "dead-b2", ["lobby"], owner_id="demo:brand2", source_name="Dead"
    )
    starburst = demo_source("starburst")

    async def names(query: str) -> list[str]:
        found = await expect(
            await client.get(
                f"/jackpots/sources?owner_id=demo:brand1{query}", headers=demo_headers
            ),
            200,
        )
        return sorted(s["source_id"] for s in found)

    assert await names("") == sorted(["starburst", "book-of-dead", "dead-or-alive"])
    assert await names("&name=dead") == ["book-of-dead", "dead-or-alive"]
    assert await names("&name=DEAD") == ["book-of-dead", "dead-or-alive"]
    assert await names("&name=alive") == ["dead-or-alive"]
    assert await names("&name=of%20d") == ["book-of-dead"]
    assert await names("&name=sTaRbUr") == ["starburst"]
    assert await names("&name=roulette") == []
    found = await expect(
        await client.get("/jackpots/sources?owner_id=demo:brand1&name=dead", headers=demo_headers),
        200,
    )
    by_id = {s["source_id"]: s for s in found}
    assert by_id == {"book-of-dead": book, "dead-or-alive": alive}
    assert by_id["dead-or-alive"] == {
        "source_id": "dead-or-alive",
        "owner_id": "demo:brand1",
        "source_name": "Dead or ALIVE",
        "instance_ids": ["lobby", "daily-drop"],
    }
    assert starburst not in found


async def test_sources_of_another_operator_are_forbidden(
    client: QuartClient, demo_headers: dict[str, str], rival_headers: dict[str, str]
) -> None:
    await expect(
        await client.get("/jackpots/sources?owner_id=demo:brand1", headers=rival_headers),
        403,
        "OPERATOR_FORBIDDEN",
    )
    await expect(
        await client.get("/jackpots/sources?owner_id=rival:main", headers=demo_headers),
        403,
        "OPERATOR_FORBIDDEN",
    )
    # rival's own brand has no sources.
    own = await expect(
        await client.get("/jackpots/sources?owner_id=rival:main", headers=rival_headers), 200
    )
    assert own == []


async def test_sources_need_a_known_owner(
    client: QuartClient, demo_headers: dict[str, str]
) -> None:
    body = await expect(
        await client.get("/jackpots/sources", headers=demo_headers), 400, "VALIDATION_ERROR"
    )
    assert "owner_id" in body["details"]
    await expect(
        await client.get("/jackpots/sources?name=star", headers=demo_headers),
        400,
        "VALIDATION_ERROR",
    )
    await expect(
        await client.get("/jackpots/sources?owner_id=demo:brand9", headers=demo_headers),
        404,
        "BRAND_NOT_FOUND",
    )
    await expect(
        await client.get("/jackpots/sources?owner_id=", headers=demo_headers),
        400,
        "VALIDATION_ERROR",
    )
