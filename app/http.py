"""Request helpers shared by the blueprints: JSON bodies, schema loading, the caller."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar

from marshmallow import Schema, ValidationError
from quart import current_app, g, request

from app.errors import APIError
from app.security import Principal
from app.services import Services

View = TypeVar("View", bound=Callable[..., Awaitable[Any]])


def public(view: View) -> View:
    """Mark a route as reachable without a token; every other route requires one."""
    view.is_public = True  # type: ignore[attr-defined]
    return view


def services() -> Services:
    return current_app.extensions["gateway"]


def principal() -> Principal:
    return g.principal


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


async def json_body() -> Any:
    """The body as JSON with exact decimals; NaN/Infinity refused (the body size is capped
    by MAX_CONTENT_LENGTH, which answers 413)."""
    raw = await request.get_data(cache=True, as_text=False)
    if not raw:
        raise APIError(400, "MALFORMED_JSON", "The request body must be a JSON document.")
    try:
        return json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise APIError(400, "MALFORMED_JSON", "The request body is not valid JSON.") from None


def validation_error(error: ValidationError) -> APIError:
    messages = error.messages if isinstance(error.messages, dict) else {"_schema": error.messages}
    return APIError(400, "VALIDATION_ERROR", "The request is invalid.", messages)


async def load_body(schema: Schema) -> Any:
    data = await json_body()
    try:
        return schema.load(data)
    except ValidationError as error:
        raise validation_error(error) from None


def load_args(schema: Schema) -> Any:
    try:
        return schema.load(request.args.to_dict())
    except ValidationError as error:
        raise validation_error(error) from None
