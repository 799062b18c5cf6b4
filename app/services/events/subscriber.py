"""One websocket of the event stream: what it chose, what it may see, what waits to be sent.

Its outbox is bounded: a discrete event (a win, an opt-in) queues up, while a pending
JackpotUpdateEvent of an instance is replaced by the newer one (conflation). A subscriber
whose outbox exceeds `queue_limit` is closed with 1013: it cannot slow the others, nor grow
the process's memory.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from app.core.security import Principal
from app.services.events.messages import Message

CLOSE_GOING_AWAY = 1001
CLOSE_TRY_AGAIN_LATER = 1013
CLOSE_UNAUTHORIZED = 4401
CLOSE_PONG_TIMEOUT = 4408


@dataclass(frozen=True)
class Selection:
    """What a subscriber chose: event types (None: all), instances and brands (None and
    None: every visible instance; otherwise the visible instances named or allowed to one
    of the brands)."""

    event_types: frozenset[str] | None = None
    instance_ids: frozenset[str] | None = None
    brands: frozenset[str] | None = None


class Subscriber:
    __slots__ = (
        "_seq",
        "_waiter",
        "allowance",
        "channels",
        "close_code",
        "close_reason",
        "expires_at",
        "floor",
        "held",
        "last_ping",
        "last_seen",
        "operator_id",
        "outbox",
        "principal",
        "queue_limit",
        "selection",
        "visible",
    )

    def __init__(
        self, principal: Principal, visible: frozenset[str], queue_limit: int, now: float
    ) -> None:
        self.principal = principal
        # Whom MASKS mask for, and the key of what it may see: the operator of a service; for
        # a display token no operator at all (every player masked, app.core.security.viewer).
        self.operator_id = principal.viewer
        self.visible = visible
        self.selection = Selection()
        self.channels = visible  # the instances it receives: visible and selected
        self.queue_limit = queue_limit
        self.allowance = 0  # the last snapshot's length: it does not count as lagging
        self.outbox: OrderedDict[Any, str] = OrderedDict()
        # resumed past what this process has delivered: skip a channel's events up to these
        self.floor: dict[str, str] | None = None
        self.held = True  # until the snapshot or the replay is in front of the outbox
        # the sender waiting for news (a bare future: an asyncio.Event holds a deque too)
        self._waiter: asyncio.Future[None] | None = None
        self.expires_at = float("inf")  # the token's expiry, epoch seconds (heartbeat checks)
        self.close_code: int | None = None
        self.close_reason = ""
        self.last_seen = now  # the last frame received (heartbeat)
        self.last_ping = now
        self._seq = 0

    def wants(self, message: Message) -> bool:
        types = self.selection.event_types
        return message.instance_id in self.channels and (
            types is None or message.event_type in types
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
        # updates are conflated, one per channel at most: only discrete events count as lag
        if len(self.outbox) > self.queue_limit + len(self.channels) + self.allowance:
            self.close(CLOSE_TRY_AGAIN_LATER, "too slow: the event queue overflowed")
        elif not self.held:
            self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait(self) -> None:
        """Until there is something to send (or it is closed)."""
        while self.close_code is None and (self.held or not self.outbox):
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def next_text(self) -> str | None:
        """The next message to send, None when nothing is queued (or it is closed)."""
        if not self.outbox or self.close_code is not None:
            return None
        _, text = self.outbox.popitem(last=False)
        if not self.outbox:
            # A dict keeps the table it grew to (a snapshot's hundreds of entries): start
            # an idle socket again from an empty one.
            self.outbox = OrderedDict()
        return text

    def hold(self) -> None:
        """Stop sending and forget what is queued: a new snapshot or replay replaces it."""
        self.held = True
        self.outbox.clear()
        self.floor = None

    def release(self, prefix: list[str]) -> None:
        """Put the prefix (authentication answer, snapshot or replay) before what live events
        queued meanwhile, and start sending."""
        queued = self.outbox
        self.outbox = OrderedDict()
        self.allowance = len(prefix)
        for text in prefix:
            self._seq += 1
            self.outbox[self._seq] = text  # an int key: the smallest (a snapshot has hundreds)
        self.outbox.update(queued)
        self.held = False
        self._wake()

    def close(self, code: int, reason: str) -> None:
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
            self.outbox = OrderedDict()
            self._wake()
