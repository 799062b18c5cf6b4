"""Raffle tickets and rounds.

Layout (written by lua/contribute-13.lua at award time; its header is the contract):
  `keys.instance_tickets(id)`  hash; every field is prefixed by its round `<r>|`:
      `<r>|<pk>|tickets|cost|first|last|idx`  a player's record of round r
      `<r>|n`, `<r>|total`                       players with a ticket, tickets
      `<r>|#<i>`                                 pk of Fenwick index i
      `<r>|@<i>`                                 Fenwick tree node i
  `keys.instance_ticket_ranking(id)`  lexicographic index, one member per player, order and
      scope: `<r %010d>|<t|e|p>|<b|o>|<scope>|...` (see order_members in the script)
The current round is the state field `raffle:round` (1 until the first draw closes it).
A drawn round is archived by lua/archive_round-5.lua in bounded steps: its snapshot copied to
`keys.instance_archived_tickets(id, r)` (a list), its '<r>|' fields and index members
removed, its record moved to `keys.instance_archived_round(id, r)`; both expire after the
configured retention.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from app.core.limits import WINNERS_CAP
from app.store import keys
from app.store.base import StoreBase
from app.store.contributions import _multipliers_json
from app.store.script_table import (
    ARCHIVE_ROUND,
    CLOSE_ROUND,
    DRAW_RAFFLE,
    OPEN_ROUND,
    READ_ROUND_TICKETS,
    RECORD_SNAPSHOT,
)

ROUND_FIELD = "raffle:round"
_TICKET_FIELDS = ("tickets", "cost", "first", "last")  # `<r>|<pk>|<name>` in the tickets hash
# `raffle:<name>` in state; `seed` only in a round opened before seeds were derived
_ROUND_FIELDS = (
    "round",
    "seed",
    "key",
    "commitment",
    "opened",
    "ends",
    "closed",
    "next_key",
    "next_commitment",
)
SNAPSHOT_CHUNK = 1000  # fields per HMGET when reading a round's tickets
Order = Literal["t", "e", "p"]  # ticket count, last contribution (timestamp_end), player id
ArchiveState = Literal["live", "copied", "archived", "none"]


def archived_line(index: int, line: str) -> tuple[int, str, int]:
    """(Fenwick index, player key, tickets) of an archived snapshot line at list position
    `index` (from 1): '<player key> <tickets>', or '<i> <player key> <tickets>' as rounds
    archived before the shorter lines kept it (a player key holds ':' before any space, so a
    first word of digits only is an index)."""
    first, _, rest = line.partition(" ")
    if first.isdigit() and rest:
        index, line = int(first), rest
    pk, _, held = line.rpartition(" ")
    return index, pk, int(held)


@dataclass(frozen=True)
class TicketRecord:
    """A player's raffle tickets in one round; accumulated_cost is the carried remainder
    (micros, below ticket_cost); timestamps are the first and last counted contribution of
    the round (epoch ms)."""

    instance_id: str
    round: int
    operator_id: str
    brand_id: str
    player_id: str
    ticket_count: int
    accumulated_cost: int
    timestamp_start: int
    timestamp_end: int


def _index_prefix(round_id: int, order: Order, operator_id: str, brand_id: str | None) -> str:
    scope = f"o|{operator_id}" if brand_id is None else f"b|{operator_id}:{brand_id}"
    return f"{round_id:010d}|{order}|{scope}|"


def _member_player(member: str, order: Order, operator_id: str, by_brand: bool) -> str:
    """The player key `<op>:<brand>:<player>` of an index member."""
    _, _, _, scope, rest = member.split("|", 4)
    if by_brand:
        player = rest.split("|", 1)[1] if order != "p" else rest
        return f"{scope}:{player}"
    if order == "p":
        player, _, brand = rest.rpartition("\0")
    else:
        brand, player = rest.split("|", 2)[1:]
    return f"{operator_id}:{brand}:{player}"


class RaffleStore(StoreBase):
    async def current_rounds(self, instance_ids: list[str]) -> dict[str, int]:
        """The open round of each instance, in one pipeline."""
        async with self.client.pipeline(transaction=False) as pipe:
            for instance_id in instance_ids:
                pipe.hget(keys.instance_state(instance_id), ROUND_FIELD)
            raws = await pipe.execute()
        return {i: int(raw or 1) for i, raw in zip(instance_ids, raws, strict=True)}

    async def player_tickets(
        self,
        instance_id: str,
        operator_id: str,
        brand_id: str,
        player_id: str,
        round_id: int | None = None,
    ) -> TicketRecord | None:
        """One player's record of a round (the open one by default), or None."""
        if round_id is None:
            round_id = (await self.current_rounds([instance_id]))[instance_id]
        pk = keys.player_key(operator_id, brand_id, player_id)
        return (await self._records(instance_id, round_id, [pk]))[0]

    async def players_tickets(
        self,
        rounds: Mapping[str, Sequence[int]],
        operator_id: str,
        brand_id: str,
        player_id: str,
    ) -> list[TicketRecord]:
        """One player's records in several instances and rounds (instance id -> rounds), one
        pipeline."""
        pk = keys.player_key(operator_id, brand_id, player_id)
        wanted = [(i, r) for i, instance_rounds in rounds.items() for r in instance_rounds]
        async with self.client.pipeline(transaction=False) as pipe:
            for instance_id, round_id in wanted:
                pipe.hmget(
                    keys.instance_tickets(instance_id),
                    [f"{round_id}|{pk}|{name}" for name in _TICKET_FIELDS],
                )
            raws = await pipe.execute()
        found = [
            _ticket_record(instance_id, round_id, pk, values)
            for (instance_id, round_id), values in zip(wanted, raws, strict=True)
        ]
        return [record for record in found if record is not None]

    async def ticket_page(
        self,
        instance_id: str,
        round_id: int,
        *,
        operator_id: str,
        brand_id: str | None,
        order: Order,
        descending: bool,
        offset: int,
        count: int,
    ) -> list[TicketRecord]:
        """Players of an operator (or one of its brands) holding a ticket in a round, ordered
        and paged through the lexicographic index: O(log n + offset + count)."""
        prefix = _index_prefix(round_id, order, operator_id, brand_id).encode()
        low, high = b"[" + prefix, b"[" + prefix + b"\xff"  # bytes: \xff is no UTF-8 text
        index = keys.instance_ticket_ranking(instance_id)
        if descending:
            members = await self.client.zrevrangebylex(index, high, low, offset, count)
        else:
            members = await self.client.zrangebylex(index, low, high, offset, count)
        pks = [_member_player(m, order, operator_id, brand_id is not None) for m in members]
        return [r for r in await self._records(instance_id, round_id, pks) if r is not None]

    # -- rounds and draws --------------------------------------------------------------------
    async def raffle_round(self, instance_id: str) -> dict[str, str | None]:
        """The open round: round, key (id), commitment, opened, ends, closed (the round, once
        its sales are sealed), next_key, next_commitment (the next round's), and seed (only
        a round opened before seeds were derived from the draw key)."""
        values = await self.client.hmget(
            keys.instance_state(instance_id), [f"raffle:{name}" for name in _ROUND_FIELDS]
        )
        return dict(zip(_ROUND_FIELDS, values, strict=True))

    async def open_round(
        self,
        instance_id: str,
        *,
        now_ms: int,
        key_id: str,
        commitment: str,
        ends: int | None,
        next_key: str = "",
        next_commitment: str = "",
        event_id: str,
        jackpot_name: str | None = None,
    ) -> bool:
        """Open round 1 (lua/open_round-5.lua); False when the raffle had a round."""
        opened = await self.script(
            OPEN_ROUND,
            [
                keys.instance_state(instance_id),
                keys.instance_ledger(instance_id),
                keys.instance_events(instance_id),
                keys.instance_channel(instance_id),
                keys.instance_events_epoch(instance_id),
            ],
            [
                now_ms,
                key_id,
                commitment,
                "" if ends is None else ends,
                next_key,
                next_commitment,
                event_id,
                jackpot_name or "",
                self.publish_mode,
                self.events_cap,
                instance_id,
            ],
        )
        return bool(opened)

    async def close_round(
        self, instance_id: str, round_id: int, *, now_ms: int, key_id: str = ""
    ) -> bool:
        """Seal a round's sales before its draw (lua/close_round-2.lua); `key_id` becomes the
        round's key when it has none."""
        return bool(
            await self.script(
                CLOSE_ROUND,
                [keys.instance_state(instance_id), keys.instance_engine(instance_id)],
                [now_ms, round_id, key_id],
            )
        )

    async def draw_raffle(
        self,
        instance_id: str,
        *,
        now_ms: int,
        round_id: int,
        seed: str,
        snapshot: str,
        tickets_total: int,
        picks: Sequence[tuple[int, int, int]],
        event_id: str,
        jackpot_name: str | None,
        currency_multipliers: Mapping[str, Decimal],
        next_key: str | None,
        next_commitment: str | None,
        next_ends: int | None,
        by: str,
        after_key: str | None = None,
        after_commitment: str | None = None,
        opened_event_id: str = "",
        publish: str | None = None,
        winners_cap: int = WINNERS_CAP,
    ) -> dict[str, Any]:
        """Draw the open round and open the next; see lua/draw_raffle-11.lua. `picks` are the
        winners in prize order: (random, target ticket, index)."""
        raw = await self.script(
            DRAW_RAFFLE,
            [
                keys.instance_engine(instance_id),
                keys.instance_state(instance_id),
                keys.instance_tickets(instance_id),
                keys.instance_ledger(instance_id),
                keys.instance_wins(instance_id),
                keys.instance_wins_index(instance_id),
                keys.instance_events(instance_id),
                keys.instance_channel(instance_id),
                keys.instance_raffle_rounds(instance_id),
                keys.instance_meter(instance_id),
                keys.instance_events_epoch(instance_id),
            ],
            [
                now_ms,
                round_id,
                seed,
                event_id,
                jackpot_name or "",
                _multipliers_json(currency_multipliers),
                winners_cap,
                publish or self.publish_mode,
                self.events_cap,
                next_commitment or "",
                next_key or "",
                "" if next_ends is None else next_ends,
                by,
                snapshot,
                tickets_total,
                after_commitment or "",
                after_key or "",
                opened_event_id,
                2,
                *(str(part) for pick in picks for part in pick),
            ],
        )
        return _round_record(raw)

    async def round_record(self, instance_id: str, round_id: int) -> dict[str, Any] | None:
        """A drawn round's record with its snapshot hash, live or archived (None until drawn,
        and once its archive expired)."""
        raw, snapshot = await self.client.hmget(
            keys.instance_raffle_rounds(instance_id), [str(round_id), f"{round_id}|snapshot"]
        )
        if raw is None:
            raw, snapshot = await self.client.hmget(
                keys.instance_archived_round(instance_id, round_id), ["record", "snapshot"]
            )
        if raw is None:
            return None
        record = _round_record(raw)
        return {**record, "snapshot_hash": snapshot or record.get("snapshot_hash")}

    async def archive_state(self, instance_id: str, round_id: int) -> ArchiveState:
        """Where a drawn round's tickets are read from: 'live' (the tickets hash, the copy
        not complete yet), 'copied' (being removed from the tickets hash: read the copy),
        'archived', or 'none' (not drawn, or expired)."""
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hmget(
                keys.instance_raffle_rounds(instance_id), [str(round_id), f"{round_id}|archive"]
            )
            pipe.exists(keys.instance_archived_round(instance_id, round_id))
            (record, progress), archived = await pipe.execute()
        if record is None:
            return "archived" if archived else "none"
        return "live" if progress in (None, "copy") else "copied"

    async def archive_round_step(
        self, instance_id: str, round_id: int, *, step: str, chunk: int, retention_ms: int
    ) -> tuple[str, int, int]:
        """One bounded step of lua/archive_round-5.lua: (phase, done, total)."""
        phase, done, total = await self.script(
            ARCHIVE_ROUND,
            [
                keys.instance_tickets(instance_id),
                keys.instance_ticket_ranking(instance_id),
                keys.instance_raffle_rounds(instance_id),
                keys.instance_archived_round(instance_id, round_id),
                keys.instance_archived_tickets(instance_id, round_id),
            ],
            [round_id, step, chunk, retention_ms],
        )
        return str(phase), int(done), int(total)

    async def round_tickets(self, instance_id: str, round_id: int) -> list[tuple[int, str, int]]:
        """(Fenwick index, player key, tickets) of every ticket holder of a round, in index
        order: O(players), read in chunks outside any script; from the round's archive once
        it is copied there."""
        if await self.archive_state(instance_id, round_id) in ("copied", "archived"):
            return await self.archived_tickets(instance_id, round_id)
        return await self.live_round_tickets(instance_id, round_id)

    async def drawn_round_tickets(
        self, instance_id: str, round_id: int, players: int
    ) -> list[tuple[int, str, int]]:
        """A drawn round's snapshot (`players` lines, from its record), the same whether it is
        live, being archived or archived: chunks of lua/read_round_tickets-2.lua. Reads
        only."""
        found: list[tuple[int, str, int]] = []
        while len(found) < players:
            lines = await self.script(
                READ_ROUND_TICKETS,
                [
                    keys.instance_tickets(instance_id),
                    keys.instance_archived_tickets(instance_id, round_id),
                ],
                [round_id, len(found) + 1, SNAPSHOT_CHUNK, players],
            )
            if not lines:
                break
            for line in lines:
                found.append(archived_line(len(found) + 1, line))
        return found

    async def archived_tickets(self, instance_id: str, round_id: int) -> list[tuple[int, str, int]]:
        """The round's archived ticket snapshot (as far as it is copied), in index order."""
        key = keys.instance_archived_tickets(instance_id, round_id)
        found: list[tuple[int, str, int]] = []
        while True:
            lines = await self.client.lrange(key, len(found), len(found) + SNAPSHOT_CHUNK - 1)
            for line in lines:
                found.append(archived_line(len(found) + 1, line))
            if len(lines) < SNAPSHOT_CHUNK:
                return found

    async def live_round_tickets(
        self, instance_id: str, round_id: int
    ) -> list[tuple[int, str, int]]:
        """The round's tickets from the tickets hash (the Fenwick index order)."""
        tickets_key = keys.instance_tickets(instance_id)
        count = int(await self.client.hget(tickets_key, f"{round_id}|n") or 0)
        found: list[tuple[int, str, int]] = []
        for start in range(1, count + 1, SNAPSHOT_CHUNK):
            indexes = list(range(start, min(start + SNAPSHOT_CHUNK, count + 1)))
            pks = await self.client.hmget(tickets_key, [f"{round_id}|#{i}" for i in indexes])
            held = await self.client.hmget(tickets_key, [f"{round_id}|{pk}|tickets" for pk in pks])
            found += [(i, pk, int(n)) for i, pk, n in zip(indexes, pks, held, strict=True)]
        return found

    async def record_snapshot(
        self, instance_id: str, round_id: int, snapshot_hash: str, *, now_ms: int
    ) -> bool:
        return bool(
            await self.script(
                RECORD_SNAPSHOT,
                [keys.instance_raffle_rounds(instance_id), keys.instance_ledger(instance_id)],
                [round_id, snapshot_hash, now_ms],
            )
        )

    async def _records(
        self, instance_id: str, round_id: int, pks: list[str]
    ) -> list[TicketRecord | None]:
        if not pks:
            return []
        fields = [f"{round_id}|{pk}|{name}" for pk in pks for name in _TICKET_FIELDS]
        values = await self.client.hmget(keys.instance_tickets(instance_id), fields)
        width = len(_TICKET_FIELDS)
        return [
            _ticket_record(instance_id, round_id, pk, values[width * i : width * (i + 1)])
            for i, pk in enumerate(pks)
        ]


def _ticket_record(
    instance_id: str, round_id: int, pk: str, values: list[str | None]
) -> TicketRecord | None:
    tickets, cost, first, last = values
    if first is None:  # no counted contribution in this round
        return None
    operator_id, brand_id, player_id = pk.split(":", 2)
    return TicketRecord(
        instance_id=instance_id,
        round=round_id,
        operator_id=operator_id,
        brand_id=brand_id,
        player_id=player_id,
        ticket_count=int(tickets or 0),
        accumulated_cost=int(cost or 0),
        timestamp_start=int(first),
        timestamp_end=int(last or first),
    )


def _round_record(raw: str) -> dict[str, Any]:
    """The draw script's record with its numbers as numbers and its blanks as nulls."""
    record: dict[str, Any] = json.loads(raw)
    for name in ("randoms", "targets", "winners", "unpaid_prizes"):
        record[name] = record.get(name) or []  # cjson writes an empty list as {}
    record["snapshot_version"] = record.get("snapshot_version") or 1
    for name in ("opened", "ends", "drawn_at"):
        record[name] = int(record[name]) if record.get(name) else None
    for name in ("prize_pot", "next_commitment", "key_id"):
        record[name] = record.get(name) or None
    return record
