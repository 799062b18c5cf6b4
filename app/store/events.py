"""Event stream reads for the websocket: the instances' capped events streams and one pub/sub
subscription per process.

The Lua scripts append each event to the instance's events stream (fields `event_id`,
`event_type`, `payload` = the JSON envelope) and publish the same envelope on the instance's
channel. The stream is the source of truth: a pub/sub message only says "instance X has new
events", and the reader then fetches the stream entries after the last id it has seen. So
every delivered event carries its stream id (the resume offset), a lost pub/sub message
delays an event instead of losing it, and a burst of events costs one XRANGE.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from app.store import keys
from app.store.base import StoreBase

START = "0-0"  # the position before the first entry of any stream
_CHANNEL_HEAD, _CHANNEL_TAIL = keys.instance_channel("").split("}", 1)
_CHANNEL_TAIL = "}" + _CHANNEL_TAIL


def stream_id_key(stream_id: str) -> tuple[int, int]:
    """Stream ids compare as (milliseconds, sequence)."""
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def channel_instance(channel: str) -> str | None:
    """The instance id of an instance channel name, None for another channel."""
    if channel.startswith(_CHANNEL_HEAD) and channel.endswith(_CHANNEL_TAIL):
        return channel[len(_CHANNEL_HEAD) : -len(_CHANNEL_TAIL)]
    return None


@dataclass(frozen=True)
class StoredEvent:
    instance_id: str
    stream_id: str
    event_type: str
    payload: str  # the envelope JSON written by the script


@dataclass(frozen=True)
class ChannelHead:
    """Where an instance's events stream stands, for a resume: its epoch (None before its
    first event), the id of the last entry ever added (START when none) and the first id it
    still keeps after trimming (START when it never lost an entry)."""

    epoch: str | None
    last_id: str
    kept_from: str


class EventStore(StoreBase):
    async def channel_heads(self, instance_ids: Iterable[str]) -> dict[str, ChannelHead]:
        """Each instance's stream epoch, last id and first kept id, in one pipeline."""
        ids = list(instance_ids)
        if not ids:
            return {}
        async with self.client.pipeline(transaction=False) as pipe:
            for instance_id in ids:
                pipe.get(keys.instance_events_epoch(instance_id))
                pipe.xinfo_stream(keys.instance_events(instance_id))
            raws = await pipe.execute(raise_on_error=False)
        heads = {}
        for n, instance_id in enumerate(ids):
            epoch, info = raws[2 * n], raws[2 * n + 1]
            epoch = epoch if isinstance(epoch, str) else None
            if not isinstance(info, dict):  # no stream (XINFO answers an error)
                heads[instance_id] = ChannelHead(epoch, START, START)
                continue
            last = info.get("last-generated-id") or START
            length = int(info["length"])
            added = int(info.get("entries-added") or length)
            first = info.get("first-entry")
            if added == length or not first:
                kept = START if added == length else last
            else:
                kept = first[0]
            heads[instance_id] = ChannelHead(epoch, last, kept)
        return heads

    async def read_channels(
        self, after: dict[str, str], until: dict[str, str] | None = None
    ) -> dict[str, tuple[str | None, list[StoredEvent]]]:
        """For each instance: its stream's epoch and its entries after `after[id]` (and up to
        `until[id]` when given), oldest first; one pipeline for all."""
        ids = list(after)
        if not ids:
            return {}
        async with self.client.pipeline(transaction=False) as pipe:
            for instance_id in ids:
                start = after[instance_id]
                pipe.get(keys.instance_events_epoch(instance_id))
                pipe.xrange(
                    keys.instance_events(instance_id),
                    "-" if start == START else f"({start}",
                    "+" if until is None else until.get(instance_id, "+"),
                )
            raws = await pipe.execute()
        found = {}
        for n, instance_id in enumerate(ids):
            epoch, entries = raws[2 * n], raws[2 * n + 1]
            found[instance_id] = (
                epoch,
                [
                    StoredEvent(instance_id, entry_id, fields["event_type"], fields["payload"])
                    for entry_id, fields in entries
                ],
            )
        return found

    async def event_epochs(self, instance_ids: Iterable[str]) -> dict[str, str | None]:
        """Each instance's events stream epoch (None before its first event); one pipeline."""
        ids = list(instance_ids)
        if not ids:
            return {}
        async with self.client.pipeline(transaction=False) as pipe:
            for instance_id in ids:
                pipe.get(keys.instance_events_epoch(instance_id))
            raws = await pipe.execute()
        return dict(zip(ids, raws, strict=True))

    async def event_positions(self, instance_ids: Iterable[str]) -> dict[str, str]:
        """The id of the last entry of each instance's events stream (START when empty)."""
        ids = list(instance_ids)
        if not ids:
            return {}
        async with self.client.pipeline(transaction=False) as pipe:
            for instance_id in ids:
                pipe.xrevrange(keys.instance_events(instance_id), "+", "-", count=1)
            raws = await pipe.execute()
        return {i: raw[0][0] if raw else START for i, raw in zip(ids, raws, strict=True)}

    async def events_kept_from(self, instance_ids: Iterable[str]) -> dict[str, str]:
        """The first id each events stream still keeps, START when it never lost an entry
        (the cap trims the oldest): a resume position below it may have missed events."""
        ids = list(instance_ids)
        if not ids:
            return {}
        async with self.client.pipeline(transaction=False) as pipe:
            for instance_id in ids:
                pipe.xinfo_stream(keys.instance_events(instance_id))
            raws = await pipe.execute(raise_on_error=False)
        kept = {}
        for instance_id, raw in zip(ids, raws, strict=True):
            if not isinstance(raw, dict) or not raw.get("first-entry"):
                kept[instance_id] = START  # no stream yet
            elif int(raw.get("entries-added") or raw["length"]) == int(raw["length"]):
                kept[instance_id] = START
            else:
                kept[instance_id] = raw["first-entry"][0]
        return kept

    async def events_after(
        self, instance_id: str, after: str, until: str = "+", count: int | None = None
    ) -> list[StoredEvent]:
        """Entries with after < id <= until, oldest first."""
        start = "-" if after == START else f"({after}"
        entries = await self.client.xrange(keys.instance_events(instance_id), start, until, count)
        return [
            StoredEvent(instance_id, entry_id, fields["event_type"], fields["payload"])
            for entry_id, fields in entries
        ]

    def event_listener(self) -> EventListener:
        return EventListener(self.client, cluster=self.cluster)


class EventListener:
    """One pub/sub subscription for the whole process: a pattern subscription on one Redis,
    sharded channels (SSUBSCRIBE, one per instance, added by `follow`) on a Redis Cluster."""

    def __init__(self, client: Any, *, cluster: bool) -> None:
        self._client = client
        self._cluster = cluster
        self._pubsub: Any = None
        self._woken: asyncio.Queue[str] = asyncio.Queue()
        self._readers: dict[str, asyncio.Task[None]] = {}
        self._followed: set[str] = set()

    async def start(self) -> None:
        self._pubsub = self._client.pubsub()
        if not self._cluster:
            await self._pubsub.psubscribe(keys.instance_channel("*"))
            self._readers["main"] = asyncio.create_task(self._read(self._pubsub))

    async def follow(self, instance_ids: Iterable[str]) -> list[str]:
        """Make sure events of these instances wake the listener (new instances on a
        cluster need their own sharded subscription; a pattern already covers them).
        The instances not followed before."""
        new = [i for i in instance_ids if i not in self._followed]
        if not new:
            return new
        self._followed.update(new)
        if not self._cluster:
            return new
        await self._pubsub.ssubscribe(*(keys.instance_channel(i) for i in new))
        # redis-py keeps one connection per cluster node; read each in its own task.
        for name, node_pubsub in self._pubsub.node_pubsub_mapping.items():
            if name not in self._readers:
                self._readers[name] = asyncio.create_task(self._read(node_pubsub))
        return new

    async def _read(self, pubsub: Any) -> None:
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=30.0)
            if message is None or message.get("type") not in ("pmessage", "smessage", "message"):
                continue
            instance_id = channel_instance(message["channel"])
            if instance_id is not None:
                self._woken.put_nowait(instance_id)

    async def woken(self) -> set[str]:
        """Wait for at least one instance with new events; every one woken meanwhile."""
        instance_ids = {await self._woken.get()}
        while not self._woken.empty():
            instance_ids.add(self._woken.get_nowait())
        return instance_ids

    def failed(self) -> BaseException | None:
        """The error that stopped a reader (a lost connection), if any."""
        for task in self._readers.values():
            if task.done() and not task.cancelled():
                return task.exception()
        return None

    async def close(self) -> None:
        for task in self._readers.values():
            task.cancel()
        for task in self._readers.values():
            with contextlib.suppress(BaseException):
                await task
        self._readers.clear()
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
            self._pubsub = None
