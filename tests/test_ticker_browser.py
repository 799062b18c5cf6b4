"""The /ticker page in real headless Chromium (Debian's `chromium`, driven by Playwright for
Python): a winning contribution appears in the win feed in the chosen currency and moves a pot
value; after the server restarts, the page reconnects with its last_event_id and shows the win
it missed meanwhile. A screenshot is saved in TEST_OUTPUT_DIR (default: test-output/)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.schemas.admin import InstanceSchema
from app.services import Services
from tests.conftest import DEMO, load_demo, make_settings
from tests.support.definitions import hit_rate, instance, pot
from tests.support.web import WebServer

pytestmark = [pytest.mark.real_redis, pytest.mark.timeout(120)]

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
OUTPUT = Path(
    os.environ.get("TEST_OUTPUT_DIR", Path(__file__).resolve().parents[1] / "test-output")
)

playwright_api = pytest.importorskip("playwright.async_api")
if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
    pytest.skip(
        f"no Chromium at {CHROMIUM} (.ci/run installs Debian's chromium)", allow_module_level=True
    )


@pytest.fixture
async def token(real_redis_url: str) -> AsyncIterator[str]:
    """Demo loaded with `lucky`: every contribution of 1.00 wins its mini pot (seed 10, half of
    the contribution) and adds 0.20 to its grand pot."""
    services = Services.create(make_settings(real_redis_url))
    await load_demo(services)
    pots = [pot("mini", "0.5", hit_rate(1), seed="10"), pot("grand", "0.2")]
    await services.admin.create_instance(
        InstanceSchema().load(instance("lucky", name="Lucky Drop", pots=pots))
    )
    yield services.tokens.issue(DEMO)
    await services.close()


@pytest.fixture
def servers() -> Iterator[list[WebServer]]:
    started: list[WebServer] = []
    yield started
    for server in started:
        server.stop()


async def win(server: WebServer, token: str, player: str) -> str:
    body = {
        "instance_id": "lucky",
        "token": "session",
        "brand_id": "demo:brand1",
        "player_id": player,
        "player_country": "DE",
        "base_wager": "1.00",
        "currency": "EUR",
    }
    async with httpx.AsyncClient() as http:
        response = await http.post(
            server.url + "/jackpots/contribute",
            content=json.dumps(body),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
    assert response.status_code == 200, response.text
    return response.headers["X-Contribution-Id"]


@pytest.fixture
def output() -> Path:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    return OUTPUT


async def test_the_ticker_shows_wins_and_pot_values_live_and_resumes_after_a_drop(
    real_redis_url: str, servers: list[WebServer], token: str, output: Path
) -> None:
    page_server = WebServer(real_redis_url, UPDATE_INTERVAL_SECONDS="0.3")
    servers.append(page_server)
    api = WebServer(real_redis_url)
    servers.append(api)
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
            ],
        )
        try:
            page = await browser.new_page(viewport={"width": 1100, "height": 700})
            errors: list[Any] = []
            page.on("pageerror", lambda error: errors.append(error))
            await page.goto(f"{page_server.url}/ticker#token={token}&currency=USD")
            grand = page.locator('[data-instance="lucky"] [data-pot="grand"] .value')
            await playwright_api.expect(grand).to_have_text("0.00 EUR")
            await playwright_api.expect(page.locator("#status")).to_have_text("live")

            await win(api, token, "alice")
            feed = page.locator("#wins li")
            await playwright_api.expect(feed).to_have_count(1)
            # 10.50 EUR (seed 10 + half of 1.00) at 1.08 USD per EUR
            await playwright_api.expect(feed.first.locator(".amount")).to_have_text("11.34 USD")
            await playwright_api.expect(feed.first).to_contain_text("alice")
            await playwright_api.expect(grand).to_have_text("0.20 EUR")

            # Drop: the page's server goes away (1001); a win happens; the server comes back.
            assert page_server.terminate() == 0
            await playwright_api.expect(page.locator("#status")).not_to_have_text("live")
            await win(api, token, "bob")
            servers.remove(page_server)
            again = WebServer(real_redis_url, port=page_server.port, UPDATE_INTERVAL_SECONDS="0.3")
            servers.append(again)
            await playwright_api.expect(page.locator("#status")).to_have_text("live", timeout=15000)
            await playwright_api.expect(feed).to_have_count(2)
            await playwright_api.expect(feed.first).to_contain_text("bob")
            await playwright_api.expect(grand).to_have_text("0.40 EUR")  # values caught up
            await page.screenshot(path=str(output / "ticker.png"), full_page=True)
            assert errors == []
        finally:
            await browser.close()
