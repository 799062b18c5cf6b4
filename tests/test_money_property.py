"""A property test of the money path through the HTTP API, on real Redis.

Hypothesis draws currencies (0, 2 and 6 decimal places, random multipliers), an instance
definition (Fixed or Percentage, limits, 1-4 pots with shares, reserves, seeds, caps and
triggers) and a sequence of contributions, with amounts up to the largest stake, so pots and
totals cross 2^53 micro-units. A model computes every charge and credit from the documented
rules (docs/money.md) with Fraction, and follows each pot from the wins the responses report.
After every contribution the instance must match the model exactly; after the sequence the
conservation law, caps, non-negativity and the ledger sums must hold.

A second property (test_manager_operations_keep_the_books) runs the managers' operations and
the players' preferences in any order: preferred values in every currency, boosts, withheld
wins approved and rejected, raffle draws (prizes from the pot, withheld ones decided) and
termination (the books closed to the operator); every charge must be credited at exactly its
worth, its read-back must be the first answer byte for byte, and after every step the
conservation law (returned included) must hold and the reconciliation must be balanced.

CI runs a bounded number of examples (40 and 25); set MONEY_PROPERTY_EXAMPLES (e.g. 2000) for
a long run of both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, target
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from quart.testing import QuartClient

from app.core.config import Settings
from app.services import raffles
from tests.conftest import make_settings
from tests.support.definitions import hit_rate, must_drop, pot
from tests.support.http import contribution, create_instance, expect, post, view

EXAMPLES = int(os.environ.get("MONEY_PROPERTY_EXAMPLES", "40"))
# Shrinking replays whole HTTP sequences: minutes. Only a long run shrinks what it finds.
PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target] + (
    [Phase.shrink] if "MONEY_PROPERTY_EXAMPLES" in os.environ else []
)
MICROS = 1_000_000
MAX_MICROS = 10**9 * MICROS  # the largest stake, in the instance currency
TWO53 = 2**53
# Player and instance currencies: EUR (2 digits, the base), NUL (0 digits), MIC (6 digits).
DIGITS = {"EUR": 2, "NUL": 0, "MIC": 6}
_counter = iter(range(10**9))


@pytest.fixture
def settings(real_redis_url: str) -> Settings:
    return make_settings(real_redis_url)


def decimal(micros: int) -> Decimal:
    return Decimal(micros).scaleb(-6).normalize()


def floor_minor(amount: Fraction, digits: int) -> Fraction:
    scale = 10**digits
    return Fraction(amount.numerator * scale // amount.denominator, scale)


# -- what hypothesis draws ----------------------------------------------------------------------
multiplier = st.integers(1, 10**14).map(lambda n: Decimal(n).scaleb(-8))  # 1e-8 .. 1e6
amount_micros = st.one_of(
    st.integers(0, 10 * MICROS),
    st.integers(MAX_MICROS - 10**6, MAX_MICROS),
    st.integers(0, MAX_MICROS),
)


@st.composite
def pots(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(1, 4))
    cuts = sorted(draw(st.lists(st.integers(0, MICROS), min_size=count, max_size=count)))
    shares = [b - a for a, b in zip([0, *cuts[:-1]], cuts, strict=True)]
    result = []
    for i, share in enumerate(shares):
        seed = draw(st.sampled_from([0, 10 * MICROS, draw(amount_micros)]))
        cap = draw(st.one_of(st.none(), st.integers(max(seed, 1), MAX_MICROS)))
        trigger_kind = draw(st.sampled_from(["hit", "never", "drop"]))
        if trigger_kind == "hit":
            trigger = hit_rate(draw(st.integers(1, 3)), decimal(draw(st.integers(1, 10**7))))
        elif trigger_kind == "drop" and (MAX_MICROS if cap is None else cap) > seed:
            top = cap if cap is not None else draw(st.integers(seed + 1, MAX_MICROS))
            low = draw(st.integers(seed, top - 1))
            trigger = must_drop(decimal(low), decimal(draw(st.integers(low + 1, top))))
        else:
            trigger = hit_rate(10**12)  # as good as never
        result.append(
            pot(
                f"p{i}",
                decimal(share),
                trigger,
                reserve_share=decimal(draw(st.integers(0, MICROS - 1))),
                seed=decimal(seed),
                max_value=None if cap is None else decimal(cap),
                progressive=draw(st.booleans()) or "MustDropBy" in trigger,
            )
        )
    return result


@st.composite
def definitions(draw: st.DrawFn) -> dict[str, Any]:
    currency = draw(st.sampled_from(sorted(DIGITS)))
    pot_list = draw(pots())
    house = MICROS - sum(int(Decimal(p["share"]) * MICROS) for p in pot_list)
    if draw(st.booleans()):
        contribution_type = {"Percentage": decimal(draw(st.integers(1, MICROS)))}
        fixed = None
    else:
        fixed = draw(amount_micros.filter(lambda m: m > 0))
        contribution_type = {"Fixed": decimal(fixed)}
    limits: dict[str, Any] = {}
    for ccy in draw(st.lists(st.sampled_from(sorted(DIGITS)), unique=True, max_size=2)):
        low = draw(st.integers(0, 10 * MICROS))
        high = draw(st.one_of(st.none(), st.integers(low, MAX_MICROS)))
        if ccy == currency and fixed is not None:  # a Fixed amount lies within its own limits
            low = min(low, fixed)
            high = None if high is None else max(high, fixed)
        limits[ccy] = {"min": decimal(low), "max": None if high is None else decimal(high)}
    return {
        "id": f"prop-{next(_counter)}",
        "name": "Property",
        "currency": currency,
        "contribution_type": contribution_type,
        "contribution_limits": limits,
        "allowed_brands": ["demo:brand1"],
        "house_share": decimal(house),
        "pots": pot_list,
    }


contributions = st.lists(
    st.tuples(st.sampled_from(sorted(DIGITS)), amount_micros), min_size=1, max_size=14
)


# -- the model ----------------------------------------------------------------------------------
@dataclass
class Model:
    definition: dict[str, Any]
    rates: dict[str, Fraction]
    values: dict[str, int] = field(default_factory=dict)
    reserves: dict[str, int] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for p in self.definition["pots"]:
            self.values[p["id"]] = int(Fraction(p["seed"]) * MICROS)
            self.reserves[p["id"]] = 0
        self.totals = {
            "contributions": 0,
            "seed_funding": sum(self.values.values()),
            "boosts": 0,  # operator money added by seed boosts: none here
            "house": 0,
            "wins": 0,
            "returned": 0,  # returned to the operator: none here
        }

    def worth(self, amount: Fraction, source: str, target: str) -> Fraction:
        return amount * self.rates[target] / self.rates[source]

    def charge(self, wager: Fraction, ccy: str) -> tuple[Fraction, int] | str:
        """(paid, credited micros), or the refusal's code."""
        definition, currency = self.definition, self.definition["currency"]
        if int(self.worth(wager, ccy, currency) * MICROS) > MAX_MICROS:
            return "WAGER_TOO_LARGE"
        kind = definition["contribution_type"]
        if "Percentage" in kind:
            raw = wager * Fraction(kind["Percentage"])
        else:
            raw = self.worth(Fraction(kind["Fixed"]), currency, ccy)
        paid = floor_minor(raw, DIGITS[ccy])
        limits = definition["contribution_limits"]
        unit = ccy if ccy in limits else currency
        if unit in limits:
            low = self.worth(Fraction(limits[unit]["min"]), unit, ccy)
            high = limits[unit]["max"]
            if high is not None:
                paid = min(paid, floor_minor(self.worth(Fraction(high), unit, ccy), DIGITS[ccy]))
            if paid < low and not ("Percentage" in kind and wager == 0):
                return "CONTRIBUTION_BELOW_MIN"
        return paid, int(self.worth(paid, ccy, currency) * MICROS)

    def contribute(self, amount: int, win_pot: str | None) -> int | None:
        """Apply a contribution the script accepted; the win amount (micros) if any."""
        house = amount
        for p in self.definition["pots"]:
            pot_id = p["id"]
            part = amount * int(Fraction(p["share"]) * MICROS) // MICROS
            house -= part
            to_reserve = part * int(Fraction(p["reserve_share"]) * MICROS) // MICROS
            to_value = part - to_reserve
            if not p["is_progressive"]:
                to_reserve, to_value = part, 0
            if p["max_value"] is not None:
                room = max(0, int(Fraction(p["max_value"]) * MICROS) - self.values[pot_id])
                if to_value > room:
                    to_reserve += to_value - room
                    to_value = room
            self.values[pot_id] += to_value
            self.reserves[pot_id] += to_reserve
        self.totals["contributions"] += amount
        self.totals["house"] += house
        if win_pot is None:
            return None
        (won,) = [p for p in self.definition["pots"] if p["id"] == win_pot]
        win = self.values[win_pot]
        seed = int(Fraction(won["seed"]) * MICROS)
        from_reserve = min(self.reserves[win_pot], seed)
        self.values[win_pot] = seed
        self.reserves[win_pot] -= from_reserve
        self.totals["wins"] += win
        self.totals["seed_funding"] += seed - from_reserve
        return win

    def shown(self, micros: int, ccy: str) -> Decimal:
        exact = self.worth(Fraction(micros, MICROS), self.definition["currency"], ccy)
        scaled = round(exact * 10 ** DIGITS[ccy])  # round() of a Fraction is half-to-even
        return Decimal(scaled).scaleb(-DIGITS[ccy])


# -- checks --------------------------------------------------------------------------------------
def micros_of(amount: Decimal) -> int:
    scaled = amount * MICROS
    assert scaled == scaled.to_integral_value(), amount
    return int(scaled)


async def check_state(client: QuartClient, headers: dict[str, str], model: Model) -> None:
    instance_id = model.definition["id"]
    state = await view(client, headers, instance_id)
    for pot_id, p in state["pots"].items():
        assert micros_of(p["current_value"]) == model.values[pot_id], pot_id
        assert micros_of(p["reserve"]) == model.reserves[pot_id], pot_id
        assert p["current_value"] >= 0 and p["reserve"] >= 0 and p["seed_deficit"] >= 0
    for pot_def in model.definition["pots"]:
        if pot_def["max_value"] is not None:
            assert state["pots"][pot_def["id"]]["current_value"] <= Decimal(pot_def["max_value"])
    totals = {name: micros_of(value) for name, value in state["totals"].items()}
    assert totals == model.totals
    held = sum(model.values.values()) + sum(model.reserves.values())
    assert (
        totals["contributions"] + totals["seed_funding"] == held + totals["house"] + totals["wins"]
    )


async def check_ledger(client: QuartClient, headers: dict[str, str], model: Model) -> None:
    instance_id = model.definition["id"]
    entries: list[dict[str, str]] = []
    after = "-"
    while True:
        response = await client.get(
            f"/admin/instances/{instance_id}/ledger?after={after}&count=1000", headers=headers
        )
        page = await expect(response, 200)
        entries += page["entries"]
        if page["next"] is None:
            break
        after = page["next"]

    def total(kind: str, name: str = "amount") -> int:
        return sum(int(e[name]) for e in entries if e["type"] == kind)

    assert total("contribution") == model.totals["contributions"]
    assert total("contribution", "house") == model.totals["house"]
    assert total("win") == model.totals["wins"]
    seeds = sum(int(Fraction(p["seed"]) * MICROS) for p in model.definition["pots"])
    assert total("win", "deficit") + seeds == model.totals["seed_funding"]


# -- the property ---------------------------------------------------------------------------------
@pytest.mark.timeout(0 if "MONEY_PROPERTY_EXAMPLES" in os.environ else 120)
@hypothesis_settings(
    max_examples=EXAMPLES,
    phases=PHASES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rates=st.fixed_dictionaries({"NUL": multiplier, "MIC": multiplier}),
    definition=definitions(),
    sequence=contributions,
)
async def test_money_is_exact_conserved_and_within_limits(
    client: QuartClient,
    headers: dict[str, str],
    platform_auth: dict[str, str],
    rates: dict[str, Decimal],
    definition: dict[str, Any],
    sequence: list[tuple[str, int]],
) -> None:
    currencies = {
        "base_currency": "EUR",
        "multipliers": {"EUR": "1", **{c: format(m, "f") for c, m in rates.items()}},
        "decimals": {"NUL": 0, "MIC": 6},
    }
    current = await expect(await client.get("/admin/currencies", headers=platform_auth), 200)
    currencies["multipliers"] = {**current["multipliers"], **currencies["multipliers"]}
    currencies["decimals"] = {**current["decimals"], **currencies["decimals"]}
    response = await client.put("/admin/currencies", json=currencies, headers=platform_auth)
    await expect(response, 200)
    await create_instance(client, headers, definition)
    model = Model(
        definition,
        {"EUR": Fraction(1), **{c: Fraction(m) for c, m in rates.items()}},
    )
    for p in definition["pots"]:
        p.setdefault("is_progressive", True)
    for currency, wager_micros in sequence:
        wager = Fraction(wager_micros, MICROS)
        expected = model.charge(wager, currency)
        body = contribution(
            definition["id"], "p1", base_wager=format(decimal(wager_micros), "f"), currency=currency
        )
        response = await post(client, "/jackpots/contribute", body, headers)
        if isinstance(expected, str):
            await expect(response, 422, expected)
            continue
        paid, credited = expected
        result = await expect(response, 200)
        assert result["contribution_amount"] == Decimal(paid.numerator) / paid.denominator
        win = model.contribute(credited, result["win_pot_id"])
        if win is None:
            assert result["win_amount"] is None
        else:
            assert result["win_amount"] == model.shown(win, currency)
        await check_state(client, headers, model)
    # Steer the search toward large pots and totals (past 2^53 micro-units).
    target(max([*model.values.values(), *model.reserves.values()]) / TWO53, label="pot / 2^53")
    target(model.totals["contributions"] / TWO53, label="contributions / 2^53")
    await check_ledger(client, headers, model)


# -- manager operations, preferred values and raffle prizes (issue 25) ---------------------------
MANAGER_EXAMPLES = int(os.environ.get("MONEY_PROPERTY_EXAMPLES", "25"))
operations = st.lists(
    st.one_of(
        st.tuples(st.just("contribute"), st.sampled_from(sorted(DIGITS)), st.integers(0, 10)),
        st.tuples(st.just("prefer"), st.sampled_from(sorted(DIGITS)), st.integers(1, 10**8)),
        st.tuples(st.just("boost"), st.sampled_from(["value", "reserve"]), st.integers(1, 10**7)),
        st.tuples(st.just("decide"), st.sampled_from(["approve", "reject"]), st.integers(0, 9)),
        st.tuples(st.just("terminate"), st.just(""), st.just(0)),
        st.tuples(st.just("draw"), st.just(""), st.just(0)),
    ),
    min_size=1,
    max_size=10,
)


async def balanced(client: QuartClient, headers: dict[str, str], instance_id: str) -> None:
    response = await client.get(f"/admin/instances/{instance_id}/reconciliation", headers=headers)
    report = await expect(response, 200)
    assert report["balanced"] is True, report
    state = await view(client, headers, instance_id)
    totals = state["totals"]
    held = sum((p["current_value"] + p["reserve"] for p in state["pots"].values()), Decimal(0))
    assert totals["contributions"] + totals["seed_funding"] + totals["boosts"] == (
        held + totals["house"] + totals["wins"] + totals["returned"]
    )


@pytest.mark.timeout(0 if "MONEY_PROPERTY_EXAMPLES" in os.environ else 120)
@hypothesis_settings(
    max_examples=MANAGER_EXAMPLES,
    phases=PHASES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rates=st.fixed_dictionaries({"NUL": multiplier, "MIC": multiplier}),
    currency=st.sampled_from(sorted(DIGITS)),
    raffle=st.booleans(),
    limit=st.integers(0, 3 * MICROS),
    sequence=operations,
)
async def test_manager_operations_keep_the_books(
    client: QuartClient,
    headers: dict[str, str],
    platform_auth: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    rates: dict[str, Decimal],
    currency: str,
    raffle: bool,
    limit: int,
    sequence: list[tuple[str, str, int]],
) -> None:
    """Preferred values in every currency, boosts, withheld wins approved and rejected, raffle
    prizes and termination, in any order: every charge is credited at exactly its worth, and
    after every step the conservation law holds and the reconciliation is balanced."""
    currencies = {
        "base_currency": "EUR",
        "multipliers": {"EUR": "1", **{c: format(m, "f") for c, m in rates.items()}},
        "decimals": {"NUL": 0, "MIC": 6},
    }
    current = await expect(await client.get("/admin/currencies", headers=platform_auth), 200)
    currencies["multipliers"] = {**current["multipliers"], **currencies["multipliers"]}
    currencies["decimals"] = {**current["decimals"], **currencies["decimals"]}
    await expect(await client.put("/admin/currencies", json=currencies, headers=platform_auth), 200)
    instance_id = f"mgr-{next(_counter)}"
    definition: dict[str, Any] = {
        "id": instance_id,
        "name": "Managed",
        "currency": currency,
        "contribution_type": {"Fixed": "1"},
        "allowed_brands": ["demo:brand1"],
        "house_share": "0.3",
        "auto_payout_limit": decimal(limit),
        "pots": [pot("main", "0.7", hit_rate(2, "0.5"), seed="1", reserve_share="0.1")],
    }
    if raffle:
        definition.update(
            jackpot_type="Raffle",
            raffle={"ticket_cost": "1", "prizes": ["2", {"share": "0.5"}], "draw": {"every": "1h"}},
        )
    await create_instance(client, headers, definition)
    rate = {"EUR": Fraction(1), **{c: Fraction(m) for c, m in rates.items()}}
    draw_clock, drawn = [2**45], 0
    for kind, option, number in sequence:
        if kind == "contribute":
            before = await view(client, headers, instance_id)
            body = contribution(instance_id, "p1", base_wager=str(number), currency=option)
            key = f"k{next(_counter)}"
            body["idempotency_key"] = key
            response = await post(client, "/jackpots/contribute", body, headers)
            if response.status_code != 200:
                await expect(response, response.status_code)
                assert response.status_code in (409, 422), await response.get_data()
                continue
            paid = (await expect(response, 200))["contribution_amount"]
            # the read-back is the first answer byte for byte
            query = {"instance_id": instance_id, "idempotency_key": key}
            recorded = await client.get(
                "/jackpots/contributions", query_string=query, headers=headers
            )
            assert await recorded.get_data() == await response.get_data()
            after = await view(client, headers, instance_id)
            credited = micros_of(after["totals"]["contributions"]) - micros_of(
                before["totals"]["contributions"]
            )
            # charged = credited: the charge's exact worth, rounded down to the micro-unit
            worth = Fraction(paid) * rate[currency] / rate[option] * MICROS
            assert credited == int(worth), (paid, option, credited)
        elif kind == "prefer":
            digits = DIGITS[option]
            value = Decimal(number).scaleb(-6).quantize(Decimal(1).scaleb(-digits), "ROUND_DOWN")
            body = {"instance_id": instance_id, "player_id": "p1", "brand_id": "demo:brand1",
                    "player_country": "DE", "opt_in": True}  # fmt: skip
            if value > 0:
                body.update(contribution_value=value, contribution_currency=option)
            response = await post(client, "/jackpots/optin", body, headers)
            assert response.status_code in (200, 409, 422), await response.get_data()
        elif kind == "boost":
            body = {"pot_id": "main", "amount": decimal(number), "target": option}
            response = await post(client, f"/admin/instances/{instance_id}/boosts", body, headers)
            assert response.status_code in (201, 409), await response.get_data()
        elif kind == "decide":
            response = await client.get(
                "/admin/wins/withheld", headers=headers, query_string={"instance_id": instance_id}
            )
            wins = (await expect(response, 200))["wins"]
            if wins:
                win_id = wins[number % len(wins)]["win_id"]
                path = f"/admin/instances/{instance_id}/wins/{win_id}/{option}"
                await expect(await post(client, path, {"reason": "property"}, headers), 200)
        elif kind == "terminate":
            path = f"/admin/instances/{instance_id}/terminate"
            await expect(await client.post(path, headers=headers), 200)
        elif raffle:  # drawn on a clock past the round's end (contributions keep the real one)
            draw_clock[0] += 2 * 3_600_000
            monkeypatch.setattr(raffles, "now_ms", lambda: draw_clock[0])
            response = await client.post(f"/admin/instances/{instance_id}/draw", headers=headers)
            assert response.status_code in (200, 409), await response.get_data()
            drawn += response.status_code == 200
        await balanced(client, headers, instance_id)
    target(float(drawn), label="raffle draws")
