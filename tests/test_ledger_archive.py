"""The ledger archive (docs/ledger.md): closed days exported to gzip JSON lines with a
manifest, read back and verified, then trimmed from Redis; reconciliation from checkpoints;
`ledger verify`; the admin export across archive and live entries; crash and resume.

Entries on several UTC days: Redis stamps ledger ids with its own clock, which a test cannot
move, so a test writes one no-money `status` entry with an explicit id at the next midnight
(`next_day`); every entry the scripts write afterwards gets a later id (Redis keeps ids
increasing), so the traffic after it belongs to that day.
"""

from __future__ import annotations

import gzip
import json
import random
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from quart.testing import QuartClient

from app.core.config import Settings
from app.services import Services
from app.services.books import replay
from app.services.ledger import DAY_MS, day_bounds, day_of
from app.store import keys
from app.store.archive import LEDGER, parse_ledger_line
from tests.conftest import CLI, make_settings
from tests.support.definitions import hit_rate, instance, must_drop, pot
from tests.support.http import contribution, create_instance, expect, post, view
from tests.support.money import assert_conserved

REAL = pytest.mark.parametrize("redis_url", ["real"], indirect=True)
FAKE = pytest.mark.parametrize("redis_url", ["fake"], indirect=True)
POTS = [
    pot("mini", "0.25", hit_rate(4, "0.10"), seed="1", reserve_share="0.15", max_value="5"),
    pot("major", "0.40", must_drop("3", "6"), seed="2", reserve_share="0.1", max_value="6"),
    pot("flat", "0.05", hit_rate(30, "0.10"), seed="2", progressive=False),
]


@pytest.fixture(params=["memory", "dir"])
def archive_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The archive in fsspec's memory filesystem, or in a local directory."""
    if request.param == "dir":
        return str(tmp_path / "archive")
    return f"memory://ledger-{uuid.uuid4().hex}"


@pytest.fixture
def settings(redis_url: str, archive_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("LEDGER_ARCHIVE_URL", archive_url)  # for the command line
    return make_settings(redis_url, ledger_archive_url=archive_url)


# -- helpers ---------------------------------------------------------------------------------
async def ledger(gateway: Services, instance_id: str) -> list[tuple[str, dict[str, str]]]:
    return list(await gateway.store.client.xrange(keys.instance_ledger(instance_id)))


async def exported(
    client: QuartClient, headers: dict[str, str], instance_id: str, count: int = 1000
) -> tuple[list[dict[str, str]], int]:
    """Every entry through the admin export, page by page; (entries, pages read)."""
    found: list[dict[str, str]] = []
    after, pages = "-", 0
    while True:
        response = await client.get(
            f"/admin/instances/{instance_id}/ledger",
            headers=headers,
            query_string={"after": after, "count": count},
        )
        page = await expect(response, 200)
        pages += 1
        found += page["entries"]
        if page["next"] is None:
            return found, pages
        after = page["next"]


def as_exported(entries: list[tuple[str, dict[str, str]]]) -> list[dict[str, str]]:
    return [{**fields, "entry_id": entry_id} for entry_id, fields in entries]


async def next_day(gateway: Services, instance_id: str) -> int:
    """Move the instance's ledger to the next UTC day (module docstring); its midnight, ms."""
    [(last_id, _)] = await gateway.store.client.xrevrange(
        keys.instance_ledger(instance_id), count=1
    )
    midnight = day_bounds(day_of(last_id))[1]
    await gateway.store.client.xadd(
        keys.instance_ledger(instance_id),
        {"type": "status", "status": "Active", "from": "Active", "by": "test", "ts": "0"},
        id=f"{midnight}-0",
    )
    return midnight


def past_retention(day: str, settings: Settings) -> int:
    """A moment at which `day` is closed and its retention over."""
    return day_bounds(day)[1] + settings.ledger_retention_days * DAY_MS


async def traffic(
    client: QuartClient, headers: dict[str, str], instance_id: str, rng: random.Random, n: int
) -> None:
    """A seeded random mix: contributions of random wagers (wins and reseeds with deficits
    follow from the pots), boosts of random amounts to values and reserves."""
    for _ in range(n):
        if rng.random() < 0.1:
            body = {
                "pot_id": rng.choice(["mini", "major"]),
                "amount": str(Decimal(rng.randint(1, 500_000)) / 10**6),
                "target": rng.choice(["value", "reserve"]),
            }
            await expect(
                await post(client, f"/admin/instances/{instance_id}/boosts", body, headers), 201
            )
        else:
            wager = str(Decimal(rng.randint(1, 2_000)) / 100)
            body = contribution(instance_id, f"p{rng.randint(1, 6)}", base_wager=wager)
            await expect(await post(client, "/jackpots/contribute", body, headers), 200)


async def new_instance(client: QuartClient, headers: dict[str, str], instance_id: str) -> None:
    definition = instance(instance_id, pots=POTS, contribution_type={"Percentage": "0.2"})
    await create_instance(client, headers, definition)


async def reconcile(client: QuartClient, headers: dict[str, str], instance_id: str) -> Any:
    response = await client.get(f"/admin/instances/{instance_id}/reconciliation", headers=headers)
    return await expect(response, 200)


def archive_lines(gateway: Services, instance_id: str, day: str) -> Iterator[bytes]:
    assert gateway.ledger.archive is not None
    return gateway.ledger.archive.lines(instance_id, day, LEDGER)


# -- round trip ------------------------------------------------------------------------------
@FAKE
async def test_a_day_archives_byte_for_byte_and_leaves_redis(
    client: QuartClient, headers: dict[str, str], gateway: Services, settings: Settings
) -> None:
    await new_instance(client, headers, "jp")
    await traffic(client, headers, "jp", random.Random(1), 40)
    before = await ledger(gateway, "jp")
    day = day_of(before[0][0])
    # Before the retention passes nothing moves.
    early = await gateway.ledger.run("jp", now=past_retention(day, settings) - 1)
    assert early["days"] == [] and await ledger(gateway, "jp") == before

    done = await gateway.ledger.run("jp", now=past_retention(day, settings))
    assert [(d["day"], d["entries"], d["trimmed"]) for d in done["days"]] == [
        (day, len(before), len(before))
    ]
    assert await ledger(gateway, "jp") == []
    lines = list(archive_lines(gateway, "jp", day))
    # Every entry, in id order, every field in the stream's order with the value Redis held.
    assert [parse_ledger_line(line) for line in lines] == before
    assert [list(parse_ledger_line(line)[1].items()) for line in lines] == [
        list(fields.items()) for _, fields in before
    ]
    archive = gateway.ledger.archive
    assert archive is not None
    manifest = archive.read_manifest("jp", day)
    assert manifest is not None
    assert (manifest["count"], manifest["first_id"], manifest["last_id"]) == (
        len(before),
        before[0][0],
        before[-1][0],
    )
    contributions = [f for _, f in before if f["type"] == "contribution"]
    assert manifest["sums"]["contribution"]["amount"] == sum(
        int(f["amount"]) for f in contributions
    )
    # A second run has nothing to do, and the books still balance after the trim.
    again = await gateway.ledger.run("jp", now=past_retention(day, settings))
    assert again["days"] == [] and again["balanced"] is True


@FAKE
async def test_the_export_pages_across_archive_and_live_entries_once_each(
    client: QuartClient, headers: dict[str, str], gateway: Services, settings: Settings
) -> None:
    await new_instance(client, headers, "jp")
    rng = random.Random(2)
    await traffic(client, headers, "jp", rng, 15)
    await next_day(gateway, "jp")
    await traffic(client, headers, "jp", rng, 15)
    second = await next_day(gateway, "jp")
    await traffic(client, headers, "jp", rng, 10)
    everything = await ledger(gateway, "jp")
    gateway.ledger.chunk = 7  # several chunks a day
    done = await gateway.ledger.run("jp", now=past_retention(day_of(f"{second - 1}-0"), settings))
    assert len(done["days"]) == 2
    live = await ledger(gateway, "jp")
    assert 0 < len(live) < len(everything) and live[0][0] == f"{second}-0"

    for count in (1, 5, 7, 1000):
        entries, pages = await exported(client, headers, "jp", count)
        assert entries == as_exported(everything), count
        assert pages == len(everything) // count + 1
    # A contribution keeps its own id beside its position in the ledger.
    contribution = next(e for e in entries if e["type"] == "contribution")
    assert contribution["entry_id"] in {entry_id for entry_id, _ in everything}
    assert contribution["id"] not in {entry_id for entry_id, _ in everything}
    # A page starting inside an archived chunk, and one starting at the boundary.
    middle = everything[10][0]
    response = await client.get(
        "/admin/instances/jp/ledger", headers=headers, query_string={"after": middle, "count": 4}
    )
    assert (await expect(response, 200))["entries"] == as_exported(everything[11:15])
    last_archived = everything[everything.index(live[0]) - 1][0]
    response = await client.get(
        "/admin/instances/jp/ledger",
        headers=headers,
        query_string={"after": last_archived, "count": 2},
    )
    assert (await expect(response, 200))["entries"] == as_exported(live[:2])


async def test_an_instance_older_than_its_meter_counters_keeps_its_figures_after_the_trim(
    client: QuartClient, headers: dict[str, str], gateway: Services, settings: Settings
) -> None:
    """An instance whose ledger predates the meter counters (deleted here, as before the
    upgrade): the archive job fills them from the ledger before it trims it, so the meter
    report's cumulative figures survive the trim."""
    await new_instance(client, headers, "jp")
    rng = random.Random(4)
    await traffic(client, headers, "jp", rng, 20)
    second = await next_day(gateway, "jp")
    await traffic(client, headers, "jp", rng, 5)

    async def cumulative() -> Any:
        response = await client.get("/admin/instances/jp/meters", headers=headers)
        report = await expect(response, 200)
        return report["cumulative"], [(p["pot_id"], p["cumulative"]) for p in report["pots"]]

    counted = await cumulative()
    assert counted[0]["hits"] or counted[0]["contributions"] != 0
    await gateway.store.client.delete(keys.instance_meter("jp"))
    done = await gateway.ledger.run("jp", now=past_retention(day_of(f"{second - 1}-0"), settings))
    assert len(done["days"]) == 1 and done["days"][0]["trimmed_all"]
    assert await cumulative() == counted


# -- reconciliation and conservation ---------------------------------------------------------
@pytest.mark.parametrize("redis_url", ["real", "fake"], indirect=True)
@pytest.mark.parametrize("archive_url", ["dir"], indirect=True)
async def test_money_is_conserved_across_archive_and_live_after_random_traffic(
    client: QuartClient, headers: dict[str, str], gateway: Services, settings: Settings, cli: CLI
) -> None:
    await new_instance(client, headers, "jp")
    rng = random.Random(3)
    await traffic(client, headers, "jp", rng, 40)
    await next_day(gateway, "jp")
    await traffic(client, headers, "jp", rng, 40)
    third = await next_day(gateway, "jp")
    await traffic(client, headers, "jp", rng, 20)

    # The full replay before anything is trimmed.
    pot_ids = [p["id"] for p in POTS]

    async def fields() -> Any:
        for _, entry in await ledger(gateway, "jp"):
            yield entry

    full = await replay(pot_ids, fields())
    first_report = await reconcile(client, headers, "jp")
    assert first_report["balanced"] and first_report["checkpoint"] is None

    await gateway.ledger.run("jp", now=past_retention(day_of(f"{third - 1}-0"), settings))
    assert (await ledger(gateway, "jp"))[0][0] == f"{third}-0"
    await traffic(client, headers, "jp", rng, 20)

    report = await reconcile(client, headers, "jp")
    assert report["balanced"] is True and report["differences"] == []
    assert report["checkpoint"] is not None
    assert report["entries_replayed"] < report["entries_total"]
    # The figures of the trimmed ledger's reconciliation: the full replay's plus the
    # traffic since, all in the state; and before the trim they were the full replay's.
    before = {line["field"]: line["ledger"] for line in first_report["compared"]}
    assert before == {
        **{
            f"pot:{p}:{name}": Decimal(getattr(full.pots[p], name)) / 10**6
            for p in pot_ids
            for name in ("value", "reserve", "deficit")
        },
        **{f"total:{name}": Decimal(amount) / 10**6 for name, amount in full.totals.items()},
    }
    state = await view(client, headers, "jp")
    after = {line["field"]: line["ledger"] for line in report["compared"]}
    for name, amount in state["totals"].items():
        assert after[f"total:{name}"] == amount
    assert_conserved(state)

    code, out, _ = await cli("ledger", "verify", "--instance", "jp")
    [verdict] = [json.loads(line) for line in out.splitlines()]
    assert (code, verdict["problems"], verdict["days"]) == (0, [], 2)
    assert verdict["entries_total"] == report["entries_total"]


@FAKE
async def test_a_reconciliation_after_a_checkpoint_replays_only_what_came_after(
    client: QuartClient, headers: dict[str, str], gateway: Services
) -> None:
    await new_instance(client, headers, "jp")
    await traffic(client, headers, "jp", random.Random(4), 30)
    first = await reconcile(client, headers, "jp")
    assert (first["checkpoint"], first["checkpoint_saved"]) == (None, True)
    await traffic(client, headers, "jp", random.Random(5), 3)
    added = len(await ledger(gateway, "jp")) - first["entries_total"]
    second = await reconcile(client, headers, "jp")
    assert second["balanced"] and second["checkpoint"] == first["as_of_entry"]
    assert (second["entries_replayed"], second["entries_total"]) == (
        added,
        first["entries_total"] + added,
    )
    # A difference in the state is still found from the checkpoint.
    await gateway.store.client.hincrby(keys.instance_state("jp"), "pot:mini:reserve", 1)
    third = await reconcile(client, headers, "jp")
    assert [d["field"] for d in third["differences"]] == ["pot:mini:reserve"]
    assert third["checkpoint_saved"] is False


# -- verify ----------------------------------------------------------------------------------
def _rewrite(gateway: Services, instance_id: str, day: str, change: Any) -> None:
    archive = gateway.ledger.archive
    assert archive is not None
    path = archive.path(instance_id, day, LEDGER)
    data = archive.fs.cat_file(path)
    if change is None:
        archive.fs.rm(path)
    else:
        archive.fs.pipe_file(path, change(data))


def _flip_a_byte(data: bytes) -> bytes:
    lines = gzip.decompress(data).splitlines(keepends=True)
    lines[3] = lines[3].replace(b'"type"', b'"typE"', 1)
    return gzip.compress(b"".join(lines), mtime=0)


def _drop_an_entry(data: bytes) -> bytes:
    lines = gzip.decompress(data).splitlines(keepends=True)
    return gzip.compress(b"".join(lines[:2] + lines[3:]), mtime=0)


def _raw_byte(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 1])


@FAKE
@pytest.mark.parametrize(
    ("change", "says"),
    [
        (_flip_a_byte, "sha256"),
        (_raw_byte, "does not read"),
        (_drop_an_entry, "count is"),
        (None, "is missing"),
    ],
    ids=["changed-entry", "changed-byte", "missing-entry", "missing-file"],
)
async def test_verify_finds_a_changed_archive(
    client: QuartClient,
    headers: dict[str, str],
    gateway: Services,
    settings: Settings,
    cli: CLI,
    monkeypatch: pytest.MonkeyPatch,
    change: Any,
    says: str,
) -> None:
    await new_instance(client, headers, "jp")
    await traffic(client, headers, "jp", random.Random(6), 20)
    day = day_of((await ledger(gateway, "jp"))[0][0])
    await next_day(gateway, "jp")
    await traffic(client, headers, "jp", random.Random(7), 5)
    await gateway.ledger.run("jp", now=past_retention(day, settings))
    code, out, _ = await cli("ledger", "verify")
    reports = {r["instance_id"]: r for r in map(json.loads, out.splitlines())}
    assert code == 0 and reports["jp"]["days"] == 1
    assert all(r["problems"] == [] for r in reports.values())
    code, out, _ = await cli("ledger", "verify", "--instance", "jp", "--day", day)
    assert code == 0 and json.loads(out)["ok"] is True

    _rewrite(gateway, "jp", day, change)
    code, out, _ = await cli("ledger", "verify", "--instance", "jp", "--day", day)
    problems = json.loads(out)["problems"]
    assert code == 3 and problems and all(p.startswith(day) for p in problems), problems
    assert any(says in p for p in problems), problems


@FAKE
async def test_the_cli_archives_with_now_and_says_what_it_did(
    client: QuartClient,
    headers: dict[str, str],
    gateway: Services,
    settings: Settings,
    cli: CLI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await new_instance(client, headers, "jp")
    await traffic(client, headers, "jp", random.Random(8), 10)
    count = len(await ledger(gateway, "jp"))
    day = day_of((await ledger(gateway, "jp"))[0][0])
    code, _, err = await cli("ledger", "archive")
    assert code == 1 and "--now" in err
    monkeypatch.delenv("LEDGER_ARCHIVE_URL", raising=False)
    code, _, err = await cli("ledger", "archive", "--now")
    assert code == 1 and "LEDGER_ARCHIVE_URL is not set" in err
    monkeypatch.setenv("LEDGER_ARCHIVE_URL", settings.ledger_archive_url)
    monkeypatch.setattr("app.services.ledger.now_ms", lambda: past_retention(day, settings))
    code, out, _ = await cli("ledger", "archive", "--now")
    [summary] = [s for s in map(json.loads, out.splitlines()) if s["instance_id"] == "jp"]
    assert code == 0 and summary["days"][0]["trimmed"] == count
    assert await ledger(gateway, "jp") == []
    code, _, err = await cli("ledger", "verify", "--day", "2026-13-01")
    assert code == 1 and "YYYY-MM-DD" in err


# -- crash and resume (real Redis) -----------------------------------------------------------
class Crash(BaseException):
    """The process dies here."""


@REAL
@pytest.mark.parametrize("archive_url", ["dir"], indirect=True)
@pytest.mark.parametrize("at", ["before-manifest", "after-manifest", "mid-trim", "before-trim"])
async def test_a_crash_leaves_the_live_entries_or_a_verified_archive_and_a_rerun_resumes(
    client: QuartClient,
    headers: dict[str, str],
    gateway: Services,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    at: str,
) -> None:
    await new_instance(client, headers, "jp")
    await traffic(client, headers, "jp", random.Random(9), 30)
    before = await ledger(gateway, "jp")
    day = day_of(before[0][0])
    await next_day(gateway, "jp")
    await traffic(client, headers, "jp", random.Random(10), 5)
    archive = gateway.ledger.archive
    assert archive is not None
    gateway.ledger.trim_step = 7
    store = gateway.store
    trims = 0

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise Crash(at)

    real_trim = store.trim_ledger

    async def trim_then_crash(*args: Any, **kwargs: Any) -> int:
        nonlocal trims
        trims += 1
        if trims == 3:
            raise Crash(at)
        return await real_trim(*args, **kwargs)

    with monkeypatch.context() as patch:
        if at == "before-manifest":
            patch.setattr(archive, "write_manifest", crash)
        elif at == "after-manifest":
            patch.setattr(store, "mark_archived", crash)
        elif at == "before-trim":
            patch.setattr(store, "trim_ledger", crash)
        else:
            patch.setattr(store, "trim_ledger", trim_then_crash)
        with pytest.raises(Crash):
            await gateway.ledger.run("jp", now=past_retention(day, settings))

    live = await ledger(gateway, "jp")
    manifest = archive.read_manifest("jp", day)
    if at == "before-manifest":
        assert manifest is None and live[: len(before)] == before  # nothing trimmed
    else:  # a manifest only after the archive verified; the live entries are the rest
        assert manifest is not None and manifest["count"] == len(before)
        assert [parse_ledger_line(line) for line in archive_lines(gateway, "jp", day)] == before
        kept = [entry for entry in before if entry in live]
        assert kept == before[len(before) - len(kept) :]  # only the oldest went
    assert (await reconcile(client, headers, "jp"))["balanced"] is True

    done = await gateway.ledger.run("jp", now=past_retention(day, settings))
    assert done["days"] and done["days"][-1]["trimmed_all"] is True
    assert [parse_ledger_line(line) for line in archive_lines(gateway, "jp", day)] == before
    assert (await ledger(gateway, "jp"))[0][0] > before[-1][0]
    [verdict] = await gateway.ledger.verify("jp")
    assert verdict["problems"] == [] and verdict["days"] == 1
    entries, _ = await exported(client, headers, "jp")
    assert entries[: len(before)] == as_exported(before)


@REAL
@pytest.mark.parametrize("archive_url", ["dir"], indirect=True)
async def test_a_committed_day_without_its_manifest_is_not_exported_again(
    client: QuartClient, headers: dict[str, str], gateway: Services, settings: Settings
) -> None:
    """Once Redis marks a day archived its entries may be partly trimmed: exporting it again
    would write a short archive. The job stops and says so instead."""
    await new_instance(client, headers, "jp")
    await traffic(client, headers, "jp", random.Random(11), 10)
    day = day_of((await ledger(gateway, "jp"))[0][0])
    archive = gateway.ledger.archive
    assert archive is not None
    await gateway.ledger.run("jp", now=past_retention(day, settings))
    await gateway.store.client.xadd(
        keys.instance_ledger("jp"),
        {"type": "status", "status": "Active", "from": "Active", "by": "test", "ts": "0"},
        id=f"{day_bounds(day)[1] - 1}-999999",  # a late entry of the archived day
    )
    archive.fs.rm(archive.path("jp", day, "manifest.json"))
    done = await gateway.ledger.run("jp", now=past_retention(day, settings))
    assert "no manifest" in done["error"]
    assert len(await ledger(gateway, "jp")) == 1


@REAL
@pytest.mark.parametrize("archive_url", ["memory"], indirect=True)
async def test_a_second_scheduler_does_no_double_work(
    client: QuartClient, headers: dict[str, str], gateway: Services, settings: Settings
) -> None:
    await new_instance(client, headers, "jp")
    await traffic(client, headers, "jp", random.Random(12), 5)
    other = Services.create(settings)
    try:
        instances = await gateway.ledger.sweep()
        assert await other.ledger.sweep() == instances
        scheduled = [m for m, _ in await gateway.store.scheduled() if m.startswith("ledger|")]
        assert len(scheduled) == instances and "ledger|jp" in scheduled
        first = await gateway.lifecycle.start_due()
        second = await other.lifecycle.start_due()
        assert len(first) == instances and second == []
        for task in first:
            await task
    finally:
        await other.close()


# -- the scripts' contract (real Redis and fakeredis) ----------------------------------------
@pytest.mark.parametrize("redis_url", ["real", "fake"], indirect=True)
@pytest.mark.parametrize("archive_url", ["memory"], indirect=True)
async def test_the_trim_is_bounded_and_never_passes_the_archive_or_the_checkpoint(
    gateway: Services,
) -> None:
    store, ledger_key = gateway.store, keys.instance_ledger("t")
    for ms in range(1, 8):
        for seq in range(3):
            await store.client.xadd(ledger_key, {"type": "status"}, id=f"{ms}-{seq}")
    assert await store.save_checkpoint("t", "5-1", "{}", {"w1": "approved"}) is True
    assert await store.save_checkpoint("t", "4-0", "{}", {}) is False  # never backwards
    assert await store.mark_archived("t", "6-0", "1970-01-01") is True
    assert await store.mark_archived("t", "2-0", "1970-01-01") is False
    books = await store.books_hash("t")
    assert (books["checkpoint_id"], books["archived_id"], books["decision:w1"]) == (
        "5-1",
        "6-0",
        "approved",
    )
    removed = []
    while step := await store.trim_ledger("t", "5-1", 4):
        removed.append(step)
    assert removed == [4, 4, 4, 2]  # 14 entries: 1-0 .. 5-1, at most 4 a call
    assert (await store.first_ledger_id("t")) == "5-2"
    assert await store.client.xlen(ledger_key) == 21 - 14


# -- wins ------------------------------------------------------------------------------------
@pytest.mark.parametrize("redis_url", ["real", "fake"], indirect=True)
@pytest.mark.parametrize("archive_url", ["memory"], indirect=True)
async def test_decided_wins_past_the_recent_index_move_to_the_archive(
    client: QuartClient, headers: dict[str, str], gateway: Services, settings: Settings
) -> None:
    """Every contribution wins (hit rate 1); wins above 1.00 are withheld. After more wins
    than the recent-wins index keeps, the old decided (or paid) records go to the day's wins
    file and leave tombstones; the withheld one still undecided stays, the recent wins and
    every answer about a win stay the same."""
    definition = instance(
        "wins",
        pots=[pot("main", "0.7", hit_rate(1))],
        contribution_type={"Percentage": "0.5"},
        auto_payout_limit="1.00",
    )
    await create_instance(client, headers, definition)
    rng = random.Random(13)
    win_ids = []
    for number in range(130):
        wager = "4.00" if number in (0, 1, 2) else str(Decimal(rng.randint(10, 250)) / 100)
        body = contribution("wins", f"p{number % 3}", base_wager=wager)
        response = await post(client, "/jackpots/contribute", body, headers)
        await expect(response, 200)
        win_ids.append(response.headers["X-Contribution-Id"])
    approved, rejected, waiting = win_ids[:3]
    for win_id, verb in ((approved, "approve"), (rejected, "reject")):
        path = f"/admin/instances/wins/wins/{win_id}/{verb}"
        await expect(await post(client, path, {"reason": "checked"}, headers), 200)
    wins_key = keys.instance_wins("wins")
    records = dict(await gateway.store.client.hgetall(wins_key))
    recent = await client.get("/jackpots/instances/wins/winners?limit=100", headers=headers)
    recent_before = await expect(recent, 200)
    in_index = await gateway.store.recent_win_ids("wins")
    old = [w for w in win_ids if w not in in_index]
    assert len(old) == 30 and {approved, rejected, waiting} <= set(old)

    day = day_of((await ledger(gateway, "wins"))[0][0])
    done = await gateway.ledger.run("wins", now=past_retention(day, settings))
    assert done["days"][0]["wins_archived"] == len(old) - 1  # all but the one waiting
    after = dict(await gateway.store.client.hgetall(wins_key))
    assert len(after) == len(records)  # a tombstone keeps each record's place
    assert after[waiting] == records[waiting] and after[waiting].startswith("{")
    assert all(after[w] == records[w] for w in in_index)
    assert after[approved] == "archived " + day + " demo approved"
    assert after[rejected] == "archived " + day + " demo rejected"
    paid = next(w for w in old if w not in (approved, rejected, waiting))
    assert after[paid] == "archived " + day + " demo paid"
    # The wins file holds the records as they were, byte for byte.
    archive = gateway.ledger.archive
    assert archive is not None
    archived = [json.loads(line) for line in archive.lines("wins", day, "wins.jsonl.gz")]
    assert {a["win_id"]: a["record"] for a in archived} == {
        w: records[w] for w in old if w != waiting
    }
    # Same answers as before: the recent wins, and decisions on archived wins.
    recent = await client.get("/jackpots/instances/wins/winners?limit=100", headers=headers)
    assert await expect(recent, 200) == recent_before
    for win_id, code in ((approved, "WIN_ALREADY_DECIDED"), (paid, "WIN_NOT_WITHHELD")):
        path = f"/admin/instances/wins/wins/{win_id}/approve"
        await expect(await post(client, path, {"reason": "again"}, headers), 409, code)
    # The waiting win is decided as ever, and the books balance with archived wins.
    path = f"/admin/instances/wins/wins/{waiting}/reject"
    await expect(await post(client, path, {"reason": "late"}, headers), 200)
    report = await reconcile(client, headers, "wins")
    assert report["balanced"] and report["decisions"] == []
    [verdict] = await gateway.ledger.verify("wins")
    assert verdict["problems"] == []


@FAKE
async def test_an_archive_url_whose_filesystem_is_missing_is_one_line(
    cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEDGER_ARCHIVE_URL", "nosuchfs://bucket/ledger")
    code, out, err = await cli("ledger", "verify")
    assert (code, out) == (1, "")
    assert err.startswith("error: LEDGER_ARCHIVE_URL 'nosuchfs://bucket/ledger' cannot be used")
    assert len(err.strip().splitlines()) == 1


@REAL
@pytest.mark.parametrize("archive_url", ["memory"], indirect=True)
async def test_a_long_replay_goes_on_in_a_child_process_and_agrees(
    client: QuartClient, headers: dict[str, str], gateway: Services
) -> None:
    """Past `inline_max` entries the replay continues in a child process (the web process's
    event loop only waits): its report is the one a replay wholly in the process makes."""
    await new_instance(client, headers, "jp")
    await traffic(client, headers, "jp", random.Random(14), 40)
    gateway.replayer.inline_max = 10
    moved = await reconcile(client, headers, "jp")
    assert gateway.replayer._pool is not None  # the child was used
    await gateway.store.client.delete(keys.instance_books("jp"))  # no checkpoint
    gateway.replayer.inline_max = 10**9
    inline = await reconcile(client, headers, "jp")
    assert moved["balanced"] and inline["balanced"]
    assert moved["compared"] == inline["compared"]
    assert moved["entries_total"] == inline["entries_total"] == len(await ledger(gateway, "jp"))


@FAKE
@pytest.mark.parametrize("archive_url", ["dir"], indirect=True)
async def test_an_unreadable_archive_is_a_503_for_the_export(
    client: QuartClient, headers: dict[str, str], gateway: Services, settings: Settings
) -> None:
    await new_instance(client, headers, "jp")
    await traffic(client, headers, "jp", random.Random(15), 5)
    day = day_of((await ledger(gateway, "jp"))[0][0])
    await gateway.ledger.run("jp", now=past_retention(day, settings))
    _rewrite(gateway, "jp", day, None)  # the day's ledger file is gone
    response = await client.get("/admin/instances/jp/ledger", headers=headers)
    body = await expect(response, 503, "STORE_UNAVAILABLE")
    assert body["details"]["reason"] == "archive"
