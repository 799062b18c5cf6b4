"""GET /events: the live event stream (websocket), and GET /ticker: a page showing it.

Protocol (README "Event stream"): authenticate with a first frame
`{"Authenticate": {"token", "last_event_id"?}}` or `?token=` (and `?last_event_id=`); the
server answers `Authenticated`, then a snapshot (or the replay after `last_event_id`), then
live events. `{"SubscribeRequest": {"events": [{"event_type"}], "instance_ids"?}}` filters.
Close codes: 4401 bad, expired or missing token (also 5 s of silence before authenticating
and when the token expires), 1013 too slow to keep up (reason `TOO_SLOW`... as the hub says)
or the store cannot serve now (reason `STORE_UNAVAILABLE <reason>`: connect again later),
1001 server shutting down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from importlib.resources import files
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate
from quart import Blueprint, Response, websocket

from app.contract import Reply, declare
from app.http import log, services
from app.schemas.stream import ALL_EVENTS, AuthenticateSchema, SubscribeRequestSchema
from app.security import TokenError
from app.services.events import (
    CLOSE_TRY_AGAIN_LATER,
    CLOSE_UNAUTHORIZED,
    Subscriber,
    control,
)
from app.store.errors import classify

blueprint = Blueprint("events", __name__)

AUTHENTICATE = AuthenticateSchema()
SUBSCRIBE = SubscribeRequestSchema()
CLOSE_TIMEOUT_S = 30.0
TICKER_FILES = {"ticker.js": "text/javascript", "ticker.css": "text/css"}


class Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _frame(text: str | bytes, name: str, schema: Schema) -> dict[str, Any]:
    """`{name: {...}}` loaded by the schema; raises ValueError or ValidationError."""
    document = json.loads(text)
    if not isinstance(document, dict) or set(document) != {name}:
        raise ValueError(f"expected a {name} frame")
    result: dict[str, Any] = schema.load(document[name])
    return result


async def _authenticate() -> tuple[str, str | None]:
    token = websocket.args.get("token")
    if token:
        return token, websocket.args.get("last_event_id")
    timeout = services().settings.events_auth_timeout_s
    try:
        text = await asyncio.wait_for(websocket.receive(), timeout)
    except TimeoutError:
        raise Refused("AUTHENTICATION_TIMEOUT") from None
    try:
        frame = _frame(text, "Authenticate", AUTHENTICATE)
    except (ValueError, ValidationError):
        raise Refused("AUTHENTICATION_REQUIRED") from None
    return frame["token"], frame["last_event_id"]


async def _pump(subscriber: Subscriber) -> None:
    """Send the subscriber's outbox in order until it is closed."""
    while subscriber.close_code is None:
        await subscriber.wake.wait()
        subscriber.wake.clear()
        while subscriber.outbox and subscriber.close_code is None:
            _, text = subscriber.outbox.popitem(last=False)
            await websocket.send(text)


async def _receive(subscriber: Subscriber) -> None:
    """SubscribeRequest frames change the filter; anything else is answered with an Error."""
    hub = services().events
    while True:
        text = await websocket.receive()
        try:
            request = _frame(text, "SubscribeRequest", SUBSCRIBE)
        except ValidationError as error:
            subscriber.push(
                control("Error", {"code": "VALIDATION_ERROR", "details": error.messages})
            )
            continue
        except ValueError:
            subscriber.push(
                control(
                    "Error",
                    {"code": "UNKNOWN_FRAME", "details": {}, "error": "Expected SubscribeRequest."},
                )
            )
            continue
        types = {choice["event_type"] for choice in request["events"]}
        event_types = None if ALL_EVENTS in types else types
        hub.subscribe(subscriber, event_types, request["instance_ids"])
        subscriber.push(
            control(
                "Subscribed",
                {
                    "events": sorted(types),
                    "instance_ids": request["instance_ids"],
                },
            )
        )


async def _expire(subscriber: Subscriber, expires_at: float) -> None:
    await asyncio.sleep(max(0.0, expires_at - time.time()))
    subscriber.close(CLOSE_UNAUTHORIZED, "TOKEN_EXPIRED")


async def _close(code: int, reason: str) -> None:
    # A client that stopped reading may never take the close frame: do not wait forever.
    with contextlib.suppress(Exception):
        await asyncio.wait_for(websocket.close(code, reason), CLOSE_TIMEOUT_S)


@blueprint.websocket("/events")  # the token comes in the first frame (or ?token=)
async def events() -> None:
    await websocket.accept()
    gateway = services()
    try:
        token, last_event_id = await _authenticate()
        try:
            _, expires_at = gateway.tokens.verify_until(token)
            # also refuses a revoked token; a display token is for this route alone
            principal = await gateway.auth.principal(token, display=True)
        except TokenError as error:
            raise Refused(error.code) from None
        authenticated = {
            "operator_id": principal.operator_id,
            "username": principal.username,
            "expires_at": expires_at,
        }
        subscriber = await gateway.events.connect(principal, authenticated, last_event_id)
    except Refused as refused:
        await _close(CLOSE_UNAUTHORIZED, refused.reason)
        return
    except Exception as error:
        failure = classify(error)
        if failure is None:
            raise
        # One line, no traceback (as app.http.error_for does for a request): connect later.
        log.warning("store %s on websocket /events: %s", failure.kind, failure)
        gateway.metrics.store_errors.labels(failure.kind).inc()
        await _close(CLOSE_TRY_AGAIN_LATER, f"STORE_UNAVAILABLE {failure.reason}")
        return
    tasks = [
        asyncio.create_task(_pump(subscriber)),
        asyncio.create_task(_receive(subscriber)),
        asyncio.create_task(_expire(subscriber, expires_at)),
        asyncio.create_task(subscriber.closed.wait()),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gateway.events.disconnect(subscriber)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
    if subscriber.close_code is not None:
        await _close(subscriber.close_code, subscriber.close_reason)


# -- the ticker page ---------------------------------------------------------------------------
def _asset(name: str) -> bytes:
    return files("app.static").joinpath("ticker", name).read_bytes()


@blueprint.get("/ticker")
@declare(
    "Open the live ticker page (it reads the GET /events websocket).",
    tag="Event stream",
    public=True,
    responses={
        200: Reply(
            "An HTML page; its token is typed in or given as #token=.", content_type="text/html"
        )
    },
)
async def ticker() -> Response:
    return Response(_asset("index.html"), content_type="text/html; charset=utf-8")


@blueprint.get("/ticker/<name>")
@declare(
    "Read the ticker page's script or style sheet.",
    tag="Event stream",
    public=True,
    path={"name": fields.String(validate=validate.OneOf(TICKER_FILES))},
    responses={
        200: Reply(
            "ticker.js or ticker.css.",
            content_type="text/plain",
            text_types=("text/javascript", "text/css"),
        )
    },
)
async def ticker_asset(name: str) -> Response:
    return Response(_asset(name), content_type=f"{TICKER_FILES[name]}; charset=utf-8")
