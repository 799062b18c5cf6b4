"""Failed callbacks: a delivery whose every retry failed is listed for its operator's admins
and redelivered on demand, once, with the same delivery id and body."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from quart.testing import QuartClient
from rq import Queue
from rq.registry import ScheduledJobRegistry

from app.core.security import Principal
from app.services import Services
from app.services.callbacks import CALLBACK_RETRY
from tests import test_async_contribution as async_mode
from tests.conftest import CLI, auth
from tests.support.definitions import instance
from tests.support.http import create_instance, expect, post, v1_body
from tests.test_async_contribution import Receiver, callback, check_signed, run_jobs
from workers.main import queues

# The asynchronous-mode fixtures: callbacks to 127.0.0.1 allowed, a receiving HTTP server.
settings = async_mode.settings
headers = async_mode.headers
receiver = async_mode.receiver

RIVAL_ADMIN = Principal("rival-admin", "rival", ("admin",))
ATTEMPTS = CALLBACK_RETRY.max + 1


async def exhaust_retries(gateway: Services) -> None:
    """Run every scheduled retry now instead of after its backoff, until none is left."""
    callbacks = Queue("callbacks", connection=queues(gateway.settings)[0].connection)
    registry = ScheduledJobRegistry(queue=callbacks)
    await run_jobs(gateway)
    while job_ids := registry.get_job_ids():
        for job_id in job_ids:
            job = callbacks.fetch_job(job_id)
            assert job is not None
            registry.remove(job)
            callbacks.enqueue_job(job)
        await run_jobs(gateway)


async def failing_delivery(
    client: QuartClient, gateway: Services, headers: dict[str, str], receiver: Receiver, name: str
) -> str:
    """An async contribution whose callback answers 500 to every attempt: its delivery id."""
    receiver.statuses.extend([500] * ATTEMPTS)
    body = v1_body(name, callback=callback(receiver))
    assert (await post(client, "/jackpots/contribute", body, headers)).status_code == 200
    await exhaust_retries(gateway)
    return str(receiver.deliveries[-1].headers["X-Jackpot-Delivery"])


async def failed(client: QuartClient, headers: dict[str, str]) -> list[Any]:
    response = await client.get("/admin/callbacks/failed", headers=headers)
    return list((await expect(response, 200))["deliveries"])


@pytest.fixture
async def hooked(client: QuartClient, headers: dict[str, str]) -> str:
    await create_instance(client, headers, instance("hooked"))
    return "hooked"


async def test_an_exhausted_delivery_is_listed_and_redelivered_with_its_id(
    client: QuartClient,
    gateway: Services,
    headers: dict[str, str],
    receiver: Receiver,
    hooked: str,
) -> None:
    delivery_id = await failing_delivery(client, gateway, headers, receiver, hooked)
    attempts = receiver.deliveries
    assert len(attempts) == ATTEMPTS
    assert {a.headers["X-Jackpot-Delivery"] for a in attempts} == {delivery_id}
    [record] = await failed(client, headers)
    assert record == {
        "delivery_id": delivery_id,
        "operator_id": "demo",
        "instance_id": "hooked",
        "url": receiver.url + "?ref=42",
        "last_error": record["last_error"],
        "attempts": ATTEMPTS,
        "failed_at": record["failed_at"],
    }
    assert "500" in record["last_error"]
    assert record["failed_at"] > 0

    response = await client.post(
        f"/admin/callbacks/failed/{delivery_id}/redeliver", headers=headers
    )
    assert (await expect(response, 202))["delivery_id"] == delivery_id
    assert await failed(client, headers) == []
    await run_jobs(gateway)
    redelivered = receiver.deliveries[-1]
    assert len(receiver.deliveries) == ATTEMPTS + 1
    assert redelivered.headers["X-Jackpot-Delivery"] == delivery_id
    assert redelivered.body == attempts[0].body
    check_signed(redelivered)
    # Decided once: a second redelivery finds nothing.
    response = await client.post(
        f"/admin/callbacks/failed/{delivery_id}/redeliver", headers=headers
    )
    await expect(response, 404, "DELIVERY_NOT_FOUND")
    audit = await client.get("/admin/audit", headers=headers, query_string={"count": 1000})
    entry = (await expect(audit, 200))["entries"][-1]
    assert (entry["action"], entry["target"], entry["by"]) == (
        "callback.redeliver",
        delivery_id,
        "demo-service",
    )


async def test_a_redelivery_that_fails_again_is_listed_again_with_all_its_attempts(
    client: QuartClient,
    gateway: Services,
    headers: dict[str, str],
    receiver: Receiver,
    hooked: str,
) -> None:
    delivery_id = await failing_delivery(client, gateway, headers, receiver, hooked)
    receiver.statuses.extend([503] * ATTEMPTS)
    await client.post(f"/admin/callbacks/failed/{delivery_id}/redeliver", headers=headers)
    await exhaust_retries(gateway)
    [record] = await failed(client, headers)
    assert (record["delivery_id"], record["attempts"]) == (delivery_id, 2 * ATTEMPTS)
    assert "503" in record["last_error"]


async def test_an_operator_sees_and_redelivers_only_its_own(
    client: QuartClient,
    gateway: Services,
    headers: dict[str, str],
    receiver: Receiver,
    hooked: str,
) -> None:
    delivery_id = await failing_delivery(client, gateway, headers, receiver, hooked)
    rival = auth(gateway, RIVAL_ADMIN)
    assert await failed(client, rival) == []
    response = await client.post(f"/admin/callbacks/failed/{delivery_id}/redeliver", headers=rival)
    await expect(response, 404, "DELIVERY_NOT_FOUND")
    response = await client.post("/admin/callbacks/failed/redeliver", headers=rival)
    assert await expect(response, 202) == {"redelivered": []}
    assert [r["delivery_id"] for r in await failed(client, headers)] == [delivery_id]


async def test_redeliver_all(
    client: QuartClient,
    gateway: Services,
    headers: dict[str, str],
    receiver: Receiver,
    hooked: str,
) -> None:
    first = await failing_delivery(client, gateway, headers, receiver, hooked)
    second = await failing_delivery(client, gateway, headers, receiver, hooked)
    assert [r["delivery_id"] for r in await failed(client, headers)] == [first, second]
    response = await client.post("/admin/callbacks/failed/redeliver", headers=headers)
    assert await expect(response, 202) == {"redelivered": [first, second]}
    await run_jobs(gateway)
    delivered = [d.headers["X-Jackpot-Delivery"] for d in receiver.deliveries[-2:]]
    assert sorted(delivered) == sorted([first, second])
    assert await failed(client, headers) == []


@pytest.mark.real_redis
@pytest.mark.parametrize("redis_url", ["real"], indirect=True)
async def test_concurrent_redeliveries_queue_it_once(
    client: QuartClient,
    gateway: Services,
    headers: dict[str, str],
    receiver: Receiver,
    hooked: str,
) -> None:
    delivery_id = await failing_delivery(client, gateway, headers, receiver, hooked)
    path = f"/admin/callbacks/failed/{delivery_id}/redeliver"
    responses = await asyncio.gather(*(client.post(path, headers=headers) for _ in range(10)))
    assert sorted(r.status_code for r in responses) == [202] + [404] * 9
    await run_jobs(gateway)
    assert len(receiver.deliveries) == ATTEMPTS + 1


async def test_cli_lists_and_redelivers(
    client: QuartClient,
    gateway: Services,
    headers: dict[str, str],
    receiver: Receiver,
    hooked: str,
    cli: CLI,
) -> None:
    delivery_id = await failing_delivery(client, gateway, headers, receiver, hooked)
    code, out, _ = await cli("failed-callbacks", "--operator", "demo")
    assert code == 0
    assert [json.loads(line)["delivery_id"] for line in out.splitlines()] == [delivery_id]
    assert await cli("redeliver", "--operator", "demo", "--delivery", delivery_id) == (
        0,
        f"queued {delivery_id}\n",
        "",
    )
    assert await cli("redeliver", "--operator", "demo", "--all") == (0, "", "")
    code, _, err = await cli("redeliver", "--operator", "demo", "--delivery", delivery_id)
    assert (code, err) == (1, f"error: No failed delivery {delivery_id} to redeliver.\n")
    await run_jobs(gateway)
    assert receiver.deliveries[-1].headers["X-Jackpot-Delivery"] == delivery_id
