"""The `worker` process: an RQ worker on the queue Redis (never a cluster)."""

from __future__ import annotations

import logging
import threading
from typing import Any

from rq import Queue, SimpleWorker
from rq.timeouts import TimerDeathPenalty
from rq.worker import BaseWorker, HerokuWorker

from app.config import Settings
from app.queues import QUEUES
from app.store.connection import sync_client

MAINTENANCE_S = 30
# How long the worker's command listener (RQ's pubsub thread) waits for a message before it
# looks at its stop flag. RQ asks for 60 s; from redis-py 8.2 on, stopping the listener waits
# for that wait to end, so a worker could take a minute to stop or to finish a dev-mode burst.
PUBSUB_POLL_S = 0.5


class NoJobArguments(logging.Filter):
    """RQ's worker attaches a failed job's arguments to its error record (`extra`), which a
    JSON log line writes out: dropped. The jobs take ids, not secrets (workers.jobs), and a
    log line needs neither."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name in ("arguments", "kwargs"):
            record.__dict__.pop(name, None)
        return True


_NO_JOB_ARGUMENTS = NoJobArguments()


class PromptStop(BaseWorker):
    """Logs a job by its id (RQ's default line spells out every argument), and subscribes to
    RQ's worker commands with a short poll, so that the worker stops at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("log_job_description", False)
        super().__init__(*args, **kwargs)
        logging.getLogger("rq.worker").addFilter(_NO_JOB_ARGUMENTS)  # once: a set of filters

    def subscribe(self) -> None:
        self.log.info("Worker %s: subscribing to channel %s", self.name, self.pubsub_channel_name)
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(  # type: ignore[assignment]
            sleep_time=PUBSUB_POLL_S,
            daemon=True,
            exception_handler=self._pubsub_exception_handler,
        )


class ProcessWorker(PromptStop, HerokuWorker):
    """The Procfile's worker: HerokuWorker finishes the job in hand on SIGTERM."""


def queues(settings: Settings) -> list[Queue]:
    connection = sync_client(settings.queue_url)
    return [Queue(name, connection=connection) for name in QUEUES]


def run_worker(settings: Settings) -> None:
    """Blocking: the Procfile's `worker`. HerokuWorker finishes the job in hand on SIGTERM."""
    queue_list = queues(settings)
    # Maintenance (every MAINTENANCE_S) finds the jobs of a worker that died and retries
    # them; RQ's default is every 10 minutes.
    worker = ProcessWorker(
        queue_list, connection=queue_list[0].connection, maintenance_interval=MAINTENANCE_S
    )
    worker.work(with_scheduler=True)


class ThreadWorker(PromptStop, SimpleWorker):
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
