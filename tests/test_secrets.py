"""No secret leaves the process: the operator's callback secret, the credentials a caller puts
in its callback headers and the player's session token appear in no log line and no Redis
value (the jobs, their results and the worker's own records included).

The real RQ worker runs in-process on this test's own redis-server, at DEBUG, and every log
record of every logger is written as the processes write them (JSON, every `extra` field
included, and plain text). Then every key of the server is read by type and every value
searched, as stored and decompressed or decoded (RQ keeps job data zlib-compressed and
results base64-encoded).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from quart.testing import QuartClient
from rq import Queue
from rq.registry import ScheduledJobRegistry

import workers.jobs
from app.core.logs import line_formatter
from app.services import Services
from app.services.callbacks import CALLBACK_HEADERS_TTL_S, CALLBACK_RETRY
from app.store import keys
from tests import test_async_contribution as async_mode
from tests.conftest import DEMO_SECRET
from tests.support.definitions import instance
from tests.support.http import create_instance, expect, post, source_body, v1_body, v2_body
from tests.support.redis_values import found_in_redis, stored_values
from tests.test_async_contribution import Receiver, check_signed
from workers.main import ThreadWorker, queues

# The asynchronous-mode fixtures: callbacks to 127.0.0.1 allowed, a receiving HTTP server.
settings = async_mode.settings
headers = async_mode.headers
receiver = async_mode.receiver

pytestmark = [
    pytest.mark.real_redis,
    pytest.mark.parametrize("redis_url", ["real"], indirect=True),
]
CREDENTIAL = "Bearer receiver-credential-" + secrets.token_hex(8)
TOKEN = "player-session-" + secrets.token_hex(8)
ATTEMPTS = CALLBACK_RETRY.max + 1


async def drain(gateway: Services) -> None:
    """Run the queued jobs, then every scheduled retry at once, until none is left: the
    real worker (RQ's own logging at DEBUG), its jobs on this test's event loop."""
    workers.jobs.configure(gateway, asyncio.get_running_loop())
    queue_list = queues(gateway.settings)
    connection = queue_list[0].connection
    callbacks = Queue("callbacks", connection=connection)
    registry = ScheduledJobRegistry(queue=callbacks)
    while True:
        worker = ThreadWorker(queue_list, connection=connection)
        await asyncio.to_thread(worker.work, burst=True, logging_level="DEBUG")
        job_ids = registry.get_job_ids()
        if not job_ids:
            return
        for job_id in job_ids:
            job = callbacks.fetch_job(job_id)
            assert job is not None
            registry.remove(job)
            callbacks.enqueue_job(job)


def lines(records: list[logging.LogRecord]) -> Iterator[str]:
    """Each record as the web and worker processes write it, in JSON and in plain text."""
    formats = (
        line_formatter("worker", json_lines=True),
        line_formatter("worker", json_lines=False),
    )
    for record in records:
        for formatter in formats:
            yield formatter.format(record)


def leaks(url: str, records: list[logging.LogRecord]) -> list[str]:
    found = []
    searched = {"secret": DEMO_SECRET, "credential": CREDENTIAL, "token": TOKEN}
    for line in lines(records):
        found += [f"log: {name} in {line[:300]}" for name, text in searched.items() if text in line]
    # The operator's secret is in the configuration: the worker reads it there when it signs.
    found += found_in_redis(url, searched, allowed={keys.OPERATORS: {"secret"}})
    return sorted(set(found))


def hook(receiver: Receiver) -> dict[str, Any]:
    return {"url": receiver.url, "headers": {"Authorization": CREDENTIAL, "X-Ref": "r-1"}}


async def test_no_secret_in_any_log_line_or_redis_value(
    client: QuartClient,
    gateway: Services,
    headers: dict[str, str],
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    await create_instance(client, headers, instance("hooked"))
    await expect(
        await post(
            client,
            "/admin/sources",
            {
                "source_id": "slot",
                "owner_id": "demo:brand1",
                "source_name": "Slot",
                "instance_ids": ["hooked"],
            },
            headers,
        ),
        200,
    )
    requests = [
        ("/jackpots/contribute", v1_body("hooked", token=TOKEN, callback=hook(receiver))),
        ("/jackpots/contribute/source", source_body("slot", token=TOKEN, callback=hook(receiver))),
        (
            "/v2/jackpots/contribute",
            v2_body(
                "hooked",
                player={"id": "p1", "brand_id": "brand1", "country": "DE", "token": TOKEN},
                options={"callback": hook(receiver), "idempotency_key": "bet-1"},
            ),
        ),
    ]
    receiver.statuses.extend([500, 503])  # two deliveries fail once: retried, then delivered
    for path, body in requests:
        assert (await post(client, path, body, headers)).status_code == 200
    await drain(gateway)

    # The deliveries went out, signed and with the caller's headers (the test can fail).
    assert len(receiver.deliveries) == 5
    for delivery in receiver.deliveries:
        check_signed(delivery)
        assert delivery.headers["Authorization"] == CREDENTIAL
        assert delivery.headers["X-Ref"] == "r-1"
    # RQ's own lines were captured (its line per job names the queue).
    assert any("callbacks" in r.getMessage() for r in caplog.records if r.name == "rq.worker")
    assert leaks(gateway.settings.queue_url, caplog.records) == []
    # A duplicate of the delivered request (same idempotency key) queues nothing, and leaves
    # none of its headers behind.
    path, body = requests[2]
    assert (await post(client, path, body, headers)).status_code == 200
    assert sum(queue.count for queue in queues(gateway.settings)) == 0
    assert leaks(gateway.settings.queue_url, caplog.records) == []


async def test_a_dead_deliverys_headers_wait_for_its_redelivery_then_go(
    client: QuartClient,
    gateway: Services,
    headers: dict[str, str],
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A delivery that exhausted its retries keeps the caller's headers for the admins'
    redelivery, for CALLBACK_HEADERS_TTL at most (never in the failed delivery's record); the
    redelivery sends them, and once delivered they are gone."""
    caplog.set_level(logging.DEBUG)
    await create_instance(client, headers, instance("hooked"))
    receiver.statuses.extend([500] * ATTEMPTS)
    body = v1_body("hooked", token=TOKEN, callback=hook(receiver), base_wager=Decimal("2.00"))
    assert (await post(client, "/jackpots/contribute", body, headers)).status_code == 200
    await drain(gateway)
    assert len(receiver.deliveries) == ATTEMPTS
    delivery_id = receiver.deliveries[-1].headers["X-Jackpot-Delivery"]
    held = [
        key for key, _ in stored_values(gateway.settings.queue_url) if b"callback-headers" in key
    ]
    assert held == [keys.callback_headers(delivery_id).encode()]
    ttl = await gateway.store.client.ttl(keys.callback_headers(delivery_id))
    assert 0 < ttl <= CALLBACK_HEADERS_TTL_S
    failed = await gateway.store.failed_deliveries("demo")
    assert [CREDENTIAL in str(record) for record in failed] == [False]

    response = await client.post(
        f"/admin/callbacks/failed/{delivery_id}/redeliver", headers=headers
    )
    await expect(response, 202)
    await drain(gateway)
    redelivered = receiver.deliveries[-1]
    assert redelivered.headers["Authorization"] == CREDENTIAL
    check_signed(redelivered)
    assert leaks(gateway.settings.queue_url, caplog.records) == []
