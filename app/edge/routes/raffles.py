"""Raffle tickets: operations 6, 7 and 8."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate
from quart import Blueprint

from app.core.refusals import Code
from app.edge.contract import declare
from app.edge.http import principal, services
from app.schemas.contributions import PLAYER_ID
from app.schemas.raffles import OperatorRoundSchema, TicketSchema, TicketsQuerySchema

blueprint = Blueprint("raffles", __name__)

TICKETS = TicketSchema(many=True)
TAG = "Raffles"
INSTANCE_ID = fields.String(validate=validate.Length(1, 64))
PLAYER = fields.String(validate=PLAYER_ID)
BRAND = fields.String(
    validate=validate.Length(1, 130),
    metadata={"description": "`operator_id:brand_id`, or a brand id of the caller's operator."},
)
SCOPE = (Code.OPERATOR_FORBIDDEN, Code.BRAND_NOT_FOUND)


@blueprint.get("/jackpots/instances/raffle/tickets/<instance_id>")
@declare(
    "List the tickets of a raffle's current round: the caller's players holding a ticket "
    "(or one brand's), sorted and paged; ties go by brand, then player id (reversed when "
    "descending).",
    tag=TAG,
    path={"instance_id": INSTANCE_ID},
    query=TicketsQuerySchema(),
    responses={200: TicketSchema(many=True)},
    refusals=(*SCOPE, Code.INSTANCE_NOT_FOUND, Code.NOT_A_RAFFLE),
)
async def round_tickets(instance_id: str, query: dict[str, Any]) -> Any:
    return TICKETS.dump(await services().raffles.round_tickets(principal(), instance_id, query))


@blueprint.get("/jackpots/instances/raffle/tickets/<instance_id>/brand/<brand_id>/<player_id>")
@declare(
    "Read one player's tickets in a raffle's current round (an empty list without any).",
    tag=TAG,
    path={"instance_id": INSTANCE_ID, "brand_id": BRAND, "player_id": PLAYER},
    responses={200: TicketSchema(many=True)},
    refusals=(*SCOPE, Code.INSTANCE_NOT_FOUND, Code.NOT_A_RAFFLE),
)
async def player_tickets(instance_id: str, brand_id: str, player_id: str) -> Any:
    found = await services().raffles.player_tickets(principal(), instance_id, brand_id, player_id)
    return TICKETS.dump(found)


@blueprint.get("/jackpots/instances/raffle/tickets/brand/<brand_id>/<player_id>")
@declare(
    "Read one player's tickets in every raffle that is Active at the time of the request.",
    tag=TAG,
    path={"brand_id": BRAND, "player_id": PLAYER},
    responses={200: TicketSchema(many=True)},
    refusals=SCOPE,
)
async def active_tickets(brand_id: str, player_id: str) -> Any:
    return TICKETS.dump(await services().raffles.active_tickets(principal(), brand_id, player_id))


@blueprint.get("/jackpots/instances/raffle/rounds/<instance_id>/<round_id>")
@declare(
    "Read a round of a raffle the caller's brands play: a drawn one with everything needed "
    "to check its draw (commitment, seed, random numbers, winners, ticket snapshot and its "
    "hash; other operators' players are `***`), or the open one's commitment.",
    tag=TAG,
    path={"instance_id": INSTANCE_ID, "round_id": fields.Integer(validate=validate.Range(1))},
    responses={200: OperatorRoundSchema},
    refusals=(Code.INSTANCE_NOT_FOUND, Code.NOT_A_RAFFLE, Code.ROUND_NOT_FOUND),
)
async def raffle_round(instance_id: str, round_id: int) -> Any:
    found = await services().raffles.operator_round(principal(), instance_id, round_id)
    return OperatorRoundSchema().dump(found)
