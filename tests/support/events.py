"""Event stream helpers: frames in and out of `GET /events`, read exactly."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

from quart.testing.connections import WebsocketDisconnectError


def authenticate(token: str, positions: dict[str, str] | None = None, **subscription: Any) -> str:
    frame: dict[str, Any] = {"token": token, **subscription}
    if positions is not None:
        frame["positions"] = positions
    return json.dumps({"Authenticate": frame})


def subscribe(
    *event_types: str,
    instance_ids: list[str] | None = None,
    brands: list[str] | None = None,
    positions: dict[str, str] | None = None,
) -> str:
    request: dict[str, Any] = {"events": list(event_types)}
    if instance_ids is not None:
        request["instance_ids"] = instance_ids
    if brands is not None:
        request["brands"] = brands
    if positions is not None:
        request["positions"] = positions
    return json.dumps({"SubscribeRequest": request})


PONG = json.dumps({"Pong": {}})


class ManualClock:
    """A heartbeat clock that moves only when a test advances it (EventHub.clock)."""

    def __init__(self) -> None:
        self.t = 0.0
        self._moved: asyncio.Condition | None = None

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        if self._moved is None:
            self._moved = asyncio.Condition()
        target = self.t + seconds
        async with self._moved:
            await self._moved.wait_for(lambda: self.t >= target)

    async def advance(self, seconds: float) -> None:
        """Move time on and let the hub's heartbeat run."""
        self.t += seconds
        if self._moved is not None:
            async with self._moved:
                self._moved.notify_all()
        for _ in range(5):
            await asyncio.sleep(0)


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
