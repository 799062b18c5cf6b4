"""Scheduled work: instance activation and termination, raffle draws (`draw|<id>@<round>`,
one item per round, so a round is drawn once however often the item runs) and the archive of
each drawn round (`archive|<id>@<round>`, an item of its own, so it never holds up a draw).

Due items sit in a Redis sorted set and are claimed atomically with a lease, so a second
scheduler started by mistake does no double work, and a crashed one leaves nothing behind:
its items are claimable again when their lease runs out. The lease is short (LEASE_MS) and
renewed every RENEW_MS while an item runs here, so a killed scheduler's draws run within
LEASE_MS of its last renewal, wherever a successor is, while a long archive keeps its item.
Each claimed item runs in a task of its own: a slow one holds up no other, and the
scheduler's tick does not wait for them. On SIGTERM the scheduler stops claiming, gives the
running items a grace period and hands back what is still running (its lease set to now).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable

from app.core.clock import now_ms
from app.core.refusals import Refused
from app.services.admin.service import AdminService
from app.services.audit import SCHEDULER_ACTOR
from app.services.draws import Postponed
from app.services.raffles import RaffleService
from app.store import Store
from app.store.errors import StoreError

log = logging.getLogger("jackpot_gateway.scheduler")

LEASE_MS = 8_000
RENEW_MS = 2_000
BATCH = 100
MAX_PASSES = 10  # run_due: claims again for items the run made due (a draw's archive)

Handler = Callable[[str], Awaitable[object]]
# Items that run in a task of their own rather than after the instance's other due items: the
# ledger job (checkpoint, archive, trim) may take minutes and must hold up no draw.
OWN_TASK = frozenset({"ledger"})


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
            "purge_optins": admin.purge_optins,
            "draw": raffles.run_scheduled_draw,
            "archive": raffles.run_scheduled_archive,
        }
        self._running: dict[str, asyncio.Task[list[tuple[str, str]]]] = {}
        self._renewer: asyncio.Task[None] | None = None
        self._stopping = False

    def register(self, action: str, handler: Handler) -> None:
        self._handlers[action] = handler

    @property
    def running(self) -> list[str]:
        """The items (`<action>|<target>`) running in this process."""
        return sorted(self._running)

    async def start_due(self) -> list[asyncio.Task[list[tuple[str, str]]]]:
        """Claim the due items and start them, one task per instance (an instance's items
        run in due order; different instances' side by side); does not wait for them (the
        scheduler's tick). Nothing is claimed once stopping."""
        if self._stopping:
            return []
        groups: dict[str, list[tuple[str, str]]] = {}
        for action, target in await self._store.claim_due(now_ms(), BATCH, LEASE_MS):
            if f"{action}|{target}" in self._running:  # still running here
                continue
            # an instance's items run in due order, but for the long ones of their own
            group = f"{action}|{target}" if action in OWN_TASK else target.partition("@")[0]
            groups.setdefault(group, []).append((action, target))
        tasks = []
        for instance_id, items in groups.items():
            members = [f"{action}|{target}" for action, target in items]
            task = asyncio.create_task(self._run_group(items), name=f"scheduled {instance_id}")
            for member in members:
                self._running[member] = task
            task.add_done_callback(functools.partial(self._finished, members))
            tasks.append(task)
        if self._running and (self._renewer is None or self._renewer.done()):
            self._renewer = asyncio.create_task(self._renew(), name="scheduler leases")
        return tasks

    async def run_due(self) -> list[tuple[str, str]]:
        """Run every due item once, and the items that made due (a draw's archive), and wait
        for them; returns what was done. The first failure is raised after the others ran
        (its item stays leased and runs again when the lease ends)."""
        done: list[tuple[str, str]] = []
        for _ in range(MAX_PASSES):
            tasks = await self.start_due()
            if not tasks:
                break
            results = await asyncio.gather(*tasks, return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    raise result
                done += result
        if not self._running and self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(BaseException):
                await self._renewer
            self._renewer = None
        return done

    async def stop(self, grace_s: float) -> list[str]:
        """Stop claiming; wait up to `grace_s` for the running items, then cancel the rest
        and hand them back (due now, for another scheduler). Returns what was handed back."""
        self._stopping = True
        running = list(self._running.values())
        if running:
            await asyncio.wait(running, timeout=grace_s)
        left = sorted(self._running)
        for task in list(self._running.values()):
            task.cancel()
        for task in running:
            with contextlib.suppress(BaseException):
                await task
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(BaseException):
                await self._renewer
        if left:
            await self._store.release_due(left, now_ms())
            log.warning("scheduler stopping: handed back %s", ", ".join(left))
        return left

    async def _run_group(self, items: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [await self._run(action, target) for action, target in items]

    async def _run(self, action: str, target: str) -> tuple[str, str]:
        handler = self._handlers.get(action)
        if handler is None:
            log.error("unknown scheduled action %s for %s; dropped", action, target)
        else:
            try:
                await handler(target)
            except Refused as error:  # e.g. already terminated by an admin: nothing to do
                log.warning("%s %s skipped: %s", action, target, error.message)
            except Postponed as later:  # e.g. a paused raffle's draw
                log.info("%s %s postponed: %s", action, target, later)
                await self._store.schedule(action, target, later.due_ms)
                self._running.pop(f"{action}|{target}", None)
                return action, target
        await self._store.complete_due(action, target)
        self._running.pop(f"{action}|{target}", None)  # done: its lease is no longer renewed
        return action, target

    def _finished(self, members: list[str], task: asyncio.Task[list[tuple[str, str]]]) -> None:
        for member in members:
            self._running.pop(member, None)
        if task.cancelled():
            return
        error = task.exception()
        if isinstance(error, StoreError):  # one line while Redis is away, no traceback
            log.warning("%s: store %s: %s; retried after its lease", members, error.kind, error)
        elif error is not None:
            log.error("%s failed; retried after its lease", members, exc_info=error)

    async def _renew(self) -> None:
        """Renew the leases of the items running here while there are any."""
        while self._running:
            await asyncio.sleep(RENEW_MS / 1000)
            members = sorted(self._running)
            if members:
                try:
                    await self._store.renew_due(members, now_ms() + LEASE_MS)
                except StoreError as error:
                    log.warning("scheduler leases: store %s: %s", error.kind, error)
