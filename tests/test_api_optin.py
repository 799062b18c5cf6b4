"""Opting in and out through the HTTP API: v1 (operation 14) and v2 with linked instances
(operation 17), the stored preference and its limits, and contributions that use it."""

from __future__ import annotations

import time
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from quart.testing import QuartClient

from app.cli import read_definitions
from app.services import Services
from tests.conftest import BACKENDS, DEMO_FILE
from tests.support.definitions import instance, pot, seeded_pots
from tests.support.http import contribution, create_instance, expect, put_source, set_status
from tests.support.money import convert_down, micros, pot_gain, units
from tests.support.snapshots import snapshot

CURRENCIES = read_definitions(DEMO_FILE)["currencies"]
CLUB_LIMITS = {"EUR": {"min": "0.05", "max": "5.00"}, "USD": {"min": "0.10", "max": "5.50"}}


pytestmark = [
    pytest.mark.usefixtures("cheap_passwords"),
    pytest.mark.parametrize("redis_url", BACKENDS, indirect=True),
]


def multipliers(brand_path: str) -> dict[str, Fraction]:
    merged = {ccy: Fraction(m) for ccy, m in CURRENCIES["multipliers"].items()}
    overrides = CURRENCIES["brand_overrides"].get(brand_path, {})
    merged.update({ccy: Fraction(m) for ccy, m in overrides.items()})
    return merged


def rate(brand_path: str, source: str, target: str) -> Fraction:
    """Units of `target` per unit of `source`, exactly."""
    m = multipliers(brand_path)
    return m[target] / m[source]


def limits_refusal(
    value: str, currency: str, limits: dict[str, Any], instance_currency: str, brand: str
) -> str | None:
    """The rule: a currency's own limits, else the instance currency's after conversion; the
    refusal's code, or None when the value is within them."""
    if currency in limits:
        checked, bounds = Fraction(value), limits[currency]
    elif instance_currency in limits:
        checked = Fraction(value) * rate(brand, currency, instance_currency)
        bounds = limits[instance_currency]
    else:
        return None
    if checked < Fraction(bounds["min"]):
        return "CONTRIBUTION_BELOW_MIN"
    if checked > Fraction(bounds["max"]):
        return "CONTRIBUTION_ABOVE_MAX"
    return None


def optin(
    instance_id: str,
    player_id: str = "p1",
    opt_in: Any = True,
    *,
    brand_id: str = "demo:brand1",
    country: str = "DE",
    value: Any = None,
    currency: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "instance_id": instance_id,
        "player_id": player_id,
        "brand_id": brand_id,
        "player_country": country,
        "opt_in": opt_in,
    }
    if value is not None:
        body["contribution_value"] = value
    if currency is not None:
        body["contribution_currency"] = currency
    return body


async def post_optin(
    client: QuartClient,
    headers: dict[str, str],
    body: dict[str, Any],
    status: int = 200,
    code: str | None = None,
) -> Any:
    response = await client.post("/jackpots/optin", json=body, headers=headers)
    return await expect(response, status, code)


async def optin_status(
    client: QuartClient,
    headers: dict[str, str],
    instance_id: str,
    player_id: str = "p1",
    brand_id: str = "demo:brand1",
) -> Any:
    """optin_status of operation 13, through the instance's own source `<id>-src`."""
    response = await client.get(
        f"/jackpots/instances/source/{instance_id}-src/brand/{brand_id}"
        f"?player_id={player_id}&country_code=DE",
        headers=headers,
    )
    body = await expect(response, 200)
    assert body["id"] == instance_id
    return body["optin_status"]


async def add_instance(
    client: QuartClient,
    headers: dict[str, str],
    instance_id: str,
    *,
    pots: list[dict[str, Any]] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Create an instance (Fixed 0.10, by default the seeded mini and major pots) and a source
    `<id>-src` of each demo brand leading to it alone."""
    definition = instance(
        instance_id, fixed="0.10", pots=seeded_pots() if pots is None else pots, **overrides
    )
    await create_instance(client, headers, definition)
    for brand in ("demo:brand1", "demo:brand2"):
        await put_source(client, headers, f"{instance_id}-src", [instance_id], owner_id=brand)
    return definition


@pytest.fixture
async def club(client: QuartClient, demo_headers: dict[str, str]) -> dict[str, Any]:
    """An opt-in EUR jackpot with EUR and USD limits that blocks US players."""
    return await add_instance(
        client,
        demo_headers,
        "club",
        opt_in_required=True,
        contribution_limits=CLUB_LIMITS,
        blocked_countries=["US"],
    )


async def contribute(
    client: QuartClient, headers: dict[str, str], body: dict[str, Any], status: int = 200
) -> Any:
    return await expect(
        await client.post("/jackpots/contribute", json=body, headers=headers), status
    )


# -- v1 -----------------------------------------------------------------------------------------
async def test_opt_in_answers_the_record_and_stores_the_preference(
    client: QuartClient, demo_headers: dict[str, str], club: dict[str, Any]
) -> None:
    before = int(time.time() * 1000)
    status = await post_optin(client, demo_headers, optin("club", value="0.50", currency="USD"))
    after = int(time.time() * 1000)
    assert status == {
        "opted_in": True,
        "contribution_value": Decimal("0.5"),
        "contribution_currency": "USD",
        "contribution_count": 0,
        "last_updated": status["last_updated"],
    }
    assert before <= status["last_updated"] <= after
    assert await optin_status(client, demo_headers, "club") == status

    # Without a currency, the value is in the instance currency.
    status = await post_optin(client, demo_headers, optin("club", value="1.25"))
    assert (status["contribution_value"], status["contribution_currency"]) == (
        Decimal("1.25"),
        club["currency"],
    )
    assert await optin_status(client, demo_headers, "club") == status
    # Without a value, the instance's default contribution applies.
    status = await post_optin(client, demo_headers, optin("club"))
    assert (status["opted_in"], status["contribution_value"], status["contribution_currency"]) == (
        True,
        None,
        None,
    )
    assert await optin_status(client, demo_headers, "club") == status
    # Players are per brand: the same id on brand2 has no record.
    assert await optin_status(client, demo_headers, "club", brand_id="demo:brand2") is None


async def test_a_repeated_opt_in_changes_nothing(
    client: QuartClient, demo_headers: dict[str, str], gateway: Services, club: dict[str, Any]
) -> None:
    first = await post_optin(client, demo_headers, optin("club", value="0.5"))
    state = await snapshot(gateway.store)
    again = await post_optin(client, demo_headers, optin("club", value="0.50"))
    assert again == first
    assert await snapshot(gateway.store) == state


@pytest.mark.parametrize("brand", ["demo:brand1", "demo:brand2"])
async def test_preference_limits_own_currency_else_instance_currency_after_conversion(
    client: QuartClient,
    demo_headers: dict[str, str],
    gateway: Services,
    club: dict[str, Any],
    brand: str,
) -> None:
    cases = [
        ("0.04", "EUR"),
        ("0.05", "EUR"),
        ("5.00", "EUR"),
        ("5.01", "EUR"),
        ("0.09", "USD"),
        ("0.10", "USD"),
        ("5.50", "USD"),
        ("5.51", "USD"),
        # GBP, SEK and JPY have no limits of their own: the EUR limits, converted.
        ("0.04", "GBP"),
        ("0.05", "GBP"),
        ("4.30", "GBP"),  # exactly 5.00 EUR
        ("4.31", "GBP"),
        ("57", "SEK"),  # exactly 5.00 EUR
        ("57.01", "SEK"),
        ("0.57", "SEK"),  # exactly 0.05 EUR
        ("0.56", "SEK"),
        ("8", "JPY"),
        ("9", "JPY"),
        ("810", "JPY"),  # exactly 5.00 EUR
        ("811", "JPY"),
    ]
    outcomes = {}
    for value, currency in cases:
        refusal = limits_refusal(value, currency, CLUB_LIMITS, "EUR", brand)
        ok = refusal is None
        outcomes[value, currency] = ok
        body = optin("club", brand_id=brand, value=value, currency=currency)
        if ok:
            status = await post_optin(client, demo_headers, body)
            assert (status["contribution_value"], status["contribution_currency"]) == (
                Decimal(value),
                currency,
            ), (value, currency)
            operator_id, brand_id = brand.split(":")
            record = await gateway.store.optin("club", operator_id, brand_id, "p1")
            assert record is not None
            # Stored in micro-units of the instance currency, rounded down, exactly.
            assert record.value_micros == convert_down(value, rate(brand, currency, "EUR")), (
                value,
                currency,
            )
            assert await optin_status(client, demo_headers, "club", brand_id=brand) == status
        else:
            state = await snapshot(gateway.store)
            error = await post_optin(client, demo_headers, body, 422, refusal)
            assert "contribution_value" in error["details"]
            assert await snapshot(gateway.store) == state, (value, currency)
    # The boundaries are inclusive, the values just outside them refused.
    assert outcomes["4.30", "GBP"] and outcomes["57", "SEK"] and outcomes["810", "JPY"]
    assert not outcomes["4.31", "GBP"] and not outcomes["0.56", "SEK"]
    assert outcomes["5.50", "USD"] and not outcomes["5.51", "USD"]


async def test_preference_refusals_leave_redis_unchanged(
    client: QuartClient, demo_headers: dict[str, str], gateway: Services, club: dict[str, Any]
) -> None:
    await post_optin(client, demo_headers, optin("club", value="1"))
    state = await snapshot(gateway.store)
    error = await post_optin(
        client,
        demo_headers,
        optin("club", value="1", currency="XAU"),
        422,
        "UNKNOWN_CURRENCY",
    )
    assert "XAU" in error["error"]
    for value in ("0", "-1", "0.0000001", "NaN", "lots", True):
        await post_optin(client, demo_headers, optin("club", value=value), 400, "VALIDATION_ERROR")
    await post_optin(
        client, demo_headers, optin("club", value="1", currency="eur"), 400, "VALIDATION_ERROR"
    )
    assert await snapshot(gateway.store) == state


async def test_an_instance_without_limits_takes_any_preference(
    client: QuartClient, demo_headers: dict[str, str]
) -> None:
    await add_instance(client, demo_headers, "open", opt_in_required=True)
    status = await post_optin(client, demo_headers, optin("open", value="750.25", currency="GBP"))
    assert status["contribution_value"] == Decimal("750.25")


async def test_opt_in_to_a_terminated_instance_is_refused_opt_out_works(
    client: QuartClient, demo_headers: dict[str, str], gateway: Services, club: dict[str, Any]
) -> None:
    await post_optin(client, demo_headers, optin("club", value="0.75"))
    await set_status(client, demo_headers, "club", "terminate")
    state = await snapshot(gateway.store)
    await post_optin(client, demo_headers, optin("club"), 409, "INSTANCE_TERMINATED")
    await post_optin(
        client, demo_headers, optin("club", "p2", value="0.5"), 409, "INSTANCE_TERMINATED"
    )
    assert await snapshot(gateway.store) == state

    left = await post_optin(client, demo_headers, optin("club", opt_in=False))
    # Leaving keeps the stored preference.
    assert (left["opted_in"], left["contribution_value"], left["contribution_currency"]) == (
        False,
        Decimal("0.75"),
        "EUR",
    )
    # A player who never joined may leave too.
    never = await post_optin(client, demo_headers, optin("club", "p2", opt_in=False))
    assert (never["opted_in"], never["contribution_value"], never["contribution_count"]) == (
        False,
        None,
        0,
    )


async def test_ineligible_players_and_unknown_instances_are_refused(
    client: QuartClient,
    demo_headers: dict[str, str],
    rival_headers: dict[str, str],
    gateway: Services,
    club: dict[str, Any],
) -> None:
    await add_instance(client, demo_headers, "b1-only", allowed_brands=["demo:brand1"])
    state = await snapshot(gateway.store)
    await post_optin(client, demo_headers, optin("club", country="US"), 403, "COUNTRY_NOT_ALLOWED")
    await post_optin(
        client,
        demo_headers,
        optin("b1-only", brand_id="demo:brand2"),
        403,
        "BRAND_NOT_ALLOWED",
    )
    await post_optin(client, demo_headers, optin("nope"), 404, "INSTANCE_NOT_FOUND")
    await post_optin(client, rival_headers, optin("club"), 403, "OPERATOR_FORBIDDEN")
    await post_optin(
        client, demo_headers, optin("club", brand_id="rival:main"), 403, "OPERATOR_FORBIDDEN"
    )
    await post_optin(
        client, demo_headers, optin("club", brand_id="demo:brand9"), 404, "BRAND_NOT_FOUND"
    )
    assert await snapshot(gateway.store) == state
    # A bare brand id is the caller's.
    status = await post_optin(client, demo_headers, optin("club", brand_id="brand2"))
    assert await optin_status(client, demo_headers, "club", brand_id="demo:brand2") == status


@pytest.mark.parametrize("flag", ["yes", "true", 1, 0, None, [True]])
async def test_opt_in_must_be_a_json_boolean(
    client: QuartClient,
    demo_headers: dict[str, str],
    gateway: Services,
    club: dict[str, Any],
    flag: Any,
) -> None:
    state = await snapshot(gateway.store)
    error = await post_optin(
        client, demo_headers, optin("club", opt_in=flag), 400, "VALIDATION_ERROR"
    )
    assert "opt_in" in error["details"]
    body = optin("club")
    del body["opt_in"]
    await post_optin(client, demo_headers, body, 400, "VALIDATION_ERROR")
    assert await snapshot(gateway.store) == state


async def test_contributions_use_the_preferred_value_and_count(
    client: QuartClient, demo_headers: dict[str, str], gateway: Services, club: dict[str, Any]
) -> None:
    # Not opted in: refused, nothing written.
    state = await snapshot(gateway.store)
    await contribute(client, demo_headers, contribution("club", "p1"), 403)
    assert await snapshot(gateway.store) == state

    await post_optin(client, demo_headers, optin("club", value="0.37"))
    seeds = {p["id"]: micros(p["seed"]) for p in club["pots"]}
    for n in (1, 2):
        result = await contribute(client, demo_headers, contribution("club", "p1"))
        assert result["contribution_amount"] == Decimal("0.37")
        assert result["contribution_currency"] == "EUR"
        status = await optin_status(client, demo_headers, "club")
        assert status["contribution_count"] == n
    # The pots grew by the preferred value, not by the instance's 0.10.
    view = await client.get(
        "/jackpots/instances/source/club-src/brand/demo:brand1?player_id=p1&country_code=DE",
        headers=demo_headers,
    )
    pots = (await expect(view, 200))["pots"]
    assert [p["current_value"] for p in pots] == [
        units(seeds[p["id"]] + 2 * pot_gain(micros("0.37"), p)) for p in club["pots"]
    ]

    # A USD preference: stored in EUR micros, charged back in USD.
    await post_optin(client, demo_headers, optin("club", "p2", value="2.16", currency="USD"))
    stored = convert_down("2.16", rate("demo:brand1", "USD", "EUR"))
    in_usd = await contribute(client, demo_headers, contribution("club", "p2", currency="USD"))
    in_eur = await contribute(client, demo_headers, contribution("club", "p2"))
    to_usd = Fraction(stored, 10**6) * rate("demo:brand1", "EUR", "USD")
    assert in_usd["contribution_amount"] == Decimal(round(to_usd * 100)) / 100
    assert in_eur["contribution_amount"] == units(stored)
    assert (await optin_status(client, demo_headers, "club", "p2"))["contribution_count"] == 2


async def test_a_preference_converted_into_another_instance_currency_is_exact(
    client: QuartClient, demo_headers: dict[str, str], gateway: Services
) -> None:
    """0.43 GBP is exactly 5.7 SEK (0.43 * 11.4 / 0.86): the pot must get all of it."""
    pots = [pot("mini", "0.25", seed="10"), pot("major", "0.45", seed="1000")]
    definition = await add_instance(
        client, demo_headers, "krona", currency="SEK", opt_in_required=True, pots=pots
    )
    await post_optin(client, demo_headers, optin("krona", value="0.43", currency="GBP"))
    amount = convert_down("0.43", rate("demo:brand1", "GBP", "SEK"))
    assert amount == micros("5.7")
    record = await gateway.store.optin("krona", "demo", "brand1", "p1")
    assert record is not None and record.value_micros == amount
    result = await contribute(client, demo_headers, contribution("krona", "p1", currency="GBP"))
    assert result["contribution_amount"] == Decimal("0.43")
    view = await client.get(
        "/jackpots/instances/source/krona-src/brand/demo:brand1?player_id=p1&country_code=DE",
        headers=demo_headers,
    )
    pots = (await expect(view, 200))["pots"]
    assert [p["current_value"] for p in pots] == [
        units(micros(p["seed"]) + pot_gain(amount, p)) for p in definition["pots"]
    ]


async def test_opt_out_then_contribute_is_refused(
    client: QuartClient, demo_headers: dict[str, str], gateway: Services, club: dict[str, Any]
) -> None:
    await post_optin(client, demo_headers, optin("club", value="0.2"))
    await contribute(client, demo_headers, contribution("club", "p1"))
    left = await post_optin(client, demo_headers, optin("club", opt_in=False))
    assert (left["opted_in"], left["contribution_count"]) == (False, 1)
    state = await snapshot(gateway.store)
    response = await client.post(
        "/jackpots/contribute", json=contribution("club", "p1"), headers=demo_headers
    )
    await expect(response, 403, "NOT_OPTED_IN")
    assert await snapshot(gateway.store) == state
    assert await optin_status(client, demo_headers, "club") == left
    # Back in without a value: the default contribution again.
    await post_optin(client, demo_headers, optin("club"))
    result = await contribute(client, demo_headers, contribution("club", "p1"))
    assert result["contribution_amount"] == Decimal(club["contribution_type"]["Fixed"])
    assert (await optin_status(client, demo_headers, "club"))["contribution_count"] == 2


# -- v2 -----------------------------------------------------------------------------------------
def optin_v2(
    target_id: str,
    opt_in: Any = True,
    *,
    target_type: str = "instance",
    player_id: str = "p1",
    brand_id: str = "brand1",
    country: str = "DE",
    opt_linked: Any = None,
    preference: dict[str, Any] | None = None,
    operator_id: str | None = "demo",
    owner_id: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "target": {"type": target_type, "id": target_id},
        "player": {"id": player_id, "brand_id": brand_id, "country": country},
        "opt_in": opt_in,
    }
    if operator_id is not None:
        body["operator_id"] = operator_id
    if owner_id is not None:
        body["owner_id"] = owner_id
    if opt_linked is not None:
        body["opt_linked"] = opt_linked
    if preference is not None:
        body["contribution_preference"] = preference
    return body


async def post_v2(
    client: QuartClient,
    headers: dict[str, str],
    body: dict[str, Any],
    status: int = 200,
    code: str | None = None,
) -> Any:
    response = await client.post("/v2/jackpots/optin", json=body, headers=headers)
    return await expect(response, status, code)


@pytest.fixture
async def chain(client: QuartClient, demo_headers: dict[str, str]) -> None:
    """top -> [mid, side], mid -> [leaf]: links are direct only."""
    await add_instance(client, demo_headers, "leaf")
    await add_instance(client, demo_headers, "mid", linked_instances=["leaf"])
    await add_instance(client, demo_headers, "side")
    await add_instance(client, demo_headers, "top", linked_instances=["mid", "side"])


async def test_v2_opts_in_to_the_target_with_the_preference(
    client: QuartClient, demo_headers: dict[str, str], chain: None
) -> None:
    result = await post_v2(
        client, demo_headers, optin_v2("top", preference={"value": "0.4", "currency": "USD"})
    )
    assert result == {"success": ["top"], "failed": []}
    status = await optin_status(client, demo_headers, "top")
    assert (status["opted_in"], status["contribution_value"], status["contribution_currency"]) == (
        True,
        Decimal("0.4"),
        "USD",
    )
    # Without opt_linked, the linked instances are left alone.
    for other in ("mid", "side", "leaf"):
        assert await optin_status(client, demo_headers, other) is None
    # The preference's currency defaults to the instance currency.
    await post_v2(client, demo_headers, optin_v2("side", preference={"value": "0.3"}))
    status = await optin_status(client, demo_headers, "side")
    assert (status["contribution_value"], status["contribution_currency"]) == (
        Decimal("0.3"),
        "EUR",
    )


async def test_v2_opt_linked_uses_the_default_value_and_is_not_transitive(
    client: QuartClient, demo_headers: dict[str, str], chain: None
) -> None:
    result = await post_v2(
        client,
        demo_headers,
        optin_v2("top", opt_linked=True, preference={"value": "0.6", "currency": "EUR"}),
    )
    assert result == {"success": ["top", "mid", "side"], "failed": []}
    top = await optin_status(client, demo_headers, "top")
    assert (top["opted_in"], top["contribution_value"]) == (True, Decimal("0.6"))
    for linked in ("mid", "side"):
        status = await optin_status(client, demo_headers, linked)
        assert (
            status["opted_in"],
            status["contribution_value"],
            status["contribution_currency"],
        ) == (True, None, None), linked
    assert await optin_status(client, demo_headers, "leaf") is None

    result = await post_v2(client, demo_headers, optin_v2("top", False, opt_linked=True))
    assert result == {"success": ["top", "mid", "side"], "failed": []}
    for name in ("top", "mid", "side"):
        assert (await optin_status(client, demo_headers, name))["opted_in"] is False
    assert await optin_status(client, demo_headers, "leaf") is None


async def test_v2_a_failing_linked_instance_does_not_stop_the_others(
    client: QuartClient, demo_headers: dict[str, str], gateway: Services
) -> None:
    await add_instance(client, demo_headers, "ended")
    await add_instance(client, demo_headers, "no-de", blocked_countries=["DE"])
    await add_instance(client, demo_headers, "b2-only", allowed_brands=["demo:brand2"])
    await add_instance(client, demo_headers, "fine")
    await add_instance(
        client,
        demo_headers,
        "hub",
        linked_instances=["ended", "no-de", "b2-only", "fine"],
    )
    await set_status(client, demo_headers, "ended", "terminate")
    untouched = await snapshot(gateway.store, "ended", "no-de", "b2-only")

    result = await post_v2(client, demo_headers, optin_v2("hub", opt_linked=True))
    assert result["success"] == ["hub", "fine"]
    assert [(f["instance_id"], f["code"]) for f in result["failed"]] == [
        ("ended", "INSTANCE_TERMINATED"),
        ("no-de", "COUNTRY_NOT_ALLOWED"),
        ("b2-only", "BRAND_NOT_ALLOWED"),
    ]
    assert all(set(f) == {"instance_id", "code", "error"} and f["error"] for f in result["failed"])
    assert await snapshot(gateway.store, "ended", "no-de", "b2-only") == untouched
    assert (await optin_status(client, demo_headers, "fine"))["opted_in"] is True

    # Leaving is always allowed, also where joining was refused.
    result = await post_v2(client, demo_headers, optin_v2("hub", False, opt_linked=True))
    assert result == {"success": ["hub", "ended", "no-de", "b2-only", "fine"], "failed": []}


async def test_v2_a_refused_target_is_listed_in_failed(
    client: QuartClient, demo_headers: dict[str, str], gateway: Services
) -> None:
    await add_instance(client, demo_headers, "gone")
    await set_status(client, demo_headers, "gone", "terminate")
    state = await snapshot(gateway.store)
    result = await post_v2(client, demo_headers, optin_v2("gone"))
    assert result["success"] == []
    assert [(f["instance_id"], f["code"]) for f in result["failed"]] == [
        ("gone", "INSTANCE_TERMINATED")
    ]
    assert await snapshot(gateway.store) == state


async def test_v2_target_source(
    client: QuartClient, demo_headers: dict[str, str], gateway: Services, club: dict[str, Any]
) -> None:
    result = await post_v2(
        client,
        demo_headers,
        optin_v2("club-src", target_type="source", brand_id="brand2", preference={"value": 1}),
    )
    assert result == {"success": ["club"], "failed": []}
    status = await optin_status(client, demo_headers, "club", brand_id="demo:brand2")
    assert (status["opted_in"], status["contribution_value"]) == (True, Decimal("1"))

    state = await snapshot(gateway.store)
    await post_v2(
        client,
        demo_headers,
        optin_v2("nope-src", target_type="source"),
        404,
        "SOURCE_NOT_FOUND",
    )
    await post_v2(
        client,
        demo_headers,
        optin_v2("club-src", target_type="source", country="US"),
        403,
        "COUNTRY_NOT_ALLOWED",
    )
    # A refusal of the instance itself is an item of `failed`.
    result = await post_v2(
        client,
        demo_headers,
        optin_v2("club-src", target_type="source", preference={"value": "9"}),
    )
    assert result["success"] == []
    assert [(f["instance_id"], f["code"]) for f in result["failed"]] == [
        ("club", "CONTRIBUTION_ABOVE_MAX")
    ]
    assert await snapshot(gateway.store) == state


async def test_v2_target_source_of_a_segmented_instance(
    client: QuartClient, demo_headers: dict[str, str]
) -> None:
    """An opt-in carries no segments (PlayerRecordOptInOut): they are not checked, as for v1."""
    await add_instance(client, demo_headers, "vip", segments=["vip"])
    result = await post_v2(client, demo_headers, optin_v2("vip-src", target_type="source"))
    assert result == {"success": ["vip"], "failed": []}
    v1 = await post_optin(client, demo_headers, optin("vip", "p2"))
    assert v1["opted_in"] is True


async def test_v2_owner_alias_and_operator_scope(
    client: QuartClient,
    demo_headers: dict[str, str],
    rival_headers: dict[str, str],
    gateway: Services,
    club: dict[str, Any],
) -> None:
    state = await snapshot(gateway.store)
    for body in (
        optin_v2("club", operator_id="rival"),
        optin_v2("club", operator_id=None, owner_id="rival"),
        optin_v2("club", brand_id="main", operator_id="rival"),
    ):
        await post_v2(client, demo_headers, body, 403, "OPERATOR_FORBIDDEN")
    await post_v2(client, rival_headers, optin_v2("club"), 403, "OPERATOR_FORBIDDEN")
    await post_v2(
        client,
        demo_headers,
        optin_v2("club", operator_id="demo", owner_id="rival"),
        400,
        "VALIDATION_ERROR",
    )
    await post_v2(client, demo_headers, optin_v2("club", operator_id=None), 400, "VALIDATION_ERROR")
    await post_v2(client, demo_headers, optin_v2("club", brand_id="brand9"), 404, "BRAND_NOT_FOUND")
    await post_v2(client, demo_headers, optin_v2("nope"), 404, "INSTANCE_NOT_FOUND")
    for bad in ({"opt_in": "yes"}, {"opt_in": 1}, {"opt_linked": "yes"}, {"opt_linked": 0}):
        await post_v2(client, demo_headers, {**optin_v2("club"), **bad}, 400, "VALIDATION_ERROR")
    await post_v2(
        client,
        demo_headers,
        optin_v2("club", target_type="player"),
        400,
        "VALIDATION_ERROR",
    )
    assert await snapshot(gateway.store) == state

    result = await post_v2(
        client, demo_headers, optin_v2("club", operator_id=None, owner_id="demo")
    )
    assert result == {"success": ["club"], "failed": []}
    both = await post_v2(
        client, demo_headers, optin_v2("club", player_id="p2", operator_id="demo", owner_id="demo")
    )
    assert both == {"success": ["club"], "failed": []}


async def test_opt_in_after_the_end_is_refused_opt_out_works(
    client: QuartClient, demo_headers: dict[str, str], gateway: Services
) -> None:
    ended = int(time.time() * 1000) - 1000
    await create_instance(client, demo_headers, instance("over", timestamp_end=ended))
    state = await snapshot(gateway.store)
    await post_optin(client, demo_headers, optin("over"), 409, "INSTANCE_ENDED")
    result = await post_v2(client, demo_headers, optin_v2("over"))
    assert [(f["instance_id"], f["code"]) for f in result["failed"]] == [("over", "INSTANCE_ENDED")]
    assert await snapshot(gateway.store) == state
    left = await post_optin(client, demo_headers, optin("over", opt_in=False))
    assert left["opted_in"] is False
