"""Dead letters: queued jobs that could not run, kept until an admin replays them.

An accepted asynchronous contribution is either applied (and its outcome delivered) or
visible here; so is a callback delivery that could not even be recorded as failed (the state
store away when its last retry failed). A job's store failures are retried with backoff for
`ASYNC_RETRY_HOURS` (`retry_within`); a job that still fails then, or fails with anything
else, ends in RQ's failed-job registry of its queue, in the queue Redis (which does not
depend on the state store). That registry is the dead-letter list: listed per operator,
replayed with the job's own arguments and id (a contribution carries its idempotency key, so
a replay applies it once), counted by the `jg_dead_letters` gauge, and the worker logs one
line for each job that lands in it.
"""

from __future__ import annotations

import asyncio
from itertools import chain, repeat
from typing import Any

from rq import Queue, Retry
from rq.exceptions import InvalidJobOperation
from rq.job import Job
from rq.registry import FailedJobRegistry

from app.core.queues import CALLBACK_QUEUE, CONTRIBUTION_QUEUE
from app.core.refusals import Code, Refused
from app.core.security import Principal
from app.services.audit import AuditTrail
from app.store.jobs import queue_call

# The waits between a job's attempts (seconds): quick at first, then every 5 minutes.
RETRY_STEPS_S = (0, 5, 30, 120, 300)
KINDS = {CONTRIBUTION_QUEUE: "contribution", CALLBACK_QUEUE: "callback"}
MAX_ERROR_CHARS = 500


def retry_within(budget_s: float) -> Retry:
    """Retries whose waits add up to `budget_s`: RETRY_STEPS_S, each at most an eighth of
    the budget (at least 1 s), the last step repeated. 6 hours: 76 retries."""
    cap = max(1, int(min(RETRY_STEPS_S[-1], budget_s / 8)))
    intervals: list[int] = []
    total = 0
    for step in chain(RETRY_STEPS_S, repeat(RETRY_STEPS_S[-1])):
        if total >= budget_s and intervals:
            break
        intervals.append(min(step, cap))
        total += intervals[-1]
    return Retry(max=len(intervals), interval=intervals)


def operator_of(job: Job) -> str | None:
    """The operator a queued job works for: a contribution's caller, a delivery's receiver."""
    operator = job.kwargs.get("operator_id") or job.meta.get("operator_id")
    if operator:
        return str(operator)
    first = job.args[0] if job.args else None
    if isinstance(first, dict) and first.get("operator_id"):
        return str(first["operator_id"])
    return None


def delivery_of(job: Job) -> str | None:
    """The delivery id of the job (a contribution's outcome is delivered under it)."""
    for prefix in ("contribution-", "callback-"):
        if job.id.startswith(prefix):
            return job.id[len(prefix) :]
    return None


def _last_error(job: Job) -> str:
    result = job.latest_result()
    text = result.exc_string if result is not None else job.exc_info
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return (lines[-1] if lines else "")[:MAX_ERROR_CHARS]


def describe(job: Job, queue_name: str) -> dict[str, Any]:
    """A dead letter as listed: never the job's arguments (they may carry credentials)."""
    ended = job.ended_at or job.enqueued_at
    return {
        "job_id": job.id,
        "kind": KINDS.get(queue_name, queue_name),
        "operator_id": operator_of(job),
        "delivery_id": delivery_of(job),
        "enqueued_at": int(job.enqueued_at.timestamp() * 1000) if job.enqueued_at else None,
        "failed_at": int(ended.timestamp() * 1000) if ended else None,
        "last_error": _last_error(job),
    }


class DeadLetterService:
    def __init__(self, queues: dict[str, Queue] | None, audit: AuditTrail) -> None:
        self._queues = queues or {}  # by name; empty when asynchronous mode is off
        self._audit = audit

    def _jobs(self, operator_id: str | None) -> list[tuple[Job, str]]:
        found = []
        for name, queue in self._queues.items():
            registry = FailedJobRegistry(queue=queue)
            ids = registry.get_job_ids()
            for job in Job.fetch_many(ids, connection=queue.connection):
                if job is not None and (operator_id is None or operator_of(job) == operator_id):
                    found.append((job, name))
        return found

    async def listed(self, operator_id: str, limit: int = 1000) -> list[dict[str, Any]]:
        """The operator's dead letters, oldest first."""
        jobs = await asyncio.to_thread(queue_call, self._jobs, operator_id)
        letters = [describe(job, name) for job, name in jobs]
        letters.sort(key=lambda letter: (letter["failed_at"] or 0, letter["job_id"]))
        return letters[:limit]

    async def counts(self) -> dict[str, int]:
        def count() -> dict[str, int]:
            return {name: FailedJobRegistry(queue=q).count for name, q in self._queues.items()}

        return await asyncio.to_thread(queue_call, count)

    async def replay(self, by: Principal, operator_id: str, job_id: str) -> dict[str, Any]:
        """Queue the job again with its own arguments and id (at most once: the registry
        gives it up to one caller)."""

        def take() -> dict[str, Any] | None:
            for name, queue in self._queues.items():
                registry = FailedJobRegistry(queue=queue)
                if job_id not in registry:
                    continue
                job = Job.fetch(job_id, connection=queue.connection)
                if operator_of(job) != operator_id:
                    return None
                letter = describe(job, name)
                try:
                    registry.requeue(job)
                except InvalidJobOperation:  # taken by a concurrent replay
                    return None
                return letter
            return None

        letter = await asyncio.to_thread(queue_call, take)
        if letter is None:
            raise Refused(Code.JOB_NOT_FOUND, f"No dead letter {job_id} to replay.")
        await self._audit.record(
            by, "dead_letter.replay", job_id, before=letter, operators=[operator_id]
        )
        return letter

    async def replay_all(self, by: Principal, operator_id: str) -> list[str]:
        replayed = []
        for letter in await self.listed(operator_id):
            try:
                await self.replay(by, operator_id, letter["job_id"])
            except Refused as error:
                if error.code is not Code.JOB_NOT_FOUND:  # replayed by a concurrent call
                    raise
                continue
            replayed.append(letter["job_id"])
        return replayed
