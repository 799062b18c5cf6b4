"""Callback deliveries that exhausted their retries, per operator, until redelivered."""

from __future__ import annotations

from typing import Any

from app.store import keys
from app.store.base import StoreBase, dumps, loads


class DeliveryStore(StoreBase):
    async def put_failed_delivery(self, operator_id: str, record: dict[str, Any]) -> None:
        await self.client.hset(
            keys.failed_deliveries(operator_id), record["delivery_id"], dumps(record)
        )

    async def failed_deliveries(self, operator_id: str) -> list[dict[str, Any]]:
        raw = await self.client.hgetall(keys.failed_deliveries(operator_id))
        return [loads(value) for value in raw.values()]

    async def take_failed_delivery(
        self, operator_id: str, delivery_id: str
    ) -> dict[str, Any] | None:
        """The record, removed; None when absent or taken by a concurrent caller (HDEL
        answers 1 to exactly one of them)."""
        key = keys.failed_deliveries(operator_id)
        record = loads(await self.client.hget(key, delivery_id))
        if record is None or not await self.client.hdel(key, delivery_id):
            return None
        return dict(record)
