"""Scheduled work: instance activation and termination, raffle draws (`draw|<id>@<round>`,
one item per round, so a round is drawn once however often the item runs).

Due items sit in a Redis sorted set and are claimed atomically with a lease, so a second
scheduler started by mistake does no double work, and a crashed one leaves nothing behind.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from app.clock import now_ms
from app.refusals import Refused
from app.services.admin import AdminService
from app.services.audit import SCHEDULER_ACTOR
from app.services.raffles import RaffleService
from app.store import Store

log = logging.getLogger("jackpot_gateway.scheduler")

LEASE_MS = 60_000
BATCH = 100

Handler = Callable[[str], Awaitable[object]]


class LifecycleService:
    def __init__(self, store: Store, admin: AdminService, raffles: RaffleService) -> None:
        self._store = store
        self._handlers: dict[str, Handler] = {
            "activate": lambda instance_id: admin.set_status(
                instance_id, "activate", SCHEDULER_ACTOR
            ),
            "terminate": lambda instance_id: admin.set_status(
                instance_id, "terminate", SCHEDULER_ACTOR
            ),
            "draw": raffles.run_scheduled_draw,
        }

    def register(self, action: str, handler: Handler) -> None:
        self._handlers[action] = handler

    async def run_due(self) -> list[tuple[str, str]]:
        """Run every due item once; returns what was done."""
        done: list[tuple[str, str]] = []
        for action, instance_id in await self._store.claim_due(now_ms(), BATCH, LEASE_MS):
            handler = self._handlers.get(action)
            if handler is None:
                log.error("unknown scheduled action %s for %s; dropped", action, instance_id)
            else:
                try:
                    await handler(instance_id)
                except Refused as error:  # e.g. already terminated by an admin: nothing to do
                    log.warning("%s %s skipped: %s", action, instance_id, error.message)
            await self._store.complete_due(action, instance_id)
            done.append((action, instance_id))
        return done
