"""Helpers of the HTTP API tests (issue 4): exact JSON, instance definitions, the pot split
rule, Redis snapshots."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from argon2 import PasswordHasher
from quart.testing import QuartClient

from app import security
from app.services import Services

MICROS = 1_000_000


def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 with the smallest parameters: the demo accounts cost ~1 ms instead of ~0.7 s."""
    monkeypatch.setattr(
        security, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


async def read_json(response: Any) -> Any:
    """The body with exact decimals (the test client's get_json would give floats)."""
    return json.loads(await response.get_data(as_text=True), parse_float=Decimal)


async def expect(response: Any, status: int, code: str | None = None) -> Any:
    """Assert the status (and the error code), return the body."""
    text = await response.get_data(as_text=True)
    assert response.status_code == status, text
    body: Any = json.loads(text, parse_float=Decimal) if text else None
    if code is not None:
        assert body is not None and body["code"] == code, body
    return body


def pot(
    pot_id: str,
    *,
    share: str,
    seed: str = "0",
    reserve_share: str = "0",
    magic: int | None = None,
    max_value: str | None = None,
) -> dict[str, Any]:
    """A pot that never drops (MustDropBy far away) unless `magic` makes it a HitRate pot
    (magic 1: every contribution hits)."""
    trigger: dict[str, Any] = (
        {"MustDropBy": {"min": "100000", "max": "200000"}}
        if magic is None
        else {"HitRate": {"max_magic_number": magic, "cost_per_attempt": "0.10"}}
    )
    definition = {
        "id": pot_id,
        "name": pot_id.title(),
        "is_progressive": True,
        "share": share,
        "reserve_share": reserve_share,
        "seed": seed,
        "trigger": trigger,
    }
    if max_value is not None:
        definition["max_value"] = max_value
    return definition


DEFAULT_POTS = [
    pot("mini", share="0.25", seed="10", reserve_share="0.15"),
    pot("major", share="0.45", seed="1000.5", reserve_share="0.1"),
]


def instance(instance_id: str, **overrides: Any) -> dict[str, Any]:
    """An Active EUR Jackpot for demo:brand1 and demo:brand2 whose pots never drop."""
    definition: dict[str, Any] = {
        "id": instance_id,
        "name": f"Jackpot {instance_id}",
        "jackpot_type": "Jackpot",
        "currency": "EUR",
        "status": "Active",
        "opt_in_required": False,
        "contribution_type": {"Fixed": "0.10"},
        "allowed_brands": ["demo:brand1", "demo:brand2"],
        "house_share": "0.30",
        "pots": copy.deepcopy(DEFAULT_POTS),
    }
    definition.update(overrides)
    return definition


async def create_instance(
    client: QuartClient, headers: dict[str, str], definition: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post("/admin/instances", json=definition, headers=headers)
    return await expect(response, 201)


async def put_source(
    client: QuartClient,
    headers: dict[str, str],
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


async def set_status(
    client: QuartClient, headers: dict[str, str], instance_id: str, action: str
) -> None:
    response = await client.post(f"/admin/instances/{instance_id}/{action}", headers=headers)
    await expect(response, 200)


def micros(amount: Decimal | str | Fraction) -> int:
    """Exact micro-units; an amount finer than a micro-unit is a mistake in the test."""
    scaled = Fraction(amount) * MICROS
    assert scaled.denominator == 1, amount
    return int(scaled)


def units(amount_micros: int | Fraction) -> Decimal:
    value = Fraction(amount_micros) / MICROS
    assert (value * MICROS).denominator == 1
    return Decimal(value.numerator) / Decimal(value.denominator)


def pot_gain(amount_micros: int, definition: dict[str, Any]) -> int:
    """What one contribution adds to a progressive, uncapped pot's value (micros): the pot's
    part (floor of amount * share) minus its reserve part (floor of part * reserve_share)."""
    part = int(amount_micros * Fraction(definition["share"]))
    return part - int(part * Fraction(definition.get("reserve_share", "0")))


def convert_down(amount: Decimal | str, rate: Fraction) -> int:
    """An amount of one currency in micro-units of another, exactly, rounded down."""
    return int(Fraction(amount) * rate * MICROS)


async def snapshot(gateway: Services, *instance_ids: str) -> dict[str, Any]:
    """Every per-instance key (of these instances, or of all) with its type and content."""
    client = gateway.store.client
    state: dict[str, Any] = {}
    patterns = [f"{{jp:{i}}}*" for i in instance_ids] or ["{jp:*"]
    found = {key for pattern in patterns for key in await client.keys(pattern)}
    for key in sorted(found):
        kind = await client.type(key)
        if kind == "string":
            value: Any = await client.get(key)
        elif kind == "hash":
            value = await client.hgetall(key)
        elif kind == "list":
            value = await client.lrange(key, 0, -1)
        elif kind == "zset":
            value = await client.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            value = await client.xrange(key)
        elif kind == "set":
            value = sorted(await client.smembers(key))
        else:
            raise AssertionError(f"{key}: unexpected type {kind}")
        state[key] = (kind, value)
    assert state, "no instance keys: the snapshot would prove nothing"
    return state


def contribution(
    instance_id: str,
    player_id: str,
    *,
    brand_id: str = "demo:brand1",
    base_wager: str = "1.00",
    currency: str = "EUR",
    country: str = "DE",
) -> dict[str, Any]:
    """A v1 contribution request body."""
    return {
        "instance_id": instance_id,
        "token": "player-session-token",
        "brand_id": brand_id,
        "player_id": player_id,
        "player_country": country,
        "base_wager": base_wager,
        "currency": currency,
    }
