"""The load generator of `bench.contribute`, run as its own process (`python -m bench.loadgen`).

A light client, so the two-core machine is left to the servers: asyncio protocols over raw
sockets speaking a minimal keep-alive HTTP/1.1 (one request in flight per connection), no
HTTP library. A response carrying `Connection: close` (Hypercorn sends it on the 1,000th
request of a connection) is answered, then the connection is reopened before the next
request: a reconnect is not an error. Parameters come as JSON on stdin, results go as JSON on
stdout.

It drives one or two *sides* (each a set of web processes of one checkout with its own
Redis). The measured time is cut into short rounds; each round runs every endpoint on every
side in turn, so other load on the machine weighs on both sides alike. Each phase starts
every connection's loop together and ends when the deadline has passed and every request in
flight has been answered, so the CPU and Redis counters read between phases see whole
requests only.
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
KINDS = ("health", "floor", "contribute")
IDLE_REOPEN_S = 3.0  # Hypercorn closes idle keep-alive connections after 5 s


class ResponseError(Exception):
    """The server's bytes were not an HTTP/1.1 response this client understands."""


class HttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.lost = False
        self.closing = False  # the last response said `Connection: close`
        self.used = time.monotonic()

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
        if b"\r\nconnection: close" in head:
            self.closing = True
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

    @property
    def usable(self) -> bool:
        return not (self.lost or self.closing or self.transport is None)

    async def request(self, data: bytes) -> tuple[int, bytes]:
        if not self.usable or self.transport is None:
            raise ConnectionError("connection is closed")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        try:
            return await self.waiter
        finally:
            self.used = time.monotonic()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


@dataclass
class Client:
    """A connection slot: reopens its connection when the server closed or will close it."""

    port: int
    connection: HttpConnection | None = None
    reconnects: int = 0

    async def ensure(self) -> HttpConnection:
        if self.connection is None or not self.connection.usable:
            if self.connection is not None:
                self.connection.close()
                self.reconnects += 1
            loop = asyncio.get_running_loop()
            _, protocol = await loop.create_connection(HttpConnection, "127.0.0.1", self.port)
            self.connection = protocol
        return self.connection

    async def refresh_idle(self) -> None:
        """Reopen a connection the server may be about to close for idleness."""
        if self.connection is not None and time.monotonic() - self.connection.used > IDLE_REOPEN_S:
            self.connection.close()
            self.connection = None
        await self.ensure()


@dataclass
class PhaseStats:
    """One endpoint's measurements on one side, summed over the rounds of a run."""

    latencies: list[float] = field(default_factory=list)
    ok: int = 0
    errors: int = 0
    wins: int = 0
    elapsed: float = 0.0
    cpu: Counter[str] = field(default_factory=Counter)  # CPU seconds by role
    statuses: Counter[str] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    rounds: list[dict[str, float]] = field(default_factory=list)  # per round: web CPU, requests

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
            "cpu_seconds": dict(self.cpu),
            "rounds": self.rounds,
        }


class Requests:
    """Request bytes of one side, prepared so that building one costs a few string operations."""

    def __init__(self, side: dict[str, Any], run_id: str) -> None:
        self.token = side["token"]
        self.instance_id = side["instance_id"]
        self.brands = side["brands"]
        self.floor_path = f"/currencies/{self.brands[0]}"
        self.players = int(side.get("players", 100_000))
        self.random = random.Random()
        self.sequence = 0
        self.run_id = run_id

    def build(self, kind: str, port: int) -> bytes:
        if kind == "health":
            return f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
        if kind == "floor":
            return (
                f"GET {self.floor_path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Authorization: Bearer {self.token}\r\n\r\n"
            ).encode()
        return self.contribute(port)

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
            f'"idempotency_key":"idem-{self.run_id}-{self.sequence}",'
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
        data = requests.build(kind, client.port)
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


class Side:
    """One checkout under test: its connections, requests and counters."""

    def __init__(self, spec: dict[str, Any], connections: int, run_id: str) -> None:
        self.name: str = spec["name"]
        self.pids: dict[str, list[int]] = spec["pids"]
        self.redis_port: int = spec["redis_port"]
        ports: list[int] = spec["ports"]
        self.clients = [Client(ports[i % len(ports)]) for i in range(connections)]
        self.requests = Requests(spec, run_id)  # each side has its own Redis
        self.stats = {kind: PhaseStats() for kind in KINDS}
        self.commands: Counter[str] = Counter()
        self.contributed = 0

    async def phase(self, kind: str, seconds: float, stats: PhaseStats | None) -> PhaseStats:
        """Drive every connection for `seconds`, then wait for the requests in flight."""
        await asyncio.gather(*(client.refresh_idle() for client in self.clients))
        counters = redis.Redis(port=self.redis_port) if stats is not None else None
        before = command_calls(counters) if counters is not None else {}
        target = stats if stats is not None else PhaseStats()
        ok_before = target.ok
        cpu_before = cpu_snapshot(self.pids)
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(
            *(drive(client, kind, self.requests, deadline, target) for client in self.clients)
        )
        elapsed = time.perf_counter() - started
        cpu_after = cpu_snapshot(self.pids)
        used = {role: cpu_after[role] - cpu_before[role] for role in cpu_after}
        target.elapsed += elapsed
        target.cpu.update(used)
        done = target.ok - ok_before
        target.rounds.append({"web_cpu": used["web"], "ok": done, "elapsed": elapsed})
        if kind == "contribute":
            self.contributed += done
            if counters is not None:
                self.commands.update(command_delta(before, command_calls(counters)))
        if counters is not None:
            counters.close()
        return target

    def close(self) -> None:
        for client in self.clients:
            if client.connection is not None:
                client.connection.close()


def command_calls(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


def command_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    delta = {name: calls - before.get(name, 0) for name, calls in after.items()}
    delta["info"] = delta.get("info", 0) - 1  # the INFO that took the first snapshot
    return {name: calls for name, calls in delta.items() if calls > 0}


def unquote_monitor(text: bytes) -> list[bytes]:
    """The arguments of one MONITOR line's `"a" "b\\"c"` part, unescaped."""
    args: list[bytes] = []
    i, n = 0, len(text)
    while i < n:
        if text[i : i + 1] != b'"':
            i += 1
            continue
        i += 1
        arg = bytearray()
        while i < n and text[i : i + 1] != b'"':
            char = text[i : i + 1]
            if char == b"\\":
                nxt = text[i + 1 : i + 2]
                if nxt == b"x":
                    arg.append(int(text[i + 2 : i + 4], 16))
                    i += 4
                    continue
                arg += {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"a": b"\a", b"b": b"\b"}.get(
                    nxt, nxt
                )
                i += 2
                continue
            arg += char
            i += 1
        args.append(bytes(arg))
        i += 1
    return args


class MonitorProtocol(asyncio.Protocol):
    """Counts the commands Redis executes by origin (a client connection or a Lua script)
    and keeps one EVALSHA as sent by a web process, for the store's own limit."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.by_client: Counter[str] = Counter()
        self.in_scripts: Counter[str] = Counter()
        self.scripts: Counter[str] = Counter()  # EVALSHA by sha
        self.samples: dict[str, list[bytes]] = {}
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
                continue
            self.by_client[command] += 1
            if command == "evalsha":
                args = unquote_monitor(line[close + 2 :])
                sha = args[1].decode()
                self.scripts[sha] += 1
                self.samples.setdefault(sha, args)


async def audit(side: Side, seconds: float) -> dict[str, Any]:
    """Contribution load under MONITOR: which commands the web processes send themselves."""
    loop = asyncio.get_running_loop()
    transport, monitor = await loop.create_connection(MonitorProtocol, "127.0.0.1", side.redis_port)
    transport.write(b"MONITOR\r\n")
    await asyncio.wait_for(monitor.ready, 5)
    phase = await side.phase("contribute", seconds, None)
    await asyncio.sleep(0.5)  # let the monitor stream catch up
    transport.close()
    script = None
    if monitor.scripts:
        sha = monitor.scripts.most_common(1)[0][0]
        script = [arg.decode("latin-1") for arg in monitor.samples[sha]]
    return {
        "contributions": phase.ok,
        "errors": phase.errors,
        "by_client": dict(monitor.by_client),
        "in_scripts": dict(monitor.in_scripts),
        "sample_evalsha": script,  # the busiest script's command, as a web process sent it
    }


async def main(params: dict[str, Any]) -> dict[str, Any]:
    run_id = f"{os.getpid():x}{int(time.time()):x}"  # hex: idempotency keys are idem-<hex>-<n>
    sides = [Side(spec, params["connections"], run_id) for spec in params["sides"]]
    for side in sides:
        await asyncio.gather(*(client.ensure() for client in side.clients))
    warmup, rounds, each = params["warmup"], params["rounds"], params["seconds"]
    kinds = params.get("kinds", KINDS)

    def log(message: str) -> None:
        print(f"  {message}", file=sys.stderr, flush=True)

    if warmup > 0:
        log(f"warm-up: {warmup:g} s per endpoint and side")
        for side in sides:
            for kind in kinds:
                await side.phase(kind, warmup, None)
    log(
        f"measuring: {rounds} rounds; each runs {', '.join(kinds)} for {each:g} s on "
        + " then ".join(side.name for side in sides)
    )
    for round_no in range(rounds):
        # Alternate which side goes first, so neither always follows the other's load.
        order = sides if round_no % 2 == 0 else sides[::-1]
        for kind in kinds:
            for side in order:
                await side.phase(kind, each, side.stats[kind])

    results: dict[str, Any] = {"sides": {}}
    for side in sides:
        result: dict[str, Any] = {
            "phases": {kind: side.stats[kind].summary() for kind in kinds},
            "commands": dict(side.commands),
            "reconnects": sum(client.reconnects for client in side.clients),
        }
        if params["audit"] > 0:
            log(f"audit of {side.name}: {params['audit']:g} s of contributions under MONITOR")
            result["audit"] = await audit(side, params["audit"])
        result["contributed"] = side.contributed
        results["sides"][side.name] = result
        side.close()
    return results


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.load(sys.stdin)))))
