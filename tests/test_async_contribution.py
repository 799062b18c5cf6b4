"""Asynchronous contributions: with a `callback` the API validates at once, answers an empty
200, and an RQ job contributes and POSTs the signed result to the callback.

Jobs run in-process: an RQ worker in a thread drains the queues (in burst mode) while the
jobs run their coroutines on the test's event loop (workers.jobs.configure), and deliver to
a real HTTP server on 127.0.0.1 started by the test. On real Redis and on fakeredis.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from quart.testing import QuartClient
from rq import Queue
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry

import workers.jobs
from app.core.config import Settings
from app.services import Services
from app.services.contributions import delivery_id_for
from tests.conftest import DEMO, DEMO_SECRET, auth, load_demo, make_settings
from tests.support.definitions import hit_rate, instance, pot
from tests.support.http import (
    create_instance,
    error_of,
    exact_json,
    post,
    set_status,
    source_body,
    v1_body,
    v2_body,
    view,
)
from tests.support.money import MULTIPLIERS, micros, split, to_player, units
from tests.support.snapshots import snapshot
from workers.main import ThreadWorker, queues

CONTRIBUTE = "/jackpots/contribute"
ALLOWED = ("127.0.0.1",)


@pytest.fixture
def settings(redis_url: str, request: pytest.FixtureRequest) -> Settings:
    """Callbacks to 127.0.0.1 allowed, unless a test parametrizes other overrides."""
    overrides = getattr(request, "param", {"callback_allowlist": ALLOWED})
    return make_settings(redis_url, **overrides)


@pytest.fixture
async def headers(gateway: Services, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    await load_demo(gateway)
    # Jobs use the services configured here; restore the module's state afterwards.
    monkeypatch.setattr(workers.jobs, "_context", None)
    return auth(gateway, DEMO)


@dataclass
class Delivery:
    path: str
    headers: Message
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body, parse_float=Decimal)


@dataclass
class Receiver:
    url: str
    deliveries: list[Delivery] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answers to give first; then 200


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real HTTP server on 127.0.0.1 that records every POST and answers 200."""
    deliveries: list[Delivery] = []
    statuses: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            deliveries.append(Delivery(self.path, self.headers, self.rfile.read(length)))
            self.send_response(statuses.pop(0) if statuses else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield Receiver(f"http://127.0.0.1:{server.server_address[1]}/hook", deliveries, statuses)
    server.shutdown()
    server.server_close()
    thread.join()


async def run_jobs(gateway: Services) -> None:
    """Drain the contribution and callback queues once, in a thread; the jobs' coroutines
    run on this (the test's) event loop, which stays free while we wait for the thread."""
    workers.jobs.configure(gateway, asyncio.get_running_loop())
    queue_list = queues(gateway.settings)
    worker = ThreadWorker(queue_list, connection=queue_list[0].connection)
    await asyncio.to_thread(worker.work, burst=True, logging_level="WARNING")


def queued(gateway: Services) -> int:
    return sum(queue.count for queue in queues(gateway.settings))


def callback(receiver: Receiver, **headers: str) -> dict[str, Any]:
    return {"url": receiver.url + "?ref=42", "headers": headers}


def check_signed(delivery: Delivery) -> None:
    expected = "sha256=" + hmac.new(DEMO_SECRET.encode(), delivery.body, hashlib.sha256).hexdigest()
    assert delivery.headers["X-Jackpot-Signature"] == expected
    assert delivery.headers["Content-Type"] == "application/json"
    assert len(delivery.headers["X-Jackpot-Delivery"]) >= 16


METADATA = {"bet": "b-7", "odds": Decimal("1.25")}


async def test_the_api_answers_an_empty_200_and_the_job_posts_the_signed_result(
    client: QuartClient, gateway: Services, headers: dict[str, str], receiver: Receiver
) -> None:
    await create_instance(
        client,
        headers,
        instance(
            "async",
            contribution_type={"Fixed": "2.00"},
            pots=[pot("mini", "0.5", hit_rate(1), reserve_share="0.2", seed="10")],
            house_share="0.5",
        ),
    )
    body = v1_body(
        "async",
        currency="USD",
        metadata=METADATA,
        callback=callback(receiver, **{"X-Operator-Ref": "op-123", "Authorization": "Bearer cb"}),
    )
    response = await post(client, CONTRIBUTE, body, headers)
    assert response.status_code == 200
    assert await response.get_data() == b""
    assert "X-Contribution-Id" not in response.headers
    assert (await view(client, headers, "async"))["totals"]["contributions"] == 0
    assert queued(gateway) == 1

    await run_jobs(gateway)
    assert queued(gateway) == 0
    (delivery,) = receiver.deliveries
    assert delivery.path == "/hook?ref=42"
    check_signed(delivery)
    assert delivery.headers["X-Operator-Ref"] == "op-123"
    assert delivery.headers["Authorization"] == "Bearer cb"
    result = delivery.json
    # 2.00 EUR: 1.00 to the pot, of which 0.20 to its reserve; the pot of 10.80 is won.
    assert result == {
        "instance_id": "async",
        "timestamp": result["timestamp"],
        "gameround_id": "round-1",
        "win_amount": to_player(micros("10.8"), "EUR", "USD", MULTIPLIERS),
        "win_pot_id": "mini",
        "tickets_awarded": 0,
        "raffle_round": None,
        "win_withheld": False,
        "contribution_currency": "USD",
        "contribution_amount": to_player(micros("2"), "EUR", "USD", MULTIPLIERS),
        "metadata": METADATA,
        "contribution_id": result["contribution_id"],
    }
    assert b'"odds":1.25' in delivery.body
    state = await view(client, headers, "async")
    assert state["totals"]["contributions"] == Decimal("2")
    assert state["totals"]["wins"] == Decimal("10.8")
    assert state["pots"]["mini"]["current_value"] == Decimal("10")

    # The same shape as a synchronous answer.
    sync = await post(client, CONTRIBUTE, {**body, "callback": None}, headers)
    assert set(await exact_json(sync)) == set(result) - {"contribution_id"}


async def test_by_source_and_v2_deliver_their_own_shapes(
    client: QuartClient, gateway: Services, headers: dict[str, str], receiver: Receiver
) -> None:
    await create_instance(client, headers, instance("linked"))
    target = await create_instance(
        client,
        headers,
        instance("main", contribution_type={"Fixed": "0.125"}, linked_instances=["linked"]),
    )
    response = await post(
        client,
        "/admin/sources",
        {
            "source_id": "slot",
            "owner_id": "demo:brand1",
            "source_name": "Slot",
            "instance_ids": ["main"],
        },
        headers,
    )
    assert response.status_code == 200
    by_source = source_body("slot", callback=callback(receiver), metadata=[1, "two"])
    assert (
        await post(client, "/jackpots/contribute/source", by_source, headers)
    ).status_code == 200
    v2 = v2_body("main", options={"callback": callback(receiver, **{"X-V": "2"})})
    response = await post(client, "/v2/jackpots/contribute", v2, headers)
    assert response.status_code == 200
    assert await response.get_data() == b""
    await run_jobs(gateway)

    first, second = receiver.deliveries
    for delivery in (first, second):
        check_signed(delivery)
    assert first.headers["X-Jackpot-Delivery"] != second.headers["X-Jackpot-Delivery"]
    assert first.json["instance_id"] == "main"
    assert first.json["contribution_amount"] == Decimal("0.12")  # 0.125 rounded down
    assert first.json["metadata"] == [1, "two"]
    assert second.headers["X-V"] == "2"
    items = second.json
    assert [(i["instance_id"], i["linked"], i["success"]) for i in items] == [
        ("main", False, True),
        ("linked", True, True),
    ]
    assert items[1]["result"]["contribution_amount"] == Decimal("1.00")
    state = await view(client, headers, "main")
    parts, house = split(2 * micros("0.12"), target["pots"])  # the jackpot gets what is paid
    assert state["pots"]["main"]["current_value"] == units(parts["main"][0])
    assert state["totals"]["house"] == units(house)
    assert (await view(client, headers, "linked"))["totals"]["contributions"] == 1


async def test_validation_errors_are_answered_at_once_and_nothing_is_queued(
    client: QuartClient, gateway: Services, headers: dict[str, str], receiver: Receiver
) -> None:
    await create_instance(client, headers, instance("checked", blocked_countries=["US"]))
    await create_instance(client, headers, instance("halted"))
    await set_status(client, headers, "halted", "pause")
    frozen = await snapshot(gateway.store)
    hook = callback(receiver)
    cases = [
        (v1_body("nope", callback=hook), 404, "INSTANCE_NOT_FOUND"),
        (v1_body("checked", callback=hook, brand_id="rival:main"), 403, "OPERATOR_FORBIDDEN"),
        (v1_body("checked", callback=hook, player_country="US"), 403, "COUNTRY_NOT_ALLOWED"),
        (v1_body("checked", callback=hook, currency="XYZ"), 422, "UNKNOWN_CURRENCY"),
        (v1_body("checked", callback=hook, base_wager="NaN"), 400, "VALIDATION_ERROR"),
        (v1_body("checked", callback={"headers": {}}), 400, "VALIDATION_ERROR"),
        (v1_body("checked", callback={"url": "ftp://127.0.0.1/x"}), 400, "VALIDATION_ERROR"),
        (
            v1_body("checked", callback={"url": receiver.url, "headers": {"Bad Name": "x"}}),
            400,
            "VALIDATION_ERROR",
        ),
    ]
    wrong = []
    for body, status, code in cases:
        got = await error_of(await post(client, CONTRIBUTE, body, headers))
        if got[:2] != (status, code):
            wrong.append((body, got))
    v2_cases = [
        (v2_body("nope", options={"callback": hook}), 404, "INSTANCE_NOT_FOUND"),
        (
            v2_body("checked", operator_id="rival", options={"callback": hook}),
            403,
            "OPERATOR_FORBIDDEN",
        ),
    ]
    for body, status, code in v2_cases:
        got = await error_of(await post(client, "/v2/jackpots/contribute", body, headers))
        if got[:2] != (status, code):
            wrong.append((body, got))
    assert wrong == []
    # A state refusal (the instance is paused) is the job's: it is delivered, see below.
    assert queued(gateway) == 0
    assert await snapshot(gateway.store) == frozen


@pytest.mark.parametrize("settings", [{}], indirect=True)
async def test_callbacks_to_private_addresses_are_refused_unless_allow_listed(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    await create_instance(client, headers, instance("cb"))
    for url in (
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "https://169.254.169.254/latest/meta-data",
        "http://0.0.0.0/hook",
        "http://127.1/hook",
        "http://2130706433/hook",
    ):
        response = await post(client, CONTRIBUTE, v1_body("cb", callback={"url": url}), headers)
        status, code, details = await error_of(response)
        assert (status, code, list(details)) == (422, "CALLBACK_NOT_ALLOWED", ["url"]), url
    # IPv6 literals and user info are not callback URLs at all (the published pattern).
    for url in (
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://user@10.0.0.1:80/hook",
    ):
        response = await post(client, CONTRIBUTE, v1_body("cb", callback={"url": url}), headers)
        assert response.status_code == 400, url
    assert queued(gateway) == 0
    # A public address is fine (the job is only queued here, never run).
    response = await post(
        client, CONTRIBUTE, v1_body("cb", callback={"url": "https://8.8.8.8/hook"}), headers
    )
    assert response.status_code == 200
    assert queued(gateway) == 1


async def test_an_allow_list_admits_exactly_its_hosts(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    await create_instance(client, headers, instance("cb"))
    ok = await post(
        client, CONTRIBUTE, v1_body("cb", callback={"url": "http://127.0.0.1:9/x"}), headers
    )
    assert ok.status_code == 200
    for url in ("http://localhost:9/x", "http://127.0.0.2:9/x"):
        response = await post(client, CONTRIBUTE, v1_body("cb", callback={"url": url}), headers)
        assert (await error_of(response))[:2] == (422, "CALLBACK_NOT_ALLOWED"), url
    assert queued(gateway) == 1


async def test_a_refusal_inside_the_job_is_delivered_as_an_error_with_the_metadata(
    client: QuartClient, gateway: Services, headers: dict[str, str], receiver: Receiver
) -> None:
    await create_instance(client, headers, instance("later-paused", linked_instances=[]))
    await create_instance(client, headers, instance("v2-paused"))
    metadata = {"ticket": "t-1", "amount": Decimal("0.50")}
    v1 = v1_body("later-paused", metadata=metadata, callback=callback(receiver))
    assert (await post(client, CONTRIBUTE, v1, headers)).status_code == 200
    v2 = v2_body("v2-paused", metadata=metadata, options={"callback": callback(receiver)})
    assert (await post(client, "/v2/jackpots/contribute", v2, headers)).status_code == 200
    await set_status(client, headers, "later-paused", "pause")
    await set_status(client, headers, "v2-paused", "pause")
    frozen = await snapshot(gateway.store)

    await run_jobs(gateway)
    first, second = receiver.deliveries
    check_signed(first)
    assert first.json == {
        "error": "Instance later-paused is not active.",
        "code": "INSTANCE_NOT_ACTIVE",
        "details": {},
        "metadata": metadata,
    }
    check_signed(second)
    (item,) = second.json
    assert (item["instance_id"], item["success"], item["error"]["code"]) == (
        "v2-paused",
        False,
        "INSTANCE_NOT_ACTIVE",
    )
    assert await snapshot(gateway.store) == frozen


async def test_a_repeated_idempotency_key_applies_once_and_delivers_once(
    client: QuartClient, gateway: Services, headers: dict[str, str], receiver: Receiver
) -> None:
    await create_instance(client, headers, instance("idem-async"))
    body = v1_body("idem-async", idempotency_key="async-1", callback=callback(receiver))
    for _ in range(2):
        assert (await post(client, CONTRIBUTE, body, headers)).status_code == 200
    await run_jobs(gateway)
    (delivery,) = receiver.deliveries
    assert delivery.headers["X-Jackpot-Delivery"] == delivery_id_for(
        "demo", "idem-async", "async-1"
    )
    assert (await view(client, headers, "idem-async"))["totals"]["contributions"] == 1


async def test_a_failed_delivery_is_retried_with_the_same_delivery_id_and_signature(
    client: QuartClient, gateway: Services, headers: dict[str, str], receiver: Receiver
) -> None:
    await create_instance(client, headers, instance("retried"))
    receiver.statuses.append(500)
    body = v1_body("retried", callback=callback(receiver))
    assert (await post(client, CONTRIBUTE, body, headers)).status_code == 200
    await run_jobs(gateway)
    (failed,) = receiver.deliveries
    delivery_id = failed.headers["X-Jackpot-Delivery"]
    connection = queues(gateway.settings)[0].connection
    job = Job.fetch(f"callback-{delivery_id}", connection=connection)
    assert job.get_status() == JobStatus.SCHEDULED  # retried later, with backoff
    assert job.retries_left == 5

    # Run the retry now instead of waiting for its backoff.
    callbacks = Queue("callbacks", connection=connection)
    ScheduledJobRegistry(queue=callbacks).remove(job)
    callbacks.enqueue_job(job)
    await run_jobs(gateway)
    failed_again, delivered = receiver.deliveries
    assert failed_again is failed
    assert delivered.headers["X-Jackpot-Delivery"] == delivery_id
    assert delivered.body == failed.body
    check_signed(delivered)
    assert Job.fetch(job.id, connection=connection).get_status() == JobStatus.FINISHED
    assert (await view(client, headers, "retried"))["totals"]["contributions"] == 1


# -- durability: one job per key, jobs safe to run twice, early refusals ----------------
async def test_concurrent_duplicates_enqueue_one_job_and_deliver_once_with_a_derived_id(
    client: QuartClient, gateway: Services, headers: dict[str, str], receiver: Receiver
) -> None:
    await create_instance(client, headers, instance("dup"))
    body = v1_body("dup", idempotency_key="bet-9", callback=callback(receiver))
    answers = await asyncio.gather(*(post(client, CONTRIBUTE, body, headers) for _ in range(20)))
    assert [a.status_code for a in answers] == [200] * 20
    assert queued(gateway) == 1
    await run_jobs(gateway)
    (delivery,) = receiver.deliveries
    check_signed(delivery)
    assert delivery.headers["X-Jackpot-Delivery"] == delivery_id_for("demo", "dup", "bet-9")
    # The outcome read back by its key is the one delivered.
    query = {"instance_id": "dup", "idempotency_key": "bet-9"}
    recorded = await client.get("/jackpots/contributions", query_string=query, headers=headers)
    assert delivery.json["contribution_id"] == recorded.headers["X-Contribution-Id"]
    assert (await view(client, headers, "dup"))["totals"]["contributions"] == 1
    # Asked again after delivery: nothing new is queued (the job is still remembered).
    assert (await post(client, CONTRIBUTE, body, headers)).status_code == 200
    assert queued(gateway) == 0


async def test_a_job_run_twice_without_a_caller_key_applies_once_and_delivers_once(
    client: QuartClient, gateway: Services, headers: dict[str, str], receiver: Receiver
) -> None:
    """A worker that dies after contributing leaves its job to be run again: the job's own
    idempotency key makes the second run a replay, and the delivery is queued once."""
    await create_instance(client, headers, instance("crash"))
    v1 = v1_body("crash", callback=callback(receiver))
    v2 = v2_body("crash", options={"callback": callback(receiver)})
    for path, body in (("/jackpots/contribute", v1), ("/v2/jackpots/contribute", v2)):
        assert (await post(client, path, body, headers)).status_code == 200
    connection = queues(gateway.settings)[0].connection
    contributions = Queue("contributions", connection=connection)
    job_ids = list(contributions.job_ids)
    await run_jobs(gateway)
    first = [d.json for d in receiver.deliveries]
    assert len(first) == 2
    for job_id in job_ids:  # run each job again, as RQ does with an abandoned one
        contributions.enqueue_job(Job.fetch(job_id, connection=connection))
    await run_jobs(gateway)
    assert [d.json for d in receiver.deliveries] == first
    v1_result, v2_items = first
    assert v2_items[0]["result"]["contribution_id"] != v1_result["contribution_id"]
    assert (await view(client, headers, "crash"))["totals"]["contributions"] == 2


async def test_what_the_current_state_refuses_is_answered_at_once(
    client: QuartClient, gateway: Services, headers: dict[str, str], receiver: Receiver
) -> None:
    await create_instance(client, headers, instance("optin", opt_in_required=True))
    await create_instance(client, headers, instance("paused"))
    await set_status(client, headers, "paused", "pause")
    cases = [
        (
            "/jackpots/contribute",
            v1_body("optin", callback=callback(receiver)),
            403,
            "NOT_OPTED_IN",
        ),
        (
            "/jackpots/contribute",
            v1_body("paused", callback=callback(receiver)),
            409,
            "INSTANCE_NOT_ACTIVE",
        ),
        (
            "/v2/jackpots/contribute",
            v2_body("paused", options={"callback": callback(receiver)}),
            409,
            "INSTANCE_NOT_ACTIVE",
        ),
    ]
    for path, body, status, code in cases:
        assert (await error_of(await post(client, path, body, headers)))[:2] == (status, code)
    assert queued(gateway) == 0
