"""What a player pays and what a jackpot is credited: every money rule of a contribution.

1. A charge is whole minor units of the player's currency (JPY 0 digits, most 2, at most 6),
   because the operator debits a wallet exactly the `contribution_amount` a response reports.
   Derived charges round DOWN to those minor units (never charging more than the instance
   asks): Percentage = floor(base_wager * percentage); Fixed = floor(the Fixed amount
   converted to the player's currency); a preferred value = floor(the value, in the currency
   the player gave it, converted to the currency they pay in): the same rule as Fixed, so a
   preference paid in its own currency charges exactly the value. A preferred value finer than
   the minor units of its currency is refused at opt-in. Every path goes through `_charge`.
2. The jackpot is credited what the charge is worth: converted exactly and rounded DOWN once,
   to the micro-unit of the instance currency (see conversion.py). So the jackpot never holds
   more than was paid, and what is credited is what the reported amount is worth.
3. contribution_limits are per currency. An amount in currency C is checked against C's own
   limits; a currency without its own uses the instance currency's, compared exactly after
   conversion. Above max: a Percentage or Fixed charge is capped at the largest whole
   minor-unit amount within max; a preferred value is refused (CONTRIBUTION_ABOVE_MAX).
   Below min: refused (CONTRIBUTION_BELOW_MIN), except a Percentage contribution from a base
   wager of 0 (a valid wager that moves no money).
4. Bounds: a base wager, and a preferred value, is worth at most MAX_INSTANCE_MICROS of the
   instance currency (WAGER_TOO_LARGE, CONTRIBUTION_TOO_LARGE); a preferred value worth less
   than one micro-unit is below any minimum.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from app.core.money import MICROS_PER_UNIT, format_amount
from app.core.refusals import Code, Refused
from app.services.conversion import Converter, Ratio, ratio

# 1e9 units: beyond any real stake, and every amount stays far below 2^53 micro-units.
MAX_INSTANCE_MICROS = 10**9 * MICROS_PER_UNIT


@dataclass(frozen=True)
class Charge:
    paid: Decimal  # the player's currency, whole minor units: reported and debited
    credited: int  # micro-units of the instance currency: what `paid` is worth, rounded down


@dataclass(frozen=True)
class Limits:
    """The limits of one instance for amounts in one currency, in that currency, exactly."""

    low: Ratio | None
    high: Ratio | None
    text: str  # as configured, for messages: "0.10 and 1.00 EUR"

    @classmethod
    def of(cls, definition: dict[str, Any], currency: str, converter: Converter) -> Limits:
        limits = definition["contribution_limits"]
        instance_currency = definition["currency"]
        unit = currency if currency in limits else instance_currency
        bounds = limits.get(unit)
        if bounds is None:
            return cls(None, None, "")
        high = None if bounds["max"] is None else ratio(Decimal(bounds["max"]))
        low = ratio(Decimal(bounds["min"]))
        if unit != currency:
            low = converter.worth(low, unit, currency)
            high = None if high is None else converter.worth(high, unit, currency)
        upper = "" if bounds["max"] is None else f" and at most {bounds['max']}"
        return cls(low, high, f"at least {bounds['min']}{upper} {unit}")

    def below(self, amount: Decimal) -> bool:
        return self.low is not None and _less(ratio(amount), self.low)

    def above(self, amount: Decimal) -> bool:
        return self.high is not None and _less(self.high, ratio(amount))


def _less(a: Ratio, b: Ratio) -> bool:
    return a[0] * b[1] < b[0] * a[1]


def _below_min(limits: Limits, field: str) -> Refused:
    return Refused(
        Code.CONTRIBUTION_BELOW_MIN,
        f"The contribution is below the instance's minimum: it must be {limits.text}.",
        {field: ["Below the minimum contribution."]},
    )


def _charge(
    definition: dict[str, Any],
    converter: Converter,
    exact: Ratio,
    currency: str,
    *,
    field: str,
    zero_allowed: bool = False,
) -> Charge:
    """The one charge rule: `exact` (an amount of `currency`) rounded down to its minor units,
    capped at the limits' max, refused below their min; credited at its exact worth in the
    instance currency, rounded down to the micro-unit."""
    limits = Limits.of(definition, currency, converter)
    paid = converter.floor_minor(exact, currency)
    if limits.high is not None:
        paid = min(paid, converter.floor_minor(limits.high, currency))
    if limits.below(paid) and not zero_allowed:
        raise _below_min(limits, field)
    return Charge(paid, converter.to_micros(paid, currency, definition["currency"]))


def contribution_charge(
    definition: dict[str, Any], converter: Converter, wager: Decimal, currency: str
) -> Charge:
    """The default charge of a contribution in `currency` (a player's preferred value, which
    the script reads with the opt-in, replaces a Fixed one: see preference_charge)."""
    contribution_type = definition["contribution_type"]
    if "Percentage" in contribution_type:
        wn, wd = ratio(wager)
        pn, pd = ratio(Decimal(contribution_type["Percentage"]))
        return _charge(
            definition,
            converter,
            (wn * pn, wd * pd),
            currency,
            field="base_wager",
            zero_allowed=wager == 0,
        )
    fixed = ratio(Decimal(contribution_type["Fixed"]))
    exact = converter.worth(fixed, definition["currency"], currency)
    return _charge(definition, converter, exact, currency, field="base_wager")


def preference_charge(
    definition: dict[str, Any],
    converter: Converter,
    value: Decimal,
    value_currency: str,
    currency: str,
) -> Charge:
    """The charge of a player's preferred value (`value` of `value_currency`, as given at
    opt-in) for a contribution paid in `currency`: the Fixed rule applied to that value."""
    exact = converter.worth(ratio(value), value_currency, currency)
    return _charge(definition, converter, exact, currency, field="contribution_value")


def wager_micros(
    definition: dict[str, Any], converter: Converter, wager: Decimal, currency: str
) -> int:
    """The base wager in micro-units of the instance currency (rounded down), bounded."""
    micros = converter.to_micros(wager, currency, definition["currency"])
    if micros > MAX_INSTANCE_MICROS:
        raise Refused(
            Code.WAGER_TOO_LARGE,
            "The base wager is beyond any plausible stake.",
            {"base_wager": ["Too large."]},
        )
    return micros


def preferred_micros(
    definition: dict[str, Any], converter: Converter, value: Decimal, currency: str
) -> int:
    """A preferred contribution value in micro-units of the instance currency, checked."""
    digits = converter.minor_units(currency)
    numerator, denominator = ratio(value)
    if numerator * 10**digits % denominator:
        raise Refused(
            Code.CONTRIBUTION_PRECISION,
            f"A contribution in {currency} has at most {digits} decimal places.",
            {"contribution_value": [f"At most {digits} decimal places for {currency}."]},
        )
    limits = Limits.of(definition, currency, converter)
    if limits.above(value):
        raise Refused(
            Code.CONTRIBUTION_ABOVE_MAX,
            f"The contribution value must be {limits.text}.",
            {"contribution_value": ["Above the maximum contribution."]},
        )
    if limits.below(value):
        raise _below_min(limits, "contribution_value")
    micros = converter.to_micros(value, currency, definition["currency"])
    if micros > MAX_INSTANCE_MICROS:
        raise Refused(
            Code.CONTRIBUTION_TOO_LARGE,
            f"{format_amount(value)} {currency} is beyond any plausible stake.",
            {"contribution_value": ["Too large."]},
        )
    if micros <= 0:
        raise Refused(
            Code.CONTRIBUTION_BELOW_MIN,
            "The contribution value is below one micro-unit of the instance currency.",
            {"contribution_value": ["Too small."]},
        )
    return micros
