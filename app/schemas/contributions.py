"""Contribution requests (v1 by instance, v1 by source, v2 linked) and their responses."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate

from app import jsonio
from app.schemas.common import (
    Amount,
    Country,
    Currency,
    OperatorAliasSchema,
    Pattern,
    StrictSchema,
)

IDEMPOTENCY_KEY = Pattern(
    r"^[A-Za-z0-9_\-:.]{1,128}$", error="1 to 128 characters of A-Z a-z 0-9 _ - : ."
)
PLAYER_ID = validate.Length(1, 128)
SESSION_TOKEN = (
    "The player's game session token at the operator (opaque, up to 2048 characters, may be "
    "empty). This server neither checks nor keeps it, and it is not part of the idempotency "
    "fingerprint: a retry with a refreshed session token is the same request."
)
OPAQUE_MAX_BYTES = 8192


def _opaque_size(value: Any) -> None:
    if len(jsonio.dumps(value).encode()) > OPAQUE_MAX_BYTES:
        raise ValidationError(f"At most {OPAQUE_MAX_BYTES} bytes of JSON.")


def Opaque(**kwargs: Any) -> fields.Raw:
    """Pass-through JSON (metadata, event_metadata), at most OPAQUE_MAX_BYTES as compact JSON."""
    return fields.Raw(load_default=None, allow_none=True, validate=_opaque_size, **kwargs)


PORT = r"(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
# An http(s) URL with a host name or IPv4 address: the same pattern validates and is published.
CALLBACK_URL = (
    r"^https?://[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?"
    rf"(:{PORT})?"
    r"(/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?"
    r"(\?[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*)?$"
)


class CallbackSchema(StrictSchema):
    url = fields.String(
        required=True,
        validate=[
            validate.Length(max=2048),
            Pattern(CALLBACK_URL, error="Not an http(s) URL with a host name or IPv4 address."),
        ],
        metadata={
            "description": "Where the outcome is POSTed; checked when the request arrives and "
            "again at delivery (no private or loopback address unless allow-listed; "
            "redirects are not followed)."
        },
    )
    headers = fields.Dict(
        keys=fields.String(validate=Pattern(r"^[A-Za-z0-9\-]{1,64}$")),
        values=fields.String(validate=validate.Length(max=1024)),
        load_default=dict,
        validate=validate.Length(max=20),
    )


class PlayerContributionSchema(StrictSchema):
    """The fields both v1 contribution requests share."""

    token = fields.String(
        required=True,
        validate=validate.Length(max=2048),
        metadata={"description": SESSION_TOKEN},
    )
    brand_id = fields.String(required=True, validate=validate.Length(1, 130))
    player_id = fields.String(required=True, validate=PLAYER_ID)
    player_country = Country(required=True)
    gameround_id = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=128)
    )
    base_wager = Amount(required=True)
    currency = Currency(required=True)
    callback = fields.Nested(CallbackSchema, load_default=None, allow_none=True)
    idempotency_key = fields.String(load_default=None, allow_none=True, validate=IDEMPOTENCY_KEY)
    metadata = Opaque()
    event_metadata = Opaque()


class ContributeSchema(PlayerContributionSchema):
    """POST /jackpots/contribute."""

    instance_id = fields.String(required=True, validate=validate.Length(1, 64))


class ContributeBySourceSchema(PlayerContributionSchema):
    """POST /jackpots/contribute/source."""

    source_id = fields.String(required=True, validate=validate.Length(1, 64))
    segments = fields.List(
        fields.String(validate=validate.Length(1, 100)),
        load_default=list,
        allow_none=True,
        validate=validate.Length(max=50),
    )


class TargetSchema(StrictSchema):
    type = fields.String(required=True, validate=validate.OneOf(["instance", "source"]))
    id = fields.String(required=True, validate=validate.Length(1, 64))


class SourceOfContributionSchema(StrictSchema):
    id = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 64))
    gameround_id = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=128)
    )


class PlayerRecordSchema(StrictSchema):
    id = fields.String(required=True, validate=PLAYER_ID)
    brand_id = fields.String(
        required=True,
        validate=validate.Length(1, 130),
        metadata={"description": "A brand of `operator_id`, plain or as `operator_id:brand_id`."},
    )
    country = Country(required=True)
    token = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=2048),
        metadata={"description": SESSION_TOKEN},
    )
    segments = fields.List(
        fields.String(validate=validate.Length(1, 100)),
        load_default=list,
        allow_none=True,
        validate=validate.Length(max=50),
    )


class CurrencyValueSchema(StrictSchema):
    value = Amount(required=True)
    currency = Currency(required=True)


class ContributeOptionsSchema(StrictSchema):
    callback = fields.Nested(CallbackSchema, load_default=None, allow_none=True)
    idempotency_key = fields.String(load_default=None, allow_none=True, validate=IDEMPOTENCY_KEY)


class ContributeV2Schema(OperatorAliasSchema):
    """POST /v2/jackpots/contribute; `owner_id` is accepted as an alias of `operator_id`."""

    target = fields.Nested(TargetSchema, required=True)
    source = fields.Nested(SourceOfContributionSchema, load_default=dict)
    operator_id = fields.String(required=True, validate=validate.Length(1, 64))
    player = fields.Nested(PlayerRecordSchema, required=True)
    base_wager = fields.Nested(CurrencyValueSchema, required=True)
    metadata = Opaque()
    event_metadata = Opaque()
    options = fields.Nested(ContributeOptionsSchema, load_default=dict)


class ContributionResponseSchema(StrictSchema):
    instance_id = fields.String()
    timestamp = fields.Integer()
    gameround_id = fields.String(allow_none=True)
    win_amount = fields.Raw(allow_none=True, metadata={"type": "number"})
    win_pot_id = fields.String(allow_none=True)
    tickets_awarded = fields.Integer()
    raffle_round = fields.Integer(
        allow_none=True,
        metadata={
            "description": "The raffle round the tickets belong to: sales of a round close at "
            "its end, later tickets go to the next round (null without a raffle)."
        },
    )
    win_withheld = fields.Boolean()
    contribution_currency = fields.String()
    contribution_amount = fields.Raw(metadata={"type": "number"})
    metadata = fields.Raw(allow_none=True)


class ItemErrorSchema(StrictSchema):
    code = fields.String()
    error = fields.String()


class ContributionV2ItemSchema(StrictSchema):
    instance_id = fields.String()
    linked = fields.Boolean()
    success = fields.Boolean()
    error = fields.Nested(ItemErrorSchema, allow_none=True)
    result = fields.Nested(ContributionResponseSchema, allow_none=True)
