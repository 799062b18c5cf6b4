"""Empty answers say what they are, over a real socket: a replayed contribution is a 204 with
no body and no Content-Type; an accepted asynchronous contribution is an empty text/plain 200."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from app import create_app
from app.core import jsonio
from tests.conftest import DEMO, load_demo, make_settings
from tests.support.browser import LiveServer
from tests.support.http import v1_body

NO_OPT_IN = "weekly-raffle"


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[LiveServer, dict[str, str]]]:
    settings = make_settings(
        f"memory://answers-{uuid.uuid4().hex}", callback_allowlist=("127.0.0.1",)
    )
    app = create_app(settings)
    with LiveServer(app, settings) as server:
        gateway = app.extensions["gateway"]
        server.call(load_demo(gateway))
        headers = {
            "Authorization": f"Bearer {gateway.tokens.issue(DEMO)}",
            "Content-Type": "application/json",
        }
        yield server, headers


async def test_a_replayed_contribution_is_an_empty_204_without_a_type(
    live: tuple[LiveServer, dict[str, str]],
) -> None:
    server, headers = live
    body = jsonio.dumps(v1_body(NO_OPT_IN, idempotency_key=f"k-{uuid.uuid4().hex}"))
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as client:
        first = await client.post("/jackpots/contribute", content=body)
        replay = await client.post("/jackpots/contribute", content=body)
    assert first.status_code == 200 and first.headers["content-type"] == "application/json"
    assert replay.status_code == 204
    assert replay.content == b"" and "content-type" not in replay.headers
    assert replay.headers["x-contribution-id"] == first.headers["x-contribution-id"]


async def test_an_accepted_asynchronous_contribution_is_an_empty_text_200(
    live: tuple[LiveServer, dict[str, str]],
) -> None:
    server, headers = live
    callback = {"url": "http://127.0.0.1:9/hook"}
    body = jsonio.dumps(v1_body(NO_OPT_IN, callback=callback))
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as client:
        response = await client.post("/jackpots/contribute", content=body)
    assert response.status_code == 200, response.text
    assert response.content == b""
    assert response.headers["content-type"].startswith("text/plain")
