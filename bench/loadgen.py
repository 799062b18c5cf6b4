"""The load generator of `bench.contribute`, run as its own process (`python -m bench.loadgen`).

A light client, so the two-core machine is left to the server: asyncio protocols over raw
sockets speaking a minimal keep-alive HTTP/1.1 (one request in flight per connection), no
HTTP library. Parameters come as JSON on stdin, results go as JSON on stdout.

Each phase starts every connection's loop together and ends when the deadline has passed
and every request in flight has been answered, so the Redis counters read between phases
see whole requests only.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import redis

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CURRENCIES = ("EUR", "USD", "GBP", "SEK")
COUNTRIES = ("SE", "DE", "GB", "FI", "MT")
HEAD_END = b"\r\n\r\n"


class ResponseError(Exception):
    """The server's bytes were not an HTTP/1.1 response this client understands."""


class HttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed by the server"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is None or self.waiter.done():
            return
        try:
            parsed = self._parse()
        except ResponseError as error:
            self.waiter.set_exception(error)
            return
        if parsed is not None:
            self.waiter.set_result(parsed)

    def _parse(self) -> tuple[int, bytes] | None:
        buffer = self.buffer
        end = buffer.find(HEAD_END)
        if end < 0:
            return None
        head = bytes(buffer[:end]).lower()
        if not head.startswith(b"http/1.1 "):
            raise ResponseError(head[:40].decode(errors="replace"))
        status = int(head[9:12])
        start = end + 4
        at = head.find(b"\r\ncontent-length:")
        if at >= 0:
            line_end = head.find(b"\r\n", at + 2)
            length = int(head[at + 17 : line_end if line_end >= 0 else len(head)])
            if len(buffer) < start + length:
                return None
            body = bytes(buffer[start : start + length])
            del buffer[: start + length]
            return status, body
        if b"\r\ntransfer-encoding: chunked" in head:
            return self._parse_chunked(status, start)
        if status in (204, 304) or 100 <= status < 200:
            del buffer[:start]
            return status, b""
        raise ResponseError("a response without Content-Length on a keep-alive connection")

    def _parse_chunked(self, status: int, start: int) -> tuple[int, bytes] | None:
        buffer, body, at = self.buffer, bytearray(), start
        while True:
            line_end = buffer.find(b"\r\n", at)
            if line_end < 0:
                return None
            size = int(bytes(buffer[at:line_end]).split(b";")[0], 16)
            at = line_end + 2
            if size == 0:
                trailer_end = buffer.find(b"\r\n", at)  # no trailers expected
                if trailer_end < 0:
                    return None
                del buffer[: trailer_end + 2]
                return status, bytes(body)
            if len(buffer) < at + size + 2:
                return None
            body += buffer[at : at + size]
            at += size + 2

    async def request(self, data: bytes) -> tuple[int, bytes]:
        if self.lost or self.transport is None:
            raise ConnectionError("connection is closed")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self.waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


@dataclass
class Client:
    """A connection slot: reconnects when the server closes its connection."""

    port: int
    connection: HttpConnection | None = None

    async def ensure(self) -> HttpConnection:
        if self.connection is None or self.connection.lost:
            loop = asyncio.get_running_loop()
            _, protocol = await loop.create_connection(HttpConnection, "127.0.0.1", self.port)
            self.connection = protocol
        return self.connection


@dataclass
class PhaseStats:
    """One endpoint's measurements, summed over the rounds of a run."""

    latencies: list[float] = field(default_factory=list)
    ok: int = 0
    errors: int = 0
    wins: int = 0
    elapsed: float = 0.0
    cpu: Counter[str] = field(default_factory=Counter)  # CPU seconds by role
    statuses: Counter[str] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)

    def error(self, what: str, sample: str) -> None:
        self.errors += 1
        self.statuses[what] += 1
        if len(self.error_samples) < 3:
            self.error_samples.append(f"{what}: {sample[:300]}")

    def summary(self) -> dict[str, Any]:
        latencies = sorted(self.latencies)

        def percentile(p: float) -> float | None:
            if not latencies:
                return None
            return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

        elapsed = self.elapsed or 1e-9
        return {
            "elapsed": self.elapsed,
            "ok": self.ok,
            "errors": self.errors,
            "wins": self.wins,
            "statuses": dict(self.statuses),
            "error_samples": self.error_samples,
            "rate": self.ok / elapsed,
            "p50": percentile(0.50),
            "p90": percentile(0.90),
            "p99": percentile(0.99),
            "max": latencies[-1] * 1000 if latencies else None,
            "cpu": {role: seconds / elapsed for role, seconds in self.cpu.items()},
        }


class Requests:
    """Request bytes, prepared so that building one costs a few string operations."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.token = params["token"]
        self.instance_id = params["instance_id"]
        self.brands = params["brands"]
        self.players = int(params.get("players", 100_000))
        self.random = random.Random()
        self.sequence = 0
        self.run_id = f"{os.getpid()}-{int(time.time())}"

    @staticmethod
    def health(port: int) -> bytes:
        return f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()

    def contribute(self, port: int) -> bytes:
        self.sequence += 1
        pick = self.random.choice
        body = (
            f'{{"instance_id":"{self.instance_id}","token":"player-session",'
            f'"brand_id":"{pick(self.brands)}",'
            f'"player_id":"player-{self.random.randrange(self.players)}",'
            f'"player_country":"{pick(COUNTRIES)}",'
            f'"gameround_id":"round-{self.sequence}",'
            f'"base_wager":"{self.random.randrange(10, 500)}.00",'
            f'"currency":"{pick(CURRENCIES)}",'
            f'"idempotency_key":"bench-{self.run_id}-{self.sequence}",'
            f'"metadata":{{"bet":{self.sequence}}}}}'
        ).encode()
        head = (
            f"POST /jackpots/contribute HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {self.token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        return head + body


async def drive(client: Client, kind: str, requests: Requests, deadline: float, stats: Any) -> None:
    clock = time.perf_counter
    while clock() < deadline:
        data = (
            requests.health(client.port) if kind == "health" else requests.contribute(client.port)
        )
        started = clock()
        try:
            connection = await client.ensure()
            status, body = await connection.request(data)
        except (OSError, ResponseError) as error:
            stats.error("connection", repr(error))
            client.connection = None
            await asyncio.sleep(0.01)
            continue
        stats.latencies.append(clock() - started)
        if 200 <= status < 300:
            stats.ok += 1
            if kind == "contribute" and b'"win_amount":null' not in body:
                stats.wins += 1
        else:
            stats.error(str(status), body.decode(errors="replace"))


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (its threads included), in seconds."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def cpu_snapshot(pids: dict[str, list[int]]) -> dict[str, float]:
    usage = {role: sum(cpu_seconds(pid) for pid in group) for role, group in pids.items()}
    times = os.times()
    usage["load generator"] = times.user + times.system
    return usage


async def run_phase(
    clients: list[Client],
    kind: str,
    requests: Requests,
    seconds: float,
    pids: dict[str, list[int]],
    stats: PhaseStats | None = None,
) -> PhaseStats:
    """Drive every connection for `seconds`, then wait for the requests in flight."""
    stats = stats or PhaseStats()
    cpu_before = cpu_snapshot(pids)
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(drive(client, kind, requests, deadline, stats) for client in clients))
    stats.elapsed += time.perf_counter() - started
    cpu_after = cpu_snapshot(pids)
    stats.cpu.update({role: cpu_after[role] - cpu_before[role] for role in cpu_after})
    return stats


def command_calls(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


def command_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    delta = {name: calls - before.get(name, 0) for name, calls in after.items()}
    delta["info"] = delta.get("info", 0) - 1  # the INFO that took the first snapshot
    return {name: calls for name, calls in delta.items() if calls > 0}


class MonitorProtocol(asyncio.Protocol):
    """Counts the commands Redis executes by origin: a client connection or a Lua script."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.by_client: Counter[str] = Counter()
        self.in_scripts: Counter[str] = Counter()
        self.ready = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.rfind(b"\r\n")
        if end < 0:
            return
        lines = bytes(self.buffer[:end]).split(b"\r\n")
        del self.buffer[: end + 2]
        for line in lines:
            if line == b"+OK":
                if not self.ready.done():
                    self.ready.set_result(None)
                continue
            # +1700000000.123456 [0 127.0.0.1:5555] "evalsha" "..." / [0 lua] "hincrby" ...
            close = line.find(b'] "')
            if close < 0:
                continue
            command = line[close + 3 : line.find(b'"', close + 3)].decode().lower()
            if line[:close].endswith(b"lua"):
                self.in_scripts[command] += 1
            else:
                self.by_client[command] += 1


async def audit(
    clients: list[Client], requests: Requests, seconds: float, redis_port: int
) -> dict[str, Any]:
    """Contribution load under MONITOR: which commands the web processes send themselves."""
    loop = asyncio.get_running_loop()
    transport, monitor = await loop.create_connection(MonitorProtocol, "127.0.0.1", redis_port)
    transport.write(b"MONITOR\r\n")
    await asyncio.wait_for(monitor.ready, 5)
    phase = await run_phase(clients, "contribute", requests, seconds, {})
    await asyncio.sleep(0.5)  # let the monitor stream catch up
    transport.close()
    return {
        "contributions": phase.ok,
        "errors": phase.errors,
        "by_client": dict(monitor.by_client),
        "in_scripts": dict(monitor.in_scripts),
    }


async def main(params: dict[str, Any]) -> dict[str, Any]:
    ports: list[int] = params["ports"]
    pids: dict[str, list[int]] = params["pids"]
    clients = [Client(ports[i % len(ports)]) for i in range(params["connections"])]
    await asyncio.gather(*(client.ensure() for client in clients))
    requests = Requests(params)
    warmup, rounds = params["warmup"], params["rounds"]
    each = params["duration"] / rounds
    results: dict[str, Any] = {}

    def log(message: str) -> None:
        print(f"  {message}", file=sys.stderr, flush=True)

    contributed = 0
    if warmup > 0:
        log(f"warm-up: {warmup:g} s of health, {warmup:g} s of contributions")
        await run_phase(clients, "health", requests, warmup, pids)
        contributed += (await run_phase(clients, "contribute", requests, warmup, pids)).ok

    # Alternate short rounds, so load from other processes on the machine hits both alike.
    log(f"measuring: {rounds} rounds of {each:g} s health + {each:g} s contributions")
    health, contribute = PhaseStats(), PhaseStats()
    commands: Counter[str] = Counter()
    counters = redis.Redis(port=params["redis_port"], decode_responses=True)
    for _ in range(rounds):
        await run_phase(clients, "health", requests, each, pids, health)
        before = command_calls(counters)
        await run_phase(clients, "contribute", requests, each, pids, contribute)
        commands.update(command_delta(before, command_calls(counters)))
    counters.close()
    contributed += contribute.ok
    results["phases"] = {"health": health.summary(), "contribute": contribute.summary()}
    results["commands"] = dict(commands)

    if params["audit"] > 0:
        log(f"audit: {params['audit']:g} s of contributions under MONITOR")
        results["audit"] = await audit(clients, requests, params["audit"], params["redis_port"])
        contributed += results["audit"]["contributions"]
    results["contributed"] = contributed
    for client in clients:
        if client.connection is not None:
            client.connection.close()
    return results


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.load(sys.stdin)))))
