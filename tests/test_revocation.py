"""Deleting an account or changing its roles revokes the tokens already issued to it: in the
process that made the change at once, in every other process within the configuration refresh
interval, and without a Redis round trip of its own on the contribution path."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from quart import Quart
from quart.testing import QuartClient

from app import create_app
from app.core.security import Principal
from app.services import Services
from app.store.pipe import CommandPipe
from tests.conftest import CLI, auth, load_demo, make_settings
from tests.support.definitions import instance
from tests.support.http import create_instance, expect, post, v1_body

OPS = Principal("ops", "demo", ("admin", "operator"))
ADMIN_ROUTE = "/admin/accounts"
OPERATOR_ROUTE = "/currencies/brand1"
ACCOUNT = {"username": "ops", "password": "a-long-enough-password", "operator_id": "demo"}


@pytest.fixture
async def demo(gateway: Services, cheap_passwords: None) -> None:
    """Demo definitions and the `ops` account (admin + operator)."""
    await load_demo(gateway)
    await gateway.admin.create_account("ops", ACCOUNT["password"], "demo", ["admin", "operator"])


async def login(client: QuartClient) -> dict[str, str]:
    body = {"username": "ops", "password": ACCOUNT["password"]}
    token = (await expect(await post(client, "/authenticate/service", body, {}), 200))["token"]
    return {"Authorization": f"Bearer {token}"}


async def test_deleting_an_account_revokes_its_tokens(
    client: QuartClient, gateway: Services, demo: None
) -> None:
    ops = await login(client)
    other_admin = auth(gateway, Principal("demo-service", "demo", ("admin",)))
    await expect(await client.get(ADMIN_ROUTE, headers=ops), 200)
    await expect(await client.delete("/admin/accounts/ops", headers=other_admin), 204)
    response = await client.get(OPERATOR_ROUTE, headers=ops)
    await expect(response, 401, "TOKEN_REVOKED")
    assert response.headers["WWW-Authenticate"] == "Bearer"
    # Another account's tokens are untouched.
    await expect(await client.get(ADMIN_ROUTE, headers=other_admin), 200)
    # Re-created, the account logs in again and its new token works.
    await expect(await post(client, ADMIN_ROUTE, ACCOUNT, other_admin), 201)
    await asyncio.sleep(0.002)  # a token issued in the very millisecond would count as old
    await expect(await client.get(OPERATOR_ROUTE, headers=await login(client)), 200)


async def test_changing_roles_revokes_the_tokens_and_new_ones_carry_the_new_roles(
    client: QuartClient, demo: None
) -> None:
    ops = await login(client)
    response = await client.patch("/admin/accounts/ops", json={"roles": ["operator"]}, headers=ops)
    assert await expect(response, 200) == {
        "username": "ops",
        "operator_id": "demo",
        "roles": ["operator"],
    }
    await expect(await client.get(OPERATOR_ROUTE, headers=ops), 401, "TOKEN_REVOKED")
    await asyncio.sleep(0.002)
    fresh = await login(client)
    await expect(await client.get(OPERATOR_ROUTE, headers=fresh), 200)
    await expect(await client.get(ADMIN_ROUTE, headers=fresh), 403, "ADMIN_REQUIRED")


async def test_setting_the_same_roles_revokes_nothing(client: QuartClient, demo: None) -> None:
    ops = await login(client)
    roles = {"roles": ["operator", "admin", "admin"]}
    response = await client.patch("/admin/accounts/ops", json=roles, headers=ops)
    assert (await expect(response, 200))["roles"] == ["admin", "operator"]
    await expect(await client.get(ADMIN_ROUTE, headers=ops), 200)


@pytest.mark.parametrize("redis_url", ["fake"], indirect=True)
@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "roles"), ({"roles": []}, "roles"), ({"roles": ["root"]}, "roles"), ({"x": 1}, "x")],
)
async def test_role_change_validation(
    client: QuartClient, gateway: Services, demo: None, body: Any, field: str
) -> None:
    response = await client.patch("/admin/accounts/ops", json=body, headers=auth(gateway, OPS))
    assert field in (await expect(response, 400, "VALIDATION_ERROR"))["details"]


@pytest.mark.parametrize("redis_url", ["fake"], indirect=True)
async def test_role_change_of_an_unknown_account(
    client: QuartClient, gateway: Services, demo: None
) -> None:
    roles = {"roles": ["operator"]}
    response = await client.patch("/admin/accounts/nobody", json=roles, headers=auth(gateway, OPS))
    await expect(response, 404, "ACCOUNT_NOT_FOUND")


# -- another process ----------------------------------------------------------------------
@pytest.fixture
async def second_app(redis_url: str) -> AsyncIterator[Quart]:
    """Another web process on the same Redis, refreshing its configuration every 0.2 s."""
    application = create_app(make_settings(redis_url, config_refresh_s=0.2))
    async with application.test_app():
        yield application


async def test_another_process_stops_accepting_the_token_within_the_refresh_interval(
    client: QuartClient, gateway: Services, demo: None, second_app: Quart
) -> None:
    other = second_app.test_client()
    ops = await login(client)
    await expect(await other.get(ADMIN_ROUTE, headers=ops), 200)  # cached there now
    await gateway.admin.delete_account("ops")
    deleted_at = asyncio.get_running_loop().time()
    while (await other.get(ADMIN_ROUTE, headers=ops)).status_code == 200:
        assert asyncio.get_running_loop().time() - deleted_at < 0.2 + 0.3, "still accepted"
        await asyncio.sleep(0.02)
    await expect(await other.get(ADMIN_ROUTE, headers=ops), 401, "TOKEN_REVOKED")


# -- the contribution path ------------------------------------------------------------------
@pytest.mark.real_redis
@pytest.mark.parametrize("redis_url", ["real"], indirect=True)
async def test_a_contribution_still_costs_one_redis_command(
    redis_url: str, gateway: Services, cheap_passwords: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Revocations travel in the cached configuration: with revocations on record, N
    contributions send N commands (the script), not one more per request."""
    application = create_app(make_settings(redis_url, config_refresh_s=60))
    async with application.test_app():
        client = application.test_client()
        services: Services = application.extensions["gateway"]
        await load_demo(services)
        await services.admin.create_account("ops", ACCOUNT["password"], "demo", ["operator"])
        await services.admin.delete_account("ops")  # a revocation is on record
        headers = auth(services, Principal("demo-service", "demo", ("admin", "operator")))
        await create_instance(client, headers, instance("open"))
        body = v1_body("open")
        await expect(await post(client, "/jackpots/contribute", body, headers), 200)  # warm
        sent: list[str] = []
        client_ = services.store.client
        real_execute = client_.execute_command

        async def counting(*args: Any, **options: Any) -> Any:
            sent.append(str(args[0]))
            return await real_execute(*args, **options)

        client_.execute_command = counting
        real_call = CommandPipe.call  # scripts on a real Redis go through the multiplexed pipe

        async def counting_pipe(pipe: CommandPipe, packed: bytes) -> Any:
            sent.append(packed.split(b"\r\n")[2].decode())  # RESP: *N, $len, name
            return await real_call(pipe, packed)

        monkeypatch.setattr(CommandPipe, "call", counting_pipe)
        client_.pipeline = lambda *a, **k: pytest.fail("a pipeline on the contribution path")
        for _ in range(20):
            await expect(await post(client, "/jackpots/contribute", body, headers), 200)
    assert sent == ["EVALSHA"] * 20


# -- CLI ------------------------------------------------------------------------------------
async def test_cli_deletes_an_account_and_changes_roles(
    client: QuartClient, gateway: Services, demo: None, cli: CLI
) -> None:
    ops = await login(client)
    result = await cli("set-roles", "--username", "ops", "--role", "operator")
    assert result == (0, "ops: operator; older tokens are revoked\n", "")
    gateway.config.invalidate()  # the CLI is another process: this one would wait a refresh
    await expect(await client.get(OPERATOR_ROUTE, headers=ops), 401, "TOKEN_REVOKED")
    result = await cli("delete-account", "--username", "ops")
    assert result == (0, "deleted ops; its tokens are revoked\n", "")
    result = await cli("delete-account", "--username", "ops")
    assert result == (1, "", "error: Account ops does not exist.\n")
