"""Raffle benchmark: `python -m bench.raffle [--sizes 10000,100000,1000000]`.

Starts a private redis-server on a free loopback port (the Redis on 6379 is never touched).
For each size it builds one round of that many tickets held by size/10 players (10 tickets
each, so 100,000 players at 10^6), then measures in the same run:

  award   the contribute script awarding one ticket to a player of that round
          (lua/contribute-13.lua: Fenwick update + ticket index), next to the same script
          on an instance without a raffle, and their ratio;
  draw    one draw of 100 prizes (lua/draw_raffle-11.lua: 100 distinct winners, each a
          Fenwick descent over the round, checked against the winners the drawing process
          computed), per winner; and the whole draw as the process runs it: the round's
          sales sealed, its tickets read and hashed (the snapshot), the winners sampled,
          the script;
  archive the drawn round archived as the scheduler does it (lua/archive_round-5.lua, 500
          items a step): the steps, the longest step and the total script time.

`--ballast PLAYERS` first builds another round of PLAYERS players (same tickets each) in the
same Redis and keeps it while every size is measured, so a small round is measured inside a
dataset as big as a large one's: what the award costs for the round's size, apart from the
dataset's. `--base REF` also runs the contribute script of a git ref (or of a directory
holding lua/) in the same Redis, on the same two instances, its batches alternating with
this checkout's (or with those of `--head REF`): a change to the script measured side by
side.

Script times are Redis's own (INFO commandstats usec of EVALSHA, reset around each batch
or draw), so neither the client nor the loopback weigh on them. Award and plain
contributions run in alternating batches of 100 calls; each column is the median of its
batches' means (Redis times in wall-clock microseconds, so a batch during which the OS ran
other processes counts long; the median leaves such batches out). It is not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import subprocess
import tarfile
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.schemas.admin import InstanceSchema
from app.services.draws import (
    commitment,
    derive_salt,
    draw_winners,
    new_seed,
    salted_lines,
    snapshot_hash,
)
from app.services.engine import compile_engine
from app.services.raffles import ARCHIVE_CHUNK, DEFAULT_ROUND_RETENTION_MS
from app.store import Store
from app.store.connection import async_client
from app.store.contributions import PotDraw
from app.store.scripts import ScriptRunner, load_scripts
from bench.contribute import ROOT, Processes, free_ports, git, machine, start_redis

M = 1_000_000
PRIZES = 100
AWARDS = 2000
BATCH = 100
PROFILED = 500  # contributions of each kind in the --commands profile
TICKETS_PER_PLAYER = 10
CONCURRENCY = 200
BENCH_DRAW_KEY = "bench-raffle-draw-key-0123456789-0123456789"


def definition(instance_id: str, raffle: bool) -> dict[str, Any]:
    return {
        "id": instance_id,
        "name": instance_id,
        "jackpot_type": "Raffle" if raffle else "Jackpot",
        "currency": "EUR",
        "contribution_type": {"Percentage": "1"},
        "allowed_brands": ["bench:brand"],
        "house_share": "0.5",
        "pots": [
            {
                "id": "pool",
                "name": "Pool",
                "share": "0.5",
                "trigger": {"MustDropBy": {"min": "900000000", "max": "1000000000"}},
            }
        ],
        "raffle": {
            "ticket_cost": "1",
            "prizes": ["1"] * PRIZES,
            "draw": {"every": "1d"},
        }
        if raffle
        else None,
    }


async def create(store: Store, instance_id: str, raffle: bool) -> dict[str, Any]:
    loaded = InstanceSchema().load(definition(instance_id, raffle))
    engine = compile_engine(loaded)
    await store.create_instance(
        InstanceSchema().dump(loaded),
        engine,
        now_ms=int(time.time() * 1000),
        status="Active",
        timestamp_start=None,
        timestamp_end=None,
        drop_values=[950_000_000 * M],
    )
    return engine


async def contribute(store: Store, instance_id: str, player: str, units: int) -> None:
    await store.contribute(
        instance_id,
        operator_id="bench",
        brand_id="brand",
        player_id=player,
        contribution_id=uuid.uuid4().hex,
        event_id=uuid.uuid4().hex,
        now_ms=int(time.time() * 1000),
        pots=[PotDraw("pool", reset_input=950_000_000 * M)],
        amount=units * M,
    )


async def evalsha_usec(store: Store) -> tuple[int, float]:
    """EVALSHA calls that ran and their total usec since the last reset (a first call that
    answered NOSCRIPT, before the client loads the script, ran nothing and counts as failed)."""
    stats = await store.client.info("commandstats")
    entry = stats.get("cmdstat_evalsha", {"calls": 0, "usec": 0})
    ran = int(entry["calls"]) - int(entry.get("failed_calls", 0))
    return ran, float(entry["usec"])


Variant = tuple[str, Store, str]  # name, the store (its scripts), the instance


async def measure_awards(pairs: list[list[Variant]], players: int) -> dict[str, float]:
    """Script time per contribution of each variant: the median of batch means, the batches
    (BATCH calls each, one after the other) alternating between the variants, so that a
    change in the machine's load weighs on all alike and a batch the OS slowed down does not
    move the result. `pairs` groups the variants that run on one instance (this checkout's
    script and --base's); every other step runs each pair in the other order, so that each
    variant follows a batch on the other instance as often as its rival does. Each call goes
    to the instance's next player (every player in turn), so no batch finds the players of
    the one before it in the CPU's cache."""
    times: dict[str, list[float]] = {name: [] for pair in pairs for name, _, _ in pair}
    made: Counter[str] = Counter()  # calls so far per instance
    for step in range(AWARDS // BATCH):
        for pair in pairs:
            for name, store, instance_id in pair if step % 2 == 0 else pair[::-1]:
                await store.client.config_resetstat()
                for k in range(made[instance_id], made[instance_id] + BATCH):
                    await contribute(store, instance_id, f"p{(k * 7919) % players}", 1)
                made[instance_id] += BATCH
                calls, usec = await evalsha_usec(store)
                assert calls == BATCH, calls
                times[name].append(usec / BATCH)
    return {name: statistics.median(batch_means) for name, batch_means in times.items()}


async def fill_round(store: Store, instance_id: str, players: int, per_player: int) -> str:
    """Open a round of `instance_id` and give `players` players `per_player` tickets each;
    returns the seed of the round."""
    seed = new_seed()
    now = int(time.time() * 1000)
    await store.open_round(
        instance_id,
        now_ms=now,
        key_id="bench",
        commitment=commitment(seed),
        ends=None,
        event_id=uuid.uuid4().hex,
    )
    for first in range(0, players, CONCURRENCY):
        await asyncio.gather(
            *(
                contribute(store, instance_id, f"p{n}", per_player)
                for n in range(first, min(first + CONCURRENCY, players))
            )
        )
    return seed


async def command_profile(
    store: Store, instance_id: str, players: int, offset: int
) -> dict[str, tuple[float, float]]:
    """Redis's time in each command the contribute script calls: {name: (usec, calls)} per
    contribution, over PROFILED contributions, from SLOWLOG with every command logged. The
    logging itself adds to the script's time, so only the commands' parts are read here."""
    await store.client.config_set("slowlog-log-slower-than", 0)
    await store.client.config_set("slowlog-max-len", 64 * BATCH)
    usec: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    for first in range(offset, offset + PROFILED, BATCH):
        await store.client.slowlog_reset()
        for n in range(first, first + BATCH):
            await contribute(store, instance_id, f"p{(n * 7919) % players}", 1)
        for entry in await store.client.slowlog_get(64 * BATCH):
            if entry["client_address"] in (b"?:0", "?:0"):  # called by the script
                command = entry["command"]
                if isinstance(command, bytes):
                    command = command.decode(errors="replace")
                name = command.split(" ", 1)[0].upper()
                usec[name] += int(entry["duration"])
                calls[name] += 1
    await store.client.config_set("slowlog-log-slower-than", 10_000)
    return {name: (usec[name] / PROFILED, calls[name] / PROFILED) for name in usec}


async def run_size(
    store: Store, base: Store | None, size: int, per_player: int, commands: bool = False
) -> dict[str, Any]:
    players = size // per_player
    raffle_id, plain_id = f"raffle-{size}", f"plain-{size}"
    await create(store, raffle_id, raffle=True)
    await create(store, plain_id, raffle=False)
    started = time.perf_counter()
    seed = await fill_round(store, raffle_id, players, per_player)
    fill_s = time.perf_counter() - started
    pairs: list[list[Variant]] = [[("award", store, raffle_id)], [("plain", store, plain_id)]]
    if base is not None:
        pairs[0].append(("award base", base, raffle_id))
        pairs[1].append(("plain base", base, plain_id))
    times = await measure_awards(pairs, players)
    tickets = size + AWARDS * (1 if base is None else 2)
    profiles: dict[str, dict[str, tuple[float, float]]] = {}
    if commands:
        for name, instance_id in (("award", raffle_id), ("plain", plain_id)):
            profiles[name] = await command_profile(store, instance_id, players, AWARDS)
        tickets += PROFILED
    # the draw as RaffleService.draw runs it: seal, read and hash the snapshot, sample, draw
    started = time.perf_counter()
    await store.close_round(raffle_id, 1, now_ms=int(time.time() * 1000))
    round_tickets = await store.live_round_tickets(raffle_id, 1)
    digest = snapshot_hash(salted_lines(round_tickets, salts(raffle_id)))
    read_s = time.perf_counter() - started
    picks = draw_winners(seed, raffle_id, 1, digest, round_tickets, PRIZES)
    sample_s = time.perf_counter() - started - read_s
    await store.client.config_resetstat()
    record = await store.draw_raffle(
        raffle_id,
        now_ms=int(time.time() * 1000),
        round_id=1,
        seed=seed,
        snapshot=digest,
        tickets_total=sum(held for _, _, held in round_tickets),
        picks=[(p.random, p.target, p.index) for p in picks],
        event_id=uuid.uuid4().hex,
        jackpot_name=None,
        currency_multipliers={},
        next_key=None,
        next_commitment=None,
        next_ends=None,
        by="bench",
    )
    calls, draw_usec = await evalsha_usec(store)
    whole_s = time.perf_counter() - started
    assert calls == 1 and len(record["winners"]) == min(PRIZES, players), calls
    assert int(record["tickets_total"]) == tickets
    archive = await measure_archive(store, raffle_id, digest, salts(raffle_id))
    return {
        "tickets": tickets,
        "players": players,
        "fill_s": fill_s,
        "draw_ms": draw_usec / 1000,
        "per_winner_ms": draw_usec / 1000 / PRIZES,
        "snapshot_ms": read_s * 1000,
        "sample_ms": sample_s * 1000,
        "whole_draw_ms": whole_s * 1000,
        "award_us": times["award"],
        "plain_us": times["plain"],
        "base_award_us": times.get("award base"),
        "base_plain_us": times.get("plain base"),
        "profiles": profiles,
        **archive,
    }


def salts(instance_id: str) -> Callable[[str], str]:
    """The salts of round 1's snapshot lines (version 2), as a drawing process derives them."""
    return lambda pk: derive_salt(BENCH_DRAW_KEY, instance_id, 1, pk)


async def measure_archive(
    store: Store, instance_id: str, digest: str, salt: Callable[[str], str]
) -> dict[str, Any]:
    """Archive round 1 step by step; each step's script time from INFO commandstats."""
    steps, longest, total = 0, 0.0, 0.0
    for step in ("copy", "clear"):
        while True:
            await store.client.config_resetstat()
            phase, _, _ = await store.archive_round_step(
                instance_id,
                1,
                step=step,
                chunk=ARCHIVE_CHUNK,
                retention_ms=DEFAULT_ROUND_RETENTION_MS,
            )
            _, usec = await evalsha_usec(store)
            steps, longest, total = steps + 1, max(longest, usec), total + usec
            if phase in ("copied", "archived"):
                break
        if step == "copy":
            archived = await store.archived_tickets(instance_id, 1)
            assert snapshot_hash(salted_lines(archived, salt)) == digest
    assert await store.archive_state(instance_id, 1) == "archived"
    return {"archive_steps": steps, "archive_step_ms": longest / 1000, "archive_s": total / 1e6}


async def run(
    port: int,
    sizes: list[int],
    per_player: int,
    commands: bool,
    ballast: int,
    head_lua: Path | None,
    base_lua: Path | None,
) -> list[dict[str, Any]]:
    client = async_client(f"redis://127.0.0.1:{port}/0", max_connections=CONCURRENCY)
    store = Store(client, ScriptRunner(None if head_lua is None else load_scripts(head_lua)))
    base = None if base_lua is None else Store(client, ScriptRunner(load_scripts(base_lua)))
    try:
        if ballast:
            await create(store, "ballast", raffle=True)
            await fill_round(store, "ballast", ballast, per_player)
        return [await run_size(store, base, size, per_player, commands) for size in sizes]
    finally:
        if base is not None:
            base.runner.close()
        await store.close()


def ref_scripts(spec: str, target: Path) -> tuple[Path, str]:
    """lua/ of a directory, or of a git ref extracted into target; and what it is."""
    as_dir = Path(spec)
    if (as_dir / "lua").is_dir():
        return as_dir / "lua", str(as_dir.resolve())
    archive = subprocess.run(
        ["git", "archive", "--format=tar", spec, "lua"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    commit = git("rev-parse", "--short", spec)
    return target / "lua", spec if commit.startswith(spec) else f"{spec} ({commit})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="tickets per round")
    parser.add_argument("--per-player", type=int, default=TICKETS_PER_PLAYER, help="tickets each")
    parser.add_argument(
        "--commands",
        action="store_true",
        help="also print Redis's time per command the contribute script calls (SLOWLOG)",
    )
    parser.add_argument(
        "--ballast",
        type=int,
        default=0,
        metavar="PLAYERS",
        help="first build another round of PLAYERS players, kept while every size is measured",
    )
    parser.add_argument(
        "--head",
        metavar="REF_OR_DIR",
        help="the Lua scripts of a git ref (or a directory holding lua/) instead of this "
        "checkout's",
    )
    parser.add_argument(
        "--base",
        metavar="REF_OR_DIR",
        help="also run the contribute script of a git ref (or a directory holding lua/), "
        "its batches alternating with this checkout's",
    )
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-raffle-") as workdir:
        head_lua, head_name = None, "this checkout"
        if args.head:
            head_lua, head_name = ref_scripts(args.head, Path(workdir) / "head")
        base_lua, base_name = None, ""
        if args.base:
            base_lua, base_name = ref_scripts(args.base, Path(workdir) / "base")
        processes = Processes(Path(workdir))
        try:
            port = free_ports(1)[0]
            start_redis(processes, "redis", port)
            results = asyncio.run(
                run(port, sizes, args.per_player, args.commands, args.ballast, head_lua, base_lua)
            )
        finally:
            processes.stop()
    print(f"machine: {machine()}")
    load_after = os.getloadavg()[0]
    print(f"load average (1 min): {load_before:.1f} at the start, {load_after:.1f} at the end")
    print(
        f"draw: {PRIZES} prizes, one draw per size; award: {AWARDS} contributions of 1 ticket, "
        f"alternating with as many plain ones in batches of {BATCH} (medians of the batches)"
    )
    if args.ballast:
        print(
            f"ballast: a round of {args.ballast:,} players ({args.ballast * args.per_player:,} "
            "tickets) in the same Redis, built first and kept while every size is measured"
        )
    print("script times are Redis's own (EVALSHA usec; contributions: median of batch means)\n")
    columns = [
        "tickets",
        "players",
        "draw, ms per winner",
        "draw of 100, ms",
        "award, µs per contribution",
        "same without a raffle, µs",
        "award - plain, µs",
        "ratio",
    ]
    print("| " + " | ".join(columns) + " |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        ratio = r["award_us"] / r["plain_us"]
        print(
            f"| {r['tickets']:,} | {r['players']:,} | {r['per_winner_ms']:.3f} "
            f"| {r['draw_ms']:.1f} | {r['award_us']:.1f} | {r['plain_us']:.1f} "
            f"| {r['award_us'] - r['plain_us']:.1f} | {ratio:.2f} |"
        )
    if args.base:
        print(f"\nthe contribute script of {head_name} (head) and of {base_name} (base),")
        print("alternating batches in the same run (µs per contribution)\n")
        print(
            "| players | award, head | award, base | plain, head | plain, base "
            "| award - plain, head | award - plain, base |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for r in results:
            print(
                f"| {r['players']:,} | {r['award_us']:.1f} | {r['base_award_us']:.1f} "
                f"| {r['plain_us']:.1f} | {r['base_plain_us']:.1f} "
                f"| {r['award_us'] - r['plain_us']:.1f} "
                f"| {r['base_award_us'] - r['base_plain_us']:.1f} |"
            )
    print("\nthe whole draw as the drawing process runs it (wall-clock ms)\n")
    print("| players | seal + read + hash the snapshot | sample 100 winners | whole draw |")
    print("|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['players']:,} | {r['snapshot_ms']:.1f} | {r['sample_ms']:.1f} "
            f"| {r['whole_draw_ms']:.1f} |"
        )
    print(f"\narchive of the drawn round ({ARCHIVE_CHUNK} items a step)\n")
    print("| players | steps | longest step, ms | all steps, s |")
    print("|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['players']:,} | {r['archive_steps']:,} | {r['archive_step_ms']:.1f} "
            f"| {r['archive_s']:.2f} |"
        )
    for r in results:
        for name, profile in r["profiles"].items():
            parts = ", ".join(
                f"{command} {usec:.1f} ({count:g})"
                for command, (usec, count) in sorted(profile.items(), key=lambda kv: -kv[1][0])
            )
            print(f"\n{r['players']:,} players, {name}: µs per contribution (calls): {parts}")


if __name__ == "__main__":
    main()
