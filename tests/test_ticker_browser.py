"""The /ticker page in real headless Chromium (Debian's `chromium`, driven by Playwright for
Python).

- Against the real server, as a lobby screen runs it: the page gets display tokens from the
  operator's backend (its `token-url`, answered here by calling POST /authenticate/display with
  the operator's service token), shows instance and pot names and values in the chosen
  currency, a win (player masked) with a banner, reconnects after the server goes away and
  shows the win it missed, and hands over to a fresh token before the old one expires without
  leaving the live state. Screenshots of each state (connecting, live, win, reconnecting).
- A simulated day with an injected clock (tests/support/ticker_fake.js: a fake clock, a fake
  server speaking the channel protocol of docs/ticker.md with Ping/Pong, and the token
  endpoint): the page refreshes its token ~120 times, answers every heartbeat, survives a
  server restart, resumes per channel, shows raffle wins but not an empty round, counts down
  to the next draw.
- The page's money formatting against the server's rule (app/services/conversion.py), on
  many random amounts and multipliers: exact, half-to-even, no float.

Screenshots go to a temporary directory (kept by pytest), and to docs/img/ticker-*.png when
TICKER_DOCS_SCREENSHOTS=1."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import shutil
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.schemas.admin import InstanceSchema
from app.services import Services
from app.services.conversion import Converter
from tests.conftest import DEMO, load_demo, make_settings
from tests.support.definitions import hit_rate, instance, pot
from tests.support.web import WebServer

pytestmark = [pytest.mark.timeout(240)]

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
if not Path(CHROMIUM).exists():
    CHROMIUM = shutil.which("chromium") or CHROMIUM
ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "app" / "static" / "ticker"
DOCS_IMG = ROOT / "docs" / "img"
FAKE = Path(__file__).parent / "support" / "ticker_fake.js"
FAKE_ORIGIN = "http://ticker.test"

playwright_api = pytest.importorskip("playwright.async_api")
if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
    pytest.skip(
        f"no Chromium at {CHROMIUM} (.ci/run installs Debian's chromium)", allow_module_level=True
    )
expect = playwright_api.expect


@pytest.fixture
async def chromium() -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            yield browser
        finally:
            await browser.close()


class Shots:
    """Screenshots into the test's temporary directory (and docs/img when asked)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.taken: list[Path] = []

    async def take(self, page: Any, state: str) -> None:
        path = self.directory / f"ticker-{state}.png"
        await page.screenshot(path=str(path), animations="disabled")
        self.taken.append(path)
        if os.environ.get("TICKER_DOCS_SCREENSHOTS") == "1":
            DOCS_IMG.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, DOCS_IMG / path.name)


# -- against the real server ---------------------------------------------------------------
@pytest.fixture
async def service_token(real_redis_url: str) -> AsyncIterator[str]:
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


async def win(server: WebServer, token: str, player: str) -> None:
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


@pytest.mark.real_redis
async def test_a_lobby_screen_connects_goes_live_shows_wins_reconnects_and_refreshes_its_token(
    real_redis_url: str,
    servers: list[WebServer],
    service_token: str,
    chromium: Any,
    tmp_path: Path,
) -> None:
    page_server = WebServer(real_redis_url, UPDATE_INTERVAL_SECONDS="0.3")
    servers.append(page_server)
    api = WebServer(real_redis_url)
    servers.append(api)
    shots = Shots(tmp_path)
    release = asyncio.Event()  # holds the first token back: the "connecting" state
    minted: list[dict[str, Any]] = []

    async def operator_backend(route: Any) -> None:
        """The operator's own backend: mints with its service token, which the page never
        sees; tokens of 10 s here, so the page refreshes every 8 s."""
        assert route.request.method == "POST"
        await release.wait()
        async with httpx.AsyncClient() as http:
            response = await http.post(
                api.url + "/authenticate/display",
                json={"brands": ["brand1"], "ttl_seconds": 10},
                headers={"Authorization": f"Bearer {service_token}"},
            )
        assert response.status_code == 200, response.text
        minted.append(response.json())
        await route.fulfill(status=200, json=response.json())

    page = await chromium.new_page(viewport={"width": 1100, "height": 620})
    errors: list[Any] = []
    page.on("pageerror", lambda error: errors.append(error))
    await page.route("**/ticker-token", operator_backend)
    await page.goto(f"{page_server.url}/ticker#token-url=/ticker-token&currency=USD")
    status = page.locator(".jt-status")
    await expect(status).to_have_attribute("data-state", "connecting")
    await expect(status).to_contain_text("connecting")
    await shots.take(page, "connecting")

    release.set()
    await expect(status).to_have_attribute("data-state", "live")
    lucky = page.locator('[data-instance="lucky"]')
    await expect(lucky.locator("h3")).to_have_text("Lucky Drop")  # the name, not the id
    await expect(lucky.locator('[data-pot="mini"] .name')).to_have_text("Mini")
    # pots in the chosen currency too: 10 EUR at 1.08 USD per EUR
    await expect(lucky.locator('[data-pot="mini"] .value')).to_have_text("10.80 USD")
    grand = lucky.locator('[data-pot="grand"] .value')
    await expect(grand).to_have_text("0.00 USD")
    await expect(page.locator('[data-instance="daily-drop"] h3')).to_have_text("Daily Drop")
    await shots.take(page, "live")

    await win(api, service_token, "alice")
    feed = page.locator(".jt-wins li")
    await expect(feed).to_have_count(1)
    # 10.50 EUR (seed 10 + half of 1.00) at 1.08 USD per EUR, exactly
    await expect(feed.first.locator(".amount")).to_have_text("11.34 USD")
    await expect(feed.first).to_contain_text("A player won on Lucky Drop · Mini")
    await expect(feed.first).not_to_contain_text("alice")  # a display sees no player id
    await expect(page.locator(".jt-banner strong")).to_have_text("11.34 USD")
    await expect(grand).to_have_text("0.22 USD")  # 0.20 EUR = 0.216 USD, half-to-even
    await shots.take(page, "win")

    # Drop: the page's server goes away (1001); a win happens; the server comes back.
    assert page_server.terminate() == 0
    await expect(status).to_have_attribute("data-state", "reconnecting")
    await shots.take(page, "reconnecting")
    await win(api, service_token, "bob")
    servers.remove(page_server)
    again = WebServer(real_redis_url, port=page_server.port, UPDATE_INTERVAL_SECONDS="0.3")
    servers.append(again)
    await expect(status).to_have_attribute("data-state", "live", timeout=20000)
    await expect(feed).to_have_count(2)  # the missed win, once
    await expect(grand).to_have_text("0.43 USD")  # 0.40 EUR: values caught up

    # Token hand-over: 10 s tokens, refreshed at 8 s; the screen stays live throughout,
    # past the expiry of the tokens it started with (the server closes those with 4401).
    first_refreshes = len(minted)
    states = await page.evaluate(
        """async () => {
            const seen = new Set();
            const status = document.querySelector('.jt-status');
            for (let i = 0; i < 100; i++) {
                seen.add(status.dataset.state);
                await new Promise((resolve) => setTimeout(resolve, 200));
            }
            return Array.from(seen);
        }"""
    )
    assert states == ["live"]
    assert len(minted) >= first_refreshes + 2
    await win(api, service_token, "carol")
    await expect(feed).to_have_count(3)  # still delivering on the newest token's socket
    assert errors == []
    assert {p.name for p in shots.taken} == {
        f"ticker-{s}.png" for s in ("connecting", "live", "win", "reconnecting")
    }


# -- a simulated day -------------------------------------------------------------------------
async def fake_page(chromium: Any, options: dict[str, Any] | None = None) -> Any:
    """The ticker page served from its files, with the fake clock, server and backend."""
    page = await chromium.new_page(viewport={"width": 1100, "height": 620})
    await page.add_init_script(f"window.fakeOptions = {json.dumps(options or {})};")
    await page.add_init_script(path=str(FAKE))

    async def files(route: Any) -> None:
        name = route.request.url.removeprefix(FAKE_ORIGIN).split("#")[0].split("?")[0]
        path = {"/ticker": "index.html"}.get(name, name.removeprefix("/ticker/"))
        types = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
        file = STATIC / path
        if not file.is_file():
            await route.fulfill(status=404, body="")
            return
        await route.fulfill(status=200, body=file.read_bytes(), content_type=types[file.suffix])

    await page.route(f"{FAKE_ORIGIN}/**", files)
    return page


HOUR_MS = 3_600_000


async def test_the_page_stays_live_for_a_simulated_day(chromium: Any, tmp_path: Path) -> None:
    page = await fake_page(chromium)
    errors: list[Any] = []
    page.on("pageerror", lambda error: errors.append(error))
    await page.goto(f"{FAKE_ORIGIN}/ticker#token-url=/ticker-token&currency=USD")
    await page.evaluate(
        """() => {
            // time spent in each state, on the fake clock
            const status = document.querySelector('.jt-status');
            window.dark = { ms: 0, since: null, states: [] };
            const note = () => {
                const now = window.fakeServer.now();
                const live = status.dataset.state === 'live';
                if (!live && window.dark.since === null) window.dark.since = now;
                if (live && window.dark.since !== null) {
                    window.dark.ms += now - window.dark.since;
                    window.dark.since = null;
                }
                window.dark.states.push([now, status.dataset.state]);
            };
            new MutationObserver(note).observe(status, { attributes: true });
            note();
        }"""
    )
    advance = "ms => window.fakeServer.advance(ms)"
    await page.evaluate(advance, 1000)
    status = page.locator(".jt-status")
    await expect(status).to_have_attribute("data-state", "live")
    daily = page.locator('[data-instance="daily"]')
    await expect(daily.locator("h3")).to_have_text("Daily Drop")
    await expect(daily.locator('[data-pot="mini"] .value')).to_have_text("10.80 USD")
    draw = page.locator('[data-instance="raffle"] .jt-draw')
    await expect(draw).to_have_text("Next draw in 05:59:59")  # 6 h after the start, 1 s in

    raffle_shown = None
    for hour in range(24):
        if hour == 12:  # the server restarts and stays away 90 s
            await page.evaluate("() => window.fakeServer.restart(90000)")
            await page.evaluate(advance, 2000)
            await expect(status).to_have_attribute("data-state", "reconnecting")
            await page.evaluate(advance, HOUR_MS - 2000)
        else:
            await page.evaluate(advance, HOUR_MS)
        assert await status.get_attribute("data-state") == "live", f"hour {hour + 1}"
        # the mini pot's value, exactly: the fake's micro-units at 1.08, half-to-even
        micros = await page.evaluate(
            "() => window.fakeServer.instances.daily.pots[0].micros.toString()"
        )
        expected = Converter({"EUR": Decimal(1), "USD": Decimal("1.08")}, {}).shown(
            int(micros), "EUR", "USD"
        )
        await expect(daily.locator('[data-pot="mini"] .value')).to_have_text(f"{expected} USD")
        if hour == 6 and raffle_shown is None:
            raffle_shown = await page.locator('.jt-wins li[data-kind="raffle"]').count()
    stats = await page.evaluate("() => window.fakeServer.stats")
    dark = await page.evaluate("() => window.dark")
    ticker = await page.evaluate(
        "() => ({ refreshes: window.jackpotTicker.state.refreshes,"
        " pongs: window.jackpotTicker.state.pongs })"
    )
    # Tokens of 15 min, refreshed at 80 %: every 12 min for 24 h.
    assert 24 * 60 // 12 - 1 <= stats["tokens"] <= 24 * 60 // 12 + 3, stats
    assert ticker["refreshes"] == stats["tokens"]
    # Never refused: no token outlived (4401), no heartbeat missed (4408).
    assert "server 4401" not in stats["closes"] and "server 4408" not in stats["closes"], stats
    assert stats["pongs"] == stats["pings"] == ticker["pongs"] > 24 * 3600 // 25 * 95 // 100, stats
    # Dark only while the server was away: 90 s plus at most one capped backoff step.
    assert 90_000 <= dark["ms"] <= 90_000 + 30_000, dark["states"][-20:]
    assert stats["closes"].get("server 1001") == 1 and stats["resumed"] >= 1, stats
    assert stats["maxSockets"] <= 2  # one socket, two only while a new token takes over
    # Every win once: 24 jackpot wins, 3 raffle wins; the empty round is not a win.
    wins = page.locator(".jt-wins li")
    await expect(wins).to_have_count(20)  # the feed keeps the latest 20
    assert stats["winsSent"] == 24 + 3
    assert raffle_shown == 1
    kinds = await wins.evaluate_all("items => items.map(i => i.dataset.kind)")
    assert kinds.count("raffle") == 2  # rounds 2 and 4 (the 3rd had no tickets), not round 3
    assert len({await item.text_content() for item in await wins.all()}) == 20  # no duplicates
    await expect(draw).to_contain_text("Next draw in")
    await Shots(tmp_path).take(page, "day")
    summary = {k: stats[k] for k in ("tokens", "pings", "pongs", "authenticated", "closes")}
    print(f"simulated day: {json.dumps({**summary, 'dark_ms': dark['ms']})}")
    assert errors == []


async def test_recent_wins_come_from_the_snapshot_and_backoff_grows_capped_with_jitter(
    chromium: Any,
) -> None:
    page = await fake_page(chromium, {"tokenDown": True, "random": 0.5})
    errors: list[Any] = []
    page.on("pageerror", lambda error: errors.append(error))
    await page.goto(f"{FAKE_ORIGIN}/ticker#token-url=/ticker-token&currency=EUR")
    advance = "ms => window.fakeServer.advance(ms)"
    # The operator's backend is down for 2 h (2 jackpot wins meanwhile): no token, no socket.
    await page.evaluate(advance, 2 * HOUR_MS)
    status = page.locator(".jt-status")
    await expect(status).to_have_attribute("data-state", "reconnecting")
    await expect(status).to_contain_text("waiting for a token")
    assert await page.evaluate("() => window.fakeServer.stats.opened.length") == 0
    await page.evaluate("() => { window.fakeServer.options.tokenDown = false; }")
    await page.evaluate(advance, 31_000)  # the token retry is capped at 30 s
    await expect(status).to_have_attribute("data-state", "live")
    # The wins it never saw live, from the snapshot's recent_wins, in the instance currency.
    wins = page.locator(".jt-wins li")
    await expect(wins).to_have_count(2)
    await expect(wins.first).to_contain_text("A player won on Daily Drop · Mini")
    await expect(page.locator(".jt-banner")).to_be_hidden()  # not announced as new wins
    assert await page.evaluate("() => window.fakeServer.stats.winsSent") == 2

    # The server goes away for 10 min: reconnect attempts 1 s, 2 s, 4 s ... capped at 30 s,
    # each at a jittered point of its step (random() = 0.5 here: 3/4 of it).
    await page.evaluate("() => window.fakeServer.restart(600000)")
    before = await page.evaluate("() => window.fakeServer.stats.opened.length")
    await page.evaluate(advance, 600_000)
    opened = (await page.evaluate("() => window.fakeServer.stats.opened"))[before:]
    gaps = [b - a for a, b in itertools.pairwise(opened)]
    steps = [min(30_000, 1000 * 2 ** (k + 1)) for k in range(len(gaps))]
    # each gap: the jittered delay, plus the fake's 5 ms to refuse and 1 ms to report it
    assert [gap - 6 for gap in gaps] == [step * 3 // 4 for step in steps], gaps
    assert max(gaps) <= 30_000 and len(gaps) >= 20
    await page.evaluate(advance, 30_000)
    await expect(status).to_have_attribute("data-state", "live")
    # The jitter's bounds: random() = 0 waits half a step, random() -> 1 the whole step.
    for draw in (0, 0.999):
        await page.evaluate(f"() => {{ window.fakeServer.options.random = {draw}; }}")
        await page.evaluate("() => window.fakeServer.restart(120000)")
        before = await page.evaluate("() => window.fakeServer.stats.opened.length")
        await page.evaluate(advance, 120_000)
        opened = (await page.evaluate("() => window.fakeServer.stats.opened"))[before:]
        gaps = [b - a - 6 for a, b in itertools.pairwise(opened)]
        steps = [min(30_000, 1000 * 2 ** (k + 1)) for k in range(len(gaps))]
        assert gaps == [int(step / 2 + draw * step / 2 + 0.5) for step in steps], gaps
        await page.evaluate(advance, 31_000)
        await expect(status).to_have_attribute("data-state", "live")
    assert errors == []


async def test_wins_shown_withheld_ones_once_approved_and_never_an_empty_round(
    chromium: Any,
) -> None:
    page = await fake_page(chromium)
    await page.goto(f"{FAKE_ORIGIN}/ticker#token-url=/ticker-token&currency=JPY")
    advance = "ms => window.fakeServer.advance(ms)"
    await page.evaluate(advance, 1000)
    publish = "([channel, type, data]) => window.fakeServer.publish(channel, type, data)"
    base = {"instance_id": "daily", "jackpot_name": "Daily Drop", "timestamp": 1, "round": 7}
    win = {
        **base,
        "brand_id": "demo:brand1",
        "player_id": "***",
        "source_id": None,
        "win_pot_id": "major",
        "win_amount": "1234.5",
        "jackpot_currency": "EUR",
        "currency_multipliers": {"EUR": 1, "JPY": 162},
        "seed": "1000",
        "seed_deficit": "0",
        "win_withheld": True,
        "metadata": None,
    }
    del win["round"]
    await page.evaluate(publish, ["daily", "JackpotWinEvent", win])
    await page.evaluate(
        publish, ["raffle", "RaffleNoWinnersEvent", {**base, "instance_id": "raffle"}]
    )
    winner = {"brand_id": "demo:brand1", "currency": "EUR", "player_id": "***"}
    raffle = {
        **base,
        "instance_id": "raffle",
        "brand_id": None,
        "jackpot_currency": "EUR",
        "currency_multipliers": {"EUR": "1", "JPY": "162"},
        "winners": [
            {**winner, "win_amount": "100.005", "win_withheld": False},
            {**winner, "win_amount": "50", "win_withheld": True},
        ],
        "win_withheld": True,
        "unpaid_prizes": [],
    }
    await page.evaluate(publish, ["raffle", "RaffleWinEvent", raffle])
    ends = await page.evaluate("() => window.fakeServer.now()") + 90_061_000
    opened = {**base, "instance_id": "raffle", "opened": 0, "ends": ends, "commitment": "c"}
    opened |= {"key_id": "k", "next_commitment": None}
    await page.evaluate(publish, ["raffle", "RaffleRoundOpenedEvent", opened])
    await page.evaluate(advance, 1000)
    wins = page.locator(".jt-wins li")
    await expect(wins).to_have_count(1)  # the paid raffle prize only
    await expect(wins.first.locator(".amount")).to_have_text("16,201 JPY")  # 16200.81
    decision = {**base, "win_id": "w-1", "win_pot_id": "major", "brand_id": "demo:brand1"}
    decision |= {"player_id": "***", "win_amount": "1234.5", "decision": "approved"}
    decision |= {"reason": "", "timestamp": 2}
    del decision["round"]
    await page.evaluate(publish, ["daily", "WinDecisionEvent", decision])
    await page.evaluate(advance, 1000)
    await expect(wins).to_have_count(2)
    await expect(wins.first.locator(".amount")).to_have_text("199,989 JPY")  # 1234.5 x 162
    await expect(wins.first).to_contain_text("Daily Drop · Major")
    # the update's next_draw_at (6 h after the start) wins over a round's `ends`
    draw = page.locator('[data-instance="raffle"] .jt-draw')
    await expect(draw).to_contain_text("Next draw in 05:59:5")


async def test_a_stream_that_started_over_is_resumed_fresh_and_its_wins_shown(
    chromium: Any,
) -> None:
    """After a store loss the streams restart under a new epoch with small offsets: the page's
    old positions get ResumeFailed and a fresh snapshot, and later wins (offset 1, 2 ...) are
    shown, not mistaken for ones already seen."""
    page = await fake_page(chromium)
    await page.goto(f"{FAKE_ORIGIN}/ticker#token-url=/ticker-token&currency=EUR")
    advance = "ms => window.fakeServer.advance(ms)"
    await page.evaluate(advance, 3 * HOUR_MS)  # three wins: daily's offset is 3
    wins = page.locator(".jt-wins li")
    await expect(wins).to_have_count(3)
    positions = await page.evaluate("() => window.jackpotTicker.state.positions")
    assert positions["daily"] == "e1:3"
    await page.evaluate("() => window.fakeServer.restart(5000, 'e2')")
    await page.evaluate(advance, 40_000)
    await expect(page.locator(".jt-status")).to_have_attribute("data-state", "live")
    assert await page.evaluate("() => window.jackpotTicker.state.positions.daily") == "e2:0"
    await page.evaluate(advance, HOUR_MS)  # the next win: e2:1, below the old offset 3
    await expect(wins).to_have_count(4)
    assert await page.evaluate("() => window.jackpotTicker.state.positions.daily") == "e2:1"


LOBBY = """<!doctype html><html><head><title>Casino lobby</title></head><body>
<h1>Welcome to the casino</h1>
<div data-jackpot-ticker data-token-url="/ticker-token" data-currency="GBP"
     data-title="Tonight's jackpots"></div>
<script src="http://ticker.test/ticker/ticker.js" async></script>
</body></html>"""


async def test_the_script_tag_embed_runs_in_the_operators_own_page(chromium: Any) -> None:
    """docs/ticker.md's script-tag snippet in a page of another origin: the widget mounts,
    loads its style sheet from the gateway, takes its token from the lobby's own origin."""
    page = await fake_page(chromium)

    async def lobby(route: Any) -> None:
        await route.fulfill(status=200, body=LOBBY, content_type="text/html")

    await page.route("http://casino.test/**", lobby)
    await page.goto("http://casino.test/lobby")
    await page.evaluate("ms => window.fakeServer.advance(ms)", 1000)
    await expect(page.locator(".jt-status")).to_have_attribute("data-state", "live")
    await expect(page.locator(".jt-title")).to_have_text("Tonight's jackpots")
    mini = page.locator('[data-instance="daily"] [data-pot="mini"] .value')
    await expect(mini).to_have_text("8.60 GBP")  # 10 EUR at 0.86
    css = page.locator("link[data-jackpot-ticker-css]")
    assert await css.get_attribute("href") == f"{FAKE_ORIGIN}/ticker/ticker.css"
    assert await page.locator("h1").first.text_content() == "Welcome to the casino"
    margin = await page.evaluate("() => getComputedStyle(document.body).margin")
    assert margin == "8px"  # the widget leaves the host page's own styles alone


async def test_money_is_formatted_exactly_as_the_server_rounds(chromium: Any) -> None:
    """The page's BigInt conversion against app.services.conversion.Converter.shown on random
    amounts, multipliers and currencies (half-to-even ties, 0 and 2 and 3 minor digits, sums
    far past 2^53 micro-units)."""
    page = await fake_page(chromium, {})
    await page.goto(f"{FAKE_ORIGIN}/ticker#token=x")
    rng = random.Random(22)
    decimals = {"JPY": 0, "KWD": 3}
    cases = []
    expected = []
    for _ in range(2000):
        micros = rng.choice([rng.randrange(10**6), rng.randrange(10**12), rng.randrange(10**20)])
        m_from = Decimal(rng.randrange(1, 10**6)).scaleb(-rng.randrange(0, 7))
        m_to = Decimal(rng.randrange(1, 10**6)).scaleb(-rng.randrange(0, 7))
        to = rng.choice(["USD", "JPY", "KWD"])
        if rng.random() < 0.2:  # exact ties: x.xx5 to 2 digits
            micros, m_from, m_to, to = (
                rng.randrange(10**6) * 10_000 + 5_000,
                Decimal(1),
                Decimal(1),
                "USD",
            )
        converter = Converter({"EUR": m_from, to: m_to}, decimals)
        shown = converter.shown(micros, "EUR", to)
        amount = str(Decimal(micros).scaleb(-6))
        cases.append([amount, "EUR", to, {"EUR": str(m_from), to: str(m_to)}])
        digits = converter.minor_units(to)
        whole, _, frac = f"{shown:.{digits}f}".partition(".")
        expected.append(f"{int(whole):,}" + (f".{frac}" if digits else "") + f" {to}")
    got = await page.evaluate(
        """([cases, decimals]) => cases.map(([amount, from, to, multipliers]) =>
            window.JackpotTicker.money(amount, from, to, multipliers, decimals))""",
        [cases, decimals],
    )
    assert got == expected
