"""Currency conversion between a player's currency and an instance's currency, exactly.

Multipliers say how many units of a currency one base unit buys (EUR 1, USD 1.08). A
conversion is computed on integers (every decimal is an exact ratio of two integers) and
rounded once, at the end: no decimal context, no intermediate rounding.
- down to the micro-unit: what enters a jackpot (it never holds more than was paid);
- down to the player currency's minor units (JPY 0 digits, most 2, at most 6): what a player
  is charged;
- half-to-even to those minor units: a jackpot amount shown to a player (a win).
"""

from __future__ import annotations

from decimal import Decimal

from app.core.money import MICROS_PER_UNIT, from_micros

Ratio = tuple[int, int]  # (numerator, denominator > 0), not necessarily reduced


def ratio(amount: Decimal | int) -> Ratio:
    return amount.as_integer_ratio()


class Converter:
    def __init__(self, multipliers: dict[str, Decimal], decimals: dict[str, int]) -> None:
        self._multipliers = multipliers
        self._ratios = {ccy: ratio(m) for ccy, m in multipliers.items()}
        self._decimals = decimals

    @property
    def multipliers(self) -> dict[str, Decimal]:
        return dict(self._multipliers)

    def knows(self, currency: str) -> bool:
        return currency in self._multipliers

    def minor_units(self, currency: str) -> int:
        return self._decimals.get(currency, 2)

    def worth(self, amount: Ratio, source: str, target: str) -> Ratio:
        """`amount` of `source` in `target`: amount * m_target / m_source, exactly."""
        (an, ad), (tn, td), (sn, sd) = amount, self._ratios[target], self._ratios[source]
        return an * tn * sd, ad * td * sn

    def to_micros(self, amount: Decimal, source: str, target: str) -> int:
        """What `amount` of `source` is worth in micro-units of `target`, rounded down once."""
        numerator, denominator = self.worth(ratio(amount), source, target)
        return numerator * MICROS_PER_UNIT // denominator

    def floor_minor(self, amount: Ratio, currency: str) -> Decimal:
        """An exact amount of `currency` rounded down to its minor units."""
        numerator, denominator = amount
        scale = 10 ** self.minor_units(currency)
        return Decimal(numerator * scale // denominator).scaleb(-self.minor_units(currency))

    def shown(self, micros: int, instance_currency: str, currency: str) -> Decimal:
        """An instance amount in the player's currency, rounded half-to-even to minor units."""
        numerator, denominator = self.worth(ratio(from_micros(micros)), instance_currency, currency)
        digits = self.minor_units(currency)
        quotient, remainder = divmod(numerator * 10**digits, denominator)
        twice = 2 * remainder
        if twice > denominator or (twice == denominator and quotient % 2):
            quotient += 1
        return Decimal(quotient).scaleb(-digits)
