"""The RQ worker stops promptly on every redis-py in range (a platform kills it after 30 s).

redis-py 8.2 made stopping RQ's command listener wait for its current poll, and RQ polls for
60 s: when the listener had just read a message (its own UNSUBSCRIBE reply, say) as the worker
stopped, the stop took a minute, in the Procfile's worker and after each dev-mode burst.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
from rq import Queue

from tests.support.redis_server import RedisServer
from workers.main import ThreadWorker

pytestmark = pytest.mark.real_redis
BIN = Path(sys.executable).parent


def test_listener_that_already_read_its_unsubscribe_reply_stops_at_once(
    redis_server: RedisServer,
) -> None:
    connection = redis.Redis(port=redis_server.port)
    worker = ThreadWorker([Queue("stop-test", connection=connection)], connection=connection)
    worker.subscribe()
    listener = worker.pubsub_thread
    assert listener is not None
    # The listener reads its UNSUBSCRIBE reply before it is told to stop (the race RQ loses
    # under load); with no subscription left, its next poll waits the whole poll time.
    worker.pubsub.unsubscribe()
    time.sleep(0.3)
    started = time.monotonic()
    worker.unsubscribe()
    assert not listener.is_alive()
    assert time.monotonic() - started < 2
    connection.close()


def test_dev_mode_bursts_run_jobs_without_a_minute_pause(redis_server: RedisServer) -> None:
    """Dev mode drains the queues in bursts from a thread while the web server holds the GIL."""
    connection = redis.Redis(port=redis_server.port)
    queue = Queue("burst-test", connection=connection)
    busy = threading.Event()

    def hold_the_interpreter() -> None:
        while not busy.is_set():
            sum(range(1000))

    spinner = threading.Thread(target=hold_the_interpreter, daemon=True)
    spinner.start()
    durations = []
    try:
        for _ in range(8):
            job = queue.enqueue(len, "abc")
            started = time.monotonic()
            ThreadWorker([queue], connection=connection).work(burst=True, logging_level="WARNING")
            durations.append(time.monotonic() - started)
            assert job.return_value() == 3
    finally:
        busy.set()
        connection.close()
    assert max(durations) < 2, durations


@pytest.mark.slow
def test_worker_process_exits_0_within_2_s_of_sigterm(redis_server: RedisServer) -> None:
    env = {
        **os.environ,
        "REDIS_URL": f"redis://127.0.0.1:{redis_server.port}/0",
        "JWT_SECRET": "w" * 40,
        "DRAW_KEY": "d" * 40,
        "LOG_FORMAT": "plain",
    }
    for attempt in range(3):
        process = subprocess.Popen(
            [str(BIN / "jackpot-gateway"), "worker"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert process.stdout is not None
            for line in process.stdout:  # RQ handles signals only once it listens
                if "Listening on" in line:
                    break
            time.sleep(0.5 + 0.3 * attempt)
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=30)
            took = time.monotonic() - started
        finally:
            if process.poll() is None:
                process.kill()
            output = process.communicate()[0]
        assert code == 0, output[-2000:]
        assert took < 2, (attempt, took)
