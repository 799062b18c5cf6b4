"""Service login (POST /authenticate/service), throttling and token checks on every request."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey
from quart import Quart
from quart.testing import QuartClient

from app import create_app
from app.cli import read_definitions
from app.core import jsonio
from app.core.security import Principal, TokenIssuer
from app.services import Services
from tests.conftest import DEMO_FILE, DEMO_PASSWORDS, SECRET, login, make_settings
from tests.support.http import v1_body

_DEMO = read_definitions(DEMO_FILE)  # parsed once: YAML parsing costs ~50 ms


def demo_without_accounts() -> dict[str, Any]:
    """The demo definitions without their accounts (argon2 hashing is slow)."""
    return {**copy.deepcopy(_DEMO), "accounts": []}


DEMO_PASSWORD = DEMO_PASSWORDS["DEMO_SERVICE_PASSWORD"]
DEMO = Principal("demo-service", "demo", ("admin", "operator"))
PROTECTED = "/currencies/brand1"
# Checked before the store is touched (or not backend-specific): one backend is enough.
FAKE_ONLY = pytest.mark.parametrize("redis_url", ["fake"], indirect=True)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def attempt(
    client: QuartClient, username: str, password: str, address: str = "192.0.2.1"
) -> Any:
    return await client.post(
        "/authenticate/service",
        json={"username": username, "password": password},
        scope_base={"client": (address, 40000)},
    )


async def error_of(response: Any) -> dict[str, Any]:
    body = await response.get_json()
    assert set(body) == {"error", "code", "details"}, body
    return dict(body)


@pytest.fixture
async def demo_config(gateway: Services) -> None:
    """The demo definitions without their accounts (argon2 hashing is slow)."""
    await gateway.admin.apply(demo_without_accounts(), DEMO_PASSWORDS.get)


def with_accounts(*usernames: str) -> dict[str, Any]:
    """The demo definitions with only the named accounts (each costs an argon2 hash)."""
    data = copy.deepcopy(_DEMO)
    data["accounts"] = [a for a in data["accounts"] if a["username"] in usernames]
    return dict(data)


@pytest.fixture
async def demo(gateway: Services) -> None:
    """Overrides conftest's `demo`: only the demo-service account."""
    await gateway.admin.apply(with_accounts("demo-service"), DEMO_PASSWORDS.get)


# -- login ---------------------------------------------------------------------------
async def test_login_gives_a_token_the_api_accepts(client: QuartClient, demo: None) -> None:
    response = await attempt(client, "demo-service", DEMO_PASSWORD)
    assert response.status_code == 200
    body = await response.get_json()
    assert list(body) == ["token"]
    answer = await client.get(PROTECTED, headers=bearer(body["token"]))
    assert answer.status_code == 200
    assert (await answer.get_json())["brand_id"] == "brand1"


async def test_token_carries_the_account_claims(
    client: QuartClient, gateway: Services, demo: None
) -> None:
    token = await login(client, "demo-service", DEMO_PASSWORD)
    assert gateway.tokens.verify(token) == DEMO
    claims = jwt.decode(token, OctKey.import_key(SECRET), algorithms=["HS256"]).claims
    assert claims["iss"] == "jackpot-gateway"
    assert claims["exp"] - claims["iat"] == 1800


async def test_wrong_password_and_unknown_user_answer_the_same(
    client: QuartClient, demo: None
) -> None:
    wrong = await attempt(client, "demo-service", "not-the-password")
    unknown = await attempt(client, "nobody", DEMO_PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.headers["WWW-Authenticate"] == "Bearer"
    wrong_body, unknown_body = await error_of(wrong), await error_of(unknown)
    assert wrong_body["code"] == unknown_body["code"] == "INVALID_CREDENTIALS"
    assert wrong_body == unknown_body
    assert "token" not in wrong_body


@FAKE_ONLY
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "demo-service"}, "password"),
        ({"password": DEMO_PASSWORD}, "username"),
        ({"username": "", "password": DEMO_PASSWORD}, "username"),
        ({"username": "demo-service", "password": 12345678}, "password"),
        ({"username": "demo-service", "password": DEMO_PASSWORD, "role": "admin"}, "role"),
        ([], "_schema"),
    ],
)
async def test_login_body_validation(client: QuartClient, body: Any, field: str) -> None:
    response = await client.post("/authenticate/service", json=body)
    assert response.status_code == 400
    error = await error_of(response)
    assert error["code"] == "VALIDATION_ERROR"
    assert field in error["details"], error


@FAKE_ONLY
async def test_login_with_a_non_json_body(client: QuartClient) -> None:
    response = await client.post(
        "/authenticate/service", data="username=x&password=y", headers={"Content-Type": "text"}
    )
    assert response.status_code == 400
    assert (await error_of(response))["code"] == "MALFORMED_JSON"


# -- throttling ------------------------------------------------------------------------
async def throttled_app(
    redis_url: str, window_s: int, *accounts: str, **overrides: Any
) -> AsyncIterator[Quart]:
    """An app that throttles a username after 3 failed logins inside `window_s`."""
    settings = make_settings(redis_url, login_max_failures=3, login_window_s=window_s, **overrides)
    application = create_app(settings)
    async with application.test_app():
        gateway: Services = application.extensions["gateway"]
        await gateway.admin.apply(with_accounts(*accounts), DEMO_PASSWORDS.get)
        yield application


@pytest.fixture
async def strict_app(redis_url: str) -> AsyncIterator[Quart]:
    """A 60-second window: the failures of a test (argon2 on a busy machine) fit in it."""
    async for application in throttled_app(redis_url, 60, "demo-service"):
        yield application


@pytest.fixture
async def short_window_app(redis_url: str) -> AsyncIterator[Quart]:
    async for application in throttled_app(redis_url, 1, "demo-service"):
        yield application


async def test_failures_are_throttled_even_with_the_right_password(strict_app: Quart) -> None:
    client = strict_app.test_client()
    for _ in range(3):
        assert (await attempt(client, "demo-service", "wrong-password")).status_code == 401
    throttled = await attempt(client, "demo-service", DEMO_PASSWORD)
    assert throttled.status_code == 429
    retry_after = int(throttled.headers["Retry-After"])
    assert 50 <= retry_after <= 60  # the rest of the 60-second window, in whole seconds
    error = await error_of(throttled)
    assert error["code"] == "TOO_MANY_LOGIN_ATTEMPTS"
    assert error["details"] == {"retry_after": retry_after}
    # The throttle is per username: another username is not throttled.
    other = await attempt(client, "someone-else", "wrong-password")
    assert other.status_code == 401
    assert (await error_of(other))["code"] == "INVALID_CREDENTIALS"


async def test_a_guesser_cannot_lock_out_the_service(strict_app: Quart) -> None:
    """Failures count per client address and username: the service, logging in from its own
    address, is not throttled by someone else's wrong passwords."""
    client = strict_app.test_client()
    for _ in range(3):
        assert (await attempt(client, "demo-service", "guess", "203.0.113.9")).status_code == 401
    assert (await attempt(client, "demo-service", "guess", "203.0.113.9")).status_code == 429
    assert (await attempt(client, "demo-service", DEMO_PASSWORD, "192.0.2.1")).status_code == 200
    # The guesser stays throttled, whatever password it tries now.
    assert (await attempt(client, "demo-service", DEMO_PASSWORD, "203.0.113.9")).status_code == 429


async def test_the_throttle_ends_with_its_window(short_window_app: Quart) -> None:
    client = short_window_app.test_client()
    for _ in range(3):
        assert (await attempt(client, "demo-service", "wrong-password")).status_code == 401
    # The 1-second window opened at the first failure; it is surely over after this sleep.
    await asyncio.sleep(1.2)
    assert (await attempt(client, "demo-service", DEMO_PASSWORD)).status_code == 200


async def test_unknown_usernames_are_throttled_too(strict_app: Quart) -> None:
    client = strict_app.test_client()
    codes = [(await attempt(client, "ghost", "whatever")).status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]


async def test_a_success_clears_the_failure_count(strict_app: Quart) -> None:
    client = strict_app.test_client()
    for _ in range(2):
        assert (await attempt(client, "demo-service", "wrong-password")).status_code == 401
    assert (await attempt(client, "demo-service", DEMO_PASSWORD)).status_code == 200
    for _ in range(2):
        assert (await attempt(client, "demo-service", "wrong-password")).status_code == 401
    # Four failures in the window in all, but only two since the success.
    assert (await attempt(client, "demo-service", DEMO_PASSWORD)).status_code == 200


async def test_concurrent_wrong_passwords_are_checked_only_up_to_the_limit(
    strict_app: Quart,
) -> None:
    """Counting and deciding are one step: 40 wrong passwords at once cannot all be checked
    against a count none of them has added to yet."""
    client = strict_app.test_client()
    responses = await asyncio.gather(
        *(attempt(client, "demo-service", f"wrong-{n}") for n in range(40))
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [401] * 3 + [429] * 37


# -- the client address behind a proxy ---------------------------------------------------
TRUSTED = "10.0.0.0/8"


@pytest.fixture
async def proxied_app(redis_url: str) -> AsyncIterator[Quart]:
    """Peers in 10.0.0.0/8 are trusted proxies (TRUSTED_PROXIES)."""
    async for application in throttled_app(
        redis_url, 60, "demo-service", trusted_proxies=(TRUSTED,)
    ):
        yield application


async def login_via(
    application: Quart, peer: str, forwarded: str | None, password: str = "wrong"
) -> int:
    """POST /authenticate/service through the whole ASGI app (the proxy middleware and the
    direct routes included) from the socket peer `peer`, with an X-Forwarded-For."""
    transport = httpx.ASGITransport(app=application, client=(peer, 40000))
    headers = {} if forwarded is None else {"X-Forwarded-For": forwarded}
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        response = await http.post(
            "/authenticate/service",
            json={"username": "demo-service", "password": password},
            headers=headers,
        )
    return response.status_code


async def test_a_forwarded_address_from_an_untrusted_peer_is_ignored(proxied_app: Quart) -> None:
    """Anyone can write X-Forwarded-For: from a peer that is not a trusted proxy it would let a
    guesser pick a fresh address for every guess."""
    peer = "192.0.2.50"
    codes = [await login_via(proxied_app, peer, f"203.0.113.{n}") for n in range(4)]
    assert codes == [401, 401, 401, 429]
    # The same guesses from a trusted proxy's clients are theirs, not the peer's.
    assert await login_via(proxied_app, "10.1.2.3", "203.0.113.200") == 401


async def test_a_forwarded_address_from_a_trusted_peer_is_the_client(proxied_app: Quart) -> None:
    proxy = "10.0.0.7"
    codes = [await login_via(proxied_app, proxy, "203.0.113.9") for _ in range(3)]
    assert codes == [401, 401, 401]
    assert await login_via(proxied_app, proxy, "203.0.113.9") == 429
    # Another client behind the same proxy is not locked out by that guesser.
    assert await login_via(proxied_app, proxy, "198.51.100.7", DEMO_PASSWORD) == 200
    # Only the proxies' own entries are trusted: the guesser's client-written entries (left
    # of the address the trusted proxy saw) change nothing, however many proxies relayed it.
    assert await login_via(proxied_app, proxy, "198.51.100.7, 203.0.113.9") == 429
    assert await login_via(proxied_app, proxy, "1.2.3.4, 203.0.113.9, 10.9.9.9") == 429
    # A dual-stack socket names an IPv4 proxy ::ffff:10.0.0.7: the same trusted proxy.
    assert await login_via(proxied_app, "::ffff:10.0.0.7", "203.0.113.9") == 429


async def test_without_trusted_proxies_the_peer_is_the_client(strict_app: Quart) -> None:
    codes = [await login_via(strict_app, "10.0.0.7", f"203.0.113.{n}") for n in range(4)]
    assert codes == [401, 401, 401, 429]


async def test_the_access_log_names_the_same_client_on_every_route(
    proxied_app: Quart, caplog: pytest.LogCaptureFixture
) -> None:
    """The Quart routes and the contribution routes answered straight from ASGI
    (app.edge.direct) see the client address the proxy middleware settled on."""
    gateway: Services = proxied_app.extensions["gateway"]
    caplog.set_level(logging.INFO, logger="jackpot_gateway.access")
    transport = httpx.ASGITransport(app=proxied_app, client=("10.0.0.7", 40000))
    forwarded = {"X-Forwarded-For": "203.0.113.9"}
    token = gateway.tokens.issue(DEMO)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        await http.get("/health", headers=forwarded)
        await http.post(
            "/jackpots/contribute",
            content=jsonio.dumps(v1_body("no-such-instance")),
            headers={**forwarded, **bearer(token), "Content-Type": "application/json"},
        )
    lines = [r for r in caplog.records if r.name == "jackpot_gateway.access"]
    assert [(r.route, r.client) for r in lines] == [  # type: ignore[attr-defined]
        ("/health", "203.0.113.9"),
        ("/jackpots/contribute", "203.0.113.9"),
    ]


# -- tokens on protected routes --------------------------------------------------------
async def test_a_valid_token_built_by_hand_is_accepted(
    client: QuartClient, demo_config: None
) -> None:
    """The control for the invalid tokens below: only the one change makes them fail."""
    response = await client.get(PROTECTED, headers=bearer(_signed(_claims())))
    assert response.status_code == 200


async def test_expired_token(client: QuartClient, gateway: Services) -> None:
    token = gateway.tokens.issue(DEMO, now=time.time() - 3600)
    response = await client.get(PROTECTED, headers=bearer(token))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert (await error_of(response))["code"] == "TOKEN_EXPIRED"


@FAKE_ONLY
async def test_expiry_is_checked_against_the_current_clock(
    gateway: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long-lived process must not freeze "now" when it builds its validator."""
    token = gateway.tokens.issue(DEMO)
    assert gateway.tokens.verify(token) == DEMO
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 1800 + 10)
    with pytest.raises(Exception) as caught:
        gateway.tokens.verify(token)
    assert getattr(caught.value, "code", None) == "TOKEN_EXPIRED"


@FAKE_ONLY
@pytest.mark.parametrize(
    "issuer",
    [
        TokenIssuer("another-secret-that-is-long-enough-0123456789", "jackpot-gateway", 1800),
        TokenIssuer(SECRET, "someone-else", 1800),
    ],
    ids=["other-secret", "other-issuer"],
)
async def test_token_from_another_secret_or_issuer_is_invalid(
    client: QuartClient, issuer: TokenIssuer
) -> None:
    response = await client.get(PROTECTED, headers=bearer(issuer.issue(DEMO)))
    assert response.status_code == 401
    assert (await error_of(response))["code"] == "INVALID_TOKEN"


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _signed(claims: dict[str, Any]) -> str:
    return jwt.encode({"alg": "HS256"}, claims, OctKey.import_key(SECRET), algorithms=["HS256"])


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": "jackpot-gateway",
        "sub": "demo-service",
        "op": "demo",
        "roles": ["operator", "admin"],
        "iat": now,
        "exp": now + 600,
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


# Each token is built when its test runs (built at collection, a 10-minute expiry ran out
# before a long run reached them).
INVALID_TOKENS: dict[str, Callable[[], str]] = {
    "garbage": lambda: "not-a-jwt",
    "three-parts": lambda: "a.b.c",
    "alg-none": lambda: _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(_claims()) + ".",
    "no-op": lambda: _signed(_claims(op=None)),
    "no-sub": lambda: _signed(_claims(sub=None)),
    "no-exp": lambda: _signed(_claims(exp=None)),
    "roles-not-a-list": lambda: _signed(_claims(roles="admin")),
    "issued-in-the-future": lambda: _signed(_claims(iat=int(time.time()) + 3600)),
}


@FAKE_ONLY
@pytest.mark.parametrize("kind", list(INVALID_TOKENS))
async def test_invalid_tokens(client: QuartClient, kind: str) -> None:
    response = await client.get(PROTECTED, headers=bearer(INVALID_TOKENS[kind]()))
    assert response.status_code == 401
    assert (await error_of(response))["code"] == "INVALID_TOKEN"


@FAKE_ONLY
@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer    ", "Basic ZGVtbzpwYXNz", "Token abc"],
    ids=["absent", "empty", "scheme-only", "blank-token", "basic", "other-scheme"],
)
async def test_missing_token(client: QuartClient, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = await client.get(PROTECTED, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert (await error_of(response))["code"] == "MISSING_TOKEN"


@FAKE_ONLY
async def test_bearer_scheme_is_case_insensitive(
    client: QuartClient, gateway: Services, demo_config: None
) -> None:
    token = gateway.tokens.issue(DEMO)
    response = await client.get(PROTECTED, headers={"Authorization": f"bearer {token}"})
    assert response.status_code == 200
