"""GET /currencies/{brand_id} and GET /jackpots/sources."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate
from quart import Blueprint

from app.core.refusals import Code
from app.edge.contract import declare
from app.edge.http import principal, services
from app.schemas.common import StrictSchema

blueprint = Blueprint("catalog", __name__)

BRAND = fields.String(
    validate=validate.Length(1, 130),
    metadata={"description": "`operator_id:brand_id`, or a brand id of the caller's operator."},
)


class SourcesQuerySchema(StrictSchema):
    owner_id = fields.String(
        required=True,
        validate=validate.Length(1, 130),
        metadata={"description": "The owning brand: `operator_id:brand_id` or a bare brand id."},
    )
    name = fields.String(
        load_default=None,
        validate=validate.Length(max=200),
        metadata={"description": "Only sources whose name contains this (case-insensitive)."},
    )


class SourceViewSchema(StrictSchema):
    source_id = fields.String(required=True)
    owner_id = fields.String(required=True)
    source_name = fields.String(required=True)
    instance_ids = fields.List(fields.String(), required=True)


class CurrenciesViewSchema(StrictSchema):
    brand_id = fields.String(required=True)
    base_currency = fields.String(required=True)
    multipliers = fields.Dict(
        keys=fields.String(),
        values=fields.Decimal(as_string=False),
        required=True,
        metadata={"description": "Units of each currency per one unit of the base currency."},
    )


CURRENCIES_VIEW = CurrenciesViewSchema()  # built once: a schema deep-copies its fields


@blueprint.get("/currencies/<brand_id>")
@declare(
    "Read the currency multipliers that apply to a brand.",
    tag="Currencies",
    path={"brand_id": BRAND},
    responses={200: CurrenciesViewSchema},
    refusals=(Code.OPERATOR_FORBIDDEN, Code.BRAND_NOT_FOUND, Code.CURRENCIES_NOT_CONFIGURED),
)
async def currencies(brand_id: str) -> dict[str, Any]:
    view = await services().catalog.currencies(principal(), brand_id)
    shown: dict[str, Any] = CURRENCIES_VIEW.dump(view)
    return shown


@blueprint.get("/jackpots/sources")
@declare(
    "List the sources of a brand, optionally filtered by name.",
    tag="Sources",
    query=SourcesQuerySchema(),
    responses={200: SourceViewSchema(many=True)},
    refusals=(Code.OPERATOR_FORBIDDEN, Code.BRAND_NOT_FOUND),
)
async def sources(query: dict[str, Any]) -> list[Any]:
    found = await services().catalog.sources(principal(), query["owner_id"], query["name"])
    shown: list[Any] = SourceViewSchema(many=True).dump(found)
    return shown
