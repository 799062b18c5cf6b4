"""The event catalogue: every event the server emits, one schema per event's `data`.

An event is the envelope `{"event_type", "event_id", "data"}` as a script stores it; the event
stream sends `{"event_type", "event_id", "channel", "data"}` (docs/events.md). Lua scripts
emit theirs through `lua/includes/events.lua`, which appends `{event_id, event_type, payload}`
to the instance's capped events stream and publishes `payload` (the envelope JSON) on the
instance's channel.
Field names are the published ones. Amounts are exact decimal strings in units of the
jackpot's currency ("1234.5"); timestamps are epoch milliseconds. A contract test decodes
every event any script emits with `decode_event`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from decimal import Decimal
from enum import StrEnum
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from app.core import jsonio
from app.schemas.common import StrictSchema

DECIMAL_STRING = re.compile(r"^-?\d+(\.\d+)?$")


class EventType(StrEnum):
    JACKPOT_UPDATE = "JackpotUpdateEvent"
    JACKPOT_WIN = "JackpotWinEvent"
    RAFFLE_WIN = "RaffleWinEvent"
    RAFFLE_NO_WINNERS = "RaffleNoWinnersEvent"
    RAFFLE_ROUND_OPENED = "RaffleRoundOpenedEvent"
    OPT_IN = "OptInEvent"
    WIN_DECISION = "WinDecisionEvent"
    INSTANCE_STATUS = "InstanceStatusEvent"


# Written to the events streams for the web processes, never sent to a client as such: an
# InstanceStatusEvent makes each process send the instance's JackpotUpdateEvent at once.
INTERNAL_EVENTS = frozenset({EventType.INSTANCE_STATUS})
PUBLIC_EVENTS = tuple(t for t in EventType if t not in INTERNAL_EVENTS)


def DecimalString(**kwargs: Any) -> fields.String:
    """An amount written as an exact decimal string (never a JSON number)."""
    return fields.String(
        validate=validate.Regexp(DECIMAL_STRING, error="Not a decimal string."),
        metadata={"format": "decimal"},
        **kwargs,
    )


class ExactNumber(fields.Field[Decimal]):
    """A JSON number kept exact (the JSON is parsed with Decimal floats); not a bool or string."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            raise ValidationError("Not a number.")
        return Decimal(value)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return value


def Multipliers(**kwargs: Any) -> fields.Dict:
    return fields.Dict(keys=fields.String(), values=ExactNumber(), **kwargs)


class PotUpdateSchema(StrictSchema):
    id = fields.String(required=True)
    name = fields.String(required=True, allow_none=True)
    is_progressive = fields.Boolean(required=True)
    current_value = DecimalString(required=True)


class RecentWinSchema(StrictSchema):
    """One of an instance's latest wins, as a snapshot lists it (jackpot and raffle wins)."""

    win_id = fields.String(required=True)
    win_pot_id = fields.String(required=True)
    brand_id = fields.String(required=True, metadata={"description": "operator_id:brand_id"})
    player_id = fields.String(required=True)
    win_amount = DecimalString(required=True)  # in the jackpot currency
    currency = fields.String(required=True)
    timestamp = fields.Integer(required=True)
    win_withheld = fields.Boolean(required=True)
    source_id = fields.String(required=True, allow_none=True)


class JackpotUpdateEventSchema(StrictSchema):
    id = fields.String(required=True)
    name = fields.String(
        required=True, allow_none=True, metadata={"description": "What a ticker shows."}
    )
    jackpot_type = fields.String(required=True, validate=validate.OneOf(["Jackpot", "Raffle"]))
    currency = fields.String(required=True)
    pots = fields.List(fields.Nested(PotUpdateSchema), required=True)
    allowed_brands = fields.List(fields.String(), required=True)
    allowed_sources = fields.List(fields.String(), required=True)
    status = fields.String(required=True)
    timestamp_start = fields.Integer(required=True, allow_none=True)
    timestamp_end = fields.Integer(required=True, allow_none=True)
    next_draw_at = fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "A raffle's next draw (its open round's end), epoch ms."},
    )
    last_updated = fields.Integer(required=True)
    recent_wins = fields.List(
        fields.Nested(RecentWinSchema),
        metadata={"description": "Only in a snapshot: the instance's latest wins, newest first."},
    )


class JackpotWinEventSchema(StrictSchema):
    brand_id = fields.String(required=True, metadata={"description": "operator_id:brand_id"})
    player_id = fields.String(required=True)
    source_id = fields.String(required=True, allow_none=True)
    instance_id = fields.String(required=True)
    jackpot_name = fields.String(required=True, allow_none=True)
    timestamp = fields.Integer(required=True)
    win_pot_id = fields.String(required=True)
    win_amount = DecimalString(required=True)
    jackpot_currency = fields.String(required=True)
    currency_multipliers = Multipliers(required=True)
    seed = DecimalString(required=True)
    seed_deficit = DecimalString(required=True)
    win_withheld = fields.Boolean(required=True)
    metadata = fields.Raw(required=True, allow_none=True)


class RaffleWinnerSchema(StrictSchema):
    player_id = fields.String(required=True)
    brand_id = fields.String(required=True, metadata={"description": "operator_id:brand_id"})
    currency = fields.String(required=True)
    win_amount = DecimalString(required=True)
    win_withheld = fields.Boolean(required=True)


class RaffleWinEventSchema(StrictSchema):
    brand_id = fields.String(required=True, allow_none=True)
    instance_id = fields.String(required=True)
    jackpot_name = fields.String(required=True, allow_none=True)
    jackpot_currency = fields.String(required=True)
    currency_multipliers = Multipliers(required=True)
    timestamp = fields.Integer(required=True)
    round = fields.Integer(required=True, metadata={"description": "The round drawn."})
    winners = fields.List(fields.Nested(RaffleWinnerSchema), required=True)
    win_withheld = fields.Boolean(required=True, metadata={"description": "Any winner's."})
    unpaid_prizes = fields.List(
        fields.Integer(),
        required=True,
        metadata={"description": "Prizes (from 1) left unpaid: fewer players than prizes."},
    )


class RaffleNoWinnersEventSchema(StrictSchema):
    """A raffle round drawn without a winner: nobody held a ticket; every prize stays unpaid
    and no money moves (lua/draw_raffle-11.lua)."""

    instance_id = fields.String(required=True)
    jackpot_name = fields.String(required=True, allow_none=True)
    timestamp = fields.Integer(required=True)
    round = fields.Integer(required=True, metadata={"description": "The round drawn."})
    reason = fields.String(required=True, validate=validate.OneOf(["NO_TICKETS"]))
    unpaid_prizes = fields.List(fields.Integer(), required=True)


class RaffleRoundOpenedEventSchema(StrictSchema):
    """A raffle round opened: its commitment (sha256 hex of its seed), published before any of
    its tickets sells, and the next round's (docs/raffles.md, "Verifying a draw")."""

    instance_id = fields.String(required=True)
    jackpot_name = fields.String(required=True, allow_none=True)
    round = fields.Integer(required=True)
    opened = fields.Integer(
        required=True,
        metadata={"description": "When its sales opened: the previous round's end, epoch ms."},
    )
    ends = fields.Integer(required=True, allow_none=True)
    commitment = fields.String(required=True)
    key_id = fields.String(required=True, metadata={"description": "The draw key's public id."})
    next_commitment = fields.String(required=True, allow_none=True)


class OptInEventSchema(StrictSchema):
    instance_id = fields.String(required=True)
    player_id = fields.String(required=True)
    ext_player_id = fields.String(required=True)
    player_brand_id = fields.String(required=True)
    preferred_contribution_value = DecimalString(required=True, allow_none=True)
    contribution_count = fields.Integer(required=True)
    contribution_value = fields.String(required=True, allow_none=True)
    opted_in = fields.Boolean(required=True)
    last_updated = fields.Integer(required=True)


class WinDecisionEventSchema(StrictSchema):
    """A withheld win approved (paid) or rejected (its amount back to the pot's reserve)."""

    instance_id = fields.String(required=True)
    win_id = fields.String(required=True)
    win_pot_id = fields.String(required=True)
    brand_id = fields.String(required=True, metadata={"description": "operator_id:brand_id"})
    player_id = fields.String(required=True)
    win_amount = DecimalString(required=True)
    decision = fields.String(required=True, validate=validate.OneOf(["approved", "rejected"]))
    reason = fields.String(required=True)
    timestamp = fields.Integer(required=True)


class InstanceStatusEventSchema(StrictSchema):
    """An instance's status changed (lua/set_status-6.lua); internal, see INTERNAL_EVENTS."""

    instance_id = fields.String(required=True)
    status = fields.String(
        required=True, validate=validate.OneOf(["Pending", "Active", "Paused", "Terminated"])
    )
    previous_status = fields.String(required=True)
    timestamp = fields.Integer(required=True)


EVENT_SCHEMAS: dict[EventType, type[Schema]] = {
    EventType.JACKPOT_UPDATE: JackpotUpdateEventSchema,
    EventType.JACKPOT_WIN: JackpotWinEventSchema,
    EventType.RAFFLE_WIN: RaffleWinEventSchema,
    EventType.RAFFLE_NO_WINNERS: RaffleNoWinnersEventSchema,
    EventType.RAFFLE_ROUND_OPENED: RaffleRoundOpenedEventSchema,
    EventType.OPT_IN: OptInEventSchema,
    EventType.WIN_DECISION: WinDecisionEventSchema,
    EventType.INSTANCE_STATUS: InstanceStatusEventSchema,
}


# -- what another operator may see ----------------------------------------------------------
# Every event type declares here how it is shown to an operator other than the one whose player
# or brands it names; the event stream refuses to send a type without a declaration (a test
# checks that each one has one), so a new event cannot go out unmasked by omission. A mask gets
# the viewer's operator id; a display token's viewer is no operator id (it holds a `|`, see
# app.core.security.Principal.viewer), so every player is masked for a lobby screen.
MASKED_PLAYER = "***"
Mask = Callable[[dict[str, Any], str], dict[str, Any]]


def _operator_of(brand_path: Any) -> str | None:
    return brand_path.partition(":")[0] if isinstance(brand_path, str) else None


def hide_for_others(owner: str, hidden: dict[str, Any], each: str | None = None) -> Mask:
    """Replace `hidden` fields unless the brand path in `owner` is the viewer's; with `each`,
    do so item by item in that list field."""

    def one(item: dict[str, Any], operator_id: str) -> dict[str, Any]:
        return item if _operator_of(item.get(owner)) == operator_id else {**item, **hidden}

    def mask(data: dict[str, Any], operator_id: str) -> dict[str, Any]:
        if each is None:
            return one(data, operator_id)
        items = data.get(each)
        if not isinstance(items, list):
            return data
        return {**data, each: [one(item, operator_id) for item in items]}

    return mask


def own_brands_only(data: dict[str, Any], operator_id: str) -> dict[str, Any]:
    """A shared instance's update lists only the viewer's brands and sources."""
    prefix = operator_id + ":"
    return {
        **data,
        "allowed_brands": [b for b in data["allowed_brands"] if b.startswith(prefix)],
        "allowed_sources": [
            s["source_id"] for s in data["allowed_sources"] if s["owner_id"].startswith(prefix)
        ],
    }


def same_for_everyone(data: dict[str, Any], operator_id: str) -> dict[str, Any]:
    """For events that name no player, brand, source or metadata."""
    return data


def never_sent(data: dict[str, Any], operator_id: str) -> dict[str, Any]:
    raise ValueError("an internal event is never sent to a client")


_hide_recent_winners = hide_for_others("brand_id", {"player_id": MASKED_PLAYER}, "recent_wins")


def update_view(data: dict[str, Any], operator_id: str) -> dict[str, Any]:
    """An update shows the viewer's brands and sources only; in a snapshot, its recent wins
    show other operators' players masked, as their win events do."""
    return _hide_recent_winners(own_brands_only(data, operator_id), operator_id)


MASKS: dict[EventType, Mask] = {
    EventType.JACKPOT_UPDATE: update_view,
    EventType.JACKPOT_WIN: hide_for_others(
        "brand_id", {"player_id": MASKED_PLAYER, "metadata": None}
    ),
    # the reason is the manager's, written about the player
    EventType.WIN_DECISION: hide_for_others("brand_id", {"player_id": MASKED_PLAYER, "reason": ""}),
    EventType.OPT_IN: hide_for_others(
        "player_brand_id", {"player_id": MASKED_PLAYER, "ext_player_id": MASKED_PLAYER}
    ),
    EventType.RAFFLE_WIN: hide_for_others("brand_id", {"player_id": MASKED_PLAYER}, "winners"),
    EventType.RAFFLE_NO_WINNERS: same_for_everyone,
    EventType.RAFFLE_ROUND_OPENED: same_for_everyone,
    EventType.INSTANCE_STATUS: never_sent,
}


class EventEnvelopeSchema(StrictSchema):
    """An event as a client receives it (published in /openapi.json)."""

    event_type = fields.String(
        required=True, validate=validate.OneOf([t.value for t in PUBLIC_EVENTS])
    )
    event_id = fields.String(
        required=True,
        allow_none=True,
        validate=validate.Length(min=1, max=64),
        metadata={"description": "<epoch>:<offset> of a stream event; null for an update."},
    )
    channel = fields.String(required=True, metadata={"description": "The instance id."})
    data = fields.Dict(required=True)


class StoredEventEnvelopeSchema(StrictSchema):
    """An event as a script stores and publishes it: internal events too."""

    event_type = fields.String(required=True, validate=validate.OneOf([t.value for t in EventType]))
    event_id = fields.String(required=True, validate=validate.Length(min=1))
    data = fields.Dict(required=True)


def decode_event(payload: str | bytes) -> dict[str, Any]:
    """An envelope JSON (a stream entry's `payload`, a pub/sub message) decoded and checked
    against the catalogue: {"event_type": EventType, "event_id", "data": loaded data}.
    Raises ValidationError when it does not match (unknown type, missing or extra fields)."""
    raw = json.loads(payload, parse_float=Decimal)
    envelope: dict[str, Any] = StoredEventEnvelopeSchema().load(raw)
    event_type = EventType(envelope["event_type"])
    data = EVENT_SCHEMAS[event_type]().load(envelope["data"])
    return {"event_type": event_type, "event_id": envelope["event_id"], "data": data}


def encode_event(event_type: EventType, event_id: str, data: dict[str, Any]) -> str:
    """The envelope JSON of an event built in Python (data checked against its schema)."""
    schema = EVENT_SCHEMAS[event_type]()
    errors = schema.validate(data)
    if errors:
        raise ValidationError(errors)
    return jsonio.dumps({"event_type": event_type.value, "event_id": event_id, "data": data})
