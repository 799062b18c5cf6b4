"""Instance and pot definitions (the admin API's shape) built for a test: the test names the
fields it cares about, the rest takes a documented default."""

from __future__ import annotations

from typing import Any

# A MustDropBy far beyond anything a test contributes: a pot that never wins.
NEVER = {"MustDropBy": {"min": "1000000", "max": "2000000"}}


def hit_rate(magic: int, cost: str = "0.10") -> dict[str, Any]:
    """A HitRate trigger; magic 1: every contribution hits."""
    return {"HitRate": {"max_magic_number": magic, "cost_per_attempt": cost}}


def must_drop(low: str, high: str) -> dict[str, Any]:
    return {"MustDropBy": {"min": low, "max": high}}


def pot(
    pot_id: str,
    share: str,
    trigger: dict[str, Any] | None = None,
    *,
    reserve_share: str = "0",
    seed: str = "0",
    max_value: str | None = None,
    progressive: bool = True,
) -> dict[str, Any]:
    """A pot that never drops (NEVER) unless given a trigger."""
    return {
        "id": pot_id,
        "name": pot_id.title(),
        "is_progressive": progressive,
        "share": share,
        "reserve_share": reserve_share,
        "seed": seed,
        "max_value": max_value,
        "trigger": trigger or NEVER,
    }


def seeded_pots() -> list[dict[str, Any]]:
    """mini and major: seeded, with reserve shares, never dropping (70% of a contribution)."""
    return [
        pot("mini", "0.25", seed="10", reserve_share="0.15"),
        pot("major", "0.45", seed="1000.5", reserve_share="0.1"),
    ]


def instance(
    instance_id: str,
    *,
    fixed: str = "1.00",
    pots: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """An Active EUR Jackpot for demo's two brands, contribution Fixed `fixed`, house 30%;
    its pots `pots`, by default one pot `main` taking 70%. Any other field overrides."""
    definition: dict[str, Any] = {
        "id": instance_id,
        "name": f"Jackpot {instance_id}",
        "jackpot_type": "Jackpot",
        "currency": "EUR",
        "status": "Active",
        "opt_in_required": False,
        "contribution_type": {"Fixed": fixed},
        "allowed_brands": ["demo:brand1", "demo:brand2"],
        "house_share": "0.30",
        "pots": [pot("main", "0.70")] if pots is None else pots,
    }
    definition.update(fields)
    return definition
