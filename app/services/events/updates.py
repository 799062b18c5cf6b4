"""The JackpotUpdateEvent of an instance: its pots' values and status, read from its state.

An update is state, not history: the hub builds one per instance whose values or status
changed and sends it to every subscriber; a snapshot is the same event with `recent_wins`,
the instance's latest wins as `recent_win` lists them.
"""

from __future__ import annotations

from typing import Any

from app.core.money import format_amount, from_micros
from app.services.config import ConfigSnapshot
from app.store.wins import Winner


def recent_win(winner: Winner) -> dict[str, Any]:
    """A win as a snapshot lists it (amount in the jackpot's currency); masked per viewer by
    the JackpotUpdateEvent's declaration in MASKS."""
    return {
        "win_id": winner.win_id,
        "win_pot_id": winner.win_pot_id,
        "brand_id": f"{winner.operator_id}:{winner.brand_id}",
        "player_id": winner.player_id,
        "win_amount": format_amount(from_micros(winner.win_amount)),
        "currency": winner.currency,
        "timestamp": winner.timestamp,
        "win_withheld": winner.win_withheld,
        "source_id": winner.source_id,
    }


def update_data(
    config: ConfigSnapshot, definition: dict[str, Any], state: dict[str, str]
) -> dict[str, Any]:
    """The JackpotUpdateEvent data of an instance (all operators' brands and sources; each
    operator's view keeps its own); `last_updated` is set by the caller."""
    instance_id = definition["id"]
    ends = state.get("raffle:ends")
    return {
        "id": instance_id,
        "name": definition.get("name"),
        "jackpot_type": definition["jackpot_type"],
        "currency": definition["currency"],
        "pots": [
            {
                "id": pot["id"],
                "name": pot.get("name"),
                "is_progressive": pot["is_progressive"],
                "current_value": format_amount(
                    from_micros(int(state.get(f"pot:{pot['id']}:value") or 0))
                ),
            }
            for pot in definition["pots"]
        ],
        "allowed_brands": list(definition["allowed_brands"]),
        "allowed_sources": [
            {"source_id": s["source_id"], "owner_id": s["owner_id"]}
            for s in config.sources
            if instance_id in s["instance_ids"]
        ],
        "status": state.get("status"),
        "timestamp_start": _opt_int(state.get("timestamp_start")),
        "timestamp_end": _opt_int(state.get("timestamp_end")),
        # a raffle's open round ends (and is drawn) then: a page counts down to it
        "next_draw_at": int(ends) if definition.get("raffle") and ends else None,
        "last_updated": None,
    }


def _opt_int(raw: str | None) -> int | None:
    return int(raw) if raw else None
