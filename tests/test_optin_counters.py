"""Opt-in counters exist only where they are shown: a contribution counts in the player's
opt-in record (the optin_status and OptInEvent contribution_count), and a player without one
(where opt-in is not required) leaves no field; the records end OPTIN_RETENTION_DAYS after
the instance's termination (the scheduler's purge_optins item, lua/purge_optins-2.lua)."""

from __future__ import annotations

from typing import Any

import pytest
from quart.testing import QuartClient

from app.core.clock import DAY_MS, now_ms
from app.services import Services, lifecycle
from app.services.admin import accounts as admin_accounts
from app.services.admin import instances as admin_instances
from app.store import keys
from tests.support.definitions import instance
from tests.support.http import contribution, create_instance, expect, post


class Clock:
    def __init__(self) -> None:
        self.now = now_ms()

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    for module in (admin_accounts, admin_instances, lifecycle):
        monkeypatch.setattr(module, "now_ms", fake)
    return fake


async def contribute(client: QuartClient, headers: dict[str, str], body: dict[str, Any]) -> Any:
    return await expect(await post(client, "/jackpots/contribute", body, headers), 200)


async def post_optin(client: QuartClient, headers: dict[str, str], body: dict[str, Any]) -> Any:
    return await expect(await post(client, "/jackpots/optin", body, headers), 200)


def optin(instance_id: str, player_id: str, opt_in: bool = True) -> dict[str, Any]:
    return {
        "instance_id": instance_id,
        "player_id": player_id,
        "brand_id": "demo:brand1",
        "player_country": "DE",
        "opt_in": opt_in,
    }


async def test_players_without_an_opt_in_record_leave_no_counter(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    await create_instance(client, headers, instance("open"))
    for player in ("p1", "p2", "p3", "p1"):
        await contribute(client, headers, contribution("open", player))
    assert await gateway.store.client.exists(keys.instance_optins("open")) == 0
    # a player who opts in (even where it is not required) is counted from then on
    await post_optin(client, headers, optin("open", "p2"))
    for _ in range(2):
        await contribute(client, headers, contribution("open", "p2"))
    record = await gateway.store.optin("open", "demo", "brand1", "p2")
    assert record is not None and record.contribution_count == 2
    fields = await gateway.store.client.hkeys(keys.instance_optins("open"))
    assert all(field.startswith("demo:brand1:p2|") for field in fields)
    # and keeps counting after leaving (the record stays)
    await post_optin(client, headers, optin("open", "p2", False))
    await contribute(client, headers, contribution("open", "p2"))
    record = await gateway.store.optin("open", "demo", "brand1", "p2")
    assert record is not None and record.contribution_count == 3


async def test_the_records_end_after_the_termination(
    client: QuartClient,
    gateway: Services,
    headers: dict[str, str],
    clock: Clock,
) -> None:
    retention = gateway.settings.optin_retention_days * DAY_MS
    await create_instance(client, headers, instance("club", opt_in_required=True))
    for player in ("p1", "p2"):
        await post_optin(client, headers, optin("club", player))
        await contribute(client, headers, contribution("club", player))
    await expect(await post(client, "/admin/instances/club/terminate", {}, headers), 200)
    optins = keys.instance_optins("club")
    # within the retention a player still leaves with their record
    clock.now += retention - 1
    assert ("purge_optins", "club") not in await gateway.lifecycle.run_due()
    left = await post_optin(client, headers, optin("club", "p1", False))
    assert (left["opted_in"], left["contribution_count"]) == (False, 1)
    assert await gateway.store.client.hlen(optins) > 0
    clock.now += 1
    assert ("purge_optins", "club") in await gateway.lifecycle.run_due()
    assert await gateway.store.client.exists(optins) == 0
    # leaving afterwards answers and writes nothing; nothing is due any more
    left = await post_optin(client, headers, optin("club", "p2", False))
    assert (left["opted_in"], left["contribution_count"]) == (False, 0)
    assert await gateway.store.client.exists(optins) == 0
    assert await gateway.lifecycle.run_due() == []
    # a second run is harmless
    assert await gateway.admin.purge_optins("club") is False
