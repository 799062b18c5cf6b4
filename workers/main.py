"""The `worker` process: an RQ worker on the queue Redis (never a cluster)."""

from __future__ import annotations

import threading

from rq import Queue, SimpleWorker
from rq.timeouts import TimerDeathPenalty
from rq.worker import HerokuWorker

from app.config import Settings
from app.queues import QUEUES
from app.store.connection import sync_client

MAINTENANCE_S = 30


def queues(settings: Settings) -> list[Queue]:
    connection = sync_client(settings.queue_url)
    return [Queue(name, connection=connection) for name in QUEUES]


def run_worker(settings: Settings) -> None:
    """Blocking: the Procfile's `worker`. HerokuWorker finishes the job in hand on SIGTERM."""
    queue_list = queues(settings)
    # Maintenance (every MAINTENANCE_S) finds the jobs of a worker that died and retries
    # them; RQ's default is every 10 minutes.
    worker = HerokuWorker(
        queue_list, connection=queue_list[0].connection, maintenance_interval=MAINTENANCE_S
    )
    worker.work(with_scheduler=True)


class ThreadWorker(SimpleWorker):
    """A worker that runs inside another process's thread (dev mode): no signals there."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:
        pass


def start_worker_thread(settings: Settings, poll_s: float = 0.2) -> threading.Event:
    """Dev mode: drain the queues in bursts from a thread until the returned event is set.

    RQ's blocking loop only notices a stop request between jobs, and its scheduler forks a
    process of its own; short bursts keep dev mode one process that stops at once.
    """
    stop = threading.Event()
    queue_list = queues(settings)

    def drain() -> None:
        while not stop.is_set():
            worker = ThreadWorker(queue_list, connection=queue_list[0].connection)
            worker.work(burst=True, logging_level="WARNING")
            stop.wait(poll_s)

    threading.Thread(target=drain, name="rq-worker", daemon=True).start()
    return stop
