"""The audit trail: one stream per operator of the admin decisions that concern it."""

from __future__ import annotations

from collections.abc import Iterable

from app.store import keys
from app.store.base import StoreBase


class AuditStore(StoreBase):
    async def append_audit(self, operator_ids: Iterable[str], entry: dict[str, str]) -> None:
        """XADD the entry to the stream of each operator concerned (never trimmed)."""
        async with self.client.pipeline(transaction=False) as pipe:
            for operator_id in sorted(set(operator_ids)):
                pipe.xadd(keys.audit(operator_id), entry)
            await pipe.execute()

    async def audit(
        self, operator_id: str, *, after: str = "-", count: int = 100
    ) -> list[tuple[str, dict[str, str]]]:
        return await self.stream_page(keys.audit(operator_id), after, count)
