"""Scheduled lifecycle work: activation, termination, exactly-once claims and leases."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest
from quart.testing import QuartClient

from app.cli import read_definitions
from app.core.clock import now_ms
from app.core.security import Principal
from app.services import Services, lifecycle
from app.store import Store
from tests.conftest import DEMO_FILE

ADMIN = Principal("demo-service", "demo", ("admin", "operator"))
_DEMO = read_definitions(DEMO_FILE)
HOUR_MS = 3_600_000


@pytest.fixture
async def config(gateway: Services) -> None:
    await gateway.admin.apply({**copy.deepcopy(_DEMO), "accounts": []}, lambda name: None)


@pytest.fixture
def admin(gateway: Services) -> dict[str, str]:
    return {"Authorization": f"Bearer {gateway.tokens.issue(ADMIN)}"}


@pytest.fixture
async def second(gateway: Services) -> AsyncIterator[Services]:
    """Another process's services on the same store (a second scheduler by mistake)."""
    other = Services.create(gateway.settings)
    yield other
    await other.close()


async def scheduled(store: Store) -> list[tuple[str, int]]:
    """The due items, less the demo weekly raffle's next draw (a week away) and the end of a
    terminated instance's opt-in records (OPTIN_RETENTION_DAYS later; test_optin_counters)."""
    return [
        item
        for item in await store.scheduled()
        if "weekly-raffle" not in item[0] and not item[0].startswith("purge_optins|")
    ]


def definition(instance_id: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": instance_id,
        "name": instance_id,
        "currency": "EUR",
        "contribution_type": {"Fixed": "0.10"},
        "allowed_brands": ["demo:brand1"],
        "house_share": "0.5",
        "pots": [
            {
                "id": "pot",
                "name": "Pot",
                "share": "0.5",
                "seed": "5",
                "trigger": {"HitRate": {"max_magic_number": 100, "cost_per_attempt": "1"}},
            }
        ],
    }
    body.update(changes)
    return body


async def create(client: QuartClient, headers: dict[str, str], **changes: Any) -> str:
    body = definition(changes.pop("id", "timed"), **changes)
    response = await client.post("/admin/instances", json=body, headers=headers)
    assert response.status_code == 201, await response.get_json()
    return str(body["id"])


async def status_of(client: QuartClient, headers: dict[str, str], instance_id: str) -> str:
    response = await client.get(f"/admin/instances/{instance_id}", headers=headers)
    return str((await response.get_json())["status"])


async def transitions(
    client: QuartClient, headers: dict[str, str], instance_id: str
) -> list[tuple[str, str | None, str | None]]:
    response = await client.get(f"/admin/instances/{instance_id}/ledger", headers=headers)
    entries = (await response.get_json())["entries"]
    return [(e["status"], e.get("from"), e.get("by")) for e in entries if e["type"] == "status"]


async def test_creating_timed_instances_schedules_their_transitions(
    client: QuartClient, gateway: Services, config: None, admin: dict[str, str]
) -> None:
    start, end = now_ms() + HOUR_MS, now_ms() + 2 * HOUR_MS
    await create(client, admin, status="Pending", timestamp_start=start, timestamp_end=end)
    await create(client, admin, id="open-ended", timestamp_end=end)
    await create(client, admin, id="forever")
    assert await scheduled(gateway.store) == [
        ("activate|timed", start),
        ("terminate|open-ended", end),
        ("terminate|timed", end),
    ]
    # Nothing is due yet.
    assert await gateway.lifecycle.run_due() == []
    assert await status_of(client, admin, "timed") == "Pending"
    assert len(await scheduled(gateway.store)) == 3


async def test_a_pending_instance_is_activated_at_its_start(
    client: QuartClient, gateway: Services, config: None, admin: dict[str, str]
) -> None:
    instance_id = await create(client, admin, status="Pending", timestamp_start=now_ms() - 1000)
    assert await status_of(client, admin, instance_id) == "Pending"
    assert await gateway.lifecycle.run_due() == [("activate", instance_id)]
    assert await status_of(client, admin, instance_id) == "Active"
    assert await transitions(client, admin, instance_id) == [
        ("Pending", None, None),
        ("Active", "Pending", "scheduler"),
    ]
    assert await scheduled(gateway.store) == []
    assert await gateway.lifecycle.run_due() == []


async def test_an_instance_is_terminated_at_its_end(
    client: QuartClient, gateway: Services, config: None, admin: dict[str, str]
) -> None:
    instance_id = await create(
        client, admin, timestamp_start=now_ms() - 2000, timestamp_end=now_ms() - 1000
    )
    assert await gateway.lifecycle.run_due() == [("terminate", instance_id)]
    assert await status_of(client, admin, instance_id) == "Terminated"
    assert await transitions(client, admin, instance_id) == [
        ("Active", None, None),
        ("Terminated", "Active", "scheduler"),
    ]
    assert await scheduled(gateway.store) == []


async def test_a_whole_window_in_the_past_runs_in_order(
    client: QuartClient, gateway: Services, config: None, admin: dict[str, str]
) -> None:
    instance_id = await create(
        client,
        admin,
        status="Pending",
        timestamp_start=now_ms() - 2000,
        timestamp_end=now_ms() - 1000,
    )
    assert await gateway.lifecycle.run_due() == [
        ("activate", instance_id),
        ("terminate", instance_id),
    ]
    assert [status for status, _, _ in await transitions(client, admin, instance_id)] == [
        "Pending",
        "Active",
        "Terminated",
    ]


async def test_two_schedulers_at_once_do_the_work_once(
    client: QuartClient,
    gateway: Services,
    second: Services,
    config: None,
    admin: dict[str, str],
) -> None:
    ids = []
    for n in range(5):
        ids.append(
            await create(
                client,
                admin,
                id=f"timed-{n}",
                status="Pending",
                timestamp_start=now_ms() - 2000,
                timestamp_end=now_ms() - 1000,
            )
        )
    results = await asyncio.gather(
        gateway.lifecycle.run_due(),
        second.lifecycle.run_due(),
        gateway.lifecycle.run_due(),
    )
    done = sorted(item for result in results for item in result)
    expected = sorted([("activate", i) for i in ids] + [("terminate", i) for i in ids])
    assert done == expected
    for instance_id in ids:
        assert [s for s, _, _ in await transitions(client, admin, instance_id)] == [
            "Pending",
            "Active",
            "Terminated",
        ]
    assert await scheduled(gateway.store) == []


async def test_a_claim_is_leased_and_claimable_again_after_the_lease(
    client: QuartClient, gateway: Services, config: None, admin: dict[str, str]
) -> None:
    store = gateway.store
    instance_id = await create(client, admin, status="Pending", timestamp_start=now_ms() - 1000)
    now = now_ms()
    assert await store.claim_due(now, 10, 300) == [("activate", instance_id)]
    # Leased: pushed to now + lease, invisible to other claimers meanwhile.
    assert await scheduled(store) == [(f"activate|{instance_id}", now + 300)]
    assert await store.claim_due(now_ms(), 10, 300) == []
    # The claimer never completed: after the lease the item is claimable again.
    await asyncio.sleep(0.35)
    assert await store.claim_due(now_ms(), 10, 60_000) == [("activate", instance_id)]
    await store.complete_due("activate", instance_id)
    assert await scheduled(store) == []
    assert await status_of(client, admin, instance_id) == "Pending"


async def test_claim_due_respects_the_limit(
    client: QuartClient, gateway: Services, config: None, admin: dict[str, str]
) -> None:
    store = gateway.store
    due = now_ms() - 1000
    for n in range(3):
        await store.schedule("activate", f"i{n}", due + n)
    now = now_ms()
    assert await store.claim_due(now, 2, 60_000) == [("activate", "i0"), ("activate", "i1")]
    assert await store.claim_due(now, 2, 60_000) == [("activate", "i2")]


async def test_a_crashing_handler_leaves_the_item_to_be_claimed_again(
    client: QuartClient, gateway: Services, config: None, admin: dict[str, str]
) -> None:
    instance_id = await create(client, admin, status="Pending", timestamp_start=now_ms() - 1000)

    async def crash(instance_id: str) -> None:
        raise ConnectionError("redis went away")

    gateway.lifecycle.register("activate", crash)
    before = now_ms()
    with pytest.raises(ConnectionError):
        await gateway.lifecycle.run_due()
    [(member, until)] = await scheduled(gateway.store)
    assert member == f"activate|{instance_id}"
    assert until >= before + lifecycle.LEASE_MS  # leased, not lost
    assert await status_of(client, admin, instance_id) == "Pending"


async def test_a_refused_transition_is_not_retried_forever(
    client: QuartClient, gateway: Services, config: None, admin: dict[str, str]
) -> None:
    instance_id = await create(client, admin, status="Pending", timestamp_start=now_ms() - 1000)
    response = await client.post(f"/admin/instances/{instance_id}/terminate", headers=admin)
    assert (await response.get_json())["status"] == "Terminated"
    # activate on Terminated is refused; the item is done with, not re-run every tick.
    assert await gateway.lifecycle.run_due() == [("activate", instance_id)]
    assert await status_of(client, admin, instance_id) == "Terminated"
    assert await scheduled(gateway.store) == []


async def test_an_unknown_action_is_dropped(gateway: Services) -> None:
    await gateway.store.schedule("explode", "x", now_ms() - 1)
    assert await gateway.lifecycle.run_due() == [("explode", "x")]
    assert await scheduled(gateway.store) == []
