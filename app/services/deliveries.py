"""Failed callbacks: deliveries that exhausted their retries, listed per operator and
redelivered on demand with the same delivery id (receivers de-duplicate on it)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from rq import Queue

from app.clock import now_ms
from app.refusals import Code, Refused
from app.security import Principal
from app.services.audit import AuditTrail
from app.services.callbacks import CALLBACK_RETRY
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
        headers: dict[str, str],
        body: str,
        attempts: int,
        error: str,
    ) -> None:
        """Called by the worker when the last retry of a delivery failed."""
        await self._store.put_failed_delivery(
            operator_id,
            {
                "delivery_id": delivery_id,
                "operator_id": operator_id,
                "instance_id": instance_id,
                "url": url,
                "headers": headers,
                "body": body,
                "attempts": attempts,
                "last_error": error[:MAX_ERROR_CHARS],
                "failed_at": now_ms(),
            },
        )

    async def failed(self, operator_id: str, limit: int = 1000) -> list[dict[str, Any]]:
        """The operator's failed deliveries, oldest first (headers and body not shown: they
        may carry the receiver's credentials)."""
        records = sorted(
            await self._store.failed_deliveries(operator_id),
            key=lambda record: (record["failed_at"], record["delivery_id"]),
        )
        return [{name: record[name] for name in LISTED} for record in records[:limit]]

    async def redeliver(self, by: Principal, operator_id: str, delivery_id: str) -> dict[str, Any]:
        """Queue the delivery again, once even when asked concurrently: same delivery id and
        body, signed with the operator's current secret, with the full retry policy."""
        record = await self._store.take_failed_delivery(operator_id, delivery_id)
        if record is None:
            raise Refused(
                Code.DELIVERY_NOT_FOUND, f"No failed delivery {delivery_id} to redeliver."
            )
        if self._queue is None:
            await self._store.put_failed_delivery(operator_id, record)
            raise Refused(Code.QUEUE_UNAVAILABLE, "The callback queue is not configured.")
        operator = (await self._config.get()).operators.get(operator_id) or {}
        try:
            await asyncio.to_thread(
                self._queue.enqueue,
                "workers.jobs.deliver_callback",
                record["url"],
                record["headers"],
                record["body"],
                delivery_id,
                operator.get("callback_secret"),
                operator_id=operator_id,
                instance_id=record["instance_id"],
                attempts_before=record["attempts"],
                job_id=f"redelivery-{delivery_id}-{uuid.uuid4().hex[:8]}",
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
