"""/admin: jackpot managers configure operators, accounts, currencies, sources, instances."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from marshmallow import fields, validate
from quart import Blueprint, Response

from app.core.refusals import Code, Refused
from app.edge.contract import Reply, Scope, View, declare
from app.edge.errors import APIError
from app.edge.http import dumped, no_content, principal, services
from app.schemas.admin import (
    AccountRolesSchema,
    AccountSchema,
    AccountViewSchema,
    CallbackSecretSchema,
    CurrenciesSchema,
    InstanceSchema,
    InstanceStateSchema,
    LedgerPageSchema,
    OperatorSchema,
    OperatorViewSchema,
    SourceSchema,
    StatusChangeSchema,
)
from app.schemas.common import Id, Pattern, StrictSchema
from app.schemas.managers import (
    AuditPageSchema,
    BoostSchema,
    BoostViewSchema,
    DeadLetterSchema,
    DeadLettersSchema,
    DecisionSchema,
    FailedDeliveriesSchema,
    FailedDeliverySchema,
    FailedQuerySchema,
    MeterQuerySchema,
    MeterReportSchema,
    OperatorQuerySchema,
    ReconciliationSchema,
    RedeliveredSchema,
    RejectionSchema,
    ReplayedSchema,
    WinViewSchema,
    WithheldPageSchema,
    WithheldQuerySchema,
)
from app.schemas.raffles import RaffleRoundSchema
from app.services.scope import records_operator
from app.services.treasury import meter_report_csv, utc_day

blueprint = Blueprint("admin", __name__, url_prefix="/admin")

STATUS_ACTIONS = ("activate", "pause", "resume", "terminate")
TAG = "Admin"
PLATFORM, OPERATOR = Scope.PLATFORM, Scope.OPERATOR


def admin_route(summary: str, *, scope: Scope, **declared: Any) -> Callable[[View], View]:
    """Every route of this blueprint: listed under Admin, with the scope it reaches (its
    role follows from it). The app refuses to build with an /admin route that has none."""
    return declare(summary, tag=TAG, scope=scope, **declared)


INSTANCE_ID = fields.String(validate=validate.Length(1, 64))
NO_CONTENT = Reply("Deleted; no body.")
# An instance shared by several operators, or a platform account: the platform manages it.
SHARED = Code.PLATFORM_REQUIRED
RAFFLE_DRAW_REFUSALS = (
    Code.INSTANCE_NOT_FOUND,
    SHARED,
    Code.NOT_A_RAFFLE,
    Code.NO_OPEN_ROUND,
    Code.ROUND_NOT_CLOSED,
    Code.ROUND_ALREADY_DRAWN,
    Code.INSTANCE_NOT_ACTIVE,
)
CURRENCY_KEYS = "keys are 3-letter currency codes"
CURRENCY_RULES = {
    "multipliers": f"{CURRENCY_KEYS}; the base currency's multiplier is 1.",
    "decimals": f"{CURRENCY_KEYS} that have a multiplier.",
    "brand_overrides": "keys are `operator_id:brand_id`; their keys are currencies that have a "
    "multiplier, not the base currency.",
}
INSTANCE_RULES = {
    "pots": "at least one pot for a Jackpot; unique pot ids; pot shares plus house_share add up "
    "to exactly 1; a pot's seed and trigger within its max_value; MustDropBy min below max.",
    "contribution_limits": f"{CURRENCY_KEYS}; min not above max.",
    "timestamp_end": "after timestamp_start.",
    "timestamp_start": "required for a Pending instance.",
    "raffle": "required for a Raffle; a draw at the end needs timestamp_end.",
    "blocked_countries": "no country both allowed and blocked.",
    "linked_instances": "an instance does not link to itself.",
}


class LedgerQuerySchema(StrictSchema):
    after = fields.String(
        load_default="-",
        # A Redis stream id's parts are 64-bit: 19 digits always fit (20 may not).
        validate=Pattern(r"^(-|[0-9]{1,19}-[0-9]{1,19})$"),
        metadata={"description": "Entries after this entry id (`-`: from the start)."},
    )
    count = fields.Integer(load_default=100, validate=validate.Range(1, 1000))


class AuditQuerySchema(LedgerQuerySchema, OperatorQuerySchema):
    pass


@blueprint.before_request
async def require_admin() -> None:
    # Also declared per route (its scope); this keeps any route of the blueprint closed.
    if not principal().is_admin:
        raise APIError(403, "ADMIN_REQUIRED", "This operation needs a token with the admin role.")


@blueprint.get("/operators")
@admin_route(
    "List the operators the caller sees (its own; all for the platform) and their brands "
    "(never their callback secrets).",
    scope=OPERATOR,
    responses={200: OperatorViewSchema(many=True)},
)
async def list_operators() -> list[Any]:
    return await services().admin.operators(principal())


@blueprint.post("/operators")
@admin_route(
    "Create or replace an operator and its brands.",
    scope=PLATFORM,
    body=OperatorSchema(),
    responses={200: OperatorViewSchema},
)
async def put_operator(body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    return await services().admin.put_operator(body, by=principal()), 200


@blueprint.post("/operators/<operator_id>/callback-secret")
@admin_route(
    "Rotate an operator's callback secret: a new one is generated and shown this once.",
    scope=OPERATOR,
    path={"operator_id": Id()},
    responses={200: CallbackSecretSchema},
    refusals=(Code.OPERATOR_NOT_FOUND,),
)
async def rotate_callback_secret(operator_id: str) -> dict[str, Any]:
    return await services().admin.rotate_callback_secret(operator_id, by=principal())


@blueprint.get("/accounts")
@admin_route(
    "List the service accounts of the caller's operator (all for the platform), never "
    "their passwords.",
    scope=OPERATOR,
    responses={200: AccountViewSchema(many=True)},
)
async def list_accounts() -> list[Any]:
    return await services().admin.accounts(principal())


@blueprint.post("/accounts")
@admin_route(
    "Create a service account with a password and roles.",
    scope=OPERATOR,
    body=AccountSchema(),
    responses={201: Reply("Created.", schema=AccountViewSchema)},
    refusals=(Code.OPERATOR_FORBIDDEN, SHARED, Code.INVALID_REFERENCE, Code.ACCOUNT_EXISTS),
)
async def create_account(body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    created = await services().admin.create_account(
        body["username"], body["password"], body["operator_id"], body["roles"], by=principal()
    )
    return created, 201


@blueprint.delete("/accounts/<username>")
@admin_route(
    "Delete a service account.",
    scope=OPERATOR,
    path={"username": Id()},
    responses={204: NO_CONTENT},
    refusals=(Code.ACCOUNT_NOT_FOUND, SHARED),
)
async def delete_account(username: str) -> Response:
    await services().admin.delete_account(username, by=principal())
    return no_content()


@blueprint.patch("/accounts/<username>")
@admin_route(
    "Change an account's roles; the tokens already issued to it are revoked.",
    scope=OPERATOR,
    path={"username": Id()},
    body=AccountRolesSchema(),
    responses={200: AccountViewSchema},
    refusals=(Code.ACCOUNT_NOT_FOUND, SHARED),
)
async def set_account_roles(username: str, body: dict[str, Any]) -> dict[str, Any]:
    return await services().admin.set_roles(username, body["roles"], by=principal())


@blueprint.get("/currencies")
@admin_route(
    "Read the currencies: base, multipliers, minor-unit digits, brand overrides.",
    scope=PLATFORM,
    responses={200: CurrenciesSchema},
    refusals=(Code.CURRENCIES_NOT_CONFIGURED,),
)
async def get_currencies() -> dict[str, Any]:
    currencies = (await services().config.get()).currencies
    if currencies is None:
        raise Refused(Code.CURRENCIES_NOT_CONFIGURED, "No currencies are configured yet.")
    return currencies


@blueprint.put("/currencies")
@admin_route(
    "Replace the currencies.",
    scope=PLATFORM,
    body=CurrenciesSchema(),
    rules=CURRENCY_RULES,
    responses={200: CurrenciesSchema},
    refusals=(Code.INVALID_REFERENCE,),
)
async def put_currencies(body: dict[str, Any]) -> dict[str, Any]:
    return await services().admin.put_currencies(body, by=principal())


@blueprint.get("/sources")
@admin_route(
    "List the sources of the caller's operator's brands (all for the platform).",
    scope=OPERATOR,
    responses={200: SourceSchema(many=True)},
)
async def list_sources() -> list[Any]:
    return await services().admin.sources(principal())


@blueprint.post("/sources")
@admin_route(
    "Create or replace a source and the instances it offers.",
    scope=OPERATOR,
    body=SourceSchema(),
    responses={200: SourceSchema},
    refusals=(Code.OPERATOR_FORBIDDEN, Code.INVALID_REFERENCE),
)
async def put_source(body: dict[str, Any]) -> dict[str, Any]:
    return await services().admin.put_source(body, by=principal())


@blueprint.delete("/sources/<owner_id>/<source_id>")
@admin_route(
    "Delete a source.",
    scope=OPERATOR,
    path={"owner_id": fields.String(validate=validate.Length(1, 130)), "source_id": Id()},
    responses={204: NO_CONTENT},
    refusals=(Code.SOURCE_NOT_FOUND,),
)
async def delete_source(owner_id: str, source_id: str) -> Response:
    await services().admin.delete_source(owner_id, source_id, by=principal())
    return no_content()


@blueprint.get("/instances")
@admin_route(
    "List the instances the caller's operator's brands may play (all for the platform) "
    "with their live status, pots and money totals.",
    scope=OPERATOR,
    responses={200: InstanceStateSchema(many=True)},
)
async def list_instances() -> list[Any]:
    return await services().admin.instances(principal())


@blueprint.post("/instances")
@admin_route(
    "Create an instance from a definition (an identical repeat changes nothing).",
    scope=OPERATOR,
    body=InstanceSchema(),
    rules=INSTANCE_RULES,
    responses={
        200: Reply("An identical instance already exists; nothing changed.", InstanceSchema),
        201: Reply("Created.", schema=InstanceSchema),
    },
    refusals=(Code.OPERATOR_FORBIDDEN, Code.INVALID_REFERENCE, Code.INSTANCE_EXISTS),
)
async def create_instance(body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    definition, created = await services().admin.create_instance(body, by=principal())
    return definition, 201 if created else 200


@blueprint.get("/instances/<instance_id>")
@admin_route(
    "Read an instance: its definition, live status, pots, reserves and money totals.",
    scope=OPERATOR,
    path={"instance_id": INSTANCE_ID},
    responses={200: InstanceStateSchema},
    refusals=(Code.INSTANCE_NOT_FOUND,),
)
async def get_instance(instance_id: str) -> dict[str, Any]:
    return await services().admin.instance(instance_id, principal())


def _status_route(action: str) -> Callable[..., Awaitable[dict[str, Any]]]:
    async def change_status(instance_id: str) -> dict[str, Any]:
        status = await services().admin.set_status(instance_id, action, principal())
        return {"instance_id": instance_id, "status": status}

    change_status.__name__ = f"{action}_instance"
    return admin_route(
        f"{action.capitalize()} an instance.",
        scope=OPERATOR,
        path={"instance_id": INSTANCE_ID},
        responses={200: StatusChangeSchema},
        refusals=(Code.INSTANCE_NOT_FOUND, SHARED, Code.INVALID_TRANSITION),
    )(change_status)


# One rule per action (not /<action>), so that each answers 405 with a true Allow header.
for _action in STATUS_ACTIONS:
    blueprint.add_url_rule(
        f"/instances/<instance_id>/{_action}", view_func=_status_route(_action), methods=["POST"]
    )


@blueprint.post("/instances/<instance_id>/draw")
@admin_route(
    "Draw a raffle's ended round now and open the next (the scheduler does it at the end).",
    scope=OPERATOR,
    path={"instance_id": INSTANCE_ID},
    responses={200: RaffleRoundSchema},
    refusals=RAFFLE_DRAW_REFUSALS,
)
async def draw_round(instance_id: str) -> Any:
    await services().treasury.instance(principal(), instance_id, own=True)
    return await services().raffles.draw(instance_id, principal().username)


@blueprint.get("/instances/<instance_id>/rounds/<round_id>")
@admin_route(
    "Read a raffle round: a drawn one with everything needed to recompute its winners (seed, "
    "random numbers, winners, ticket snapshot and its hash), or the open one's commitment.",
    scope=OPERATOR,
    path={"instance_id": INSTANCE_ID, "round_id": fields.Integer(validate=validate.Range(1))},
    responses={200: RaffleRoundSchema},
    refusals=(Code.INSTANCE_NOT_FOUND, SHARED, Code.NOT_A_RAFFLE, Code.ROUND_NOT_FOUND),
)
async def raffle_round(instance_id: str, round_id: int) -> Any:
    # Every player's key unmasked: an instance shared with other operators is the platform's.
    await services().treasury.instance(principal(), instance_id, own=True)
    return await services().raffles.round(instance_id, round_id)


@blueprint.get("/instances/<instance_id>/ledger")
@admin_route(
    "Read an instance's ledger, a page at a time, oldest first: its archived days, then its "
    "live entries, each entry once.",
    scope=OPERATOR,
    path={"instance_id": INSTANCE_ID},
    query=LedgerQuerySchema(),
    responses={200: LedgerPageSchema},
    refusals=(Code.INSTANCE_NOT_FOUND, SHARED),
)
async def ledger(instance_id: str, query: dict[str, Any]) -> dict[str, Any]:
    entries = await services().ledger.page(principal(), instance_id, query["after"], query["count"])
    return {
        # `entry_id` is the stream id (`id` is an entry's own field: a contribution's id).
        "entries": [{**fields, "entry_id": entry_id} for entry_id, fields in entries],
        "next": entries[-1][0] if len(entries) == query["count"] else None,
    }


# -- managers' operations ---------------------------------------------------------------
@blueprint.post("/instances/<instance_id>/boosts")
@admin_route(
    "Seed boost: add operator money to a pot's reserve (default) or value.",
    scope=OPERATOR,
    path={"instance_id": INSTANCE_ID},
    body=BoostSchema(),
    responses={
        200: Reply("This boost id was applied before; nothing changed.", BoostViewSchema),
        201: Reply("Applied.", schema=BoostViewSchema),
    },
    refusals=(
        Code.INSTANCE_NOT_FOUND,
        SHARED,
        Code.POT_NOT_FOUND,
        Code.INSTANCE_TERMINATED,
        Code.POT_NOT_PROGRESSIVE,
        Code.BOOST_ID_REUSED,
        Code.AMOUNT_OVERFLOW,
    ),
)
async def boost(instance_id: str, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    done, created = await services().treasury.boost(principal(), instance_id, **body)
    return BoostViewSchema().dump(done), 201 if created else 200


@blueprint.get("/instances/<instance_id>/reconciliation")
@admin_route(
    "Replay the instance's ledger from its start against the live state, to the micro-unit.",
    scope=OPERATOR,
    path={"instance_id": INSTANCE_ID},
    responses={200: ReconciliationSchema},
    refusals=(Code.INSTANCE_NOT_FOUND,),
)
async def reconciliation(instance_id: str) -> dict[str, Any]:
    report = await services().treasury.reconciliation(principal(), instance_id)
    return dumped(ReconciliationSchema(), report)


@blueprint.get("/instances/<instance_id>/meters")
@admin_route(
    "Meter report of an instance and its pots (JSON; CSV with format=csv).",
    scope=OPERATOR,
    path={"instance_id": INSTANCE_ID},
    query=MeterQuerySchema(),
    responses={200: Reply("The report.", schema=MeterReportSchema, text_types=("text/csv",))},
    refusals=(Code.INSTANCE_NOT_FOUND,),
    rules={
        "from": "from and to come together, from before to, both at midnight UTC.",
        "date": "a date, or from and to, not both.",
    },
)
async def meter_report(instance_id: str, query: dict[str, Any]) -> Any:
    period = (
        utc_day(query["date"]) if query["from_ms"] is None else (query["from_ms"], query["to_ms"])
    )
    report = await services().treasury.meter_report(principal(), instance_id, period)
    if query["format"] == "csv":
        filename = f"meters-{instance_id}-{period[0]}.csv"
        return Response(
            meter_report_csv(report),
            content_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    return MeterReportSchema().dump(report)


@blueprint.get("/callbacks/failed")
@admin_route(
    "Callback deliveries of an operator (the caller's by default) that exhausted their retries.",
    scope=OPERATOR,
    query=FailedQuerySchema(),
    responses={200: FailedDeliveriesSchema},
    refusals=(Code.OPERATOR_FORBIDDEN,),
)
async def failed_callbacks(query: dict[str, Any]) -> dict[str, Any]:
    operator_id = records_operator(principal(), query["operator_id"])
    failed = await services().deliveries.failed(operator_id, query["limit"])
    return dumped(FailedDeliveriesSchema(), {"deliveries": failed})


@blueprint.post("/callbacks/failed/<delivery_id>/redeliver")
@admin_route(
    "Queue a failed callback again, with the same delivery id and body.",
    scope=OPERATOR,
    path={"delivery_id": Id()},
    query=OperatorQuerySchema(),
    responses={202: Reply("Queued.", schema=FailedDeliverySchema)},
    refusals=(Code.OPERATOR_FORBIDDEN, Code.DELIVERY_NOT_FOUND, Code.QUEUE_UNAVAILABLE),
)
async def redeliver_callback(delivery_id: str, query: dict[str, Any]) -> tuple[dict[str, Any], int]:
    caller = principal()
    operator_id = records_operator(caller, query["operator_id"])
    record = await services().deliveries.redeliver(caller, operator_id, delivery_id)
    return FailedDeliverySchema().dump(record), 202


@blueprint.post("/callbacks/failed/redeliver")
@admin_route(
    "Queue every failed callback of an operator (the caller's by default) again.",
    scope=OPERATOR,
    query=OperatorQuerySchema(),
    responses={202: Reply("Queued.", schema=RedeliveredSchema)},
    refusals=(Code.OPERATOR_FORBIDDEN, Code.QUEUE_UNAVAILABLE),
)
async def redeliver_all_callbacks(query: dict[str, Any]) -> tuple[dict[str, Any], int]:
    caller = principal()
    operator_id = records_operator(caller, query["operator_id"])
    redelivered = await services().deliveries.redeliver_all(caller, operator_id)
    return RedeliveredSchema().dump({"redelivered": redelivered}), 202


@blueprint.get("/wins/withheld")
@admin_route(
    "Withheld wins of an operator (the caller's by default) waiting for a decision, oldest first.",
    scope=OPERATOR,
    query=WithheldQuerySchema(),
    responses={200: WithheldPageSchema},
    refusals=(Code.OPERATOR_FORBIDDEN, Code.INSTANCE_NOT_FOUND),
)
async def withheld_wins(query: dict[str, Any]) -> dict[str, Any]:
    caller = principal()
    operator_id = records_operator(caller, query.pop("operator_id"))
    page = await services().treasury.withheld_wins(caller, operator_id, **query)
    return dumped(WithheldPageSchema(), page)


WIN_PATH = {"instance_id": INSTANCE_ID, "win_id": fields.String(validate=validate.Length(1, 64))}
DECISION_REFUSALS = (Code.INSTANCE_NOT_FOUND, Code.WIN_NOT_FOUND, Code.WIN_NOT_WITHHELD)


DECISIONS = {
    "approve": (
        "Approve a withheld win: it is paid (its record and the winners views say so).",
        DecisionSchema,
    ),
    "reject": (
        "Reject a withheld win with a reason: its amount goes back to the pot's reserve.",
        RejectionSchema,
    ),
}


def _decision_route(verb: str) -> Callable[..., Awaitable[dict[str, Any]]]:
    async def decide(instance_id: str, win_id: str, body: dict[str, Any]) -> dict[str, Any]:
        win = await services().treasury.decide_win(
            principal(), instance_id, win_id, approve=verb == "approve", reason=body["reason"]
        )
        return dumped(WinViewSchema(), win)

    decide.__name__ = f"{verb}_win"
    summary, body_schema = DECISIONS[verb]
    return admin_route(
        summary,
        scope=OPERATOR,
        path=WIN_PATH,
        body=body_schema(),
        responses={200: WinViewSchema},
        refusals=(*DECISION_REFUSALS, Code.WIN_ALREADY_DECIDED),
    )(decide)


for _verb in DECISIONS:
    blueprint.add_url_rule(
        f"/instances/<instance_id>/wins/<win_id>/{_verb}",
        view_func=_decision_route(_verb),
        methods=["POST"],
    )


@blueprint.get("/audit")
@admin_route(
    "The audit trail of an operator (the caller's by default), oldest first, a page at a time.",
    scope=OPERATOR,
    query=AuditQuerySchema(),
    responses={200: AuditPageSchema},
    refusals=(Code.OPERATOR_FORBIDDEN,),
)
async def audit(query: dict[str, Any]) -> dict[str, Any]:
    operator_id = records_operator(principal(), query["operator_id"])
    entries = await services().admin.audit.page(operator_id, query["after"], query["count"])
    return dumped(
        AuditPageSchema(),
        {"entries": entries, "next": entries[-1]["id"] if len(entries) == query["count"] else None},
    )


# -- dead letters: queued jobs that could not run (app.services.deadletters) ------------------
@blueprint.get("/dead-letters")
@admin_route(
    "Asynchronous contributions and callback deliveries of an operator (the caller's by "
    "default) that could not run (their retries ran out, or they failed otherwise); each can "
    "be replayed.",
    scope=OPERATOR,
    query=FailedQuerySchema(),
    responses={200: DeadLettersSchema},
    refusals=(Code.OPERATOR_FORBIDDEN,),
)
async def dead_letters(query: dict[str, Any]) -> dict[str, Any]:
    operator_id = records_operator(principal(), query["operator_id"])
    letters = await services().dead_letters.listed(operator_id, query["limit"])
    return dumped(DeadLettersSchema(), {"dead_letters": letters})


@blueprint.post("/dead-letters/<job_id>/replay")
@admin_route(
    "Queue a dead letter again, with its own arguments and job id (a contribution keeps its "
    "idempotency key: it applies once).",
    scope=OPERATOR,
    path={"job_id": fields.String(validate=validate.Length(1, 128))},
    query=OperatorQuerySchema(),
    responses={202: Reply("Queued.", schema=DeadLetterSchema)},
    refusals=(Code.OPERATOR_FORBIDDEN, Code.JOB_NOT_FOUND),
)
async def replay_dead_letter(job_id: str, query: dict[str, Any]) -> tuple[dict[str, Any], int]:
    caller = principal()
    operator_id = records_operator(caller, query["operator_id"])
    letter = await services().dead_letters.replay(caller, operator_id, job_id)
    return DeadLetterSchema().dump(letter), 202


@blueprint.post("/dead-letters/replay")
@admin_route(
    "Queue every dead letter of an operator (the caller's by default) again.",
    scope=OPERATOR,
    query=OperatorQuerySchema(),
    responses={202: Reply("Queued.", schema=ReplayedSchema)},
    refusals=(Code.OPERATOR_FORBIDDEN,),
)
async def replay_dead_letters(query: dict[str, Any]) -> tuple[dict[str, Any], int]:
    caller = principal()
    operator_id = records_operator(caller, query["operator_id"])
    replayed = await services().dead_letters.replay_all(caller, operator_id)
    return ReplayedSchema().dump({"replayed": replayed}), 202
