"""Exact money: API decimals <-> integer micro-units (1e-6) of a currency.

Rounding rules (docs/money.md; app/services/charges.py applies them): an amount given with
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


# Any number a request carries, before it is used at all: at most MAX_DIGITS significant
# digits, and its exponent (as written: 1.5e3 is 15E+2) and the power of ten of its leading
# digit both within +-MAX_EXPONENT. Generous for anything real (an amount has at most 20
# digits; a double at most 17, within 1e-324..1e308), and it keeps every computation on a
# number cheap: 1e-999999999 passes a check on its normalized value (it underflows to 0),
# then `as_integer_ratio()` builds 10**999999999 and holds the process for good.
MAX_DIGITS = 40
MAX_EXPONENT = 400
BOUNDS_TEXT = (
    f"A number with at most {MAX_DIGITS} digits and an exponent within "
    f"-{MAX_EXPONENT}..{MAX_EXPONENT}."
)


class MoneyError(ValueError):
    pass


class OutOfRange(MoneyError):
    """A number beyond MAX_DIGITS / MAX_EXPONENT: refused before any arithmetic."""


def within_bounds(value: Decimal) -> bool:
    """Whether a decimal is finite and within MAX_DIGITS and MAX_EXPONENT. Reads its
    representation only (no context, no arithmetic): cheap whatever the value."""
    if not value.is_finite():
        return False
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    return (
        len(digits) <= MAX_DIGITS
        and exponent >= -MAX_EXPONENT
        and exponent + len(digits) - 1 <= MAX_EXPONENT
    )


def decimal_places(value: Decimal) -> int:
    """Significant places after the point, exactly and without a decimal context (where
    `normalize()` would round to 28 digits or underflow): 0.1000 has 1, 100 and 0E-9 have 0."""
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    if zeros == len(digits):  # zero, whatever its exponent
        return 0
    return max(0, -(exponent + zeros))


def to_decimal(value: object) -> Decimal:
    """Parse a str/int/Decimal amount exactly; floats go through their repr, never binary.
    Refuses NaN, infinities and numbers beyond the bounds (OutOfRange)."""
    if isinstance(value, bool):
        raise MoneyError("a boolean is not an amount")
    if isinstance(value, float):
        value = repr(value)
    try:
        result = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except (InvalidOperation, ValueError):  # ValueError: an int of more than 4300 digits
        shown = f": {value[:40]!r}" if isinstance(value, str) else ""
        raise MoneyError(f"not a number{shown}") from None
    if not result.is_finite():
        raise MoneyError("amount must be finite")
    if not within_bounds(result):
        raise OutOfRange(BOUNDS_TEXT)
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
