"""Event stream helpers: frames in and out of `GET /events`, read exactly."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

from quart.testing.connections import WebsocketDisconnectError


def authenticate(token: str, last_event_id: str | None = None) -> str:
    frame: dict[str, Any] = {"token": token}
    if last_event_id is not None:
        frame["last_event_id"] = last_event_id
    return json.dumps({"Authenticate": frame})


def subscribe(*event_types: str, instance_ids: list[str] | None = None) -> str:
    request: dict[str, Any] = {"events": [{"event_type": t} for t in event_types]}
    if instance_ids is not None:
        request["instance_ids"] = instance_ids
    return json.dumps({"SubscribeRequest": request})


def parse(text: str | bytes) -> dict[str, Any]:
    """A message with every JSON number with a fraction as an exact Decimal."""
    message: dict[str, Any] = json.loads(text, parse_float=Decimal)
    return message


async def receive(ws: Any, within: float = 5.0) -> dict[str, Any]:
    return parse(await asyncio.wait_for(ws.receive(), within))


async def receive_until(ws: Any, event_type: str, within: float = 5.0) -> dict[str, Any]:
    """The next message of this type (others are skipped)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        message = await receive(ws, max(0.01, deadline - loop.time()))
        if message["event_type"] == event_type:
            return message


async def close_code(ws: Any, within: float = 5.0) -> int:
    """The code the server closes with (messages before it are skipped)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    try:
        while True:
            await asyncio.wait_for(ws.receive(), max(0.01, deadline - loop.time()))
    except WebsocketDisconnectError as closed:
        return int(closed.args[0])


def tag_of(win: dict[str, Any]) -> str:
    """The tag a test put in the contribution's event_metadata (a win event has no win id)."""
    return str(win["data"]["metadata"]["tag"])


def pots(update: dict[str, Any]) -> dict[str, Decimal]:
    return {pot["id"]: Decimal(pot["current_value"]) for pot in update["data"]["pots"]}
