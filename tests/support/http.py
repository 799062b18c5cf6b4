"""Requests to the HTTP API and their answers read exactly: JSON bodies written and read with
exact decimals, the admin calls a test builds its instances with, and request bodies."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from quart.testing import QuartClient

from app.core import jsonio


# -- JSON, exactly ---------------------------------------------------------------------------
async def post(client: QuartClient, path: str, body: Any, headers: Mapping[str, str]) -> Any:
    """POST a JSON body written with exact decimals (a Decimal is sent as a JSON number)."""
    data = body if isinstance(body, str | bytes) else jsonio.dumps(body)
    return await client.post(
        path, data=data, headers={**headers, "Content-Type": "application/json"}
    )


async def exact_json(response: Any) -> Any:
    """The body with every JSON number with a fraction parsed as an exact Decimal (the test
    client's get_json would give floats)."""
    return json.loads(await response.get_data(as_text=True), parse_float=Decimal)


async def expect(response: Any, status: int, code: str | None = None) -> Any:
    """Assert the status (and the error code), return the body read exactly (None if empty)."""
    text = await response.get_data(as_text=True)
    assert response.status_code == status, text
    body: Any = json.loads(text, parse_float=Decimal) if text else None
    if code is not None:
        assert body is not None and body["code"] == code, body
    return body


async def error_of(response: Any) -> tuple[int, str, dict[str, Any]]:
    body = await exact_json(response)
    return response.status_code, body["code"], body["details"]


# -- admin -----------------------------------------------------------------------------------
async def create_instance(
    client: QuartClient, headers: Mapping[str, str], definition: dict[str, Any]
) -> dict[str, Any]:
    """POST /admin/instances; the definition, once created."""
    await expect(await post(client, "/admin/instances", definition, headers), 201)
    return definition


async def set_status(
    client: QuartClient, headers: Mapping[str, str], instance_id: str, action: str
) -> str:
    """POST /admin/instances/<id>/<action>; the new status."""
    response = await client.post(f"/admin/instances/{instance_id}/{action}", headers=headers)
    return str((await expect(response, 200))["status"])


async def put_source(
    client: QuartClient,
    headers: Mapping[str, str],
    source_id: str,
    instance_ids: list[str],
    *,
    owner_id: str = "demo:brand1",
    source_name: str | None = None,
) -> dict[str, Any]:
    body = {
        "source_id": source_id,
        "owner_id": owner_id,
        "source_name": source_name or source_id.title(),
        "instance_ids": instance_ids,
    }
    response = await client.post("/admin/sources", json=body, headers=headers)
    return await expect(response, 200)


POT_AMOUNTS = ("current_value", "reserve", "seed_deficit")


async def view(client: QuartClient, headers: Mapping[str, str], instance_id: str) -> dict[str, Any]:
    """GET /admin/instances/<id>: status, pots {id: {current_value, reserve, seed_deficit}} and
    totals, every amount as a Decimal."""
    response = await client.get(f"/admin/instances/{instance_id}", headers=headers)
    body = await expect(response, 200)
    return {
        "status": body["status"],
        "pots": {p["id"]: {name: Decimal(p[name]) for name in POT_AMOUNTS} for p in body["pots"]},
        "totals": {name: Decimal(value) for name, value in body["totals"].items()},
    }


# -- contribution requests -------------------------------------------------------------------
def v1_body(instance_id: str, **fields: Any) -> dict[str, Any]:
    """A v1 contribution of 2.00 EUR by p1 of demo:brand1 from DE, round `round-1`."""
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


def contribution(
    instance_id: str,
    player_id: str,
    *,
    brand_id: str = "demo:brand1",
    base_wager: str = "1.00",
    currency: str = "EUR",
    country: str = "DE",
) -> dict[str, Any]:
    """A v1 contribution body without a game round."""
    body = v1_body(
        instance_id,
        brand_id=brand_id,
        player_id=player_id,
        player_country=country,
        base_wager=base_wager,
        currency=currency,
    )
    del body["gameround_id"]
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


async def bet(
    client: QuartClient,
    headers: dict[str, str],
    instance_id: str,
    player: str,
    wager: str,
    brand: str = "demo:brand1",
) -> None:
    """A contribution of `wager` (base wager) by one player, which must succeed."""
    body = contribution(instance_id, player, brand_id=brand, base_wager=wager)
    await expect(await post(client, "/jackpots/contribute", body, headers), 200)
