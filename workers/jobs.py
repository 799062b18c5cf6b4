"""RQ jobs: an asynchronous contribution, then the delivery of its result to the callback.

Jobs run the same services as the web process. In the `worker` process they run on a
private event loop; in dev mode (a worker thread inside the web process) they run on the web
process's loop, configured with `configure()`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine
from concurrent.futures import Future
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urlsplit

from rq import Queue, get_current_job

from app.core import jsonio
from app.core.config import Settings
from app.core.refusals import Refused
from app.core.security import Principal
from app.schemas.contributions import (
    ContributeBySourceSchema,
    ContributeSchema,
    ContributeV2Schema,
    ContributionResponseSchema,
    ContributionV2ItemSchema,
    is_reserved_header,
)
from app.services import Services
from app.services.callbacks import (
    CALLBACK_RETRY,
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    deliver,
    sign,
)
from app.store.jobs import enqueue_once

log = logging.getLogger("jackpot_gateway.worker")
T = TypeVar("T")

CALLBACK_TIMEOUT_S = 10


class JobContext:
    def __init__(self, services: Services, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.services = services
        self._loop = loop
        self._runner = None if loop else asyncio.Runner()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if self._loop is not None:
            future: Future[T] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
            return future.result(timeout=60)
        assert self._runner is not None
        return self._runner.run(coroutine)


_context: JobContext | None = None


def configure(services: Services, loop: asyncio.AbstractEventLoop | None = None) -> None:
    global _context
    _context = JobContext(services, loop)


def context() -> JobContext:
    if _context is None:
        configure(Services.create(Settings.from_env()))
    assert _context is not None
    return _context


def run_contribution(
    principal: dict[str, Any],
    kind: str,
    body_json: str,
    delivery_id: str,
    queue_name: str,
    own_key: str | None = None,
) -> None:
    """Contribute, then queue the delivery of the response (or the refusal) to the callback.

    Safe to run again (RQ retries it when its worker died or the store failed): the
    contribution carries an idempotency key (the caller's, else `own_key`), so a second run
    replays the first outcome, and the delivery job's id is the delivery id, so it is
    queued once. A store failure raises: RQ retries the job."""
    ctx = context()
    who = Principal(principal["username"], principal["operator_id"], tuple(principal["roles"]))
    data = json.loads(body_json, parse_float=Decimal)
    contributions = ctx.services.contributions
    payload: Any
    if kind == "v2":
        body = ContributeV2Schema().load(data)
        callback = body["options"]["callback"]
        if own_key:
            body["options"]["idempotency_key"] = own_key
        try:
            outcome = ctx.run(contributions.contribute_v2(who, body))
            payload = ContributionV2ItemSchema(many=True).dump(outcome.items)
            for shaped, item in zip(payload, outcome.items, strict=True):
                if "contribution_id" in item:
                    shaped["result"]["contribution_id"] = item["contribution_id"]
        except Refused as error:
            payload = {**error.to_dict(), "metadata": body["metadata"]}
    else:
        schema = ContributeBySourceSchema() if "source_id" in data else ContributeSchema()
        body = schema.load(data)
        callback = body["callback"]
        if own_key:
            body["idempotency_key"] = own_key
        try:
            result = ctx.run(contributions.contribute_v1(who, body))
            payload = {
                **ContributionResponseSchema().dump(result.body),
                "contribution_id": result.contribution_id,
            }
        except Refused as error:
            payload = {**error.to_dict(), "metadata": body["metadata"]}
    # Ids, not secrets: the delivery reads the operator's secret and the caller's headers
    # when it signs and sends.
    enqueue_once(
        Queue(queue_name, connection=_current_connection()),
        deliver_callback,
        callback["url"],
        jsonio.dumps(payload),
        delivery_id,
        operator_id=who.operator_id,
        instance_id=_instance_of(payload),
        job_id=f"callback-{delivery_id}",
        description=f"callback {delivery_id}",
        retry=CALLBACK_RETRY,
    )
    log.info("contribution %s done; callback queued", delivery_id)


def _instance_of(payload: Any) -> str | None:
    """The instance a delivered result is about (the target's, for a v2 list)."""
    first = payload[0] if isinstance(payload, list) and payload else payload
    return first.get("instance_id") if isinstance(first, dict) else None


def _current_connection() -> Any:
    job = get_current_job()
    assert job is not None
    return job.connection


def deliver_callback(
    url: str,
    body: str,
    delivery_id: str,
    *,
    operator_id: str = "",
    instance_id: str | None = None,
    attempts_before: int = 0,
) -> int:
    """POST the result, signed with the operator's current callback secret and with the
    headers the caller gave (held under the delivery id until delivered); a non-2xx answer
    (a redirect too: never followed) raises, so RQ retries with backoff (at least once
    delivery: receivers de-duplicate on the delivery id header). When the last retry fails,
    the delivery is recorded for the operator's admins to see and redeliver."""
    ctx = context()
    deliveries = ctx.services.deliveries
    try:
        headers = ctx.run(deliveries.headers(delivery_id))
        secret = ctx.run(ctx.services.contributions.callback_secret(operator_id))
        status = post_callback(url, headers, body, delivery_id, secret)
    except Exception as error:
        job = get_current_job()
        # RQ retries while retries_left > 0; it is 0 once the policy ran out, None without one.
        retries_left = None if job is None else job.retries_left
        if operator_id and not retries_left:
            exhausted = retries_left == 0
            ctx.run(
                deliveries.record_failure(
                    operator_id=operator_id,
                    instance_id=instance_id,
                    delivery_id=delivery_id,
                    url=url,
                    body=body,
                    attempts=attempts_before + (CALLBACK_RETRY.max + 1 if exhausted else 1),
                    error=f"{type(error).__name__}: {error}",
                )
            )
        log.warning("callback %s not delivered: %s", delivery_id, type(error).__name__)
        raise
    ctx.run(deliveries.delivered(delivery_id))
    return status


def post_callback(
    url: str, headers: dict[str, str], body: str, delivery_id: str, secret: str | None
) -> int:
    """One POST. The URL is checked again here, against the address actually connected to."""
    data = body.encode()
    # The operator's headers, less those that would change how the request is framed or sent
    # (refused when the request arrived; a record from before that rule may still have them).
    sent = {k: v for k, v in headers.items() if not is_reserved_header(k)}
    sent["Content-Type"] = "application/json"
    sent[DELIVERY_HEADER] = delivery_id
    if secret:
        sent[SIGNATURE_HEADER] = sign(secret, data)
    outcomes = context().services.metrics.callbacks
    allowlist = context().services.settings.callback_allowlist
    try:
        status = deliver(url, sent, data, allowlist, CALLBACK_TIMEOUT_S)
    except Exception:
        outcomes.labels("failed").inc()
        raise
    outcomes.labels("delivered").inc()
    log.info("callback %s delivered to %s: %s", delivery_id, urlsplit(url).hostname, status)
    return status
