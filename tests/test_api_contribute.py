"""POST /jackpots/contribute and /jackpots/contribute/source through the HTTP API.

Every test runs on real Redis and on fakeredis. Instances are created for each test through
the admin API, so their parameters are the test's own. Money is asserted exactly: expected
values are computed here from the documented rules (tests/support/money.py), never copied
from what the code answers.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from decimal import ROUND_DOWN, Decimal
from typing import Any

import pytest
from quart.testing import QuartClient

from app.core.config import Settings
from app.services import Services
from tests.conftest import BACKENDS, RIVAL, auth, make_settings
from tests.support.definitions import hit_rate, instance, must_drop, pot
from tests.support.http import (
    create_instance,
    error_of,
    exact_json,
    post,
    set_status,
    source_body,
    v1_body,
    view,
)
from tests.support.money import (
    BRAND2_MULTIPLIERS,
    MULTIPLIERS,
    charge,
    floor_player,
    micros,
    split,
    to_instance,
    to_player,
    units,
)
from tests.support.snapshots import snapshot

# The backend table: real Redis, fakeredis and a 3-master cluster; the parametrized money
# arithmetic (conversions, rounding, metadata echo) is backend-independent and runs on the
# first two only.
ON_EVERY_BACKEND = pytest.mark.parametrize("redis_url", BACKENDS, indirect=True)
CONTRIBUTE = "/jackpots/contribute"
BY_SOURCE = "/jackpots/contribute/source"
HOUR_MS = 3_600_000


@pytest.fixture
def settings(redis_url: str, request: pytest.FixtureRequest) -> Settings:
    """The conftest settings; a test may add overrides with indirect parametrization."""
    return make_settings(redis_url, **getattr(request, "param", {}))


@pytest.fixture
def rival(gateway: Services, headers: dict[str, str]) -> dict[str, str]:
    return auth(gateway, RIVAL)


def rates_of(brand: str) -> dict[str, Decimal]:
    return BRAND2_MULTIPLIERS if brand == "demo:brand2" else MULTIPLIERS


def check_headers(response: Any, instance_id: str) -> str:
    contribution_id = response.headers["X-Contribution-Id"]
    assert str(uuid.UUID(contribution_id)) == contribution_id
    assert response.headers["X-Instance-Id"] == instance_id
    return str(contribution_id)


def conserved(state: dict[str, Any]) -> None:
    """contributions + seed funding = pot balances + reserves + house + wins, exactly."""
    totals = state["totals"]
    held = sum(
        (p["current_value"] + p["reserve"] for p in state["pots"].values()), start=Decimal(0)
    )
    assert totals["contributions"] + totals["seed_funding"] == (
        held + totals["house"] + totals["wins"]
    )


SPLIT_POTS = [
    pot("alpha", "0.333333", reserve_share="0.15", seed="5"),
    pot("beta", "0.25", reserve_share="0.1"),
]
SPLIT_HOUSE = "0.416667"


# -- amounts ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("instance_currency", "fixed", "currency", "brand"),
    [
        ("EUR", "0.125", "EUR", "demo:brand1"),  # pays 0.12, credits 0.12
        ("EUR", "0.375", "USD", "demo:brand1"),  # 0.405 USD -> 0.40
        ("EUR", "0.375", "USD", "demo:brand2"),  # brand2's USD 1.10: 0.4125 -> 0.41
        ("EUR", "0.25", "JPY", "demo:brand1"),  # 40.5 JPY -> 40
        ("EUR", "0.75", "JPY", "demo:brand2"),  # 121.5 JPY -> 121
        ("JPY", "100", "EUR", "demo:brand1"),  # 0.617283.. EUR -> 0.61
        ("JPY", "100", "USD", "demo:brand2"),  # 0.679012.. USD -> 0.67
        ("USD", "0.27", "JPY", "demo:brand1"),  # 40.5 JPY -> 40
    ],
)
async def test_fixed_contribution_charges_whole_minor_units_and_credits_their_worth(
    client: QuartClient,
    headers: dict[str, str],
    instance_currency: str,
    fixed: str,
    currency: str,
    brand: str,
) -> None:
    definition = await create_instance(
        client,
        headers,
        instance(
            "fixed",
            currency=instance_currency,
            contribution_type={"Fixed": fixed},
            pots=SPLIT_POTS,
            house_share=SPLIT_HOUSE,
        ),
    )
    before = await view(client, headers, "fixed")
    started = int(time.time() * 1000)
    response = await post(
        client,
        CONTRIBUTE,
        v1_body("fixed", currency=currency, brand_id=brand, base_wager=Decimal("3.21")),
        headers,
    )
    assert response.status_code == 200, await response.get_data(as_text=True)
    check_headers(response, "fixed")
    body = await exact_json(response)
    rates = rates_of(brand)
    expected_amount = charge(Decimal(fixed), instance_currency, currency, rates)
    amount = to_instance(expected_amount, currency, instance_currency, rates)
    assert body["contribution_amount"] == expected_amount
    assert body == {
        "instance_id": "fixed",
        "timestamp": body["timestamp"],
        "gameround_id": "round-1",
        "win_amount": None,
        "win_pot_id": None,
        "tickets_awarded": 0,
        "raffle_round": None,
        "win_withheld": False,
        "contribution_currency": currency,
        "contribution_amount": expected_amount,
        "metadata": None,
    }
    assert started <= body["timestamp"] <= int(time.time() * 1000)

    after = await view(client, headers, "fixed")
    parts, house = split(amount, definition["pots"])
    for pot_id, (to_value, to_reserve) in parts.items():
        assert after["pots"][pot_id]["current_value"] == (
            before["pots"][pot_id]["current_value"] + units(to_value)
        )
        assert after["pots"][pot_id]["reserve"] == before["pots"][pot_id]["reserve"] + units(
            to_reserve
        )
    assert after["totals"]["contributions"] == before["totals"]["contributions"] + units(amount)
    assert after["totals"]["house"] == before["totals"]["house"] + units(house)
    assert after["totals"]["wins"] == 0
    conserved(after)


@ON_EVERY_BACKEND
async def test_split_floors_each_pot_and_gives_the_remainder_to_the_house(
    client: QuartClient, headers: dict[str, str]
) -> None:
    """0.18 into 33.3333% (15% reserved) and 25% (10% reserved): the floors are visible."""
    await create_instance(
        client,
        headers,
        instance(
            "split",
            contribution_type={"Fixed": "0.18"},
            pots=SPLIT_POTS,
            house_share=SPLIT_HOUSE,
        ),
    )
    for _ in range(3):
        response = await post(client, CONTRIBUTE, v1_body("split"), headers)
        assert response.status_code == 200
    state = await view(client, headers, "split")
    # alpha: part floor(180000 * 0.333333) = 59999, reserve floor(59999 * 0.15) = 8999
    assert state["pots"]["alpha"] == {
        "current_value": Decimal("5") + 3 * Decimal("0.051000"),
        "reserve": 3 * Decimal("0.008999"),
        "seed_deficit": 0,
    }
    # beta: part 45000, reserve 4500; the house keeps 180000 - 59999 - 45000 = 75001
    assert state["pots"]["beta"] == {
        "current_value": 3 * Decimal("0.0405"),
        "reserve": 3 * Decimal("0.0045"),
        "seed_deficit": 0,
    }
    assert state["totals"] == {
        "contributions": Decimal("0.54"),
        "seed_funding": Decimal("5"),
        "boosts": 0,
        "house": 3 * Decimal("0.075001"),
        "wins": 0,
        "returned": 0,
    }
    ledger = await client.get("/admin/instances/split/ledger", headers=headers)
    entries = [e for e in (await exact_json(ledger))["entries"] if e["type"] == "contribution"]
    assert [(e["amount"], e["house"]) for e in entries] == [("180000", "75001")] * 3
    assert [e["pot:alpha:reserve"] for e in entries] == ["8999"] * 3


@pytest.mark.parametrize(
    ("instance_currency", "pct", "wager", "currency", "brand", "limits"),
    [
        ("EUR", "0.015", "12.34", "EUR", "demo:brand1", {}),  # 0.1851 -> pays 0.18
        ("EUR", "0.015", "12.34", "USD", "demo:brand1", {}),  # 0.18 USD -> 0.166666 EUR
        ("EUR", "0.015", "12.34", "USD", "demo:brand2", {}),  # 0.18 USD -> 0.163636 EUR
        ("EUR", "0.015", "1234", "JPY", "demo:brand1", {}),  # 18.51 -> pays 18 JPY
        ("EUR", "0.015", "12.34", "USD", "demo:brand1", {"USD": {"max": "0.10"}}),  # capped
        ("EUR", "0.015", "12.34", "EUR", "demo:brand1", {"USD": {"max": "0.10"}}),  # not EUR
        ("EUR", "0.015", "0", "EUR", "demo:brand1", {}),  # a base wager of 0 is valid
        ("EUR", "0.0001", "0.99", "EUR", "demo:brand1", {}),  # 0.000099 -> pays 0.00
        ("JPY", "0.01", "10.00", "EUR", "demo:brand1", {}),  # 0.10 EUR -> 16.2 JPY
        ("JPY", "0.01", "777", "JPY", "demo:brand1", {"JPY": {"max": "5"}}),  # 7 -> 5 JPY
    ],
)
async def test_percentage_contribution_floors_to_minor_units_caps_and_converts_down(
    client: QuartClient,
    headers: dict[str, str],
    instance_currency: str,
    pct: str,
    wager: str,
    currency: str,
    brand: str,
    limits: dict[str, Any],
) -> None:
    definition = await create_instance(
        client,
        headers,
        instance(
            "pct",
            currency=instance_currency,
            contribution_type={"Percentage": pct},
            contribution_limits=limits,
            pots=[pot("main", "0.6", reserve_share="0.125")],
            house_share="0.4",
        ),
    )
    rates = rates_of(brand)
    paid = floor_player(Decimal(wager) * Decimal(pct), currency)
    if currency in limits:
        paid = min(paid, Decimal(limits[currency]["max"]))
    amount = to_instance(paid, currency, instance_currency, rates)

    response = await post(
        client,
        CONTRIBUTE,
        v1_body("pct", currency=currency, brand_id=brand, base_wager=Decimal(wager)),
        headers,
    )
    assert response.status_code == 200, await response.get_data(as_text=True)
    body = await exact_json(response)
    assert body["contribution_currency"] == currency
    assert body["contribution_amount"] == to_player(amount, instance_currency, currency, rates)
    assert body["contribution_amount"] == paid  # what the player pays, in whole minor units

    state = await view(client, headers, "pct")
    parts, house = split(amount, definition["pots"])
    to_value, to_reserve = parts["main"]
    assert state["pots"]["main"]["current_value"] == units(to_value)
    assert state["pots"]["main"]["reserve"] == units(to_reserve)
    assert state["totals"]["contributions"] == units(amount)
    assert state["totals"]["house"] == units(house)
    conserved(state)


@pytest.mark.parametrize(
    ("instance_currency", "wager", "currency", "brand"),
    [
        ("EUR", "108", "USD", "demo:brand1"),  # pays 1.08 USD = 1 EUR exactly
        ("EUR", "16200", "JPY", "demo:brand1"),  # 162 JPY = 1 EUR
        ("SEK", "43", "GBP", "demo:brand1"),  # 0.43 GBP = 5.7 SEK (not 5.699999)
        ("SEK", "22", "USD", "demo:brand2"),  # 0.22 USD at 1.10 = 2.28 SEK (not 2.279999)
        ("SEK", "1", "USD", "demo:brand2"),  # 0.01 USD = 0.103636.. SEK: rounded down
    ],
)
async def test_an_exactly_convertible_payment_enters_the_jackpot_exactly(
    client: QuartClient,
    headers: dict[str, str],
    instance_currency: str,
    wager: str,
    currency: str,
    brand: str,
) -> None:
    """Rounding down to micros must not lose a micro to a rounded reciprocal rate."""
    await create_instance(
        client,
        headers,
        instance(
            "exact",
            currency=instance_currency,
            contribution_type={"Percentage": "0.01"},
            house_share="0.3",
        ),
    )
    rates = rates_of(brand)
    paid = floor_player(Decimal(wager) * Decimal("0.01"), currency)
    amount = to_instance(paid, currency, instance_currency, rates)
    exact = paid * rates[instance_currency] / rates[currency]
    assert units(amount) == exact.quantize(Decimal("0.000001"), rounding=ROUND_DOWN)
    response = await post(
        client,
        CONTRIBUTE,
        v1_body("exact", base_wager=Decimal(wager), currency=currency, brand_id=brand),
        headers,
    )
    assert (await exact_json(response))["contribution_amount"] == paid
    state = await view(client, headers, "exact")
    assert state["totals"]["contributions"] == units(amount)
    assert state["pots"]["main"]["current_value"] == units(amount * 700_000 // 1_000_000)


@ON_EVERY_BACKEND
async def test_a_preferred_value_converts_exactly(
    client: QuartClient, headers: dict[str, str]
) -> None:
    await create_instance(client, headers, instance("pref-exact", opt_in_required=True))
    await opt_in(
        client,
        headers,
        "pref-exact",
        True,
        contribution_value=Decimal("1.08"),
        contribution_currency="USD",
    )
    response = await post(client, CONTRIBUTE, v1_body("pref-exact"), headers)
    assert (await exact_json(response))["contribution_amount"] == Decimal("1.00")
    state = await view(client, headers, "pref-exact")
    assert state["totals"]["contributions"] == Decimal("1")


@ON_EVERY_BACKEND
async def test_a_contribution_of_zero_is_recorded_but_triggers_nothing(
    client: QuartClient, headers: dict[str, str]
) -> None:
    """A base wager of 0 on a Percentage instance: no money moves, even a certain hit fails."""
    await create_instance(
        client,
        headers,
        instance(
            "zero",
            contribution_type={"Percentage": "0.05"},
            pots=[pot("sure", "0.7", hit_rate(1), seed="4")],
        ),
    )
    body = v1_body("zero", base_wager=0)
    del body["gameround_id"]
    response = await post(client, CONTRIBUTE, body, headers)
    assert response.status_code == 200
    result = await exact_json(response)
    assert (result["win_amount"], result["win_pot_id"], result["gameround_id"]) == (None,) * 3
    assert result["contribution_amount"] == 0
    state = await view(client, headers, "zero")
    assert state["pots"]["sure"]["current_value"] == Decimal("4")
    assert state["totals"]["contributions"] == 0
    ledger = await client.get("/admin/instances/zero/ledger", headers=headers)
    (entry,) = [e for e in (await exact_json(ledger))["entries"] if e["type"] == "contribution"]
    assert (entry["amount"], entry["gameround"]) == ("0", "")


# -- opt-in ---------------------------------------------------------------------------------
async def opt_in(
    client: QuartClient, headers: dict[str, str], instance_id: str, opted: bool, **fields: Any
) -> Any:
    body = {
        "instance_id": instance_id,
        "player_id": "p1",
        "brand_id": "demo:brand1",
        "player_country": "DE",
        "opt_in": opted,
        **fields,
    }
    response = await post(client, "/jackpots/optin", body, headers)
    assert response.status_code == 200, await response.get_data(as_text=True)
    return await exact_json(response)


@ON_EVERY_BACKEND
async def test_an_opted_in_preferred_value_replaces_the_fixed_amount(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    definition = await create_instance(
        client,
        headers,
        instance(
            "optin",
            opt_in_required=True,
            contribution_type={"Fixed": "0.10"},
            contribution_limits={"EUR": {"min": "0.01", "max": "5.00"}},
        ),
    )
    status = await opt_in(
        client,
        headers,
        "optin",
        True,
        contribution_value=Decimal("0.50"),
        contribution_currency="USD",
    )
    assert (status["contribution_value"], status["contribution_currency"]) == (
        Decimal("0.5"),
        "USD",
    )
    # One charge rule (issue 25, defect 7): the preference is charged in the currency paid,
    # rounded down to its minor units, and credited at what that charge is worth.
    in_eur = charge(Decimal("0.50"), "USD", "EUR", MULTIPLIERS)  # 0.462962... -> 0.46 EUR
    assert in_eur == Decimal("0.46")
    response = await post(client, CONTRIBUTE, v1_body("optin", currency="EUR"), headers)
    assert response.status_code == 200, await response.get_data(as_text=True)
    assert (await exact_json(response))["contribution_amount"] == in_eur
    response = await post(client, CONTRIBUTE, v1_body("optin", currency="USD"), headers)
    assert (await exact_json(response))["contribution_amount"] == Decimal("0.50")
    credited = [micros(in_eur), to_instance(Decimal("0.50"), "USD", "EUR", MULTIPLIERS)]
    state = await view(client, headers, "optin")
    splits = [split(amount, definition["pots"]) for amount in credited]
    assert state["pots"]["main"]["current_value"] == sum(units(p["main"][0]) for p, _ in splits)
    assert state["totals"]["contributions"] == sum(units(amount) for amount in credited)
    assert state["totals"]["house"] == sum(units(house) for _, house in splits)

    # Opting in again without a value goes back to the instance's fixed amount.
    await opt_in(client, headers, "optin", True)
    response = await post(client, CONTRIBUTE, v1_body("optin", currency="EUR"), headers)
    assert (await exact_json(response))["contribution_amount"] == Decimal("0.10")

    # Opted out: refused, and nothing changes.
    await opt_in(client, headers, "optin", False)
    frozen = await snapshot(gateway.store, "optin")
    response = await post(client, CONTRIBUTE, v1_body("optin"), headers)
    assert await error_of(response) == (403, "NOT_OPTED_IN", {})
    assert await snapshot(gateway.store, "optin") == frozen


@ON_EVERY_BACKEND
async def test_a_player_who_never_opted_in_is_refused_when_opt_in_is_required(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    await create_instance(client, headers, instance("must-opt", opt_in_required=True))
    frozen = await snapshot(gateway.store, "must-opt")
    response = await post(client, CONTRIBUTE, v1_body("must-opt", player_id="new"), headers)
    assert await error_of(response) == (403, "NOT_OPTED_IN", {})
    assert await snapshot(gateway.store, "must-opt") == frozen


# -- wins -------------------------------------------------------------------------------------
async def winners_of(client: QuartClient, headers: dict[str, str], instance_id: str) -> Any:
    response = await client.get(f"/jackpots/instances/{instance_id}/winners", headers=headers)
    assert response.status_code == 200, await response.get_data(as_text=True)
    return await exact_json(response)


@ON_EVERY_BACKEND
@pytest.mark.parametrize(
    ("currency", "brand", "limit", "withheld"),
    [
        ("EUR", "demo:brand1", None, False),
        ("USD", "demo:brand2", "10.8", False),  # a win equal to the limit is paid out
        ("JPY", "demo:brand1", "10.799999", True),  # above the limit: withheld
    ],
)
async def test_a_forced_hit_wins_the_pot_reseeds_it_and_lists_the_winner(
    client: QuartClient,
    headers: dict[str, str],
    currency: str,
    brand: str,
    limit: str | None,
    withheld: bool,
) -> None:
    await create_instance(
        client,
        headers,
        instance(
            "hit",
            contribution_type={"Fixed": "2.00"},
            auto_payout_limit=limit,
            pots=[pot("mini", "0.5", hit_rate(1), reserve_share="0.2", seed="10")],
            house_share="0.5",
        ),
    )
    before = await view(client, headers, "hit")
    response = await post(
        client,
        CONTRIBUTE,
        v1_body("hit", currency=currency, brand_id=brand, player_id="lucky"),
        headers,
    )
    assert response.status_code == 200, await response.get_data(as_text=True)
    contribution_id = check_headers(response, "hit")
    body = await exact_json(response)
    # 2.00: 1.00 to the pot (0.20 of it to the reserve), 1.00 to the house; the pot of
    # 10 + 0.80 is won; the reseed takes the reserve's 0.20 and 9.80 of operator money.
    win = micros("10.8")
    rates = rates_of(brand)
    assert body["win_pot_id"] == "mini"
    assert body["win_amount"] == to_player(win, "EUR", currency, rates)
    assert body["contribution_amount"] == to_player(micros("2"), "EUR", currency, rates)
    assert body["win_withheld"] is withheld

    after = await view(client, headers, "hit")
    assert after["pots"]["mini"] == {
        "current_value": Decimal("10"),
        "reserve": Decimal("0"),
        "seed_deficit": Decimal("9.8"),
    }
    assert after["totals"]["wins"] == units(win)
    assert after["totals"]["seed_funding"] == before["totals"]["seed_funding"] + Decimal("9.8")
    conserved(after)

    assert await winners_of(client, headers, "hit") == [
        {
            "win_id": contribution_id,
            "instance_id": "hit",
            "win_pot_id": "mini",
            "brand_id": brand,
            "player_id": "lucky",
            "win_amount": Decimal("10.8"),
            "currency": "EUR",
            "timestamp": body["timestamp"],
            "win_withheld": withheld,
            "gameround_id": "round-1",
            "source_id": None,
        }
    ]


@ON_EVERY_BACKEND
@pytest.mark.parametrize("high_first", [True, False])
async def test_when_several_pots_hit_the_highest_wins_and_the_others_keep_their_value(
    client: QuartClient, headers: dict[str, str], high_first: bool
) -> None:
    pots = [
        pot("high", "0.25", hit_rate(1), seed="50"),
        pot("low", "0.25", hit_rate(1), seed="5"),
    ]
    await create_instance(
        client,
        headers,
        instance(
            "multi",
            contribution_type={"Fixed": "2.00"},
            pots=pots if high_first else pots[::-1],
            house_share="0.5",
        ),
    )
    response = await post(client, CONTRIBUTE, v1_body("multi"), headers)
    body = await exact_json(response)
    assert (body["win_pot_id"], body["win_amount"]) == ("high", Decimal("50.50"))
    state = await view(client, headers, "multi")
    assert state["pots"]["high"]["current_value"] == Decimal("50")  # reseeded
    assert state["pots"]["low"]["current_value"] == Decimal("5.5")  # kept, with its part
    conserved(state)


@ON_EVERY_BACKEND
async def test_a_must_drop_by_pot_wins_when_lifted_to_its_drop_value(
    client: QuartClient, headers: dict[str, str]
) -> None:
    """Drop values are drawn in [10.6, 10.600001): exactly 10.6; each 1.00 lifts by 0.50."""
    await create_instance(
        client,
        headers,
        instance(
            "drop",
            pots=[pot("must", "0.5", must_drop("10.6", "10.600001"), seed="10", max_value="20")],
            house_share="0.5",
        ),
    )
    first = await exact_json(await post(client, CONTRIBUTE, v1_body("drop"), headers))
    assert (first["win_pot_id"], first["win_amount"]) == (None, None)
    second = await exact_json(
        await post(client, CONTRIBUTE, v1_body("drop", currency="JPY"), headers)
    )
    assert second["win_pot_id"] == "must"
    assert second["win_amount"] == to_player(micros("11"), "EUR", "JPY", MULTIPLIERS)  # 1782
    state = await view(client, headers, "drop")
    assert state["pots"]["must"] == {
        "current_value": Decimal("10"),
        "reserve": Decimal("0"),
        "seed_deficit": Decimal("10"),
    }
    assert state["totals"]["wins"] == Decimal("11")
    conserved(state)


# -- refusals ------------------------------------------------------------------------------
NOW_MS = int(time.time() * 1000)
REFUSAL_INSTANCES = [
    instance("open", blocked_countries=["US"]),
    instance("brand1-only", allowed_brands=["demo:brand1"]),
    instance("de-only", allowed_countries=["DE", "AT"]),
    instance("paused"),
    instance("terminated"),
    instance("pending", status="Pending", timestamp_start=NOW_MS + 24 * HOUR_MS),
    instance("not-started", timestamp_start=NOW_MS + 24 * HOUR_MS),
    instance("ended", timestamp_start=1, timestamp_end=2),
    instance("in-jpy", currency="JPY", contribution_type={"Fixed": "10"}),
    instance("in-usd", currency="USD", contribution_type={"Fixed": "1"}),
]


@pytest.fixture
async def refusal_instances(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> dict[str, Any]:
    for definition in REFUSAL_INSTANCES:
        await create_instance(client, headers, definition)
    await set_status(client, headers, "paused", "pause")
    await set_status(client, headers, "terminated", "terminate")
    return await snapshot(gateway.store)


REFUSALS: list[tuple[dict[str, Any], int, str]] = [
    ({"instance_id": "nope"}, 404, "INSTANCE_NOT_FOUND"),
    ({"brand_id": "rival:main"}, 403, "OPERATOR_FORBIDDEN"),
    ({"brand_id": "demo:brand9"}, 404, "BRAND_NOT_FOUND"),
    ({"brand_id": "brand9"}, 404, "BRAND_NOT_FOUND"),
    ({"instance_id": "brand1-only", "brand_id": "demo:brand2"}, 403, "BRAND_NOT_ALLOWED"),
    ({"instance_id": "brand1-only", "brand_id": "brand2"}, 403, "BRAND_NOT_ALLOWED"),
    ({"player_country": "US"}, 403, "COUNTRY_NOT_ALLOWED"),
    ({"instance_id": "de-only", "player_country": "FR"}, 403, "COUNTRY_NOT_ALLOWED"),
    ({"instance_id": "paused"}, 409, "INSTANCE_NOT_ACTIVE"),
    ({"instance_id": "terminated"}, 409, "INSTANCE_TERMINATED"),
    ({"instance_id": "pending"}, 409, "INSTANCE_NOT_ACTIVE"),
    ({"instance_id": "not-started"}, 409, "INSTANCE_NOT_STARTED"),
    ({"instance_id": "ended"}, 409, "INSTANCE_ENDED"),
    ({"currency": "XYZ"}, 422, "UNKNOWN_CURRENCY"),
    # within the schema's 1e9 but beyond it once converted to the instance currency
    ({"instance_id": "in-jpy", "base_wager": Decimal("1000000000")}, 422, "WAGER_TOO_LARGE"),
    ({"instance_id": "in-jpy", "base_wager": Decimal("6172840")}, 422, "WAGER_TOO_LARGE"),
    ({"instance_id": "in-usd", "base_wager": Decimal("999999999.99")}, 422, "WAGER_TOO_LARGE"),
]


@ON_EVERY_BACKEND
async def test_each_refusal_has_its_code_and_status_and_changes_nothing(
    client: QuartClient,
    gateway: Services,
    headers: dict[str, str],
    refusal_instances: dict[str, Any],
) -> None:
    wrong = []
    for fields, status, code in REFUSALS:
        response = await post(client, CONTRIBUTE, {**v1_body("open"), **fields}, headers)
        got_status, got_code, _ = await error_of(response)
        if (got_status, got_code) != (status, code) or "X-Contribution-Id" in response.headers:
            wrong.append((fields, got_status, got_code))
    assert wrong == []
    assert await snapshot(gateway.store) == refusal_instances


@ON_EVERY_BACKEND
async def test_the_largest_plausible_wager_is_still_accepted(
    client: QuartClient, headers: dict[str, str], refusal_instances: dict[str, Any]
) -> None:
    """1e9 units of the instance currency is the bound: 6172839 EUR is 999999918 JPY."""
    response = await post(
        client, CONTRIBUTE, v1_body("in-jpy", base_wager=Decimal("6172839")), headers
    )
    assert response.status_code == 200, await response.get_data(as_text=True)
    response = await post(
        client, CONTRIBUTE, v1_body("open", base_wager=Decimal("1000000000")), headers
    )
    assert response.status_code == 200, await response.get_data(as_text=True)


BAD_WAGERS: list[Any] = [
    -1,
    Decimal("-0.01"),
    "NaN",
    "nan",
    "Infinity",
    "-Infinity",
    "inf",
    True,
    False,
    "abc",
    "",
    "1,5",
    None,
    [1],
    {"value": 1},
    Decimal("1.0000001"),  # 7 decimal places
    "0.0000001",
    Decimal("1000000000.01"),  # above 1e9
    Decimal("1E+10"),
    "1e12",
]


@ON_EVERY_BACKEND
async def test_invalid_base_wagers_are_validation_errors_and_change_nothing(
    client: QuartClient,
    gateway: Services,
    headers: dict[str, str],
    refusal_instances: dict[str, Any],
) -> None:
    for wager in BAD_WAGERS:
        response = await post(client, CONTRIBUTE, v1_body("open", base_wager=wager), headers)
        status, code, details = await error_of(response)
        assert (status, code) == (400, "VALIDATION_ERROR"), wager
        assert list(details) == ["base_wager"], wager
    # Not JSON at all: NaN and Infinity literals.
    for literal in ("NaN", "Infinity", "-Infinity"):
        raw = (
            '{"instance_id":"open","token":"t","brand_id":"demo:brand1","player_id":"p1",'
            f'"player_country":"DE","base_wager":{literal},"currency":"EUR"}}'
        )
        response = await post(client, CONTRIBUTE, raw, headers)
        assert (await error_of(response))[:2] == (400, "MALFORMED_JSON"), literal
    assert await snapshot(gateway.store) == refusal_instances


REQUIRED = (
    "instance_id",
    "token",
    "brand_id",
    "player_id",
    "player_country",
    "base_wager",
    "currency",
)


@ON_EVERY_BACKEND
async def test_malformed_bodies_name_the_field_and_change_nothing(
    client: QuartClient,
    gateway: Services,
    headers: dict[str, str],
    refusal_instances: dict[str, Any],
) -> None:
    for name in REQUIRED:
        body = v1_body("open")
        del body[name]
        status, code, details = await error_of(await post(client, CONTRIBUTE, body, headers))
        assert (status, code, list(details)) == (400, "VALIDATION_ERROR", [name])
    status, code, details = await error_of(
        await post(client, CONTRIBUTE, v1_body("open", bonus=True), headers)
    )
    assert (status, code, list(details)) == (400, "VALIDATION_ERROR", ["bonus"])
    for name, value in [
        ("currency", "eur"),
        ("player_country", "DEU"),
        ("player_id", ""),
        ("idempotency_key", "has space"),
        ("callback", {"url": "ftp://example.com/x"}),
        ("gameround_id", 12),
    ]:
        status, code, details = await error_of(
            await post(client, CONTRIBUTE, v1_body("open", **{name: value}), headers)
        )
        assert (status, code, list(details)) == (400, "VALIDATION_ERROR", [name]), name
    for raw in ("", "[]", "not json", "null"):
        status, code, _ = await error_of(await post(client, CONTRIBUTE, raw, headers))
        assert status == 400, raw
    assert await snapshot(gateway.store) == refusal_instances


@ON_EVERY_BACKEND
async def test_a_token_is_required(
    client: QuartClient, gateway: Services, refusal_instances: dict[str, Any]
) -> None:
    response = await post(client, CONTRIBUTE, v1_body("open"), {})
    assert (await error_of(response))[:2] == (401, "MISSING_TOKEN")
    assert await snapshot(gateway.store) == refusal_instances


# -- idempotency ----------------------------------------------------------------------------
@ON_EVERY_BACKEND
async def test_a_repeated_idempotency_key_answers_204_with_the_first_headers(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    await create_instance(client, headers, instance("idem"))
    body = v1_body("idem", idempotency_key="bet-1:a_b.c", metadata={"n": 1})
    first = await post(client, CONTRIBUTE, body, headers)
    assert first.status_code == 200
    frozen = await snapshot(gateway.store, "idem")

    again = await post(client, CONTRIBUTE, body, headers)
    assert again.status_code == 204
    assert await again.get_data() == b""
    for name in ("X-Contribution-Id", "X-Instance-Id"):
        assert again.headers[name] == first.headers[name]
    # The same request written differently (key order, 2.0 for 2.00) is the same request.
    reordered = dict(reversed(list({**body, "base_wager": Decimal("2.0")}.items())))
    assert (await post(client, CONTRIBUTE, reordered, headers)).status_code == 204
    assert await snapshot(gateway.store, "idem") == frozen

    for changed in (
        {"base_wager": Decimal("2.01")},
        {"player_id": "p2"},
        {"metadata": {"n": 2}},
        {"gameround_id": "round-2"},
    ):
        response = await post(client, CONTRIBUTE, {**body, **changed}, headers)
        assert await error_of(response) == (409, "IDEMPOTENCY_MISMATCH", {}), changed
    assert await snapshot(gateway.store, "idem") == frozen

    # Another key, or none, is another contribution.
    for key in ("bet-2", None):
        response = await post(client, CONTRIBUTE, {**body, "idempotency_key": key}, headers)
        assert response.status_code == 200
        assert response.headers["X-Contribution-Id"] != first.headers["X-Contribution-Id"]
    assert (await view(client, headers, "idem"))["totals"]["contributions"] == 3


@ON_EVERY_BACKEND
async def test_an_idempotency_key_is_scoped_to_the_instance_and_the_operator(
    client: QuartClient,
    headers: dict[str, str],
    rival: dict[str, str],
    platform_auth: dict[str, str],
) -> None:
    shared = ["demo:brand1", "rival:main"]
    await create_instance(client, platform_auth, instance("shared-a", allowed_brands=shared))
    await create_instance(client, platform_auth, instance("shared-b", allowed_brands=shared))
    demo_body = v1_body("shared-a", idempotency_key="same-key")
    rival_body = v1_body("shared-a", idempotency_key="same-key", brand_id="rival:main")
    ids = set()
    for body, who in [
        (demo_body, headers),
        (rival_body, rival),  # another operator: its own key space
        ({**demo_body, "instance_id": "shared-b"}, headers),  # another instance
    ]:
        response = await post(client, CONTRIBUTE, body, who)
        assert response.status_code == 200, await response.get_data(as_text=True)
        ids.add(response.headers["X-Contribution-Id"])
    assert len(ids) == 3
    assert (await view(client, headers, "shared-a"))["totals"]["contributions"] == 2
    assert (await view(client, headers, "shared-b"))["totals"]["contributions"] == 1
    # Each operator's repeat replays its own first response.
    assert (await post(client, CONTRIBUTE, rival_body, rival)).status_code == 204
    assert (await post(client, CONTRIBUTE, demo_body, headers)).status_code == 204


@ON_EVERY_BACKEND
async def test_concurrent_duplicates_apply_exactly_once(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    await create_instance(client, headers, instance("race"))
    body = v1_body("race", idempotency_key="race-1")
    responses = await asyncio.gather(*(post(client, CONTRIBUTE, body, headers) for _ in range(50)))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [204] * 49
    assert len({r.headers["X-Contribution-Id"] for r in responses}) == 1
    state = await view(client, headers, "race")
    assert state["totals"]["contributions"] == Decimal("1")
    assert state["pots"]["main"]["current_value"] == Decimal("0.7")
    ledger = await client.get("/admin/instances/race/ledger", headers=headers)
    entries = (await exact_json(ledger))["entries"]
    assert [e["type"] for e in entries].count("contribution") == 1


@ON_EVERY_BACKEND
@pytest.mark.parametrize("settings", [{"idempotency_ttl_s": 1}], indirect=True)
async def test_an_idempotency_key_expires_after_its_lifetime(
    client: QuartClient, headers: dict[str, str]
) -> None:
    await create_instance(client, headers, instance("expiring"))
    body = v1_body("expiring", idempotency_key="short-lived")
    first = await post(client, CONTRIBUTE, body, headers)
    assert first.status_code == 200
    assert (await post(client, CONTRIBUTE, body, headers)).status_code == 204
    await asyncio.sleep(1.1)
    later = await post(client, CONTRIBUTE, body, headers)
    assert later.status_code == 200
    assert later.headers["X-Contribution-Id"] != first.headers["X-Contribution-Id"]
    assert (await view(client, headers, "expiring"))["totals"]["contributions"] == 2


# -- pass-through data ------------------------------------------------------------------
METADATA = {
    "bet_id": "b-1",
    "odds": Decimal("1.25"),
    "stake": Decimal("0.10"),
    "big": 12345678901234567890,
    "nested": {"list": [1, Decimal("2.5"), None, True, "é"]},
    "empty": {},
}


@pytest.mark.parametrize("metadata", [METADATA, "text", Decimal("1.25"), 7, [], None])
async def test_metadata_is_echoed_exactly(
    client: QuartClient, headers: dict[str, str], metadata: Any
) -> None:
    await create_instance(client, headers, instance("meta"))
    response = await post(client, CONTRIBUTE, v1_body("meta", metadata=metadata), headers)
    assert response.status_code == 200
    assert (await exact_json(response))["metadata"] == metadata
    text = await response.get_data(as_text=True)
    if metadata is METADATA:
        assert '"odds":1.25' in text.replace(" ", "")


@ON_EVERY_BACKEND
async def test_event_metadata_is_attached_to_the_win_event(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    await create_instance(
        client,
        headers,
        instance(
            "evented",
            pots=[pot("mini", "0.5", hit_rate(1), seed="10")],
            house_share="0.5",
        ),
    )
    response = await post(
        client,
        CONTRIBUTE,
        v1_body("evented", event_metadata=METADATA, metadata={"mine": True}, currency="USD"),
        headers,
    )
    body = await exact_json(response)
    assert body["win_pot_id"] == "mini"
    assert body["metadata"] == {"mine": True}
    events = await gateway.store.client.xrevrange("{jp:evented}:events")
    assert len(events) == 1
    envelope = json.loads(events[0][1]["payload"], parse_float=Decimal)
    assert envelope["event_type"] == "JackpotWinEvent"
    data = envelope["data"]
    assert data["metadata"] == METADATA
    assert (data["instance_id"], data["win_pot_id"], data["player_id"]) == (
        "evented",
        "mini",
        "p1",
    )
    assert (data["win_amount"], data["jackpot_currency"]) == ("10.5", "EUR")
    # the event belongs to this contribution: its win record has the same moment
    win = await gateway.store.win("evented", response.headers["X-Contribution-Id"])
    assert win is not None and (win.timestamp, win.win_pot_id) == (data["timestamp"], "mini")


# -- by source --------------------------------------------------------------------------------
async def put_source(
    client: QuartClient, headers: dict[str, str], source_id: str, instance_ids: list[str]
) -> None:
    response = await post(
        client,
        "/admin/sources",
        {
            "source_id": source_id,
            "owner_id": "demo:brand1",
            "source_name": source_id.title(),
            "instance_ids": instance_ids,
        },
        headers,
    )
    assert response.status_code == 200, await response.get_data(as_text=True)


@ON_EVERY_BACKEND
async def test_by_source_uses_the_active_instance_and_a_pending_one_only_as_a_fallback(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    # Due to start a second ago; the scheduler (not running here) has not activated it yet.
    start = int(time.time() * 1000) - 1000
    await create_instance(
        client, headers, instance("later", status="Pending", timestamp_start=start)
    )
    await create_instance(client, headers, instance("now", blocked_countries=["FR"]))
    await put_source(client, headers, "slot", ["later", "now"])

    response = await post(client, BY_SOURCE, source_body("slot"), headers)
    assert response.status_code == 200, await response.get_data(as_text=True)
    check_headers(response, "now")
    assert (await exact_json(response))["instance_id"] == "now"

    # The Active one is not for players in FR: the Pending one is chosen, and refuses.
    frozen = await snapshot(gateway.store)
    response = await post(client, BY_SOURCE, source_body("slot", player_country="FR"), headers)
    status, code, _ = await error_of(response)
    assert (status, code) == (409, "INSTANCE_NOT_ACTIVE")
    assert "later" in (await exact_json(response))["error"]
    assert await snapshot(gateway.store) == frozen

    # No Active instance left: the Pending one again, until it is activated.
    assert await set_status(client, headers, "now", "pause") == "Paused"
    response = await post(client, BY_SOURCE, source_body("slot"), headers)
    assert (await error_of(response))[:2] == (409, "INSTANCE_NOT_ACTIVE")
    assert await set_status(client, headers, "later", "activate") == "Active"
    assert (await view(client, headers, "later"))["status"] == "Active"
    response = await post(client, BY_SOURCE, source_body("slot"), headers)
    assert response.status_code == 200
    check_headers(response, "later")
    # With both Active, the first Active eligible one in the source's order.
    assert await set_status(client, headers, "now", "resume") == "Active"
    response = await post(client, BY_SOURCE, source_body("slot"), headers)
    check_headers(response, "later")
    assert (await view(client, headers, "now"))["totals"]["contributions"] == 1
    assert (await view(client, headers, "later"))["totals"]["contributions"] == 2


@ON_EVERY_BACKEND
async def test_by_source_records_the_source_on_the_win(
    client: QuartClient, headers: dict[str, str]
) -> None:
    await create_instance(
        client,
        headers,
        instance("sourced", pots=[pot("mini", "0.7", hit_rate(1), seed="1")]),
    )
    await put_source(client, headers, "game-1", ["sourced"])
    response = await post(
        client, BY_SOURCE, source_body("game-1", gameround_id="gr-77", currency="JPY"), headers
    )
    body = await exact_json(response)
    assert (body["win_pot_id"], body["win_amount"]) == ("mini", Decimal("275"))  # 1.7 EUR
    assert body["contribution_amount"] == Decimal("162")
    (winner,) = await winners_of(client, headers, "sourced")
    assert (winner["source_id"], winner["gameround_id"]) == ("game-1", "gr-77")


@ON_EVERY_BACKEND
async def test_by_source_refusals(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    await create_instance(client, headers, instance("vip-only", segments=["vip", "gold"]))
    await create_instance(client, headers, instance("closed"))
    await set_status(client, headers, "closed", "terminate")
    await put_source(client, headers, "vip-game", ["vip-only"])
    await put_source(client, headers, "closed-game", ["closed"])
    frozen = await snapshot(gateway.store)
    cases = [
        (source_body("nope"), 404, "SOURCE_NOT_FOUND"),
        # sources belong to a brand: brand2 has no source vip-game
        (source_body("vip-game", brand_id="demo:brand2"), 404, "SOURCE_NOT_FOUND"),
        (source_body("vip-game", brand_id="rival:main"), 403, "OPERATOR_FORBIDDEN"),
        (source_body("vip-game", brand_id="brand7"), 404, "BRAND_NOT_FOUND"),
        (source_body("vip-game"), 403, "SEGMENT_NOT_ALLOWED"),
        (source_body("vip-game", segments=["bronze"]), 403, "SEGMENT_NOT_ALLOWED"),
        (source_body("vip-game", segments=None), 403, "SEGMENT_NOT_ALLOWED"),
        (source_body("vip-game", segments=["gold"], currency="ABC"), 422, "UNKNOWN_CURRENCY"),
        (source_body("closed-game"), 404, "NO_ACTIVE_INSTANCE"),
        (source_body("vip-game", segments=["gold"], base_wager=-1), 400, "VALIDATION_ERROR"),
        ({**source_body("vip-game"), "instance_id": "vip-only"}, 400, "VALIDATION_ERROR"),
    ]
    for body, status, code in cases:
        got = await error_of(await post(client, BY_SOURCE, body, headers))
        assert got[:2] == (status, code), body
    assert await snapshot(gateway.store) == frozen
    response = await post(
        client, BY_SOURCE, source_body("vip-game", segments=["bronze", "gold"]), headers
    )
    assert response.status_code == 200
    check_headers(response, "vip-only")


@ON_EVERY_BACKEND
@pytest.mark.parametrize("name", ["metadata", "event_metadata"])
async def test_pass_through_data_is_limited_to_8_kib_of_json(
    client: QuartClient, gateway: Services, headers: dict[str, str], name: str
) -> None:
    await create_instance(client, headers, instance("sized"))
    filler = '{"x":""}'
    at_limit = {"x": "a" * (8192 - len(filler))}  # exactly 8192 bytes of compact JSON
    response = await post(client, CONTRIBUTE, v1_body("sized", **{name: at_limit}), headers)
    assert response.status_code == 200, await response.get_data(as_text=True)
    frozen = await snapshot(gateway.store, "sized")
    too_big = {"x": "a" * (8193 - len(filler))}
    response = await post(client, CONTRIBUTE, v1_body("sized", **{name: too_big}), headers)
    status, code, details = await error_of(response)
    assert (status, code, list(details)) == (400, "VALIDATION_ERROR", [name])
    assert await snapshot(gateway.store, "sized") == frozen


@pytest.mark.parametrize(
    ("currency", "paid"),
    [("JPY", Decimal("16")), ("USD", Decimal("0.10")), ("EUR", Decimal("0.1"))],
)
async def test_a_preferred_value_is_charged_what_is_credited_in_every_currency(
    client: QuartClient, gateway: Services, headers: dict[str, str], currency: str, paid: Decimal
) -> None:
    """Issue 25, defect 7: a 0.10 EUR preference paid in JPY charges 16 JPY and credits what 16
    JPY is worth (98,765 micro-units), in USD 0.10 USD and its worth: the Fixed rule."""
    await create_instance(
        client,
        headers,
        instance("pref", opt_in_required=True, contribution_type={"Fixed": "1.00"}),
    )
    await opt_in(
        client,
        headers,
        "pref",
        True,
        contribution_value=Decimal("0.10"),
        contribution_currency="EUR",
    )
    response = await post(client, CONTRIBUTE, v1_body("pref", currency=currency), headers)
    answered = await exact_json(response)
    assert response.status_code == 200, answered
    assert answered["contribution_amount"] == paid
    credited = to_instance(paid, currency, "EUR", MULTIPLIERS)
    state = await view(client, headers, "pref")
    assert state["totals"]["contributions"] == units(credited)
