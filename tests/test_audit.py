"""The audit trail: every admin change with who, when, what, before and after; paged; an
operator sees the entries that concern it and no other operator's."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from quart.testing import QuartClient

from app.core.security import Principal
from app.services import Services
from tests.conftest import CLI, PLATFORM, auth
from tests.support.definitions import instance
from tests.support.http import create_instance, expect, post, set_status

RIVAL_ADMIN = Principal("rival-admin", "rival", ("admin",))
FAKE_ONLY = pytest.mark.parametrize("redis_url", ["fake"], indirect=True)


async def trail(client: QuartClient, headers: dict[str, str], **query: Any) -> list[Any]:
    response = await client.get("/admin/audit", headers=headers, query_string=query)
    return list((await expect(response, 200))["entries"])


async def new_entries(
    client: QuartClient, headers: dict[str, str], before: list[Any]
) -> list[dict[str, Any]]:
    seen = {entry["id"] for entry in before}
    return [entry for entry in await trail(client, headers) if entry["id"] not in seen]


def summary(entry: dict[str, Any]) -> tuple[str, str, str, Any, Any, list[str]]:
    return (
        entry["by"],
        entry["action"],
        entry["target"],
        entry["before"],
        entry["after"],
        entry["changed"],
    )


async def test_each_admin_change_is_recorded_with_who_what_before_and_after(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    start = int(time.time() * 1000)
    before = await trail(client, headers)

    definition = await create_instance(client, headers, instance("audited"))
    await set_status(client, headers, "audited", "pause")
    operator = {"id": "demo", "name": "Demo", "brands": ["brand1", "brand2"]}
    operator["callback_secret"] = "a-new-secret-0123456789"
    platform = auth(gateway, PLATFORM)  # operators are the platform's
    await expect(await post(client, "/admin/operators", operator, platform), 200)
    account = {"username": "ops", "password": "a-long-enough-password", "operator_id": "demo"}
    await expect(await post(client, "/admin/accounts", account, headers), 201)
    roles = {"roles": ["admin"]}
    await expect(await client.patch("/admin/accounts/ops", json=roles, headers=headers), 200)
    await expect(await client.delete("/admin/accounts/ops", headers=headers), 204)

    entries = await new_entries(client, headers, before)
    assert all(start <= entry["at"] <= int(time.time() * 1000) for entry in entries)
    assert {entry["by_operator"] for entry in entries} == {"demo", "provider"}
    stored = (await expect(await client.get("/admin/instances/audited", headers=headers), 200))[
        "definition"
    ]
    assert stored["id"] == definition["id"]
    view = {"username": "ops", "operator_id": "demo", "roles": ["operator"]}
    assert [summary(entry) for entry in entries] == [
        ("demo-service", "instance.create", "audited", None, stored, ["*"]),
        (
            "demo-service",
            "instance.pause",
            "audited",
            {"status": "Active"},
            {"status": "Paused"},
            ["status"],
        ),
        (
            "platform-admin",
            "operator.put",
            "demo",
            {
                "id": "demo",
                "name": "Demo Casino",
                "brands": ["brand1", "brand2"],
                "callback_secret": "[redacted]",
            },
            {**operator, "callback_secret": "[redacted]"},
            ["callback_secret", "name"],
        ),
        ("demo-service", "account.create", "ops", None, view, ["*"]),
        (
            "demo-service",
            "account.roles",
            "ops",
            view,
            {**view, "roles": ["admin"]},
            ["roles"],
        ),
        ("demo-service", "account.delete", "ops", {**view, "roles": ["admin"]}, None, ["*"]),
    ]
    everything = json.dumps(entries)
    assert "a-new-secret" not in everything and "argon2" not in everything


async def test_currency_and_source_changes_are_recorded(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    before = await trail(client, headers)
    platform = auth(gateway, PLATFORM)  # currencies are the platform's
    currencies = await expect(await client.get("/admin/currencies", headers=platform), 200)
    changed = {**currencies, "multipliers": {**currencies["multipliers"], "USD": "1.09"}}
    await expect(await client.put("/admin/currencies", json=changed, headers=platform), 200)
    source = {
        "source_id": "book-of-ra",
        "owner_id": "demo:brand1",
        "source_name": "Book of Ra",
        "instance_ids": ["daily-drop"],
    }
    await expect(await post(client, "/admin/sources", source, headers), 200)
    await expect(await post(client, "/admin/sources", source, headers), 200)  # no change
    await expect(await client.delete("/admin/sources/demo:brand1/book-of-ra", headers=headers), 204)
    entries = await new_entries(client, headers, before)
    assert [(e["action"], e["target"], e["changed"]) for e in entries] == [
        ("currencies.put", "currencies", ["multipliers"]),
        ("source.put", "demo:brand1/book-of-ra", ["*"]),
        ("source.delete", "demo:brand1/book-of-ra", ["*"]),
    ]
    assert entries[0]["before"]["multipliers"]["USD"] == "1.08"
    assert entries[0]["after"]["multipliers"]["USD"] == "1.09"
    assert entries[2]["before"] == source and entries[2]["after"] is None
    # Currencies concern every operator: rival sees that change, not demo's sources.
    rival = await trail(client, auth(gateway, RIVAL_ADMIN))
    assert [e["action"] for e in rival if e["by"] in ("demo-service", "platform-admin")] == [
        "currencies.put"
    ]


async def test_an_operator_sees_only_entries_that_concern_it(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    rival = auth(gateway, RIVAL_ADMIN)
    rival_before = await trail(client, rival)
    await create_instance(client, headers, instance("demo-only"))
    await set_status(client, headers, "demo-only", "pause")
    assert await new_entries(client, rival, rival_before) == []
    # A rival instance: its creation is in rival's trail and not in demo's.
    demo_before = await trail(client, headers)
    await create_instance(client, rival, instance("rival-only", allowed_brands=["rival:main"]))
    assert [e["target"] for e in await new_entries(client, rival, rival_before)] == ["rival-only"]
    assert await new_entries(client, headers, demo_before) == []


async def test_the_trail_is_paged_oldest_first(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    for number in range(5):
        await create_instance(client, headers, instance(f"paged-{number}"))
    everything = await trail(client, headers)
    pages: list[Any] = []
    after = "-"
    while after is not None:
        response = await client.get(
            "/admin/audit", headers=headers, query_string={"after": after, "count": 2}
        )
        body = await expect(response, 200)
        pages.extend(body["entries"])
        after = body["next"]
    assert pages == everything
    assert [e["target"] for e in everything][-5:] == [f"paged-{n}" for n in range(5)]
    assert [e["id"] for e in everything] == sorted(
        (e["id"] for e in everything), key=lambda i: tuple(map(int, i.split("-")))
    )


@FAKE_ONLY
@pytest.mark.parametrize(
    "query", [{"count": 0}, {"count": 1001}, {"after": "x"}, {"count": "2.5"}, {"other": 1}]
)
async def test_bad_paging_is_refused(
    client: QuartClient, headers: dict[str, str], query: dict[str, Any]
) -> None:
    response = await client.get("/admin/audit", headers=headers, query_string=query)
    await expect(response, 400, "VALIDATION_ERROR")


@FAKE_ONLY
async def test_the_trail_needs_the_admin_role(client: QuartClient, gateway: Services) -> None:
    operator_only = auth(gateway, Principal("svc", "demo", ("operator",)))
    await expect(await client.get("/admin/audit", headers=operator_only), 403, "ADMIN_REQUIRED")


async def test_cli_load_is_recorded_and_the_cli_prints_the_trail(
    headers: dict[str, str], cli: CLI
) -> None:
    """`headers` loaded the demo definitions through the load path: entries by `cli`."""
    code, out, _ = await cli("audit", "--operator", "demo", "--count", "3")
    assert code == 0
    entries = [json.loads(line) for line in out.splitlines()]
    assert [(e["by"], e["by_operator"], e["action"]) for e in entries] == [
        ("cli", None, "operator.put"),
        ("cli", None, "currencies.put"),
        ("cli", None, "instance.create"),
    ]
    assert entries[0]["after"]["callback_secret"] == "[redacted]"
