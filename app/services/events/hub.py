"""The EventHub: one per web process, it feeds every websocket of the process.

- One pub/sub subscription per process (app.store.events) wakes the hub; the hub reads the
  woken instances' streams after the last offset it delivered (one pipeline) and renders each
  event once per operator (masking as the catalogue's MASKS declares), then puts the text in
  the bounded outbox of every subscriber that may and wants to see it.
- Every `update_interval_s` the hub reads the state of all instances in one pipeline and
  builds one JackpotUpdateEvent per instance whose values or status changed: the same work
  with 10 or 10,000 subscribers. A subscriber's pending update of an instance is replaced by
  the newer one (conflation); only discrete events (wins, opt-ins) queue up. An update is
  state, not history: its event_id is the channel's current position (the id of the last
  stream event before it), so a client can resume from any message of a channel.
- A status change (an InstanceStatusEvent in the stream, written by lua/set_status-6.lua;
  never sent as such) or a raffle draw makes the hub read that instance's state at once and
  send its JackpotUpdateEvent.
- A snapshot (after Authenticate or a SubscribeRequest) is, per subscribed Active channel,
  its JackpotUpdateEvent with `recent_wins` (its last `recent_wins` wins, masked per viewer);
  those are cached per instance and re-read after a win event.
- A resume (app.services.events.resume) replays, per channel with a position, the missed
  entries in order, each once, or answers `ResumeFailed` and a fresh snapshot of the channel.
- Heartbeats: one loop per process sends every subscriber a Ping each `ping_interval_s` and
  closes with 4408 the ones silent for `ping_interval_s + pong_timeout_s`. Its clock is
  injectable (`hub.clock`), so a test can run an hour in a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from app.core.security import Principal
from app.schemas.events import INTERNAL_EVENTS, EventType
from app.services.config import ConfigCache, ConfigSnapshot
from app.services.events.ids import NO_EPOCH, event_id
from app.services.events.messages import PING, UPDATE, Message, control
from app.services.events.resume import parse_positions, plan_resume, resume_failed
from app.services.events.subscriber import (
    CLOSE_GOING_AWAY,
    CLOSE_PONG_TIMEOUT,
    CLOSE_UNAUTHORIZED,
    Selection,
    Subscriber,
)
from app.services.events.updates import recent_win, update_data
from app.store import Store
from app.store.events import START, stream_id_key
from app.store.wins import Winner

log = logging.getLogger("jackpot_gateway.events")

INTERNAL = frozenset(t.value for t in INTERNAL_EVENTS)
STATUS_CHANGE = EventType.INSTANCE_STATUS.value
# Stream events after which an instance's JackpotUpdateEvent is sent at once (state changed).
STATE_CHANGES = frozenset({STATUS_CHANGE, EventType.RAFFLE_WIN.value})
# Stream events after which an instance's recent wins are read again.
WIN_CHANGES = frozenset(
    {EventType.JACKPOT_WIN.value, EventType.RAFFLE_WIN.value, EventType.WIN_DECISION.value}
)
RECENT_BATCH = 16  # recent-wins reads in flight at once


class Clock:
    """The heartbeat's time source; a test injects one it advances itself."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class EventHub:
    def __init__(
        self,
        store: Store,
        config: ConfigCache,
        *,
        update_interval_s: float,
        queue_limit: int,
        ping_interval_s: float = 25.0,
        pong_timeout_s: float = 10.0,
        recent_wins: int = 5,
    ) -> None:
        self._store = store
        self._config = config
        self.update_interval_s = update_interval_s
        self.queue_limit = queue_limit
        self.ping_interval_s = ping_interval_s
        self.pong_timeout_s = pong_timeout_s
        self.recent_wins = recent_wins
        self.clock: Clock = Clock()
        self.subscribers: set[Subscriber] = set()
        self.on_count: Callable[[int], None] = lambda count: None  # e.g. a metrics gauge
        self.positions: dict[str, str] = {}  # instance -> last stream id delivered
        self.epochs: dict[str, str] = {}  # instance -> its stream's epoch, as last read
        self._updates: dict[str, dict[str, Any]] = {}  # latest JackpotUpdateEvent data
        self._recent: dict[str, list[dict[str, Any]]] = {}  # latest wins (unmasked)
        self._snapshots: dict[str, Message] = {}  # update + recent wins, per instance
        self._visibility: tuple[int, dict[str, frozenset[str]]] = (-1, {})
        self._visible_version = -1  # the config version subscribers' visibility follows
        self._drain_lock = asyncio.Lock()
        self._update_lock = asyncio.Lock()  # state reads and `_updates` stay in order
        self._recent_lock = asyncio.Lock()
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
            await self._ensure_recent(config.instances)
            self._stopping = False
            self._tasks = [
                asyncio.create_task(self._listen_forever()),
                asyncio.create_task(self._tick_forever()),
                asyncio.create_task(self._heartbeat_forever()),
            ]

    async def _listen_from_now(self) -> ConfigSnapshot:
        # Subscribe before reading the positions, so nothing falls in between.
        self._listener = self._store.event_listener()
        await self._listener.start()
        config = await self._config.get()
        await self._listener.follow(config.instances)
        for instance_id, position in (await self._store.event_positions(config.instances)).items():
            self.positions.setdefault(instance_id, position)
        for instance_id, epoch in (await self._store.event_epochs(config.instances)).items():
            self.epochs.setdefault(instance_id, epoch or NO_EPOCH)
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
        self,
        principal: Principal,
        authenticated: dict[str, Any],
        selection: Selection | None = None,
        positions: dict[str, str] | None = None,
        expires_at: float = float("inf"),
    ) -> Subscriber:
        """Register a subscriber: its outbox starts with the Authenticated answer, then per
        channel a replay after its position or a snapshot, then live events."""
        await self.ensure_started()
        config = await self._config.get()
        subscriber = Subscriber(
            principal,
            self._visible(config, principal),
            self.queue_limit,
            self.clock.now(),
        )
        subscriber.expires_at = expires_at
        if selection is not None:
            self._select(subscriber, config, selection)
        self.subscribers.add(subscriber)
        self.on_count(len(self.subscribers))
        self._none_left.clear()
        answer = {
            **authenticated,
            "instance_ids": sorted(subscriber.visible),
            "ping_interval_s": self.ping_interval_s,
            "pong_timeout_s": self.pong_timeout_s,
        }
        if selection is not None:
            answer["channels"] = sorted(subscriber.channels)
        try:
            prefix = await self._catch_up(subscriber, positions or {})
        except BaseException:  # the client left (or Redis failed) while replaying
            self.disconnect(subscriber)
            raise
        subscriber.release([control("Authenticated", answer), *prefix])
        return subscriber

    async def subscribe(
        self, subscriber: Subscriber, selection: Selection, positions: dict[str, str] | None
    ) -> None:
        """Change what the subscriber receives; answered `Subscribed`, then per channel of
        the new subscription a replay after its position or a snapshot, then live events."""
        config = await self._config.get()
        subscriber.hold()
        self._select(subscriber, config, selection)
        answer = control(
            "Subscribed",
            {
                "events": None if selection.event_types is None else sorted(selection.event_types),
                "instance_ids": None
                if selection.instance_ids is None
                else sorted(selection.instance_ids),
                "brands": None if selection.brands is None else sorted(selection.brands),
                "channels": sorted(subscriber.channels),
            },
        )
        prefix: list[str] = []
        try:
            prefix = await self._catch_up(subscriber, positions or {})
        finally:  # on a failure too: never leave it held and silent
            subscriber.release([answer, *prefix])

    def position_id(self, channel: str) -> str:
        """The id of the channel's position in this process (`<epoch>:0-0` before any
        event): an update carries it, so a client resumes from any message of a channel."""
        return event_id(self.epochs.get(channel, NO_EPOCH), self.positions.get(channel, START))

    def touch(self, subscriber: Subscriber) -> None:
        """The client sent a frame (a Pong or any other): it is alive."""
        subscriber.last_seen = self.clock.now()

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

    def _select(
        self, subscriber: Subscriber, config: ConfigSnapshot, selection: Selection | None = None
    ) -> None:
        """The subscriber's channels: its visible instances, narrowed by its selection (the
        instances named, and those allowed to one of the brands named)."""
        if selection is not None:
            subscriber.selection = selection
        chosen = subscriber.selection
        if chosen.instance_ids is None and chosen.brands is None:
            subscriber.channels = subscriber.visible
            return
        picked = set(chosen.instance_ids or ())
        if chosen.brands:
            picked.update(
                i
                for i in subscriber.visible
                if not chosen.brands.isdisjoint(config.instances[i]["allowed_brands"])
            )
        subscriber.channels = subscriber.visible & frozenset(picked)

    async def _catch_up(self, subscriber: Subscriber, positions: dict[str, str]) -> list[str]:
        """What a subscriber gets before live events: per channel with a position, the
        entries after it up to what this process has delivered (or ResumeFailed and a
        snapshot of the channel); for the other channels a snapshot. Positions for channels
        outside the subscription are ignored."""
        channels = subscriber.channels
        # What this process has delivered now; later events are queued live meanwhile.
        now = {c: self.positions.get(c, START) for c in channels}
        at = {c: self.position_id(c) for c in channels}
        parsed, failed = parse_positions(positions, channels)
        heads = await self._store.channel_heads(parsed)
        plan = plan_resume(positions, parsed, heads, now)
        failed.update(plan.failed)
        subscriber.floor = plan.floor or None
        await self._ensure_recent(channels)
        reads = await self._store.read_channels(plan.resume, until={c: now[c] for c in plan.resume})
        replay: list[str] = []
        changed: set[str] = set()
        batches = [
            [(event, plan.epochs[channel]) for event in events]
            for channel, (_, events) in sorted(reads.items())
        ]
        for event, epoch in heapq.merge(*batches, key=lambda e: stream_id_key(e[0].stream_id)):
            if event.event_type in INTERNAL:
                if event.event_type == STATUS_CHANGE:
                    changed.add(event.instance_id)
                continue
            message = Message.from_stored(event, epoch)
            if message is not None and subscriber.wants(message):
                replay.append(message.text_for(subscriber.operator_id))
        out: list[str] = []
        for channel, (reason, given) in sorted(failed.items()):
            out.append(resume_failed(channel, reason, given, heads.get(channel)))
            out += self._snapshot(subscriber, [channel], at=at)
        out += replay
        # Pot values are state, not events: the current ones follow the replay (live events
        # queued meanwhile come after them).
        rest = sorted(c for c in channels if c not in failed)
        return out + self._snapshot(subscriber, rest, changed, at=at)

    def _snapshot(
        self,
        subscriber: Subscriber,
        channels: Iterable[str],
        changed: set[str] | frozenset[str] = frozenset(),
        *,
        at: dict[str, str],
    ) -> list[str]:
        """The JackpotUpdateEvent (with recent_wins) of each of these channels that is Active,
        or whose status changed during a replay whatever its status; its event_id is the
        channel's position `at` (what the replay or the live events continue from)."""
        types = subscriber.selection.event_types
        if types is not None and UPDATE not in types:
            return []
        out = []
        for channel in channels:
            data = self._updates.get(channel)
            if data is None or (data["status"] != "Active" and channel not in changed):
                continue
            message = self._snapshots.get(channel)
            if message is None or message.event_id != at[channel]:
                with_wins = {**data, "recent_wins": self._recent.get(channel, [])}
                message = Message(UPDATE, channel, None, with_wins, at[channel])
                if at[channel] == self.position_id(channel):
                    self._snapshots[channel] = message
            out.append(message.text_for(subscriber.operator_id))
        return out

    async def _ensure_recent(self, instance_ids: Iterable[str]) -> None:
        missing = [i for i in instance_ids if i not in self._recent]
        if missing:
            await self._load_recent(missing, only_missing=True)

    async def _load_recent(self, instance_ids: Iterable[str], only_missing: bool = False) -> None:
        """Read the latest wins of these instances (one script call each, concurrently)."""
        async with self._recent_lock:
            ids = [i for i in instance_ids if not only_missing or i not in self._recent]
            if not ids:
                return
            if self.recent_wins <= 0:
                lists: list[list[Winner]] = [[] for _ in ids]
            else:
                lists = []
                for start in range(0, len(ids), RECENT_BATCH):  # within the connection pool
                    lists += await asyncio.gather(
                        *(
                            self._store.winners(i, limit=self.recent_wins)
                            for i in ids[start : start + RECENT_BATCH]
                        )
                    )
            for instance_id, winners in zip(ids, lists, strict=True):
                self._recent[instance_id] = [recent_win(w) for w in winners]
                self._snapshots.pop(instance_id, None)

    # -- delivery ----------------------------------------------------------------------------
    def _dispatch(self, message: Message) -> None:
        conflate = ("update", message.instance_id) if message.stream_id is None else None
        for subscriber in list(self.subscribers):
            if not subscriber.wants(message):
                continue
            if subscriber.floor and message.stream_id is not None:
                floor = subscriber.floor.get(message.instance_id)
                if floor is not None:
                    if stream_id_key(message.stream_id) <= stream_id_key(floor):
                        continue  # delivered before the subscriber resumed here
                    del subscriber.floor[message.instance_id]
            subscriber.push(message.text_for(subscriber.operator_id), conflate)

    async def drain(self, instance_ids: Iterable[str]) -> None:
        """Deliver the stream entries of these instances that this process has not yet."""
        async with self._drain_lock:
            ids = sorted(instance_ids)
            await self._see_new_instances(ids)
            reads = await self._store.read_channels({i: self.positions.get(i, START) for i in ids})
            changed: set[str] = set()
            won: set[str] = set()
            batches = []
            for instance_id, (epoch, events) in reads.items():
                current = epoch or NO_EPOCH
                self.epochs[instance_id] = current
                batches.append([(event, current) for event in events])
                if any(event.event_type in WIN_CHANGES for event in events):
                    won.add(instance_id)
            if won:  # before the wins go out: a snapshot taken after one lists it
                await self._load_recent(won)
            # Several instances' news in one drain: delivered in time order.
            for event, epoch in heapq.merge(*batches, key=lambda e: stream_id_key(e[0].stream_id)):
                self.positions[event.instance_id] = event.stream_id
                self._snapshots.pop(event.instance_id, None)  # its position moved
                if event.event_type in STATE_CHANGES:
                    changed.add(event.instance_id)
                if event.event_type in INTERNAL:
                    continue
                message = Message.from_stored(event, epoch)
                if message is not None:
                    self._dispatch(message)
            if changed:
                # After the events: the instance's new state.
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
                self._select(subscriber, config)

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

    async def _heartbeat_forever(self) -> None:
        while not self._stopping:
            await self.clock.sleep(min(self.ping_interval_s, self.pong_timeout_s) / 5)
            self.heartbeat()

    def heartbeat(self) -> None:
        """Ping whoever was not pinged for an interval; close (4408) whoever sent nothing for
        an interval and the pong timeout, and (4401) whoever's token expired. One loop for
        every socket of the process: no timer task per socket."""
        now = self.clock.now()
        wall = time.time()
        for subscriber in list(self.subscribers):
            if wall >= subscriber.expires_at:
                subscriber.close(CLOSE_UNAUTHORIZED, "TOKEN_EXPIRED")
            elif now - subscriber.last_seen >= self.ping_interval_s + self.pong_timeout_s:
                subscriber.close(CLOSE_PONG_TIMEOUT, "PONG_TIMEOUT")
            elif now - subscriber.last_ping >= self.ping_interval_s:
                subscriber.last_ping = now
                subscriber.push(PING, "ping")

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
            self._select(subscriber, config)
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
            data = update_data(config, definition, state)
            previous = self._updates.get(instance_id)
            if previous is not None and {**previous, "last_updated": None} == data:
                continue
            data["last_updated"] = now_ms
            self._updates[instance_id] = data
            self._snapshots.pop(instance_id, None)
            if publish:
                self._dispatch(
                    Message(UPDATE, instance_id, None, data, self.position_id(instance_id))
                )
