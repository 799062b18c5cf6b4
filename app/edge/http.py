"""Request helpers shared by the blueprints: JSON bodies, schema loading, the caller."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from marshmallow import Schema, ValidationError, fields
from quart import Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from app.core.money import BOUNDS_TEXT, MAX_DIGITS, within_bounds
from app.core.refusals import Refused
from app.core.security import Principal
from app.edge.errors import APIError, store_error
from app.services import Services
from app.services.failures import classify

log = logging.getLogger("jackpot_gateway")


def services() -> Services:
    gateway: Services = current_app.extensions["gateway"]
    return gateway


def dumped(schema: Schema, value: Any) -> dict[str, Any]:
    """`value` as `schema` shows it (a JSON object)."""
    shown: dict[str, Any] = schema.dump(value)
    return shown


def principal() -> Principal:
    caller: Principal = g.principal
    return caller


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Parsers disagree on which of two equal keys wins (first, last, error): refuse them,
    # so no proxy or log can read a different request than the one we act on.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:  # linear: a 64 KiB object has thousands of keys
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return obj


_SURROGATE = re.compile("[\ud800-\udfff]")
# What a surrogate can come from in a body: a \uD800-\uDFFF escape, or its UTF-8-like bytes
# (json.loads decodes bytes with "surrogatepass"). A body without either holds none.
_MAYBE_SURROGATE_BYTES = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")
_MAYBE_SURROGATE_TEXT = re.compile(r"\\u[dD][89a-fA-F]|[\ud800-\udfff]")


def _lone_surrogate(data: Any) -> bool:
    """A `\\ud800` escape without its pair decodes to a code point no UTF-8 can carry (Redis
    could not store it). Paired escapes decode to one character, so any surrogate left is
    lone. Iterative: a body nested as deep as the parser allows costs no recursion here."""
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if not value.isascii() and _SURROGATE.search(value) is not None:
                return True
        elif isinstance(value, dict):
            stack.extend(value)
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


class _Unbounded:
    """Stands, while a body is parsed, for a JSON number beyond app.core.money's bounds: the body
    is then refused, naming where the number was. Nothing computes with such a number."""

    __slots__ = ()


_UNBOUNDED = _Unbounded()
Path = tuple[str | int, ...]
NAMED_NUMBERS = 10  # unbounded numbers named in a refusal (a body may hold thousands)


def _unbounded_paths(data: Any) -> list[Path]:
    """Where the first NAMED_NUMBERS unbounded numbers are, in the body's order."""
    found: list[Path] = []
    stack: list[tuple[Any, Path]] = [(data, ())]
    while stack and len(found) < NAMED_NUMBERS:
        value, path = stack.pop()
        if value is _UNBOUNDED:
            found.append(path)
        elif isinstance(value, dict):
            stack.extend(reversed([(item, (*path, key)) for key, item in value.items()]))
        elif isinstance(value, list):
            stack.extend(reversed([(item, (*path, index)) for index, item in enumerate(value)]))
    return found


def _details(paths: list[Path]) -> dict[str, Any]:
    """The unbounded numbers' paths as marshmallow reports nested fields (as JSON writes
    them): {"metadata": {"a": {"0": [message]}}}; a number that is the body itself: `_schema`."""
    details: dict[str, Any] = {}
    for path in paths:
        node = details
        *parents, last = [str(part) for part in path] or ["_schema"]
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = [BOUNDS_TEXT]
    return details


async def json_body() -> Any:
    """The body as JSON (see parse_json; the body size is capped by MAX_CONTENT_LENGTH,
    which answers 413)."""
    return parse_json(await request.get_data(cache=True, as_text=False))


def parse_json(raw: str | bytes) -> Any:
    """A body as JSON with exact decimals; NaN/Infinity and duplicate keys refused, and so is
    a number beyond app.core.money's bounds (400 VALIDATION_ERROR naming where it is: checked as
    the number is parsed, before anything computes with it)."""
    if not raw:
        raise APIError(400, "MALFORMED_JSON", "The request body must be a JSON document.")
    unbounded = False

    def decimal(text: str) -> Decimal | _Unbounded:
        nonlocal unbounded
        value = Decimal(text)  # linear in the text, whatever its exponent
        if within_bounds(value):
            return value
        unbounded = True
        return _UNBOUNDED

    def integer(text: str) -> int | _Unbounded:
        nonlocal unbounded
        # JSON has no leading zeros: the text's digits are the number's (int() of a long
        # text costs quadratic time; past 4300 digits Python refuses it).
        if len(text) - text.startswith("-") <= MAX_DIGITS:
            return int(text)
        unbounded = True
        return _UNBOUNDED

    try:
        data = json.loads(
            raw,
            parse_float=decimal,
            parse_int=integer,
            parse_constant=_reject_constant,
            object_pairs_hook=_unique_keys,
        )
    except DuplicateKey as error:
        raise APIError(
            400, "MALFORMED_JSON", f"The key {str(error)[:100]!r} appears twice in one object."
        ) from None
    except (ValueError, RecursionError):
        raise APIError(400, "MALFORMED_JSON", "The request body is not valid JSON.") from None
    maybe = (
        _MAYBE_SURROGATE_BYTES.search(raw)
        if isinstance(raw, bytes)
        else _MAYBE_SURROGATE_TEXT.search(raw)
    )
    if maybe is not None and _lone_surrogate(data):
        raise APIError(
            400,
            "MALFORMED_JSON",
            "The request body holds a lone UTF-16 surrogate escape (such as \\ud800): "
            "not valid Unicode.",
        )
    if unbounded:
        details = _details(_unbounded_paths(data))
        raise APIError(400, "VALIDATION_ERROR", "The request is invalid.", details)
    return data


def validation_error(error: ValidationError) -> APIError:
    messages = error.messages if isinstance(error.messages, dict) else {"_schema": error.messages}
    return APIError(400, "VALIDATION_ERROR", "The request is invalid.", messages)


# The stable codes of HTTP-level refusals (werkzeug's exceptions raised by routing and by
# reading the request); any other status is HTTP_ERROR.
HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    408: "REQUEST_TIMEOUT",
    413: "BODY_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "TOO_MANY_REQUESTS",
}


def http_error_for(error: HTTPException, method: str, max_body_bytes: int) -> APIError:
    """The answer to an HTTP-level refusal (no such route, a body too large or too slow):
    one mapping for the Quart app's handler and for app.edge.direct."""
    status = error.code or 500
    message = {
        404: "No such resource.",
        405: f"Method {method} is not allowed here.",
        408: "The request body did not arrive in time.",
        413: f"The body is larger than {max_body_bytes} bytes.",
    }.get(status, error.description or error.name)
    return APIError(status, HTTP_CODES.get(status, "HTTP_ERROR"), message)


def error_for(error: Exception, method: str, path: str, gateway: Services | None) -> APIError:
    """The answer to an exception raised while serving a request: one mapping for the Quart
    app's error handler and for app.edge.direct."""
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
    return load_text(schema, request.args.to_dict())


def load_text(schema: Schema, values: dict[str, Any]) -> Any:
    """Query or path parameters (text) loaded by their schema. A numeric field's text longer
    than any number within app.core.money's bounds is refused before it is parsed (Python's int()
    of a long text costs quadratic time, and a huge round number or period would go on to
    the store)."""
    numeric = {
        field.data_key or name
        for name, field in schema.fields.items()
        if isinstance(field, fields.Number)
    }
    unbounded = {
        name: [BOUNDS_TEXT]
        for name, value in values.items()
        if name in numeric
        and isinstance(value, str)
        and len(value.strip().lstrip("+-")) > MAX_DIGITS
    }
    if unbounded:
        raise APIError(400, "VALIDATION_ERROR", "The request is invalid.", unbounded)
    try:
        return schema.load(values)
    except ValidationError as error:
        raise validation_error(error) from None


@dataclass(frozen=True)
class Answer:
    """A view's answer before it becomes a response: a JSON body, or none (a 204). The
    Quart views turn it into a Response (respond); app.edge.direct writes it to ASGI itself."""

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
