"""Raffle tickets (operations 6, 7, 8) and raffle rounds."""

from __future__ import annotations

from marshmallow import fields, validate

from app.schemas.common import StrictSchema

SORT_FIELDS = ("ticket_count", "timestamp_end", "player_id")


class TicketsQuerySchema(StrictSchema):
    """GET /jackpots/instances/raffle/tickets/{instance_id} query."""

    brand_id = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 130))
    sort_field = fields.String(load_default="ticket_count", validate=validate.OneOf(SORT_FIELDS))
    sort_direction = fields.Integer(load_default=-1, validate=validate.OneOf([1, -1]))
    page = fields.Integer(load_default=1, validate=validate.Range(1, 1_000_000))
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))


class TicketSchema(StrictSchema):
    """The raffle ticket record; accumulated_cost is a decimal string of the instance
    currency (the remainder carried towards the next ticket)."""

    instance_id = fields.String()
    brand_id = fields.String()
    player_id = fields.String()
    ticket_count = fields.Integer()
    accumulated_cost = fields.String()
    timestamp_start = fields.Integer()
    timestamp_end = fields.Integer()
