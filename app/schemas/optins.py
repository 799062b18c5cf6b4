"""Opt-in requests (v1, v2) and the instance view of operation 13."""

from __future__ import annotations

from marshmallow import fields, validate

from app.core.limits import WINNERS_CAP
from app.schemas.common import (
    Amount,
    Country,
    Currency,
    OperatorAliasSchema,
    StrictBool,
    StrictSchema,
)
from app.schemas.contributions import PLAYER_ID, TargetSchema


class OptInSchema(StrictSchema):
    """POST /jackpots/optin."""

    EXAMPLE = {
        "instance_id": "daily-drop",
        "player_id": "player-1",
        "brand_id": "demo:brand1",
        "player_country": "DE",
        "opt_in": True,
        "contribution_value": "0.20",
        "contribution_currency": "EUR",
    }

    instance_id = fields.String(required=True, validate=validate.Length(1, 64))
    player_id = fields.String(required=True, validate=PLAYER_ID)
    brand_id = fields.String(required=True, validate=validate.Length(1, 130))
    player_country = Country(required=True)
    opt_in = StrictBool(required=True)
    contribution_value = Amount(load_default=None, allow_none=True, minimum=0, min_inclusive=False)
    contribution_currency = Currency(load_default=None, allow_none=True)


class PlayerOptInSchema(StrictSchema):
    id = fields.String(required=True, validate=PLAYER_ID)
    brand_id = fields.String(
        required=True,
        validate=validate.Length(1, 130),
        metadata={"description": "A brand of `operator_id`, plain or as `operator_id:brand_id`."},
    )
    country = Country(required=True)


class ContributionPreferenceSchema(StrictSchema):
    value = Amount(required=True, minimum=0, min_inclusive=False)
    currency = Currency(load_default=None, allow_none=True)


class OptInV2Schema(OperatorAliasSchema):
    """POST /v2/jackpots/optin; `owner_id` is accepted as an alias of `operator_id`."""

    EXAMPLE = {
        "target": {"type": "instance", "id": "daily-drop"},
        "operator_id": "demo",
        "player": {"id": "player-1", "brand_id": "brand1", "country": "DE"},
        "contribution_preference": {"value": "0.20", "currency": "EUR"},
        "opt_in": True,
        "opt_linked": False,
    }

    target = fields.Nested(TargetSchema, required=True)
    operator_id = fields.String(required=True, validate=validate.Length(1, 64))
    player = fields.Nested(PlayerOptInSchema, required=True)
    contribution_preference = fields.Nested(
        ContributionPreferenceSchema, load_default=None, allow_none=True
    )
    opt_in = StrictBool(required=True)
    opt_linked = StrictBool(load_default=False)


class OptInStatusSchema(StrictSchema):
    opted_in = fields.Boolean()
    contribution_value = fields.Raw(allow_none=True, metadata={"type": "number"})
    contribution_currency = fields.String(allow_none=True)
    contribution_count = fields.Integer()
    last_updated = fields.Integer()


class OptInFailureSchema(StrictSchema):
    instance_id = fields.String()
    code = fields.String()
    error = fields.String()


class OptInV2ResponseSchema(StrictSchema):
    success = fields.List(fields.String())
    failed = fields.List(fields.Nested(OptInFailureSchema))


class InstanceQuerySchema(StrictSchema):
    player_id = fields.String(required=True, validate=PLAYER_ID)
    country_code = Country(required=True)
    segments = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))


class PotViewSchema(StrictSchema):
    id = fields.String()
    name = fields.String()
    is_progressive = fields.Boolean()
    current_value = fields.Raw(metadata={"type": "number"})


class RaffleRoundViewSchema(StrictSchema):
    """The open round of a raffle: its commitment sha256(seed) is published before any
    ticket of the round, the seed at its draw; the next round's commitment is published with
    it (its tickets sell from this round's end, before this round's draw)."""

    round = fields.Integer()
    commitment = fields.String(allow_none=True)
    opened = fields.Integer()
    ends = fields.Integer(allow_none=True)
    key_id = fields.String(allow_none=True, metadata={"description": "The draw key's id."})
    next_commitment = fields.String(allow_none=True)


class InstanceViewSchema(StrictSchema):
    id = fields.String()
    name = fields.String()
    jackpot_type = fields.String()
    currency = fields.String()
    opt_in_required = fields.Boolean()
    contribution_type = fields.Dict(keys=fields.String(), values=fields.Raw())
    optin_status = fields.Nested(OptInStatusSchema, allow_none=True)
    pots = fields.List(fields.Nested(PotViewSchema))
    timestamp_start = fields.Integer(allow_none=True)
    timestamp_end = fields.Integer(allow_none=True)
    status = fields.String()
    raffle_round = fields.Nested(
        RaffleRoundViewSchema, metadata={"description": "A raffle's open round (raffles only)."}
    )


class WinnersQuerySchema(StrictSchema):
    limit = fields.Integer(load_default=10, validate=validate.Range(0, WINNERS_CAP))
    brand_id = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 130))


class WinnerSchema(StrictSchema):
    win_id = fields.String()
    instance_id = fields.String()
    win_pot_id = fields.String()
    brand_id = fields.String()
    player_id = fields.String()
    win_amount = fields.Raw(metadata={"type": "number"})
    currency = fields.String()
    timestamp = fields.Integer()
    win_withheld = fields.Boolean()
    gameround_id = fields.String(allow_none=True)
    source_id = fields.String(allow_none=True)
