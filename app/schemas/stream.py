"""Frames a client sends on the event stream (`GET /events`); the events it receives are
the catalogue in app.schemas.events."""

from __future__ import annotations

from marshmallow import fields, validate

from app.schemas.common import Id, StrictSchema
from app.schemas.events import PUBLIC_EVENTS

ALL_EVENTS = "*"
MAX_EVENT_ID_LENGTH = 64 * 1024


class AuthenticateSchema(StrictSchema):
    token = fields.String(required=True, validate=validate.Length(min=1, max=8192))
    last_event_id = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=MAX_EVENT_ID_LENGTH)
    )


class EventChoiceSchema(StrictSchema):
    event_type = fields.String(
        required=True, validate=validate.OneOf([*(t.value for t in PUBLIC_EVENTS), ALL_EVENTS])
    )


class SubscribeRequestSchema(StrictSchema):
    """`events`: the event types wanted (`*` = all); `instance_ids`: only these instances."""

    events = fields.List(fields.Nested(EventChoiceSchema), required=True)
    instance_ids = fields.List(Id(), load_default=None, allow_none=True)
