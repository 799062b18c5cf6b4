"""GET /events on the real web server (`jackpot-gateway serve` subprocesses on a private
redis-server): two processes both deliver and resume each other's event ids, a raffle draw
reaches two operators each with only its own players in clear, a slow client is
closed with 1013 while a fast one keeps receiving, and SIGTERM closes sockets with 1001 (one
process or several worker processes)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from app.schemas.admin import InstanceSchema
from app.services import Services
from app.store import keys
from tests.conftest import DEMO, PLATFORM, RIVAL, load_demo, make_settings
from tests.support.definitions import hit_rate, instance, pot
from tests.support.events import authenticate, parse
from tests.support.web import StalledWebsocket, WebServer

pytestmark = [pytest.mark.real_redis, pytest.mark.timeout(90)]

BIG_METADATA = {"note": "x" * 8000}  # pass-through data is limited to 8 KiB of JSON


@pytest.fixture
async def token(real_redis_url: str) -> AsyncIterator[str]:
    """Demo loaded with `lucky` (every contribution wins its mini pot); a demo token."""
    services = Services.create(make_settings(real_redis_url))
    await load_demo(services)
    await services.admin.create_instance(
        InstanceSchema().load(instance("lucky", pots=[pot("mini", "0.7", hit_rate(1), seed="10")]))
    )
    yield services.tokens.issue(DEMO)
    await services.close()


@pytest.fixture
def servers(real_redis_url: str) -> Iterator[list[WebServer]]:
    started: list[WebServer] = []
    yield started
    for server in started:
        server.stop()


def start(servers: list[WebServer], redis_url: str, **env: str) -> WebServer:
    server = WebServer(redis_url, UPDATE_INTERVAL_SECONDS="0.5", **env)
    servers.append(server)
    return server


async def receive(ws: ClientConnection, within: float = 10.0) -> dict[str, Any]:
    return parse(await asyncio.wait_for(ws.recv(), within))


async def next_win(ws: ClientConnection) -> dict[str, Any]:
    return await next_event(ws, "JackpotWinEvent")


async def next_event(ws: ClientConnection, event_type: str) -> dict[str, Any]:
    while True:
        message = await receive(ws)
        if message["event_type"] == event_type:
            return message


async def open_stream(
    server: WebServer, token: str, positions: dict[str, str] | None = None
) -> Any:
    ws = await connect(server.ws_url + "/events")
    await ws.send(authenticate(token, positions))
    assert (await receive(ws))["event_type"] == "Authenticated"
    return ws


async def win(http: httpx.AsyncClient, server: WebServer, token: str, **fields: Any) -> str:
    """A winning contribution; the tag its win event carries in its metadata."""
    tag = uuid.uuid4().hex
    body = {
        "event_metadata": {"tag": tag},
        "instance_id": "lucky",
        "token": "session",
        "brand_id": "demo:brand1",
        "player_id": "p1",
        "player_country": "DE",
        "base_wager": "1.00",
        "currency": "EUR",
        **fields,
    }
    response = await http.post(
        server.url + "/jackpots/contribute",
        content=json.dumps(body),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["win_pot_id"] == "mini"
    return tag


async def test_two_web_processes_both_deliver_and_resume_each_others_ids(
    real_redis_url: str, servers: list[WebServer], token: str
) -> None:
    one, two = start(servers, real_redis_url), start(servers, real_redis_url)
    async with httpx.AsyncClient() as http:
        first, second = await open_stream(one, token), await open_stream(two, token)
        win_id = await win(http, one, token)
        at_one, at_two = await next_win(first), await next_win(second)
        assert at_one["data"]["metadata"]["tag"] == at_two["data"]["metadata"]["tag"] == win_id
        assert Decimal(at_two["data"]["win_amount"]) == Decimal("10.7")
        await first.close()
        # Missed while disconnected from process one; resumed on process two.
        missed = [await win(http, two, token), await win(http, one, token)]
        assert at_one["channel"] == "lucky" and at_one["event_id"] == at_two["event_id"]
        resumed = await open_stream(two, token, {"lucky": at_one["event_id"]})
        assert [(await next_win(resumed))["data"]["metadata"]["tag"] for _ in missed] == missed
        live = await win(http, one, token)
        assert (await next_win(resumed))["data"]["metadata"]["tag"] == live
        await resumed.close()
        await second.close()


async def test_a_raffle_draw_reaches_each_operator_with_only_its_own_players_in_clear(
    real_redis_url: str, servers: list[WebServer], token: str
) -> None:
    """A raffle shared by operators demo and rival, two players of each holding tickets: the
    draw's RaffleWinEvent reaches both operators' sockets with the draw's winners and amounts
    (as its published round record has them), each operator's own players in clear and the
    other operator's masked."""
    server = start(servers, real_redis_url)
    services = Services.create(make_settings(real_redis_url))
    rival_token = services.tokens.issue(RIVAL)
    # The raffle is shared by two operators: the platform creates, draws and reads it.
    platform_auth = {"Authorization": f"Bearer {services.tokens.issue(PLATFORM)}"}
    await services.close()
    demo_auth = {"Authorization": f"Bearer {token}"}
    rival_auth = {"Authorization": f"Bearer {rival_token}"}
    raffle = instance(
        "shared-raffle",
        jackpot_type="Raffle",
        contribution_type={"Percentage": "0.01"},
        house_share="0.5",
        pots=[pot("pool", "0.5")],
        allowed_brands=["demo:brand1", "rival:main"],
        raffle={
            "ticket_cost": "1.00",
            "ticket_basis": "base_wager",
            "prizes": ["1", {"share": "0.5"}, "2", "3"],
            "draw": {"every": "1s"},  # nobody draws it but this test
        },
    )
    players = {  # player -> (brand, headers, base wager: its tickets)
        "d1": ("demo:brand1", demo_auth, "12"),
        "d2": ("demo:brand1", demo_auth, "3.5"),
        "r1": ("rival:main", rival_auth, "40"),
        "r2": ("rival:main", rival_auth, "7.25"),
    }
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.post("/admin/instances", json=raffle, headers=platform_auth)
        assert response.status_code == 201, response.text
        demo_ws, rival_ws = await open_stream(server, token), await open_stream(server, rival_token)
        for player, (brand, auth, wager) in players.items():
            body = {
                "instance_id": "shared-raffle",
                "token": "session",
                "brand_id": brand,
                "player_id": player,
                "player_country": "DE",
                "base_wager": wager,
                "currency": "EUR",
            }
            response = await http.post("/jackpots/contribute", json=body, headers=auth)
            assert response.status_code == 200, response.text
        while True:  # the round ends a second after it opened
            response = await http.post("/admin/instances/shared-raffle/draw", headers=platform_auth)
            if response.status_code != 409:
                break
            assert response.json()["code"] == "ROUND_NOT_CLOSED"
            await asyncio.sleep(0.2)
        assert response.status_code == 200, response.text
        response = await http.get("/admin/instances/shared-raffle/rounds/1", headers=platform_auth)
        published = response.json()
        winners = published["winners"]  # in prize order; amounts in micro-units
        assert sorted(w["player_id"] for w in winners) == sorted(players)
        # Prizes 1, half the pot at the draw, 2 and 3 (all paid: 4 players, 4 prizes).
        assert [int(w["win_amount"]) for w in winners] == [
            1_000_000,
            int(published["pot_value"]) // 2,
            2_000_000,
            3_000_000,
        ]
        for operator_id, ws in (("demo", demo_ws), ("rival", rival_ws)):
            event = await next_event(ws, "RaffleWinEvent")
            data = event["data"]
            assert data["instance_id"] == "shared-raffle" and data["brand_id"] is None
            assert data["round"] == published["round"] == 1
            assert data["timestamp"] == int(published["drawn_at"])
            assert data["unpaid_prizes"] == published["unpaid_prizes"] == []
            received = [{**w, "win_amount": Decimal(w["win_amount"])} for w in data["winners"]]
            assert received == [
                {
                    "player_id": w["player_id"] if w["operator_id"] == operator_id else "***",
                    "brand_id": f"{w['operator_id']}:{w['brand_id']}",
                    "currency": raffle["currency"],
                    "win_amount": Decimal(w["win_amount"]) / 10**6,
                    "win_withheld": w["win_withheld"],
                }
                for w in winners
            ]
            own = {p for p, (brand, _, _) in players.items() if brand.startswith(operator_id)}
            assert {w["player_id"] for w in received} == own | {"***"}
        await demo_ws.close()
        await rival_ws.close()


async def test_a_slow_client_is_closed_1013_and_a_fast_one_keeps_receiving(
    real_redis_url: str, servers: list[WebServer], token: str
) -> None:
    server = start(servers, real_redis_url, EVENTS_QUEUE_LIMIT="8")
    loop = asyncio.get_running_loop()
    slow = await loop.run_in_executor(None, StalledWebsocket, server.port, authenticate(token))
    fast = await open_stream(server, token)
    received: list[str] = []
    all_received = asyncio.Event()
    events = 48

    async def read_fast() -> None:
        while len(received) < events:
            received.append((await next_win(fast))["data"]["metadata"]["tag"])
        all_received.set()

    reader = asyncio.create_task(read_fast())
    # 48 events of 128 KiB (6 MiB) are more than the kernel buffers in front of the slow
    # client hold. They are appended as the scripts do (app/store/events.py), for speed.
    store = redis.Redis.from_url(real_redis_url)
    sent = []
    for n in range(events):
        win_id = f"w{n}"
        envelope = {
            "event_type": "JackpotWinEvent",
            "event_id": win_id,
            "data": {
                "brand_id": "demo:brand1",
                "player_id": "p1",
                "source_id": None,
                "instance_id": "lucky",
                "jackpot_name": "Jackpot lucky",
                "timestamp": 1,
                "win_pot_id": "mini",
                "win_amount": "10.7",
                "jackpot_currency": "EUR",
                "currency_multipliers": {"EUR": 1},
                "seed": "10",
                "seed_deficit": "10",
                "win_withheld": False,
                "metadata": {"tag": win_id, "note": "x" * 128 * 1024},
            },
        }
        payload = json.dumps(envelope)
        store.xadd(
            keys.instance_events("lucky"),
            {"event_id": win_id, "event_type": "JackpotWinEvent", "payload": payload},
        )
        store.publish(keys.instance_channel("lucky"), payload)
        sent.append(win_id)
        await asyncio.sleep(0.01)
    store.close()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_received.wait(), 20)
    reader.cancel()
    assert received == sent  # the fast client got every event, in order
    # Now the slow client reads what reached it before the server gave up on it.
    assert await loop.run_in_executor(None, slow.close_code) == 1013
    assert slow.messages < len(sent)
    await fast.close()


async def test_sigterm_closes_websockets_1001_and_the_server_exits(
    real_redis_url: str, servers: list[WebServer], token: str
) -> None:
    server = start(servers, real_redis_url)
    ws = await open_stream(server, token)
    loop = asyncio.get_running_loop()
    exit_code = loop.run_in_executor(None, server.terminate)
    with pytest.raises(ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), 10)
    assert ws.close_code == 1001
    assert await exit_code == 0


@pytest.mark.parametrize("signalled", ["parent", "group"])
async def test_sigterm_closes_websockets_1001_with_several_worker_processes(
    real_redis_url: str, servers: list[WebServer], token: str, signalled: str
) -> None:
    """WEB_CONCURRENCY=2: the workers close their sockets with 1001 whether only the parent
    is sent SIGTERM or, as a supervisor may, its whole process group; the parent exits 0."""
    server = WebServer(
        real_redis_url, own_group=True, UPDATE_INTERVAL_SECONDS="0.5", WEB_CONCURRENCY="2"
    )
    servers.append(server)
    sockets = [await open_stream(server, token) for _ in range(8)]
    loop = asyncio.get_running_loop()
    exit_code = loop.run_in_executor(None, server.terminate, 20.0, signalled == "group")
    for ws in sockets:
        with pytest.raises(ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), 20)
    assert [ws.close_code for ws in sockets] == [1001] * len(sockets)
    assert await exit_code == 0, server.output()[-2000:]


async def test_websocket_compression_is_off_unless_configured(
    real_redis_url: str, servers: list[WebServer], token: str
) -> None:
    """A browser offers permessage-deflate; a socket that takes it keeps a zlib compressor
    of ~256 KB while idle (tracemalloc), so it is declined unless EVENTS_COMPRESSION."""
    plain = start(servers, real_redis_url)
    deflating = start(servers, real_redis_url, EVENTS_COMPRESSION="1")
    for server, negotiated in ((plain, None), (deflating, "permessage-deflate")):
        async with connect(server.ws_url + "/events", compression="deflate") as ws:
            extensions = ws.response.headers.get("Sec-WebSocket-Extensions")
            assert ((extensions or "").split(";")[0] or None) == negotiated, extensions
            await ws.send(authenticate(token))
            assert (await receive(ws))["event_type"] == "Authenticated"
