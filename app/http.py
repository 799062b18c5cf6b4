"""Request helpers shared by the blueprints: JSON bodies, schema loading, the caller."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from marshmallow import Schema, ValidationError
from quart import Response, current_app, g, request

from app.errors import APIError, store_error
from app.refusals import Refused
from app.security import Principal
from app.services import Services
from app.store.errors import classify

log = logging.getLogger("jackpot_gateway")


def services() -> Services:
    return current_app.extensions["gateway"]


def principal() -> Principal:
    return g.principal


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Parsers disagree on which of two equal keys wins (first, last, error): refuse them,
    # so no proxy or log can read a different request than the one we act on.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        keys = [key for key, _ in pairs]
        raise DuplicateKey(next(key for key in keys if keys.count(key) > 1))
    return obj


_SURROGATE = re.compile("[\ud800-\udfff]")


def _lone_surrogate(value: Any) -> bool:
    """A `\\ud800` escape without its pair decodes to a code point no UTF-8 can carry (Redis
    could not store it). Paired escapes decode to one character, so any surrogate left is
    lone."""
    if isinstance(value, str):
        return not value.isascii() and _SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(_lone_surrogate(k) or _lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_lone_surrogate(item) for item in value)
    return False


async def json_body() -> Any:
    """The body as JSON (see parse_json; the body size is capped by MAX_CONTENT_LENGTH,
    which answers 413)."""
    return parse_json(await request.get_data(cache=True, as_text=False))


def parse_json(raw: str | bytes) -> Any:
    """A body as JSON with exact decimals; NaN/Infinity and duplicate keys refused."""
    if not raw:
        raise APIError(400, "MALFORMED_JSON", "The request body must be a JSON document.")
    try:
        data = json.loads(
            raw,
            parse_float=Decimal,
            parse_constant=_reject_constant,
            object_pairs_hook=_unique_keys,
        )
    except DuplicateKey as error:
        raise APIError(
            400, "MALFORMED_JSON", f"The key {str(error)!r} appears twice in one object."
        ) from None
    except (ValueError, RecursionError):
        raise APIError(400, "MALFORMED_JSON", "The request body is not valid JSON.") from None
    if _lone_surrogate(data):
        raise APIError(
            400,
            "MALFORMED_JSON",
            "The request body holds a lone UTF-16 surrogate escape (such as \\ud800): "
            "not valid Unicode.",
        )
    return data


def validation_error(error: ValidationError) -> APIError:
    messages = error.messages if isinstance(error.messages, dict) else {"_schema": error.messages}
    return APIError(400, "VALIDATION_ERROR", "The request is invalid.", messages)


def error_for(error: Exception, method: str, path: str, gateway: Services | None) -> APIError:
    """The answer to an exception raised while serving a request: one mapping for the Quart
    app's error handler and for app.direct."""
    if isinstance(error, APIError):
        return error
    if isinstance(error, Refused):
        return APIError.from_refusal(error)
    if isinstance(error, ValidationError):
        return validation_error(error)
    failure = classify(error)
    if failure is not None:
        # One line per failure: while Redis is down a traceback per request drowns the log.
        log.warning("store %s on %s %s: %s", failure.kind, method, path, failure)
        if gateway is not None:
            gateway.metrics.store_errors.labels(failure.kind).inc()
        return store_error(failure, method)
    log.error("unhandled error on %s %s", method, path, exc_info=error)
    return APIError(500, "INTERNAL_ERROR", "An unexpected error occurred.")


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


@dataclass(frozen=True)
class Answer:
    """A view's answer before it becomes a response: a JSON body, or none (a 204). The
    Quart views turn it into a Response (respond); app.direct writes it to ASGI itself."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def respond(answer: Answer) -> Response | tuple[Any, int, dict[str, str]]:
    if answer.status == 204:
        return no_content(answer.headers)
    return answer.body, answer.status, answer.headers


def no_content(headers: dict[str, str] | None = None) -> Response:
    """A 204: no body, so no Content-Type either."""
    response = Response(b"", status=204, headers=headers)
    del response.headers["Content-Type"]
    return response
