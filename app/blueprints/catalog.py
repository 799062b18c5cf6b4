"""GET /currencies/{brand_id} and GET /jackpots/sources."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate
from quart import Blueprint

from app.http import load_args, principal, services
from app.schemas.common import StrictSchema

blueprint = Blueprint("catalog", __name__)


class SourcesQuerySchema(StrictSchema):
    owner_id = fields.String(required=True, validate=validate.Length(1, 200))
    name = fields.String(load_default=None, validate=validate.Length(max=200))


class SourceViewSchema(StrictSchema):
    source_id = fields.String()
    owner_id = fields.String()
    source_name = fields.String()
    instance_ids = fields.List(fields.String())


class CurrenciesViewSchema(StrictSchema):
    brand_id = fields.String()
    base_currency = fields.String()
    multipliers = fields.Dict(keys=fields.String(), values=fields.Raw())


@blueprint.get("/currencies/<brand_id>")
async def currencies(brand_id: str) -> dict[str, Any]:
    view = await services().catalog.currencies(principal(), brand_id)
    return CurrenciesViewSchema().dump(view)


@blueprint.get("/jackpots/sources")
async def sources() -> list[Any]:
    query = load_args(SourcesQuerySchema())
    found = await services().catalog.sources(principal(), query["owner_id"], query["name"])
    return SourceViewSchema(many=True).dump(found)
