"""Fault table: `python -m bench.faults` (also `make bench-faults`).

    python -m bench.faults [--concurrency N] [--fault-seconds S] [--only NAME,...]

Starts the whole system on loopback ports: a state Redis and a queue Redis (each its own
redis-server with an AOF, so a `kill -9` loses nothing acknowledged), `serve` with
WEB_CONCURRENCY=2, and `worker` (restarted by this script when it exits, as a platform
would); the definitions of bench/definitions.yaml. Then, one fault at a time, it drives
contributions (each with a unique idempotency key) at N in flight, injects the fault, takes
it away, and checks what every caller was told against what the store holds:

  acknowledged   200 answers (synchronous) or 202 (asynchronous: accepted)
  lost           acknowledged, yet not in the store afterwards (asynchronous: neither applied
                 nor in the dead-letter list once the worker is done)
  wrong          a 500 or any answer outside 200/204/503/504; a 503 (nothing applied) for a
                 contribution that was applied; a 503/504 without Retry-After; money applied
                 twice (or not at all) after the retries
  no answer      sent, and the connection closed without an answer, and (in brackets) how
                 many of those were applied: allowed only inside a process killed with -9
                 (the caller retries with its key); one not applied is a request sent on an
                 idle keep-alive connection as the stopping server closed it
  recovery       seconds from the fault's end to the first acknowledged contribution

After each fault every caller retries its unacknowledged keys until answered 200/204, and
the instance's contributions total must grow by exactly one contribution per key. Dead
letters are replayed through the admin API and must then be applied. It is not a test
(pytest collects tests/ only); tests/test_bench.py runs it small. Exit status 1 when any
row has a lost or wrong answer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psutil
import redis

from app.services.contributions import delivery_id_for
from bench.contribute import (
    DEFINITIONS,
    INSTANCE_ID,
    PASSWORD_ENV,
    USERNAME,
    Processes,
    free_ports,
    gateway_command,
    healthy,
    wait_until,
)

ASYNC_BUDGET_HOURS = 0.002  # 7.2 s of retries stand for the hours of production
ANSWERED = {200, 204, 503, 504}
ASYNC_CALLERS = 2  # asynchronous load: 2 callers, each pausing between contributions
ASYNC_PAUSE_S = 0.25


# -- the system under test -------------------------------------------------------------------
class Receiver:
    """Callback receiver: counts deliveries by delivery id."""

    def __init__(self) -> None:
        self.deliveries: dict[str, int] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                delivery = self.headers.get("X-Jackpot-Delivery", "")
                receiver.deliveries[delivery] = receiver.deliveries.get(delivery, 0) + 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()


class DurableRedis:
    """A redis-server with an AOF, killed with -9 and restarted on its directory and port."""

    def __init__(self, processes: Processes, name: str, port: int) -> None:
        self.processes, self.name, self.port = processes, name, port
        self.dir = processes.workdir / name
        self.dir.mkdir()
        self.process: Any = None
        self.start()

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--dir", str(self.dir), "--save", "", "--appendonly", "yes"]
        command += ["--appendfsync", "everysec", "--enable-debug-command", "yes"]
        self.process = self.processes.start(self.name, command, dict(os.environ))
        wait_until(lambda: self.client().ping(), self.name, self.process, 30)

    def client(self, **options: Any) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=30, **options)

    def kill9(self) -> None:
        self.process.kill()
        self.process.wait()


@dataclass
class System:
    processes: Processes
    state: DurableRedis
    queue: DurableRedis
    env: dict[str, str]
    web_port: int
    receiver: Receiver
    web: Any = None
    worker: Any = None
    token: str = ""
    worker_restarts: int = 0
    keep_worker: bool = True
    notes: dict[str, Any] = field(default_factory=dict)
    _watch: threading.Thread | None = None

    def start_web(self) -> None:
        self.web = self.processes.start("web", [*gateway_command(), "serve"], self.env)
        wait_until(lambda: healthy(self.web_port), "web", self.web, 60)

    def start_worker(self) -> None:
        self.worker = self.processes.start("worker", [*gateway_command(), "worker"], self.env)

    def watch_worker(self) -> None:
        """Restart the worker when it exits (a platform's restart-on-failure)."""

        def watch() -> None:
            while self.keep_worker:
                if self.worker is not None and self.worker.poll() is not None:
                    self.worker_restarts += 1
                    time.sleep(1)
                    if self.keep_worker:
                        self.start_worker()
                time.sleep(0.1)

        self._watch = threading.Thread(target=watch, daemon=True)
        self._watch.start()

    def web_workers(self) -> list[psutil.Process]:
        children = psutil.Process(self.web.pid).children()
        return [c for c in children if "resource_tracker" not in " ".join(c.cmdline())]


def start_system(processes: Processes) -> System:
    state_port, queue_port, web_port = free_ports(3)
    state = DurableRedis(processes, "state-redis", state_port)
    queue = DurableRedis(processes, "queue-redis", queue_port)
    password = secrets.token_urlsafe(18)
    env = dict(os.environ)
    env.pop("REDIS_CLUSTER", None)
    env.update(
        {
            "REDIS_URL": f"redis://127.0.0.1:{state_port}/0",
            "QUEUE_REDIS_URL": f"redis://127.0.0.1:{queue_port}/0",
            "JWT_SECRET": secrets.token_hex(32),
            "DRAW_KEY": secrets.token_hex(32),
            PASSWORD_ENV: password,
            "HOST": "127.0.0.1",
            "PORT": str(web_port),
            "WEB_CONCURRENCY": "2",
            "CALLBACK_ALLOWLIST": "127.0.0.1",
            "ASYNC_RETRY_HOURS": str(ASYNC_BUDGET_HOURS),
            "WORKER_MAINTENANCE_SECONDS": "2",
            "REDIS_CONNECT_TIMEOUT_SECONDS": "1",
            "LOG_FORMAT": "plain",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        }
    )
    loaded = subprocess_run([*gateway_command(), "load", str(DEFINITIONS)], env)
    if loaded:
        raise RuntimeError(f"load failed: {loaded}")
    system = System(processes, state, queue, env, web_port, Receiver())
    system.start_web()
    system.start_worker()
    system.watch_worker()
    response = httpx.post(
        f"http://127.0.0.1:{web_port}/authenticate/service",
        json={"username": USERNAME, "password": password},
        timeout=10,
    )
    system.token = response.json()["token"]
    return system


def subprocess_run(command: list[str], env: dict[str, str]) -> str:
    import subprocess

    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    return "" if done.returncode == 0 else done.stderr.strip()[-500:]


# -- load and checks -------------------------------------------------------------------------
@dataclass
class Row:
    fault: str
    mode: str  # sync or async
    sent: int = 0
    acknowledged: int = 0
    lost: int = 0
    wrong: int = 0
    answers: dict[str, int] = field(default_factory=dict)
    recovery_s: float | None = None
    dead_letters: int = 0
    unanswered: int = 0  # sent, no answer
    unanswered_applied: int = 0  # of which applied: only allowed from a process killed -9
    killed: bool = False
    note: str = ""


class Load:
    """`concurrency` callers, each sending contributions with fresh keys until stopped."""

    def __init__(self, system: System, prefix: str, asynchronous: bool) -> None:
        self.system, self.prefix, self.asynchronous = system, prefix, asynchronous
        self.answers: dict[str, list[tuple[int, bool, float]]] = {}  # key -> (status, RA, t)
        self.no_answer: list[str] = []
        self.stopped = False
        self.count = 0

    def body(self, key: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "instance_id": INSTANCE_ID,
            "token": "session",
            "brand_id": "bench:brand1",
            "player_id": f"p{len(key) % 7}",
            "player_country": "DE",
            "base_wager": "1.00",
            "currency": "EUR",
            "idempotency_key": key,
        }
        if self.asynchronous:
            body["callback"] = {"url": self.system.receiver.url}
        return body

    async def send(self, http: httpx.AsyncClient, key: str) -> int | None:
        try:
            response = await http.post(
                "/jackpots/contribute",
                content=json.dumps(self.body(key)),
                headers={"Content-Type": "application/json"},
            )
        except httpx.ConnectError:  # never sent: not applied (a closed port, a refused one)
            self.answers.setdefault(key, []).append((0, False, time.monotonic()))
            return None
        except httpx.HTTPError:  # sent, no answer
            self.no_answer.append(key)
            self.answers.setdefault(key, []).append((-1, False, time.monotonic()))
            return None
        retry_after = "Retry-After" in response.headers
        self.answers.setdefault(key, []).append(
            (response.status_code, retry_after, time.monotonic())
        )
        return response.status_code

    async def caller(self, http: httpx.AsyncClient) -> None:
        while not self.stopped:
            self.count += 1
            key = f"{self.prefix}-{self.count}"
            status = await self.send(http, key)
            if status is None or status >= 500:
                await asyncio.sleep(0.05)  # a caller backs off a little
            if self.asynchronous:  # no faster than one worker applies them (a fork each)
                await asyncio.sleep(ASYNC_PAUSE_S)


def client(system: System, timeout: float = 30) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{system.web_port}",
        headers={"Authorization": f"Bearer {system.token}"},
        timeout=timeout,
        limits=httpx.Limits(max_connections=200),
    )


async def totals(http: httpx.AsyncClient) -> Decimal:
    response = await http.get(f"/admin/instances/{INSTANCE_ID}")
    response.raise_for_status()
    return Decimal(response.json()["totals"]["contributions"])


async def until_ready(http: httpx.AsyncClient, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if (await http.get("/ready")).status_code == 200:
                return
        await asyncio.sleep(0.1)
    raise RuntimeError("the system did not become ready")


async def recorded(http: httpx.AsyncClient, key: str) -> bool:
    query = {"instance_id": INSTANCE_ID, "idempotency_key": key}
    while True:
        response = await http.get("/jackpots/contributions", params=query)
        if response.status_code in (200, 404):
            return response.status_code == 200
        await asyncio.sleep(0.2)


async def run_fault(
    system: System,
    name: str,
    inject: Callable[[], Any],
    remove: Callable[[], Any],
    *,
    asynchronous: bool = False,
    concurrency: int = 16,
    fault_s: float = 3.0,
    note: str = "",
    killed: bool = False,
    before: Callable[[], Any] | None = None,
) -> Row:
    row = Row(name, "async" if asynchronous else "sync", note=note, killed=killed)
    load = Load(system, secrets.token_hex(4), asynchronous)
    async with client(system) as http:
        await until_ready(http)
        if before is not None:
            await asyncio.to_thread(before)
        start_total = await totals(http)
        count = min(concurrency, ASYNC_CALLERS) if asynchronous else concurrency
        callers = [asyncio.create_task(load.caller(http)) for _ in range(count)]
        await asyncio.sleep(1)
        await asyncio.to_thread(inject)
        await asyncio.sleep(fault_s)
        await asyncio.to_thread(remove)
        removed_at = time.monotonic()
        await asyncio.sleep(3)
        load.stopped = True
        await asyncio.gather(*callers)
        await until_ready(http)
        acked_status = 200  # an asynchronous contribution is accepted with a 200 too
        firsts = [
            t - removed_at
            for answers in load.answers.values()
            for status, _, t in answers
            if status == acked_status and t >= removed_at
        ]
        row.recovery_s = min(firsts) if firsts else None
        keys = list(load.answers)
        row.sent = sum(1 for a in load.answers.values() for status, _, _ in a if status != 0)
        for answers in load.answers.values():
            for status, retry_after, _ in answers:
                label = {0: "refused", -1: "no answer"}.get(status, str(status))
                row.answers[label] = row.answers.get(label, 0) + 1
                if status == -1:
                    row.unanswered += 1
                elif status > 0 and status not in ANSWERED:
                    row.wrong += 1
                if status in (503, 504) and not retry_after:
                    row.wrong += 1
        if asynchronous:
            await check_async(system, http, load, row)
        else:
            await check_sync(http, load, row)
        # A request sent without an answer: applied (its answer was dropped) or not (the
        # server closed an idle keep-alive connection as the request went out on it).
        for key in set(load.no_answer):
            if any(status in (200, 202) for status, _, _ in load.answers[key]):
                continue  # answered on a retry
            if await recorded(http, key):
                row.unanswered_applied += 1
        # Every caller retries its unacknowledged keys until answered; each applies once.
        for key in keys:
            if not any(status in (200, 202) for status, _, _ in load.answers[key]):
                while (await load.send(http, key)) not in (200, 202, 204):  # noqa: ASYNC110
                    await asyncio.sleep(0.2)
        if asynchronous:
            await settle_async(system, http, keys, row)
        grown = await totals(http) - start_total
        if grown != len(keys):  # 1.00 EUR per contribution (bench/definitions.yaml)
            row.wrong += abs(int(grown) - len(keys))
            row.note += f" totals grew {grown} for {len(keys)} keys"
    return row


async def check_sync(http: httpx.AsyncClient, load: Load, row: Row) -> None:
    for key, answers in load.answers.items():
        statuses = {status for status, _, _ in answers}
        exists = await recorded(http, key)
        if 200 in statuses:
            row.acknowledged += 1
            if not exists:
                row.lost += 1
        elif statuses <= {503, 0} and exists:  # "nothing was applied", yet it was
            row.wrong += 1


async def dead_letters(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await http.get("/admin/dead-letters", params={"limit": 1000})
    response.raise_for_status()
    return list(response.json()["dead_letters"])


async def check_async(system: System, http: httpx.AsyncClient, load: Load, row: Row) -> None:
    """Every accepted key ends applied or dead-lettered, once the worker is done with it."""
    accepted = [k for k, a in load.answers.items() if any(s == 200 for s, _, _ in a)]
    row.acknowledged = len(accepted)
    pending = set(accepted)
    # A job whose worker was killed -9 is retried once its worker's heartbeat expired and
    # maintenance found it abandoned (a minute or two).
    deadline = time.monotonic() + 180
    while pending and time.monotonic() < deadline:
        letters = {letter["delivery_id"] for letter in await dead_letters(http)}
        for key in list(pending):
            if delivery_id_for("bench", INSTANCE_ID, key) in letters:
                pending.discard(key)
                row.dead_letters += 1
            elif await recorded(http, key):
                pending.discard(key)
        if pending:
            await asyncio.sleep(0.5)
    row.lost = len(pending)


async def settle_async(system: System, http: httpx.AsyncClient, keys: list[str], row: Row) -> None:
    """Replay the dead letters; then every key is applied and its outcome delivered."""
    if row.dead_letters:
        response = await http.post("/admin/dead-letters/replay")
        response.raise_for_status()
    deadline = time.monotonic() + 90
    for key in keys:
        while not await recorded(http, key):
            if time.monotonic() > deadline:
                row.lost += 1
                break
            await asyncio.sleep(0.2)
    delivered = system.receiver.deliveries  # a thread's dict: polled
    while len(delivered) < row.acknowledged and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.2)


# -- the faults ------------------------------------------------------------------------------
def faults(system: System, args: argparse.Namespace) -> list[tuple[str, Any]]:
    state = system.state
    admin = state.client()
    spin: dict[str, Any] = {}

    def loading_on() -> None:
        admin.execute_command("DEBUG", "POPULATE", 20000, "ballast")
        admin.config_set("loading-process-events-interval-bytes", 1024)
        admin.config_set("key-load-delay", 100)
        spin["reload"] = threading.Thread(
            target=admin.execute_command, args=("DEBUG", "RELOAD"), daemon=True
        )
        spin["reload"].start()

    def loading_off() -> None:
        spin["reload"].join()
        admin.config_set("key-load-delay", 0)
        for key in admin.scan_iter("ballast:*", count=5000):
            admin.unlink(key)

    def busy_on() -> None:
        admin.config_set("busy-reply-threshold", 100)
        spinner = state.client()

        def run() -> None:
            with contextlib.suppress(redis.RedisError):
                spinner.eval("local i = 0 while true do i = i + 1 end", 0)

        spin["busy"] = threading.Thread(target=run, daemon=True)
        spin["busy"].start()

    def busy_off() -> None:
        while spin["busy"].is_alive():
            with contextlib.suppress(redis.RedisError):
                admin.script_kill()
            spin["busy"].join(0.1)
        admin.config_set("busy-reply-threshold", 5000)

    def replica_on() -> None:
        admin.execute_command("REPLICAOF", "127.0.0.1", 1)

    def replica_off() -> None:
        admin.execute_command("REPLICAOF", "NO", "ONE")

    def oom_on() -> None:
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", 1)

    def oom_off() -> None:
        admin.config_set("maxmemory", 0)

    def kill_web_worker() -> None:
        spin["victim"] = system.web_workers()[0]
        spin["victim"].kill()
        spin["killed_at"] = time.monotonic()

    def serving(worker: psutil.Process) -> bool:
        """The worker's event loop runs (an epoll descriptor): it imported the app and serves."""
        with contextlib.suppress(OSError, psutil.Error):
            for fd in os.listdir(f"/proc/{worker.pid}/fd"):
                if "eventpoll" in os.readlink(f"/proc/{worker.pid}/fd/{fd}"):
                    return True
        return False

    def web_worker_back() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            workers = system.web_workers()
            if len(workers) == 2 and all(serving(worker) for worker in workers):
                took = time.monotonic() - spin["killed_at"]
                spin["capacity"] = (
                    f"; full capacity (2 workers serving) {took:.1f} s after the kill"
                )
                return
            time.sleep(0.02)

    def sigterm_web() -> None:
        system.web.send_signal(signal.SIGTERM)
        spin["web_exit"] = system.web.wait(30)

    def restart_web() -> None:
        system.start_web()

    def kill_worker() -> None:
        for pid in [
            system.worker.pid,
            *(c.pid for c in psutil.Process(system.worker.pid).children(recursive=True)),
        ]:
            with contextlib.suppress(ProcessLookupError, psutil.Error):
                os.kill(pid, signal.SIGKILL)

    def queue_redis_kill() -> None:
        system.queue.kill9()

    def stop_worker() -> None:
        # The case: jobs accepted and queued (the worker is away), then the state
        # Redis goes away for longer than the retry budget while the worker runs them.
        system.keep_worker = False
        system.worker.send_signal(signal.SIGTERM)
        system.worker.wait(30)

    def state_down_long_on() -> None:
        state.kill9()
        system.start_worker()
        system.keep_worker = True
        system.watch_worker()

    def restart_state() -> None:
        state.start()

    system.notes = spin
    table: list[tuple[str, Any]] = [
        ("state Redis kill -9, restart on its AOF", dict(inject=state.kill9, remove=restart_state)),
        (
            "state Redis LOADING (dataset reload)",
            dict(inject=loading_on, remove=loading_off, fault_s=0.5),
        ),
        ("state Redis OOM (maxmemory, noeviction)", dict(inject=oom_on, remove=oom_off)),
        ("state Redis READONLY (demoted to replica)", dict(inject=replica_on, remove=replica_off)),
        ("state Redis BUSY (a script past 100 ms)", dict(inject=busy_on, remove=busy_off)),
        (
            "web worker kill -9 (1 of 2)",
            dict(inject=kill_web_worker, remove=web_worker_back, fault_s=0.5, killed=True),
        ),
        (
            "web SIGTERM under load, restarted",
            dict(inject=sigterm_web, remove=restart_web, fault_s=0.5),
        ),
        (
            f"state Redis down {ASYNC_BUDGET_HOURS * 3600 * 3:.0f} s > async budget (async load)",
            dict(
                inject=state_down_long_on,
                remove=restart_state,
                asynchronous=True,
                fault_s=ASYNC_BUDGET_HOURS * 3600 * 3,
                before=stop_worker,
            ),
        ),
        (
            "worker kill -9 (async load)",
            dict(inject=kill_worker, remove=lambda: None, asynchronous=True, killed=True),
        ),
        (
            "queue Redis kill -9, restart (async load)",
            dict(inject=queue_redis_kill, remove=system.queue.start, asynchronous=True),
        ),
    ]
    if args.only:
        wanted = [w.strip().lower() for w in args.only.split(",")]
        table = [(n, o) for n, o in table if any(w in n.lower() for w in wanted)]
    return table


def report(rows: list[Row], system: System, args: argparse.Namespace, took: float) -> None:
    print(
        f"\nFault table: {args.concurrency} callers in flight, WEB_CONCURRENCY=2, "
        f"async retry budget {ASYNC_BUDGET_HOURS * 3600:g} s, {took:.0f} s in all\n"
    )
    print(
        "| fault | load | sent | acknowledged | lost | wrong answers | no answer (applied) "
        "| dead letters (replayed) | recovery s | answers |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for row in rows:
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(row.answers.items()))
        recovery = "-" if row.recovery_s is None else f"{row.recovery_s:.2f}"
        print(
            f"| {row.fault} | {row.mode} | {row.sent} | {row.acknowledged} | {row.lost} | "
            f"{row.wrong} | {row.unanswered} ({row.unanswered_applied}) | {row.dead_letters} | "
            f"{recovery} | "
            f"{answers}{row.note} |"
        )
    print(f"\nworker restarts by the supervisor: {system.worker_restarts}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.faults", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--concurrency", type=int, default=16, help="callers in flight")
    parser.add_argument("--fault-seconds", type=float, default=3.0, help="how long a fault lasts")
    parser.add_argument("--only", help="comma-separated words: run the faults whose name has one")
    parser.add_argument("--keep", action="store_true", help="keep the logs' directory")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace, system: System) -> list[Row]:
    rows = []
    table = faults(system, args)
    notes = system.notes
    for name, options in table:
        options.setdefault("fault_s", args.fault_seconds)
        print(f"fault: {name} ...", file=sys.stderr, flush=True)
        row = await run_fault(system, name, concurrency=args.concurrency, **options)
        row.note += notes.pop("capacity", "") if "1 of 2" in name else ""
        print(f"  {row}", file=sys.stderr, flush=True)
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("redis-server") is None:
        print("redis-server is not on PATH", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="jg-faults-"))
    processes = Processes(workdir)
    started = time.monotonic()
    system = None
    try:
        system = start_system(processes)
        rows = asyncio.run(run(args, system))
        report(rows, system, args, time.monotonic() - started)
    finally:
        if system is not None:
            system.keep_worker = False
        processes.stop()
        if args.keep:
            print(f"logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    failed = any(
        row.lost or row.wrong or (row.unanswered_applied and not row.killed) for row in rows
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
