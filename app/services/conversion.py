"""Currency conversion between a player's currency and an instance's currency.

Multipliers say how many units of a currency one base unit buys (EUR 1, USD 1.08). Rules:
- what enters a jackpot is computed in micro-units of the instance currency, rounded DOWN,
  so the jackpot never holds more than the player paid;
- what a player is shown or charged is rounded to the minor units of the player's currency
  (JPY 0 digits, most currencies 2), half-to-even.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal

from app.money import MICROS_PER_UNIT, to_micros_down


class Converter:
    def __init__(self, multipliers: dict[str, Decimal], decimals: dict[str, int]) -> None:
        self._multipliers = multipliers
        self._decimals = decimals

    @property
    def multipliers(self) -> dict[str, Decimal]:
        return dict(self._multipliers)

    def knows(self, currency: str) -> bool:
        return currency in self._multipliers

    def minor_units(self, currency: str) -> int:
        return self._decimals.get(currency, 2)

    def rate(self, source: str, target: str) -> Decimal:
        """Units of `target` per unit of `source`."""
        return self._multipliers[target] / self._multipliers[source]

    def convert(self, amount: Decimal, source: str, target: str) -> Decimal:
        """`amount` of `source` in `target`, dividing last: one rounding (at 28 digits) of the
        exact quotient, so an exactly representable result (4.30 GBP = 5 EUR) is exact.
        Multiplying by `rate()` would carry the rounded reciprocal (5.000...001 EUR)."""
        return amount * self._multipliers[target] / self._multipliers[source]

    def to_instance_micros(self, amount: Decimal, currency: str, instance_currency: str) -> int:
        return to_micros_down(self.convert(amount, currency, instance_currency))

    def to_player_amount(self, micros: int, instance_currency: str, currency: str) -> Decimal:
        """An instance amount in the player's currency, rounded to its minor units."""
        exact = self.convert(Decimal(micros) / MICROS_PER_UNIT, instance_currency, currency)
        return self.round_player(exact, currency)

    def round_player(self, amount: Decimal, currency: str) -> Decimal:
        quantum = Decimal(1).scaleb(-self.minor_units(currency))
        return amount.quantize(quantum, rounding=ROUND_HALF_EVEN)

    def floor_player(self, amount: Decimal, currency: str) -> Decimal:
        quantum = Decimal(1).scaleb(-self.minor_units(currency))
        return amount.quantize(quantum, rounding=ROUND_DOWN)
