"""Expected money, computed exactly from the documented rules: micro-units, currency
conversion with its rounding, and the split of a contribution between pots and the house."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Any

MICROS = 1_000_000  # micro-units per unit
MICRO = Decimal("0.000001")
# examples/demo.yaml: 1 EUR = m units; demo:brand2 overrides USD.
MULTIPLIERS = {
    "EUR": Decimal("1"),
    "USD": Decimal("1.08"),
    "GBP": Decimal("0.86"),
    "SEK": Decimal("11.4"),
    "JPY": Decimal("162"),
}
BRAND2_MULTIPLIERS = {**MULTIPLIERS, "USD": Decimal("1.10")}
DIGITS = {"JPY": 0}  # minor units; 2 when absent


def micros(amount: Decimal | str | Fraction) -> int:
    """Exact micro-units; an amount finer than a micro-unit is a mistake in the test."""
    scaled = Fraction(amount) * MICROS
    assert scaled.denominator == 1, amount
    return int(scaled)


def units(amount_micros: int | Fraction) -> Decimal:
    """Micro-units as an exact Decimal amount."""
    value = Fraction(amount_micros) / MICROS
    assert (value * MICROS).denominator == 1, amount_micros
    return Decimal(value.numerator) / Decimal(value.denominator)


def floor_micros(amount: Decimal) -> int:
    return int((amount / MICRO).to_integral_value(rounding=ROUND_DOWN))


def quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-DIGITS.get(currency, 2))


def to_player(
    micro_units: int, instance_currency: str, currency: str, rates: Mapping[str, Decimal]
) -> Decimal:
    """An instance amount shown to the player: converted, rounded half-even to minor units."""
    exact = units(micro_units) * rates[currency] / rates[instance_currency]
    return exact.quantize(quantum(currency), rounding=ROUND_HALF_EVEN)


def to_instance(
    amount: Decimal, currency: str, instance_currency: str, rates: Mapping[str, Decimal]
) -> int:
    """A player's amount entering the jackpot: converted exactly, rounded down to micro-units."""
    return int(
        Fraction(amount) * Fraction(rates[instance_currency]) / Fraction(rates[currency]) * MICROS
    )


def charge(
    amount: Decimal, instance_currency: str, currency: str, rates: Mapping[str, Decimal]
) -> Decimal:
    """An instance amount charged to a player: converted exactly, rounded down to the minor
    units of the player's currency."""
    exact = Fraction(amount) * Fraction(rates[currency]) / Fraction(rates[instance_currency])
    scale = 10 ** DIGITS.get(currency, 2)
    return Decimal(int(exact * scale)) / scale


def convert_down(amount: Decimal | str, rate: Fraction) -> int:
    """An amount of one currency in micro-units of another, exactly, rounded down."""
    return int(Fraction(amount) * rate * MICROS)


def floor_player(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(quantum(currency), rounding=ROUND_DOWN)


def ppm(share: str | Decimal) -> int:
    return micros(Decimal(share))


def split(amount: int, pots: list[dict[str, Any]]) -> tuple[dict[str, tuple[int, int]], int]:
    """Per pot (to value, to reserve) and the house's part, all micros: floor per pot share,
    floor of reserve_share of each part, the remainder to the house. (No max_value caps.)"""
    parts: dict[str, tuple[int, int]] = {}
    house = amount
    for p in pots:
        part = amount * ppm(p["share"]) // 1_000_000
        to_reserve = part * ppm(p.get("reserve_share") or "0") // 1_000_000
        if not p.get("is_progressive", True):
            to_reserve = part
        parts[p["id"]] = (part - to_reserve, to_reserve)
        house -= part
    return parts, house


def pot_gain(amount_micros: int, definition: dict[str, Any]) -> int:
    """What one contribution adds to a progressive, uncapped pot's value (micros): the pot's
    part (floor of amount * share) minus its reserve part (floor of part * reserve_share)."""
    part = int(amount_micros * Fraction(definition["share"]))
    return part - int(part * Fraction(definition.get("reserve_share") or "0"))


def assert_conserved(state: Mapping[str, Any]) -> None:
    """contributions + seed funding + boosts = pot balances + reserves + house + wins +
    returned, exactly (`state` as tests.support.http.view returns it)."""
    totals = state["totals"]
    held = sum(
        (pot["current_value"] + pot["reserve"] for pot in state["pots"].values()), Decimal(0)
    )
    paid_in = totals["contributions"] + totals["seed_funding"] + totals["boosts"]
    assert paid_in == held + totals["house"] + totals["wins"] + totals["returned"], state
