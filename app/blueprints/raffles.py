"""Raffle tickets: operations 6, 7 and 8."""

from __future__ import annotations

from typing import Any

from quart import Blueprint

from app.http import load_args, principal, services
from app.schemas.raffles import TicketSchema, TicketsQuerySchema

blueprint = Blueprint("raffles", __name__)

TICKETS_QUERY = TicketsQuerySchema()
TICKETS = TicketSchema(many=True)


@blueprint.get("/jackpots/instances/raffle/tickets/<instance_id>")
async def round_tickets(instance_id: str) -> Any:
    query = load_args(TICKETS_QUERY)
    return TICKETS.dump(await services().raffles.round_tickets(principal(), instance_id, query))


@blueprint.get("/jackpots/instances/raffle/tickets/<instance_id>/brand/<brand_id>/<player_id>")
async def player_tickets(instance_id: str, brand_id: str, player_id: str) -> Any:
    found = await services().raffles.player_tickets(principal(), instance_id, brand_id, player_id)
    return TICKETS.dump(found)


@blueprint.get("/jackpots/instances/raffle/tickets/brand/<brand_id>/<player_id>")
async def active_tickets(brand_id: str, player_id: str) -> Any:
    return TICKETS.dump(await services().raffles.active_tickets(principal(), brand_id, player_id))
