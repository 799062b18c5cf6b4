"""Operators' jackpot API: contributions, opt-ins, the instance of a source, winners."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response

from app.http import load_args, load_body, principal, services
from app.schemas.contributions import (
    ContributeBySourceSchema,
    ContributeSchema,
    ContributeV2Schema,
    ContributionResponseSchema,
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


def contribution_response(result: ContributionResult) -> Response | tuple[Any, int, Any]:
    if result.replay:
        # A repeated idempotency key: nothing changed; the first response's headers.
        return Response("", status=204, headers=result.headers)
    return ContributionResponseSchema().dump(result.body), 200, result.headers


@blueprint.post("/jackpots/contribute")
async def contribute() -> Any:
    body = await load_body(ContributeSchema())
    if body["callback"] is not None:
        await services().contributions.enqueue(principal(), "v1", body)
        return Response("", status=200)
    return contribution_response(await services().contributions.contribute_v1(principal(), body))


@blueprint.post("/jackpots/contribute/source")
async def contribute_by_source() -> Any:
    body = await load_body(ContributeBySourceSchema())
    if body["callback"] is not None:
        await services().contributions.enqueue(principal(), "v1", body)
        return Response("", status=200)
    return contribution_response(await services().contributions.contribute_v1(principal(), body))


@blueprint.post("/v2/jackpots/contribute")
async def contribute_v2() -> Any:
    body = await load_body(ContributeV2Schema())
    if body["options"].get("callback") is not None:
        await services().contributions.enqueue(principal(), "v2", body)
        return Response("", status=200)
    items = await services().contributions.contribute_v2(principal(), body)
    return ContributionV2ItemSchema(many=True).dump(items)


@blueprint.post("/jackpots/optin")
async def opt_in() -> Any:
    body = await load_body(OptInSchema())
    status = await services().optins.opt_in_v1(principal(), body)
    return OptInStatusSchema().dump(status) if status is not None else None


@blueprint.post("/v2/jackpots/optin")
async def opt_in_v2() -> Any:
    body = await load_body(OptInV2Schema())
    return OptInV2ResponseSchema().dump(await services().optins.opt_in_v2(principal(), body))


@blueprint.get("/jackpots/instances/source/<source_id>/brand/<brand_id>")
async def instance_for_source(source_id: str, brand_id: str) -> Any:
    query = load_args(InstanceQuerySchema())
    segments = [s.strip() for s in (query["segments"] or "").split(",") if s.strip()]
    view = await services().instances.for_source(
        principal(), source_id, brand_id, query["player_id"], query["country_code"], segments
    )
    return InstanceViewSchema().dump(view)


@blueprint.get("/jackpots/instances/<instance_id>/winners")
async def winners(instance_id: str) -> Any:
    query = load_args(WinnersQuerySchema())
    found = await services().instances.winners(
        principal(), instance_id, query["limit"], query["brand_id"]
    )
    return WinnerSchema(many=True).dump(found)


@blueprint.get("/jackpots/instances/<instance_id>/winners/pots")
async def pot_winners(instance_id: str) -> Any:
    query = load_args(WinnersQuerySchema())
    by_pot = await services().instances.pot_winners(
        principal(), instance_id, query["limit"], query["brand_id"]
    )
    return {pot: WinnerSchema(many=True).dump(found) for pot, found in by_pot.items()}
