"""The worker heals: Redis going away, a dead RQ scheduler, an idle worker's maintenance.

The `worker` process outlives its Redis (it reconnects with backoff and serves again once
Redis is back), exits 0 on SIGTERM even while Redis is away, and exits 1 at once on a failure
that is no store failure; its RQ scheduler comes back after it died; an idle worker runs its
maintenance every WORKER_MAINTENANCE_SECONDS, not every 405 s.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.timeouts import TimerDeathPenalty

from app.core.config import Settings
from tests.conftest import DRAW_KEY, SECRET
from tests.support.redis_server import RedisServer
from tests.test_faults import DurableRedis
from workers.main import Backoff, PromptStop, Supervised, run_worker

pytestmark = pytest.mark.real_redis
ROOT = Path(__file__).resolve().parents[1]


def _env(url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "REDIS_URL": url,
        "JWT_SECRET": SECRET,
        "DRAW_KEY": DRAW_KEY,
        "LOG_FORMAT": "plain",
        **extra,
    }


@contextlib.contextmanager
def worker_process(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "jackpot-gateway"), "worker"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _until(check: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _finished(job: Job) -> bool:
    with contextlib.suppress(redis.RedisError):
        return job.get_status(refresh=True) == "finished"
    return False


@pytest.mark.slow
def test_the_worker_outlives_its_redis_and_serves_again_once_it_is_back(
    tmp_path: Path,
) -> None:
    server = DurableRedis("everysec")
    log = tmp_path / "worker.log"
    try:
        with worker_process(_env(server.url), log) as worker:
            _until(lambda: "Listening on" in log.read_text(), 20, "the worker to listen")
            server.kill9()
            time.sleep(4)  # RQ's own loop gave up long ago; the worker is still there
            assert worker.poll() is None, log.read_text()[-3000:]
            server.start()
            connection = redis.Redis(port=server.port)
            job = Queue("contributions", connection=connection).enqueue(len, "abc")
            _until(lambda: _finished(job), 40, "the job after Redis came back")
            assert job.return_value() == 3
            # Redis away again: SIGTERM still stops the worker at once, with 0.
            server.kill9()
            time.sleep(1)
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=10) == 0, log.read_text()[-3000:]
            connection.close()
    finally:
        server.stop()


@pytest.mark.slow
def test_a_dead_rq_scheduler_comes_back_and_runs_delayed_jobs(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """RQ's scheduler (a process of its own, for retries with a delay) died, as under an OOM
    Redis: the worker's maintenance starts it again."""
    redis_server.flush()
    log = tmp_path / "worker.log"
    env = _env(redis_server.url, WORKER_MAINTENANCE_SECONDS="1")
    connection = redis.Redis(port=redis_server.port)
    with worker_process(env, log) as worker:
        _until(lambda: "Listening on" in log.read_text(), 20, "the worker to listen")
        _until(lambda: len(psutil.Process(worker.pid).children()) >= 1, 10, "the scheduler")
        (scheduler,) = psutil.Process(worker.pid).children()  # idle: no work horse
        scheduler.kill()
        time.sleep(0.5)
        job = Queue("callbacks", connection=connection).enqueue_in(timedelta(seconds=1), len, "ab")
        _until(lambda: _finished(job), 20, "the delayed job")
        assert worker.poll() is None
        (again,) = psutil.Process(worker.pid).children()
        assert again.pid != scheduler.pid
    connection.close()


class Raising(SimpleWorker):
    """Its work loop meets `failure_to_raise` (RQ logs it and returns)."""

    death_penalty_class = TimerDeathPenalty
    failure_to_raise: BaseException = ValueError("a defect")

    def _install_signal_handlers(self) -> None:
        pass

    def dequeue_job_and_maintain_ttl(self, *args: Any, **kwargs: Any) -> Any:
        raise self.failure_to_raise


class FailingWorker(Supervised, PromptStop, Raising):
    pass


def test_a_failure_that_is_no_store_failure_exits_1_at_once(redis_server: RedisServer) -> None:
    connection = redis.Redis(port=redis_server.port)
    made = []

    def make(settings: Settings) -> Supervised:
        made.append(FailingWorker([Queue("heal", connection=connection)], connection=connection))
        return made[-1]

    assert run_worker(Settings(jwt_secret=SECRET), make_worker=make) == 1
    assert len(made) == 1
    assert isinstance(made[0].failure, ValueError)


def test_a_store_failure_starts_a_new_worker_after_a_backoff(redis_server: RedisServer) -> None:
    connection = redis.Redis(port=redis_server.port)
    made: list[Supervised] = []

    def make(settings: Settings) -> Supervised:
        worker = FailingWorker([Queue("heal", connection=connection)], connection=connection)
        worker.failure_to_raise = (
            redis.exceptions.ConnectionError("Redis went away")
            if len(made) < 3
            else ValueError("a defect")
        )
        made.append(worker)
        return worker

    started = time.monotonic()
    assert run_worker(Settings(jwt_secret=SECRET), make_worker=make, backoff=Backoff(0.1, 1)) == 1
    assert len(made) == 4
    # three waits of 0.1, 0.2 and 0.4 s less their jitter (up to a fifth)
    assert (0.1 + 0.2 + 0.4) * 0.8 <= time.monotonic() - started < 30


def test_an_idle_worker_runs_its_maintenance_every_interval(redis_server: RedisServer) -> None:
    connection = redis.Redis(port=redis_server.port)
    runs = []

    class Counting(Supervised, PromptStop, SimpleWorker):
        death_penalty_class = TimerDeathPenalty

        def _install_signal_handlers(self) -> None:
            pass

        def run_maintenance_tasks(self) -> None:
            runs.append(time.monotonic())
            super().run_maintenance_tasks()

    worker = Counting(
        [Queue("idle", connection=connection)], connection=connection, maintenance_interval=1
    )
    worker.work(max_idle_time=5, logging_level="WARNING")
    assert len(runs) >= 3, runs
