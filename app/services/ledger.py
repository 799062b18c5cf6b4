"""The ledger's life after its writes: daily archive, bounded trim, verification and the
admin export across archive and live entries (docs/ledger.md).

Segments. The unit is the UTC day of the entries' stream ids. Each instance keeps ONE
stream; a day is archived, then its entries are trimmed from the stream's head with XTRIM
MINID in bounded steps (lua/trim_ledger-2.lua). Per-day keys would buy nothing: every key of
an instance shares its hash tag (one cluster slot) so that its scripts stay atomic.

The archive job of one instance (the scheduler's `ledger|<instance>` item, or
`jackpot-gateway ledger archive --now`):
  1. reconciles the books (app/services/treasury.py): balanced, they become the checkpoint;
  2. for each closed day whose retention (LEDGER_RETENTION_DAYS) has passed, oldest first:
     a. exports its entries to `<instance>/<day>.ledger.jsonl.gz` (app/store/archive.py),
        replaying them from the previous day's closing figures to the day's closing ones;
     b. reads the file back: entry count, first and last id, sums per entry type of every
        amount field and the file's sha256 must be what was exported;
     c. writes the manifest (the file's name, sha256, chunks, counts, sums, the opening and
        closing running totals, the day's win decisions), itself a file of the archive;
     d. marks the day archived in Redis (books hash `archived_id`), needs a checkpoint at or
        after the day's last entry, and only then trims the day from the stream;
     e. moves the win records decided and older than the retention into
        `<instance>/<day>.wins.jsonl.gz` (listed in the manifest), then deletes them.
A crash anywhere leaves the live entries or a verified archive: before (c) nothing is
trimmed and a re-run exports again (the same bytes); after (c) a re-run finds the manifest
and resumes at (d). The Redis mark is the commit point: once it covers a day, a missing
manifest is an error and the day is never exported again from a partly trimmed stream.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

from app.core.clock import now_ms
from app.core.refusals import Code, Refused
from app.core.security import Principal
from app.services.audit import SCHEDULER_ACTOR
from app.services.books import (
    NO_MONEY,
    TOTALS,
    Books,
    is_integer,
    replay,
    stream_id,
    stream_id_after,
)
from app.services.config import ConfigCache
from app.services.scope import managed_instance
from app.services.treasury import TreasuryService
from app.store import Store
from app.store.archive import (
    CHUNK,
    LEDGER,
    WINS,
    ArchiveError,
    LedgerArchive,
    ledger_line,
    parse_ledger_line,
    parse_win_line,
    win_line,
)
from app.store.errors import StoreUnavailable
from app.store.wins import is_tombstone

log = logging.getLogger("jackpot_gateway.ledger")

DAY_MS = 86_400_000
TRIM_STEP = 1_000  # entries one trim call removes at most (~1 ms of Redis time)
MANIFEST_FORMAT = 1
# Fields that hold money (integer micro-units), summed per entry type in the manifest; with
# `pot:<id>:value` and `pot:<id>:reserve` (a contribution's parts, a close's amounts).
AMOUNT_FIELDS = frozenset(
    {"amount", "house", "seed", "from_reserve", "from_pot", "deficit", "value", "reserve",
     "returned", "prize", "accumulated_cost", "ticket_basis"}
)  # fmt: skip

__all__ = ["ArchiveError", "LedgerService", "day_bounds", "day_of"]


def day_of(entry_id: str) -> str:
    """The UTC day (YYYY-MM-DD) of a stream entry id."""
    ms = stream_id(entry_id)[0]
    return datetime.fromtimestamp(ms / 1000, UTC).date().isoformat()


def day_bounds(day: str) -> tuple[int, int]:
    """[midnight, next midnight) of a UTC day, in epoch ms."""
    start = (date.fromisoformat(day) - date(1970, 1, 1)).days * DAY_MS
    return start, start + DAY_MS


def add_sums(sums: dict[str, dict[str, int]], fields: dict[str, str]) -> None:
    kind = fields.get("type", "")
    if kind in NO_MONEY:
        return
    for name, value in fields.items():
        money = name in AMOUNT_FIELDS or (
            name.startswith("pot:") and name.endswith((":value", ":reserve"))
        )
        if money and is_integer(value):
            per_kind = sums.setdefault(kind, {})
            per_kind[name] = per_kind.get(name, 0) + int(value)


def _books_dict(books: Books) -> dict[str, Any]:
    return dict(json.loads(books.to_json()))


def _books_from(data: dict[str, Any] | None) -> Books | None:
    return None if data is None else Books.from_json(json.dumps(data))


async def _fields(
    entries: AsyncIterator[tuple[str, dict[str, str]]],
) -> AsyncIterator[dict[str, str]]:
    async for _, fields in entries:
        yield fields


class LedgerService:
    def __init__(
        self,
        store: Store,
        config: ConfigCache,
        treasury: TreasuryService,
        archive: LedgerArchive | None,
        *,
        retention_days: int = 3,
        trim_step: int = TRIM_STEP,
        chunk: int = CHUNK,
    ) -> None:
        self._store = store
        self._config = config
        self._treasury = treasury
        self.archive = archive
        self.retention_ms = retention_days * DAY_MS
        self.trim_step = trim_step
        self.chunk = chunk
        self._manifests: dict[tuple[str, str], dict[str, Any]] = {}  # written once: cached

    # -- the scheduler's items ------------------------------------------------------------
    async def sweep(self) -> int:
        """Make every instance's `ledger` item due now (one already there, perhaps running
        under another scheduler's lease, is left alone); how many instances."""
        instance_ids = await self._store.instance_ids()
        for instance_id in instance_ids:
            await self._store.schedule("ledger", instance_id, now_ms(), only_new=True)
        return len(instance_ids)

    async def run_all(self, now: int | None = None) -> list[dict[str, Any]]:
        return [await self.run(i, now) for i in await self._store.instance_ids()]

    async def run(self, instance_id: str, now: int | None = None) -> dict[str, Any]:
        """Checkpoint the instance's books, then archive and trim its days that are due."""
        now = now_ms() if now is None else now
        done: dict[str, Any] = {"instance_id": instance_id, "days": []}
        try:
            report = await self._treasury.reconciliation(SCHEDULER_ACTOR, instance_id)
        except Refused as error:
            if error.code is not Code.INSTANCE_NOT_FOUND:
                raise
            done["skipped"] = "no such instance"
            return done
        done["balanced"] = report["balanced"]
        if not report["balanced"]:
            log.warning("ledger %s: the books do not balance; nothing is trimmed", instance_id)
        if self.archive is None:
            return done
        # The meter counters of an instance older than them come from its ledger once
        # (backfill-meters); after a trim that ledger is gone, so it happens first.
        await self._treasury.backfill_meters(SCHEDULER_ACTOR, instance_id)
        try:
            while (day := await self._due_day(instance_id, now)) is not None:
                if any(done_day["day"] == day for done_day in done["days"]):
                    raise ArchiveError(
                        f"{instance_id} {day}: entries of the day written after it was "
                        "archived (did the Redis clock go back?); they stay in Redis"
                    )
                outcome = await self.archive_day(instance_id, day)
                done["days"].append(outcome)
                if not outcome["trimmed_all"]:
                    break
        except (ArchiveError, OSError) as error:  # tried again at the next sweep
            log.error("ledger %s: archive failed: %s", instance_id, error)
            done["error"] = str(error)
        return done

    async def _due_day(self, instance_id: str, now: int) -> str | None:
        first = await self._store.first_ledger_id(instance_id)
        if first is None:
            return None
        day = day_of(first)
        return day if day_bounds(day)[1] + self.retention_ms <= now else None

    # -- one day ------------------------------------------------------------------------
    async def archive_day(self, instance_id: str, day: str) -> dict[str, Any]:
        """Export, verify and record the day (unless its manifest is there), then trim it
        from the stream and archive its decided wins. Safe to run again at any point."""
        archive = self._require_archive()
        held = await self._store.books_hash(instance_id)
        committed = held.get("archived_day", "") >= day
        manifest = await asyncio.to_thread(archive.read_manifest, instance_id, day)
        if manifest is None:
            if committed:
                raise ArchiveError(
                    f"{instance_id} {day}: Redis marks the day archived but the archive has "
                    "no manifest for it; it is not exported again (its entries may be "
                    "trimmed already): restore the archive's files"
                )
            manifest = await self._export(instance_id, day)
        last_id = str(manifest["last_id"])
        await self._store.mark_archived(instance_id, last_id, day)
        outcome: dict[str, Any] = {"day": day, "entries": manifest["count"], "trimmed": 0}
        checkpoint = held.get("checkpoint_id")
        if not checkpoint or stream_id_after(last_id, checkpoint):
            await self._treasury.reconciliation(SCHEDULER_ACTOR, instance_id)
            checkpoint = (await self._store.books_hash(instance_id)).get("checkpoint_id")
        if not checkpoint or stream_id_after(last_id, checkpoint):
            log.warning(
                "ledger %s %s: archived, not trimmed: no balanced checkpoint after %s",
                instance_id,
                day,
                last_id,
            )
            outcome["trimmed_all"] = False
            return outcome
        while removed := await self._store.trim_ledger(instance_id, last_id, self.trim_step):
            outcome["trimmed"] += removed
            await asyncio.sleep(0)
        outcome["trimmed_all"] = True
        outcome["wins_archived"] = await self._archive_wins(instance_id, day, manifest)
        log.info("ledger %s %s: archived %s entries", instance_id, day, manifest["count"])
        return outcome

    async def _export(self, instance_id: str, day: str) -> dict[str, Any]:
        archive = self._require_archive()
        start_ms, end_ms = day_bounds(day)
        definitions = await self._store.definitions([instance_id])
        pot_ids = [pot["id"] for pot in definitions.get(instance_id, {}).get("pots", [])]
        earlier = [d for d in await asyncio.to_thread(archive.days, instance_id) if d < day]
        previous = (
            await asyncio.to_thread(archive.read_manifest, instance_id, earlier[-1])
            if earlier
            else None
        )
        opening = None if previous is None else previous["closing"]
        writer = await asyncio.to_thread(archive.writer, instance_id, day, LEDGER)
        seen: dict[str, Any] = {"count": 0, "first": None, "last": None, "sums": {}}

        async def entries() -> AsyncIterator[dict[str, str]]:
            lines: list[bytes] = []
            first_key = ""
            async for entry_id, fields in self._store.ledger_entries(
                instance_id, f"{start_ms}-0", str(end_ms - 1), page=self.chunk
            ):
                if not lines:
                    first_key = entry_id
                lines.append(ledger_line(entry_id, fields))
                seen["count"] += 1
                seen["first"] = seen["first"] or entry_id
                seen["last"] = entry_id
                add_sums(seen["sums"], fields)
                if len(lines) == self.chunk:
                    await asyncio.to_thread(writer.chunk, first_key, lines)
                    lines = []
                yield fields
            if lines:
                await asyncio.to_thread(writer.chunk, first_key, lines)

        try:
            closing = await replay(pot_ids, entries(), start=_books_from(opening))
            written = await asyncio.to_thread(writer.close)
        except BaseException:
            await asyncio.to_thread(writer.abort)
            raise
        if closing.unknown or closing.corrupt:
            raise ArchiveError(
                f"{instance_id} {day}: the day's entries do not replay cleanly "
                f"(unknown {closing.unknown}, corrupt {closing.corrupt[:3]}); not archived"
            )
        if seen["count"] == 0:
            raise ArchiveError(f"{instance_id} {day}: no entries to archive")
        read = await asyncio.to_thread(self._read_back, archive, instance_id, day, LEDGER)
        expected = {
            "sha256": written.sha256,
            "size": written.size,
            "count": seen["count"],
            "first_id": seen["first"],
            "last_id": seen["last"],
            "sums": seen["sums"],
        }
        if read != expected:
            differs = sorted(name for name in expected if read.get(name) != expected[name])
            raise ArchiveError(
                f"{instance_id} {day}: the archive read back differs ({', '.join(differs)}); "
                "nothing trimmed"
            )
        manifest = {
            "format": MANIFEST_FORMAT,
            "instance_id": instance_id,
            "day": day,
            "first_id": seen["first"],
            "last_id": seen["last"],
            "count": seen["count"],
            "sums": seen["sums"],
            "ledger": {
                "file": archive.name(instance_id, day, LEDGER),
                "sha256": written.sha256,
                "size": written.size,
                "chunks": written.chunks,
            },
            "wins": None,
            "previous_day": earlier[-1] if earlier else None,
            "opening": opening,
            "closing": _books_dict(closing),
            "decisions": dict(sorted(closing.decisions.items())),
            "archived_at": now_ms(),
        }
        await asyncio.to_thread(archive.write_manifest, instance_id, day, manifest)
        return manifest

    async def _archive_wins(self, instance_id: str, day: str, manifest: dict[str, Any]) -> int:
        """Move the decided (or paid at once) win records up to the day's end that the
        recent-wins index no longer holds into `<day>.wins.jsonl.gz`, listed in the manifest,
        then leave tombstones in their place. A re-run after a crash finds the file in the
        manifest and replaces what is left."""
        archive = self._require_archive()
        wins: dict[str, Any] | None = manifest.get("wins")
        if wins is None:
            end_ms = day_bounds(day)[1]
            recent = await self._store.recent_win_ids(instance_id)
            chosen: list[bytes] = []
            for win_id, raw in sorted((await self._store.win_records(instance_id)).items()):
                if is_tombstone(raw) or win_id in recent:
                    continue
                try:
                    record = json.loads(raw)
                    timestamp = int(record["timestamp"])
                except (ValueError, KeyError, TypeError):
                    continue  # a corrupt record stays (the reconciliation names it)
                if timestamp >= end_ms or (
                    record.get("win_withheld") and not record.get("decision")
                ):
                    continue
                chosen.append(win_line(win_id, raw))
            wins = {"file": None, "count": 0}
            if chosen:
                wins = await asyncio.to_thread(self._write_wins, archive, instance_id, day, chosen)
            manifest = {**manifest, "wins": wins}
            await asyncio.to_thread(archive.write_manifest, instance_id, day, manifest)
            self._manifests.pop((instance_id, day), None)
        if not wins.get("file"):
            return 0
        lines = await asyncio.to_thread(lambda: list(archive.lines(instance_id, day, WINS)))
        win_ids = [parse_win_line(line)[0] for line in lines]
        return await self._store.archive_wins(instance_id, day, win_ids)

    def _write_wins(
        self, archive: LedgerArchive, instance_id: str, day: str, lines: list[bytes]
    ) -> dict[str, Any]:
        writer = archive.writer(instance_id, day, WINS)
        try:
            for start in range(0, len(lines), self.chunk):
                first = parse_win_line(lines[start])[0]
                writer.chunk(first, lines[start : start + self.chunk])
        except BaseException:
            writer.abort()
            raise
        written = writer.close()
        sha256, size = archive.file_sha256(instance_id, day, WINS)
        count = sum(1 for _ in archive.lines(instance_id, day, WINS))
        if (sha256, size, count) != (written.sha256, written.size, len(lines)):
            raise ArchiveError(f"{instance_id} {day}: the wins file read back differs")
        return {
            "file": archive.name(instance_id, day, WINS),
            "sha256": sha256,
            "size": size,
            "count": count,
            "chunks": written.chunks,
        }

    @staticmethod
    def _read_back(archive: LedgerArchive, instance_id: str, day: str, kind: str) -> dict[str, Any]:
        """What the file holds: sha256, size, entry count, first and last id, sums."""
        sha256, size = archive.file_sha256(instance_id, day, kind)
        count, first, last = 0, None, None
        sums: dict[str, dict[str, int]] = {}
        for line in archive.lines(instance_id, day, kind):
            entry_id, fields = parse_ledger_line(line)
            count += 1
            first = first or entry_id
            last = entry_id
            add_sums(sums, fields)
        return {"sha256": sha256, "size": size, "count": count, "first_id": first,
                "last_id": last, "sums": sums}  # fmt: skip

    def _require_archive(self) -> LedgerArchive:
        if self.archive is None:
            raise ArchiveError(
                "LEDGER_ARCHIVE_URL is not set: no ledger archive (e.g. "
                "LEDGER_ARCHIVE_URL=/var/lib/jackpot/archive or s3://bucket/ledger)"
            )
        return self.archive

    # -- the admin export -----------------------------------------------------------------
    async def page(
        self, by: Principal, instance_id: str, after: str, count: int
    ) -> list[tuple[str, dict[str, str]]]:
        """Up to `count` entries after the entry id `after` ('-': from the first), oldest
        first, from the archive and then the live stream, each exactly once: the archive
        holds every entry up to its last manifest's last id, the stream the ones after."""
        await managed_instance(self._config, by, instance_id, own=True)
        found: list[tuple[str, dict[str, str]]] = []
        archived_until = None
        if self.archive is not None:
            try:
                chunks = await self._archived_chunks(instance_id)
                if chunks:
                    archived_until = chunks[-1][2]
                if chunks and (after == "-" or stream_id_after(archived_until or "", after)):
                    found = await self._archived_page(instance_id, chunks, after, count)
            except (ArchiveError, OSError) as error:  # a 503: nothing wrong with the request
                log.warning("ledger archive unreadable: %s", error)
                raise StoreUnavailable(f"the ledger archive: {error}", reason="archive") from None
        cursor = found[-1][0] if found else after
        if archived_until and (cursor == "-" or stream_id_after(archived_until, cursor)):
            cursor = archived_until
        if len(found) < count:
            start = "-" if cursor == "-" else f"({cursor}"
            found += await self._store.ledger_range(instance_id, start, "+", count - len(found))
        return found

    async def _manifest(self, instance_id: str, day: str) -> dict[str, Any] | None:
        cached = self._manifests.get((instance_id, day))
        if cached is None:
            archive = self._require_archive()
            cached = await asyncio.to_thread(archive.read_manifest, instance_id, day)
            if cached is not None:
                self._manifests[(instance_id, day)] = cached
        return cached

    async def _archived_chunks(self, instance_id: str) -> list[tuple[str, dict[str, Any], str]]:
        """(day, chunk, the day's last id) of every archived chunk, in id order."""
        archive = self._require_archive()
        chunks = []
        for day in await asyncio.to_thread(archive.days, instance_id):
            manifest = await self._manifest(instance_id, day)
            if manifest is None:
                continue
            for chunk in manifest["ledger"]["chunks"]:
                chunks.append((day, chunk, str(manifest["last_id"])))
        return chunks

    async def _archived_page(
        self,
        instance_id: str,
        chunks: list[tuple[str, dict[str, Any], str]],
        after: str,
        count: int,
    ) -> list[tuple[str, dict[str, str]]]:
        archive = self._require_archive()
        index = 0
        if after != "-":  # the last chunk starting at or before `after`
            for position, (_, chunk, _) in enumerate(chunks):
                if stream_id_after(chunk["first"], after):
                    break
                index = position
        found: list[tuple[str, dict[str, str]]] = []
        for day, chunk, _ in chunks[index:]:
            lines = await asyncio.to_thread(archive.chunk_lines, instance_id, day, LEDGER, chunk)
            for line in lines:
                entry_id, fields = parse_ledger_line(line)
                if after == "-" or stream_id_after(entry_id, after):
                    found.append((entry_id, fields))
                    if len(found) == count:
                        return found
        return found

    # -- verification -------------------------------------------------------------------
    async def verify(
        self, instance_id: str | None = None, day: str | None = None
    ) -> list[dict[str, Any]]:
        """Each instance's archive checked against its manifests (files re-hashed, entries
        recounted and re-summed, each day's replay from its opening to its closing figures,
        each day opening where the previous one closed), and, without `day`, the archive's
        last closing figures plus the live entries after it against the live state, with
        money conserved. One report per instance; `problems` empty when all holds."""
        archive = self._require_archive()
        if instance_id is not None:
            instance_ids = [instance_id]
        else:
            instance_ids = sorted(
                set(await asyncio.to_thread(archive.instances))
                | set(await self._store.instance_ids())
            )
        return [await self._verify_instance(archive, i, day) for i in instance_ids]

    async def _verify_instance(
        self, archive: LedgerArchive, instance_id: str, only_day: str | None
    ) -> dict[str, Any]:
        problems: list[str] = []
        days = await asyncio.to_thread(archive.days, instance_id)
        if only_day is not None:
            days = [d for d in days if d == only_day]
            if not days:
                problems.append(f"{only_day}: no manifest")
        definitions = await self._store.definitions([instance_id])
        pot_ids = [pot["id"] for pot in definitions.get(instance_id, {}).get("pots", [])]
        previous: dict[str, Any] | None = None
        entries = 0
        for day in days:
            manifest = await asyncio.to_thread(archive.read_manifest, instance_id, day)
            if manifest is None:
                problems.append(f"{day}: the manifest is not readable")
                previous = None
                continue
            problems += await self._verify_day(archive, instance_id, day, manifest, pot_ids)
            if only_day is None:
                expected_opening = None if previous is None else previous.get("closing")
                if manifest.get("opening") != expected_opening:
                    problems.append(f"{day}: opens with other figures than the day before closed")
                if previous is not None and not stream_id_after(
                    str(manifest["first_id"]), str(previous["last_id"])
                ):
                    problems.append(f"{day}: overlaps the day before")
            entries += int(manifest.get("count", 0))
            previous = manifest
        report: dict[str, Any] = {
            "instance_id": instance_id,
            "days": len(days),
            "archived_entries": entries,
        }
        if only_day is None and definitions:
            live = await self._verify_live(instance_id, pot_ids, previous)
            problems += live.pop("problems")
            report.update(live)
        report["problems"] = problems
        report["ok"] = not problems
        return report

    async def _verify_day(
        self,
        archive: LedgerArchive,
        instance_id: str,
        day: str,
        manifest: dict[str, Any],
        pot_ids: list[str],
    ) -> list[str]:
        problems = []
        try:
            read = await asyncio.to_thread(self._read_back, archive, instance_id, day, LEDGER)
        except FileNotFoundError:
            return [f"{day}: {manifest['ledger']['file']} is missing"]
        except (ArchiveError, ValueError, KeyError) as error:
            return [f"{day}: {manifest['ledger']['file']} does not read: {error}"]
        expected = {
            "sha256": manifest["ledger"]["sha256"],
            "size": manifest["ledger"]["size"],
            "count": manifest["count"],
            "first_id": manifest["first_id"],
            "last_id": manifest["last_id"],
            "sums": manifest["sums"],
        }
        for name, value in expected.items():
            if read[name] != value:
                problems.append(f"{day}: {name} is {read[name]!r}, the manifest says {value!r}")
        if any(day_of(str(manifest[end])) != day for end in ("first_id", "last_id")):
            problems.append(f"{day}: entries of another day")

        async def lines() -> AsyncIterator[dict[str, str]]:
            for line in await asyncio.to_thread(
                lambda: list(archive.lines(instance_id, day, LEDGER))
            ):
                yield parse_ledger_line(line)[1]

        try:
            closing = await replay(pot_ids, lines(), start=_books_from(manifest.get("opening")))
        except (ArchiveError, ValueError, KeyError) as error:
            return [*problems, f"{day}: does not replay: {error}"]
        if _books_dict(closing) != manifest.get("closing"):
            problems.append(f"{day}: the replay does not close at the manifest's figures")
        if (manifest.get("wins") or {}).get("file"):
            wins = manifest["wins"]
            try:
                sha256, size = await asyncio.to_thread(archive.file_sha256, instance_id, day, WINS)
            except FileNotFoundError:
                problems.append(f"{day}: {wins['file']} is missing")
            else:
                if (sha256, size) != (wins["sha256"], wins["size"]):
                    problems.append(f"{day}: {wins['file']} differs from its manifest")
        return problems

    async def _verify_live(
        self, instance_id: str, pot_ids: list[str], last: dict[str, Any] | None
    ) -> dict[str, Any]:
        """The archive's closing figures plus the live entries after it, against the state
        (read atomically with the last entry id)."""
        problems = []
        last_id, _, state = await self._store.books_at_checkpoint(instance_id)
        after = str(last["last_id"]) if last else None
        if after is None and await self._trimmed(instance_id):
            problems.append("Redis marks entries archived but the archive has no manifest")
        start = _books_from(last["closing"]) if last else None
        entries = self._store.ledger_entries(
            instance_id, f"({after}" if after else "-", last_id or "-"
        )
        books = await replay(
            pot_ids, _fields(entries) if last_id else _fields(_none()), start=start
        )
        if books.unknown or books.corrupt:
            problems.append(f"live entries: unknown {books.unknown}, corrupt {books.corrupt[:3]}")
        figures = {
            **{
                f"pot:{pot_id}:{name}": getattr(pot, name)
                for pot_id, pot in books.pots.items()
                for name in ("value", "reserve", "deficit")
            },
            **{f"total:{name}": amount for name, amount in books.totals.items()},
        }
        for name, amount in figures.items():
            held = state.get(name) or "0"
            if not is_integer(held) or int(held) != amount:
                problems.append(f"{name}: archive + live ledger {amount}, the state {held}")
        paid_in = sum(books.totals[n] for n in ("contributions", "seed_funding", "boosts"))
        held_out = sum(books.totals[n] for n in ("house", "wins", "returned")) + sum(
            pot.value + pot.reserve for pot in books.pots.values()
        )
        if paid_in != held_out:
            problems.append(f"money not conserved: paid in {paid_in}, held and paid out {held_out}")
        return {
            "live_entries": books.entries - (start.entries if start else 0),
            "entries_total": books.entries,
            "as_of_entry": last_id or None,
            "totals": {name: books.totals[name] for name in TOTALS},
            "problems": problems,
        }

    async def _trimmed(self, instance_id: str) -> bool:
        return "archived_id" in await self._store.books_hash(instance_id)


async def _none() -> AsyncIterator[tuple[str, dict[str, str]]]:
    return
    yield
