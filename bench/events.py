"""Event stream benchmark: N websocket clients on 1 or 2 web processes, wins at a steady rate.

    python -m bench.events [--clients 10 1000] [--rate 5] [--duration 20] [--tick 1]
                           [--instances 200] [--web-processes 1 2]

It starts a private redis-server, loads one instance whose every contribution wins, and two
`serve` processes: `events` holds the websockets (the process measured) and `api` takes the
contributions (so the measured process does fan-out only). A separate client process opens
the websockets (`?token=`) and records when each win reaches each client; the orchestrator
contributes at `--rate` wins per second and records when each contribution's response came
back (CLOCK_MONOTONIC is shared by every process of the machine). For each client count:

- delay from the contribution's response to delivery, p50 / p99 over every (win, client);
- messages per second delivered to all clients (wins and conflated pot updates);
- the events process's CPU per update tick, while idle (pots unchanged) and while wins flow;
- Redis commands per tick (INFO commandstats, the orchestrator's own calls excluded), which
  must not depend on the number of clients.

With `--instances N` the operator sees N instances (the winning one and N-1 quiet ones), so
every client's snapshot has N updates; with `--web-processes 1 2` each client count runs on
one, then on two `events` processes (clients split between them). A second table gives, per
run: the connect burst (every client opens its socket at once; the time until the last one
has its whole snapshot), web memory per idle socket (the events processes' RSS after the
burst minus before it, over the sockets; one warm-up socket first starts each hub), the
bytes of one win message and of one event id, and win delay p50 / p99.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import redis

from bench.contribute import (
    Processes,
    free_ports,
    gateway_command,
    healthy,
    machine,
    start_redis,
    wait_until,
)

SECRET = "bench-events-secret-0123456789-0123456789"
DRAW_KEY = "bench-events-draw-key-0123456789-0123456789"
INSTANCE = {
    "id": "bench-events",
    "name": "Bench Events",
    "jackpot_type": "Jackpot",
    "currency": "EUR",
    "status": "Active",
    "opt_in_required": False,
    "contribution_type": {"Fixed": "1.00"},
    "allowed_brands": ["bench:main"],
    "house_share": "0.30",
    "pots": [
        {
            "id": "every",
            "name": "Every",
            "is_progressive": True,
            "share": "0.50",
            "reserve_share": "0",
            "seed": "10",
            "trigger": {"HitRate": {"max_magic_number": 1, "cost_per_attempt": "0.10"}},
        },
        {
            "id": "grand",
            "name": "Grand",
            "is_progressive": True,
            "share": "0.20",
            "reserve_share": "0",
            "seed": "1000",
            "trigger": {"MustDropBy": {"min": "100000000", "max": "200000000"}},
        },
    ],
}


def quiet_instances(count: int) -> list[dict[str, Any]]:
    """Instances the bench operator sees that never win (their updates fill snapshots)."""
    quiet_pots = [
        {**p, "trigger": {"MustDropBy": {"min": "100000000", "max": "200000000"}}}
        for p in INSTANCE["pots"]
    ]  # type: ignore[attr-defined]
    return [
        {**INSTANCE, "id": f"bench-quiet-{n:04d}", "name": f"Quiet {n}", "pots": quiet_pots}
        for n in range(count)
    ]


# -- the client process ------------------------------------------------------------------------
def _wait_for(path: Path) -> None:
    while not path.exists():
        time.sleep(0.05)


async def run_clients(
    urls: list[str],
    count: int,
    ready: Path,
    stop: Path,
    out: Path,
    snapshot_size: int,
    pace: float = 0.0,
) -> None:
    from websockets.asyncio.client import connect

    received: dict[str, list[float]] = {}
    messages = 0
    last_message = time.monotonic()
    snapshots_done: list[float] = []
    win_bytes: list[int] = []
    id_bytes: list[int] = []

    async def client(url: str) -> None:
        nonlocal messages, last_message
        updates = 0
        # compression offered, as a browser does (the server declines it by default)
        async with connect(url, max_queue=None, ping_interval=None) as ws:
            async for text in ws:
                messages += 1
                last_message = time.monotonic()
                if '"JackpotWinEvent"' in text:
                    now = time.monotonic()
                    message = json.loads(text)
                    received.setdefault(message["data"]["metadata"]["bench"], []).append(now)
                    if len(win_bytes) < 1000:
                        win_bytes.append(len(text.encode()))
                        id_bytes.append(len(message["event_id"].encode()))
                elif '"Ping"' in text:
                    await ws.send('{"Pong": {}}')
                elif updates < snapshot_size and '"JackpotUpdateEvent"' in text:
                    updates += 1
                    if updates == snapshot_size:
                        snapshots_done.append(time.monotonic())

    # The burst: every socket opened at once, spread over the web processes.
    burst_started = time.monotonic()
    tasks = []
    for n in range(count):
        tasks.append(asyncio.create_task(client(urls[n % len(urls)])))
        if pace:  # paced: no burst high-water mark in the memory figure
            await asyncio.sleep(1 / pace)
    deadline = time.monotonic() + 60
    while len(snapshots_done) < count and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    burst = (max(snapshots_done) - burst_started) if len(snapshots_done) == count else None
    await asyncio.sleep(2)
    await asyncio.to_thread(ready.write_text, str(len([t for t in tasks if not t.done()])))
    started, first = time.monotonic(), messages
    await asyncio.to_thread(_wait_for, stop)
    # Late deliveries count too: stop once nothing has arrived for a second (at most 60 s).
    deadline = time.monotonic() + 60
    while time.monotonic() - last_message < 1.0 and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    elapsed = last_message - started
    failed = [t for t in tasks if t.done() and t.exception() is not None]
    result = json.dumps(
        {
            "received": received,
            "messages": messages - first,
            "elapsed": elapsed,
            "closed": len(failed),
            "burst_s": burst,
            "snapshots": len(snapshots_done),
            "win_bytes": win_bytes,
            "id_bytes": id_bytes,
        }
    )
    await asyncio.to_thread(out.write_text, result)
    for task in tasks:
        task.cancel()


# -- the orchestrator ------------------------------------------------------------------------
def commandstats(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


async def contribute_steadily(
    port: int, token: str, rate: float, duration: float
) -> dict[str, float]:
    """Wins at `rate` per second for `duration` seconds: tag -> response time."""
    responses: dict[str, float] = {}
    body = {
        "instance_id": "bench-events",
        "token": "session",
        "brand_id": "bench:main",
        "player_id": "p1",
        "player_country": "DE",
        "base_wager": "1.00",
        "currency": "EUR",
    }
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:

        async def one(n: int) -> None:
            # the win event carries the contribution's event_metadata: a tag to match it by
            tagged = {**body, "event_metadata": {"bench": str(n)}}
            response = await http.post("/jackpots/contribute", json=tagged, headers=headers)
            if response.status_code == 200:
                responses[str(n)] = time.monotonic()

        started = time.monotonic()
        pending = []
        n = 0
        while time.monotonic() - started < duration:
            pending.append(asyncio.create_task(one(n)))
            n += 1
            await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
        await asyncio.gather(*pending)
    return responses


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def warm_up(urls: list[str]) -> None:
    """One socket per process, kept open: the hub starts with the first one."""
    from websockets.asyncio.client import connect

    for url in urls:
        ws = await connect(url, ping_interval=None)
        await asyncio.wait_for(ws.recv(), 30)
        await ws.close()


def rss(pids: list[int]) -> int:
    return sum(psutil.Process(pid).memory_info().rss for pid in pids)


def measure(
    args: argparse.Namespace,
    count: int,
    ports: dict[str, Any],
    token: str,
    workdir: Path,
    webs: int,
) -> dict[str, Any]:
    processes = Processes(workdir)
    ready, stop, out = (workdir / f"{name}-{count}-{webs}" for name in ("ready", "stop", "out"))
    pids = ports["events_pids"][:webs]
    web = [psutil.Process(pid) for pid in pids]
    rds = redis.Redis(port=ports["redis"])
    urls = [f"ws://127.0.0.1:{port}/events?token={token}" for port in ports["events"][:webs]]
    try:
        asyncio.run(warm_up(urls))
        time.sleep(1)
        rss_before = rss(pids)
        clients = processes.start(
            f"clients-{count}-{webs}",
            [
                sys.executable,
                "-m",
                "bench.events",
                "--client-process",
                ",".join(urls),
                str(count),
                str(ready),
                str(stop),
                str(out),
                str(args.instances),
                str(args.pace),
            ],
            dict(os.environ),
        )
        wait_until(ready.exists, f"{count} clients", clients, 180)
        connected = int(ready.read_text())
        rss_after = rss(pids)
        time.sleep(args.tick * 2)  # the first updates after the snapshots
        # Idle: the pots do not change, each tick reads the state and sends nothing.
        cpu0, stats0, t0 = cpu(web), commandstats(rds), time.monotonic()
        time.sleep(args.idle)
        cpu1, stats1, t1 = cpu(web), commandstats(rds), time.monotonic()
        idle_ticks = (t1 - t0) / args.tick
        idle_cpu = (cpu1 - cpu0) / idle_ticks
        idle_cmds = (sum(stats1.values()) - sum(stats0.values()) - 2) / idle_ticks
        # Wins at a steady rate.
        stats0, cpu0, t0 = commandstats(rds), cpu(web), time.monotonic()
        responses = asyncio.run(contribute_steadily(ports["api"], token, args.rate, args.duration))
        stop.write_text("stop")
        wait_until(out.exists, "client results", clients, 90)
        cpu1, stats1, t1 = cpu(web), commandstats(rds), time.monotonic()
        result = json.loads(out.read_text())
    finally:
        processes.stop()
        rds.close()
    delays = [
        (at - responses[win_id]) * 1000
        for win_id, times in result["received"].items()
        if win_id in responses
        for at in times
    ]
    expected = len(responses) * connected
    last = max((at for times in result["received"].values() for at in times), default=0.0)
    ticks = (t1 - t0) / args.tick
    calls = {name: stats1.get(name, 0) - stats0.get(name, 0) for name in stats1}
    return {
        "webs": webs,
        "burst_s": result["burst_s"],
        "snapshots": result["snapshots"],
        "kb_per_socket": (rss_after - rss_before) / 1024 / max(connected, 1),
        "win_bytes": max(result["win_bytes"], default=0),
        "id_bytes": max(result["id_bytes"], default=0),
        "clients": count,
        "connected": connected,
        "wins": len(responses),
        "deliveries": len(delays),
        "expected": expected,
        "closed": result["closed"],
        "p50": statistics.median(delays) if delays else None,
        "p99": percentile(delays, 0.99) if delays else None,
        # win messages delivered per second, from the first response to the last delivery
        "messages_per_s": len(delays) / max(last - min(responses.values(), default=last), 1e-9),
        "idle_cpu_ms_per_tick": idle_cpu * 1000,
        "idle_cmds_per_tick": idle_cmds,
        "busy_cpu_ms_per_tick": (cpu1 - cpu0) / ticks * 1000,
        # The event stream's own reads: the tick's pipelined HGETALLs, one XRANGE per wake-up.
        "hgetall_per_tick": calls.get("hgetall", 0) / ticks,
        "xrange_per_win": calls.get("xrange", 0) / max(len(responses), 1),
        "commands": calls,
    }


def cpu(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        times = process.cpu_times()
        total += times.user + times.system
    return total


def report(args: argparse.Namespace, rows: list[dict[str, Any]]) -> None:
    print(f"\nMachine: {machine()}")
    print(
        f"Events processes as listed, {args.instances} visible instances, wins at "
        f"{args.rate}/s for {args.duration:g} s, update tick {args.tick:g} s.\n"
    )
    print(
        "| web processes | clients | connect burst s (all snapshots) | KB per idle socket | "
        "win message bytes | event id bytes | win p50 ms | win p99 ms |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        burst = "n/a" if r["burst_s"] is None else f"{r['burst_s']:.2f}"
        print(
            f"| {r['webs']} | {r['connected']}/{r['clients']} | {burst} "
            f"({r['snapshots']} snapshots) | {r['kb_per_socket']:.1f} | {r['win_bytes']} | "
            f"{r['id_bytes']} | {r['p50']:.1f} | {r['p99']:.1f} |"
        )
    print()
    print(
        "| web processes | clients | wins | delivered | p50 ms | p99 ms | win messages/s | "
        "CPU ms/tick idle | CPU ms/tick with wins | Redis cmds/tick idle | HGETALL/tick | "
        "XRANGE/win |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['webs']} | {r['clients']} | {r['wins']} | {r['deliveries']}/{r['expected']} | "
            f"{r['p50']:.1f} | {r['p99']:.1f} | {r['messages_per_s']:.0f} | "
            f"{r['idle_cpu_ms_per_tick']:.2f} | {r['busy_cpu_ms_per_tick']:.1f} | "
            f"{r['idle_cmds_per_tick']:.1f} | {r['hgetall_per_tick']:.2f} | "
            f"{r['xrange_per_win']:.2f} |"
        )
    for r in rows:
        extra = ", ".join(
            f"{name} {calls}" for name, calls in sorted(r["commands"].items()) if calls
        )
        print(f"- {r['clients']} clients, Redis calls with wins (scripts' own too): {extra}")
        if r["closed"]:
            print(f"  ({r['closed']} sockets were closed during the run)")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--client-process":
        urls, count, ready, stop, out, size, pace = sys.argv[2:9]
        asyncio.run(
            run_clients(
                urls.split(","),
                int(count),
                Path(ready),
                Path(stop),
                Path(out),
                int(size),
                float(pace),
            )
        )
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[10, 1000])
    parser.add_argument("--rate", type=float, default=2.0, help="wins per second")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of wins")
    parser.add_argument("--idle", type=float, default=20.0, help="seconds of idle ticks")
    parser.add_argument("--tick", type=float, default=5.0, help="UPDATE_INTERVAL_SECONDS")
    parser.add_argument("--instances", type=int, default=1, help="instances the clients see")
    parser.add_argument(
        "--pace", type=float, default=0.0, help="clients connecting per second (0: a burst)"
    )
    parser.add_argument(
        "--web-processes", type=int, nargs="+", default=[1], help="events processes per run"
    )
    args = parser.parse_args()

    from app.core.config import Settings
    from app.core.security import Principal, TokenIssuer

    workdir = Path(tempfile.mkdtemp(prefix="bench-events-"))
    processes = Processes(workdir)
    webs = max(args.web_processes)
    redis_port, api_port, *events_ports = free_ports(2 + webs)
    try:
        start_redis(processes, "redis", redis_port)
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        env = {
            **os.environ,
            "JWT_SECRET": SECRET,
            "DRAW_KEY": DRAW_KEY,
            "REDIS_URL": redis_url,
            "HOST": "127.0.0.1",
            "UPDATE_INTERVAL_SECONDS": str(args.tick),
            "EVENTS_QUEUE_LIMIT": "10000",
        }
        definitions = {
            "operators": [
                {"id": "bench", "name": "Bench", "brands": ["main"], "callback_secret": "x" * 32}
            ],
            "currencies": {"base_currency": "EUR", "multipliers": {"EUR": 1, "USD": "1.08"}},
            "instances": [INSTANCE, *quiet_instances(args.instances - 1)],
        }
        (workdir / "definitions.json").write_text(json.dumps(definitions))
        load = processes.start(
            "load", [*gateway_command(), "load", str(workdir / "definitions.json")], env
        )
        if load.wait(60) != 0:
            raise RuntimeError(processes.log_tail("load"))
        events = [
            processes.start(
                f"events-{n}", [*gateway_command(), "serve"], {**env, "PORT": str(port)}
            )
            for n, port in enumerate(events_ports)
        ]
        api = processes.start("api", [*gateway_command(), "serve"], {**env, "PORT": str(api_port)})
        for process, port in zip(events, events_ports, strict=True):
            wait_until(lambda port=port: healthy(port), "events", process, 30)
        wait_until(lambda: healthy(api_port), "api", api, 30)
        settings = Settings(jwt_secret=SECRET, draw_key=DRAW_KEY)
        token = TokenIssuer(settings.jwt_secret, settings.jwt_issuer, 3600).issue(
            Principal("bench", "bench", ("operator",))
        )
        ports = {
            "redis": redis_port,
            "events": events_ports,
            "api": api_port,
            "events_pids": [process.pid for process in events],
        }
        rows = []
        for count in args.clients:
            for webs in args.web_processes:
                print(f"{count} clients on {webs} web processes...", file=sys.stderr)
                rows.append(measure(args, count, ports, token, workdir, webs))
        report(args, rows)
    finally:
        processes.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
