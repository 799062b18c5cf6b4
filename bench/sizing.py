"""Redis bytes per contribution, per player, per raffle ticket holder and per day of meter
counters: `python -m bench.sizing [--count N]` (also `make bench-sizing`).

On a private redis-server (a free loopback port, no persistence; the Redis on 6379 is never
touched) with the definitions of bench/sizing.yaml loaded through the admin service, it drives
`--count` contributions (default 10^6) through the real contribute script: each one prepared
by the contribution service as a request would be (its charge, trigger inputs, idempotency
fingerprint and key), then sent as EVALSHA in pipelines of `--batch`, by `--players` random
players. It prints Redis's used_memory delta divided by the count:

  right after           everything the contributions wrote
  after the idempotency window
                        the idempotency records deleted (what their 24 h TTL does; the bench
                        deletes them instead of waiting)
  after archiving       the ledger archive job (app/services/ledger.py) run as the scheduler
                        runs it once the day is past LEDGER_RETENTION_DAYS: the day exported to
                        a directory (gzip JSON lines), read back and verified, then trimmed

and the bytes of each kind of key (MEMORY USAGE), so the resident bytes per contribution left
after archiving are seen with what they are made of. Then: an idempotency record with and
without typical metadata; the same sample (`--sample`, default 2000) through the script and
through the HTTP API (the app in-process, its test client: the same bytes); bytes per player
opted in, per raffle ticket holder of an open round, and per UTC day of meter counters.

It is not a test (pytest collects tests/ only); tests/test_bench.py runs it with --count 1000.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import random
import secrets
import shutil
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFINITIONS = Path(__file__).resolve().parent / "sizing.yaml"
PASSWORD_ENV = "BENCH_SERVICE_PASSWORD"
METADATA = {"bet_id": "b-1234567890", "market": "1x2", "odds": Decimal("2.35")}
DAY_MS = 86_400_000


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="contributions (10^6)")
    parser.add_argument("--players", type=int, default=0, help="players (default count/10)")
    parser.add_argument("--batch", type=int, default=1000, help="EVALSHA per pipeline")
    parser.add_argument("--sample", type=int, default=2000, help="script vs HTTP sample")
    parser.add_argument("--holders", type=int, default=0, help="raffle holders (count/10)")
    parser.add_argument("--v2", type=int, default=300, help="v2 contributions per case")
    args = parser.parse_args(argv)
    if args.count < 1 or args.batch < 1 or args.sample < 1:
        parser.error("--count, --batch and --sample must be at least 1")
    args.players = args.players or max(1, args.count // 10)
    args.holders = args.holders or max(1, min(100_000, args.count // 10))
    return args


def directory_size(path: str) -> tuple[int, int]:
    """The number of files under `path` and their bytes."""
    files = [found for found in Path(path).rglob("*") if found.is_file()]
    return len(files), sum(found.stat().st_size for found in files)


async def used(client: Any) -> int:
    info = await client.info("memory")
    return int(info["used_memory"])


async def key_bytes(client: Any, pattern: str, measured: int = 2000) -> tuple[int, int]:
    """(keys matching, their MEMORY USAGE summed): the first `measured` keys measured, the
    others counted at their mean (the idempotency records are alike)."""
    count = total = 0
    async for key in client.scan_iter(match=pattern, count=1000):
        count += 1
        if count <= measured:
            total += int(await client.memory_usage(key, samples=0) or 0)
    if count > measured:
        total = total * count // measured
    return count, total


async def delete_matching(client: Any, pattern: str) -> int:
    batch: list[str] = []
    deleted = 0
    async for key in client.scan_iter(match=pattern, count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            deleted += await client.unlink(*batch)
            batch = []
    if batch:
        deleted += await client.unlink(*batch)
    return deleted


class Driver:
    """Contributions through the real contribute script, prepared by the service."""

    def __init__(self, services: Any, principal: Any) -> None:
        from app.store.contributions import contribute_call

        self.services = services
        self.principal = principal
        self.store = services.store
        self.call = contribute_call
        self.script = self.store.runner.scripts["contribute"]

    def body(self, instance_id: str, player: str, key: str | None, metadata: Any) -> Any:
        return {
            "instance_id": instance_id,
            "token": "player-session-token",
            "brand_id": "bench:brand1",
            "player_id": player,
            "player_country": "DE",
            "gameround_id": f"round-{key}" if key else None,
            "base_wager": Decimal("2.00"),
            "currency": "EUR",
            "callback": None,
            "idempotency_key": key,
            "metadata": metadata,
            "event_metadata": None,
        }

    async def run(
        self,
        instance_id: str,
        count: int,
        players: int,
        batch: int,
        *,
        metadata: Any = None,
        rng: random.Random,
        now_ms: int | None = None,
    ) -> float:
        """Seconds taken; every contribution has its own idempotency key."""
        from app.services.contributions import fingerprint

        client = self.store.client
        await client.script_load(self.script.source)
        contributions = self.services.contributions
        # The service prepares one request; each contribution is that request with its own
        # player, idempotency key, game round and fingerprint (what prepare_v1 changes).
        template = await contributions.prepare_v1(
            self.principal, self.body(instance_id, "player", "key", metadata)
        )
        brand, currency = template.brand.path, template.currency
        started = time.perf_counter()
        done = 0
        while done < count:
            size = min(batch, count - done)
            async with client.pipeline(transaction=False) as pipe:
                for _ in range(size):
                    player = f"player-{rng.randrange(players):08d}"
                    key = uuid.uuid4().hex
                    body = self.body(instance_id, player, key, metadata)
                    contribution = dataclasses.replace(
                        template,
                        player_id=player,
                        idempotency_key=key,
                        gameround_id=body["gameround_id"],
                        request_hash=fingerprint(body, brand, currency, metadata),
                    )
                    call = contributions.script_call(contribution)
                    if now_ms is not None:
                        call["now_ms"] = now_ms
                    keys, args = self.call(
                        instance_id,
                        publish_mode=self.store.publish_mode,
                        events_cap=self.store.events_cap,
                        **call,
                    )
                    pipe.evalsha(self.script.sha, len(keys), *keys, *args)
                replies = await pipe.execute(raise_on_error=True)
            assert all(int(reply[0]) == 0 for reply in replies)
            done += size
        return time.perf_counter() - started


async def v2_links(services: Any, principal: Any, count: int) -> None:
    """`count` v2 contributions to a target with 0, 1 and 10 linked instances, settled as
    before (the target, then each link, one call after another: what contribute_v2 did) and
    as now (contribute_v2: the target, then every link at once). Round trips are the writes
    the store's command pipe makes; Redis CPU is INFO commandstats' EVALSHA usec and INFO
    cpu's used_cpu_user + used_cpu_sys (which also counts reading and writing sockets)."""
    from app.store import pipe

    client = services.store.client
    contributions = services.contributions
    writes = [0]
    flush = pipe.CommandPipe._flush

    def counted(self: Any) -> None:
        if any(not future.done() for _, future in self._outbox):
            writes[0] += 1
        flush(self)

    pipe.CommandPipe._flush = counted  # type: ignore[method-assign]

    async def before(body: dict[str, Any]) -> None:
        for item in await contributions.prepare_v2(principal, body):
            await contributions.settle(item)

    async def now(body: dict[str, Any]) -> None:
        await contributions.contribute_v2(principal, body)

    def body(target: str) -> dict[str, Any]:
        return {
            "target": {"type": "instance", "id": target},
            "source": {"id": None, "gameround_id": None},
            "operator_id": "bench",
            "player": {"id": f"p-{uuid.uuid4().hex[:8]}", "brand_id": "brand1",
                       "country": "DE", "token": None, "segments": None},
            "base_wager": {"value": Decimal("2.00"), "currency": "EUR"},
            "contribution_preference": None,
            "options": {"callback": None, "idempotency_key": uuid.uuid4().hex},
            "metadata": None,
            "event_metadata": None,
        }  # fmt: skip

    rows = []
    modes = (("one after another (before)", before), ("target, then links at once (now)", now))
    try:
        for mode, settle in modes:
            for target, links in (("v2-none", 0), ("v2-one", 1), ("v2-ten", 10)):
                await settle(body(target))  # the scripts loaded, the caches warm
                await client.config_resetstat()
                cpu = await client.info("cpu")
                writes[0] = 0
                started = time.perf_counter()
                for _ in range(count):
                    await settle(body(target))
                seconds = time.perf_counter() - started
                after = await client.info("cpu")
                stats = await client.info("commandstats")
                usec = stats.get("cmdstat_evalsha", {}).get("usec", 0)
                cpu_us = sum(after[k] - cpu[k] for k in ("used_cpu_user", "used_cpu_sys")) * 1e6
                rows.append((mode, links, writes[0] / count, usec / count, cpu_us / count,
                             seconds / count * 1e3))  # fmt: skip
    finally:
        pipe.CommandPipe._flush = flush  # type: ignore[method-assign]
    print(f"# v2 contributions with linked instances ({count} each)\n")
    print("| settled | links | round trips | EVALSHA usec | Redis CPU usec | ms each |")
    print("|---|---:|---:|---:|---:|---:|")
    for mode, links, trips, usec, cpu_us, ms in rows:
        print(f"| {mode} | {links} | {trips:.2f} | {usec:,.0f} | {cpu_us:,.0f} | {ms:.2f} |")
    for mode, _ in modes:
        by_links = {row[1]: row for row in rows if row[0] == mode}
        extra = (by_links[10][4] - by_links[0][4]) / 10
        evalsha = (by_links[10][3] - by_links[0][3]) / 10
        print(f"\n{mode}: per extra link {evalsha:,.0f} usec of EVALSHA, "
              f"{extra:,.0f} usec of Redis CPU")  # fmt: skip
    print()


def per(total: float, count: int) -> str:
    return f"{total / count:,.1f}"


async def measure(args: argparse.Namespace, redis_url: str, archive_dir: str) -> None:
    os.environ.update(
        {
            "REDIS_URL": redis_url,
            "QUEUE_REDIS_URL": redis_url,
            "JWT_SECRET": secrets.token_hex(32),
            "DRAW_KEY": secrets.token_hex(32),
            PASSWORD_ENV: secrets.token_hex(12),
            "LEDGER_ARCHIVE_URL": archive_dir,
        }
    )
    os.environ.pop("REDIS_CLUSTER", None)
    from app.core.config import Settings
    from app.core.security import Principal
    from app.edge.web import create_app
    from app.services import Services
    from app.services.definitions import load_file
    from app.store import keys

    settings = Settings.from_env()
    services = Services.create(settings)
    client = services.store.client
    rng = random.Random(20261206)
    try:
        await load_file(services.admin, DEFINITIONS)
        principal = Principal("bench-service", "bench", ("operator", "admin"))
        driver = Driver(services, principal)

        # 1. --count contributions through the script ---------------------------------------
        tag = keys.instance_tag("size-drop")
        before = await used(client)
        seconds = await driver.run("size-drop", args.count, args.players, args.batch, rng=rng)
        after = await used(client)
        kinds = [
            ("idempotency records", f"{tag}:idem:*"),
            ("ledger (stream)", keys.instance_ledger("size-drop")),
            ("player counters (opt-in hash)", keys.instance_optins("size-drop")),
            ("wins (hash + recent index)", f"{tag}:wins*"),
            ("meter counters", keys.instance_meter("size-drop")),
            ("events stream (capped)", keys.instance_events("size-drop")),
            ("state", keys.instance_state("size-drop")),
        ]
        print(
            f"# Redis bytes per contribution ({args.count:,} contributions through "
            f"lua/contribute-13.lua, {args.players:,} players, pipelines of {args.batch}, "
            f"{args.count / seconds:,.0f}/s)\n"
        )
        print("| what | keys | bytes | bytes per contribution |")
        print("|---|---:|---:|---:|")
        for name, pattern in kinds:
            n, total = await key_bytes(client, pattern)
            print(f"| {name} | {n:,} | {total:,} | {per(total, args.count)} |")
        print()
        print("| when | used_memory delta | bytes per contribution |")
        print("|---|---:|---:|")
        print(f"| right after | {after - before:,} | {per(after - before, args.count)} |")
        await delete_matching(client, f"{tag}:idem:*")
        window = await used(client)
        print(
            f"| after the idempotency window (records deleted) | {window - before:,} "
            f"| {per(window - before, args.count)} |"
        )
        # The scheduler's archive job, on a clock past the day's retention.
        day_ms = 86_400_000
        later = (int(time.time() * 1000) // day_ms + settings.ledger_retention_days + 2) * day_ms
        archive_started = time.perf_counter()
        done = await services.ledger.run("size-drop", now=later)
        archive_seconds = time.perf_counter() - archive_started
        assert done.get("days") and "error" not in done, done
        archived = await used(client)
        files, archive_bytes = directory_size(archive_dir)
        print(
            f"| after archiving (the archive job: {len(done['days'])} day(s) exported, "
            f"verified and trimmed in {archive_seconds:.1f} s) | {archived - before:,} "
            f"| {per(archived - before, args.count)} |"
        )
        print(
            f"\nThe archive: {files} files, {archive_bytes:,} bytes "
            f"({per(archive_bytes, args.count)} per contribution, gzip JSON lines).\n"
        )
        print()
        print("Left after archiving, by key:\n")
        print("| what | keys | bytes | bytes per contribution |")
        print("|---|---:|---:|---:|")
        for name, pattern in kinds:
            n, total = await key_bytes(client, pattern)
            print(f"| {name} | {n:,} | {total:,} | {per(total, args.count)} |")
        print()

        # 2. one idempotency record, with and without metadata ------------------------------
        print("# One idempotency record (MEMORY USAGE, key included)\n")
        print("| metadata | record bytes |")
        print("|---|---:|")
        for label, metadata in (("none", None), (f"`{METADATA}`", METADATA)):
            await driver.run("size-script", 1, 1, 1, metadata=metadata, rng=rng)
            pattern = f"{keys.instance_tag('size-script')}:idem:*"
            n, total = await key_bytes(client, pattern)
            print(f"| {label} | {total // max(n, 1):,} |")
            await delete_matching(client, pattern)
        print()

        # 3. the same sample through the script and through the HTTP API -------------------
        sample = args.sample
        start = await used(client)
        await driver.run("size-script", sample, max(1, sample // 10), args.batch, rng=rng)
        script_bytes = await used(client) - start
        app = create_app(settings, services)
        token = services.tokens.issue(principal)
        headers = {"Authorization": f"Bearer {token}"}
        async with app.test_app():
            http = app.test_client()
            start = await used(client)
            for _ in range(sample):
                player = f"player-{rng.randrange(max(1, sample // 10)):08d}"
                body = driver.body("size-http", player, uuid.uuid4().hex, None)
                body = {k: v for k, v in body.items() if v is not None}
                body["base_wager"] = "2.00"
                response = await http.post("/jackpots/contribute", json=body, headers=headers)
                assert response.status_code == 200, await response.get_data(as_text=True)
            http_bytes = await used(client) - start
        print(f"# The same {sample:,} contributions through the script and the HTTP API\n")
        print("| path | used_memory delta | bytes per contribution | idempotency record |")
        print("|---|---:|---:|---:|")
        for path, instance_id, total in (
            ("script (pipelined EVALSHA)", "size-script", script_bytes),
            ("HTTP API (POST /jackpots/contribute)", "size-http", http_bytes),
        ):
            n, idem = await key_bytes(client, f"{keys.instance_tag(instance_id)}:idem:*")
            print(f"| {path} | {total:,} | {per(total, sample)} | {idem // max(n, 1):,} |")
        print()

        # 4. v2 with linked instances: round trips and Redis CPU per extra link ------------
        await v2_links(services, principal, args.v2)

        # 5. per player opted in, per raffle holder, per day of counters --------------------
        print("# Per player, per raffle ticket holder, per day of meter counters\n")
        print("| what | count | bytes | bytes each |")
        print("|---|---:|---:|---:|")
        holders = args.holders
        optins = keys.instance_optins("size-optin")
        start_bytes = await used(client)
        for first in range(0, holders, args.batch):
            async with client.pipeline(transaction=False):
                for i in range(first, min(holders, first + args.batch)):
                    await services.optins.opt_in_v1(
                        principal,
                        {
                            "instance_id": "size-optin",
                            "player_id": f"player-{i:08d}",
                            "brand_id": "bench:brand1",
                            "player_country": "DE",
                            "opt_in": True,
                            "contribution_value": None,
                            "contribution_currency": None,
                        },
                    )
        optin_bytes = await used(client) - start_bytes
        _, optin_hash = await key_bytes(client, optins)
        print(
            f"| player opted in (opt-in hash {optin_hash:,} B) | {holders:,} | "
            f"{optin_bytes:,} | {per(optin_bytes, holders)} |"
        )
        start_bytes = await used(client)
        await driver.run("size-raffle", holders, holders, args.batch, rng=random.Random(7))
        n_tickets = await client.hget(keys.instance_tickets("size-raffle"), "1|n")
        raffle_keys = [
            keys.instance_tickets("size-raffle"),
            keys.instance_ticket_ranking("size-raffle"),
        ]
        raffle_bytes = 0
        for key in raffle_keys:
            raffle_bytes += int(await client.memory_usage(key, samples=0) or 0)
        held = int(n_tickets or 0)
        print(
            f"| raffle ticket holder of an open round (tickets hash + index) | {held:,} | "
            f"{raffle_bytes:,} | {per(raffle_bytes, max(held, 1))} |"
        )
        meter = keys.instance_meter("size-script")
        start_bytes = int(await client.memory_usage(meter, samples=0) or 0)
        days, per_day = 30, 200  # days with wins of every pot: every figure moves
        today = int(time.time() * 1000) // DAY_MS * DAY_MS
        for day in range(1, days + 1):
            now = today + day * DAY_MS + 1000
            await driver.run("size-script", per_day, 50, per_day, rng=rng, now_ms=now)
        meter_bytes = int(await client.memory_usage(meter, samples=0) or 0) - start_bytes
        fields = await client.hlen(meter)
        print(
            f"| UTC day of meter counters (3 pots, {per_day} contributions a day; "
            f"{fields} fields) "
            f"| {days} | {meter_bytes:,} | {per(meter_bytes, days)} |"
        )
        print(
            f"\nRedis {(await client.info('server'))['redis_version']}, "
            f"{sys.implementation.name} {sys.version.split()[0]}."
        )
    finally:
        await services.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    binary = shutil.which("redis-server")
    if binary is None:
        print("redis-server is not on PATH", file=sys.stderr)
        return 1
    from app.store.embedded import EmbeddedRedis

    server = EmbeddedRedis(binary)
    try:
        with tempfile.TemporaryDirectory(prefix="sizing-archive-") as archive_dir:
            asyncio.run(measure(args, server.url, archive_dir))
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
