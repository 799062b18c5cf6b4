"""Raffles: the ticket views of operations 6, 7 and 8."""

from __future__ import annotations

from typing import Any

from app.clock import now_ms
from app.errors import APIError
from app.money import format_amount, from_micros
from app.security import Principal
from app.services.config import ConfigCache, ConfigSnapshot
from app.services.instances import visible_instance
from app.services.scope import resolve_brand
from app.store import Store
from app.store.raffles import Order, TicketRecord

SORT_ORDERS: dict[str, Order] = {"ticket_count": "t", "timestamp_end": "e", "player_id": "p"}


def ticket_view(record: TicketRecord) -> dict[str, Any]:
    return {
        "instance_id": record.instance_id,
        "brand_id": f"{record.operator_id}:{record.brand_id}",
        "player_id": record.player_id,
        "ticket_count": record.ticket_count,
        "accumulated_cost": format_amount(from_micros(record.accumulated_cost)),
        "timestamp_start": record.timestamp_start,
        "timestamp_end": record.timestamp_end,
    }


def raffle_instance(
    principal: Principal, config: ConfigSnapshot, instance_id: str
) -> dict[str, Any]:
    definition = visible_instance(principal, config, instance_id)
    if definition["raffle"] is None:
        raise APIError(404, "NOT_A_RAFFLE", f"Instance {instance_id} has no raffle.")
    return definition


class RaffleService:
    def __init__(self, store: Store, config: ConfigCache) -> None:
        self._store = store
        self._config = config

    async def round_tickets(
        self, principal: Principal, instance_id: str, query: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Operation 6: the caller's players (or one brand's) in the open round, sorted and
        paged through the ticket index; other operators' players are never listed."""
        config = await self._config.get()
        raffle_instance(principal, config, instance_id)
        operator_id, brand_id = principal.operator_id, None
        if query["brand_id"] is not None:
            ref = resolve_brand(principal, query["brand_id"], config)
            brand_id = ref.brand_id
        round_id = (await self._store.current_rounds([instance_id]))[instance_id]
        limit = query["limit"]
        records = await self._store.ticket_page(
            instance_id,
            round_id,
            operator_id=operator_id,
            brand_id=brand_id,
            order=SORT_ORDERS[query["sort_field"]],
            descending=query["sort_direction"] == -1,
            offset=(query["page"] - 1) * limit,
            count=limit,
        )
        return [ticket_view(record) for record in records]

    async def player_tickets(
        self, principal: Principal, instance_id: str, brand: str, player_id: str
    ) -> list[dict[str, Any]]:
        """Operation 7: one player's record in the open round (an empty list without one)."""
        config = await self._config.get()
        ref = resolve_brand(principal, brand, config)
        raffle_instance(principal, config, instance_id)
        record = await self._store.player_tickets(
            instance_id, ref.operator_id, ref.brand_id, player_id
        )
        return [] if record is None else [ticket_view(record)]

    async def active_tickets(
        self, principal: Principal, brand: str, player_id: str
    ) -> list[dict[str, Any]]:
        """Operation 8: the player's records in every raffle Active now that the brand plays."""
        config = await self._config.get()
        ref = resolve_brand(principal, brand, config)
        now = now_ms()
        ids = [
            instance_id
            for instance_id, definition in config.instances.items()
            if definition["raffle"] is not None
            and ref.path in definition["allowed_brands"]
            and config.statuses.get(instance_id) == "Active"
            and (definition["timestamp_start"] or 0) <= now
            and (definition["timestamp_end"] is None or now < definition["timestamp_end"])
        ]
        if not ids:
            return []
        rounds = await self._store.current_rounds(ids)
        records = await self._store.players_tickets(
            rounds, ref.operator_id, ref.brand_id, player_id
        )
        return [ticket_view(record) for record in records]
