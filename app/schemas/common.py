"""Fields and base schema shared by every resource."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, ClassVar

from marshmallow import RAISE, Schema, ValidationError, fields, pre_load, validate

from app.core.money import (
    BOUNDS_TEXT,
    MoneyError,
    OutOfRange,
    decimal_places,
    format_amount,
    to_decimal,
)

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
CURRENCY_PATTERN = r"^[A-Z]{3}$"
COUNTRY_PATTERN = r"^[A-Z]{2}$"
BRAND_PATH_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}:[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
PERIOD_PATTERN = re.compile(r"^(?P<count>[1-9][0-9]{0,5})(?P<unit>[smhd])$")
PERIOD_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
ABSURD_AMOUNT = Decimal("1000000000")  # 1e9 units: beyond any real stake, and keeps Lua exact


class Pattern(validate.Regexp):
    """A regular expression that must match the WHOLE string: `re.match` with `^...$` would
    let a trailing newline through ("SE\n"). The pattern stays `^...$` in the OpenAPI
    document, where (as in JavaScript) `$` is the true end."""

    def __call__(self, value: Any) -> Any:
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


def period_ms(text: str) -> int:
    """A period such as "30s", "6h" or "1d" in milliseconds."""
    match = PERIOD_PATTERN.fullmatch(text)
    if not match:
        raise ValueError(text)
    return int(match.group("count")) * PERIOD_UNIT_MS[match.group("unit")]


class StrictSchema(Schema):
    """Unknown fields are errors, not silently dropped.

    A request body schema sets EXAMPLE: a body the server accepts on the demo data
    (examples/demo.yaml), published as the body's example in /openapi.json, which /docs
    pre-fills (tests/test_docs_examples.py posts each one)."""

    EXAMPLE: ClassVar[dict[str, Any] | None] = None

    class Meta:
        unknown = RAISE


class OperatorAliasSchema(StrictSchema):
    """v2 bodies name the operator `operator_id`; `owner_id` is accepted as an alias."""

    @pre_load
    def _owner_alias(self, data: Any, **kwargs: Any) -> Any:
        if isinstance(data, dict) and "owner_id" in data:
            data = dict(data)
            owner = data.pop("owner_id")
            if "operator_id" in data and data["operator_id"] != owner:
                raise ValidationError("owner_id and operator_id differ.", "owner_id")
            data["operator_id"] = owner
        return data


def Id(**kwargs: Any) -> fields.String:
    return fields.String(validate=Pattern(ID_PATTERN, error="Not a valid id."), **kwargs)


def Currency(**kwargs: Any) -> fields.String:
    return fields.String(
        validate=Pattern(CURRENCY_PATTERN, error="Not a 3-letter currency code."), **kwargs
    )


def Country(**kwargs: Any) -> fields.String:
    return fields.String(
        validate=Pattern(COUNTRY_PATTERN, error="Not a 2-letter country code."), **kwargs
    )


def BrandPath(**kwargs: Any) -> fields.String:
    return fields.String(
        validate=Pattern(BRAND_PATH_PATTERN, error="Not an operator_id:brand_id path."),
        **kwargs,
    )


def StrictInt(**kwargs: Any) -> fields.Integer:
    return fields.Integer(strict=True, **kwargs)


class StrictBool(fields.Boolean):
    """Only JSON true/false; marshmallow's Boolean would also take "yes", 1 or "on"."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


DECIMAL_TEXT = re.compile(r"-?[0-9]{1,16}(?:\.[0-9]{1,30})?")


class Amount(fields.Field[Decimal]):
    """An exact decimal from a JSON number or a JSON string in plain decimal notation
    ("12.50": no exponent, no spaces, no underscores); NaN, infinities and booleans refused.
    A JSON number is parsed exactly (never through a float). `-0` is zero.

    Serializes to a canonical string ("0.1", never "1E-1"), so stored JSON compares equal.
    """

    default_error_messages = {
        "invalid": "Not a valid amount.",
        "range": BOUNDS_TEXT,
        "places": "At most {places} decimal places.",
        "min": "Must be {op} {bound}.",
        "max": "Must be {op} {bound}.",
    }

    def __init__(
        self,
        *,
        places: int = 6,
        minimum: Decimal | int | None = 0,
        maximum: Decimal | int | None = ABSURD_AMOUNT,
        min_inclusive: bool = True,
        max_inclusive: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.places = places
        self.minimum = None if minimum is None else Decimal(minimum)
        self.maximum = None if maximum is None else Decimal(maximum)
        self.min_inclusive = min_inclusive
        self.max_inclusive = max_inclusive

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
            raise self.make_error("invalid")
        if isinstance(value, str) and not DECIMAL_TEXT.fullmatch(value):
            raise self.make_error("invalid")
        try:
            amount = to_decimal(value)  # bounded in digits and exponent before any arithmetic
        except OutOfRange:
            raise self.make_error("range") from None
        except MoneyError:
            raise self.make_error("invalid") from None
        # Trailing zeros are harmless ("0.1000000"); significant digits past the places are not.
        if decimal_places(amount) > self.places:
            raise self.make_error("places", places=self.places)
        if self.minimum is not None:
            too_low = amount < self.minimum if self.min_inclusive else amount <= self.minimum
            if too_low:
                op = ">=" if self.min_inclusive else ">"
                raise self.make_error("min", op=op, bound=format_amount(self.minimum))
        if self.maximum is not None:
            too_high = amount > self.maximum if self.max_inclusive else amount >= self.maximum
            if too_high:
                op = "<=" if self.max_inclusive else "<"
                raise self.make_error("max", op=op, bound=format_amount(self.maximum))
        return amount

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else format_amount(Decimal(value))


def amount_pattern(field: Amount) -> str:
    """Decimal strings the field accepts: plain notation, within its places and magnitude
    (a little stricter than the field at its bounds, never looser)."""
    places = field.places
    digits = 9 if field.maximum is None else len(str(int(field.maximum))) - 1
    whole = "0" if digits == 0 else f"(0|[1-9][0-9]{{0,{digits - 1}}})"
    if field.minimum is None:
        return f"^-?{whole}(\\.[0-9]{{1,{places}}})?$"
    if field.min_inclusive:
        return f"^{whole}(\\.[0-9]{{1,{places}}})?$"
    tiny = f"0\\.[0-9]{{0,{places - 1}}}[1-9]"  # 0.x with a non-zero digit: above zero
    if digits == 0:
        return f"^{tiny}$"
    return f"^([1-9][0-9]{{0,{digits - 1}}}(\\.[0-9]{{1,{places}}})?|{tiny})$"


def amount_property(field: Amount) -> dict[str, Any]:
    """The OpenAPI form of an Amount: a number or a decimal string, with its bounds and places."""
    number: dict[str, Any] = {"type": "number", "multipleOf": Decimal(1).scaleb(-field.places)}
    if field.minimum is not None:
        number["minimum"] = field.minimum
        if not field.min_inclusive:
            number["exclusiveMinimum"] = True
    if field.maximum is not None:
        number["maximum"] = field.maximum
        if not field.max_inclusive:
            number["exclusiveMaximum"] = True
    string = {"type": "string", "pattern": amount_pattern(field)}
    bounds = [
        f"{'>=' if field.min_inclusive else '>'} {format_amount(field.minimum)}"
        if field.minimum is not None
        else "",
        f"{'<=' if field.max_inclusive else '<'} {format_amount(field.maximum)}"
        if field.maximum is not None
        else "",
    ]
    return {
        "anyOf": [number, string],
        "description": (
            f"An exact decimal with at most {field.places} decimal places"
            + (f", {' and '.join(b for b in bounds if b)}" if any(bounds) else "")
            + '; a JSON number, or a string in plain decimal notation ("0.10"). -0 is 0.'
        ),
    }


def exactly_one(data: dict[str, Any], names: tuple[str, ...], what: str) -> str:
    present = [name for name in names if data.get(name) is not None]
    if len(present) != 1:
        raise ValidationError(f"{what} must have exactly one of: {', '.join(names)}.")
    return present[0]


class ErrorSchema(Schema):
    error = fields.String(required=True)
    code = fields.String(required=True)
    details = fields.Dict()
