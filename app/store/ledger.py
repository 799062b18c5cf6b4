"""The ledger's Redis side beyond its writes (which the money scripts make): reads by range,
the reconciliation checkpoint, the archived mark and the bounded trim.

An instance's books hash (keys.instance_books) holds:
  checkpoint_id      the ledger entry id the checkpoint is at
  checkpoint         the books replayed up to it (JSON, app/services/books.py Books.to_json)
  decision:<win id>  approved | rejected: the decisions the ledger holds up to the checkpoint,
                     for the win records still in Redis
  archived_id        the last ledger entry exported to the archive and verified
  archived_day       its UTC day (YYYY-MM-DD)
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from app.store import keys
from app.store.base import StoreBase
from app.store.script_table import MARK_ARCHIVED, READ_CHECKPOINT, SAVE_CHECKPOINT, TRIM_LEDGER


def _pairs(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


class LedgerStore(StoreBase):
    async def books_at_checkpoint(
        self, instance_id: str
    ) -> tuple[str, dict[str, str], dict[str, str]]:
        """(id of the latest ledger entry, the books hash, the state hash), read in one atomic
        step (lua/read_checkpoint-3.lua)."""
        reply = await self.script(
            READ_CHECKPOINT,
            [
                keys.instance_state(instance_id),
                keys.instance_ledger(instance_id),
                keys.instance_books(instance_id),
            ],
            [],
        )
        count = int(reply[1])
        books = list(reply[2 : 2 + 2 * count])
        state = list(reply[2 + 2 * count :])
        return str(reply[0]), _pairs(books), _pairs(state)

    async def books_hash(self, instance_id: str) -> dict[str, str]:
        return dict(await self.client.hgetall(keys.instance_books(instance_id)))

    async def save_checkpoint(
        self, instance_id: str, checkpoint_id: str, books_json: str, decisions: dict[str, str]
    ) -> bool:
        """Store the checkpoint unless one at the same entry or later is held."""
        flat = [part for pair in sorted(decisions.items()) for part in pair]
        stored = await self.script(
            SAVE_CHECKPOINT,
            [keys.instance_books(instance_id)],
            [checkpoint_id, books_json, *flat],
        )
        return bool(int(stored))

    async def mark_archived(self, instance_id: str, last_id: str, day: str) -> bool:
        stored = await self.script(
            MARK_ARCHIVED, [keys.instance_books(instance_id)], [last_id, day]
        )
        return bool(int(stored))

    async def trim_ledger(self, instance_id: str, until_id: str, limit: int) -> int:
        """Entries removed (at most `limit`) at or before `until_id` (lua/trim_ledger-2.lua)."""
        removed = await self.script(
            TRIM_LEDGER,
            [keys.instance_ledger(instance_id), keys.instance_books(instance_id)],
            [until_id, limit],
        )
        return int(removed)

    async def first_ledger_id(self, instance_id: str) -> str | None:
        entries = await self.client.xrange(keys.instance_ledger(instance_id), "-", "+", 1)
        return str(entries[0][0]) if entries else None

    async def ledger_range(
        self, instance_id: str, start: str, end: str, count: int
    ) -> list[tuple[str, dict[str, str]]]:
        """Up to `count` entries from `start` to `end` (XRANGE bounds: '-', '+', an id, or
        '(' before an id to exclude it)."""
        entries = await self.client.xrange(keys.instance_ledger(instance_id), start, end, count)
        return [(entry_id, fields) for entry_id, fields in entries]

    async def ledger_entries(
        self, instance_id: str, start: str, end: str, *, page: int = 1000
    ) -> AsyncIterator[tuple[str, dict[str, str]]]:
        """Every entry from `start` to `end` (XRANGE bounds), read page by page."""
        key = keys.instance_ledger(instance_id)
        while True:
            entries = await self.client.xrange(key, start, end, page)
            for entry in entries:
                yield entry
            if len(entries) < page:
                return
            start = f"({entries[-1][0]}"
