"""Failed callbacks: deliveries that exhausted their retries, listed per operator and
redelivered on demand with the same delivery id (receivers de-duplicate on it).

No job and no record holds a secret: the worker reads the operator's callback secret from the
configuration when it signs, and the headers the caller gave its callback are held under the
delivery id (`app.store.keys.callback_headers`) until delivered, CALLBACK_HEADERS_TTL_S at
most."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from rq import Queue

from app.core.clock import now_ms
from app.core.refusals import Code, Refused
from app.core.security import Principal
from app.services.audit import AuditTrail
from app.services.callbacks import CALLBACK_HEADERS_TTL_S, CALLBACK_RETRY
from app.services.config import ConfigCache
from app.store import Store

LISTED = ("delivery_id", "operator_id", "instance_id", "url", "last_error", "attempts", "failed_at")
MAX_ERROR_CHARS = 500


class DeliveryService:
    def __init__(
        self, store: Store, config: ConfigCache, audit: AuditTrail, queue: Queue | None
    ) -> None:
        self._store = store
        self._config = config
        self._audit = audit
        self._queue = queue  # the callbacks queue

    async def record_failure(
        self,
        *,
        operator_id: str,
        instance_id: str | None,
        delivery_id: str,
        url: str,
        body: str,
        attempts: int,
        error: str,
    ) -> None:
        """Called by the worker when the last retry of a delivery failed. The caller's
        headers stay where they are held, until they expire or the redelivery succeeds."""
        await self._store.put_failed_delivery(
            operator_id,
            {
                "delivery_id": delivery_id,
                "operator_id": operator_id,
                "instance_id": instance_id,
                "url": url,
                "body": body,
                "attempts": attempts,
                "last_error": error[:MAX_ERROR_CHARS],
                "failed_at": now_ms(),
            },
        )

    async def headers(self, delivery_id: str) -> dict[str, str]:
        """The headers the caller gave the delivery's callback ({} once delivered or expired)."""
        return await self._store.held_callback_headers(delivery_id)

    async def delivered(self, delivery_id: str) -> None:
        """The delivery is done: the caller's headers are no longer needed."""
        await self._store.drop_callback_headers(delivery_id)

    async def failed(self, operator_id: str, limit: int = 1000) -> list[dict[str, Any]]:
        """The operator's failed deliveries, oldest first (headers and body not shown: they
        may carry the receiver's credentials)."""
        records = sorted(
            await self._store.failed_deliveries(operator_id),
            key=lambda record: (record["failed_at"], record["delivery_id"]),
        )
        return [{name: record[name] for name in LISTED} for record in records[:limit]]

    async def redeliver(self, by: Principal, operator_id: str, delivery_id: str) -> dict[str, Any]:
        """Queue the delivery again, once even when asked concurrently: same delivery id,
        body and headers (while held), signed with the operator's current secret, with the
        full retry policy."""
        record = await self._store.take_failed_delivery(operator_id, delivery_id)
        if record is None:
            raise Refused(
                Code.DELIVERY_NOT_FOUND, f"No failed delivery {delivery_id} to redeliver."
            )
        if self._queue is None:
            await self._store.put_failed_delivery(operator_id, record)
            raise Refused(Code.QUEUE_UNAVAILABLE, "The callback queue is not configured.")
        legacy_headers = record.pop("headers", None)  # a record written before they moved
        if legacy_headers:
            await self._store.hold_callback_headers(
                delivery_id, legacy_headers, CALLBACK_HEADERS_TTL_S
            )
        job_id = f"redelivery-{delivery_id}-{uuid.uuid4().hex[:8]}"
        try:
            await asyncio.to_thread(
                self._queue.enqueue,
                "workers.jobs.deliver_callback",
                record["url"],
                record["body"],
                delivery_id,
                operator_id=operator_id,
                instance_id=record["instance_id"],
                attempts_before=record["attempts"],
                job_id=job_id,
                description=f"redelivery {delivery_id}",
                retry=CALLBACK_RETRY,
            )
        except Exception:
            await self._store.put_failed_delivery(operator_id, record)  # still failed
            raise
        listed = {name: record[name] for name in LISTED}
        await self._audit.record(
            by, "callback.redeliver", delivery_id, before=listed, operators=[operator_id]
        )
        return listed

    async def redeliver_all(self, by: Principal, operator_id: str) -> list[str]:
        redelivered = []
        for record in await self.failed(operator_id):
            try:
                await self.redeliver(by, operator_id, record["delivery_id"])
            except Refused as error:
                if error.code is not Code.DELIVERY_NOT_FOUND:  # taken by a concurrent call: skip
                    raise
            else:
                redelivered.append(record["delivery_id"])
        return redelivered
