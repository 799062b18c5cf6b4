"""Raffles: the ticket views of operations 6, 7 and 8; rounds, verifiable draws."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from app.core.clock import now_ms
from app.core.metrics import Metrics
from app.core.money import format_amount, from_micros
from app.core.refusals import Code, Refused
from app.core.security import Principal
from app.schemas.events import MASKED_PLAYER
from app.services.canonical import from_storage
from app.services.config import ConfigCache, ConfigSnapshot
from app.services.draws import (
    DAY_MS,
    DrawKeys,
    Postponed,
    UnknownDrawKey,
    commitment,
    draw_winners,
    player_commit,
    round_end,
    salted_lines,
    snapshot_hash,
)
from app.services.scope import resolve_brand
from app.services.targets import instance_definition
from app.store import ScriptRefusal, Store
from app.store.raffles import Order, TicketRecord

SORT_ORDERS: dict[str, Order] = {"ticket_count": "t", "timestamp_end": "e", "player_id": "p"}
DEFAULT_ROUND_RETENTION_MS = 90 * DAY_MS
ARCHIVE_CHUNK = 500  # players copied, hash entries scanned or index members removed per step
PAUSED_RETRY_MS = 60_000  # a paused raffle's due draw is tried again every minute

log = logging.getLogger("jackpot_gateway.raffles")


def ticket_view(record: TicketRecord) -> dict[str, Any]:
    return {
        "instance_id": record.instance_id,
        "round": record.round,
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
    definition = instance_definition(config, instance_id, principal.operator_id)
    if definition["raffle"] is None:
        raise Refused(Code.NOT_A_RAFFLE, f"Instance {instance_id} has no raffle.")
    return definition


def draw_refusal(instance_id: str, refusal: ScriptRefusal) -> Refused:
    if refusal.code is Code.INSTANCE_NOT_FOUND:
        return Refused(Code.INSTANCE_NOT_FOUND, f"Instance {instance_id} does not exist.")
    if refusal.code is Code.NOT_A_RAFFLE:
        return Refused(Code.NOT_A_RAFFLE, f"Instance {instance_id} has no raffle.")
    if refusal.code is Code.ROUND_NOT_CLOSED:
        return Refused(Code.ROUND_NOT_CLOSED, f"The round is still open: {refusal.detail}.")
    if refusal.code is Code.ROUND_MISMATCH:
        return Refused(Code.ROUND_ALREADY_DRAWN, f"The round was drawn: {refusal.detail}.")
    raise refusal


def _recurring(definition: dict[str, Any], status: str | None, now: int) -> bool:
    """Whether a draw now opens a next round."""
    end = definition["timestamp_end"]
    return (
        definition["raffle"]["draw"].get("at") != "end"
        and status != "Terminated"
        and (end is None or now < end)
    )


def mask_round(record: dict[str, Any], operator_id: str) -> dict[str, Any]:
    """The round without who drew it and with other operators' player ids as `***` (their
    operator and brand stay, as in a RaffleWinEvent), and their lines' salts left out: their
    `player_commit` stays, so the operator checks the snapshot hash over every line."""
    masked = {name: value for name, value in record.items() if name != "by"}
    if "winners" in record:
        masked["winners"] = [
            w if w["operator_id"] == operator_id else {**w, "player_id": MASKED_PLAYER}
            for w in record["winners"]
        ]
    if "tickets" in record:
        masked["tickets"] = [
            t
            if t["player_key"].split(":", 1)[0] == operator_id
            else {**t, "player_key": _masked_key(t["player_key"]), "salt": None}
            for t in record["tickets"]
        ]
    return masked


def _masked_key(player_key: str) -> str:
    operator_id, brand_id, _ = player_key.split(":", 2)
    return f"{operator_id}:{brand_id}:{MASKED_PLAYER}"


class RaffleService:
    def __init__(
        self,
        store: Store,
        config: ConfigCache,
        draw_keys: DrawKeys,
        *,
        round_retention_ms: int = DEFAULT_ROUND_RETENTION_MS,
        archive_chunk: int = ARCHIVE_CHUNK,
    ) -> None:
        self._store = store
        self._config = config
        self.draw_keys = draw_keys
        self.metrics: Metrics | None = None  # the draw delay histogram (Services sets it)
        self.round_retention_ms = round_retention_ms
        self.archive_chunk = archive_chunk

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
        """Operation 7: one player's records in the rounds not drawn yet: the open round, and
        the next one, which sells once the open round's sales closed at its end (an empty
        list without any)."""
        config = await self._config.get()
        ref = resolve_brand(principal, brand, config)
        raffle_instance(principal, config, instance_id)
        round_id = (await self._store.current_rounds([instance_id]))[instance_id]
        records = await self._store.players_tickets(
            {instance_id: (round_id, round_id + 1)}, ref.operator_id, ref.brand_id, player_id
        )
        return [ticket_view(record) for record in records]

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
            {i: (r, r + 1) for i, r in rounds.items()}, ref.operator_id, ref.brand_id, player_id
        )
        return [ticket_view(record) for record in records]

    # -- rounds and draws ------------------------------------------------------------------
    async def open_first_round(self, definition: dict[str, Any], now: int) -> None:
        """Publish round 1's commitment and round 2's, and schedule round 1's draw (instance
        creation). The seeds stay with the processes (derived from the draw key)."""
        raffle = definition["raffle"]
        start = definition["timestamp_start"] or now
        ends = round_end(raffle["draw"], definition, start, now)
        instance_id = definition["id"]
        key_id, first = self.draw_keys.commitment(instance_id, 1)
        next_key, second = "", ""
        if raffle["draw"].get("at") != "end":
            next_key, second = self.draw_keys.commitment(instance_id, 2)
        opened = await self._store.open_round(
            instance_id,
            now_ms=now,
            key_id=key_id,
            commitment=first,
            ends=ends,
            next_key=next_key,
            next_commitment=second,
            event_id=str(uuid.uuid4()),
            jackpot_name=definition["name"],
        )
        if opened and ends is not None:
            await self._store.schedule("draw", f"{instance_id}@1", ends)

    def _seed(self, instance_id: str, round_id: int, state: dict[str, str | None]) -> str:
        """The round's seed: derived from the key it was committed under (a round opened
        before seeds were derived kept its seed in the state), checked against its
        commitment."""
        seed = state["seed"] or self.draw_keys.seed(instance_id, round_id, state["key"])
        if commitment(seed) != state["commitment"]:
            raise RuntimeError(f"the seed of {instance_id} round {round_id} breaks its commitment")
        return seed

    async def draw(
        self, instance_id: str, by: str, *, expected_round: int | None = None
    ) -> dict[str, Any] | None:
        """Draw the open round now and open the next (a recurring raffle); None when
        `expected_round` is given and is no longer open (someone drew it already).

        The round's sales are sealed first (lua/close_round-2.lua: later tickets go to the
        next round), its tickets read and hashed (the snapshot), the winners computed from
        the seed and the snapshot hash (app/services/draws.py), and the draw script checks
        them against the round's tree as it pays the prizes, atomically."""
        definition = await self._raffle_definition(instance_id)
        raffle = definition["raffle"]
        now = now_ms()
        state = await self._store.raffle_round(instance_id)
        if state["round"] is None:  # created before rounds were committed
            await self.open_first_round(definition, now)
            state = await self._store.raffle_round(instance_id)
        round_id = int(state["round"] or 1)
        if expected_round is not None and expected_round != round_id:
            return None
        if not state["commitment"]:
            raise Refused(Code.NO_OPEN_ROUND, f"Instance {instance_id} has no open round.")
        status = (await self._store.statuses([instance_id])).get(instance_id)
        if status == "Paused":  # a pause holds the draw too, until the raffle is resumed
            raise Refused(
                Code.INSTANCE_NOT_ACTIVE,
                f"Instance {instance_id} is paused: its round is drawn once it is resumed.",
            )
        seed = self._seed(instance_id, round_id, state)
        key = state["key"] or self.draw_keys.current_id  # a round opened before keys had ids
        try:
            await self._store.close_round(instance_id, round_id, now_ms=now, key_id=key)
        except ScriptRefusal as refusal:
            if refusal.code is Code.ROUND_MISMATCH and expected_round is not None:
                return None
            raise draw_refusal(instance_id, refusal) from None
        tickets = await self._store.live_round_tickets(instance_id, round_id)
        digest = snapshot_hash(
            salted_lines(tickets, lambda pk: self.draw_keys.salt(key, instance_id, round_id, pk))
        )
        picks = draw_winners(seed, instance_id, round_id, digest, tickets, len(raffle["prizes"]))
        next_key = next_commitment = next_ends = after_key = after_commitment = None
        if _recurring(definition, status, now):
            previous_end = int(state["ends"] or now)
            next_ends = round_end(raffle["draw"], definition, previous_end, now)
            end = definition["timestamp_end"]
            if end is not None and next_ends is not None:
                next_ends = min(next_ends, end)
            if state["next_commitment"]:  # published when this round opened
                next_key, next_commitment = state["next_key"], state["next_commitment"]
            else:  # a round opened before the next commitment was published with it
                next_key, next_commitment = self.draw_keys.commitment(instance_id, round_id + 1)
            after_key, after_commitment = self.draw_keys.commitment(instance_id, round_id + 2)
        config = await self._config.get()
        try:
            await self._store.draw_raffle(
                instance_id,
                now_ms=now,
                round_id=round_id,
                seed=seed,
                snapshot=digest,
                tickets_total=sum(held for _, _, held in tickets),
                picks=[(p.random, p.target, p.index) for p in picks],
                event_id=str(uuid.uuid4()),
                jackpot_name=definition["name"],
                currency_multipliers=config.multipliers(),
                next_key=next_key,
                next_commitment=next_commitment,
                next_ends=next_ends,
                after_key=after_key,
                after_commitment=after_commitment,
                opened_event_id=str(uuid.uuid4()),
                by=by,
            )
        except ScriptRefusal as refusal:
            if refusal.code is Code.ROUND_MISMATCH and expected_round is not None:
                return None
            raise draw_refusal(instance_id, refusal) from None
        if next_ends is not None:
            await self._store.schedule("draw", f"{instance_id}@{round_id + 1}", next_ends)
        if status == "Terminated":  # its last round: now its pots close (set_status-6.lua)
            await self._store.set_status(instance_id, "close", now_ms=now, by=by)
        return await self.round(instance_id, round_id, with_tickets=False)

    async def operator_round(
        self, principal: Principal, instance_id: str, round_id: int
    ) -> dict[str, Any]:
        """A round of a raffle the caller's brands play, with other operators' players
        masked as the event stream masks them; everything else as published to admins."""
        config = await self._config.get()
        raffle_instance(principal, config, instance_id)
        return mask_round(await self.round(instance_id, round_id), principal.operator_id)

    async def _raffle_definition(self, instance_id: str) -> dict[str, Any]:
        """The stored definition (fresher than the cache: the admin API just wrote it)."""
        stored = (await self._store.definitions([instance_id])).get(instance_id)
        definition = None if stored is None else from_storage(stored)
        if definition is None:
            raise Refused(Code.INSTANCE_NOT_FOUND, f"Instance {instance_id} does not exist.")
        if definition["raffle"] is None:
            raise Refused(Code.NOT_A_RAFFLE, f"Instance {instance_id} has no raffle.")
        return definition

    async def run_scheduled_draw(self, target: str) -> None:
        """The scheduler's `draw` item: `<instance_id>@<round>`: the round drawn (unless it
        was already), with one log line (instance, round, winners, delay after the round's
        end) and the delay metric; then its archive is due, as an item of its own (a long
        archive holds up no draw)."""
        instance_id, _, round_text = target.rpartition("@")
        round_id = int(round_text)
        state = await self._store.raffle_round(instance_id)
        try:
            record = await self.draw(instance_id, "scheduler", expected_round=round_id)
        except Refused as refused:
            if refused.code is Code.INSTANCE_NOT_ACTIVE:  # paused: checked again later
                raise Postponed(now_ms() + PAUSED_RETRY_MS, refused.message) from None
            raise
        if record is None:
            # Drawn already (by hand, or by a scheduler that stopped before scheduling the
            # next round): make sure the open round's draw is due.
            state = await self._store.raffle_round(instance_id)
            if state["round"] and state["commitment"] and state["ends"]:
                due = int(state["ends"])
                await self._store.schedule(
                    "draw", f"{instance_id}@{state['round']}", due, only_new=True
                )
        else:
            ends = int(state["ends"] or record["drawn_at"])
            delay_ms = max(0, int(record["drawn_at"]) - ends)
            if self.metrics is not None:
                self.metrics.draw_delay.observe(delay_ms / 1000)
            log.info(
                "raffle %s round %s drawn %s ms after its end: %s winner(s) %s",
                instance_id,
                round_id,
                delay_ms,
                len(record["winners"]),
                ", ".join(
                    f"{w['operator_id']}:{w['brand_id']}:{w['player_id']}"
                    for w in record["winners"]
                ),
                extra={
                    "instance_id": instance_id,
                    "round": round_id,
                    "winners": len(record["winners"]),
                    "delay_ms": delay_ms,
                },
            )
        await self._store.schedule("archive", target, now_ms(), only_new=True)

    async def run_scheduled_archive(self, target: str) -> None:
        """The scheduler's `archive` item: `<instance_id>@<round>`, a drawn round archived
        in bounded steps (resumed where a stopped scheduler left it)."""
        instance_id, _, round_text = target.rpartition("@")
        await self.archive_round(instance_id, int(round_text))

    async def archive_round(self, instance_id: str, round_id: int) -> bool:
        """Move a drawn round out of the live ticket data in bounded steps: its snapshot to a
        compact list (checked against the recorded snapshot hash before anything is
        removed), its ticket fields and index members deleted, its record kept with the list
        until the retention ends. True when the round is archived (or already was); False
        when it is not drawn, or its copy does not match its hash (then nothing is removed)."""
        state = await self._store.archive_state(instance_id, round_id)
        if state == "archived":
            return True
        if state == "none":
            return False
        record = await self._store.round_record(instance_id, round_id)
        if record is not None and record["snapshot_hash"] is None:
            await self._snapshot(instance_id, round_id)  # the drawing process stopped first
            record = await self._store.round_record(instance_id, round_id)
        if record is None:
            return False
        while True:
            phase, _, _ = await self._archive_step(instance_id, round_id, "copy")
            if phase != "copying":
                break
        if phase == "copied":
            tickets = await self._store.archived_tickets(instance_id, round_id)
            if self._snapshot_of(instance_id, record, tickets) != record["snapshot_hash"]:
                log.error(
                    "raffle %s round %s: the archived tickets do not match the snapshot "
                    "hash; the live tickets are kept",
                    instance_id,
                    round_id,
                )
                return False
        while phase != "archived":
            phase, _, _ = await self._archive_step(instance_id, round_id, "clear")
        return True

    async def _archive_step(
        self, instance_id: str, round_id: int, step: str
    ) -> tuple[str, int, int]:
        return await self._store.archive_round_step(
            instance_id,
            round_id,
            step=step,
            chunk=self.archive_chunk,
            retention_ms=self.round_retention_ms,
        )

    async def _snapshot(self, instance_id: str, round_id: int) -> str:
        tickets = await self._store.round_tickets(instance_id, round_id)
        digest = snapshot_hash(tickets)
        await self._store.record_snapshot(instance_id, round_id, digest, now_ms=now_ms())
        return digest

    async def round(
        self, instance_id: str, round_id: int, *, with_tickets: bool = True
    ) -> dict[str, Any]:
        """A drawn round with everything needed to recompute its winners (seed, randoms,
        ticket snapshot and its hash), or an open round's commitment. Reads only, and reads
        the same while the round is archived."""
        await self._raffle_definition(instance_id)
        record = await self._store.round_record(instance_id, round_id)
        if record is None:
            state = await self._store.raffle_round(instance_id)
            if state["round"] is None or int(state["round"]) != round_id:
                raise Refused(
                    Code.ROUND_NOT_FOUND, f"Instance {instance_id} has no round {round_id}."
                )
            return {
                "round": round_id,
                "status": "open",
                "commitment": state["commitment"],
                "opened": int(state["opened"] or 0),
                "ends": None if not state["ends"] else int(state["ends"]),
            }
        record["status"] = "drawn"
        if not with_tickets and record["snapshot_hash"] is not None:
            return record
        tickets = await self._store.drawn_round_tickets(
            instance_id, round_id, int(record["players"] or 0)
        )
        if record["snapshot_hash"] is None:  # drawn before the draw hashed its snapshot
            record["snapshot_hash"] = snapshot_hash(tickets)
        if with_tickets:
            salt = self._salts(instance_id, record)
            lines = []
            for index, pk, count in tickets:
                line: dict[str, Any] = {"index": index, "player_key": pk, "tickets": count}
                if record["snapshot_version"] >= 2:
                    line["salt"] = salt(pk) if salt else None
                    line["player_commit"] = player_commit(pk, line["salt"]) if salt else None
                lines.append(line)
            record["tickets"] = lines
        return record

    def _salts(self, instance_id: str, record: dict[str, Any]) -> Callable[[str], str] | None:
        """The salts of a version 2 snapshot's lines (None when its key is no longer
        configured: keep a rotated key in DRAW_KEY_PREVIOUS for the rounds' retention)."""
        key, round_id = record.get("key_id") or "", int(record["round"])
        try:
            self.draw_keys.salt(key, instance_id, round_id, "")
        except UnknownDrawKey:
            log.error(
                "raffle %s round %s: its draw key %s is not configured", instance_id, round_id, key
            )
            return None
        return lambda pk: self.draw_keys.salt(key, instance_id, round_id, pk)

    def _snapshot_of(
        self, instance_id: str, record: dict[str, Any], tickets: list[tuple[int, str, int]]
    ) -> str | None:
        """The snapshot hash of a drawn round's tickets, in its record's version."""
        if record["snapshot_version"] < 2:
            return snapshot_hash(tickets)
        salt = self._salts(instance_id, record)
        return None if salt is None else snapshot_hash(salted_lines(tickets, salt))
