"""Instance definitions, lifecycle state and ledger reads."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

from app.store import keys
from app.store.base import StoreBase, dumps, loads
from app.store.script_table import (
    ADD_METERS,
    BOOST_POT,
    CLAIM_DUE,
    CREATE_INSTANCE,
    READ_BOOKS,
    READ_METERS,
    SET_STATUS,
)


class InstanceStore(StoreBase):
    async def instance_ids(self) -> list[str]:
        return list(await self.client.zrange(keys.INSTANCES, 0, -1))

    async def definitions(self, instance_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Definitions by id (one pipeline; on a cluster the ids may live on several nodes)."""
        if not instance_ids:
            return {}
        async with self.client.pipeline(transaction=False) as pipe:
            for instance_id in instance_ids:
                pipe.get(keys.instance_definition(instance_id))
            raws = await pipe.execute()
        return {i: loads(raw) for i, raw in zip(instance_ids, raws, strict=True) if raw}

    async def states(self, instance_ids: list[str]) -> dict[str, dict[str, str]]:
        """The state hash (status, pots, totals) of each instance, in one pipeline."""
        if not instance_ids:
            return {}
        async with self.client.pipeline(transaction=False) as pipe:
            for instance_id in instance_ids:
                pipe.hgetall(keys.instance_state(instance_id))
            raws = await pipe.execute()
        return {i: raw for i, raw in zip(instance_ids, raws, strict=True) if raw}

    async def statuses(self, instance_ids: list[str]) -> dict[str, str]:
        """The live status of each instance, in one pipeline."""
        if not instance_ids:
            return {}
        async with self.client.pipeline(transaction=False) as pipe:
            for instance_id in instance_ids:
                pipe.hget(keys.instance_state(instance_id), "status")
            raws = await pipe.execute()
        return {i: raw for i, raw in zip(instance_ids, raws, strict=True) if raw}

    async def create_instance(
        self,
        definition: dict[str, Any],
        engine: dict[str, Any],
        *,
        now_ms: int,
        status: str,
        timestamp_start: int | None,
        timestamp_end: int | None,
        drop_values: list[int | None],
    ) -> bool:
        """True when created, False when the instance already existed (nothing written)."""
        instance_id = engine["id"]
        created = await self.script(
            CREATE_INSTANCE,
            [
                keys.instance_definition(instance_id),
                keys.instance_engine(instance_id),
                keys.instance_state(instance_id),
                keys.instance_ledger(instance_id),
                keys.instance_meter(instance_id),
            ],
            [
                dumps(definition),
                dumps(engine),
                now_ms,
                status,
                "" if timestamp_start is None else timestamp_start,
                "" if timestamp_end is None else timestamp_end,
                *("" if drop is None else drop for drop in drop_values),
            ],
        )
        # The index lives outside the instance's slot; re-adding is harmless (NX keeps order).
        await self.client.zadd(keys.INSTANCES, {instance_id: now_ms}, nx=True)
        return bool(created)

    async def set_status(
        self, instance_id: str, action: str, *, now_ms: int, by: str, event_id: str | None = None
    ) -> str:
        """The new status; a change also emits an InstanceStatusEvent (lua/set_status-6.lua)."""
        return str(
            await self.script(
                SET_STATUS,
                [
                    keys.instance_state(instance_id),
                    keys.instance_ledger(instance_id),
                    keys.instance_events(instance_id),
                    keys.instance_channel(instance_id),
                    keys.instance_meter(instance_id),
                    keys.instance_events_epoch(instance_id),
                ],
                [
                    action,
                    now_ms,
                    by,
                    instance_id,
                    event_id or str(uuid.uuid4()),
                    self.publish_mode,
                    self.events_cap,
                ],
            )
        )

    async def boost_pot(
        self,
        instance_id: str,
        *,
        boost_id: str,
        pot_id: str,
        target: str,
        amount: int,
        by: str,
        now_ms: int,
    ) -> tuple[bool, int, int]:
        """(replayed, micros added to the value, micros added to the reserve)."""
        replay, to_value, to_reserve = await self.script(
            BOOST_POT,
            [
                keys.instance_engine(instance_id),
                keys.instance_state(instance_id),
                keys.instance_ledger(instance_id),
                keys.instance_boosts(instance_id),
                keys.instance_meter(instance_id),
            ],
            [now_ms, boost_id, pot_id, target, amount, by],
        )
        return bool(int(replay)), int(to_value), int(to_reserve)

    async def schedule(
        self, action: str, instance_id: str, due_ms: int, *, only_new: bool = False
    ) -> None:
        """Due at `due_ms`; `only_new` leaves an item already there (perhaps leased) alone."""
        await self.client.zadd(keys.SCHEDULE, {f"{action}|{instance_id}": due_ms}, nx=only_new)

    async def claim_due(self, now_ms: int, limit: int, lease_ms: int) -> list[tuple[str, str]]:
        """(action, instance_id) pairs now due, leased to this caller for `lease_ms`."""
        members = await self.script(CLAIM_DUE, [keys.SCHEDULE], [now_ms, limit, lease_ms])
        return [tuple(member.split("|", 1)) for member in members]

    async def renew_due(self, members: list[str], until_ms: int) -> None:
        """Push the leases of items still in the schedule (running here) to `until_ms`."""
        await self.client.zadd(keys.SCHEDULE, dict.fromkeys(members, until_ms), xx=True)

    async def release_due(self, members: list[str], due_ms: int) -> None:
        """Hand items back: due at `due_ms` (those still in the schedule)."""
        await self.client.zadd(keys.SCHEDULE, dict.fromkeys(members, due_ms), xx=True)

    async def complete_due(self, action: str, instance_id: str) -> None:
        await self.client.zrem(keys.SCHEDULE, f"{action}|{instance_id}")

    async def scheduled(self) -> list[tuple[str, int]]:
        return [
            (member, int(score))
            for member, score in await self.client.zrange(keys.SCHEDULE, 0, -1, withscores=True)
        ]

    async def books(self, instance_id: str) -> tuple[str, dict[str, str]]:
        """(id of the latest ledger entry, the state hash), read atomically."""
        reply = await self.script(
            READ_BOOKS,
            [keys.instance_state(instance_id), keys.instance_ledger(instance_id)],
            [],
        )
        flat = list(reply[1:])
        return str(reply[0]), dict(zip(flat[::2], flat[1::2], strict=True))

    async def meter_counters(
        self, instance_id: str, fields: list[str] | None
    ) -> tuple[str, dict[str, str], dict[str, str]]:
        """(id of the latest ledger entry, the state hash, the meter counters asked), read
        atomically (lua/read_meters-3.lua); `fields` None reads every counter."""
        mode: list[str] = ["all"] if fields is None else ["fields", *fields]
        last_id, state, counters = await self.script(
            READ_METERS,
            [
                keys.instance_state(instance_id),
                keys.instance_ledger(instance_id),
                keys.instance_meter(instance_id),
            ],
            mode,
        )
        if fields is None:
            found = dict(zip(counters[::2], counters[1::2], strict=True))
        else:
            found = {f: v for f, v in zip(fields, counters, strict=True) if v is not None}
        return str(last_id), dict(zip(state[::2], state[1::2], strict=True)), found

    async def add_meters(self, instance_id: str, until_id: str, adds: dict[str, int]) -> bool:
        """Backfill the meter counters once (lua/add_meters-1.lua); False when they were
        backfilled before (nothing written)."""
        args: list[str] = [until_id]
        for field, amount in adds.items():
            args += [field, str(amount)]
        done = await self.script(ADD_METERS, [keys.instance_meter(instance_id)], args)
        return bool(int(done))

    async def ledger_until(
        self, instance_id: str, last_id: str, *, page: int = 1000
    ) -> AsyncIterator[dict[str, str]]:
        """Every ledger entry from the first up to `last_id` included, read page by page."""
        key = keys.instance_ledger(instance_id)
        start = "-"
        while last_id:
            entries = await self.client.xrange(key, start, last_id, page)
            for _, fields in entries:
                yield fields
            if len(entries) < page:
                return
            start = f"({entries[-1][0]}"

    async def ledger(
        self, instance_id: str, *, after: str = "-", count: int = 100
    ) -> list[tuple[str, dict[str, str]]]:
        return await self.stream_page(keys.instance_ledger(instance_id), after, count)
