"""The reference page in a real browser: Swagger UI renders every operation of /openapi.json
from assets this server serves, and "try it out" works with a bearer token."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app import create_app
from tests.conftest import DEMO, load_demo, make_settings
from tests.support.browser import LiveServer, screenshot_path


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[LiveServer, str]]:
    settings = make_settings(f"memory://docs-page-{uuid.uuid4().hex}")
    app = create_app(settings)
    with LiveServer(app, settings) as live:
        live.call(load_demo(app.extensions["gateway"]))
        yield live, app.extensions["gateway"].tokens.issue(DEMO)


async def test_swagger_ui_renders_every_operation_without_leaving_the_server(
    browser: Any, server: tuple[LiveServer, str]
) -> None:
    live, _ = server
    async with httpx.AsyncClient() as client:
        spec = (await client.get(f"{live.url}/openapi.json")).json()
    expected = sum(len(item) for item in spec["paths"].values())
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    elsewhere: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(live.url) else elsewhere.append(r.url))
    await page.goto(f"{live.url}/docs")
    await page.wait_for_selector(".opblock", timeout=30_000)
    assert await page.locator(".opblock").count() == expected
    assert await page.locator("button.authorize").count() == 1
    assert "Jackpot Gateway operator API" in await page.inner_text(".info .title")
    await page.screenshot(path=str(screenshot_path("docs.png")), full_page=False)
    assert elsewhere == []
    await page.close()


async def test_try_it_out_with_a_bearer_token(browser: Any, server: tuple[LiveServer, str]) -> None:
    live, token = server
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await page.goto(f"{live.url}/docs")
    await page.wait_for_selector(".opblock", timeout=30_000)
    # Authorize with the token.
    await page.click("button.authorize")
    await page.fill(".modal-ux input[type=text]", token)
    await page.click(".modal-ux button.authorize")
    await page.click(".modal-ux button.btn-done")
    # GET /currencies/{brand_id}: expand, fill in the brand, execute.
    path = page.locator('.opblock-summary-path[data-path="/currencies/{brand_id}"]')
    operation = page.locator(".opblock").filter(has=path)
    await operation.locator(".opblock-summary").click()
    # "Try it out" is on from the start (tryItOutEnabled).
    await operation.locator("input[placeholder=brand_id]").fill("brand1")
    await operation.locator("button.execute").click()
    status = operation.locator(".live-responses-table tbody .response-col_status").first
    await status.wait_for(timeout=30_000)
    assert (await status.inner_text()).strip() == "200"
    assert '"base_currency": "EUR"' in await operation.locator(".live-responses-table").inner_text()
    await status.scroll_into_view_if_needed()
    await page.screenshot(path=str(screenshot_path("docs-try-it-out.png")), full_page=False)
    await page.close()


async def test_the_prefilled_body_is_accepted(browser: Any, server: tuple[LiveServer, str]) -> None:
    """What "try it out" pre-fills for a request body is the declared example, and the server
    accepts it as it stands (tests/test_docs_examples.py does so for every route)."""
    live, token = server
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await page.goto(f"{live.url}/docs")
    await page.wait_for_selector(".opblock", timeout=30_000)
    await page.click("button.authorize")
    await page.fill(".modal-ux input[type=text]", token)
    await page.click(".modal-ux button.authorize")
    await page.click(".modal-ux button.btn-done")
    path = page.locator('.opblock-summary-path[data-path="/v2/jackpots/contribute"]')
    operation = page.locator(".opblock").filter(has=path)
    await operation.locator(".opblock-summary").click()
    body = operation.locator("textarea.body-param__text")
    await body.wait_for(timeout=30_000)
    assert '"base_wager"' in await body.input_value()
    await operation.locator("button.execute").click()
    status = operation.locator(".live-responses-table tbody .response-col_status").first
    await status.wait_for(timeout=30_000)
    answer = await operation.locator(".live-responses-table").inner_text()
    assert (await status.inner_text()).strip() == "200", answer
    assert '"success": true' in answer
    await status.scroll_into_view_if_needed()
    await page.screenshot(path=str(screenshot_path("docs-example-body.png")), full_page=False)
    await page.close()
