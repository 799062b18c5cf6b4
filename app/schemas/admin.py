"""Definitions of operators, accounts, currencies, sources and jackpot instances.

The same schemas read the `load` file and the admin API bodies. Cross references (a brand
that must exist, a known currency) are checked by the admin service against the whole config.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from app.core.limits import MAX_POTS
from app.core.security import ROLES
from app.schemas.common import (  # period_ms: re-exported, callers import it from here
    PERIOD_PATTERN,
    Amount,
    BrandPath,
    Country,
    Currency,
    Id,
    Pattern,
    StrictInt,
    StrictSchema,
    exactly_one,
    period_ms,  # noqa: F401
)
from app.schemas.optins import RaffleRoundViewSchema
from app.triggers import TRIGGERS, trigger_of

STATUSES = ("Pending", "Active", "Paused", "Terminated")
DAILY_TIME = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


class OperatorSchema(StrictSchema):
    EXAMPLE = {"id": "partner", "name": "Partner Casino", "brands": ["main", "mobile"]}

    id = Id(required=True)
    name = fields.String(load_default=None, allow_none=True)
    brands = fields.List(
        Id(),
        required=True,
        validate=validate.Length(max=1000),
        metadata={
            "uniqueItems": True,
            "description": "None for an operator that plays no jackpot (the provider's own, "
            "which its platform accounts belong to).",
        },
    )
    callback_secret = fields.String(
        load_default=None,
        allow_none=True,
        load_only=True,
        validate=validate.Length(min=16, max=256),
        metadata={
            "description": "HMAC key of the callbacks (write-only: never listed). Omitted on a "
            "replace: the current one is kept; omitted on a create: one is generated and "
            "answered once."
        },
    )

    @validates_schema
    def _unique_brands(self, data: dict[str, Any], **kwargs: Any) -> None:
        if len(set(data["brands"])) != len(data["brands"]):
            raise ValidationError("Brand ids must be unique.", "brands")


class OperatorViewSchema(StrictSchema):
    """An operator as listed: its secret never appears, only whether it has one."""

    id = fields.String(required=True)
    name = fields.String(allow_none=True)
    brands = fields.List(fields.String(), required=True)
    callback_secret_set = fields.Boolean(required=True)
    callback_secret = fields.String(
        metadata={"description": "Only in the answer that created or rotated it."}
    )


class CallbackSecretSchema(StrictSchema):
    operator_id = fields.String(required=True)
    callback_secret = fields.String(
        required=True, metadata={"description": "The new secret: shown this once."}
    )


class AccountFileSchema(StrictSchema):
    """An account in a definitions file: the password comes from an environment variable."""

    username = Id(required=True)
    password_env = fields.String(required=True, validate=validate.Length(min=1))
    operator_id = Id(required=True)
    roles = fields.List(
        fields.String(validate=validate.OneOf(ROLES)),
        load_default=lambda: ["operator"],
        validate=validate.Length(min=1),
    )


class AccountSchema(StrictSchema):
    """An account created through the admin API."""

    EXAMPLE = {
        "username": "reporting-service",
        "password": "a-long-password-0123",
        "operator_id": "demo",
        "roles": ["operator"],
    }

    username = Id(required=True)
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=12))
    operator_id = Id(required=True)
    roles = fields.List(
        fields.String(validate=validate.OneOf(ROLES)),
        load_default=lambda: ["operator"],
        validate=validate.Length(min=1),
    )


class AccountRolesSchema(StrictSchema):
    """A change of an account's roles (its tokens already issued are revoked)."""

    EXAMPLE = {"roles": ["operator", "admin"]}

    roles = fields.List(
        fields.String(validate=validate.OneOf(ROLES)),
        required=True,
        validate=validate.Length(min=1),
    )


class AccountViewSchema(StrictSchema):
    username = fields.String()
    operator_id = fields.String()
    roles = fields.List(fields.String())


class CurrenciesSchema(StrictSchema):
    EXAMPLE = {
        "base_currency": "EUR",
        "multipliers": {"EUR": "1", "USD": "1.08", "GBP": "0.86", "SEK": "11.4", "JPY": "162"},
        "decimals": {"JPY": 0},
        "brand_overrides": {"demo:brand2": {"USD": "1.10"}},
    }

    base_currency = Currency(required=True)
    multipliers = fields.Dict(
        keys=Currency(),
        values=Amount(places=10, minimum=0, min_inclusive=False),
        required=True,
        validate=validate.Length(min=1),
    )
    decimals = fields.Dict(
        keys=Currency(), values=StrictInt(validate=validate.Range(0, 6)), load_default=dict
    )
    brand_overrides = fields.Dict(
        keys=BrandPath(),
        values=fields.Dict(
            keys=Currency(), values=Amount(places=10, minimum=0, min_inclusive=False)
        ),
        load_default=dict,
    )

    @validates_schema
    def _consistent(self, data: dict[str, Any], **kwargs: Any) -> None:
        multipliers = data["multipliers"]
        if multipliers.get(data["base_currency"]) != Decimal(1):
            raise ValidationError(
                "The base currency must be in multipliers with value 1.", "multipliers"
            )
        unknown = sorted(set(data["decimals"]) - set(multipliers))
        if unknown:
            raise ValidationError(f"Unknown currencies: {', '.join(unknown)}.", "decimals")
        for brand, overrides in data["brand_overrides"].items():
            unknown = sorted(set(overrides) - set(multipliers))
            if unknown:
                raise ValidationError(
                    f"Unknown currencies for {brand}: {', '.join(unknown)}.", "brand_overrides"
                )
            if data["base_currency"] in overrides:
                raise ValidationError(
                    f"{brand} may not override the base currency.", "brand_overrides"
                )


class SourceSchema(StrictSchema):
    EXAMPLE = {
        "source_id": "book-of-dead",
        "owner_id": "demo:brand1",
        "source_name": "Book of Dead",
        "instance_ids": ["daily-drop", "weekly-raffle"],
    }

    source_id = Id(required=True)
    owner_id = BrandPath(required=True)
    source_name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    instance_ids = fields.List(Id(), load_default=list)


class OneOfSchema(StrictSchema):
    """An object with exactly one of several keys; the absent ones are dropped on load."""

    @post_load
    def _drop_absent(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {name: value for name, value in data.items() if value is not None}


class _OneTrigger(OneOfSchema):
    @validates_schema
    def _one(self, data: dict[str, Any], **kwargs: Any) -> None:
        exactly_one(data, tuple(TRIGGERS), "trigger")


# {"<trigger type>": body}: one field per registered trigger type; any other key is refused.
TriggerSchema = _OneTrigger.from_dict(
    {name: fields.Nested(t.schema, load_default=None) for name, t in TRIGGERS.items()},
    name="TriggerSchema",
)


class PotSchema(StrictSchema):
    id = Id(required=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    is_progressive = fields.Boolean(load_default=True)
    share = Amount(required=True, minimum=0, maximum=1)
    reserve_share = Amount(load_default=Decimal(0), minimum=0, maximum=1, max_inclusive=False)
    seed = Amount(load_default=Decimal(0))
    max_value = Amount(load_default=None, allow_none=True, minimum=0, min_inclusive=False)
    trigger = fields.Nested(TriggerSchema, required=True)

    @validates_schema
    def _bounds(self, data: dict[str, Any], **kwargs: Any) -> None:
        cap = data["max_value"]
        if cap is not None and data["seed"] > cap:
            raise ValidationError("seed must not exceed max_value.", "seed")
        trigger, body = trigger_of(data["trigger"])
        trigger.check_pot(data, body)


class ContributionTypeSchema(OneOfSchema):
    Fixed = Amount(load_default=None, minimum=0, min_inclusive=False)
    Percentage = Amount(load_default=None, minimum=0, maximum=1, min_inclusive=False)

    @validates_schema
    def _one(self, data: dict[str, Any], **kwargs: Any) -> None:
        exactly_one(data, ("Fixed", "Percentage"), "contribution_type")


class LimitSchema(StrictSchema):
    min = Amount(load_default=Decimal(0))
    max = Amount(load_default=None, allow_none=True)

    @validates_schema
    def _ordered(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["max"] is not None and data["min"] > data["max"]:
            raise ValidationError("min must not exceed max.", "min")


class RaffleDrawSchema(OneOfSchema):
    """When rounds end and are drawn: at the instance's end, every period from the start,
    or at UTC times of every day."""

    at = fields.String(load_default=None, validate=validate.OneOf(["end"]))
    every = fields.String(
        load_default=None,
        validate=Pattern(PERIOD_PATTERN, error="A period such as 30m, 6h or 1d."),
    )
    daily = fields.List(
        fields.String(validate=Pattern(DAILY_TIME, error="A UTC time such as 20:00.")),
        load_default=None,
        validate=validate.Length(1, 24),
    )

    @validates_schema
    def _one(self, data: dict[str, Any], **kwargs: Any) -> None:
        exactly_one(data, ("at", "every", "daily"), "draw")


class Prize(fields.Field[Any]):
    """A fixed amount ("100") or a share of the prize pot at the draw ({"share": "0.5"})."""

    # marshmallow formats error messages with str.format: literal braces are doubled.
    default_error_messages = {"invalid": 'An amount or {{"share": a number in (0, 1]}}.'}
    _amount = Amount(minimum=0, min_inclusive=False)
    _share = Amount(minimum=0, min_inclusive=False, maximum=1)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, dict):
            if set(value) != {"share"}:
                raise self.make_error("invalid")
            try:
                return {"share": self._share.deserialize(value["share"])}
            except ValidationError as error:  # named where it is: prizes.<i>.share
                raise ValidationError({"share": error.messages}) from None
        return self._amount.deserialize(value)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        if isinstance(value, dict):
            return {"share": self._share._serialize(value["share"], attr, obj)}
        return self._amount._serialize(value, attr, obj)


class RaffleSchema(StrictSchema):
    ticket_cost = Amount(required=True, minimum=0, min_inclusive=False)
    ticket_basis = fields.String(
        load_default="contribution", validate=validate.OneOf(["contribution", "base_wager"])
    )
    prizes = fields.List(Prize(), required=True, validate=validate.Length(1, 100))
    draw = fields.Nested(RaffleDrawSchema, required=True)

    @validates_schema
    def _shares(self, data: dict[str, Any], **kwargs: Any) -> None:
        shares = sum(p["share"] for p in data.get("prizes", []) if isinstance(p, dict))
        if shares > 1:
            raise ValidationError("Prize shares add up to more than 1.", "prizes")


class InstanceSchema(StrictSchema):
    EXAMPLE = {
        "id": "summer-drop",
        "name": "Summer Drop",
        "jackpot_type": "Jackpot",
        "currency": "EUR",
        "contribution_type": {"Percentage": "0.01"},
        "contribution_limits": {"EUR": {"min": "0.01", "max": "5.00"}},
        "allowed_brands": ["demo:brand1", "demo:brand2"],
        "blocked_countries": ["US"],
        "house_share": "0.20",
        "pots": [
            {
                "id": "main",
                "name": "Main",
                "share": "0.80",
                "reserve_share": "0.10",
                "seed": "100",
                "max_value": "10000",
                "trigger": {"MustDropBy": {"min": "1000", "max": "5000"}},
            }
        ],
    }

    id = Id(load_default=None)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    jackpot_type = fields.String(
        load_default="Jackpot", validate=validate.OneOf(["Jackpot", "Raffle"])
    )
    currency = Currency(required=True)
    status = fields.String(load_default="Active", validate=validate.OneOf(STATUSES[:3]))
    timestamp_start = StrictInt(load_default=None, allow_none=True, validate=validate.Range(0))
    timestamp_end = StrictInt(load_default=None, allow_none=True, validate=validate.Range(0))
    opt_in_required = fields.Boolean(load_default=False)
    contribution_type = fields.Nested(ContributionTypeSchema, required=True)
    contribution_limits = fields.Dict(
        keys=Currency(), values=fields.Nested(LimitSchema), load_default=dict
    )
    allowed_brands = fields.List(BrandPath(), required=True, validate=validate.Length(min=1))
    allowed_countries = fields.List(Country(), load_default=list)
    blocked_countries = fields.List(Country(), load_default=list)
    segments = fields.List(fields.String(validate=validate.Length(1, 100)), load_default=list)
    house_share = Amount(load_default=Decimal(0), minimum=0, maximum=1)
    auto_payout_limit = Amount(load_default=None, allow_none=True)
    linked_instances = fields.List(Id(), load_default=list)
    pots = fields.List(
        fields.Nested(PotSchema), load_default=list, validate=validate.Length(max=MAX_POTS)
    )
    raffle = fields.Nested(RaffleSchema, load_default=None, allow_none=True)

    @validates_schema
    def _consistent(self, data: dict[str, Any], **kwargs: Any) -> None:
        pots = data["pots"]
        if data["jackpot_type"] == "Jackpot" and not pots:
            raise ValidationError("A Jackpot needs at least one pot.", "pots")
        if data["jackpot_type"] == "Raffle" and data["raffle"] is None:
            raise ValidationError("A Raffle needs a raffle definition.", "raffle")
        pot_ids = [pot["id"] for pot in pots]
        if len(set(pot_ids)) != len(pot_ids):
            raise ValidationError("Pot ids must be unique.", "pots")
        total = sum((pot["share"] for pot in pots), Decimal(0)) + data["house_share"]
        if total != 1:
            raise ValidationError(
                f"Pot shares plus house_share must add up to exactly 1, not {total}.", "pots"
            )
        start, end = data["timestamp_start"], data["timestamp_end"]
        if start is not None and end is not None and start >= end:
            raise ValidationError("timestamp_end must be after timestamp_start.", "timestamp_end")
        if data["status"] == "Pending" and start is None:
            raise ValidationError("A Pending instance needs a timestamp_start.", "timestamp_start")
        raffle = data["raffle"]
        if raffle and raffle["draw"].get("at") == "end" and end is None:
            raise ValidationError("A raffle drawn at the end needs a timestamp_end.", "raffle")
        overlap = set(data["allowed_countries"]) & set(data["blocked_countries"])
        if overlap:
            raise ValidationError(
                f"Countries both allowed and blocked: {', '.join(sorted(overlap))}.",
                "blocked_countries",
            )
        if data["id"] is not None and data["id"] in data["linked_instances"]:
            raise ValidationError("An instance cannot link to itself.", "linked_instances")
        fixed = data["contribution_type"].get("Fixed")
        own = data["contribution_limits"].get(data["currency"])
        if (
            fixed is not None
            and own is not None
            and (fixed < own["min"] or (own["max"] is not None and fixed > own["max"]))
        ):
            raise ValidationError(
                f"The Fixed amount must lie within the {data['currency']} limits.",
                "contribution_type",
            )


class DefinitionsSchema(StrictSchema):
    """A whole definitions file, as `jackpot-gateway load` reads it."""

    operators = fields.List(fields.Nested(OperatorSchema), load_default=list)
    accounts = fields.List(fields.Nested(AccountFileSchema), load_default=list)
    currencies = fields.Nested(CurrenciesSchema, load_default=None, allow_none=True)
    sources = fields.List(fields.Nested(SourceSchema), load_default=list)
    instances = fields.List(fields.Nested(InstanceSchema), load_default=list)


class PotStateSchema(StrictSchema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    current_value = Amount(required=True, minimum=None, maximum=None)
    reserve = Amount(required=True, minimum=None, maximum=None)
    seed_deficit = Amount(required=True, minimum=None, maximum=None)


class TotalsSchema(StrictSchema):
    contributions = Amount(required=True, minimum=None, maximum=None)
    seed_funding = Amount(required=True, minimum=None, maximum=None)
    house = Amount(required=True, minimum=None, maximum=None)
    wins = Amount(required=True, minimum=None, maximum=None)
    boosts = Amount(required=True, minimum=None, maximum=None)
    returned = Amount(required=True, minimum=None, maximum=None)


class InstanceStateSchema(StrictSchema):
    """What GET /admin/instances/{id} answers: the definition and the live money."""

    definition = fields.Nested(InstanceSchema, required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    last_updated = fields.Integer(required=True)
    pots = fields.List(fields.Nested(PotStateSchema), required=True)
    totals = fields.Nested(TotalsSchema, required=True)
    raffle_round = fields.Nested(
        RaffleRoundViewSchema, metadata={"description": "A raffle's open round (raffles only)."}
    )


class StatusChangeSchema(StrictSchema):
    instance_id = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))


class LedgerPageSchema(StrictSchema):
    entries = fields.List(
        fields.Dict(keys=fields.String(), values=fields.String()),
        required=True,
        metadata={
            "description": "Ledger entries: the entry's fields and `entry_id` (its position, "
            "what `after` takes), as strings."
        },
    )
    next = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "Pass as `after` for the next page; null at the end."},
    )
