"""Operators' jackpot API: contributions, opt-ins, the instance of a source, winners."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate
from quart import Blueprint, Response

from app.core.refusals import ELIGIBILITY, Code
from app.core.security import Principal
from app.edge.contract import Reply, declare
from app.edge.direct import DirectRoute
from app.edge.http import Answer, principal, respond, services
from app.schemas.common import StrictSchema
from app.schemas.contributions import (
    IDEMPOTENCY_KEY,
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
from app.services import Services
from app.services.contributions import ContributionResult

blueprint = Blueprint("jackpots", __name__)

# Built once: constructing a marshmallow schema deep-copies its fields (~0.2 ms each).
CONTRIBUTION_V2_ITEMS = ContributionV2ItemSchema(many=True)
OPT_IN_STATUS = OptInStatusSchema()
OPT_IN_V2_RESPONSE = OptInV2ResponseSchema()
INSTANCE_VIEW = InstanceViewSchema()
WINNERS = WinnerSchema(many=True)

INSTANCE_ID = fields.String(validate=validate.Length(1, 64))
SOURCE_ID = fields.String(validate=validate.Length(1, 64))
BRAND = fields.String(
    validate=validate.Length(1, 130),
    metadata={"description": "`operator_id:brand_id`, or a brand id of the caller's operator."},
)
POT_WINNERS = {
    "type": "object",
    "description": "Pot id -> that pot's latest winners.",
    "additionalProperties": {"type": "array", "items": WinnerSchema},
}
OUTCOME_HEADERS = {
    "X-Contribution-Id": "The contribution's id (read its outcome back with it).",
    "X-Instance-Id": "The instance contributed to.",
}
ASYNC_ACCEPTED = "; with a callback: an empty text/plain body, the outcome is POSTed to it"
REPLAYED = Reply(
    "A repeated idempotency key with the same body: nothing changed; no body, the first "
    "response's headers.",
    headers=OUTCOME_HEADERS,
)
V2_RULES = {"owner_id": "when both are given, owner_id equals operator_id."}
SCOPE = (Code.OPERATOR_FORBIDDEN, Code.BRAND_NOT_FOUND)
# Contributing and opting in: an operator's backend (a token with only `admin` or `platform`
# manages, it does not play).
OPERATOR = "operator"
INSTANCE_STATE = (
    Code.INSTANCE_NOT_ACTIVE,
    Code.INSTANCE_NOT_STARTED,
    Code.INSTANCE_ENDED,
    Code.INSTANCE_TERMINATED,
)
TARGETS = (Code.INSTANCE_NOT_FOUND, Code.SOURCE_NOT_FOUND, Code.NO_ACTIVE_INSTANCE)
CONTRIBUTION_REFUSALS = (
    *SCOPE,
    *TARGETS,
    *sorted(ELIGIBILITY),
    *INSTANCE_STATE,
    Code.IDEMPOTENCY_MISMATCH,
    Code.AMOUNT_OVERFLOW,
    Code.UNKNOWN_CURRENCY,
    Code.WAGER_TOO_LARGE,
    Code.CONTRIBUTION_BELOW_MIN,
    Code.CALLBACK_NOT_ALLOWED,
    Code.CALLBACK_HEADER_RESERVED,
    Code.QUEUE_UNAVAILABLE,
)
OPT_IN_REFUSALS = (
    *SCOPE,
    *TARGETS,
    *sorted(ELIGIBILITY - {Code.NOT_OPTED_IN}),
    *INSTANCE_STATE,
    Code.UNKNOWN_CURRENCY,
    Code.CONTRIBUTION_BELOW_MIN,
    Code.CONTRIBUTION_ABOVE_MAX,
    Code.CONTRIBUTION_TOO_LARGE,
    Code.CONTRIBUTION_PRECISION,
)


def contribution_answer(result: ContributionResult) -> Answer:
    if result.replay:
        # A repeated idempotency key: nothing changed; the first response's headers.
        return Answer(204, None, result.headers)
    # The service shapes the body exactly as ContributionResponseSchema documents it.
    return Answer(200, result.body, result.headers)


def accepted() -> Response:
    """Asynchronous mode: accepted, nothing to say yet (the outcome goes to the callback)."""
    return Response(b"", status=200, content_type="text/plain")


def queued_v1(body: dict[str, Any]) -> bool:
    return body["callback"] is not None


def queued_v2(body: dict[str, Any]) -> bool:
    return body["options"].get("callback") is not None


async def answer_v1(gateway: Services, caller: Principal, body: dict[str, Any]) -> Answer:
    """A synchronous v1 contribution: the instance is named (contribute) or found from the
    source; served by the Quart views below and by app.edge.direct."""
    return contribution_answer(await gateway.contributions.contribute_v1(caller, body))


async def answer_v2(gateway: Services, caller: Principal, body: dict[str, Any]) -> Answer:
    outcome = await gateway.contributions.contribute_v2(caller, body)
    if outcome.replay is not None:  # like v1: nothing changed, the target's first headers
        return contribution_answer(outcome.replay)
    return Answer(200, CONTRIBUTION_V2_ITEMS.dump(outcome.items))


async def contribute_v1(body: dict[str, Any]) -> Any:
    """Both v1 routes (Quart's side)."""
    if queued_v1(body):
        await services().contributions.enqueue(principal(), "v1", body)
        return accepted()
    return respond(await answer_v1(services(), principal(), body))


V1_RESPONSES = {
    200: Reply(
        "The outcome" + ASYNC_ACCEPTED + ".",
        schema=ContributionResponseSchema,
        headers=OUTCOME_HEADERS,
        text_types=("text/plain",),
    ),
    204: REPLAYED,
}


@blueprint.post("/jackpots/contribute")
@declare(
    "Contribute a player's side bet to one instance.",
    role=OPERATOR,
    tag="Contributions",
    body=ContributeSchema(),
    responses=V1_RESPONSES,
    refusals=CONTRIBUTION_REFUSALS,
)
async def contribute(body: dict[str, Any]) -> Any:
    return await contribute_v1(body)


@blueprint.post("/jackpots/contribute/source")
@declare(
    "Contribute a player's side bet to the instance a source offers the player.",
    role=OPERATOR,
    tag="Contributions",
    body=ContributeBySourceSchema(),
    responses=V1_RESPONSES,
    refusals=CONTRIBUTION_REFUSALS,
)
async def contribute_by_source(body: dict[str, Any]) -> Any:
    return await contribute_v1(body)


@blueprint.post("/v2/jackpots/contribute")
@declare(
    "Contribute to a target instance or source and to the instances linked to it.",
    role=OPERATOR,
    tag="v2",
    body=ContributeV2Schema(),
    rules=V2_RULES,
    responses={
        200: Reply(
            "One item per instance attempted, the target first" + ASYNC_ACCEPTED + ".",
            schema=ContributionV2ItemSchema(many=True),
            text_types=("text/plain",),
        ),
        204: REPLAYED,
    },
    refusals=CONTRIBUTION_REFUSALS,
)
async def contribute_v2(body: dict[str, Any]) -> Any:
    if queued_v2(body):
        await services().contributions.enqueue(principal(), "v2", body)
        return accepted()
    return respond(await answer_v2(services(), principal(), body))


# The contribution routes app.edge.direct answers without Quart's request machinery, for the
# requests it can (see there); path -> the body schema, the answer, which bodies are queued.
DIRECT_ROUTES = {
    "/jackpots/contribute": DirectRoute.of(contribute, answer_v1, queued_v1),
    "/jackpots/contribute/source": DirectRoute.of(contribute_by_source, answer_v1, queued_v1),
    "/v2/jackpots/contribute": DirectRoute.of(contribute_v2, answer_v2, queued_v2),
}


class RecordedQuerySchema(StrictSchema):
    instance_id = fields.String(required=True, validate=validate.Length(1, 64))
    idempotency_key = fields.String(required=True, validate=IDEMPOTENCY_KEY)


@blueprint.get("/jackpots/contributions")
@declare(
    "Read back the response of a contribution made with an idempotency key.",
    description="For a caller who lost the response (a timeout, a 504 OUTCOME_UNKNOWN): the "
    "response of one instance's contribution, v1 or v2, as first answered; remembered as "
    "long as the idempotency key.",
    tag="Contributions",
    query=RecordedQuerySchema(),
    responses={
        200: Reply(
            "The contribution's response, as first answered.",
            schema=ContributionResponseSchema,
            headers=OUTCOME_HEADERS,
        ),
    },
    refusals=(Code.INSTANCE_NOT_FOUND, Code.CONTRIBUTION_NOT_FOUND),
)
async def recorded_contribution(query: dict[str, Any]) -> Any:
    result = await services().contributions.recorded(
        principal(), query["instance_id"], query["idempotency_key"]
    )
    return result.body, 200, result.headers


@blueprint.post("/jackpots/optin")
@declare(
    "Opt a player in to an instance (with an optional preferred contribution), or out.",
    role=OPERATOR,
    tag="Opt-in",
    body=OptInSchema(),
    responses={
        200: Reply("The player's opt-in status in the instance.", schema=OptInStatusSchema),
    },
    refusals=OPT_IN_REFUSALS,
)
async def opt_in(body: dict[str, Any]) -> Any:
    status = await services().optins.opt_in_v1(principal(), body)
    return OPT_IN_STATUS.dump(status)


@blueprint.post("/v2/jackpots/optin")
@declare(
    "Opt a player in to or out of a target instance or source, optionally with its links.",
    role=OPERATOR,
    tag="v2",
    body=OptInV2Schema(),
    rules={"owner_id": V2_RULES["owner_id"]},
    responses={200: OptInV2ResponseSchema},
    refusals=OPT_IN_REFUSALS,
)
async def opt_in_v2(body: dict[str, Any]) -> Any:
    return OPT_IN_V2_RESPONSE.dump(await services().optins.opt_in_v2(principal(), body))


@blueprint.get("/jackpots/instances/source/<source_id>/brand/<brand_id>")
@declare(
    "Find the instance a source offers a player of a brand, with the player's opt-in status.",
    tag="Instances",
    path={"source_id": SOURCE_ID, "brand_id": BRAND},
    query=InstanceQuerySchema(),
    responses={200: InstanceViewSchema},
    refusals=(*SCOPE, Code.SOURCE_NOT_FOUND, Code.NO_ACTIVE_INSTANCE, *sorted(ELIGIBILITY)),
)
async def instance_for_source(source_id: str, brand_id: str, query: dict[str, Any]) -> Any:
    segments = [s.strip() for s in (query["segments"] or "").split(",") if s.strip()]
    view = await services().instances.for_source(
        principal(), source_id, brand_id, query["player_id"], query["country_code"], segments
    )
    return INSTANCE_VIEW.dump(view)


@blueprint.get("/jackpots/instances/<instance_id>/winners")
@declare(
    "List an instance's latest winners, newest first.",
    tag="Instances",
    path={"instance_id": INSTANCE_ID},
    query=WinnersQuerySchema(),
    responses={200: WinnerSchema(many=True)},
    refusals=(*SCOPE, Code.INSTANCE_NOT_FOUND),
)
async def winners(instance_id: str, query: dict[str, Any]) -> Any:
    found = await services().instances.winners(
        principal(), instance_id, query["limit"], query["brand_id"]
    )
    return WINNERS.dump(found)


@blueprint.get("/jackpots/instances/<instance_id>/winners/pots")
@declare(
    "List an instance's latest winners of each pot, newest first.",
    tag="Instances",
    path={"instance_id": INSTANCE_ID},
    query=WinnersQuerySchema(),
    responses={200: Reply("The winners of each pot.", schema=POT_WINNERS)},
    refusals=(*SCOPE, Code.INSTANCE_NOT_FOUND),
)
async def pot_winners(instance_id: str, query: dict[str, Any]) -> Any:
    by_pot = await services().instances.pot_winners(
        principal(), instance_id, query["limit"], query["brand_id"]
    )
    return {pot: WINNERS.dump(found) for pot, found in by_pot.items()}
