"""The money rules of a contribution (docs/money.md, app/services/charges.py) through the
HTTP API, on real Redis and on fakeredis: what a player is charged, what the jackpot is
credited, limits, bounds and conversions. Expected amounts are computed here with Fraction
from the rules, never copied from the code's answers."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from quart.testing import QuartClient

from app.services import Services
from tests.support.definitions import instance
from tests.support.http import (
    contribution,
    create_instance,
    error_of,
    expect,
    post,
    v2_body,
    view,
)
from tests.support.money import MULTIPLIERS, units
from tests.support.snapshots import snapshot

CONTRIBUTE = "/jackpots/contribute"
OPTIN = "/jackpots/optin"
EUR_LIMITS = {"EUR": {"min": "0.10", "max": "1.00"}}


def worth_micros(amount: str | Decimal, currency: str, instance_currency: str) -> int:
    """The rule: the exact worth in micro-units of the instance currency, rounded down."""
    exact = Fraction(amount) * Fraction(MULTIPLIERS[instance_currency])
    return int(exact / Fraction(MULTIPLIERS[currency]) * 1_000_000)


def percentage(instance_id: str, pct: str = "0.5", **fields: Any) -> dict[str, Any]:
    return instance(instance_id, contribution_type={"Percentage": pct}, **fields)


async def contribute(
    client: QuartClient, headers: dict[str, str], instance_id: str, wager: str, currency: str
) -> Any:
    response = await post(
        client,
        CONTRIBUTE,
        contribution(instance_id, "p1", base_wager=wager, currency=currency),
        headers,
    )
    return response


async def credited(client: QuartClient, headers: dict[str, str], instance_id: str) -> Decimal:
    return (await view(client, headers, instance_id))["totals"]["contributions"]


def optin_body(instance_id: str, value: Any, currency: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "instance_id": instance_id,
        "player_id": "p1",
        "brand_id": "demo:brand1",
        "player_country": "DE",
        "opt_in": True,
        "contribution_value": value,
    }
    if currency is not None:
        body["contribution_currency"] = currency
    return body


# -- 2. a preferred value is bounded like a wager ---------------------------------------------
async def test_a_preferred_value_beyond_any_stake_is_refused_at_opt_in(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    """1e9 EUR on a JPY instance is 1.62e11 JPY: refused, and the player still contributes."""
    await create_instance(
        client,
        headers,
        instance("jpy", currency="JPY", fixed="100", opt_in_required=True),
    )
    await expect(await post(client, OPTIN, optin_body("jpy", "1", "EUR"), headers), 200)
    frozen = await snapshot(gateway.store, "jpy")
    for value, currency in (("1000000000", "EUR"), ("6172840", "EUR")):
        response = await post(client, OPTIN, optin_body("jpy", value, currency), headers)
        status, code, details = await error_of(response)
        assert (status, code, list(details)) == (
            422,
            "CONTRIBUTION_TOO_LARGE",
            ["contribution_value"],
        )
    v2 = {
        "target": {"type": "instance", "id": "jpy"},
        "operator_id": "demo",
        "player": {"id": "p1", "brand_id": "brand1", "country": "DE"},
        "contribution_preference": {"value": "1000000000", "currency": "EUR"},
        "opt_in": True,
    }
    result = await expect(await post(client, "/v2/jackpots/optin", v2, headers), 200)
    assert result["failed"] == [
        {
            "instance_id": "jpy",
            "code": "CONTRIBUTION_TOO_LARGE",
            "error": result["failed"][0]["error"],
        }
    ]
    assert await snapshot(gateway.store, "jpy") == frozen
    # The largest plausible preference (999999918 JPY) is taken, and used.
    await expect(await post(client, OPTIN, optin_body("jpy", "6172839", "EUR"), headers), 200)
    response = await contribute(client, headers, "jpy", "1", "EUR")
    assert (await expect(response, 200))["contribution_amount"] == Decimal("6172839")
    assert await credited(client, headers, "jpy") == Decimal("999999918")


# -- 3. one limits rule everywhere ------------------------------------------------------------
async def test_the_instance_currency_max_caps_a_wager_in_another_currency(
    client: QuartClient, headers: dict[str, str]
) -> None:
    """50% of 100 USD is 50 USD; EUR max 1.00 is 1.08 USD: the player pays 1.08 USD."""
    await create_instance(client, headers, percentage("capped", contribution_limits=EUR_LIMITS))
    body = await expect(await contribute(client, headers, "capped", "100", "USD"), 200)
    assert (body["contribution_amount"], body["contribution_currency"]) == (Decimal("1.08"), "USD")
    assert await credited(client, headers, "capped") == Decimal("1")
    # JPY has no digits: the cap is 162 JPY, worth exactly 1.00 EUR.
    body = await expect(await contribute(client, headers, "capped", "100000", "JPY"), 200)
    assert body["contribution_amount"] == Decimal("162")
    assert await credited(client, headers, "capped") == Decimal("2")


async def test_a_contribution_below_min_is_refused_with_its_own_code(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    await create_instance(client, headers, percentage("floor", contribution_limits=EUR_LIMITS))
    frozen = await snapshot(gateway.store, "floor")
    # 0.05 EUR; 0.10 USD (0.0925 EUR); 0.09 EUR is below even though 0.199 USD pays 0.09 USD
    for wager, currency in (("0.10", "EUR"), ("0.20", "USD"), ("0.199", "EUR")):
        response = await contribute(client, headers, "floor", wager, currency)
        status, code, details = await error_of(response)
        assert (status, code, list(details)) == (422, "CONTRIBUTION_BELOW_MIN", ["base_wager"])
    assert await snapshot(gateway.store, "floor") == frozen
    # The boundary is inclusive: 0.20 EUR pays exactly the min.
    body = await expect(await contribute(client, headers, "floor", "0.20", "EUR"), 200)
    assert body["contribution_amount"] == Decimal("0.10")
    # A base wager of 0 stays valid: recorded, nothing moves.
    body = await expect(await contribute(client, headers, "floor", "0", "USD"), 200)
    assert body["contribution_amount"] == 0
    assert await credited(client, headers, "floor") == Decimal("0.10")


@pytest.mark.parametrize(
    ("fixed", "limits"),
    [
        ("10", {"EUR": {"max": "5.00"}}),
        ("0.01", {"EUR": {"min": "0.05"}}),
        ("5.000001", {"EUR": {"min": "0.05", "max": "5"}}),
    ],
)
async def test_a_fixed_amount_outside_its_own_limits_is_refused_at_load(
    client: QuartClient, headers: dict[str, str], fixed: str, limits: dict[str, Any]
) -> None:
    definition = instance("fixed", fixed=fixed, contribution_limits=limits)
    response = await post(client, "/admin/instances", definition, headers)
    status, code, details = await error_of(response)
    assert (status, code, list(details)) == (400, "VALIDATION_ERROR", ["contribution_type"])
    response = await client.get("/admin/instances/fixed", headers=headers)
    assert response.status_code == 404


async def test_a_fixed_amount_below_a_currencys_own_min_is_refused_in_that_currency(
    client: QuartClient, headers: dict[str, str]
) -> None:
    """Fixed 0.10 EUR is 16 JPY, below a JPY min of 20; EUR contributions are unaffected."""
    await create_instance(
        client,
        headers,
        instance("yen-min", fixed="0.10", contribution_limits={"JPY": {"min": "20"}}),
    )
    response = await contribute(client, headers, "yen-min", "1", "JPY")
    assert (await error_of(response))[:2] == (422, "CONTRIBUTION_BELOW_MIN")
    body = await expect(await contribute(client, headers, "yen-min", "1", "EUR"), 200)
    assert body["contribution_amount"] == Decimal("0.10")


async def test_linked_instances_apply_the_same_limits(
    client: QuartClient, headers: dict[str, str]
) -> None:
    await create_instance(client, headers, percentage("capped", contribution_limits=EUR_LIMITS))
    await create_instance(
        client, headers, percentage("high-min", contribution_limits={"EUR": {"min": "5.00"}})
    )
    await create_instance(
        client, headers, instance("target", fixed="0.10", linked_instances=["capped", "high-min"])
    )
    body = v2_body("target", base_wager={"value": Decimal("100"), "currency": "USD"})
    items = await expect(await post(client, "/v2/jackpots/contribute", body, headers), 200)
    assert [(i["instance_id"], i["success"]) for i in items] == [
        ("target", True),
        ("capped", True),
        ("high-min", True),
    ]
    assert items[1]["result"]["contribution_amount"] == Decimal("1.08")
    assert await credited(client, headers, "capped") == Decimal("1")
    body = v2_body("target", base_wager={"value": Decimal("2"), "currency": "USD"})
    items = await expect(await post(client, "/v2/jackpots/contribute", body, headers), 200)
    assert items[2]["success"] is False
    assert items[2]["error"]["code"] == "CONTRIBUTION_BELOW_MIN"
    assert await credited(client, headers, "high-min") == Decimal("46.296296")


async def test_a_preference_outside_the_limits_is_refused_with_a_code_per_side(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    await create_instance(
        client,
        headers,
        instance(
            "club",
            fixed="0.10",
            opt_in_required=True,
            contribution_limits={"EUR": {"min": "0.05", "max": "5.00"}},
        ),
    )
    await expect(await post(client, OPTIN, optin_body("club", "1"), headers), 200)
    frozen = await snapshot(gateway.store, "club")
    cases = [
        ("5.01", "EUR", "CONTRIBUTION_ABOVE_MAX"),
        ("4.31", "GBP", "CONTRIBUTION_ABOVE_MAX"),  # 5.011627.. EUR
        ("0.04", "EUR", "CONTRIBUTION_BELOW_MIN"),
        ("0.56", "SEK", "CONTRIBUTION_BELOW_MIN"),  # 0.049122.. EUR
        ("8.5", "JPY", "CONTRIBUTION_PRECISION"),  # JPY has no minor units
        ("0.125", "EUR", "CONTRIBUTION_PRECISION"),
    ]
    for value, currency, code in cases:
        response = await post(client, OPTIN, optin_body("club", value, currency), headers)
        status, got, details = await error_of(response)
        assert (status, got, list(details)) == (422, code, ["contribution_value"]), value
    assert await snapshot(gateway.store, "club") == frozen


# -- 4. percentages: whole minor units charged, their worth credited ---------------------------
@pytest.mark.parametrize(
    ("pct", "wager", "currency", "limits", "paid"),
    [
        ("0.01", "0.99", "EUR", {}, "0"),  # 0.0099 EUR: nothing a wallet can pay
        ("0.01", "12.34", "USD", {}, "0.12"),  # 0.1234 USD -> 0.12 USD, 0.111111 EUR
        ("0.015", "1234", "JPY", {}, "18"),  # 18.51 JPY -> 18 JPY
        ("0.5", "1", "EUR", {"EUR": {"max": "0.125"}}, "0.12"),  # a max finer than cents
        ("0.5", "1", "USD", {"EUR": {"max": "0.125"}}, "0.13"),  # 0.135 USD -> 0.13 USD
    ],
)
async def test_a_percentage_charges_whole_minor_units_and_credits_their_worth(
    client: QuartClient,
    headers: dict[str, str],
    pct: str,
    wager: str,
    currency: str,
    limits: dict[str, Any],
    paid: str,
) -> None:
    await create_instance(client, headers, percentage("pct", pct, contribution_limits=limits))
    body = await expect(await contribute(client, headers, "pct", wager, currency), 200)
    assert body["contribution_amount"] == Decimal(paid)
    assert await credited(client, headers, "pct") == units(worth_micros(paid, currency, "EUR"))


# -- 5. conversions are exact, rounded down once -----------------------------------------------
async def test_a_conversion_never_credits_more_than_the_payment_is_worth(
    client: QuartClient, headers: dict[str, str], platform_auth: dict[str, str]
) -> None:
    """989405728.25 AAA at 14-digit multipliers is worth 453829116.2055479.. BBB: a 28-digit
    decimal quotient rounds that up to ...5549 micro-units, one more than was paid."""
    currencies = await expect(await client.get("/admin/currencies", headers=platform_auth), 200)
    currencies["multipliers"].update({"AAA": "4509.2347866949", "BBB": "2068.3345361550"})
    response = await client.put("/admin/currencies", json=currencies, headers=platform_auth)
    await expect(response, 200)
    await create_instance(client, headers, percentage("exact", "1", currency="BBB"))
    wager = "989405728.25"
    body = await expect(await contribute(client, headers, "exact", wager, "AAA"), 200)
    assert body["contribution_amount"] == Decimal(wager)
    exact = Fraction(wager) * Fraction("2068.3345361550") / Fraction("4509.2347866949")
    assert int(exact * 1_000_000) == 453829116205548
    assert await credited(client, headers, "exact") == Decimal("453829116.205548")


# -- 6. a Fixed amount paid in another currency ------------------------------------------------
@pytest.mark.parametrize(
    ("fixed", "currency", "paid"),
    [
        ("0.10", "JPY", "16"),  # 16.2 JPY: 16 JPY paid, worth 0.098765.. EUR
        ("0.75", "JPY", "121"),  # 121.5 JPY
        ("0.10", "USD", "0.10"),  # 0.108 USD
        ("0.125", "EUR", "0.12"),  # finer than cents, even in the instance currency
    ],
)
async def test_a_fixed_amount_credits_what_the_reported_payment_is_worth(
    client: QuartClient, headers: dict[str, str], fixed: str, currency: str, paid: str
) -> None:
    await create_instance(client, headers, instance("fixed", fixed=fixed))
    for n in (1, 2):
        body = await expect(await contribute(client, headers, "fixed", "1", currency), 200)
        assert (body["contribution_amount"], body["contribution_currency"]) == (
            Decimal(paid),
            currency,
        )
        assert await credited(client, headers, "fixed") == n * units(
            worth_micros(paid, currency, "EUR")
        )


# -- 1. exact above 2^53 micro-units ------------------------------------------------------------
async def test_pots_and_totals_stay_exact_across_2_to_the_53(
    client: QuartClient, headers: dict[str, str], platform_auth: dict[str, str]
) -> None:
    """999999999.999999 a time (a currency with 6 decimal places, at par with EUR) into one
    uncapped pot: from the 10th contribution on the pot and the totals pass 2^53 micro-units
    (about 9e9 EUR); every value stays exact (odd ones too, which no double holds)."""
    currencies = await expect(await client.get("/admin/currencies", headers=platform_auth), 200)
    currencies["multipliers"]["MIC"] = "1"
    currencies["decimals"]["MIC"] = 6
    response = await client.put("/admin/currencies", json=currencies, headers=platform_auth)
    await expect(response, 200)
    never = {"HitRate": {"max_magic_number": 10**12, "cost_per_attempt": "1000000000"}}
    await create_instance(
        client,
        headers,
        percentage(
            "huge",
            "1",
            house_share="0",
            pots=[
                {"id": "main", "name": "Main", "share": "1", "seed": "0.000001", "trigger": never}
            ],
        ),
    )
    paid = 999_999_999_999_999  # micros
    for k in range(1, 13):
        response = await contribute(client, headers, "huge", "999999999.999999", "MIC")
        assert (await expect(response, 200))["contribution_amount"] == Decimal("999999999.999999")
        state = await view(client, headers, "huge")
        assert state["pots"]["main"]["current_value"] == units(1 + k * paid)
        assert state["totals"]["contributions"] == units(k * paid)
        assert state["totals"]["seed_funding"] == Decimal("0.000001")
    assert 1 + 12 * paid > 2**53
