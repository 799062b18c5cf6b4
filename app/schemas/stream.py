"""Frames a client sends on the event stream (`GET /events`, docs/events.md); the events it
receives are the catalogue in app.schemas.events."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate

from app.schemas.common import Id, StrictSchema
from app.schemas.events import PUBLIC_EVENTS

ALL_EVENTS = "*"
EVENT_CHOICES = frozenset([*(t.value for t in PUBLIC_EVENTS), ALL_EVENTS])
MAX_CHANNELS = 10_000  # instance ids, brands or positions in one frame
# Hypercorn's limit on one client frame (positions for MAX_CHANNELS channels fit).
MAX_CLIENT_FRAME_BYTES = 1024 * 1024


class EventChoice(fields.Field[str]):
    """An event type (or `*`), written as a string or as `{"event_type": ...}`."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, dict) and set(value) == {"event_type"}:
            value = value["event_type"]
        if not isinstance(value, str) or value not in EVENT_CHOICES:
            raise ValidationError(f"Must be one of: {', '.join(sorted(EVENT_CHOICES))}.")
        return value


def Positions() -> fields.Dict:
    """{instance id: the event id last received on that channel}. A value that is not an
    event id is not a frame error: that channel gets ResumeFailed (invalid)."""
    return fields.Dict(
        keys=Id(),
        values=fields.String(),
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=MAX_CHANNELS),
    )


class ChannelsSchema(StrictSchema):
    instance_ids = fields.List(
        Id(), load_default=None, allow_none=True, validate=validate.Length(max=MAX_CHANNELS)
    )
    brands = fields.List(
        fields.String(validate=validate.Regexp(r"^[A-Za-z0-9_.-]+:[A-Za-z0-9_.-]+$")),
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=MAX_CHANNELS),
        metadata={"description": "operator_id:brand_id"},
    )
    positions = Positions()


class AuthenticateSchema(ChannelsSchema):
    """The first frame. Optional: `events`, `instance_ids`, `brands` subscribe at once (as a
    SubscribeRequest would, so the first snapshot covers only those); `positions` resume."""

    token = fields.String(required=True, validate=validate.Length(min=1, max=8192))
    events = fields.List(EventChoice(), load_default=None, allow_none=True)
    # The old cursor over every instance: accepted from old clients and ignored (a fresh
    # snapshot follows); send `positions` to resume.
    last_event_id = fields.String(load_default=None, allow_none=True, load_only=True)


class SubscribeRequestSchema(ChannelsSchema):
    """`events`: the event types wanted (`*` = all); `instance_ids` and `brands`: the
    channels (both null: every visible instance); `positions`: where to resume."""

    events = fields.List(EventChoice(), required=True)


class PongSchema(StrictSchema):
    """`{"Pong": {}}`: the answer to a Ping (any frame also counts as a sign of life)."""
