"""What operators read about instances: the instance for a source (with live pots and the
player's opt-in), and the latest winners."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from app.core.money import from_micros
from app.core.security import Principal
from app.services.config import ConfigCache
from app.services.draws import round_view
from app.services.optins import status_view
from app.services.scope import resolve_brand
from app.services.targets import instance_definition, resolve_source_instance
from app.store import Store
from app.store.wins import Winner

MASKED_PLAYER = "***"


class InstanceService:
    def __init__(self, store: Store, config: ConfigCache) -> None:
        self._store = store
        self._config = config

    async def for_source(
        self,
        principal: Principal,
        source_id: str,
        brand: str,
        player_id: str,
        country: str,
        segments: list[str] | None,
    ) -> dict[str, Any]:
        config = await self._config.get()
        ref = resolve_brand(principal, brand, config)
        # A player who may play none of the source's instances gets the eligibility refusal
        # (403), as when contributing through the source.
        definition = resolve_source_instance(config, ref, source_id, country, segments)
        instance_id = definition["id"]
        state = (await self._store.states([instance_id])).get(instance_id, {})
        record = await self._store.optin(instance_id, ref.operator_id, ref.brand_id, player_id)
        view = {
            "id": instance_id,
            "name": definition["name"],
            "jackpot_type": definition["jackpot_type"],
            "currency": definition["currency"],
            "opt_in_required": definition["opt_in_required"],
            "contribution_type": {
                kind: Decimal(value) for kind, value in definition["contribution_type"].items()
            },
            "optin_status": status_view(record),
            "pots": [
                {
                    "id": pot["id"],
                    "name": pot["name"],
                    "is_progressive": pot["is_progressive"],
                    "current_value": from_micros(int(state.get(f"pot:{pot['id']}:value") or 0)),
                }
                for pot in definition["pots"]
            ],
            "timestamp_start": definition["timestamp_start"],
            "timestamp_end": definition["timestamp_end"],
            "status": state.get("status", config.statuses.get(instance_id)),
        }
        if definition["raffle"] is not None:
            view["raffle_round"] = round_view(state)
        return view

    async def winners(
        self, principal: Principal, instance_id: str, limit: int, brand: str | None
    ) -> list[dict[str, Any]]:
        config = await self._config.get()
        definition = instance_definition(config, instance_id, principal.operator_id)
        brand_path = None if brand is None else resolve_brand(principal, brand, config).path
        winners = await self._store.winners(instance_id, limit=limit, brand_path=brand_path)
        return [self._winner_view(principal, definition, winner) for winner in winners]

    async def pot_winners(
        self, principal: Principal, instance_id: str, limit: int, brand: str | None
    ) -> dict[str, list[dict[str, Any]]]:
        config = await self._config.get()
        definition = instance_definition(config, instance_id, principal.operator_id)
        brand_path = None if brand is None else resolve_brand(principal, brand, config).path
        pot_ids = [pot["id"] for pot in definition["pots"]]
        by_pot = await self._store.pot_winners(
            instance_id, pot_ids, limit=limit, brand_path=brand_path
        )
        return {
            pot_id: [self._winner_view(principal, definition, winner) for winner in winners]
            for pot_id, winners in by_pot.items()
        }

    @staticmethod
    def _winner_view(
        principal: Principal, definition: dict[str, Any], winner: Winner
    ) -> dict[str, Any]:
        return {
            "win_id": winner.win_id,
            "instance_id": winner.instance_id,
            "win_pot_id": winner.win_pot_id,
            "brand_id": f"{winner.operator_id}:{winner.brand_id}",
            # Other operators' players stay anonymous on shared instances.
            "player_id": winner.player_id
            if winner.operator_id == principal.operator_id
            else MASKED_PLAYER,
            "win_amount": from_micros(winner.win_amount),
            "currency": definition["currency"],
            "timestamp": winner.timestamp,
            "win_withheld": winner.win_withheld,
            "gameround_id": winner.gameround_id,
            "source_id": winner.source_id,
        }
