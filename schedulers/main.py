"""The `scheduler` process: one APScheduler ticking every second over the due set in Redis."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from app.services import Services
from app.store.errors import StoreError, classify

log = logging.getLogger("jackpot_gateway.scheduler")
TICK_SECONDS = 1


STOP_GRACE_SECONDS = 20  # on SIGTERM, how long running items may finish before hand-back


async def tick(services: Services) -> None:
    """Claim the due items and start them; running items are not waited for (each holds its
    own lease, renewed while it runs), so a long archive holds up no draw."""
    try:
        await services.lifecycle.start_due()
    except Exception as error:
        failure = classify(error)  # away, loading, full, read-only: the next tick retries
        if failure is None:
            raise
        # one line per tick while Redis cannot serve, no traceback
        log.warning("store %s: %s", failure.kind, failure)


async def sweep_ledgers(services: Services) -> None:
    """Make each instance's ledger item (checkpoint, archive, trim) due; the tick claims it."""
    try:
        await services.ledger.sweep()
    except Exception as error:
        failure = classify(error)
        if failure is None:
            raise
        log.warning("store %s: %s", failure.kind, failure)


def start_scheduler(services: Services) -> AsyncIOScheduler:
    """Start ticking on the running event loop; the due work itself is claimed in Redis."""
    # APScheduler logs two INFO lines for every run of a job, here two a second while idle.
    logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)
    scheduler = AsyncIOScheduler()
    scheduler.add_job(
        tick,
        "interval",
        args=[services],
        seconds=TICK_SECONDS,
        id="run-due",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=30,
    )
    scheduler.add_job(
        sweep_ledgers,
        "interval",
        args=[services],
        seconds=services.settings.ledger_job_interval_s,
        id="ledger-sweep",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=600,
        next_run_time=datetime.now(UTC),
    )
    if services.ledger.archive is None:
        log.warning(
            "LEDGER_ARCHIVE_URL is not set: ledgers are checkpointed but not archived, and "
            "they keep growing in Redis (docs/ledger.md)"
        )
    scheduler.start()
    return scheduler


async def run_scheduler(services: Services) -> None:
    """Blocking until SIGTERM/SIGINT: the Procfile's `scheduler`."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    scheduler = start_scheduler(services)
    log.info("scheduler started")
    try:
        await stop.wait()
    finally:
        scheduler.shutdown(wait=False)
        # the running items finish (a draw takes about a second), else go back to the
        # schedule due now, for another scheduler
        try:
            await services.lifecycle.stop(STOP_GRACE_SECONDS)
        except StoreError as error:
            log.warning(
                "store %s: %s; the running items' leases end on their own", error.kind, error
            )
        await services.close()
