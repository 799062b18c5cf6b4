"""Display tokens (docs/ticker.md): an operator mints a read-only, brand-scoped, short-lived
token for a lobby screen. Minted by POST /authenticate/display (and the CLI), refused by every
other route (tests/test_route_scopes.py walks the route table with one), accepted by GET
/events, where it sees only its brands' instances with every player id masked."""

from __future__ import annotations

import json
import time
import uuid
from decimal import Decimal
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey
from quart.testing import QuartClient

from app.core.config import ConfigError, Settings
from app.core.security import Principal, TokenError
from app.schemas.events import MASKED_PLAYER, EventType
from app.services import Services
from tests.conftest import CLI, DEMO, PLATFORM, SECRET, auth, load_demo, make_settings
from tests.support.definitions import hit_rate, instance, pot
from tests.support.events import authenticate, close_code, receive, receive_until
from tests.support.http import contribution, create_instance, expect, post
from tests.test_event_masking import SAMPLES, message

pytestmark = pytest.mark.timeout(60)
MINT = "/authenticate/display"
MAX_TTL = 1200  # this module's DISPLAY_TOKEN_MAX_TTL_SECONDS


@pytest.fixture
def redis_url() -> str:
    return f"memory://display-{uuid.uuid4().hex}"


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return make_settings(
        redis_url,
        update_interval_s=0.2,
        display_token_ttl_s=300,
        display_token_max_ttl_s=MAX_TTL,
    )


@pytest.fixture
async def headers(gateway: Services, client: QuartClient) -> dict[str, str]:
    """Demo loaded, plus `lucky` (every contribution of 1.00 wins its `mini` pot) shared by
    demo:brand1 and rival:main, and `second` for demo:brand2 only."""
    await load_demo(gateway)
    winning = [pot("mini", "0.5", hit_rate(1), seed="10"), pot("grand", "0.2")]
    lucky = instance(
        "lucky", pots=winning, house_share="0.3", allowed_brands=["demo:brand1", "rival:main"]
    )
    await create_instance(client, auth(gateway, PLATFORM), lucky)
    second = instance("second", allowed_brands=["demo:brand2"])
    await create_instance(client, auth(gateway, DEMO), second)
    return auth(gateway, DEMO)


async def mint(client: QuartClient, headers: dict[str, str], body: Any, status: int = 200) -> Any:
    return await expect(await post(client, MINT, body, headers), status)


# -- minting -------------------------------------------------------------------------------
async def test_a_minted_token_is_a_display_token_of_those_brands_for_the_default_lifetime(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    before = time.time()
    minted = await mint(client, headers, {"brands": ["brand1", "demo:brand2", "brand1"]})
    assert minted["brands"] == ["demo:brand1", "demo:brand2"]  # qualified, once each
    assert minted["expires_in"] == gateway.settings.display_token_ttl_s
    principal, expires = gateway.tokens.verify_until(minted["token"])
    assert principal.roles == ("display",) and principal.is_display
    assert principal.brands == ("demo:brand1", "demo:brand2")
    assert (principal.username, principal.operator_id) == ("demo-service", "demo")
    assert int(before) + minted["expires_in"] <= expires <= int(time.time()) + minted["expires_in"]
    assert minted["expires_at"] == expires * 1000
    # The first brand's currency view, exact, as GET /currencies/{brand} shows it.
    view = await expect(await client.get("/currencies/demo:brand1", headers=headers), 200)
    currencies = minted["currencies"]
    assert currencies["base_currency"] == view["base_currency"]
    assert {c: Decimal(m) for c, m in currencies["multipliers"].items()} == {
        c: Decimal(str(m)) for c, m in view["multipliers"].items()
    }
    assert all(isinstance(m, str) for m in currencies["multipliers"].values())
    assert currencies["decimals"]["JPY"] == 0 and currencies["decimals"]["EUR"] == 2


@pytest.mark.parametrize("ttl", [10, 77, MAX_TTL])
async def test_the_lifetime_asked_for_is_kept_up_to_the_maximum(
    client: QuartClient, gateway: Services, headers: dict[str, str], ttl: int
) -> None:
    minted = await mint(client, headers, {"brands": ["brand1"], "ttl_seconds": ttl})
    assert minted["expires_in"] == ttl
    _, expires = gateway.tokens.verify_until(minted["token"])
    assert abs(expires - (time.time() + ttl)) <= 2


async def test_a_lifetime_above_the_maximum_is_422(
    client: QuartClient, headers: dict[str, str]
) -> None:
    refused = await mint(client, headers, {"brands": ["brand1"], "ttl_seconds": MAX_TTL + 1}, 422)
    assert refused["code"] == "DISPLAY_TTL_TOO_LONG"
    assert refused["details"] == {"ttl_seconds": MAX_TTL}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"brands": ["rival:main"]}, 403, "OPERATOR_FORBIDDEN"),
        ({"brands": ["brand1", "rival:main"]}, 403, "OPERATOR_FORBIDDEN"),
        ({"brands": ["demo:nope"]}, 404, "BRAND_NOT_FOUND"),
        ({"brands": ["nope"]}, 404, "BRAND_NOT_FOUND"),
        ({"brands": []}, 400, "VALIDATION_ERROR"),
        ({}, 400, "VALIDATION_ERROR"),
        ({"brands": "brand1"}, 400, "VALIDATION_ERROR"),
        ({"brands": ["demo:brand1:x"]}, 400, "VALIDATION_ERROR"),
        ({"brands": ["a b"]}, 400, "VALIDATION_ERROR"),
        ({"brands": [f"b{i}" for i in range(51)]}, 400, "VALIDATION_ERROR"),
        ({"brands": ["brand1"], "ttl_seconds": 9}, 400, "VALIDATION_ERROR"),
        ({"brands": ["brand1"], "ttl_seconds": 0}, 400, "VALIDATION_ERROR"),
        ({"brands": ["brand1"], "ttl_seconds": -5}, 400, "VALIDATION_ERROR"),
        ({"brands": ["brand1"], "ttl_seconds": "600"}, 400, "VALIDATION_ERROR"),
        ({"brands": ["brand1"], "ttl_seconds": 60.5}, 400, "VALIDATION_ERROR"),
        ({"brands": ["brand1"], "ttl_seconds": True}, 400, "VALIDATION_ERROR"),
        ({"brands": ["brand1"], "ttl_seconds": 10**30}, 400, "VALIDATION_ERROR"),
        ({"brands": ["brand1"], "roles": ["admin"]}, 400, "VALIDATION_ERROR"),
        ([], 400, "VALIDATION_ERROR"),
    ],
)
async def test_bad_requests_are_refused_with_a_stable_code(
    client: QuartClient, headers: dict[str, str], body: Any, status: int, code: str
) -> None:
    assert (await mint(client, headers, body, status))["code"] == code


async def test_minting_needs_a_service_token(client: QuartClient, headers: dict[str, str]) -> None:
    response = await client.post(MINT, json={"brands": ["brand1"]})
    await expect(response, 401, "MISSING_TOKEN")
    display = (await mint(client, headers, {"brands": ["brand1"]}))["token"]
    response = await post(client, MINT, {"brands": ["brand1"]}, bearer(display))
    await expect(response, 403, "DISPLAY_TOKEN_FORBIDDEN")  # a display cannot mint another


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_display_token_reads_nothing_over_http(
    client: QuartClient, headers: dict[str, str]
) -> None:
    """The route table is walked in tests/test_route_scopes.py; here the reads a lobby
    screen would be tempted to make, and a contribution."""
    token = (await mint(client, headers, {"brands": ["brand1"]}))["token"]
    for path in (
        "/currencies/demo:brand1",
        "/jackpots/instances/lucky/winners",
        "/jackpots/sources?owner_id=demo:brand1",
        "/admin/instances",
    ):
        response = await client.get(path, headers=bearer(token))
        await expect(response, 403, "DISPLAY_TOKEN_FORBIDDEN")
    response = await post(
        client, "/jackpots/contribute", contribution("lucky", "p1"), bearer(token)
    )
    await expect(response, 403, "DISPLAY_TOKEN_FORBIDDEN")


# -- the token itself --------------------------------------------------------------------
def forged(gateway: Services, **claims: Any) -> str:
    """A token signed with the server's key (as a bug or a leaked key might make one)."""
    now = int(time.time())
    base = {"iss": gateway.settings.jwt_issuer, "sub": "x", "op": "demo", "iat": now}
    return jwt.encode(
        {"alg": "HS256"},
        {**base, "exp": now + 60, **claims},
        OctKey.import_key(SECRET),
        algorithms=["HS256"],
    )


@pytest.mark.parametrize(
    "claims",
    [
        {"roles": ["display", "admin"], "brands": ["demo:brand1"]},
        {"roles": ["display"]},
        {"roles": ["display"], "brands": []},
        {"roles": ["display"], "brands": "demo:brand1"},
        {"roles": ["display"], "brands": [1]},
        {"roles": ["operator"], "brands": ["demo:brand1"]},
    ],
)
async def test_a_token_mixing_display_and_other_roles_or_without_brands_is_invalid(
    gateway: Services, claims: dict[str, Any]
) -> None:
    with pytest.raises(TokenError) as error:
        gateway.tokens.verify(forged(gateway, **claims))
    assert error.value.code == "INVALID_TOKEN"


# -- on the event stream ---------------------------------------------------------------------
async def test_a_display_sees_only_its_brands_instances_and_every_player_masked(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    token = (await mint(client, headers, {"brands": ["brand1"]}))["token"]
    async with client.websocket("/events") as ws:
        await ws.send(authenticate(token))
        first = await receive(ws)
        assert first["event_type"] == "Authenticated"
        # brand1's instances: not `second` (brand2 only), though its operator sees it
        assert first["data"]["instance_ids"] == ["daily-drop", "lucky", "weekly-raffle"]
        snapshot = {}
        for _ in range(3):
            update = await receive(ws)
            snapshot[update["data"]["id"]] = update["data"]
        assert set(snapshot) == {"daily-drop", "lucky", "weekly-raffle"}
        assert snapshot["daily-drop"]["name"] == "Daily Drop"
        assert [p["name"] for p in snapshot["daily-drop"]["pots"]] == ["Mini", "Minor", "Major"]
        body = {**contribution("lucky", "own-player"), "event_metadata": {"note": "private"}}
        await expect(await post(client, "/jackpots/contribute", body, headers), 200)
        won = (await receive_until(ws, "JackpotWinEvent"))["data"]
        # its own operator's player, masked all the same: a lobby screen is public
        assert won["player_id"] == MASKED_PLAYER and won["metadata"] is None
        assert won["brand_id"] == "demo:brand1" and Decimal(won["win_amount"]) == Decimal("10.5")
        body = contribution("second", "p2", brand_id="demo:brand2")
        await expect(await post(client, "/jackpots/contribute", body, headers), 200)
        await expect(await post(client, "/jackpots/contribute", body, headers), 200)
        await expect(
            await post(client, "/jackpots/contribute", contribution("lucky", "p3"), headers), 200
        )
        again = (await receive_until(ws, "JackpotWinEvent"))["data"]
        assert again["instance_id"] == "lucky"  # nothing of `second` came in between


@pytest.mark.parametrize("event_type", sorted(SAMPLES))
def test_every_catalogue_type_reaches_a_display_with_no_player_of_any_operator(
    event_type: EventType,
) -> None:
    event = message(event_type)
    for operator_id in ("demo", "rival"):
        viewer = Principal("x", operator_id, ("display",), brands=(f"{operator_id}:main",)).viewer
        shown = event.text_for(viewer)
        assert "secret" not in shown and "rival-player" not in shown, shown


async def test_an_expired_display_token_is_closed_4401(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    principal = gateway.tokens.verify(
        (await mint(client, headers, {"brands": ["brand1"]}))["token"]
    )
    expired = gateway.tokens.issue(principal, now=time.time() - 120, ttl_s=60)
    async with client.websocket("/events") as ws:
        await ws.send(authenticate(expired))
        assert await close_code(ws) == 4401
    expiring = gateway.tokens.issue(principal, ttl_s=1)
    async with client.websocket("/events") as ws:
        await ws.send(authenticate(expiring))
        assert (await receive(ws))["event_type"] == "Authenticated"
        started = time.monotonic()
        assert await close_code(ws, within=5) == 4401
    assert time.monotonic() - started < 3


@pytest.mark.usefixtures("cheap_passwords")
async def test_deleting_the_minting_account_closes_its_displays_4401(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    account = {"username": "lobby", "password": "lobby-password-12", "operator_id": "demo"}
    await expect(await client.post("/admin/accounts", json=account, headers=headers), 201)
    login = {"username": "lobby", "password": "lobby-password-12"}
    service = (await expect(await post(client, "/authenticate/service", login, {}), 200))["token"]
    token = (await mint(client, bearer(service), {"brands": ["brand1"]}))["token"]
    async with client.websocket("/events") as ws:
        await ws.send(authenticate(token))
        assert (await receive(ws))["event_type"] == "Authenticated"
        await expect(await client.delete("/admin/accounts/lobby", headers=headers), 204)
        assert await close_code(ws, within=3) == 4401
    async with client.websocket("/events") as ws:
        await ws.send(authenticate(token))
        assert await close_code(ws) == 4401


def test_a_revocation_outlives_the_longest_display_token() -> None:
    settings = make_settings("memory://x", token_ttl_s=600, display_token_max_ttl_s=7200)
    services = Services.create(settings)
    assert services.admin._token_ttl_ms == 7200 * 1000


# -- settings and the CLI ------------------------------------------------------------------
ENV = {"JWT_SECRET": SECRET, "DRAW_KEY": "d" * 40}


def test_display_settings_default_and_bounds() -> None:
    settings = Settings.from_env(ENV)
    assert (settings.display_token_ttl_s, settings.display_token_max_ttl_s) == (900, 3600)
    custom = Settings.from_env(
        {**ENV, "DISPLAY_TOKEN_TTL_SECONDS": "60", "DISPLAY_TOKEN_MAX_TTL_SECONDS": "600"}
    )
    assert (custom.display_token_ttl_s, custom.display_token_max_ttl_s) == (60, 600)
    for bad in (
        {"DISPLAY_TOKEN_TTL_SECONDS": "5"},
        {"DISPLAY_TOKEN_TTL_SECONDS": "4000"},  # above the default maximum
        {"DISPLAY_TOKEN_MAX_TTL_SECONDS": "86401"},
        {"DISPLAY_TOKEN_MAX_TTL_SECONDS": "soon"},
    ):
        with pytest.raises(ConfigError, match="DISPLAY_TOKEN"):
            Settings.from_env({**ENV, **bad})


@pytest.mark.usefixtures("cheap_passwords")
async def test_the_cli_mints_a_display_token_for_an_account(
    cli: CLI, gateway: Services, headers: dict[str, str]
) -> None:
    await gateway.admin.create_account("lobby", "lobby-password-12", "demo", ["operator"])
    code, out, err = await cli("mint-display-token", "--account", "lobby", "--brand", "brand2")
    assert code == 0, err
    minted = json.loads(out)
    assert minted["brands"] == ["demo:brand2"] and minted["expires_in"] == 900
    principal = gateway.tokens.verify(minted["token"])
    assert (principal.username, principal.roles, principal.brands) == (
        "lobby",
        ("display",),
        ("demo:brand2",),
    )
    code, out, err = await cli("mint-display-token", "--account", "lobby", "--brand", "rival:main")
    assert (code, out) == (1, "") and "operator 'rival'" in err
    code, _, err = await cli("mint-display-token", "--account", "ghost", "--brand", "brand1")
    assert code == 1 and "ghost" in err
    code, _, err = await cli(
        "mint-display-token", "--account", "lobby", "--brand", "brand1", "--ttl-seconds", "3"
    )
    assert code == 1 and "--ttl-seconds" in err
    code, _, err = await cli(
        "mint-display-token", "--account", "lobby", "--brand", "brand1", "--ttl-seconds", "9000"
    )
    assert code == 1 and "at most 3600" in err
