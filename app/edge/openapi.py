"""The OpenAPI document, generated from the routes' declarations (`app.edge.contract`) alone."""

from __future__ import annotations

import re
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import fields
from quart import Quart

from app.core.money import MAX_DIGITS, MAX_EXPONENT
from app.edge.contract import Declaration, Reply, Scope, declaration_of
from app.schemas.admin import OneOfSchema, Prize
from app.schemas.common import Amount, ErrorSchema, amount_property
from app.schemas.events import EVENT_SCHEMAS, INTERNAL_EVENTS, EventEnvelopeSchema

ERROR_REF = {"$ref": "#/components/schemas/Error"}
ACCESS_TEXT = {
    Scope.PLATFORM: "Needs a token with the `platform` role (the jackpot provider's staff).",
    Scope.OPERATOR: "Needs a token with the `admin` role, and reaches only the caller's "
    "operator's objects (another operator's are unknown: 404), or the `platform` role, "
    "which reaches every operator's.",
}
ERROR_TEXT = {
    400: "The request is invalid",
    401: "No valid token",
    403: "Not allowed",
    404: "Unknown",
    409: "Conflicts with the current state",
    413: "The body is too large",
    422: "Well-formed, but not acceptable with this configuration",
    429: "Throttled",
    503: "Unavailable (the store, or this deployment's queue); retry later",
    504: "The store did not confirm the outcome; retry with the same idempotency key",
}

# What a JSON schema cannot say about numbers, for every route (docs/api.md, "Inputs").
NUMBERS = (
    f"Every number a request carries (in a body, including free-form `metadata`, or in a "
    f"numeric query or path parameter) has at most {MAX_DIGITS} significant digits and an "
    f"exponent within -{MAX_EXPONENT}..{MAX_EXPONENT}; beyond that it is refused with 400 "
    "`VALIDATION_ERROR` naming where it is, before anything computes with it."
)


class UndeclaredRoute(LookupError):
    """A route without `@declare`: the contract would not describe it."""


def build_spec(app: Quart, version: str) -> dict[str, Any]:
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title="Jackpot Gateway operator API",
        version=version,
        openapi_version="3.0.3",
        plugins=[plugin],
        info={"description": NUMBERS},
    )
    assert plugin.converter is not None
    plugin.converter.add_attribute_function(_amount_attributes)
    plugin.converter.add_attribute_function(_prize_attributes)
    plugin.converter.add_attribute_function(_exact_nullable_objects)
    plugin.converter.add_attribute_function(_dict_sizes)
    plugin.converter.add_attribute_function(_dict_names)
    spec.components.security_scheme(
        "bearer", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    spec.components.schema("Error", schema=ErrorSchema)
    # The websocket's messages: the envelope and each event type's data (the event catalogue).
    spec.components.schema("EventEnvelope", schema=EventEnvelopeSchema)
    for event_type, event_schema in EVENT_SCHEMAS.items():
        if event_type not in INTERNAL_EVENTS:
            spec.components.schema(event_type.value, schema=event_schema)
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.websocket:
            continue
        declaration = declaration_of(app.view_functions[rule.endpoint])
        if declaration is None:
            raise UndeclaredRoute(f"{rule.rule} ({rule.endpoint}) has no @declare")
        if set(rule.arguments) != set(declaration.path):
            raise UndeclaredRoute(f"{rule.rule}: declare exactly its path parameters")
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            operation = _operation(plugin, rule.endpoint, method, declaration)
            spec.path(path=path, operations={method.lower(): operation})
    document = spec.to_dict()
    _exactly_one_key(document, plugin)
    return document


def _amount_attributes(self: Any, field: Any, **kwargs: Any) -> dict[str, Any]:
    return amount_property(field) if isinstance(field, Amount) else {}


def _prize_attributes(self: Any, field: Any, **kwargs: Any) -> dict[str, Any]:
    """A raffle prize: a fixed amount, or {"share": ...} of the prize pot at the draw."""
    if not isinstance(field, Prize):
        return {}
    share = {
        "type": "object",
        "properties": {"share": amount_property(field._share)},
        "required": ["share"],
        "additionalProperties": False,
    }
    amount = amount_property(field._amount)
    return {
        "anyOf": [*amount["anyOf"], share],
        "description": f'{amount["description"]} Or {{"share": a number in (0, 1]}} of the '
        "prize pot at the draw.",
    }


def _exact_nullable_objects(
    self: Any, field: Any, ret: dict[str, Any], **kwargs: Any
) -> dict[str, Any]:
    """apispec writes a nullable nested object as `anyOf: [$ref, {type: object}]`, which lets
    any object through; say "this object, or null" exactly instead."""
    alternatives = ret.get("anyOf")
    if (
        isinstance(alternatives, list)
        and len(alternatives) == 2
        and "$ref" in alternatives[0]
        and alternatives[1] == {"type": "object", "nullable": True}
    ):
        del ret["anyOf"]
        return {"allOf": [alternatives[0]], "nullable": True}
    return {}


def _dict_sizes(self: Any, field: Any, ret: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """A Length on a dict counts keys: minProperties/maxProperties, not min/maxLength."""
    if not isinstance(field, fields.Dict):
        return {}
    sizes = {}
    for length, size in (("minLength", "minProperties"), ("maxLength", "maxProperties")):
        if length in ret:
            sizes[size] = ret.pop(length)
    return sizes


def _dict_names(self: Any, field: Any, ret: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """A dict whose key names follow a rule (metadata `name_pattern`): the rule is published
    twice, as `propertyNames` (JSON Schema) and as the one `patternProperties` entry with no
    other property allowed, which OpenAPI 3.0 tools such as schemathesis read."""
    pattern = field.metadata.get("name_pattern") if isinstance(field, fields.Dict) else None
    if pattern is None:
        return {}
    values = ret.pop("additionalProperties", {})
    return {
        "propertyNames": {"pattern": pattern},
        "patternProperties": {pattern: values},
        "additionalProperties": False,
    }


def _exactly_one_key(document: dict[str, Any], plugin: MarshmallowPlugin) -> None:
    """A OneOfSchema takes exactly one of its keys, not null: say so in its component."""
    assert plugin.converter is not None
    components = document["components"]["schemas"]
    for schema, name in plugin.converter.refs.items():
        schema_class = schema[0] if isinstance(schema, tuple) else schema
        if not (isinstance(schema_class, type) and issubclass(schema_class, OneOfSchema)):
            continue
        component = components[name]
        component["minProperties"] = component["maxProperties"] = 1
        for prop in component["properties"].values():
            prop.pop("default", None)
            prop.pop("nullable", None)


def _operation(
    plugin: MarshmallowPlugin, endpoint: str, method: str, declaration: Declaration
) -> dict[str, Any]:
    assert plugin.converter is not None
    parameters: list[dict[str, Any]] = [
        {
            "in": "path",
            "name": name,
            "required": True,
            "schema": plugin.converter.field2property(field),
        }
        for name, field in declaration.path.items()
    ]
    if declaration.query is not None:
        parameters.append({"in": "query", "schema": declaration.query})
    doc: dict[str, Any] = {
        "tags": [declaration.tag],
        "summary": declaration.summary,
        "operationId": endpoint,
        "parameters": parameters,
        "responses": {
            str(status): _response(plugin, reply) for status, reply in declaration.responses.items()
        },
    }
    if declaration.description:
        doc["description"] = declaration.description
    if declaration.rules:
        doc["x-rules"] = dict(declaration.rules)
        doc["description"] = (
            doc.get("description", "")
            + "\n\nAlso refused with 400 `VALIDATION_ERROR`:\n"
            + "\n".join(f"- `{name}`: {rule}" for name, rule in declaration.rules.items())
        ).strip()
    if declaration.role:
        access = f"Needs a token with the `{declaration.role}` role."
        if declaration.scope is not None:
            access = ACCESS_TEXT[declaration.scope]
            doc["x-scope"] = declaration.scope.value
        doc["description"] = (access + "\n\n" + doc.get("description", "")).strip()
    if declaration.body is not None:
        content: dict[str, Any] = {"schema": declaration.body}
        example = getattr(declaration.body, "EXAMPLE", None)
        if example is not None:  # what /docs pre-fills: a request the server accepts
            content["example"] = example
        doc["requestBody"] = {"required": True, "content": {"application/json": content}}
    for status, codes in sorted(declaration.error_statuses(method).items()):
        doc["responses"].setdefault(
            str(status),
            {
                "description": f"{ERROR_TEXT.get(status, 'Refused')}: " + ", ".join(codes),
                "content": {"application/json": {"schema": ERROR_REF}},
            },
        )
    if not declaration.public:
        doc["security"] = [{"bearer": []}]
    return doc


def _response(plugin: MarshmallowPlugin, reply: Reply) -> dict[str, Any]:
    doc: dict[str, Any] = {"description": reply.description}
    media_type = reply.media_type
    if media_type is not None:
        schema: Any = reply.schema if reply.schema is not None else {"type": "string"}
        if isinstance(schema, dict) and "additionalProperties" in schema:
            # apispec resolves marshmallow schemas under items/properties, not here.
            assert plugin.resolver is not None
            values = plugin.resolver.resolve_schema_dict(dict(schema["additionalProperties"]))
            schema = {**schema, "additionalProperties": values}
        doc["content"] = {media_type: {"schema": schema}}
    for text_type in reply.text_types:
        doc.setdefault("content", {})[text_type] = {"schema": {"type": "string"}}
    if reply.headers:
        doc["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in reply.headers.items()
        }
    return doc
