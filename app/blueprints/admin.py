"""/admin: jackpot managers configure operators, accounts, currencies, sources, instances."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate
from quart import Blueprint

from app.errors import APIError
from app.http import load_args, load_body, principal, services
from app.schemas.admin import (
    AccountSchema,
    CurrenciesSchema,
    InstanceSchema,
    OperatorSchema,
    SourceSchema,
)
from app.schemas.common import StrictSchema

blueprint = Blueprint("admin", __name__, url_prefix="/admin")

STATUS_ACTIONS = ("activate", "pause", "resume", "terminate")


class LedgerQuerySchema(StrictSchema):
    after = fields.String(load_default="-", validate=validate.Regexp(r"^(-|\d+-\d+)$"))
    count = fields.Integer(load_default=100, validate=validate.Range(1, 1000))


@blueprint.before_request
async def require_admin() -> None:
    if not principal().is_admin:
        raise APIError(403, "ADMIN_REQUIRED", "This operation needs a token with the admin role.")


@blueprint.get("/operators")
async def list_operators() -> list[Any]:
    return list((await services().config.get()).operators.values())


@blueprint.post("/operators")
async def put_operator() -> tuple[dict[str, Any], int]:
    operator = await load_body(OperatorSchema())
    return await services().admin.put_operator(operator), 200


@blueprint.get("/accounts")
async def list_accounts() -> list[Any]:
    return await services().admin.accounts()


@blueprint.post("/accounts")
async def create_account() -> tuple[dict[str, Any], int]:
    account = await load_body(AccountSchema())
    created = await services().admin.create_account(
        account["username"], account["password"], account["operator_id"], account["roles"]
    )
    return created, 201


@blueprint.delete("/accounts/<username>")
async def delete_account(username: str) -> tuple[str, int]:
    await services().admin.delete_account(username)
    return "", 204


@blueprint.get("/currencies")
async def get_currencies() -> dict[str, Any]:
    currencies = (await services().config.get()).currencies
    if currencies is None:
        raise APIError(404, "CURRENCIES_NOT_CONFIGURED", "No currencies are configured yet.")
    return currencies


@blueprint.put("/currencies")
async def put_currencies() -> dict[str, Any]:
    return await services().admin.put_currencies(await load_body(CurrenciesSchema()))


@blueprint.get("/sources")
async def list_sources() -> list[Any]:
    return (await services().config.get()).sources


@blueprint.post("/sources")
async def put_source() -> dict[str, Any]:
    return await services().admin.put_source(await load_body(SourceSchema()))


@blueprint.delete("/sources/<owner_id>/<source_id>")
async def delete_source(owner_id: str, source_id: str) -> tuple[str, int]:
    await services().admin.delete_source(owner_id, source_id)
    return "", 204


@blueprint.get("/instances")
async def list_instances() -> list[Any]:
    return await services().admin.instances()


@blueprint.post("/instances")
async def create_instance() -> tuple[dict[str, Any], int]:
    definition, created = await services().admin.create_instance(await load_body(InstanceSchema()))
    return definition, 201 if created else 200


@blueprint.get("/instances/<instance_id>")
async def get_instance(instance_id: str) -> dict[str, Any]:
    return await services().admin.instance(instance_id)


@blueprint.post("/instances/<instance_id>/<action>")
async def change_status(instance_id: str, action: str) -> dict[str, Any]:
    if action not in STATUS_ACTIONS:
        raise APIError(404, "NOT_FOUND", f"Unknown action {action!r}.")
    status = await services().admin.set_status(instance_id, action, principal().username)
    return {"instance_id": instance_id, "status": status}


@blueprint.get("/instances/<instance_id>/ledger")
async def ledger(instance_id: str) -> dict[str, Any]:
    query = load_args(LedgerQuerySchema())
    entries = await services().admin.ledger(instance_id, query["after"], query["count"])
    return {
        "entries": [{"id": entry_id, **fields} for entry_id, fields in entries],
        "next": entries[-1][0] if len(entries) == query["count"] else None,
    }
