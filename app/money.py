"""Exact money: API decimals <-> integer micro-units (1e-6) of a currency.

Rounding rules (README "Money"; app/services/charges.py applies them): an amount given with
more than 6 decimal places is refused. A player is charged whole minor units of their currency:
a derived charge (a percentage, a Fixed amount or a preferred value converted to the currency
paid) rounds DOWN to them, and that charge is what the response reports. The jackpot is
credited what the charge is worth, converted exactly and rounded DOWN once to the micro-unit of
the instance currency, so it never holds more than was paid. A jackpot amount shown to a player
(a win) is rounded half-to-even to their minor units (app/services/conversion.py).
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal, InvalidOperation

MICROS_PER_UNIT = 1_000_000
MICRO = Decimal("0.000001")
PPM = 1_000_000  # shares and percentages are carried to Lua as parts per million


class MoneyError(ValueError):
    pass


def to_decimal(value: object) -> Decimal:
    """Parse a str/int/Decimal amount exactly; floats go through their repr, never binary."""
    if isinstance(value, bool):
        raise MoneyError("a boolean is not an amount")
    if isinstance(value, float):
        value = repr(value)
    try:
        result = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except (InvalidOperation, ValueError):
        raise MoneyError(f"not a number: {value!r}") from None
    if not result.is_finite():
        raise MoneyError("amount must be finite")
    return result


def to_micros(amount: Decimal) -> int:
    """Exact conversion; refuses sub-micro precision."""
    scaled = amount * MICROS_PER_UNIT
    if scaled != scaled.to_integral_value():
        raise MoneyError(f"{amount} has more than 6 decimal places")
    return int(scaled)


def to_micros_down(amount: Decimal) -> int:
    """Conversion of a derived amount, rounding toward zero."""
    return int((amount * MICROS_PER_UNIT).to_integral_value(rounding=ROUND_DOWN))


def from_micros(micros: int) -> Decimal:
    """Micro-units as an exact Decimal of units with 6 decimal places, at any size (built
    from its digits: no decimal context, whose 28-digit precision would round)."""
    sign = 1 if micros < 0 else 0
    return Decimal((sign, tuple(int(d) for d in str(abs(micros))), -6))


def to_ppm(share: Decimal) -> int:
    """A fraction (0.25) as parts per million (250000); refuses finer precision."""
    return to_micros(share)


def format_amount(amount: Decimal) -> str:
    """Canonical string of a decimal amount: no exponent, no trailing zeros."""
    normalized = amount.normalize()
    text = format(normalized, "f")
    return text if text != "-0" else "0"
