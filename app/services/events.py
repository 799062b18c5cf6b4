"""The event stream's fan-out: one hub per web process feeds every websocket of the process.

- One pub/sub subscription per process (app.store.events) wakes the hub; the hub reads the
  instance's events stream after the last id it has delivered and puts each event in the
  bounded outbox of every subscriber that may and wants to see it.
- Every `update_interval_s` the hub reads the state of all instances in one pipeline and
  builds one JackpotUpdateEvent per instance whose values or status changed: the same work
  with 10 or 10,000 subscribers. A subscriber's pending update of an instance is replaced by
  the newer one (conflation); only discrete events (wins, opt-ins) queue up.
- A status change (an InstanceStatusEvent in the stream, written by lua/set_status-4.lua;
  never sent as such) or a raffle draw (its RaffleWinEvent) makes the hub read that
  instance's state at once and send its JackpotUpdateEvent, so subscribers see a pause,
  resume, termination or drawn pot without waiting for the tick. A Terminated instance's last
  update says Terminated; on resume, the snapshot after the replay also carries the current
  update of every instance whose status changed in the replayed stretch, whatever its status.
- A subscriber whose outbox exceeds `queue_limit` is closed with 1013: it cannot slow the
  others, nor grow the process's memory.

Event ids (the resume offset). Each instance's events stream has its own ids, and on a Redis
Cluster the instances live on different nodes, so no single sequence orders them all. An
event id is therefore a cursor over every instance the subscriber may see:
`base64url(JSON {instance_id: stream id of the last event delivered from it})`, unpadded.
Resuming from it replays, per instance, the stream entries after the cursor's id, merged
across instances by stream id (time order), each once, then live events. When an entry the
cursor needs was trimmed from a capped stream, the subscriber gets `ResumeFailed` and a fresh
snapshot instead.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import heapq
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from marshmallow import ValidationError

from app import jsonio
from app.money import format_amount, from_micros
from app.schemas.events import (
    INTERNAL_EVENTS,
    MASKS,
    EventType,
    JackpotUpdateEventSchema,
    decode_event,
)
from app.security import Principal
from app.services.config import ConfigCache, ConfigSnapshot
from app.store import Store
from app.store.events import START, StoredEvent, stream_id_key

log = logging.getLogger("jackpot_gateway.events")

UPDATE = EventType.JACKPOT_UPDATE.value
UPDATE_SCHEMA = JackpotUpdateEventSchema()
INTERNAL = frozenset(t.value for t in INTERNAL_EVENTS)
STATUS_CHANGE = EventType.INSTANCE_STATUS.value
# Stream events after which an instance's JackpotUpdateEvent is sent at once (state changed).
STATE_CHANGES = frozenset({STATUS_CHANGE, EventType.RAFFLE_WIN.value})
CLOSE_GOING_AWAY = 1001
CLOSE_TRY_AGAIN_LATER = 1013
CLOSE_UNAUTHORIZED = 4401


# -- event ids -------------------------------------------------------------------------------
def encode_cursor(positions: dict[str, str]) -> str:
    raw = json.dumps(positions, sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(event_id: str) -> dict[str, str] | None:
    """The cursor of an event id, None when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(event_id + "=" * (-len(event_id) % 4))
        cursor = json.loads(raw)
        if not isinstance(cursor, dict):
            return None
        for instance_id, stream_id in cursor.items():
            if not isinstance(instance_id, str) or not isinstance(stream_id, str):
                return None
            stream_id_key(stream_id)
        return cursor
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None


def _later(a: str, b: str) -> str:
    return a if stream_id_key(a) >= stream_id_key(b) else b


# -- messages --------------------------------------------------------------------------------
def control(event_type: str, data: dict[str, Any]) -> str:
    """A message that is not an event (Authenticated, Subscribed, ResumeFailed, Error)."""
    return jsonio.dumps({"event_type": event_type, "event_id": None, "data": data})


@dataclass
class Message:
    """One event, built once; its data is rendered once per operator (masking differs)."""

    event_type: str
    instance_id: str
    stream_id: str | None  # None for a JackpotUpdateEvent (not in a stream)
    data: dict[str, Any]
    _rendered: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_stored(cls, event: StoredEvent) -> Message | None:
        """The event as the catalogue reads it; None (logged) when it does not match."""
        try:
            envelope = decode_event(event.payload)
        except (ValidationError, ValueError):
            log.error(
                "event stream: %s %s is not in the catalogue", event.instance_id, event.stream_id
            )
            return None
        return cls(
            envelope["event_type"].value, event.instance_id, event.stream_id, envelope["data"]
        )

    def data_for(self, operator_id: str) -> str:
        text = self._rendered.get(operator_id)
        if text is None:
            text = self._rendered[operator_id] = jsonio.dumps(self._view(operator_id))
        return text

    def _view(self, operator_id: str) -> dict[str, Any]:
        """What one operator may see, as the catalogue declares for this event type (MASKS):
        other operators' players masked, their brands and sources and their contributions'
        metadata left out. A type without a declaration is never sent."""
        mask = MASKS.get(EventType(self.event_type))
        if mask is None:
            raise ValidationError(f"{self.event_type} declares no masking (MASKS)")
        data = mask(self.data, operator_id)
        if self.event_type == UPDATE:
            errors = UPDATE_SCHEMA.validate(data)
            if errors:  # a defect: the catalogue and this builder disagree
                raise ValidationError(errors)
        return data

    def render(self, event_id: str, operator_id: str) -> str:
        return (
            f'{{"event_type":"{self.event_type}","event_id":"{event_id}",'
            f'"data":{self.data_for(operator_id)}}}'
        )


# -- one websocket -------------------------------------------------------------------------
class Subscriber:
    def __init__(self, principal: Principal, visible: frozenset[str], queue_limit: int) -> None:
        self.principal = principal
        # Whom MASKS mask for, and the key of what it may see: the operator of a service; for
        # a display token no operator at all (every player masked, app.security.viewer).
        self.operator_id = principal.viewer
        self.visible = visible
        self.event_types: frozenset[str] | None = None  # None: all
        self.instance_ids: frozenset[str] | None = None  # None: all visible
        self.queue_limit = queue_limit
        self.outbox: OrderedDict[Any, str] = OrderedDict()
        self.floor: dict[str, str] = {}  # resumed past this process: skip up to these ids
        self.held = True  # until the snapshot or the replay is in front of the outbox
        self.wake = asyncio.Event()
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason = ""
        self._seq = 0

    def wants(self, message: Message) -> bool:
        return (
            message.instance_id in self.visible
            and (self.event_types is None or message.event_type in self.event_types)
            and (self.instance_ids is None or message.instance_id in self.instance_ids)
        )

    def push(self, text: str, conflate_key: Any = None) -> None:
        if self.close_code is not None:
            return
        if conflate_key is None:
            self._seq += 1
            key: Any = self._seq
        else:
            key = conflate_key
            self.outbox.pop(key, None)  # the newer value replaces the queued one
        self.outbox[key] = text
        if len(self.outbox) > self.queue_limit:
            self.close(CLOSE_TRY_AGAIN_LATER, "too slow: the event queue overflowed")
        elif not self.held:
            self.wake.set()

    def release(self, prefix: list[str]) -> None:
        """Put the prefix (authentication answer, snapshot or replay) before what live events
        queued meanwhile, and start sending."""
        queued = self.outbox
        self.outbox = OrderedDict()
        for text in prefix:
            self._seq += 1
            self.outbox[("prefix", self._seq)] = text
        self.outbox.update(queued)
        self.held = False
        self.wake.set()

    def close(self, code: int, reason: str) -> None:
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
            self.outbox.clear()
            self.closed.set()
            self.wake.set()


# -- the hub ---------------------------------------------------------------------------------
class EventHub:
    def __init__(
        self, store: Store, config: ConfigCache, *, update_interval_s: float, queue_limit: int
    ) -> None:
        self._store = store
        self._config = config
        self.update_interval_s = update_interval_s
        self.queue_limit = queue_limit
        self.subscribers: set[Subscriber] = set()
        self.on_count: Callable[[int], None] = lambda count: None  # e.g. a metrics gauge
        self.positions: dict[str, str] = {}  # instance -> last stream id delivered
        self._positions_version = 0
        self._tokens: dict[str, tuple[int, str]] = {}  # operator -> (positions version, id)
        self._updates: dict[str, dict[str, Any]] = {}  # latest JackpotUpdateEvent data
        self._visibility: tuple[int, dict[str, frozenset[str]]] = (-1, {})
        self._visible_version = -1  # the config version subscribers' visibility follows
        self._drain_lock = asyncio.Lock()
        self._update_lock = asyncio.Lock()  # state reads and `_updates` stay in order
        self._start_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._listener: Any = None
        self._none_left = asyncio.Event()
        self._stopping = False
        self.ticks = 0

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def started(self) -> bool:
        return bool(self._tasks)

    async def ensure_started(self) -> None:
        """Started by the first websocket, so processes without any pay nothing."""
        async with self._start_lock:
            if self.started:
                return
            config = await self._listen_from_now()
            await self._refresh_updates(config, publish=False)
            self._stopping = False
            self._tasks = [
                asyncio.create_task(self._listen_forever()),
                asyncio.create_task(self._tick_forever()),
            ]

    async def _listen_from_now(self) -> ConfigSnapshot:
        # Subscribe before reading the positions, so nothing falls in between.
        self._listener = self._store.event_listener()
        await self._listener.start()
        config = await self._config.get()
        await self._listener.follow(config.instances)
        for instance_id, position in (await self._store.event_positions(config.instances)).items():
            self.positions.setdefault(instance_id, position)
        return config

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        self._tasks = []
        if self._listener is not None:
            await self._listener.close()
            self._listener = None

    async def close_all(self, code: int = CLOSE_GOING_AWAY, timeout_s: float = 3.0) -> None:
        """Close every websocket (1001 on shutdown) and wait for their handlers to finish."""
        for subscriber in list(self.subscribers):
            subscriber.close(code, "server shutting down")
        if self.subscribers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._none_left.wait(), timeout_s)

    # -- subscribers -------------------------------------------------------------------------
    async def connect(
        self, principal: Principal, authenticated: dict[str, Any], last_event_id: str | None
    ) -> Subscriber:
        """Register a subscriber: its outbox starts with the Authenticated answer, then the
        snapshot (or the replay after `last_event_id`), then live events."""
        await self.ensure_started()
        config = await self._config.get()
        subscriber = Subscriber(principal, self._visible(config, principal), self.queue_limit)
        self.subscribers.add(subscriber)
        self.on_count(len(self.subscribers))
        self._none_left.clear()
        prefix = [
            control("Authenticated", {**authenticated, "instance_ids": sorted(subscriber.visible)})
        ]
        if last_event_id is None:
            prefix += self._snapshot(subscriber)
        else:
            try:
                prefix += await self._resume(subscriber, last_event_id)
            except BaseException:  # the client left (or Redis failed) while replaying
                self.disconnect(subscriber)
                raise
        subscriber.release(prefix)
        return subscriber

    def disconnect(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)
        self.on_count(len(self.subscribers))
        if not self.subscribers:
            self._none_left.set()

    def _visible(self, config: ConfigSnapshot, principal: Principal) -> frozenset[str]:
        """Instances one of the operator's brands (a display token's: its brands) may play."""
        version, cache = self._visibility
        if version != config.version:
            cache = {}
            self._visibility = (config.version, cache)
        visible = cache.get(principal.viewer)
        if visible is None:
            visible = cache[principal.viewer] = frozenset(
                i
                for i, definition in config.instances.items()
                if any(principal.shows_brand(b) for b in definition["allowed_brands"])
            )
        return visible

    def event_id_for(self, subscriber: Subscriber) -> str:
        if subscriber.floor:
            # Resumed from another process that was ahead: never hand out an older cursor.
            subscriber.floor = {
                i: s
                for i, s in subscriber.floor.items()
                if stream_id_key(s) > stream_id_key(self.positions.get(i, START))
            }
            if subscriber.floor:
                merged = {i: self.positions.get(i, START) for i in subscriber.visible}
                merged.update(subscriber.floor)
                return encode_cursor(merged)
        cached = self._tokens.get(subscriber.operator_id)
        if cached is not None and cached[0] == self._positions_version:
            return cached[1]
        token = encode_cursor({i: self.positions.get(i, START) for i in subscriber.visible})
        self._tokens[subscriber.operator_id] = (self._positions_version, token)
        return token

    def _snapshot(
        self,
        subscriber: Subscriber,
        event_id: str | None = None,
        changed: frozenset[str] | set[str] = frozenset(),
    ) -> list[str]:
        """The latest JackpotUpdateEvent of every visible Active instance, and of the
        `changed` ones (status changes a resumed subscriber missed) whatever their status."""
        event_id = event_id or self.event_id_for(subscriber)
        return [
            Message(UPDATE, instance_id, None, data).render(event_id, subscriber.operator_id)
            for instance_id, data in sorted(self._updates.items())
            if instance_id in subscriber.visible
            and (data["status"] == "Active" or instance_id in changed)
        ]

    async def _resume(self, subscriber: Subscriber, last_event_id: str) -> list[str]:
        cursor = decode_cursor(last_event_id)
        if cursor is None:
            return self._resume_failed(subscriber, "MALFORMED_EVENT_ID", [])
        visible = subscriber.visible
        now = {i: self.positions.get(i, START) for i in visible}
        start = {i: cursor.get(i, START) for i in visible}
        subscriber.floor = {
            i: s for i, s in start.items() if stream_id_key(s) > stream_id_key(now[i])
        }
        behind = [i for i in visible if stream_id_key(start[i]) < stream_id_key(now[i])]
        kept = await self._store.events_kept_from(behind)
        lost = sorted(i for i in behind if stream_id_key(kept[i]) > stream_id_key(start[i]))
        if lost:
            subscriber.floor = {}
            return self._resume_failed(subscriber, "EVENTS_TRIMMED", lost)
        # Everything up to `now` (what this process has delivered when the subscriber was
        # registered) is replayed from the streams; later events are already queued live.
        batches = [await self._store.events_after(i, start[i], now[i]) for i in sorted(behind)]
        state = dict(start)
        replay = []
        changed = set()
        for event in heapq.merge(*batches, key=lambda e: stream_id_key(e.stream_id)):
            state[event.instance_id] = event.stream_id
            if event.event_type in INTERNAL:
                if event.event_type == STATUS_CHANGE:
                    changed.add(event.instance_id)
                continue
            message = Message.from_stored(event)
            if message is not None and subscriber.wants(message):
                replay.append(message.render(encode_cursor(state), subscriber.operator_id))
        # Pot values are state, not events: the current ones follow the replay, with the
        # cursor the replay ends at (live events queued meanwhile come after them).
        caught_up = {i: _later(state[i], now[i]) for i in visible}
        return [*replay, *self._snapshot(subscriber, encode_cursor(caught_up), changed)]

    def _resume_failed(self, subscriber: Subscriber, reason: str, lost: list[str]) -> list[str]:
        messages = {
            "MALFORMED_EVENT_ID": "last_event_id is not an event id of this stream.",
            "EVENTS_TRIMMED": "Events after last_event_id are no longer kept; a fresh "
            "snapshot follows.",
        }
        failed = control(
            "ResumeFailed", {"reason": reason, "message": messages[reason], "instance_ids": lost}
        )
        return [failed, *self._snapshot(subscriber)]

    def subscribe(
        self,
        subscriber: Subscriber,
        event_types: Iterable[str] | None,
        instance_ids: Iterable[str] | None,
    ) -> None:
        subscriber.event_types = None if event_types is None else frozenset(event_types)
        subscriber.instance_ids = None if instance_ids is None else frozenset(instance_ids)

    # -- delivery ----------------------------------------------------------------------------
    def _dispatch(self, message: Message) -> None:
        conflate = ("update", message.instance_id) if message.stream_id is None else None
        for subscriber in list(self.subscribers):
            if not subscriber.wants(message):
                continue
            floor = subscriber.floor.get(message.instance_id) if subscriber.floor else None
            if (
                floor is not None
                and message.stream_id is not None
                and stream_id_key(message.stream_id) <= stream_id_key(floor)
            ):
                continue  # delivered before the subscriber resumed here
            event_id = self.event_id_for(subscriber)
            subscriber.push(message.render(event_id, subscriber.operator_id), conflate)

    async def drain(self, instance_ids: Iterable[str]) -> None:
        """Deliver the stream entries of these instances that this process has not yet."""
        async with self._drain_lock:
            ids = sorted(instance_ids)
            await self._see_new_instances(ids)
            changed = set()
            batches = [await self._store.events_after(i, self.positions.get(i, START)) for i in ids]
            # Several instances' news in one drain: delivered in time order, as a resume does.
            for event in heapq.merge(*batches, key=lambda e: stream_id_key(e.stream_id)):
                self.positions[event.instance_id] = event.stream_id
                self._positions_version += 1
                if event.event_type in STATE_CHANGES:
                    changed.add(event.instance_id)
                if event.event_type in INTERNAL:
                    continue
                message = Message.from_stored(event)
                if message is not None:
                    self._dispatch(message)
            if changed:
                # After the events, under the same cursor: the instance's new state.
                await self._refresh_updates(await self._config.get(), publish=True, only=changed)

    async def _see_new_instances(self, instance_ids: list[str]) -> None:
        """Before delivering events of an instance created since the subscribers' visibility
        was last computed (the tick does it), compute it again: the instance's first events
        (which may come before the next tick) reach whoever may see it."""
        config = await self._config.get()
        if any(i not in config.instances for i in instance_ids):
            self._config.invalidate()  # this process has not read the new definition yet
            config = await self._config.get()
        if config.version != self._visible_version:
            self._visible_version = config.version
            for subscriber in self.subscribers:
                subscriber.visible = self._visible(config, subscriber.principal)

    # Both loops also check `_stopping`: a Redis client may turn a cancellation into an error.
    async def _listen_forever(self) -> None:
        while not self._stopping:
            try:
                await self.drain(await self._listener.woken())
                continue
            except Exception:
                if not self._stopping:
                    log.exception("event stream: reading events failed")
            await asyncio.sleep(1.0)

    async def _tick_forever(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.update_interval_s)
            try:
                await self.tick()
            except Exception:
                if not self._stopping:
                    log.exception("event stream: the update tick failed")

    async def tick(self) -> None:
        """One update round: changed instances' JackpotUpdateEvents to every subscriber."""
        config = await self._config.get()
        if self._listener is not None and self._listener.failed() is not None:
            # Lost the subscription: subscribe again and catch up from the streams.
            log.warning("event stream: pub/sub connection lost, subscribing again")
            await self._listener.close()
            config = await self._listen_from_now()
            await self.drain(config.instances)
        else:
            # A new instance's events published before its sharded subscription existed
            # are read now.
            await self.drain(await self._listener.follow(config.instances))
        for subscriber in list(self.subscribers):
            revoked_ms = config.revocations.get(subscriber.principal.username)
            if revoked_ms is not None and subscriber.principal.issued_ms <= revoked_ms:
                # the account was deleted or its roles changed: its tokens stop listening
                subscriber.close(CLOSE_UNAUTHORIZED, "TOKEN_REVOKED")
                continue
            subscriber.visible = self._visible(config, subscriber.principal)
        await self._refresh_updates(config, publish=True)
        self.ticks += 1

    async def _refresh_updates(
        self, config: ConfigSnapshot, *, publish: bool, only: set[str] | None = None
    ) -> None:
        """Read the state of every instance (or `only` these) in one pipeline and send the
        JackpotUpdateEvent of each one that changed, built once for every subscriber."""
        async with self._update_lock:
            ids = [i for i in config.instances if only is None or i in only]
            states = await self._store.states(ids)
            self._update_from(config, ids, states, publish=publish)

    def _update_from(
        self,
        config: ConfigSnapshot,
        ids: list[str],
        states: dict[str, dict[str, str]],
        *,
        publish: bool,
    ) -> None:
        now_ms = int(time.time() * 1000)
        for instance_id in ids:
            definition = config.instances[instance_id]
            state = states.get(instance_id)
            if state is None:
                continue
            data = _update_data(config, definition, state)
            previous = self._updates.get(instance_id)
            if previous is not None and {**previous, "last_updated": None} == data:
                continue
            data["last_updated"] = now_ms
            self._updates[instance_id] = data
            if publish:
                self._dispatch(Message(UPDATE, instance_id, None, data))


def _update_data(
    config: ConfigSnapshot, definition: dict[str, Any], state: dict[str, str]
) -> dict[str, Any]:
    """The JackpotUpdateEvent data of an instance (all operators' brands and sources; each
    operator's view keeps its own); `last_updated` is set by the caller."""
    instance_id = definition["id"]
    return {
        "id": instance_id,
        "name": definition["name"],
        "jackpot_type": definition["jackpot_type"],
        "currency": definition["currency"],
        "pots": [
            {
                "id": pot["id"],
                "name": pot["name"],
                "is_progressive": pot["is_progressive"],
                "current_value": format_amount(
                    from_micros(int(state.get(f"pot:{pot['id']}:value") or 0))
                ),
            }
            for pot in definition["pots"]
        ],
        "allowed_brands": list(definition["allowed_brands"]),
        "allowed_sources": [
            {"source_id": s["source_id"], "owner_id": s["owner_id"]}
            for s in config.sources
            if instance_id in s["instance_ids"]
        ],
        "status": state.get("status"),
        "timestamp_start": _opt_int(state.get("timestamp_start")),
        "timestamp_end": _opt_int(state.get("timestamp_end")),
        "last_updated": None,
    }


def _opt_int(raw: str | None) -> int | None:
    return int(raw) if raw else None
