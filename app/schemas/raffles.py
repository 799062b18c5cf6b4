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
    round = fields.Integer(
        metadata={
            "description": "The round the tickets belong to: the open round, or the next once "
            "the open round's sales closed at its end (it is drawn after)."
        }
    )
    brand_id = fields.String()
    player_id = fields.String()
    ticket_count = fields.Integer()
    accumulated_cost = fields.String()
    timestamp_start = fields.Integer()
    timestamp_end = fields.Integer()


class RoundWinnerSchema(StrictSchema):
    prize = fields.Integer(metadata={"description": "The prize's place in `prizes`, from 1."})
    index = fields.Integer(metadata={"description": "The winner's index in `tickets`."})
    operator_id = fields.String()
    brand_id = fields.String()
    player_id = fields.String()
    tickets = fields.String(metadata={"description": "The winner's tickets in the round."})
    win_id = fields.String()
    win_amount = fields.String(metadata={"description": "Micro-units of the currency."})
    from_pot = fields.String(metadata={"description": "Micro-units paid from the prize pot."})
    from_reserve = fields.String(
        metadata={"description": "Micro-units paid from the prize pot's reserve."}
    )
    shortfall = fields.String(metadata={"description": "Micro-units of operator funding."})
    win_withheld = fields.Boolean()


class RoundTicketSchema(StrictSchema):
    index = fields.Integer()
    player_key = fields.String(metadata={"description": "`operator:brand:player`."})
    tickets = fields.Integer()
    salt = fields.String(
        allow_none=True,
        metadata={
            "description": "Snapshot version 2: the line's salt (hex); null in another "
            "operator's line."
        },
    )
    player_commit = fields.String(
        allow_none=True,
        metadata={
            "description": "Snapshot version 2: sha256 hex of `<player_key> <salt>`, the "
            "name the snapshot hash is taken over."
        },
    )


class RaffleRoundSchema(StrictSchema):
    """A raffle round: the open one (round, commitment, opened, ends) or a drawn one, with
    everything needed to recompute its winners (docs/raffles.md, "Verifying a draw")."""

    round = fields.Integer(required=True)
    status = fields.String(required=True, validate=validate.OneOf(["open", "drawn"]))
    commitment = fields.String(allow_none=True, metadata={"description": "sha256(seed), hex."})
    opened = fields.Integer()
    ends = fields.Integer(allow_none=True)
    instance_id = fields.String()
    seed = fields.String(metadata={"description": "The round's 32-byte seed, hex."})
    drawn_at = fields.Integer()
    by = fields.String()
    tickets_total = fields.String()
    players = fields.Integer()
    randoms = fields.List(fields.String(), metadata={"description": "u_j, 52-bit integers."})
    targets = fields.List(fields.String(), metadata={"description": "u_j mod R per winner."})
    prize_pot = fields.String(allow_none=True)
    pot_value = fields.String(metadata={"description": "The pot at the draw, micro-units."})
    winners = fields.List(fields.Nested(RoundWinnerSchema))
    unpaid_prizes = fields.List(fields.Integer())
    next_round = fields.Integer(allow_none=True)
    next_commitment = fields.String(allow_none=True)
    snapshot_hash = fields.String(allow_none=True)
    snapshot_version = fields.Integer(
        metadata={"description": "1: lines name player keys; 2: salted player commits."}
    )
    draw_version = fields.Integer(
        metadata={"description": "2: randoms from the seed and the snapshot hash."}
    )
    key_id = fields.String(allow_none=True, metadata={"description": "The draw key's id."})
    tickets = fields.List(fields.Nested(RoundTicketSchema))


class OperatorRoundSchema(RaffleRoundSchema):
    """A raffle round as an operator sees it: another operator's players are `***` in
    `winners` (`player_id`) and in `tickets` (`player_key` `operator:brand:***`); the
    commitment, seed, random numbers, snapshot hash and every ticket count stay published
    (docs/raffles.md, "Verifying a draw")."""

    class Meta(RaffleRoundSchema.Meta):
        exclude = ("by",)
