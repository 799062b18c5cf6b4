"""Accepted means eventually applied or visibly refused: with the queue on its own Redis, the
state Redis away for less than ASYNC_RETRY_HOURS, every accepted asynchronous contribution is
applied once it is back; away for longer, each lands in the dead-letter list, which the admin
API, the CLI and the jg_dead_letters gauge show, and which a replay applies, once.
(Short settings: a budget of seconds stands for the hours of production.)"""

from __future__ import annotations

import asyncio
import json
import os
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import Queue
from rq.registry import FailedJobRegistry

from app import create_app
from app.cli import main
from app.services.deadletters import retry_within
from tests.conftest import DEMO, DRAW_KEY, SECRET, auth, load_demo, make_settings
from tests.support.definitions import instance
from tests.support.http import create_instance, expect, post, v1_body, view
from tests.support.redis_server import RedisServer
from tests.test_faults import ROOT, DurableRedis, HoldingReceiver, kill9, start_worker

pytestmark = pytest.mark.real_redis
CONTRIBUTE = "/jackpots/contribute"
BUDGET_HOURS = 0.002  # 7.2 s of retries (1 s apart) instead of hours


def test_the_retry_budget_spans_the_setting() -> None:
    for hours in (BUDGET_HOURS, 1, 6, 24):
        retry = retry_within(hours * 3600)
        assert sum(retry.intervals) >= hours * 3600
        assert retry.max == len(retry.intervals)
    assert retry_within(6 * 3600).intervals[:5] == [0, 5, 30, 120, 300]


async def _eventually(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


@pytest.mark.slow
async def test_accepted_contributions_are_applied_after_an_outage_or_dead_lettered_and_replayed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    state, queue = DurableRedis("everysec"), RedisServer()
    receiver = HoldingReceiver()
    settings = make_settings(
        state.url,
        queue_redis_url=queue.url,
        callback_allowlist=("127.0.0.1",),
        async_retry_hours=BUDGET_HOURS,
        redis_connect_timeout_s=0.3,
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "REDIS_URL": state.url,
        "QUEUE_REDIS_URL": queue.url,
        "JWT_SECRET": SECRET,
        "DRAW_KEY": DRAW_KEY,
        "CALLBACK_ALLOWLIST": "127.0.0.1",
        "LOG_FORMAT": "plain",
        "REDIS_CONNECT_TIMEOUT_SECONDS": "0.3",
        "WORKER_MAINTENANCE_SECONDS": "1",
    }
    log = tmp_path / "worker.log"
    queue_client = redis.Redis(port=queue.port)
    failed = FailedJobRegistry(queue=Queue("contributions", connection=queue_client))
    application = create_app(settings)
    worker = None
    try:
        async with application.test_app():
            gateway = application.extensions["gateway"]
            await load_demo(gateway)
            client = application.test_client()
            headers = auth(gateway, DEMO)
            await create_instance(client, headers, instance("dl"))

            async def accept(n: int, prefix: str) -> None:
                for i in range(n):
                    body = v1_body(
                        "dl", idempotency_key=f"{prefix}-{i}", callback={"url": receiver.url}
                    )
                    await expect(await post(client, CONTRIBUTE, body, headers), 200)

            async def applied() -> Decimal:
                return Decimal((await view(client, headers, "dl"))["totals"]["contributions"])

            # 1. An outage shorter than the budget: every job waits it out and applies.
            await accept(5, "short")
            state.kill9()
            worker = start_worker(env, log)
            await asyncio.sleep(2.5)
            state.start()

            async def delivered(n: int) -> bool:
                return len(receiver.deliveries) == n

            await _eventually(lambda: delivered(5), 30, "the jobs of a short outage")
            assert failed.count == 0
            each = await applied() / 5  # as the synchronous contribution would apply
            assert each > 0

            # 2. An outage longer than the budget: every job is a dead letter, shown.
            await accept(4, "long")
            state.kill9()

            async def four_dead() -> bool:
                return failed.count == 4

            await _eventually(four_dead, 40, "the dead letters")
            assert "dead letter: job contribution-" in log.read_text()
            state.start()
            assert await applied() == 5 * each
            listed = await expect(await client.get("/admin/dead-letters", headers=headers), 200)
            letters = listed["dead_letters"]
            assert len(letters) == 4
            assert {letter["kind"] for letter in letters} == {"contribution"}
            assert all(letter["operator_id"] == "demo" for letter in letters)
            assert "Store" in letters[0]["last_error"] or "store" in letters[0]["last_error"]
            scraped = await (await client.get("/metrics")).get_data(as_text=True)
            assert 'jg_dead_letters{queue="contributions"} 4.0' in scraped

            for name in ("REDIS_CLUSTER", "DEV_MODE"):
                monkeypatch.delenv(name, raising=False)
            monkeypatch.setenv("REDIS_URL", state.url)
            monkeypatch.setenv("QUEUE_REDIS_URL", queue.url)
            monkeypatch.setenv("JWT_SECRET", SECRET)
            monkeypatch.setenv("DRAW_KEY", DRAW_KEY)
            assert await asyncio.to_thread(main, ["dead-letters", "--operator", "demo"]) == 0
            lines = capsys.readouterr().out.splitlines()
            assert sorted(json.loads(line)["job_id"] for line in lines) == sorted(
                letter["job_id"] for letter in letters
            )
            assert await asyncio.to_thread(main, ["dead-letters", "--operator", "rival"]) == 0
            assert capsys.readouterr().out == ""

            # 3. Replayed (one by the CLI, the rest by the API): each applies once.
            first = letters[0]["job_id"]
            replay = ["replay", "--operator", "demo", "--job", first]
            assert await asyncio.to_thread(main, replay) == 0
            assert capsys.readouterr().out.strip() == f"queued {first}"
            again = await client.post(f"/admin/dead-letters/{first}/replay", headers=headers)
            await expect(again, 404, "JOB_NOT_FOUND")
            replayed = await expect(
                await client.post("/admin/dead-letters/replay", headers=headers), 202
            )
            assert len(replayed["replayed"]) == 3

            await _eventually(lambda: delivered(9), 30, "the replayed jobs")
            await asyncio.sleep(0.5)
            assert await applied() == 9 * each
            assert len(receiver.deliveries) == 9
            assert failed.count == 0
            scraped = await (await client.get("/metrics")).get_data(as_text=True)
            assert 'jg_dead_letters{queue="contributions"} 0.0' in scraped
    finally:
        if worker is not None and worker.poll() is None:
            kill9(worker)
        receiver.close()
        queue_client.close()
        state.stop()
        queue.stop()
