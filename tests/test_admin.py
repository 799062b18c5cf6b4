"""The admin API: role check, every definition rule, cross references, instances, accounts."""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from quart import Quart
from quart.testing import QuartClient

from app import create_app
from app.cli import read_definitions
from app.core.security import Principal
from app.services import Services
from tests.conftest import DEMO_FILE, make_settings

_DEMO = read_definitions(DEMO_FILE)  # parsed once: YAML parsing costs ~50 ms


def demo_without_accounts() -> dict[str, Any]:
    """The demo definitions without their accounts (argon2 hashing is slow)."""
    return {**copy.deepcopy(_DEMO), "accounts": []}


ADMIN = Principal("demo-service", "demo", ("admin", "operator"))
RIVAL = Principal("rival-service", "rival", ("operator",))
PLATFORM = Principal("platform-admin", "provider", ("platform",))
# Schema and reference checks happen before the store is touched: one backend is enough.
FAKE_ONLY = pytest.mark.parametrize("redis_url", ["fake"], indirect=True)


@pytest.fixture
async def config(gateway: Services) -> None:
    """The demo definitions without their accounts (argon2 hashing is slow)."""
    await gateway.admin.apply(demo_without_accounts(), lambda name: None)


@pytest.fixture
def admin(gateway: Services) -> dict[str, str]:
    return {"Authorization": f"Bearer {gateway.tokens.issue(ADMIN)}"}


@pytest.fixture
def platform(gateway: Services) -> dict[str, str]:
    """The jackpot provider's staff: operators, currencies, every operator's objects."""
    return {"Authorization": f"Bearer {gateway.tokens.issue(PLATFORM)}"}


@pytest.fixture
def rival(gateway: Services) -> dict[str, str]:
    return {"Authorization": f"Bearer {gateway.tokens.issue(RIVAL)}"}


async def snapshot(gateway: Services) -> dict[str, Any]:
    """Every key of the store with its value, read by type (login throttles excluded)."""
    client = gateway.store.client
    found: dict[str, Any] = {}
    async for key in client.scan_iter(count=1000):
        if ":login-attempts:" in key:
            continue
        kind = await client.type(key)
        if kind == "string":
            found[key] = await client.get(key)
        elif kind == "hash":
            found[key] = await client.hgetall(key)
        elif kind == "zset":
            found[key] = await client.zrange(key, 0, -1, withscores=True)
        elif kind == "list":
            found[key] = await client.lrange(key, 0, -1)
        elif kind == "set":
            found[key] = sorted(await client.smembers(key))
        elif kind == "stream":
            found[key] = await client.xrange(key)
        else:  # pragma: no cover - a new type must be added above
            raise AssertionError(f"unexpected type {kind} of {key}")
    return found


def at(details: Any, *path: str) -> list[str]:
    """The messages at a path of a validation error's details (list indexes as strings)."""
    node = details
    for part in path:
        assert isinstance(node, dict) and part in node, (path, details)
        node = node[part]
    assert isinstance(node, list) and node and all(isinstance(m, str) for m in node), node
    return node


def status_of(code: str) -> int:
    """Malformed requests are 400; well-formed ones naming what is not configured, 422."""
    return 422 if code == "INVALID_REFERENCE" else 400


async def refused(
    client: QuartClient,
    gateway: Services,
    method: str,
    path: str,
    body: Any,
    headers: dict[str, str],
    status: int,
    code: str,
) -> dict[str, Any]:
    """Send a write that must be refused; check the error and that nothing changed."""
    before = await snapshot(gateway)
    response = await client.open(path, method=method, json=body, headers=headers)
    error = await response.get_json()
    assert response.status_code == status, error
    assert set(error) == {"error", "code", "details"}
    assert error["code"] == code, error
    assert await snapshot(gateway) == before
    return dict(error["details"])


# -- definitions used below ----------------------------------------------------------
def pots() -> list[dict[str, Any]]:
    return [
        {
            "id": "mini",
            "name": "Mini",
            "share": "0.25",
            "reserve_share": "0.1",
            "seed": "10",
            "max_value": "100",
            "trigger": {"HitRate": {"max_magic_number": 5000, "cost_per_attempt": "0.10"}},
        },
        {
            "id": "major",
            "name": "Major",
            "share": "0.45",
            "seed": "1000.5",
            "max_value": "5000",
            "trigger": {"MustDropBy": {"min": "2000", "max": "5000"}},
        },
    ]


def instance(**changes: Any) -> dict[str, Any]:
    definition: dict[str, Any] = {
        "id": "test-jp",
        "name": "Test Jackpot",
        "currency": "EUR",
        "contribution_type": {"Fixed": "0.10"},
        "contribution_limits": {"USD": {"min": "0.01", "max": "5"}},
        "allowed_brands": ["demo:brand1"],
        "house_share": "0.30",
        "pots": pots(),
    }
    definition.update(changes)
    return definition


def with_pot(index: int, **changes: Any) -> list[dict[str, Any]]:
    changed = pots()
    changed[index].update(changes)
    return changed


def currencies(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "base_currency": "EUR",
        "multipliers": {"EUR": 1, "USD": "1.08", "GBP": "0.86", "SEK": "11.4", "JPY": 162},
        "decimals": {"JPY": 0},
        "brand_overrides": {"demo:brand2": {"USD": "1.10"}},
    }
    body.update(changes)
    return body


# -- the admin role ------------------------------------------------------------------
@pytest.fixture
async def bare_app() -> AsyncIterator[Quart]:
    application = create_app(make_settings(f"memory://admin-{uuid.uuid4().hex}"))
    async with application.test_app():
        yield application


async def test_every_admin_route_needs_the_admin_role(bare_app: Quart) -> None:
    gateway: Services = bare_app.extensions["gateway"]
    await gateway.admin.apply(demo_without_accounts(), lambda name: None)
    headers = {"Authorization": f"Bearer {gateway.tokens.issue(RIVAL)}"}
    client = bare_app.test_client()
    adapter = bare_app.url_map.bind("localhost")
    before = await snapshot(gateway)
    probed = []
    for rule in bare_app.url_map.iter_rules():
        if rule.websocket or not rule.rule.startswith("/admin/"):
            continue
        values = {name: "daily-drop" for name in rule.arguments}
        if "action" in rule.arguments:
            values["action"] = "terminate"
        path = adapter.build(rule.endpoint, values, append_unknown=False)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            response = await client.open(path, method=method, headers=headers, json=instance())
            body = await response.get_json()
            assert (response.status_code, body["code"]) == (403, "ADMIN_REQUIRED"), (method, path)
            probed.append((method, rule.rule))
    assert len(probed) >= 15
    assert await snapshot(gateway) == before


async def test_admin_token_reaches_the_admin_routes(
    client: QuartClient, config: None, admin: dict[str, str]
) -> None:
    response = await client.get("/admin/operators", headers=admin)
    assert response.status_code == 200
    assert [operator["id"] for operator in await response.get_json()] == ["demo"]


# -- instance definitions: schema rules ------------------------------------------------
INSTANCE_RULES = [
    # shares: pots + house must be exactly 1
    ("shares-above-1", instance(house_share="0.300001"), ("pots",)),
    ("shares-below-1", instance(house_share="0.29"), ("pots",)),
    ("seven-decimals", instance(house_share="0.3000001"), ("house_share",)),
    ("share-above-1", instance(pots=with_pot(0, share="1.5")), ("pots", "0", "share")),
    ("negative-share", instance(pots=with_pot(0, share="-0.25")), ("pots", "0", "share")),
    (
        "reserve-share-1",
        instance(pots=with_pot(0, reserve_share="1")),
        ("pots", "0", "reserve_share"),
    ),
    # seeds, caps and drop ranges
    ("seed-above-max", instance(pots=with_pot(0, seed="100.000001")), ("pots", "0", "seed")),
    (
        "drop-min-below-seed",
        instance(pots=with_pot(1, trigger={"MustDropBy": {"min": "999", "max": "5000"}})),
        ("pots", "1", "trigger"),
    ),
    (
        "drop-max-above-cap",
        instance(pots=with_pot(1, trigger={"MustDropBy": {"min": "2000", "max": "5001"}})),
        ("pots", "1", "trigger"),
    ),
    (
        "drop-min-equals-max",
        instance(pots=with_pot(1, trigger={"MustDropBy": {"min": "3000", "max": "3000"}})),
        ("pots", "1", "trigger", "MustDropBy", "max"),
    ),
    (
        "drop-min-above-max",
        instance(pots=with_pot(1, trigger={"MustDropBy": {"min": "4000", "max": "3000"}})),
        ("pots", "1", "trigger", "MustDropBy", "max"),
    ),
    (
        "hit-rate-zero-cost",
        instance(
            pots=with_pot(0, trigger={"HitRate": {"max_magic_number": 10, "cost_per_attempt": 0}})
        ),
        ("pots", "0", "trigger", "HitRate", "cost_per_attempt"),
    ),
    (
        "magic-number-float",
        instance(
            pots=with_pot(
                0, trigger={"HitRate": {"max_magic_number": 10.5, "cost_per_attempt": "1"}}
            )
        ),
        ("pots", "0", "trigger", "HitRate", "max_magic_number"),
    ),
    (
        "magic-number-zero",
        instance(
            pots=with_pot(0, trigger={"HitRate": {"max_magic_number": 0, "cost_per_attempt": "1"}})
        ),
        ("pots", "0", "trigger", "HitRate", "max_magic_number"),
    ),
    (
        "max-value-zero",
        instance(pots=with_pot(0, max_value="0", seed="0")),
        ("pots", "0", "max_value"),
    ),
    (
        "pot-without-trigger",
        instance(pots=[{k: v for k, v in pots()[0].items() if k != "trigger"}, pots()[1]]),
        ("pots", "0", "trigger"),
    ),
    (
        "pot-progressive-not-bool",
        instance(pots=with_pot(0, is_progressive="maybe")),
        ("pots", "0", "is_progressive"),
    ),
    ("too-many-pots", instance(pots=[{**pots()[0], "id": f"p{n}"} for n in range(21)]), ("pots",)),
    # unknown fields are errors at every level
    ("unknown-field", instance(colour="red"), ("colour",)),
    ("unknown-pot-field", instance(pots=with_pot(0, colour="red")), ("pots", "0", "colour")),
    (
        "unknown-trigger",
        instance(pots=with_pot(0, trigger={"Sometimes": {}})),
        ("pots", "0", "trigger", "Sometimes"),
    ),
    # amounts: no NaN, infinities, booleans, junk or more than 6 decimals
    ("nan-string", instance(house_share="NaN"), ("house_share",)),
    ("infinity-string", instance(pots=with_pot(0, seed="Infinity")), ("pots", "0", "seed")),
    (
        "minus-infinity",
        instance(pots=with_pot(0, max_value="-Infinity")),
        ("pots", "0", "max_value"),
    ),
    ("boolean-amount", instance(pots=with_pot(0, seed=True)), ("pots", "0", "seed")),
    ("junk-amount", instance(pots=with_pot(0, seed="ten")), ("pots", "0", "seed")),
    ("list-amount", instance(pots=with_pot(0, seed=[10])), ("pots", "0", "seed")),
    ("absurd-amount", instance(auto_payout_limit="1000000001"), ("auto_payout_limit",)),
    ("seed-seven-decimals", instance(pots=with_pot(0, seed="10.0000001")), ("pots", "0", "seed")),
    ("fixed-zero", instance(contribution_type={"Fixed": "0"}), ("contribution_type", "Fixed")),
    (
        "percentage-above-1",
        instance(contribution_type={"Percentage": "1.01"}),
        ("contribution_type", "Percentage"),
    ),
    # time window and status
    ("pending-without-start", instance(status="Pending"), ("timestamp_start",)),
    (
        "start-equals-end",
        instance(timestamp_start=1_000, timestamp_end=1_000),
        ("timestamp_end",),
    ),
    (
        "start-after-end",
        instance(timestamp_start=2_000, timestamp_end=1_000),
        ("timestamp_end",),
    ),
    ("start-not-an-integer", instance(timestamp_start="1000"), ("timestamp_start",)),
    ("start-a-float", instance(timestamp_start=1000.5), ("timestamp_start",)),
    ("created-terminated", instance(status="Terminated"), ("status",)),
    ("unknown-type", instance(jackpot_type="Lottery"), ("jackpot_type",)),
    # pots and raffles
    ("duplicate-pot-ids", instance(pots=with_pot(1, id="mini")), ("pots",)),
    ("jackpot-without-pots", instance(pots=[], house_share="1"), ("pots",)),
    ("raffle-without-raffle", instance(jackpot_type="Raffle"), ("raffle",)),
    (
        "raffle-at-end-without-end",
        instance(
            raffle={"ticket_cost": "1", "prizes": ["10"], "draw": {"at": "end"}},
            jackpot_type="Raffle",
        ),
        ("raffle",),
    ),
    (
        "raffle-bad-period",
        instance(
            raffle={"ticket_cost": "1", "prizes": ["10"], "draw": {"every": "1 week"}},
            jackpot_type="Raffle",
        ),
        ("raffle", "draw", "every"),
    ),
    (
        "raffle-draw-at-start",
        instance(
            raffle={"ticket_cost": "1", "prizes": ["10"], "draw": {"at": "start"}},
            jackpot_type="Raffle",
        ),
        ("raffle", "draw", "at"),
    ),
    (
        "raffle-without-prizes",
        instance(
            raffle={"ticket_cost": "1", "prizes": [], "draw": {"every": "1d"}},
            jackpot_type="Raffle",
        ),
        ("raffle", "prizes"),
    ),
    (
        "raffle-bad-basis",
        instance(
            raffle={
                "ticket_cost": "1",
                "ticket_basis": "deposits",
                "prizes": ["10"],
                "draw": {"every": "1d"},
            },
            jackpot_type="Raffle",
        ),
        ("raffle", "ticket_basis"),
    ),
    (
        "raffle-free-tickets",
        instance(
            raffle={"ticket_cost": "0", "prizes": ["10"], "draw": {"every": "1d"}},
            jackpot_type="Raffle",
        ),
        ("raffle", "ticket_cost"),
    ),
    # exactly one of ...
    (
        "trigger-with-both",
        instance(
            pots=with_pot(
                1,
                trigger={
                    "MustDropBy": {"min": "2000", "max": "5000"},
                    "HitRate": {"max_magic_number": 10, "cost_per_attempt": "1"},
                },
            )
        ),
        ("pots", "1", "trigger", "_schema"),
    ),
    (
        "trigger-with-none",
        instance(pots=with_pot(0, trigger={})),
        ("pots", "0", "trigger", "_schema"),
    ),
    (
        "contribution-with-both",
        instance(contribution_type={"Fixed": "0.1", "Percentage": "0.01"}),
        ("contribution_type", "_schema"),
    ),
    ("contribution-with-none", instance(contribution_type={}), ("contribution_type", "_schema")),
    (
        "raffle-draw-with-both",
        instance(
            raffle={"ticket_cost": "1", "prizes": ["10"], "draw": {"at": "end", "every": "1d"}},
            timestamp_end=10**13,
            jackpot_type="Raffle",
        ),
        ("raffle", "draw", "_schema"),
    ),
    # ids, codes, brands, countries, links
    ("bad-id", instance(id="bad id!"), ("id",)),
    ("id-too-long", instance(id="x" * 65), ("id",)),
    ("bad-pot-id", instance(pots=with_pot(0, id="-mini")), ("pots", "0", "id")),
    ("lowercase-currency", instance(currency="eur"), ("currency",)),
    ("bare-allowed-brand", instance(allowed_brands=["brand1"]), ("allowed_brands", "0")),
    ("no-allowed-brands", instance(allowed_brands=[]), ("allowed_brands",)),
    ("bad-country", instance(blocked_countries=["USA"]), ("blocked_countries", "0")),
    (
        "allowed-and-blocked",
        instance(allowed_countries=["DE", "US"], blocked_countries=["US"]),
        ("blocked_countries",),
    ),
    ("linked-to-itself", instance(linked_instances=["test-jp"]), ("linked_instances",)),
    ("missing-name", {k: v for k, v in instance().items() if k != "name"}, ("name",)),
    (
        "limit-min-above-max",
        instance(contribution_limits={"EUR": {"min": "5", "max": "1"}}),
        ("contribution_limits", "EUR", "value", "min"),
    ),
]


@FAKE_ONLY
@pytest.mark.parametrize(
    ("body", "path"),
    [(body, path) for _, body, path in INSTANCE_RULES],
    ids=[name for name, _, _ in INSTANCE_RULES],
)
async def test_instance_schema_rules(
    client: QuartClient,
    gateway: Services,
    config: None,
    admin: dict[str, str],
    body: dict[str, Any],
    path: tuple[str, ...],
) -> None:
    details = await refused(
        client, gateway, "POST", "/admin/instances", body, admin, 400, "VALIDATION_ERROR"
    )
    at(details, *path)


async def test_the_valid_base_definition_is_accepted(
    client: QuartClient, config: None, admin: dict[str, str]
) -> None:
    """The control for the rules above: each of them changes one thing of this definition."""
    response = await client.post("/admin/instances", json=instance(), headers=admin)
    assert response.status_code == 201, await response.get_json()
    raffle = instance(
        id="test-raffle",
        jackpot_type="Raffle",
        raffle={
            "ticket_cost": "1",
            "ticket_basis": "base_wager",
            "prizes": ["10", "5"],
            "draw": {"every": "1d"},
        },
    )
    response = await client.post("/admin/instances", json=raffle, headers=admin)
    assert response.status_code == 201, await response.get_json()


async def test_json_numbers_load_as_exact_decimals(
    client: QuartClient, config: None, admin: dict[str, str]
) -> None:
    body = instance(house_share=0.3, pots=with_pot(0, share=0.25, seed=10, reserve_share=0.1))
    response = await client.post("/admin/instances", json=body, headers=admin)
    assert response.status_code == 201, await response.get_json()
    stored = await response.get_json()
    assert stored["house_share"] == "0.3"
    assert stored["pots"][0]["share"] == "0.25"
    assert stored["pots"][0]["seed"] == "10"


# -- instance definitions: cross references --------------------------------------------
INSTANCE_REFERENCES = [
    ("unknown-brand", instance(allowed_brands=["demo:brand1", "demo:brand9"])),
    ("unknown-operator", instance(allowed_brands=["ghost:brand1"])),
    ("unknown-currency", instance(currency="CHF")),
    ("unknown-limit-currency", instance(contribution_limits={"CHF": {"min": "1"}})),
    ("unknown-linked-instance", instance(linked_instances=["no-such-instance"])),
]


@FAKE_ONLY
@pytest.mark.parametrize(
    "body", [body for _, body in INSTANCE_REFERENCES], ids=[n for n, _ in INSTANCE_REFERENCES]
)
async def test_instance_cross_references(
    client: QuartClient,
    gateway: Services,
    config: None,
    platform: dict[str, str],
    body: dict[str, Any],
) -> None:
    details = await refused(
        client, gateway, "POST", "/admin/instances", body, platform, 422, "INVALID_REFERENCE"
    )
    at(details, "instances.test-jp")


async def test_a_link_to_an_existing_instance_is_accepted(
    client: QuartClient, config: None, admin: dict[str, str]
) -> None:
    response = await client.post(
        "/admin/instances", json=instance(linked_instances=["daily-drop"]), headers=admin
    )
    assert response.status_code == 201


# -- creating instances ----------------------------------------------------------------
async def test_create_instance_seeds_the_pots_and_the_ledger(
    client: QuartClient, config: None, admin: dict[str, str]
) -> None:
    response = await client.post("/admin/instances", json=instance(), headers=admin)
    assert response.status_code == 201
    stored = await response.get_json()
    assert stored["id"] == "test-jp"
    assert [pot["seed"] for pot in stored["pots"]] == ["10", "1000.5"]

    response = await client.get("/admin/instances/test-jp", headers=admin)
    assert response.status_code == 200
    view = await response.get_json()
    assert view["status"] == "Active"
    assert view["definition"] == stored
    assert [(pot["id"], pot["current_value"]) for pot in view["pots"]] == [
        ("mini", "10"),
        ("major", "1000.5"),
    ]
    assert [pot["reserve"] for pot in view["pots"]] == ["0", "0"]
    assert view["totals"] == {
        "contributions": "0",
        "seed_funding": "1010.5",
        "boosts": "0",
        "house": "0",
        "wins": "0",
        "returned": "0",
    }

    response = await client.get("/admin/instances/test-jp/ledger", headers=admin)
    assert response.status_code == 200
    ledger = await response.get_json()
    assert ledger["next"] is None
    entries = ledger["entries"]
    seeds = [(e["type"], e["pot"], e["amount"]) for e in entries if e["type"] == "seed_funding"]
    assert seeds == [("seed_funding", "mini", "10000000"), ("seed_funding", "major", "1000500000")]
    assert [(e["type"], e["status"]) for e in entries if e["type"] == "status"] == [
        ("status", "Active")
    ]
    assert len(entries) == 3
    # The MustDropBy pot got a hidden drop value inside [min, max); the HitRate pot none.
    drop = int(entries[1]["drop_at"])
    assert 2_000_000_000 <= drop < 5_000_000_000
    assert entries[0]["drop_at"] == ""


async def test_ledger_paging(client: QuartClient, config: None, admin: dict[str, str]) -> None:
    await client.post("/admin/instances", json=instance(), headers=admin)
    first = await (
        await client.get("/admin/instances/test-jp/ledger?count=2", headers=admin)
    ).get_json()
    assert len(first["entries"]) == 2
    assert first["next"] == first["entries"][-1]["entry_id"]
    rest = await (
        await client.get(f"/admin/instances/test-jp/ledger?after={first['next']}", headers=admin)
    ).get_json()
    assert [e["type"] for e in rest["entries"]] == ["status"]
    assert rest["next"] is None
    bad = await client.get("/admin/instances/test-jp/ledger?count=0", headers=admin)
    assert bad.status_code == 400
    assert at((await bad.get_json())["details"], "count")


async def test_an_instance_without_id_gets_a_uuid(
    client: QuartClient, config: None, admin: dict[str, str]
) -> None:
    body = instance()
    del body["id"]
    response = await client.post("/admin/instances", json=body, headers=admin)
    assert response.status_code == 201
    instance_id = (await response.get_json())["id"]
    assert str(uuid.UUID(instance_id)) == instance_id
    assert (await client.get(f"/admin/instances/{instance_id}", headers=admin)).status_code == 200


async def test_creating_the_same_instance_again_changes_nothing(
    client: QuartClient, gateway: Services, config: None, admin: dict[str, str]
) -> None:
    first = await client.post("/admin/instances", json=instance(), headers=admin)
    assert first.status_code == 201
    before = await snapshot(gateway)
    again = await client.post("/admin/instances", json=instance(), headers=admin)
    assert again.status_code == 200
    assert await again.get_json() == await first.get_json()
    assert await snapshot(gateway) == before


async def test_another_definition_with_the_same_id_is_a_conflict(
    client: QuartClient, gateway: Services, config: None, admin: dict[str, str]
) -> None:
    assert (
        await client.post("/admin/instances", json=instance(), headers=admin)
    ).status_code == 201
    await refused(
        client,
        gateway,
        "POST",
        "/admin/instances",
        instance(name="Renamed"),
        admin,
        409,
        "INSTANCE_EXISTS",
    )
    # The demo instance too, created by the definitions file.
    await refused(
        client,
        gateway,
        "POST",
        "/admin/instances",
        instance(id="daily-drop"),
        admin,
        409,
        "INSTANCE_EXISTS",
    )


async def test_list_instances(client: QuartClient, config: None, admin: dict[str, str]) -> None:
    response = await client.get("/admin/instances", headers=admin)
    assert response.status_code == 200
    views = await response.get_json()
    assert [view["definition"]["id"] for view in views] == ["daily-drop", "weekly-raffle"]
    assert [view["status"] for view in views] == ["Active", "Active"]
    assert views[0]["totals"]["seed_funding"] == "1110"


async def test_unknown_instance_is_not_found(
    client: QuartClient, config: None, admin: dict[str, str]
) -> None:
    for path in ("/admin/instances/nope", "/admin/instances/nope/ledger"):
        response = await client.get(path, headers=admin)
        assert response.status_code == 404
        assert (await response.get_json())["code"] == "INSTANCE_NOT_FOUND"


# -- lifecycle -------------------------------------------------------------------------
async def status_entries(client: QuartClient, headers: dict[str, str], instance_id: str) -> list:
    response = await client.get(f"/admin/instances/{instance_id}/ledger", headers=headers)
    entries = (await response.get_json())["entries"]
    return [(e["status"], e.get("from"), e.get("by")) for e in entries if e["type"] == "status"]


async def change(client: QuartClient, headers: dict[str, str], action: str) -> tuple[int, Any]:
    response = await client.post(f"/admin/instances/daily-drop/{action}", headers=headers)
    return response.status_code, await response.get_json()


async def test_pause_resume_terminate(
    client: QuartClient, config: None, admin: dict[str, str]
) -> None:
    ok = {"instance_id": "daily-drop"}
    assert await change(client, admin, "pause") == (200, {**ok, "status": "Paused"})
    # Repeating a done action answers the current status and records nothing new.
    assert await change(client, admin, "pause") == (200, {**ok, "status": "Paused"})
    assert await change(client, admin, "resume") == (200, {**ok, "status": "Active"})
    assert await change(client, admin, "resume") == (200, {**ok, "status": "Active"})
    assert await change(client, admin, "terminate") == (200, {**ok, "status": "Terminated"})
    assert await change(client, admin, "terminate") == (200, {**ok, "status": "Terminated"})
    view = await (await client.get("/admin/instances/daily-drop", headers=admin)).get_json()
    assert view["status"] == "Terminated"
    assert await status_entries(client, admin, "daily-drop") == [
        ("Active", None, None),
        ("Paused", "Active", "demo-service"),
        ("Active", "Paused", "demo-service"),
        ("Terminated", "Active", "demo-service"),
    ]


@pytest.mark.parametrize(
    ("steps", "action"),
    [
        ([], "activate"),  # Active -> activate is done already: fine; see below
        (["pause"], "activate"),
        (["terminate"], "pause"),
        (["terminate"], "resume"),
        (["terminate"], "activate"),
    ],
    ids=["control", "activate-paused", "pause-terminated", "resume-terminated", "reopen"],
)
async def test_invalid_transitions(
    client: QuartClient,
    gateway: Services,
    config: None,
    admin: dict[str, str],
    steps: list[str],
    action: str,
) -> None:
    for step in steps:
        assert (await change(client, admin, step))[0] == 200
    if not steps:
        assert await change(client, admin, action) == (
            200,
            {"instance_id": "daily-drop", "status": "Active"},
        )
        return
    before = await snapshot(gateway)
    status, body = await change(client, admin, action)
    assert (status, body["code"]) == (409, "INVALID_TRANSITION")
    assert await snapshot(gateway) == before


async def test_pending_instance_transitions(
    client: QuartClient, config: None, admin: dict[str, str]
) -> None:
    body = instance(status="Pending", timestamp_start=4_000_000_000_000)
    assert (await client.post("/admin/instances", json=body, headers=admin)).status_code == 201
    for action in ("pause", "resume"):
        response = await client.post(f"/admin/instances/test-jp/{action}", headers=admin)
        assert response.status_code == 409
        assert (await response.get_json())["code"] == "INVALID_TRANSITION"
    response = await client.post("/admin/instances/test-jp/activate", headers=admin)
    assert await response.get_json() == {"instance_id": "test-jp", "status": "Active"}


async def test_transitions_of_unknown_instances_and_actions(
    client: QuartClient, config: None, admin: dict[str, str]
) -> None:
    response = await client.post("/admin/instances/nope/pause", headers=admin)
    assert response.status_code == 404
    assert (await response.get_json())["code"] == "INSTANCE_NOT_FOUND"
    response = await client.post("/admin/instances/daily-drop/explode", headers=admin)
    assert response.status_code == 404
    assert (await response.get_json())["code"] == "NOT_FOUND"


# -- currencies ------------------------------------------------------------------------
CURRENCY_RULES = [
    ("base-not-1", currencies(multipliers={"EUR": "1.5", "USD": "1.08"}), ("multipliers",)),
    ("base-missing", currencies(multipliers={"USD": "1.08", "GBP": "0.86"}), ("multipliers",)),
    ("decimals-unknown", currencies(decimals={"CHF": 2}), ("decimals",)),
    ("decimals-above-6", currencies(decimals={"JPY": 7}), ("decimals", "JPY", "value")),
    ("decimals-string", currencies(decimals={"JPY": "0"}), ("decimals", "JPY", "value")),
    (
        "override-unknown-currency",
        currencies(brand_overrides={"demo:brand2": {"CHF": "0.9"}}),
        ("brand_overrides",),
    ),
    (
        "override-base",
        currencies(brand_overrides={"demo:brand2": {"EUR": "1"}}),
        ("brand_overrides",),
    ),
    (
        "override-bare-brand",
        currencies(brand_overrides={"brand2": {"USD": "1.1"}}),
        ("brand_overrides", "brand2", "key"),
    ),
    (
        "zero-multiplier",
        currencies(multipliers={"EUR": 1, "USD": 0}),
        ("multipliers", "USD", "value"),
    ),
    ("bad-code", currencies(multipliers={"EUR": 1, "usd": 1}), ("multipliers", "usd", "key")),
    ("unknown-field", currencies(symbols={"EUR": "€"}), ("symbols",)),
    ("base-missing-field", {"multipliers": {"EUR": 1}}, ("base_currency",)),
]


@FAKE_ONLY
@pytest.mark.parametrize(
    ("body", "path"),
    [(body, path) for _, body, path in CURRENCY_RULES],
    ids=[name for name, _, _ in CURRENCY_RULES],
)
async def test_currency_rules(
    client: QuartClient,
    gateway: Services,
    config: None,
    platform: dict[str, str],
    body: dict[str, Any],
    path: tuple[str, ...],
) -> None:
    details = await refused(
        client, gateway, "PUT", "/admin/currencies", body, platform, 400, "VALIDATION_ERROR"
    )
    at(details, *path)


@FAKE_ONLY
@pytest.mark.parametrize(
    "body",
    [
        currencies(brand_overrides={"demo:brand9": {"USD": "1.1"}}),
        currencies(brand_overrides={"ghost:brand1": {"USD": "1.1"}}),
        # daily-drop has a USD contribution limit: USD may not disappear.
        currencies(multipliers={"EUR": 1, "GBP": "0.86"}, decimals={}, brand_overrides={}),
    ],
    ids=["unknown-brand", "unknown-operator", "currency-in-use"],
)
async def test_currency_cross_references(
    client: QuartClient,
    gateway: Services,
    config: None,
    platform: dict[str, str],
    body: dict[str, Any],
) -> None:
    details = await refused(
        client, gateway, "PUT", "/admin/currencies", body, platform, 422, "INVALID_REFERENCE"
    )
    at(details, "currencies")


async def test_put_and_get_currencies(
    client: QuartClient, config: None, platform: dict[str, str], admin: dict[str, str]
) -> None:
    body = currencies(brand_overrides={"demo:brand1": {"USD": "1.2"}})
    response = await client.put("/admin/currencies", json=body, headers=platform)
    assert response.status_code == 200
    stored = await response.get_json()
    assert stored["multipliers"] == {
        "EUR": "1",
        "USD": "1.08",
        "GBP": "0.86",
        "SEK": "11.4",
        "JPY": "162",
    }
    assert stored["brand_overrides"] == {"demo:brand1": {"USD": "1.2"}}
    assert await (await client.get("/admin/currencies", headers=platform)).get_json() == stored
    # The operator view sees the change at once (the writer's cache was invalidated).
    response = await client.get("/currencies/demo:brand1", headers=admin)
    assert (await response.get_json())["multipliers"]["USD"] == 1.2
    response = await client.get("/currencies/demo:brand2", headers=admin)
    assert (await response.get_json())["multipliers"]["USD"] == 1.08


# -- operators -------------------------------------------------------------------------
OPERATOR = {"id": "third", "name": "Third", "brands": ["b1", "b2"], "callback_secret": "x" * 16}
OPERATOR_RULES = [
    ("duplicate-brands", {**OPERATOR, "brands": ["b1", "b1"]}, ("brands",)),
    ("bad-id", {**OPERATOR, "id": "no:colons"}, ("id",)),
    ("bad-brand-id", {**OPERATOR, "brands": ["b 1"]}, ("brands", "0")),
    ("short-secret", {**OPERATOR, "callback_secret": "x" * 15}, ("callback_secret",)),
    ("unknown-field", {**OPERATOR, "country": "DE"}, ("country",)),
]


@FAKE_ONLY
@pytest.mark.parametrize(
    ("body", "path"),
    [(body, path) for _, body, path in OPERATOR_RULES],
    ids=[name for name, _, _ in OPERATOR_RULES],
)
async def test_operator_rules(
    client: QuartClient,
    gateway: Services,
    config: None,
    platform: dict[str, str],
    body: dict[str, Any],
    path: tuple[str, ...],
) -> None:
    details = await refused(
        client, gateway, "POST", "/admin/operators", body, platform, 400, "VALIDATION_ERROR"
    )
    at(details, *path)


async def test_put_operator(client: QuartClient, config: None, platform: dict[str, str]) -> None:
    response = await client.post("/admin/operators", json=OPERATOR, headers=platform)
    assert response.status_code == 200
    # The secret it was given is not echoed: secrets are write-only.
    assert await response.get_json() == {
        "id": "third",
        "name": "Third",
        "brands": ["b1", "b2"],
        "callback_secret_set": True,
    }
    listed = await (await client.get("/admin/operators", headers=platform)).get_json()
    assert sorted(operator["id"] for operator in listed) == ["demo", "provider", "rival", "third"]


async def test_callback_secrets_are_never_listed(
    client: QuartClient, config: None, platform: dict[str, str]
) -> None:
    await client.post("/admin/operators", json=OPERATOR, headers=platform)
    response = await client.get("/admin/operators", headers=platform)
    text = await response.get_data(as_text=True)
    assert 'callback_secret"' not in text and "x" * 16 not in text
    assert "demo-callback-secret" not in text  # examples/demo.yaml's, loaded by `config`
    secrets_set = {op["id"]: op["callback_secret_set"] for op in await response.get_json()}
    # The provider's own operator (examples/demo.yaml) receives no callbacks: no secret.
    assert secrets_set == {"demo": True, "rival": True, "third": True, "provider": False}


async def test_a_created_operator_without_a_secret_gets_one_shown_once(
    client: QuartClient, gateway: Services, config: None, platform: dict[str, str]
) -> None:
    body = {"id": "fourth", "brands": ["b1"]}
    created = await (await client.post("/admin/operators", json=body, headers=platform)).get_json()
    secret = created["callback_secret"]
    assert len(secret) >= 32 and created["callback_secret_set"] is True
    assert await gateway.contributions.callback_secret("fourth") == secret
    # A replace without a secret keeps it, and does not show it again.
    body = {"id": "fourth", "brands": ["b1", "b2"]}
    replaced = await (await client.post("/admin/operators", json=body, headers=platform)).get_json()
    assert "callback_secret" not in replaced
    assert await gateway.contributions.callback_secret("fourth") == secret


async def test_rotating_a_callback_secret(
    client: QuartClient, gateway: Services, config: None, admin: dict[str, str]
) -> None:
    before = await gateway.contributions.callback_secret("demo")
    response = await client.post("/admin/operators/demo/callback-secret", headers=admin)
    assert response.status_code == 200
    rotated = await response.get_json()
    assert rotated["operator_id"] == "demo" and rotated["callback_secret"] != before
    # Callbacks are signed with the new secret from now on.
    assert await gateway.contributions.callback_secret("demo") == rotated["callback_secret"]
    missing = await client.post("/admin/operators/ghost/callback-secret", headers=admin)
    assert (missing.status_code, (await missing.get_json())["code"]) == (
        404,
        "OPERATOR_NOT_FOUND",
    )


# -- sources ---------------------------------------------------------------------------
SOURCE = {
    "source_id": "book-of-ra",
    "owner_id": "demo:brand1",
    "source_name": "Book of Ra",
    "instance_ids": ["daily-drop"],
}


@FAKE_ONLY
@pytest.mark.parametrize(
    ("body", "code", "path"),
    [
        ({**SOURCE, "owner_id": "brand1"}, "VALIDATION_ERROR", ("owner_id",)),
        ({**SOURCE, "source_id": "a b"}, "VALIDATION_ERROR", ("source_id",)),
        ({**SOURCE, "source_name": ""}, "VALIDATION_ERROR", ("source_name",)),
        ({**SOURCE, "extra": 1}, "VALIDATION_ERROR", ("extra",)),
        ({**SOURCE, "owner_id": "demo:brand9"}, "INVALID_REFERENCE", ("sources.book-of-ra",)),
        ({**SOURCE, "owner_id": "rival:brand1"}, "INVALID_REFERENCE", ("sources.book-of-ra",)),
        (
            {**SOURCE, "instance_ids": ["daily-drop", "missing"]},
            "INVALID_REFERENCE",
            ("sources.book-of-ra",),
        ),
    ],
    ids=[
        "bare-owner",
        "bad-id",
        "empty-name",
        "unknown-field",
        "unknown-brand",
        "other-operators-brand",
        "unknown-instance",
    ],
)
async def test_source_rules(
    client: QuartClient,
    gateway: Services,
    config: None,
    platform: dict[str, str],
    body: dict[str, Any],
    code: str,
    path: tuple[str, ...],
) -> None:
    details = await refused(
        client, gateway, "POST", "/admin/sources", body, platform, status_of(code), code
    )
    at(details, *path)


async def test_put_and_delete_a_source(
    client: QuartClient, config: None, admin: dict[str, str]
) -> None:
    response = await client.post("/admin/sources", json=SOURCE, headers=admin)
    assert response.status_code == 200
    assert await response.get_json() == SOURCE
    listed = await (await client.get("/admin/sources", headers=admin)).get_json()
    assert sorted(source["source_id"] for source in listed) == [
        "book-of-ra",
        "sportsbook",
        "starburst",
    ]
    query = "/jackpots/sources?owner_id=demo:brand1&name=ra"
    assert await (await client.get(query, headers=admin)).get_json() == [SOURCE]
    # Re-binding replaces the instance list.
    rebound = {**SOURCE, "instance_ids": ["weekly-raffle"]}
    assert (await client.post("/admin/sources", json=rebound, headers=admin)).status_code == 200
    assert await (await client.get(query, headers=admin)).get_json() == [rebound]

    response = await client.delete("/admin/sources/demo:brand1/book-of-ra", headers=admin)
    assert response.status_code == 204
    assert await (await client.get(query, headers=admin)).get_json() == []
    response = await client.delete("/admin/sources/demo:brand1/book-of-ra", headers=admin)
    assert response.status_code == 404
    assert (await response.get_json())["code"] == "SOURCE_NOT_FOUND"


# -- accounts --------------------------------------------------------------------------
ACCOUNT = {
    "username": "rival-reporting",
    "password": "a-long-enough-password",
    "operator_id": "rival",
    "roles": ["operator"],
}


async def test_create_list_login_and_delete_an_account(
    client: QuartClient, config: None, platform: dict[str, str], gateway: Services
) -> None:
    response = await client.post("/admin/accounts", json=ACCOUNT, headers=platform)
    assert response.status_code == 201
    view = {"username": "rival-reporting", "operator_id": "rival", "roles": ["operator"]}
    assert await response.get_json() == view

    duplicate = await client.post("/admin/accounts", json=ACCOUNT, headers=platform)
    assert duplicate.status_code == 409
    assert (await duplicate.get_json())["code"] == "ACCOUNT_EXISTS"

    listing = await client.get("/admin/accounts", headers=platform)
    assert await listing.get_json() == [view]
    text = await listing.get_data(as_text=True)
    assert "password" not in text
    assert "argon2" not in text

    login = await client.post(
        "/authenticate/service",
        json={"username": ACCOUNT["username"], "password": ACCOUNT["password"]},
    )
    assert login.status_code == 200
    principal = gateway.tokens.verify((await login.get_json())["token"])
    assert principal == Principal("rival-reporting", "rival", ("operator",))

    response = await client.delete("/admin/accounts/rival-reporting", headers=platform)
    assert response.status_code == 204
    response = await client.delete("/admin/accounts/rival-reporting", headers=platform)
    assert response.status_code == 404
    assert (await response.get_json())["code"] == "ACCOUNT_NOT_FOUND"
    login = await client.post(
        "/authenticate/service",
        json={"username": ACCOUNT["username"], "password": ACCOUNT["password"]},
    )
    assert login.status_code == 401


@FAKE_ONLY
@pytest.mark.parametrize(
    ("body", "code", "path"),
    [
        ({**ACCOUNT, "password": "short"}, "VALIDATION_ERROR", ("password",)),
        ({**ACCOUNT, "roles": ["root"]}, "VALIDATION_ERROR", ("roles", "0")),
        ({**ACCOUNT, "roles": []}, "VALIDATION_ERROR", ("roles",)),
        ({**ACCOUNT, "username": "a b"}, "VALIDATION_ERROR", ("username",)),
        ({**ACCOUNT, "password_hash": "x"}, "VALIDATION_ERROR", ("password_hash",)),
        ({**ACCOUNT, "operator_id": "ghost"}, "INVALID_REFERENCE", ("operator_id",)),
    ],
    ids=["short-password", "bad-role", "no-roles", "bad-username", "hash-field", "unknown-op"],
)
async def test_account_rules(
    client: QuartClient,
    gateway: Services,
    config: None,
    platform: dict[str, str],
    body: dict[str, Any],
    code: str,
    path: tuple[str, ...],
) -> None:
    details = await refused(
        client, gateway, "POST", "/admin/accounts", body, platform, status_of(code), code
    )
    at(details, *path)


def _containers(value: Any) -> set[int]:
    if isinstance(value, dict):
        return {id(value)}.union(*(_containers(item) for item in value.values()))
    if isinstance(value, list):
        return {id(value)}.union(*(_containers(item) for item in value))
    return set()


def test_instance_rule_table_does_not_share_state() -> None:
    """The table is built once at import: no two cases may share a dict or list (a request that
    changed one body would change another case), and each case differs from the valid base."""
    seen: dict[int, str] = {}
    for name, body, _ in INSTANCE_RULES:
        for container in _containers(body):
            assert container not in seen, (name, seen.get(container))
            seen[container] = name
        assert body != instance(), name


async def test_concurrent_creation_of_one_instance_creates_it_once(
    client: QuartClient, config: None, admin: dict[str, str]
) -> None:
    responses = await asyncio.gather(
        *(client.post("/admin/instances", json=instance(), headers=admin) for _ in range(4))
    )
    assert sorted(response.status_code for response in responses) == [200, 200, 200, 201]
    ledger = await (await client.get("/admin/instances/test-jp/ledger", headers=admin)).get_json()
    assert [entry["type"] for entry in ledger["entries"]] == [
        "seed_funding",
        "seed_funding",
        "status",
    ]
