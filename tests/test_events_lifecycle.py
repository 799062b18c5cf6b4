"""Lifecycle changes and raffle draws reach websocket clients at once as JackpotUpdateEvents,
on the real web server (`jackpot-gateway serve` on a private redis-server) with an update
tick far longer than the test: a pause, a resume, a termination and a draw each arrive
within seconds, and a client that resumes after missing a termination gets the Terminated
update."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from app.core.clock import now_ms
from app.schemas.admin import InstanceSchema
from app.services import Services
from tests.conftest import DEMO, load_demo, make_settings
from tests.support.definitions import instance, pot
from tests.support.events import authenticate, parse
from tests.support.http import contribution
from tests.support.web import WebServer

pytestmark = [pytest.mark.real_redis, pytest.mark.timeout(90)]

LONG_TICK = "600"  # seconds: no update in these tests comes from the periodic tick
PROMPT = 10.0  # seconds a prompt update may take on a loaded machine (far below the tick)
ROUND_S = 3  # the raffle's rounds end every 3 s


@pytest.fixture
async def token(real_redis_url: str) -> AsyncIterator[str]:
    """Demo loaded with `life` (a jackpot) and `draws` (a raffle whose rounds end every 3 s,
    one prize: half of its prize pot); a demo token (admin and operator)."""
    services = Services.create(make_settings(real_redis_url))
    await load_demo(services)
    await services.admin.create_instance(InstanceSchema().load(instance("life")))
    raffle = instance(
        "draws",
        jackpot_type="Raffle",
        contribution_type={"Percentage": "0.01"},
        house_share="0.5",
        pots=[pot("pool", "0.5")],
        raffle={
            "ticket_cost": "1.00",
            "ticket_basis": "base_wager",
            "prizes": [{"share": "0.5"}],
            "draw": {"every": f"{ROUND_S}s"},
        },
    )
    await services.admin.create_instance(InstanceSchema().load(raffle))
    yield services.tokens.issue(DEMO)
    await services.close()


@pytest.fixture
def server(real_redis_url: str) -> Iterator[WebServer]:
    web = WebServer(real_redis_url, UPDATE_INTERVAL_SECONDS=LONG_TICK)
    yield web
    web.stop()


async def receive(ws: ClientConnection, within: float) -> dict[str, Any]:
    return parse(await asyncio.wait_for(ws.recv(), within))


async def next_update(ws: ClientConnection, instance_id: str) -> dict[str, Any]:
    """The next JackpotUpdateEvent of the instance, within PROMPT seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PROMPT
    while True:
        message = await receive(ws, max(0.01, deadline - loop.time()))
        if message["event_type"] == "JackpotUpdateEvent" and message["data"]["id"] == instance_id:
            return message


async def open_stream(
    server: WebServer, token: str, positions: dict[str, str] | None = None
) -> ClientConnection:
    ws = await connect(server.ws_url + "/events")
    await ws.send(authenticate(token, positions))
    assert (await receive(ws, PROMPT))["event_type"] == "Authenticated"
    return ws


async def admin(http: httpx.AsyncClient, server: WebServer, token: str, path: str) -> Any:
    response = await http.post(
        server.url + "/admin/instances/" + path, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    return response.json()


def pot_values(update: dict[str, Any]) -> dict[str, Decimal]:
    return {p["id"]: Decimal(p["current_value"]) for p in update["data"]["pots"]}


async def test_status_changes_reach_subscribers_at_once(server: WebServer, token: str) -> None:
    async with httpx.AsyncClient() as http:
        ws = await open_stream(server, token)
        snapshot = await next_update(ws, "life")
        assert snapshot["data"]["status"] == "Active"
        await admin(http, server, token, "life/pause")
        paused = await next_update(ws, "life")
        assert paused["data"]["status"] == "Paused"
        await admin(http, server, token, "life/resume")
        assert (await next_update(ws, "life"))["data"]["status"] == "Active"
        await admin(http, server, token, "life/terminate")
        assert (await next_update(ws, "life"))["data"]["status"] == "Terminated"
        await ws.close()
        # A client that left while Paused and comes back after the termination: the
        # snapshot after its (empty) replay says Terminated, though only Active instances
        # are in a fresh snapshot.
        # (an update carries its channel's position: the client resumes from it)
        resumed = await open_stream(server, token, {"life": paused["event_id"]})
        assert (await next_update(resumed, "life"))["data"]["status"] == "Terminated"
        await resumed.close()
        fresh = await open_stream(server, token)
        await fresh.send(json.dumps({"SubscribeRequest": {"events": [{"event_type": "*"}]}}))
        with pytest.raises(TimeoutError):
            while True:  # nothing about `life` in a fresh snapshot: it is not Active
                message = await receive(fresh, 2.0)
                assert message["data"] is None or message["data"].get("id") != "life"
        await fresh.close()


async def test_a_raffle_draw_sends_the_new_pot_values_at_once(
    server: WebServer, token: str
) -> None:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with httpx.AsyncClient() as http:
        opened = now_ms()
        for player in ("a", "b"):
            body = contribution("draws", player, base_wager="100.00")
            response = await http.post(
                server.url + "/jackpots/contribute", content=json.dumps(body), headers=headers
            )
            assert response.status_code == 200, response.text
        ws = await open_stream(server, token)
        # 2 x 1 % of 100 EUR, half of it to the prize pot.
        assert pot_values(await next_update(ws, "draws")) == {"pool": Decimal("1")}
        await asyncio.sleep(max(0.0, (opened + ROUND_S * 1000 - now_ms()) / 1000) + 0.2)
        record = await admin(http, server, token, "draws/draw")
        assert record["status"] == "drawn" and len(record["winners"]) == 1
        while True:
            update = await next_update(ws, "draws")
            if pot_values(update) != {"pool": Decimal("1")}:
                break
        assert pot_values(update) == {"pool": Decimal("0.5")}  # the prize: half of the pot
        assert update["data"]["status"] == "Active"
        await ws.close()
