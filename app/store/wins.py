"""Wins: each stored once, read through capped recent-id indexes.

The contribute script (and any script that pays a win) writes a win record once, into the
instance's wins hash (win id -> JSON; a decided record older than the ledger's retention and
no longer in the recent index moves to the ledger archive and leaves a tombstone,
lua/archive_wins-2.lua), and indexes its id under the groups of
`lua/includes/wins.lua`: the instance, the pot, the brand, the brand in the pot. Each group
keeps its latest `WINNERS_CAP` ids, so any brand's latest wins are there as long as it has
that many. Reading several groups (every pot of an instance) is one script call.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.core.limits import WINNERS_CAP
from app.store import keys
from app.store.base import StoreBase
from app.store.script_table import ARCHIVE_WINS, DECIDE_WIN, READ_WINS


def group(pot_id: str | None = None, brand_path: str | None = None) -> str:
    """The index group of includes/wins.lua for a pot and/or a brand ('<operator>:<brand>')."""
    if brand_path is None:
        return "i" if pot_id is None else f"p:{pot_id}"
    return f"b:{brand_path}" if pot_id is None else f"bp:{brand_path}:{pot_id}"


def is_tombstone(raw: str) -> bool:
    """A record moved to the ledger archive: 'archived <day> <operator> <state>'."""
    return raw.startswith("archived ")


@dataclass(frozen=True)
class Winner:
    """One win record (win_amount, seed, seed_deficit in micros of the instance currency)."""

    win_id: str
    contribution_id: str
    instance_id: str
    win_pot_id: str
    operator_id: str
    brand_id: str
    player_id: str
    win_amount: int
    currency: str
    timestamp: int
    win_withheld: bool
    gameround_id: str | None
    source_id: str | None
    seed: int
    seed_deficit: int

    @classmethod
    def from_json(cls, raw: str) -> Winner:
        data = json.loads(raw)
        return cls(
            win_id=data["win_id"],
            contribution_id=data["contribution_id"],
            instance_id=data["instance_id"],
            win_pot_id=data["win_pot_id"],
            operator_id=data["operator_id"],
            brand_id=data["brand_id"],
            player_id=data["player_id"],
            win_amount=int(data["win_amount"]),
            currency=data["currency"],
            timestamp=int(data["timestamp"]),
            win_withheld=bool(data["win_withheld"]),
            gameround_id=data["gameround_id"],
            source_id=data["source_id"],
            seed=int(data["seed"]),
            seed_deficit=int(data["seed_deficit"]),
        )


class WinStore(StoreBase):
    async def winners(
        self,
        instance_id: str,
        pot_id: str | None = None,
        *,
        limit: int = WINNERS_CAP,
        brand_path: str | None = None,
    ) -> list[Winner]:
        """Latest wins, newest first, of the instance or of one pot, optionally of one brand."""
        return (await self._read(instance_id, [group(pot_id, brand_path)], limit))[0]

    async def pot_winners(
        self,
        instance_id: str,
        pot_ids: Sequence[str],
        *,
        limit: int = WINNERS_CAP,
        brand_path: str | None = None,
    ) -> dict[str, list[Winner]]:
        """Latest wins of each pot (pot id -> wins), in one round trip."""
        lists = await self._read(instance_id, [group(p, brand_path) for p in pot_ids], limit)
        return dict(zip(pot_ids, lists, strict=True))

    async def pot_win_records(
        self, instance_id: str, pot_ids: Sequence[str], *, limit: int = WINNERS_CAP
    ) -> dict[str, list[dict[str, Any]]]:
        """The latest win records of each pot as stored (JSON objects, newest first, with
        any decision), in one round trip."""
        if not pot_ids:
            return {}
        reply = await self.script(
            READ_WINS,
            [keys.instance_wins(instance_id), keys.instance_wins_index(instance_id)],
            [min(limit, WINNERS_CAP), *(group(p) for p in pot_ids)],
        )
        return {
            pot_id: [json.loads(raw) for raw in records if raw]
            for pot_id, records in zip(pot_ids, reply, strict=True)
        }

    async def win(self, instance_id: str, win_id: str) -> Winner | None:
        """The win record; None when there is none, or when it moved to the ledger archive
        (see `archived_win_day`)."""
        raw = await self.client.hget(keys.instance_wins(instance_id), win_id)
        return None if raw is None or is_tombstone(raw) else Winner.from_json(raw)

    async def archived_win_day(self, instance_id: str, win_id: str) -> str | None:
        """The day whose wins file in the ledger archive holds the record, if it moved."""
        raw = await self.client.hget(keys.instance_wins(instance_id), win_id)
        return raw.split(" ")[1] if raw is not None and is_tombstone(raw) else None

    async def win_records(self, instance_id: str) -> dict[str, str]:
        """Every win record of the instance as stored (win id -> JSON text, or the tombstone
        of a record moved to the archive), for a reconciliation and the archive: a scan of
        its wins, which are rare next to contributions."""
        found: dict[str, str] = {}
        async for win_id, raw in self.client.hscan_iter(keys.instance_wins(instance_id), count=500):
            found[win_id] = raw
        return found

    async def recent_win_ids(self, instance_id: str) -> set[str]:
        """The win ids the recent-wins index holds (capped per group): records kept."""
        members = await self.client.zrange(keys.instance_wins_index(instance_id), 0, -1)
        return {member.rsplit("|", 1)[-1] for member in members}

    async def archive_wins(self, instance_id: str, day: str, win_ids: list[str]) -> int:
        """Replace decided records by tombstones (lua/archive_wins-2.lua); how many."""
        replaced = 0
        for start in range(0, len(win_ids), 500):
            replaced += int(
                await self.script(
                    ARCHIVE_WINS,
                    [keys.instance_wins(instance_id), keys.instance_books(instance_id)],
                    [day, *win_ids[start : start + 500]],
                )
            )
        return replaced

    async def withheld_wins(self, instance_id: str) -> list[dict[str, Any]]:
        """The instance's win records still waiting for a decision (a scan of its wins: wins
        are rare next to contributions, and this is an admin's read)."""
        found = []
        async for _, raw in self.client.hscan_iter(keys.instance_wins(instance_id), count=500):
            if is_tombstone(raw):  # decided (or paid), and moved to the archive
                continue
            record = json.loads(raw)
            if record.get("win_withheld") and not record.get("decision"):
                found.append(record)
        return found

    async def decide_win(
        self,
        instance_id: str,
        win_id: str,
        *,
        decision: str,
        reason: str,
        by: str,
        operator_id: str,
        event_id: str,
        now_ms: int,
    ) -> dict[str, Any]:
        """The win record after the decision (lua/decide_win-7.lua)."""
        raw = await self.script(
            DECIDE_WIN,
            [
                keys.instance_state(instance_id),
                keys.instance_ledger(instance_id),
                keys.instance_wins(instance_id),
                keys.instance_events(instance_id),
                keys.instance_channel(instance_id),
                keys.instance_meter(instance_id),
                keys.instance_events_epoch(instance_id),
            ],
            [
                now_ms,
                win_id,
                decision,
                reason,
                by,
                operator_id,
                event_id,
                self.events_cap,
                self.publish_mode,
            ],
        )
        return dict(json.loads(raw))

    async def _read(self, instance_id: str, groups: list[str], limit: int) -> list[list[Winner]]:
        if not groups:
            return []
        if limit <= 0:
            return [[] for _ in groups]
        reply = await self.script(
            READ_WINS,
            [keys.instance_wins(instance_id), keys.instance_wins_index(instance_id)],
            [min(limit, WINNERS_CAP), *groups],
        )
        return [[Winner.from_json(raw) for raw in records if raw] for records in reply]
