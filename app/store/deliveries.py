"""Callback deliveries that exhausted their retries, per operator, until redelivered; the
headers callers gave their callbacks, until delivered."""

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

    async def hold_callback_headers(
        self, delivery_id: str, headers: dict[str, str], ttl_s: int
    ) -> bool:
        """Keep the headers of a delivery for `ttl_s` at most; True when some were already
        held (a delivery still pending), False when none were."""
        previous = await self.client.set(
            keys.callback_headers(delivery_id), dumps(headers), ex=ttl_s, get=True
        )
        return previous is not None

    async def held_callback_headers(self, delivery_id: str) -> dict[str, str]:
        return dict(loads(await self.client.get(keys.callback_headers(delivery_id))) or {})

    async def drop_callback_headers(self, delivery_id: str) -> None:
        await self.client.delete(keys.callback_headers(delivery_id))
