"""The OpenAPI document, generated from the marshmallow schemas the routes use."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema
from quart import Quart

from app.blueprints.auth import AuthenticateSchema, TokenSchema
from app.blueprints.catalog import CurrenciesViewSchema, SourcesQuerySchema, SourceViewSchema
from app.schemas.admin import (
    AccountSchema,
    AccountViewSchema,
    CurrenciesSchema,
    InstanceSchema,
    OperatorSchema,
    SourceSchema,
)
from app.schemas.common import Amount, ErrorSchema
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


@dataclass(frozen=True)
class Operation:
    tag: str
    summary: str
    body: type[Schema] | None = None
    query: type[Schema] | None = None
    response: type[Schema] | None = None
    many: bool = False


OPERATIONS: dict[str, Operation] = {
    "auth.authenticate": Operation(
        "Authentication", "Authenticate an external service", AuthenticateSchema, None, TokenSchema
    ),
    "health.health": Operation("Health", "Health check endpoint"),
    "health.metrics": Operation("Metrics", "Prometheus metrics (text)"),
    "catalog.currencies": Operation(
        "Currencies", "Currency multipliers of a brand", None, None, CurrenciesViewSchema
    ),
    "catalog.sources": Operation(
        "Sources", "Sources of an owner", None, SourcesQuerySchema, SourceViewSchema, many=True
    ),
    "jackpots.contribute": Operation(
        "Contribution",
        "Contribute to an instance (async with a callback)",
        ContributeSchema,
        None,
        ContributionResponseSchema,
    ),
    "jackpots.contribute_by_source": Operation(
        "Contribution",
        "Contribute to the instance bound to a source",
        ContributeBySourceSchema,
        None,
        ContributionResponseSchema,
    ),
    "jackpots.contribute_v2": Operation(
        "v2 API",
        "Contribute to a target and its linked instances",
        ContributeV2Schema,
        None,
        ContributionV2ItemSchema,
        many=True,
    ),
    "jackpots.opt_in": Operation(
        "Instances", "Opt a player in or out", OptInSchema, None, OptInStatusSchema
    ),
    "jackpots.opt_in_v2": Operation(
        "v2 API",
        "Opt in or out, optionally of linked instances",
        OptInV2Schema,
        None,
        OptInV2ResponseSchema,
    ),
    "jackpots.instance_for_source": Operation(
        "Instances",
        "The instance available for a source, brand and player",
        None,
        InstanceQuerySchema,
        InstanceViewSchema,
    ),
    "jackpots.winners": Operation(
        "Instances", "Latest winners", None, WinnersQuerySchema, WinnerSchema, many=True
    ),
    "jackpots.pot_winners": Operation(
        "Instances", "Latest winners per pot (pot id -> winners)", None, WinnersQuerySchema
    ),
    "admin.put_operator": Operation("Admin", "Create or replace an operator", OperatorSchema),
    "admin.create_account": Operation(
        "Admin", "Create a service account", AccountSchema, None, AccountViewSchema
    ),
    "admin.put_currencies": Operation("Admin", "Replace the currencies", CurrenciesSchema),
    "admin.put_source": Operation("Admin", "Create or replace a source", SourceSchema),
    "admin.create_instance": Operation("Admin", "Create an instance", InstanceSchema),
}

PUBLIC = {"auth.authenticate", "health.health", "health.metrics", "docs.openapi", "docs.docs"}


def build_spec(app: Quart, version: str) -> dict[str, Any]:
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title="Jackpot Gateway operator API",
        version=version,
        openapi_version="3.0.3",
        plugins=[plugin],
    )
    plugin.map_to_openapi_type(Amount, "number", None)
    spec.components.security_scheme(
        "bearer", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    spec.components.schema("Error", schema=ErrorSchema)
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.websocket or rule.endpoint not in app.view_functions:
            continue
        operation = OPERATIONS.get(rule.endpoint)
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            spec.path(path=path, operations={method.lower(): _operation(rule, operation)})
    return spec.to_dict()


def _operation(rule: Any, operation: Operation | None) -> dict[str, Any]:
    tag = operation.tag if operation else rule.endpoint.split(".")[0].title()
    doc: dict[str, Any] = {
        "tags": [tag],
        "summary": operation.summary if operation else rule.endpoint,
        "operationId": rule.endpoint,
        "parameters": [
            {"in": "path", "name": name, "required": True, "schema": {"type": "string"}}
            for name in sorted(rule.arguments)
        ],
        "responses": {
            "default": {
                "description": "Error",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
        },
    }
    if rule.endpoint not in PUBLIC:
        doc["security"] = [{"bearer": []}]
    if operation is None:
        doc["responses"]["200"] = {"description": "OK"}
        return doc
    if operation.query is not None:
        doc["parameters"].append({"in": "query", "schema": operation.query})
    if operation.body is not None:
        doc["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": operation.body}},
        }
    ok: dict[str, Any] = {"description": "OK"}
    if operation.response is not None:
        schema: Any = operation.response
        if operation.many:
            schema = {"type": "array", "items": operation.response}
        ok["content"] = {"application/json": {"schema": schema}}
    doc["responses"]["200"] = ok
    return doc
