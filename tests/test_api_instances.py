"""Operation 13 (the instance of a source for a brand and player) and the winners lists
(operations 11, 12) through the HTTP API."""

from __future__ import annotations

import time
from decimal import Decimal
from fractions import Fraction
from typing import Any
from urllib.parse import urlencode

import pytest
from quart.testing import QuartClient

from tests.conftest import BACKENDS
from tests.support.definitions import hit_rate, instance, pot, seeded_pots
from tests.support.http import contribution, create_instance, expect, put_source, set_status
from tests.support.money import convert_down, micros, pot_gain, units

DAY_MS = 86_400_000


pytestmark = pytest.mark.usefixtures("cheap_passwords")
ON_EVERY_BACKEND = pytest.mark.parametrize("redis_url", BACKENDS, indirect=True)


def view_url(
    source_id: str,
    brand_id: str = "demo:brand1",
    *,
    player_id: str | None = "p1",
    country_code: str | None = "DE",
    segments: str | None = None,
) -> str:
    query = {"player_id": player_id, "country_code": country_code, "segments": segments}
    params = urlencode({k: v for k, v in query.items() if v is not None})
    return f"/jackpots/instances/source/{source_id}/brand/{brand_id}?{params}"


async def view(client: QuartClient, headers: dict[str, str], source_id: str, **kwargs: Any) -> Any:
    brand_id = kwargs.pop("brand_id", "demo:brand1")
    response = await client.get(view_url(source_id, brand_id, **kwargs), headers=headers)
    return await expect(response, 200)


async def refused(
    client: QuartClient,
    headers: dict[str, str],
    status: int,
    code: str,
    source_id: str,
    **kwargs: Any,
) -> Any:
    brand_id = kwargs.pop("brand_id", "demo:brand1")
    response = await client.get(view_url(source_id, brand_id, **kwargs), headers=headers)
    return await expect(response, status, code)


async def contribute(
    client: QuartClient, headers: dict[str, str], body: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    """The contribution response and its X-Contribution-Id."""
    response = await client.post("/jackpots/contribute", json=body, headers=headers)
    result = await expect(response, 200)
    return result, response.headers["X-Contribution-Id"]


def pot_view(definition: dict[str, Any], value_micros: int) -> dict[str, Any]:
    return {
        "id": definition["id"],
        "name": definition["name"],
        "is_progressive": definition["is_progressive"],
        "current_value": units(value_micros),
    }


# -- operation 13: the instance, its live pots and the player's opt-in ------------------------
async def test_instance_of_a_source_with_seeds_then_live_pot_values(
    client: QuartClient, demo_headers: dict[str, str]
) -> None:
    # A Fixed amount whose split needs rounding down at every step.
    definition = instance("live", pots=seeded_pots(), contribution_type={"Fixed": "0.123457"})
    await create_instance(client, demo_headers, definition)
    await put_source(client, demo_headers, "live-src", ["live"])
    pots = definition["pots"]
    expected = {
        "id": "live",
        "name": definition["name"],
        "jackpot_type": "Jackpot",
        "currency": "EUR",
        "opt_in_required": False,
        "contribution_type": {"Fixed": Decimal("0.123457")},
        "optin_status": None,
        "pots": [pot_view(p, micros(p["seed"])) for p in pots],
        "timestamp_start": None,
        "timestamp_end": None,
        "status": "Active",
    }
    assert await view(client, demo_headers, "live-src") == expected

    # A USD player pays 0.13 USD (0.133333.. rounded down), worth 0.120370 EUR (rounded down).
    amount = micros("0.120370")
    for n in (1, 2):
        body = contribution("live", f"player-{n}", currency="USD")
        await contribute(client, demo_headers, body)
        expected["pots"] = [pot_view(p, micros(p["seed"]) + n * pot_gain(amount, p)) for p in pots]
        assert await view(client, demo_headers, "live-src") == expected
    # e.g. mini: 10 + 2 * (30092 - 4513) micros
    assert expected["pots"][0]["current_value"] == Decimal("10.051158")


async def test_percentage_raffle_shape_and_a_converted_contribution(
    client: QuartClient, demo_headers: dict[str, str]
) -> None:
    raffle_pot = pot("pool", "0.5", seed="0", reserve_share="0")
    definition = instance(
        "pct",
        name="Percent Raffle",
        jackpot_type="Raffle",
        contribution_type={"Percentage": "0.015"},
        house_share="0.5",
        pots=[raffle_pot],
        raffle={"ticket_cost": "1.00", "prizes": ["100"], "draw": {"every": "1d"}},
        timestamp_end=int(time.time() * 1000) + DAY_MS,
    )
    await create_instance(client, demo_headers, definition)
    await put_source(client, demo_headers, "pct-src", ["pct"])
    body = await view(client, demo_headers, "pct-src")
    assert body["jackpot_type"] == "Raffle"
    assert body["contribution_type"] == {"Percentage": Decimal("0.015")}
    assert body["timestamp_end"] == definition["timestamp_end"]
    assert body["pots"] == [pot_view(raffle_pot, 0)]

    # 10 USD at 1.5 %: the player pays 0.15 USD, the pot gets it in EUR, rounded down.
    await contribute(
        client, demo_headers, contribution("pct", "p1", base_wager="10", currency="USD")
    )
    paid = convert_down(Decimal("10") * Decimal("0.015"), Fraction(1) / Fraction("1.08"))
    body = await view(client, demo_headers, "pct-src")
    assert body["pots"] == [pot_view(raffle_pot, pot_gain(paid, raffle_pot))]
    assert body["pots"][0]["current_value"] == Decimal("0.069444")


async def test_optin_status_is_null_before_and_the_record_after(
    client: QuartClient, demo_headers: dict[str, str]
) -> None:
    await create_instance(client, demo_headers, instance("opt", opt_in_required=True))
    await put_source(client, demo_headers, "opt-src", ["opt"])
    assert (await view(client, demo_headers, "opt-src"))["optin_status"] is None

    opt_in = {
        "instance_id": "opt",
        "player_id": "p1",
        "brand_id": "demo:brand1",
        "player_country": "DE",
        "opt_in": True,
        "contribution_value": "0.25",
    }
    status = await expect(
        await client.post("/jackpots/optin", json=opt_in, headers=demo_headers), 200
    )
    body = await view(client, demo_headers, "opt-src")
    assert body["opt_in_required"] is True
    assert body["optin_status"] == status
    assert status["opted_in"] is True
    assert status["contribution_value"] == Decimal("0.25")
    assert status["contribution_currency"] == "EUR"
    assert status["contribution_count"] == 0

    await contribute(client, demo_headers, contribution("opt", "p1"))
    after = (await view(client, demo_headers, "opt-src"))["optin_status"]
    assert after["contribution_count"] == 1
    assert after["contribution_value"] == Decimal("0.25")
    # Another player, and the same player id of another brand, have no record.
    assert (await view(client, demo_headers, "opt-src", player_id="p2"))["optin_status"] is None
    await put_source(client, demo_headers, "opt-src", ["opt"], owner_id="demo:brand2")
    other_brand = await view(client, demo_headers, "opt-src", brand_id="demo:brand2")
    assert other_brand["optin_status"] is None


async def test_active_instance_first_else_pending(
    client: QuartClient, demo_headers: dict[str, str]
) -> None:
    start = int(time.time() * 1000) + DAY_MS
    await create_instance(
        client,
        demo_headers,
        instance("soon", fixed="0.10", pots=seeded_pots(), status="Pending", timestamp_start=start),
    )
    await create_instance(client, demo_headers, instance("now", fixed="0.10", pots=seeded_pots()))
    await put_source(client, demo_headers, "both", ["soon", "now"])

    body = await view(client, demo_headers, "both")
    assert (body["id"], body["status"]) == ("now", "Active")

    await set_status(client, demo_headers, "now", "terminate")
    body = await view(client, demo_headers, "both")
    assert (body["id"], body["status"], body["timestamp_start"]) == ("soon", "Pending", start)

    await set_status(client, demo_headers, "soon", "terminate")
    await refused(client, demo_headers, 404, "NO_ACTIVE_INSTANCE", "both")


async def test_an_instance_past_its_end_is_not_offered(
    client: QuartClient, demo_headers: dict[str, str]
) -> None:
    """Still Active (the scheduler has not terminated it yet) but past timestamp_end."""
    ended = int(time.time() * 1000) - 1000
    await create_instance(client, demo_headers, instance("over", timestamp_end=ended))
    await create_instance(client, demo_headers, instance("later"))
    await put_source(client, demo_headers, "over-src", ["over", "later"])
    await put_source(client, demo_headers, "only-over", ["over"])
    assert (await view(client, demo_headers, "over-src"))["id"] == "later"
    await refused(client, demo_headers, 404, "NO_ACTIVE_INSTANCE", "only-over")


async def test_a_paused_instance_is_not_offered(
    client: QuartClient, demo_headers: dict[str, str]
) -> None:
    await create_instance(client, demo_headers, instance("napping"))
    await put_source(client, demo_headers, "nap-src", ["napping"])
    await set_status(client, demo_headers, "napping", "pause")
    await refused(client, demo_headers, 404, "NO_ACTIVE_INSTANCE", "nap-src")
    await set_status(client, demo_headers, "napping", "resume")
    assert (await view(client, demo_headers, "nap-src"))["status"] == "Active"


async def test_unknown_source_is_not_found(
    client: QuartClient, demo_headers: dict[str, str]
) -> None:
    await refused(client, demo_headers, 404, "SOURCE_NOT_FOUND", "no-such-source")
    # Sources belong to one brand: starburst is brand1's.
    await refused(
        client, demo_headers, 404, "SOURCE_NOT_FOUND", "starburst", brand_id="demo:brand2"
    )
    assert (await view(client, demo_headers, "starburst"))["id"] == "daily-drop"


async def test_brand_not_allowed(client: QuartClient, demo_headers: dict[str, str]) -> None:
    await create_instance(client, demo_headers, instance("b1-only", allowed_brands=["demo:brand1"]))
    await put_source(client, demo_headers, "b1-src", ["b1-only"], owner_id="demo:brand2")
    await refused(client, demo_headers, 403, "BRAND_NOT_ALLOWED", "b1-src", brand_id="demo:brand2")


async def test_country_not_allowed(client: QuartClient, demo_headers: dict[str, str]) -> None:
    # sportsbook leads to daily-drop only, which blocks US.
    await refused(
        client,
        demo_headers,
        403,
        "COUNTRY_NOT_ALLOWED",
        "sportsbook",
        brand_id="demo:brand2",
        country_code="US",
    )
    # starburst also leads to weekly-raffle, which takes US players.
    assert (await view(client, demo_headers, "starburst", country_code="US"))[
        "id"
    ] == "weekly-raffle"
    # An allow-list refuses every other country.
    await create_instance(client, demo_headers, instance("dach", allowed_countries=["DE", "AT"]))
    await put_source(client, demo_headers, "dach-src", ["dach"])
    assert (await view(client, demo_headers, "dach-src", country_code="AT"))["id"] == "dach"
    await refused(client, demo_headers, 403, "COUNTRY_NOT_ALLOWED", "dach-src", country_code="FR")


async def test_segments_one_matching_segment_suffices(
    client: QuartClient, demo_headers: dict[str, str]
) -> None:
    await create_instance(client, demo_headers, instance("vip", segments=["vip", "gold"]))
    await put_source(client, demo_headers, "vip-src", ["vip"])
    await refused(client, demo_headers, 403, "SEGMENT_NOT_ALLOWED", "vip-src")
    await refused(client, demo_headers, 403, "SEGMENT_NOT_ALLOWED", "vip-src", segments="")
    await refused(
        client, demo_headers, 403, "SEGMENT_NOT_ALLOWED", "vip-src", segments="silver,bronze"
    )
    for segments in ("gold", "silver,gold", "silver, vip ,bronze", "vip,gold"):
        assert (await view(client, demo_headers, "vip-src", segments=segments))["id"] == "vip"


async def test_no_active_instance_when_all_are_terminated(
    client: QuartClient, demo_headers: dict[str, str]
) -> None:
    await create_instance(client, demo_headers, instance("old-1"))
    await create_instance(client, demo_headers, instance("old-2"))
    await put_source(client, demo_headers, "old-src", ["old-1", "old-2"])
    await set_status(client, demo_headers, "old-1", "terminate")
    assert (await view(client, demo_headers, "old-src"))["id"] == "old-2"
    await set_status(client, demo_headers, "old-2", "terminate")
    await refused(client, demo_headers, 404, "NO_ACTIVE_INSTANCE", "old-src")


async def test_instance_query_validation_and_scope(
    client: QuartClient, demo_headers: dict[str, str], rival_headers: dict[str, str]
) -> None:
    body = await refused(client, demo_headers, 400, "VALIDATION_ERROR", "starburst", player_id=None)
    assert "player_id" in body["details"]
    body = await refused(
        client, demo_headers, 400, "VALIDATION_ERROR", "starburst", country_code=None
    )
    assert "country_code" in body["details"]
    await refused(client, demo_headers, 400, "VALIDATION_ERROR", "starburst", country_code="de")
    await refused(client, demo_headers, 400, "VALIDATION_ERROR", "starburst", player_id="")
    # Another operator's brand, either way round.
    await refused(client, rival_headers, 403, "OPERATOR_FORBIDDEN", "starburst")
    await refused(
        client, demo_headers, 403, "OPERATOR_FORBIDDEN", "starburst", brand_id="rival:main"
    )
    await refused(client, demo_headers, 404, "BRAND_NOT_FOUND", "starburst", brand_id="brand9")
    # A bare brand id is the caller's.
    assert (await view(client, demo_headers, "starburst", brand_id="brand1"))["id"] == "daily-drop"
    response = await client.get(view_url("starburst"))
    assert response.status_code == 401


# -- operations 11, 12: winners ----------------------------------------------------------------
ALPHA = pot("alpha", "0.6", hit_rate(1), seed="5", reserve_share="0.1")  # hits every time
BETA = pot("beta", "0.2", hit_rate(10**12), seed="50")  # practically never


def winner(
    win_id: str,
    instance_id: str,
    brand_id: str,
    player_id: str,
    win_micros: int,
    timestamp: int,
    *,
    pot_id: str = "alpha",
    withheld: bool = False,
    gameround_id: str | None = None,
) -> dict[str, Any]:
    return {
        "win_id": win_id,
        "instance_id": instance_id,
        "win_pot_id": pot_id,
        "brand_id": brand_id,
        "player_id": player_id,
        "win_amount": units(win_micros),
        "currency": "EUR",
        "timestamp": timestamp,
        "win_withheld": withheld,
        "gameround_id": gameround_id,
        "source_id": None,
    }


async def winners(
    client: QuartClient, headers: dict[str, str], instance_id: str, query: str = ""
) -> Any:
    response = await client.get(
        f"/jackpots/instances/{instance_id}/winners{query}", headers=headers
    )
    return await expect(response, 200)


async def pot_winners(
    client: QuartClient, headers: dict[str, str], instance_id: str, query: str = ""
) -> Any:
    response = await client.get(
        f"/jackpots/instances/{instance_id}/winners/pots{query}", headers=headers
    )
    return await expect(response, 200)


@pytest.fixture
async def twelve_wins(client: QuartClient, demo_headers: dict[str, str]) -> list[dict[str, Any]]:
    """Twelve wins of the `hits` instance (Percentage 10 %, auto payout up to 5.3 EUR), oldest
    first, as the winners list should show them; the last one paid in USD."""
    limit = Decimal("5.3")
    await create_instance(
        client,
        demo_headers,
        instance(
            "hits",
            contribution_type={"Percentage": "0.1"},
            house_share="0.2",
            pots=[ALPHA, BETA],
            auto_payout_limit=str(limit),
        ),
    )
    expected = []
    for n in range(12):
        brand = ("demo:brand1", "demo:brand2")[n % 2]
        currency = "USD" if n == 11 else "EUR"
        body = contribution(
            "hits", f"p{n}", brand_id=brand, base_wager=f"{n + 1}.00", currency=currency
        )
        body["gameround_id"] = f"round-{n}"
        result, contribution_id = await contribute(client, demo_headers, body)
        # The player pays 10 % of the wager in whole cents; the pot gets it in EUR micros.
        paid = (Decimal(n + 1) * Decimal("0.1")).quantize(Decimal("0.01"))
        multiplier = {"demo:brand1": Fraction("1.08"), "demo:brand2": Fraction("1.10")}[brand]
        rate = 1 / multiplier if currency == "USD" else Fraction(1)
        amount = convert_down(paid, rate)
        win = micros(ALPHA["seed"]) + pot_gain(amount, ALPHA)  # the pot restarts at its seed
        assert result["win_pot_id"] == "alpha"
        # Shown in the player's currency, rounded half-even to cents.
        player_win = Decimal(round(Fraction(win, 10**6) / rate * 100)) / 100
        assert result["win_amount"] == player_win  # in the player's currency
        expected.append(
            winner(
                contribution_id,
                "hits",
                brand,
                f"p{n}",
                win,
                result["timestamp"],
                withheld=units(win) > limit,
                gameround_id=f"round-{n}",
            )
        )
    assert any(w["win_withheld"] for w in expected) and not all(w["win_withheld"] for w in expected)
    return expected


@ON_EVERY_BACKEND
async def test_winners_newest_first_with_limits(
    client: QuartClient, demo_headers: dict[str, str], twelve_wins: list[dict[str, Any]]
) -> None:
    newest_first = twelve_wins[::-1]
    assert await winners(client, demo_headers, "hits") == newest_first[:10]
    assert await winners(client, demo_headers, "hits", "?limit=3") == newest_first[:3]
    assert await winners(client, demo_headers, "hits", "?limit=100") == newest_first
    assert await winners(client, demo_headers, "hits", "?limit=0") == []
    for bad in ("101", "-1", "ten", "1.5"):
        response = await client.get(
            f"/jackpots/instances/hits/winners?limit={bad}", headers=demo_headers
        )
        await expect(response, 400, "VALIDATION_ERROR")


@ON_EVERY_BACKEND
async def test_winners_of_one_brand(
    client: QuartClient,
    demo_headers: dict[str, str],
    twelve_wins: list[dict[str, Any]],
) -> None:
    brand2 = [w for w in twelve_wins[::-1] if w["brand_id"] == "demo:brand2"]
    assert len(brand2) == 6
    assert await winners(client, demo_headers, "hits", "?brand_id=demo:brand2") == brand2
    assert await winners(client, demo_headers, "hits", "?brand_id=brand2&limit=2") == brand2[:2]
    for path in ("winners", "winners/pots"):
        response = await client.get(
            f"/jackpots/instances/hits/{path}?brand_id=rival:main", headers=demo_headers
        )
        await expect(response, 403, "OPERATOR_FORBIDDEN")
        response = await client.get(
            f"/jackpots/instances/hits/{path}?brand_id=demo:brand9", headers=demo_headers
        )
        await expect(response, 404, "BRAND_NOT_FOUND")


@ON_EVERY_BACKEND
async def test_pot_winners_map_keyed_by_pot(
    client: QuartClient, demo_headers: dict[str, str], twelve_wins: list[dict[str, Any]]
) -> None:
    newest_first = twelve_wins[::-1]
    assert await pot_winners(client, demo_headers, "hits") == {
        "alpha": newest_first[:10],
        "beta": [],
    }
    assert await pot_winners(client, demo_headers, "hits", "?limit=2") == {
        "alpha": newest_first[:2],
        "beta": [],
    }
    assert await pot_winners(client, demo_headers, "hits", "?limit=0") == {
        "alpha": [],
        "beta": [],
    }
    brand1 = [w for w in newest_first if w["brand_id"] == "demo:brand1"]
    assert await pot_winners(client, demo_headers, "hits", "?brand_id=demo:brand1") == {
        "alpha": brand1,
        "beta": [],
    }
    response = await client.get(
        "/jackpots/instances/hits/winners/pots?limit=101", headers=demo_headers
    )
    await expect(response, 400, "VALIDATION_ERROR")


async def test_winners_of_an_instance_without_wins(
    client: QuartClient, demo_headers: dict[str, str]
) -> None:
    assert await winners(client, demo_headers, "daily-drop") == []
    assert await pot_winners(client, demo_headers, "daily-drop") == {
        "mini": [],
        "minor": [],
        "major": [],
    }


async def test_winners_of_an_invisible_or_unknown_instance_are_not_found(
    client: QuartClient, demo_headers: dict[str, str], rival_headers: dict[str, str]
) -> None:
    for path in ("winners", "winners/pots"):
        # daily-drop admits demo's brands only: for rival it does not exist.
        response = await client.get(f"/jackpots/instances/daily-drop/{path}", headers=rival_headers)
        await expect(response, 404, "INSTANCE_NOT_FOUND")
        response = await client.get(f"/jackpots/instances/nope/{path}", headers=demo_headers)
        await expect(response, 404, "INSTANCE_NOT_FOUND")


async def test_other_operators_players_are_masked_on_a_shared_instance(
    client: QuartClient,
    demo_headers: dict[str, str],
    rival_headers: dict[str, str],
    platform_auth: dict[str, str],
) -> None:
    await create_instance(
        client,
        platform_auth,
        instance(
            "shared",
            contribution_type={"Fixed": "0.50"},
            allowed_brands=["demo:brand1", "rival:main"],
            house_share="0.4",
            pots=[ALPHA],
        ),
    )
    win = micros(ALPHA["seed"]) + pot_gain(micros("0.50"), ALPHA)
    plays = [
        (demo_headers, "demo:brand1", "d1"),
        (rival_headers, "rival:main", "r1"),
        (demo_headers, "demo:brand1", "d2"),
        (rival_headers, "main", "r2"),  # a bare brand id is the caller's
    ]
    wins = []
    for headers, brand, player in plays:
        result, win_id = await contribute(
            client, headers, contribution("shared", player, brand_id=brand)
        )
        assert result["win_amount"] == units(win)
        full_brand = brand if ":" in brand else "rival:main"
        wins.append(winner(win_id, "shared", full_brand, player, win, result["timestamp"]))
    newest_first = wins[::-1]

    def masked_for(operator: str) -> list[dict[str, Any]]:
        return [
            w if w["brand_id"].startswith(operator + ":") else {**w, "player_id": "***"}
            for w in newest_first
        ]

    assert await winners(client, demo_headers, "shared") == masked_for("demo")
    assert await winners(client, rival_headers, "shared") == masked_for("rival")
    assert await pot_winners(client, rival_headers, "shared") == {"alpha": masked_for("rival")}
    assert [w["player_id"] for w in masked_for("demo")] == ["***", "d2", "***", "d1"]
    # Each operator may filter by its own brand only.
    own = await winners(client, rival_headers, "shared", "?brand_id=rival:main")
    assert own == [w for w in newest_first if w["brand_id"] == "rival:main"]
    response = await client.get(
        "/jackpots/instances/shared/winners?brand_id=demo:brand1", headers=rival_headers
    )
    await expect(response, 403, "OPERATOR_FORBIDDEN")
    assert await winners(client, demo_headers, "shared", "?brand_id=brand1") == [
        w for w in newest_first if w["brand_id"] == "demo:brand1"
    ]


async def test_each_brand_keeps_its_latest_wins_whatever_the_others_win(
    client: QuartClient, headers: dict[str, str]
) -> None:
    """Each win is stored once and indexed per instance, pot and brand: a brand with few wins
    is not crowded out of the capped lists by a busy one."""
    await create_instance(client, headers, instance("busy", pots=[ALPHA, BETA], house_share="0.2"))
    a_wins = []
    for n in range(150):
        _, win_id = await contribute(client, headers, contribution("busy", f"a{n}"))
        a_wins.append(win_id)
    _, b_win = await contribute(client, headers, contribution("busy", "b0", brand_id="demo:brand2"))
    b_list = await winners(client, headers, "busy", "?brand_id=demo:brand2&limit=100")
    assert [w["win_id"] for w in b_list] == [b_win]
    a_pots = await pot_winners(client, headers, "busy", "?brand_id=demo:brand1&limit=100")
    assert [w["win_id"] for w in a_pots["alpha"]] == a_wins[::-1][:100]
    assert a_pots["beta"] == []
    everyone = await winners(client, headers, "busy", "?limit=100")
    assert [w["win_id"] for w in everyone] == [b_win, *a_wins[::-1][:99]]


async def test_pot_winners_of_every_pot_cost_one_script_call(
    client: QuartClient, headers: dict[str, str], gateway: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pots = [pot(f"p{i}", "0.1", hit_rate(10**12)) for i in range(7)]
    await create_instance(client, headers, instance("many", pots=pots, house_share="0.3"))
    await pot_winners(client, headers, "many")  # warm: the configuration cache, the script
    runner = gateway.store.runner
    calls: list[str] = []
    real_run = runner.run

    async def counting_run(redis: Any, spec: Any, keys: list[str], args: list[Any]) -> Any:
        calls.append(spec.name)
        return await real_run(redis, spec, keys, args)

    monkeypatch.setattr(runner, "run", counting_run)
    assert await pot_winners(client, headers, "many") == {f"p{i}": [] for i in range(7)}
    assert calls == ["read_wins"]
