"""Helpers of the contribution API tests: instances built for a test through the admin API,
exact JSON, expected money computed from the documented rules, and Redis snapshots."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import Any

from quart.testing import QuartClient

from app import jsonio
from app.cli import read_definitions
from app.security import Principal
from app.services import Services
from tests.conftest import DEMO_FILE

DEMO = Principal("demo-service", "demo", ("admin", "operator"))
RIVAL = Principal("rival-service", "rival", ("operator",))
DEMO_SECRET = "demo-callback-secret-0123456789"  # examples/demo.yaml

MICRO = Decimal("0.000001")
# examples/demo.yaml: 1 EUR = m units; demo:brand2 overrides USD.
MULTIPLIERS = {
    "EUR": Decimal("1"),
    "USD": Decimal("1.08"),
    "GBP": Decimal("0.86"),
    "SEK": Decimal("11.4"),
    "JPY": Decimal("162"),
}
BRAND2_MULTIPLIERS = {**MULTIPLIERS, "USD": Decimal("1.10")}
DIGITS = {"JPY": 0}  # minor units; 2 when absent

# A MustDropBy far beyond anything a test contributes: a pot that never wins.
NEVER = {"MustDropBy": {"min": "1000000", "max": "2000000"}}


async def load_demo(gateway: Services) -> None:
    """The demo definitions without their accounts (tokens are issued directly: hashing
    passwords for every test would cost half a second each)."""
    definitions = read_definitions(DEMO_FILE)
    await gateway.admin.apply({**definitions, "accounts": []}, lambda name: None)


def auth(gateway: Services, principal: Principal) -> dict[str, str]:
    return {"Authorization": f"Bearer {gateway.tokens.issue(principal)}"}


# -- definitions ---------------------------------------------------------------------------
def hit_rate(magic: int, cost: str = "0.10") -> dict[str, Any]:
    return {"HitRate": {"max_magic_number": magic, "cost_per_attempt": cost}}


def must_drop(low: str, high: str) -> dict[str, Any]:
    return {"MustDropBy": {"min": low, "max": high}}


def pot(
    pot_id: str,
    share: str,
    trigger: dict[str, Any] | None = None,
    *,
    reserve: str = "0",
    seed: str = "0",
    max_value: str | None = None,
    progressive: bool = True,
) -> dict[str, Any]:
    return {
        "id": pot_id,
        "name": pot_id.title(),
        "is_progressive": progressive,
        "share": share,
        "reserve_share": reserve,
        "seed": seed,
        "max_value": max_value,
        "trigger": trigger or NEVER,
    }


def instance(instance_id: str, **fields: Any) -> dict[str, Any]:
    """An Active EUR Fixed 1.00 instance for demo's two brands, one pot taking 70%."""
    definition: dict[str, Any] = {
        "id": instance_id,
        "name": f"Test {instance_id}",
        "jackpot_type": "Jackpot",
        "currency": "EUR",
        "status": "Active",
        "opt_in_required": False,
        "contribution_type": {"Fixed": "1.00"},
        "allowed_brands": ["demo:brand1", "demo:brand2"],
        "house_share": "0.30",
        "pots": [pot("main", "0.70")],
    }
    definition.update(fields)
    return definition


async def create(
    client: QuartClient, headers: Mapping[str, str], definition: dict[str, Any]
) -> dict[str, Any]:
    response = await post(client, "/admin/instances", definition, headers)
    assert response.status_code == 201, await response.get_data(as_text=True)
    return definition


async def set_status(
    client: QuartClient, headers: Mapping[str, str], instance_id: str, action: str
) -> str:
    response = await client.post(f"/admin/instances/{instance_id}/{action}", headers=headers)
    assert response.status_code == 200, await response.get_data(as_text=True)
    return str((await exact_json(response))["status"])


POT_AMOUNTS = ("current_value", "reserve", "seed_deficit")


async def view(client: QuartClient, headers: Mapping[str, str], instance_id: str) -> dict[str, Any]:
    """GET /admin/instances/<id>: status, pots {id: {current_value, reserve, seed_deficit}} and
    totals, every amount as a Decimal."""
    response = await client.get(f"/admin/instances/{instance_id}", headers=headers)
    assert response.status_code == 200, await response.get_data(as_text=True)
    body = await exact_json(response)
    return {
        "status": body["status"],
        "pots": {
            p["id"]: {
                name: Decimal(p[name]) for name in ("current_value", "reserve", "seed_deficit")
            }
            for p in body["pots"]
        },
        "totals": {name: Decimal(value) for name, value in body["totals"].items()},
    }


# -- requests --------------------------------------------------------------------------------
def v1_body(instance_id: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "instance_id": instance_id,
        "token": "player-session-token",
        "brand_id": "demo:brand1",
        "player_id": "p1",
        "player_country": "DE",
        "gameround_id": "round-1",
        "base_wager": Decimal("2.00"),
        "currency": "EUR",
    }
    body.update(fields)
    return body


def source_body(source_id: str, **fields: Any) -> dict[str, Any]:
    body = v1_body("", source_id=source_id, **fields)
    del body["instance_id"]
    return body


def v2_body(target_id: str, target_type: str = "instance", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "target": {"type": target_type, "id": target_id},
        "source": {"id": "starburst", "gameround_id": "round-1"},
        "operator_id": "demo",
        "player": {"id": "p1", "brand_id": "brand1", "country": "DE"},
        "base_wager": {"value": Decimal("2.00"), "currency": "EUR"},
    }
    body.update(fields)
    return body


async def post(client: QuartClient, path: str, body: Any, headers: Mapping[str, str]) -> Any:
    """POST a JSON body written with exact decimals (a Decimal is sent as a JSON number)."""
    data = body if isinstance(body, str | bytes) else jsonio.dumps(body)
    return await client.post(
        path, data=data, headers={**headers, "Content-Type": "application/json"}
    )


async def exact_json(response: Any) -> Any:
    """The body with every JSON number with a fraction parsed as an exact Decimal."""
    return json.loads(await response.get_data(as_text=True), parse_float=Decimal)


async def error_of(response: Any) -> tuple[int, str, dict[str, Any]]:
    body = await exact_json(response)
    return response.status_code, body["code"], body["details"]


# -- expected money --------------------------------------------------------------------------
def micros(amount: Decimal | str) -> int:
    value = Decimal(amount) / MICRO
    assert value == value.to_integral_value(), amount
    return int(value)


def units(micro_units: int) -> Decimal:
    return Decimal(micro_units) * MICRO


def floor_micros(amount: Decimal) -> int:
    return int((amount / MICRO).to_integral_value(rounding=ROUND_DOWN))


def quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-DIGITS.get(currency, 2))


def to_player(
    micro_units: int, instance_currency: str, currency: str, rates: Mapping[str, Decimal]
) -> Decimal:
    """An instance amount shown to the player: converted, rounded half-even to minor units."""
    exact = units(micro_units) * rates[currency] / rates[instance_currency]
    return exact.quantize(quantum(currency), rounding=ROUND_HALF_EVEN)


def to_instance(
    amount: Decimal, currency: str, instance_currency: str, rates: Mapping[str, Decimal]
) -> int:
    """A player's amount entering the jackpot: converted, rounded down to micro-units."""
    return floor_micros(amount * rates[instance_currency] / rates[currency])


def floor_player(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(quantum(currency), rounding=ROUND_DOWN)


def ppm(share: str | Decimal) -> int:
    return micros(Decimal(share))


def split(amount: int, pots: list[dict[str, Any]]) -> tuple[dict[str, tuple[int, int]], int]:
    """Per pot (to value, to reserve) and the house's part, all micros: floor per pot share,
    floor of reserve_share of each part, the remainder to the house. (No max_value caps.)"""
    parts: dict[str, tuple[int, int]] = {}
    house = amount
    for p in pots:
        part = amount * ppm(p["share"]) // 1_000_000
        to_reserve = part * ppm(p.get("reserve_share") or "0") // 1_000_000
        if not p.get("is_progressive", True):
            to_reserve = part
        parts[p["id"]] = (part - to_reserve, to_reserve)
        house -= part
    return parts, house


# -- Redis -----------------------------------------------------------------------------------
async def snapshot(gateway: Services, instance_id: str) -> dict[str, Any]:
    """Every key of the instance's hash tag with its type, content and whether it expires."""
    client = gateway.store.client
    found: dict[str, Any] = {}
    async for key in client.scan_iter(match="{jp:" + instance_id + "}*", count=1000):
        kind = await client.type(key)
        if kind == "string":
            content: Any = await client.get(key)
        elif kind == "hash":
            content = await client.hgetall(key)
        elif kind == "list":
            content = await client.lrange(key, 0, -1)
        elif kind == "set":
            content = sorted(await client.smembers(key))
        elif kind == "zset":
            content = await client.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            content = await client.xrange(key)
        else:
            raise AssertionError(f"{key}: unexpected type {kind}")
        found[key] = (kind, content, await client.pttl(key) > 0)
    return found
