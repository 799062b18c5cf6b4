"""A range of an instance's ledger replayed without holding up the process that asks.

The first INLINE_MAX entries are replayed in the process (the replay shares the event loop:
small pages, short bursts, app/services/books.py). A longer range, a reconciliation with no
recent checkpoint, goes on in a child process (one spawned worker, reading Redis itself), so
a web process's requests keep their latency while it runs; the event loop only awaits it. An
in-process store (fakeredis: dev mode, tests) is not reachable from a child: it stays inline.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor

from app.core.config import Settings
from app.services.books import Books, replay
from app.store import Store

INLINE_MAX = 5_000  # entries replayed in the asking process before the rest moves out
REPLAY_PAGE = 100  # entries a round trip in the asking process (parsing a page holds the loop)
# Entries a round trip in the child: every XRANGE page holds Redis while it is read, and the
# contributions queue behind it; 1,000-entry pages made their p99 1.95x quiet, 100-entry
# pages 1.08x, and the replay was faster (bench/ledger.py, 10^6 entries, docs/ledger.md).
CHILD_PAGE = 100
CHILD_NICENESS = 19  # the lowest priority: the CPU goes to the web process and Redis first
PARENT_CHECK_S = 1.0  # how often the child looks whether the process that asked is still there


class Replayer:
    def __init__(self, store: Store, settings: Settings | None = None) -> None:
        self._store = store
        self._settings = settings
        self.inline_max = INLINE_MAX
        self._pool: ProcessPoolExecutor | None = None

    @property
    def can_move_out(self) -> bool:
        return self._settings is not None and not self._settings.redis_url.startswith("memory://")

    async def replay(
        self,
        instance_id: str,
        pot_ids: list[str],
        start: Books | None,
        after_id: str | None,
        last_id: str,
    ) -> Books:
        """The books after the entries (after_id, last_id] (from the first with no after_id),
        continuing from `start`."""
        if not last_id:
            return await replay(pot_ids, _nothing(), start=start)
        seen: dict[str, str | int] = {"last": after_id or "", "count": 0}
        limit = self.inline_max if self.can_move_out else None

        async def entries() -> AsyncIterator[dict[str, str]]:
            async for entry_id, fields in self._store.ledger_entries(
                instance_id, f"({after_id}" if after_id else "-", last_id, page=REPLAY_PAGE
            ):
                seen["last"], seen["count"] = entry_id, int(seen["count"]) + 1
                yield fields
                if limit is not None and int(seen["count"]) >= limit:
                    return

        books = await replay(pot_ids, entries(), start=start)
        settings = self._settings
        if settings is None or limit is None or int(seen["count"]) < limit:
            return books
        if seen["last"] == last_id:
            return books
        return await asyncio.get_running_loop().run_in_executor(
            self._executor(),
            _replay_in_child,
            settings,
            instance_id,
            pot_ids,
            books,
            str(seen["last"]),
            last_id,
        )

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_child,
                initargs=(os.getpid(),),
            )
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def _start_child(parent_pid: int) -> None:
    """In the child: yield the CPU to the requests of the process that asked (a report can
    wait; a contribution should not), and leave when that process is gone: killed (SIGKILL,
    out of memory) it cannot shut its pool down, and the child would wait for work forever."""
    with contextlib.suppress(OSError, AttributeError):
        os.nice(CHILD_NICENESS)
    threading.Thread(
        target=_exit_with_parent, args=(parent_pid,), name="exit-with-parent", daemon=True
    ).start()


def _exit_with_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(PARENT_CHECK_S)
    os._exit(0)


async def _nothing() -> AsyncIterator[dict[str, str]]:
    return
    yield


def _replay_in_child(
    settings: Settings,
    instance_id: str,
    pot_ids: list[str],
    books: Books,
    after_id: str,
    last_id: str,
) -> Books:
    """In the child process: the rest of the range, at full speed."""

    async def run() -> Books:
        store = Store.from_settings(settings)
        try:
            entries = (
                fields
                async for _, fields in store.ledger_entries(
                    instance_id, f"({after_id}", last_id, page=CHILD_PAGE
                )
            )
            return await replay(pot_ids, entries, start=books, share_loop=False)
        finally:
            await store.close()

    return asyncio.run(run())
