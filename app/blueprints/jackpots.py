"""Operators' jackpot API: contributions, opt-ins, the instance of a source, winners."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response

from app.http import load_args, load_body, principal, services
from app.schemas.contributions import (
    ContributeBySourceSchema,
    ContributeSchema,
    ContributeV2Schema,
    ContributionV2ItemSchema,
)
from app.schemas.optins import (
    InstanceQuerySchema,
    InstanceViewSchema,
    OptInSchema,
    OptInStatusSchema,
    OptInV2ResponseSchema,
    OptInV2Schema,
    WinnerSchema,
    WinnersQuerySchema,
)
from app.services.contributions import ContributionResult

blueprint = Blueprint("jackpots", __name__)

# Built once: constructing a marshmallow schema deep-copies its fields (~0.2 ms each).
CONTRIBUTE = ContributeSchema()
CONTRIBUTE_BY_SOURCE = ContributeBySourceSchema()
CONTRIBUTE_V2 = ContributeV2Schema()
CONTRIBUTION_V2_ITEMS = ContributionV2ItemSchema(many=True)
OPT_IN = OptInSchema()
OPT_IN_STATUS = OptInStatusSchema()
OPT_IN_V2 = OptInV2Schema()
OPT_IN_V2_RESPONSE = OptInV2ResponseSchema()
INSTANCE_QUERY = InstanceQuerySchema()
INSTANCE_VIEW = InstanceViewSchema()
WINNERS_QUERY = WinnersQuerySchema()
WINNERS = WinnerSchema(many=True)


def contribution_response(result: ContributionResult) -> Response | tuple[Any, int, Any]:
    if result.replay:
        # A repeated idempotency key: nothing changed; the first response's headers.
        return Response("", status=204, headers=result.headers)
    # The service shapes the body exactly as ContributionResponseSchema documents it.
    return result.body, 200, result.headers


@blueprint.post("/jackpots/contribute")
async def contribute() -> Any:
    body = await load_body(CONTRIBUTE)
    if body["callback"] is not None:
        await services().contributions.enqueue(principal(), "v1", body)
        return Response("", status=200)
    return contribution_response(await services().contributions.contribute_v1(principal(), body))


@blueprint.post("/jackpots/contribute/source")
async def contribute_by_source() -> Any:
    body = await load_body(CONTRIBUTE_BY_SOURCE)
    if body["callback"] is not None:
        await services().contributions.enqueue(principal(), "v1", body)
        return Response("", status=200)
    return contribution_response(await services().contributions.contribute_v1(principal(), body))


@blueprint.post("/v2/jackpots/contribute")
async def contribute_v2() -> Any:
    body = await load_body(CONTRIBUTE_V2)
    if body["options"].get("callback") is not None:
        await services().contributions.enqueue(principal(), "v2", body)
        return Response("", status=200)
    items = await services().contributions.contribute_v2(principal(), body)
    return CONTRIBUTION_V2_ITEMS.dump(items)


@blueprint.post("/jackpots/optin")
async def opt_in() -> Any:
    body = await load_body(OPT_IN)
    status = await services().optins.opt_in_v1(principal(), body)
    return OPT_IN_STATUS.dump(status) if status is not None else None


@blueprint.post("/v2/jackpots/optin")
async def opt_in_v2() -> Any:
    body = await load_body(OPT_IN_V2)
    return OPT_IN_V2_RESPONSE.dump(await services().optins.opt_in_v2(principal(), body))


@blueprint.get("/jackpots/instances/source/<source_id>/brand/<brand_id>")
async def instance_for_source(source_id: str, brand_id: str) -> Any:
    query = load_args(INSTANCE_QUERY)
    segments = [s.strip() for s in (query["segments"] or "").split(",") if s.strip()]
    view = await services().instances.for_source(
        principal(), source_id, brand_id, query["player_id"], query["country_code"], segments
    )
    return INSTANCE_VIEW.dump(view)


@blueprint.get("/jackpots/instances/<instance_id>/winners")
async def winners(instance_id: str) -> Any:
    query = load_args(WINNERS_QUERY)
    found = await services().instances.winners(
        principal(), instance_id, query["limit"], query["brand_id"]
    )
    return WINNERS.dump(found)


@blueprint.get("/jackpots/instances/<instance_id>/winners/pots")
async def pot_winners(instance_id: str) -> Any:
    query = load_args(WINNERS_QUERY)
    by_pot = await services().instances.pot_winners(
        principal(), instance_id, query["limit"], query["brand_id"]
    )
    return {pot: WINNERS.dump(found) for pot, found in by_pot.items()}
