"""Contribution requests (v1 by instance, v1 by source, v2 linked) and their responses."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate

from app.core import jsonio
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


HEADER_NAME = r"^[A-Za-z0-9\-]{1,64}$"
# Header names the gateway sets itself on a delivery (compared without case): its own
# X-Jackpot-* headers (signature, delivery id, any added later) and those that frame the
# request. A callback naming one is refused (400 CALLBACK_HEADER_RESERVED).
RESERVED_HEADER_PREFIX = "x-jackpot-"
RESERVED_HEADERS = (
    "host",
    "content-type",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "expect",
)


def is_reserved_header(name: str) -> bool:
    lowered = name.lower()
    return lowered.startswith(RESERVED_HEADER_PREFIX) or lowered in RESERVED_HEADERS


def _any_case(text: str) -> str:
    """`text` (letters and '-') as a regular expression that ignores case: JSON Schema
    patterns have no flags."""
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in text)


# The published form of both rules (ECMA-262, as a JSON Schema reads it): the name's syntax,
# less the reserved names.
PUBLISHED_HEADER_NAME = (
    "^(?!"
    + "|".join(
        [_any_case(RESERVED_HEADER_PREFIX)] + [_any_case(name) + "$" for name in RESERVED_HEADERS]
    )
    + ")"
    + HEADER_NAME.removeprefix("^")
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
        keys=fields.String(validate=Pattern(HEADER_NAME)),
        values=fields.String(validate=validate.Length(max=1024)),
        load_default=dict,
        validate=validate.Length(max=20),
        metadata={
            "description": "Headers sent with every delivery: up to 20, names of 1 to 64 "
            "letters, digits or '-', values up to 1024 characters. Kept only until the "
            "delivery succeeds (at most 7 days). The gateway's own "
            "X-Jackpot-* headers and "
            + ", ".join(RESERVED_HEADERS)
            + " are reserved (400 CALLBACK_HEADER_RESERVED).",
            "name_pattern": PUBLISHED_HEADER_NAME,
        },
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

    EXAMPLE = {
        "instance_id": "weekly-raffle",
        "token": "player-session-token",
        "brand_id": "demo:brand1",
        "player_id": "player-1",
        "player_country": "DE",
        "gameround_id": "round-1",
        "base_wager": "2.00",
        "currency": "EUR",
        "idempotency_key": "round-1-bet-1",
        "metadata": {"game": "starburst", "bet_lines": 10},
    }

    instance_id = fields.String(required=True, validate=validate.Length(1, 64))


class ContributeBySourceSchema(PlayerContributionSchema):
    """POST /jackpots/contribute/source."""

    EXAMPLE = {
        "source_id": "starburst",
        "token": "player-session-token",
        "brand_id": "demo:brand1",
        "player_id": "player-2",
        "player_country": "US",
        "gameround_id": "round-2",
        "base_wager": "2.00",
        "currency": "USD",
        "idempotency_key": "round-2-bet-1",
    }

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

    EXAMPLE = {
        "target": {"type": "instance", "id": "weekly-raffle"},
        "source": {"id": "starburst", "gameround_id": "round-3"},
        "operator_id": "demo",
        "player": {"id": "player-1", "brand_id": "brand1", "country": "DE"},
        "base_wager": {"value": "2.00", "currency": "EUR"},
        "metadata": {"game": "starburst"},
        "options": {"idempotency_key": "round-3-bet-1"},
    }

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
