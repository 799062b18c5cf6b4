"""The `worker` process: an RQ worker on the queue Redis (never a cluster), supervised.

RQ's work loop ends on any failure it meets outside a job (Redis gone while it heartbeats,
a socket timeout, an OOM or LOADING reply of the queue Redis) and returns as if stopped.
`run_worker` runs it under supervision instead: a loop that ends on a stop request only
(exit 0); after a store failure it starts a fresh worker (new connections, a new RQ
scheduler, maintenance at once) with exponential backoff; any other failure exits 1 at
once, so a restart-on-failure supervisor restarts the process.
"""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from rq import Queue, SimpleWorker
from rq.job import Job, JobStatus
from rq.scripts import release_lock
from rq.timeouts import TimerDeathPenalty
from rq.worker import BaseWorker, HerokuWorker

from app.core.config import Settings
from app.core.queues import QUEUES
from app.services.deadletters import operator_of
from app.store.connection import sync_client
from app.store.errors import BackendError, classify

log = logging.getLogger("jackpot_gateway.worker")

# Maintenance (abandoned jobs of dead workers retried, a dead RQ scheduler started again)
# runs every WORKER_MAINTENANCE_SECONDS (30): an idle worker's blocking dequeue waits no
# longer than that.
RECONNECT_MIN_S = 0.5  # the first wait after a store failure; doubles up to the maximum
RECONNECT_MAX_S = 30.0
HEALTHY_AFTER_S = 60.0  # a worker that ran this long resets the backoff
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


# The methods of RQ's work loop (outside a job) whose failure ends it.
_LOOP_METHODS = (
    "bootstrap",
    "check_for_suspension",
    "run_maintenance_tasks",
    "dequeue_job_and_maintain_ttl",
    "execute_job",
    "heartbeat",
    "teardown",
)


def _recording(name: str) -> Callable[..., Any]:
    def method(self: Supervised, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(super(Supervised, self), name)(*args, **kwargs)
        except BaseException as error:
            if self.failure is None:
                self.failure = error
            raise

    method.__name__ = name
    return method


class Supervised(BaseWorker):
    """Remembers what ended RQ's work loop (RQ logs it and returns) and whether a stop was
    asked for; an idle worker runs its maintenance every `maintenance_interval`."""

    failure: BaseException | None = None
    stop_asked = False

    for _name in _LOOP_METHODS:
        locals()[_name] = _recording(_name)
    del _name

    @property
    def dequeue_timeout(self) -> int:
        # RQ blocks for worker_ttl - 15 s (405 s), running maintenance only between waits.
        return max(1, min(super().dequeue_timeout, int(self.maintenance_interval)))

    def handle_job_failure(self, job: Job, queue: Queue, *args: Any, **kwargs: Any) -> None:
        super().handle_job_failure(job, queue, *args, **kwargs)
        if job.get_status(refresh=False) == JobStatus.FAILED:  # no retry left: a dead letter
            lines = (kwargs.get("exc_string") or job.exc_info or "").strip().splitlines()
            log.error(
                "dead letter: job %s of queue %s (operator %s) could not run: %s",
                job.id,
                queue.name,
                operator_of(job),
                lines[-1] if lines else "no error recorded",
            )

    def handle_warm_shutdown_request(self) -> None:
        self.stop_asked = True  # before RQ asks Redis for the worker's state, which may fail
        super().handle_warm_shutdown_request()  # type: ignore[no-untyped-call]


class ProcessWorker(Supervised, PromptStop, HerokuWorker):
    """The Procfile's worker: HerokuWorker finishes the job in hand on SIGTERM."""


def queues(settings: Settings) -> list[Queue]:
    connection = sync_client(settings.queue_url)
    return [Queue(name, connection=connection) for name in QUEUES]


class Backoff:
    """Exponential waits with jitter, from RECONNECT_MIN_S up to RECONNECT_MAX_S."""

    def __init__(self, low: float = RECONNECT_MIN_S, high: float = RECONNECT_MAX_S) -> None:
        self.low, self.high, self.next = low, high, low

    def reset(self) -> None:
        self.next = self.low

    def wait(self) -> float:
        wait, self.next = self.next, min(self.high, self.next * 2)
        return wait * random.uniform(0.8, 1.0)


def _release_scheduler_locks(worker: BaseWorker) -> None:
    """The scheduler of a worker that ended holds its queues' locks for a minute: release
    them, so that the next worker's scheduler takes them at once."""
    scheduler = worker.scheduler
    if scheduler is None:
        return
    try:
        for name in QUEUES:
            release_lock(worker.connection, scheduler.get_locking_key(name), scheduler.name)
    except BackendError:
        pass  # they expire


def run_worker(
    settings: Settings,
    *,
    make_worker: Callable[[Settings], Supervised] | None = None,
    backoff: Backoff | None = None,
) -> int:
    """Blocking: the Procfile's `worker`; the exit status. 0 once stopped by SIGTERM or
    SIGINT (HerokuWorker finishes the job in hand), 1 on a failure that is no store failure.
    A store failure (either Redis gone, loading, full, ...) starts a fresh worker after a
    backoff, for as long as it takes."""
    make_worker = make_worker or _process_worker
    backoff = backoff or Backoff()
    stop = threading.Event()
    while True:
        started = time.monotonic()
        worker: Supervised | None = None
        failure: BaseException | None = None
        try:
            worker = make_worker(settings)  # RQ names its connection: Redis may be away
            worker.work(with_scheduler=True)
        except Exception as error:  # raised before or after RQ's own loop
            failure = error
        if worker is not None and worker.failure is not None:
            failure = worker.failure
        # RQ's handlers call the ended worker: a signal from now on stops the supervisor.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        if (worker is not None and worker.stop_asked) or stop.is_set():
            return 0
        store_failure = None if failure is None else classify(failure)
        if store_failure is None:
            log.error("worker: ended by %r, exiting", failure, exc_info=failure)
            return 1
        if worker is not None:
            _release_scheduler_locks(worker)
        if time.monotonic() - started > HEALTHY_AFTER_S:
            backoff.reset()
        wait = backoff.wait()
        log.warning("worker: store failure (%s); a new worker in %.1f s", store_failure, wait)
        if stop.wait(wait):
            return 0


def _process_worker(settings: Settings) -> Supervised:
    queue_list = queues(settings)
    return ProcessWorker(
        queue_list,
        connection=queue_list[0].connection,
        maintenance_interval=settings.worker_maintenance_s,
    )


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
