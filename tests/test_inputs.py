"""What the API takes as input, decided and documented (docs/api.md, "Inputs"): duplicate keys,
numbers as strings, -0, anchored patterns, v2's qualified brand, another operator's instance."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from quart.testing import QuartClient

from app.services import Services
from tests.conftest import RIVAL, auth
from tests.support.http import expect, post, v1_body, v2_body

pytestmark = pytest.mark.parametrize("redis_url", ["fake"], indirect=True)
NO_OPT_IN = "weekly-raffle"  # demo instance: no opt-in needed, 1 % of the base wager


async def test_a_key_repeated_in_one_object_is_refused(
    client: QuartClient, headers: dict[str, str]
) -> None:
    raw = '{"username": "demo-service", "username": "x", "password": "demo-password-123"}'
    response = await post(client, "/authenticate/service", raw, {})
    body = await expect(response, 400, "MALFORMED_JSON")
    assert "username" in body["error"]
    nested = v1_body("daily-drop")
    text = post_text(nested).replace('"player_id":"p1"', '"player_id":"p1","player_id":"p2"')
    await expect(await post(client, "/jackpots/contribute", text, headers), 400, "MALFORMED_JSON")


def post_text(body: dict[str, Any]) -> str:
    from app.core import jsonio

    return jsonio.dumps(body)


@pytest.mark.parametrize("country", ["SE\n", "SE\r\n", " SE", "se", "SEE"])
async def test_patterns_match_the_whole_value(
    client: QuartClient, headers: dict[str, str], country: str
) -> None:
    body = v1_body("daily-drop", player_country=country)
    response = await post(client, "/jackpots/contribute", body, headers)
    details = (await expect(response, 400, "VALIDATION_ERROR"))["details"]
    assert "player_country" in details


@pytest.mark.parametrize("field", ["currency", "instance_id"])
async def test_a_trailing_newline_is_not_part_of_an_id_or_code(
    client: QuartClient, headers: dict[str, str], field: str
) -> None:
    body = v1_body("daily-drop", idempotency_key="key-1\n")
    response = await post(client, "/jackpots/contribute", body, headers)
    assert "idempotency_key" in (await expect(response, 400, "VALIDATION_ERROR"))["details"]
    body = v1_body("daily-drop", currency="EUR\n")
    response = await post(client, "/jackpots/contribute", body, headers)
    assert "currency" in (await expect(response, 400, "VALIDATION_ERROR"))["details"]


@pytest.mark.parametrize("wager", ["2.00", "2", Decimal("2.00"), 2])
async def test_amounts_are_numbers_or_plain_decimal_strings(
    client: QuartClient, headers: dict[str, str], wager: Any
) -> None:
    body = v1_body(NO_OPT_IN, base_wager=wager)
    response = await post(client, "/jackpots/contribute", body, headers)
    assert (await expect(response, 200))["contribution_amount"] == Decimal("0.02")  # 1 %


@pytest.mark.parametrize("wager", ["2e0", " 2.00", "2.00 ", "2_0", "+2", "0x2", "2.", ".5", ""])
async def test_other_spellings_of_an_amount_are_refused(
    client: QuartClient, headers: dict[str, str], wager: str
) -> None:
    response = await post(
        client, "/jackpots/contribute", v1_body("daily-drop", base_wager=wager), headers
    )
    assert "base_wager" in (await expect(response, 400, "VALIDATION_ERROR"))["details"]


@pytest.mark.parametrize("zero", ["-0", "-0.0", "0", '"-0"'])
async def test_minus_zero_is_zero(client: QuartClient, headers: dict[str, str], zero: str) -> None:
    """A base wager of 0 is valid (a Percentage instance then takes nothing); -0 is the same."""
    body = post_text(v1_body(NO_OPT_IN, base_wager=Decimal(7))).replace(
        '"base_wager":7', f'"base_wager":{zero}'
    )
    response = await post(client, "/jackpots/contribute", body, headers)
    assert (await expect(response, 200))["contribution_amount"] == 0


async def test_counts_are_json_numbers_only(client: QuartClient, headers: dict[str, str]) -> None:
    definition = {"timestamp_start": "5"}
    response = await post(client, "/admin/instances", definition, headers)
    assert "timestamp_start" in (await expect(response, 400, "VALIDATION_ERROR"))["details"]


async def test_v2_takes_a_plain_or_a_qualified_player_brand(
    client: QuartClient, headers: dict[str, str]
) -> None:
    for brand in ("brand1", "demo:brand1"):
        player = {"id": "p1", "brand_id": brand, "country": "DE"}
        response = await post(
            client, "/v2/jackpots/contribute", v2_body(NO_OPT_IN, player=player), headers
        )
        [item] = await expect(response, 200)
        assert item["success"] is True, item
    player = {"id": "p1", "brand_id": "rival:main", "country": "DE"}
    response = await post(
        client, "/v2/jackpots/contribute", v2_body(NO_OPT_IN, player=player), headers
    )
    await expect(response, 403, "OPERATOR_FORBIDDEN")


async def test_another_operators_instance_is_unknown_on_every_route(
    client: QuartClient, headers: dict[str, str], gateway: Services
) -> None:
    rival = auth(gateway, RIVAL)
    v1 = v1_body("daily-drop", brand_id="rival:main")
    optin = {
        "instance_id": "daily-drop",
        "player_id": "p1",
        "brand_id": "rival:main",
        "player_country": "DE",
        "opt_in": True,
    }
    player = {"id": "p1", "brand_id": "main", "country": "DE"}
    v2 = v2_body("daily-drop", operator_id="rival", player=player)
    v2_optin = {
        "target": {"type": "instance", "id": "daily-drop"},
        "operator_id": "rival",
        "player": player,
        "opt_in": True,
    }
    for path, body in [
        ("/jackpots/contribute", v1),
        ("/jackpots/optin", optin),
        ("/v2/jackpots/contribute", v2),
        ("/v2/jackpots/optin", v2_optin),
    ]:
        response = await post(client, path, body, rival)
        await expect(response, 404, "INSTANCE_NOT_FOUND")
    for path in (
        "/jackpots/instances/daily-drop/winners",
        "/jackpots/instances/daily-drop/winners/pots",
    ):
        await expect(await client.get(path, headers=rival), 404, "INSTANCE_NOT_FOUND")
    # The same answer as for an instance that does not exist at all.
    response = await post(client, "/jackpots/contribute", {**v1, "instance_id": "nope"}, rival)
    await expect(response, 404, "INSTANCE_NOT_FOUND")
