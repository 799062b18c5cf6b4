"""GET /events: the live event stream (websocket), and GET /ticker: a page showing it.

Protocol (docs/events.md): authenticate with a first frame
`{"Authenticate": {"token", "positions"?, "events"?, "instance_ids"?, "brands"?}}` or
`?token=`; the server answers `Authenticated`, then per channel (instance) a replay after
its position or a snapshot, then live events. `{"SubscribeRequest": {"events", "instance_ids"?,
"brands"?, "positions"?}}` changes the channels and types; `{"Pong": {}}` answers a `Ping`.
Close codes: 4401 bad, expired or missing token (also 5 s of silence before authenticating
and when the token expires), 4408 no frame for ping interval + pong timeout, 1013 too slow
to keep up or the store cannot serve now (reason `STORE_UNAVAILABLE <reason>`: connect
again later), 1001 server shutting down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from importlib.resources import files
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate
from quart import Blueprint, Response, websocket

from app.core.security import TokenError
from app.edge.contract import Reply, declare
from app.edge.http import log, services
from app.schemas.stream import (
    ALL_EVENTS,
    AuthenticateSchema,
    PongSchema,
    SubscribeRequestSchema,
)
from app.services.events.messages import control
from app.services.events.subscriber import (
    CLOSE_TRY_AGAIN_LATER,
    CLOSE_UNAUTHORIZED,
    Selection,
    Subscriber,
)
from app.services.failures import classify

blueprint = Blueprint("events", __name__)

AUTHENTICATE = AuthenticateSchema()
SUBSCRIBE = SubscribeRequestSchema()
PONG = PongSchema()
FRAMES = {"SubscribeRequest": SUBSCRIBE, "Pong": PONG}
CLOSE_TIMEOUT_S = 30.0
TICKER_FILES = {"ticker.js": "text/javascript", "ticker.css": "text/css"}


class Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _frame(text: str | bytes, schemas: Mapping[str, Schema]) -> tuple[str, dict[str, Any]]:
    """`{name: {...}}` with its body loaded by that name's schema; raises ValueError or
    ValidationError."""
    document = json.loads(text)
    if not isinstance(document, dict) or len(document) != 1 or next(iter(document)) not in schemas:
        raise ValueError(f"expected one of {', '.join(schemas)}")
    name = next(iter(document))
    result: dict[str, Any] = schemas[name].load(document[name])
    return name, result


def _selection(request: dict[str, Any]) -> Selection | None:
    """What a frame subscribes to; None when it names nothing (Authenticate without it)."""
    events, ids, brands = request["events"], request["instance_ids"], request["brands"]
    if events is None and ids is None and brands is None:
        return None
    types = None if events is None or ALL_EVENTS in events else frozenset(events)
    return Selection(
        types,
        None if ids is None else frozenset(ids),
        None if brands is None else frozenset(brands),
    )


async def _authenticate() -> tuple[str, dict[str, Any] | None]:
    token = websocket.args.get("token")
    if token:
        return token, None
    timeout = services().settings.events_auth_timeout_s
    try:
        text = await asyncio.wait_for(websocket.receive(), timeout)
    except TimeoutError:
        raise Refused("AUTHENTICATION_TIMEOUT") from None
    try:
        _, frame = _frame(text, {"Authenticate": AUTHENTICATE})
    except (ValueError, ValidationError):
        raise Refused("AUTHENTICATION_REQUIRED") from None
    return frame["token"], frame


async def _pump(subscriber: Subscriber) -> None:
    """Send the subscriber's outbox in order until it is closed."""
    while subscriber.close_code is None:
        await subscriber.wait()
        while (text := subscriber.next_text()) is not None:
            await websocket.send(text)


async def _receive(subscriber: Subscriber) -> None:
    """Any frame is a sign of life (heartbeat); SubscribeRequest changes the subscription,
    Pong only answers a Ping; anything else is answered with an Error."""
    hub = services().events
    while True:
        text = await websocket.receive()
        hub.touch(subscriber)
        try:
            name, request = _frame(text, FRAMES)
        except ValidationError as error:
            subscriber.push(
                control("Error", {"code": "VALIDATION_ERROR", "details": error.messages})
            )
            continue
        except ValueError:
            subscriber.push(
                control(
                    "Error",
                    {
                        "code": "UNKNOWN_FRAME",
                        "details": {},
                        "error": "Expected SubscribeRequest or Pong.",
                    },
                )
            )
            continue
        if name == "SubscribeRequest":
            selection = _selection(request) or Selection()
            await hub.subscribe(subscriber, selection, request["positions"])


async def _close(code: int, reason: str) -> None:
    # A client that stopped reading may never take the close frame: do not wait forever.
    with contextlib.suppress(Exception):
        await asyncio.wait_for(websocket.close(code, reason), CLOSE_TIMEOUT_S)


@blueprint.websocket("/events")  # the token comes in the first frame (or ?token=)
async def events() -> None:
    await websocket.accept()
    gateway = services()
    try:
        token, frame = await _authenticate()
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
        subscriber = await gateway.events.connect(
            principal,
            authenticated,
            None if frame is None else _selection(frame),
            None if frame is None else frame["positions"],
            expires_at,  # the hub's heartbeat closes it (4401) when its token expires
        )
    except Refused as refused:
        await _close(CLOSE_UNAUTHORIZED, refused.reason)
        return
    except Exception as error:
        failure = classify(error)
        if failure is None:
            raise
        # One line, no traceback (as app.edge.http.error_for does for a request): connect later.
        log.warning("store %s on websocket /events: %s", failure.kind, failure)
        gateway.metrics.store_errors.labels(failure.kind).inc()
        await _close(CLOSE_TRY_AGAIN_LATER, f"STORE_UNAVAILABLE {failure.reason}")
        return
    # One task besides the handler per socket (memory per idle socket): the handler sends
    # until the hub closes the subscriber (slow, pong timeout, token expired or revoked,
    # shutdown); a client that leaves makes Quart cancel the handler.
    receiver = asyncio.create_task(_receive(subscriber))
    receiver.add_done_callback(lambda _: subscriber.close(1000, "receiver ended"))
    try:
        await _pump(subscriber)
    finally:
        gateway.events.disconnect(subscriber)
        receiver.cancel()
        with contextlib.suppress(BaseException):
            await receiver
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
