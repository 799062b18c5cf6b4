"""Ledger benchmark: `python -m bench.ledger [--entries 1000000] [--rate 100]`.

Starts a private redis-server on a free loopback port (the Redis on 6379 is never touched)
and the app in this process (one event loop, as one web process). It builds an instance
whose ledger holds `--entries` contribution entries: one contribution made through the HTTP
API, its ledger entry cloned by pipelined XADD and the state raised by as much (the replay
reads the same entries as real traffic would write), then measures:

  quiet       contributions' latency (POST /jackpots/contribute through the app, an open-loop
              `--rate` per second) with nothing else running: p50, p99;
  first       the first reconciliation (GET /admin/instances/<id>/reconciliation): every
              entry replayed; its time, and the contributions' p50/p99 meanwhile;
  checkpoint  the next reconciliation, from the checkpoint the first one stored (what came
              since: the contributions made during the first);
  archive     the ledger job run as if the retention had passed (export, read back, manifest,
              trim, to a temporary directory): its time, the archive's bytes per entry, and
              the state Redis's used_memory before and after;
  after       a reconciliation after the trim, from the checkpoint.

It is not a test (pytest collects tests/ only).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import redis

from app import create_app
from app.core.config import Settings
from app.core.security import Principal
from app.services import Services
from app.services.definitions import read_definitions
from app.services.ledger import DAY_MS, day_bounds, day_of
from app.store import keys
from app.store.embedded import EmbeddedRedis
from tests.support.definitions import instance, must_drop, pot
from tests.support.http import contribution, create_instance, expect, post

ROOT = Path(__file__).resolve().parents[1]
INSTANCE = "bench-ledger"
ADMIN = Principal("bench-admin", "demo", ("admin", "operator"))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def spread(values: list[float]) -> str:
    return (
        f"n={len(values)} p50 {statistics.median(values):.2f} ms, "
        f"p99 {percentile(values, 0.99):.2f} ms"
    )


async def contributions(
    client: Any,
    headers: dict[str, str],
    rate: float,
    stop: asyncio.Event,
    seconds: float | None = None,
) -> list[float]:
    """Open loop: a contribution every 1/rate s until `stop` (or `seconds`); latencies in ms
    from each one's scheduled start."""
    latencies: list[float] = []
    tasks = []
    started = time.perf_counter()
    number = 0

    async def one(due: float, n: int) -> None:
        body = contribution(INSTANCE, f"p{n % 50}")
        response = await post(client, "/jackpots/contribute", body, headers)
        await expect(response, 200)
        latencies.append((time.perf_counter() - due) * 1000)

    while not stop.is_set() and (seconds is None or time.perf_counter() - started < seconds):
        due = started + number / rate
        delay = due - time.perf_counter()
        if delay > 0:
            try:
                await asyncio.wait_for(stop.wait(), delay)
                break
            except TimeoutError:
                pass
        tasks.append(asyncio.create_task(one(due, number)))
        number += 1
    await asyncio.gather(*tasks)
    return latencies


def fill(url: str, entries: int) -> None:
    """Clone the instance's one contribution entry until the ledger holds `entries` entries,
    and raise the state by the clones' amounts."""
    client = redis.Redis.from_url(url, decode_responses=True)
    ledger = keys.instance_ledger(INSTANCE)
    have = client.xlen(ledger)
    template = next(f for _, f in client.xrange(ledger) if f["type"] == "contribution")
    clones = entries - have
    rng = random.Random(1)
    done = 0
    while done < clones:
        batch = min(10_000, clones - done)
        with client.pipeline(transaction=False) as pipe:
            for _ in range(batch):  # what differs between real entries: ids, players, draws
                clone = {**template, "id": str(uuid.uuid4()), "player": f"p{rng.randrange(10**5)}"}
                for name in template:
                    if name.endswith(":random"):
                        clone[name] = str(rng.randrange(10**18))
                pipe.xadd(ledger, clone)
            pipe.execute()
        done += batch
    state = keys.instance_state(INSTANCE)
    for name, value in template.items():
        if name.startswith("pot:") and name.endswith((":value", ":reserve")):
            client.hincrby(state, name, int(value) * clones)
    client.hincrby(state, "total:contributions", int(template["amount"]) * clones)
    client.hincrby(state, "total:house", int(template["house"]) * clones)
    client.close()


async def run(args: argparse.Namespace) -> None:
    server = EmbeddedRedis(shutil.which("redis-server") or "redis-server")
    archive = Path(tempfile.mkdtemp(prefix="bench-ledger-"))
    settings = Settings(
        redis_url=server.url,
        jwt_secret="bench-secret-that-is-long-enough-0123456789",
        draw_key="bench-draw-key-that-is-long-enough-0123456789",
        ledger_archive_url=str(archive),
    )
    app = create_app(settings)
    rows: list[tuple[str, str]] = []
    try:
        async with app.test_app():
            gateway: Services = app.extensions["gateway"]
            client = app.test_client()
            demo = read_definitions(ROOT / "examples" / "demo.yaml")
            await gateway.admin.apply({**demo, "accounts": []}, lambda _: None)
            headers = {"Authorization": f"Bearer {gateway.tokens.issue(ADMIN)}"}
            pots = [
                pot(
                    "main",
                    "0.6",
                    must_drop("900000000", "900000001"),
                    seed="10",
                    reserve_share="0.1",
                    max_value="1000000000",
                ),
                pot(
                    "side",
                    "0.1",
                    must_drop("900000000", "900000001"),
                    seed="1",
                    max_value="1000000000",
                ),
            ]
            await create_instance(client, headers, instance(INSTANCE, pots=pots, fixed="0.10"))
            body = contribution(INSTANCE, "p0")
            await expect(await post(client, "/jackpots/contribute", body, headers), 200)
            started = time.perf_counter()
            await asyncio.to_thread(fill, server.url, args.entries)
            rows.append(
                (
                    "ledger built",
                    f"{args.entries:,} entries in {time.perf_counter() - started:.1f} s",
                )
            )

            async def reconcile() -> tuple[float, dict[str, Any]]:
                begun = time.perf_counter()
                response = await client.get(
                    f"/admin/instances/{INSTANCE}/reconciliation", headers=headers
                )
                report = await expect(response, 200)
                return time.perf_counter() - begun, report

            lags: list[float] = []

            async def lag(stop: asyncio.Event) -> None:
                """The event loop's lag: how late a 1 ms sleep wakes up."""
                while not stop.is_set():
                    begun = time.perf_counter()
                    await asyncio.sleep(0.001)
                    lags.append((time.perf_counter() - begun) * 1000 - 1)

            async def during(work: Any) -> tuple[Any, list[float]]:
                stop = asyncio.Event()
                load = asyncio.create_task(contributions(client, headers, args.rate, stop))
                probe = asyncio.create_task(lag(stop))
                await asyncio.sleep(0.5)
                try:
                    result = await work
                finally:
                    stop.set()
                await probe
                return result, await load

            quiet = await contributions(
                client, headers, args.rate, asyncio.Event(), seconds=args.quiet
            )
            rows.append(("quiet contributions", spread(quiet)))
            (first_s, first), busy = await during(reconcile())
            rows.append(
                (
                    "first reconciliation",
                    f"{first_s:.2f} s, {first['entries_replayed']:,} "
                    f"entries, balanced={first['balanced']}",
                )
            )
            ratio = percentile(busy, 0.99) / percentile(quiet, 0.99)
            rows.append(("contributions meanwhile", f"{spread(busy)} ({ratio:.2f}x quiet)"))
            rows.append(("event-loop lag meanwhile", f"{spread(lags)}, max {max(lags):.1f} ms"))
            second_s, second = await reconcile()
            replayed = f"{second['entries_replayed']:,} of {second['entries_total']:,}"
            rows.append(
                (
                    "after the checkpoint",
                    f"{second_s * 1000:.0f} ms, {replayed} entries replayed, "
                    f"balanced={second['balanced']}",
                )
            )

            raw = gateway.store.client
            used_before = (await raw.info("memory"))["used_memory"]
            [(first_id, _)] = await raw.xrange(keys.instance_ledger(INSTANCE), count=1)
            day = day_of(first_id)
            now = day_bounds(day)[1] + settings.ledger_retention_days * DAY_MS
            begun = time.perf_counter()
            done = await gateway.ledger.run(INSTANCE, now=now)
            archive_s = time.perf_counter() - begun
            used_after = (await raw.info("memory"))["used_memory"]
            size = await asyncio.to_thread(
                lambda: sum(p.stat().st_size for p in archive.rglob("*") if p.is_file())
            )
            archived = sum(d["entries"] for d in done["days"])
            rows.append(
                ("archive job", f"{archive_s:.1f} s for {archived:,} entries ({done['days']})")
            )
            rows.append(("archive size", f"{size:,} B ({size / max(archived, 1):.1f} B/entry)"))
            freed = (used_before - used_after) / max(archived, 1)
            rows.append(
                (
                    "Redis used_memory",
                    f"{used_before:,} B before, {used_after:,} B after ({freed:.0f} B/entry freed)",
                )
            )
            after_s, after = await reconcile()
            rows.append(
                (
                    "reconciliation after the trim",
                    f"{after_s * 1000:.0f} ms, "
                    f"balanced={after['balanced']}, {after['entries_total']:,} entries "
                    "covered",
                )
            )
            [verdict] = await gateway.ledger.verify(INSTANCE)
            rows.append(("ledger verify", f"problems={verdict['problems']}"))
    finally:
        server.stop()
        shutil.rmtree(archive, ignore_errors=True)
    print(f"| measure ({args.entries:,} entries, {args.rate:g} contributions/s) | result |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000, help="ledger entries")
    parser.add_argument("--rate", type=float, default=100, help="contributions/s meanwhile")
    parser.add_argument("--quiet", type=float, default=5, help="seconds of quiet contributions")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
