"""Jackpot managers' money operations: seed boosts (operator funding of a pot or its reserve),
the reconciliation of the live state against the ledger, and the regulators' meter report.

Every operation is scoped (app.services.scope): an operator's admin reads the instances its
operator's brands may play and changes those only they play; the platform role (and the
command line) reaches every instance.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import date
from decimal import Decimal
from typing import Any

from app.core.clock import DAY_MS, now_ms
from app.core.money import format_amount, from_micros, to_micros
from app.core.refusals import Code, Refused
from app.core.security import Principal
from app.services.audit import AuditTrail, brand_operators
from app.services.books import Books, is_integer, stream_id_after
from app.services.config import ConfigCache
from app.services.meters import counters_of
from app.services.refusals import refused
from app.services.replayer import Replayer
from app.services.scope import managed_instance
from app.store import ScriptRefusal, Store
from app.store.wins import is_tombstone


class TreasuryService:
    def __init__(
        self,
        store: Store,
        config: ConfigCache,
        audit: AuditTrail,
        replayer: Replayer | None = None,
    ) -> None:
        self._store = store
        self._replayer = replayer or Replayer(store)
        self._config = config
        self._audit = audit

    async def instance(
        self, by: Principal, instance_id: str, *, own: bool = False
    ) -> dict[str, Any]:
        """The definition of an instance the caller reaches (app.services.scope): one its
        operator's brands may play, to read; one only they play, to change; any, for the
        platform role (and the command line)."""
        return await managed_instance(self._config, by, instance_id, own=own)

    async def boost(
        self,
        by: Principal,
        instance_id: str,
        *,
        pot_id: str,
        amount: Decimal,
        target: str,
        boost_id: str | None,
    ) -> tuple[dict[str, Any], bool]:
        """Add operator money to a pot's value or reserve; (the boost, whether it is new)."""
        definition = await self.instance(by, instance_id, own=True)
        boost_id = boost_id or str(uuid.uuid4())
        try:
            replayed, to_value, to_reserve = await self._store.boost_pot(
                instance_id,
                boost_id=boost_id,
                pot_id=pot_id,
                target=target,
                amount=to_micros(amount),
                by=by.username,
                now_ms=now_ms(),
            )
        except ScriptRefusal as refusal:
            raise refused(refusal, instance_id) from None
        boost = {
            "boost_id": boost_id,
            "instance_id": instance_id,
            "pot_id": pot_id,
            "target": target,
            "amount": from_micros(to_micros(amount)),
            "to_value": from_micros(to_value),
            "to_reserve": from_micros(to_reserve),
        }
        if not replayed:
            await self._audit.record(
                by,
                "instance.boost",
                instance_id,
                after=boost,
                operators=brand_operators(definition["allowed_brands"]),
            )
        return boost, not replayed

    async def reconciliation(self, by: Principal, instance_id: str) -> dict[str, Any]:
        """Replay the ledger from the last checkpoint (from its first entry without one) and
        compare every pot, reserve, deficit and total with the live state, to the micro-unit,
        in exact integers of any size; and every win record's decision with the ledger's.
        The checkpoint, the state and the last ledger id are read in one atomic step, so
        contributions arriving meanwhile do not count as differences. A stored amount that
        is not an integer is named in `corrupt` (never an error). A balanced report becomes
        the new checkpoint, so the next one replays only what came after it."""
        definition = await self.instance(by, instance_id)
        last_id, held, state = await self._store.books_at_checkpoint(instance_id)
        if not state:
            raise Refused(Code.INSTANCE_NOT_FOUND, f"Instance {instance_id} does not exist.")
        pot_ids = [pot["id"] for pot in definition["pots"]]
        start_id = held.get("checkpoint_id") or None
        start = Books.from_json(held["checkpoint"]) if start_id else None
        if start_id and (not last_id or not stream_id_after(last_id, start_id)):
            last_id = start_id  # nothing after the checkpoint (perhaps all of it trimmed)
        books = await self._replayer.replay(instance_id, pot_ids, start, start_id, last_id)
        corrupt = [f"ledger {what}" for what in books.corrupt]
        ledger_decisions = {
            name.removeprefix("decision:"): value
            for name, value in held.items()
            if name.startswith("decision:")
        }
        ledger_decisions.update(books.decisions)

        def live(name: str) -> int | None:
            value = state.get(name) or "0"
            if is_integer(value):
                return int(value)
            corrupt.append(f"state {name} = {value!r}")
            return None

        compared = [
            (f"pot:{pot_id}:{name}", getattr(pot, name))
            for pot_id, pot in books.pots.items()
            for name in ("value", "reserve", "deficit")
        ] + [(f"total:{name}", amount) for name, amount in books.totals.items()]
        lines = []
        for name, ledger in compared:
            held_amount = live(name)
            lines.append(
                {
                    "field": name,
                    "ledger": from_micros(ledger),
                    "live": None if held_amount is None else from_micros(held_amount),
                    "difference": None
                    if held_amount is None
                    else from_micros(held_amount - ledger),
                }
            )
        differences = [line for line in lines if line["difference"] != 0]
        amounts = {name: live(name) or 0 for name, _ in compared}
        paid_in = sum(
            amounts[f"total:{name}"] for name in ("contributions", "seed_funding", "boosts")
        )
        held_out = sum(amounts[f"total:{name}"] for name in ("house", "wins", "returned")) + sum(
            amounts[f"pot:{pot_id}:{name}"] for pot_id in pot_ids for name in ("value", "reserve")
        )
        decisions = await self._decision_differences(instance_id, ledger_decisions)
        balanced = (
            not differences
            and not books.unknown
            and not corrupt
            and not decisions
            and paid_in == held_out
        )
        saved = False
        if balanced and last_id and last_id != start_id:
            saved = await self._store.save_checkpoint(
                instance_id, last_id, books.to_json(), books.decisions
            )
        return {
            "instance_id": instance_id,
            "as_of_entry": last_id or None,
            "entries_replayed": books.entries - (start.entries if start else 0),
            "entries_total": books.entries,
            "checkpoint": start_id,
            "checkpoint_saved": saved,
            "balanced": balanced,
            "differences": differences,
            "compared": lines,
            "unknown_entries": books.unknown,
            "corrupt": sorted(set(corrupt)),
            "decisions": decisions,
            "conservation": {
                "paid_in": from_micros(paid_in),
                "held_and_paid_out": from_micros(held_out),
                "difference": from_micros(paid_in - held_out),
            },
        }

    async def _decision_differences(self, instance_id: str, ledger: dict[str, str]) -> list[str]:
        """Each win whose record's decision is not the one the ledger has (a record decided
        without its ledger entry, or the reverse), and each record that does not parse."""
        records: dict[str, str | None] = {}
        found = []
        archived = set()
        for win_id, raw in (await self._store.win_records(instance_id)).items():
            if is_tombstone(raw):  # decided, in the archive with its ledger day
                archived.add(win_id)
                continue
            try:
                records[win_id] = json.loads(raw).get("decision")
            except (ValueError, AttributeError):
                found.append(f"win {win_id}: the record is not a JSON object")
        for win_id in sorted((set(records) | set(ledger)) - archived):
            if win_id not in records:
                found.append(f"win {win_id}: the ledger says {ledger[win_id]}, no record")
            elif records[win_id] != ledger.get(win_id):
                recorded = records[win_id] or "undecided"
                found.append(
                    f"win {win_id}: the record says {recorded}, "
                    f"the ledger {ledger.get(win_id) or 'undecided'}"
                )
        return found

    async def meter_report(
        self, by: Principal, instance_id: str, period: tuple[int, int]
    ) -> dict[str, Any]:
        """What a progressive controller's meters show, per pot and for the instance: live
        values, the definition's seed, cap and increment rates, and from the meter counters
        the scripts keep (lua/includes/meters.lua) the hit count, cumulative contributions,
        wins, seed funding and boosts, the same figures for `period` [from, to) — whole UTC
        days, epoch ms at midnight UTC — and the last 5 awards of each pot from its
        recent-wins index. O(pots x days of the period), whatever the ledger's length."""
        definition = await self.instance(by, instance_id)
        first_day, end_day = period_days(period)
        pot_ids = [pot["id"] for pot in definition["pots"]]
        scopes = [*pot_ids, "*"]
        cumulative = [f"{scope}|{figure}" for scope in scopes for figure in METER_FIGURES]
        fields: list[str] | None = None  # a long period: every counter, filtered here
        if (period[1] - period[0]) // DAY_MS * len(cumulative) <= METER_FIELDS_READ:
            days = [day_name(ms) for ms in range(period[0], period[1], DAY_MS)]
            fields = cumulative + [f"{day}|{name}" for day in days for name in cumulative]
        last_id, state, counters = await self._store.meter_counters(instance_id, fields)
        if not state:
            raise Refused(Code.INSTANCE_NOT_FOUND, f"Instance {instance_id} does not exist.")

        def figures(scope: str, *, in_period: bool) -> dict[str, int]:
            found = dict.fromkeys(METER_FIGURES, 0)
            if not in_period:
                for figure in METER_FIGURES:
                    found[figure] = int(counters.get(f"{scope}|{figure}") or 0)
                return found
            for name, value in counters.items():
                day, _, rest = name.partition("|")
                in_days = len(day) == 8 and day.isdigit() and first_day <= day < end_day
                if in_days and rest.rpartition("|")[0] == scope:
                    found[rest.rpartition("|")[2]] += int(value)
            return found

        def pot_meters(scope: str, *, in_period: bool) -> dict[str, Any]:
            raw = figures(scope, in_period=in_period)
            return {
                "contributions": from_micros(raw["contributions"]),
                "wins": from_micros(raw["wins"] - raw["rejected"]),
                "hits": raw["hits"],
                "seed_funding": from_micros(raw["seed_funding"]),
                "boosts": from_micros(raw["boosts"]),
            }

        def instance_totals(*, in_period: bool) -> dict[str, Any]:
            raw = figures("*", in_period=in_period)
            return {
                "contributions": from_micros(raw["contributions"]),
                "seed_funding": from_micros(raw["seed_funding"]),
                "boosts": from_micros(raw["boosts"]),
                "house": from_micros(raw["house"]),
                "wins": from_micros(raw["wins"] - raw["rejected"]),
                "returned": from_micros(raw["returned"]),
            }

        records = await self._store.pot_win_records(instance_id, pot_ids)
        pots = []
        for pot in definition["pots"]:
            share, reserve_share = Decimal(pot["share"]), Decimal(pot["reserve_share"])
            pots.append(
                {
                    "pot_id": pot["id"],
                    "name": pot["name"],
                    "is_progressive": pot["is_progressive"],
                    "current_value": from_micros(int(state.get(f"pot:{pot['id']}:value") or 0)),
                    "reserve": from_micros(int(state.get(f"pot:{pot['id']}:reserve") or 0)),
                    "seed": Decimal(pot["seed"]),
                    "cap": None if pot["max_value"] is None else Decimal(pot["max_value"]),
                    "share": share,
                    "reserve_share": reserve_share,
                    # The part of each contribution that raises the displayed value.
                    "increment_rate": share * (1 - reserve_share) if pot["is_progressive"] else 0,
                    "cumulative": pot_meters(pot["id"], in_period=False),
                    "period": pot_meters(pot["id"], in_period=True),
                    "last_awards": last_awards(records.get(pot["id"], [])),
                }
            )
        hits = sum(pot["cumulative"]["hits"] for pot in pots)
        period_hits = sum(pot["period"]["hits"] for pot in pots)
        return {
            "instance_id": instance_id,
            "name": definition["name"],
            "currency": definition["currency"],
            "status": state.get("status"),
            "generated_at": now_ms(),
            "as_of_entry": last_id or None,
            "period": {"from_ms": period[0], "to_ms": period[1]},
            "cumulative": {**instance_totals(in_period=False), "hits": hits},
            "period_totals": {**instance_totals(in_period=True), "hits": period_hits},
            "pots": pots,
        }

    async def backfill_meters(self, by: Principal, instance_id: str) -> dict[str, Any]:
        """Add to the meter counters what the ledger entries written before the scripts kept
        them contribute, once (an instance created before this version: its counters started
        at zero). The counters and the last ledger entry are read atomically; the entries up
        to it are replayed (app/services/meters.py, the rules of lua/includes/meters.lua) and
        the difference, which only entries written before the counters can make, is added.
        Run it before the ledger's first days are archived."""
        definition = await self.instance(by, instance_id, own=True)
        last_id, state, counters = await self._store.meter_counters(instance_id, None)
        if not state:
            raise Refused(Code.INSTANCE_NOT_FOUND, f"Instance {instance_id} does not exist.")
        if "backfilled" in counters:
            return {"instance_id": instance_id, "backfilled": False, "until": None, "fields": 0}
        pot_ids = [pot["id"] for pot in definition["pots"]]
        replayed = await counters_of(pot_ids, self._store.ledger_until(instance_id, last_id))
        adds = {
            field: amount - int(counters.get(field) or 0)
            for field, amount in replayed.items()
            if amount != int(counters.get(field) or 0)
        }
        if any(amount < 0 for amount in adds.values()):  # counters past the ledger: a defect
            raise ValueError(f"meter counters of {instance_id} exceed its ledger's")
        done = bool(last_id) and await self._store.add_meters(instance_id, last_id, adds)
        return {
            "instance_id": instance_id,
            "backfilled": done,
            "until": last_id or None,
            "fields": len(adds) if done else 0,
        }

    # -- withheld wins --------------------------------------------------------------------
    async def withheld_wins(
        self,
        by: Principal,
        operator_id: str,
        *,
        instance_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> dict[str, Any]:
        """The operator's wins waiting for a decision, oldest first, of one instance or of
        every instance the caller may manage; a page of them and how many there are."""
        if instance_id is not None:
            instance_ids = [(await self.instance(by, instance_id))["id"]]
        else:
            config = await self._config.get()
            prefix = operator_id + ":"
            instance_ids = [
                i
                for i, definition in config.instances.items()
                if any(brand.startswith(prefix) for brand in definition["allowed_brands"])
            ]
        records = [
            record
            for i in instance_ids
            for record in await self._store.withheld_wins(i)
            if record["operator_id"] == operator_id
        ]
        records.sort(key=lambda record: (record["timestamp"], record["win_id"]))
        return {
            "total": len(records),
            "wins": [win_view(record) for record in records[offset : offset + limit]],
        }

    async def decide_win(
        self, by: Principal, instance_id: str, win_id: str, *, approve: bool, reason: str
    ) -> dict[str, Any]:
        """Approve (pay) or reject a withheld win, exactly once; a rejected win's amount goes
        back to its pot's reserve. Listeners get a WinDecisionEvent."""
        await self.instance(by, instance_id)
        before = await self._store.win(instance_id, win_id)
        try:
            record = await self._store.decide_win(
                instance_id,
                win_id,
                decision="approve" if approve else "reject",
                reason=reason,
                by=by.username,
                operator_id="" if by.is_platform else by.operator_id,  # '': any operator's
                event_id=str(uuid.uuid4()),
                now_ms=now_ms(),
            )
        except ScriptRefusal as refusal:
            raise refused(refusal, instance_id) from None
        await self._audit.record(
            by,
            f"win.{'approve' if approve else 'reject'}",
            f"{instance_id}/{win_id}",
            before=None if before is None else {"win_withheld": before.win_withheld},
            after={
                "decision": record["decision"],
                "reason": reason,
                "win_amount": from_micros(int(record["win_amount"])),
                "win_pot_id": record["win_pot_id"],
            },
            operators=[record["operator_id"]],
        )
        return win_view(record)


def win_view(record: dict[str, Any]) -> dict[str, Any]:
    """A win record for admins (amounts in units of the instance currency)."""
    return {
        "win_id": record["win_id"],
        "instance_id": record["instance_id"],
        "win_pot_id": record["win_pot_id"],
        "operator_id": record["operator_id"],
        "brand_id": record["brand_id"],
        "player_id": record["player_id"],
        "win_amount": from_micros(int(record["win_amount"])),
        "currency": record["currency"],
        "timestamp": record["timestamp"],
        "gameround_id": record["gameround_id"],
        "source_id": record["source_id"],
        "win_withheld": record["win_withheld"],
        "decision": record.get("decision"),
        "decided_at": record.get("decided_at"),
        "decided_by": record.get("decided_by"),
        "decision_reason": record.get("decision_reason"),
    }


EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
# The counters of lua/includes/meters.lua: a pot has no house nor returned (always 0 there).
METER_FIGURES = (
    "hits",
    "contributions",
    "wins",
    "rejected",
    "seed_funding",
    "boosts",
    "house",
    "returned",
)
# Above this many counter fields a report reads the whole counter hash (a long period).
METER_FIELDS_READ = 2000
AWARDS_KEPT = 5


def is_whole_days(start: int, end: int) -> bool:
    """Whether [start, end) in epoch ms is whole UTC days (both at midnight UTC)."""
    return 0 <= start < end and start % DAY_MS == 0 and end % DAY_MS == 0


def day_name(ms: int) -> str:
    """yyyymmdd of the UTC day of an epoch ms ('99999999' past the year 9999), as
    lua/includes/meters.lua names its day counters."""
    ordinal = EPOCH_ORDINAL + ms // DAY_MS
    if ordinal > date.max.toordinal():
        return "99999999"
    return date.fromordinal(ordinal).strftime("%Y%m%d")


def period_days(period: tuple[int, int]) -> tuple[str, str]:
    """The first day and the day after the last (yyyymmdd) of a period of whole UTC days
    [from, to); a ValueError for any other period."""
    if not is_whole_days(*period):
        raise ValueError("a meter period is whole UTC days: from and to at midnight UTC")
    return day_name(period[0]), day_name(period[1])


def last_awards(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The latest 5 jackpot awards of a pot (its win records, newest first; raffle prizes
    paid from the pot are not awards): amount, time, whether it was withheld (an approved
    win's record says paid, but it was withheld) and the decision taken on it."""
    awards = []
    for record in records:
        if "raffle_round" in record:
            continue
        decision = record.get("decision")
        awards.append(
            {
                "win_id": record["win_id"],
                "amount": from_micros(int(record["win_amount"])),
                "timestamp": int(record["timestamp"]),
                "withheld": bool(record["win_withheld"]) or decision is not None,
                "decision": decision,
            }
        )
        if len(awards) == AWARDS_KEPT:
            break
    return awards


def utc_day(day: date | None = None) -> tuple[int, int]:
    """[midnight, next midnight) of a UTC day (today by default), in epoch ms."""
    if day is None:
        start = now_ms() // DAY_MS * DAY_MS
    else:
        start = (day.toordinal() - EPOCH_ORDINAL) * DAY_MS
    return start, start + DAY_MS


METER_COLUMNS = [
    "instance_id",
    "pot_id",
    "currency",
    "period_from",
    "period_to",
    "current_value",
    "reserve",
    "seed",
    "cap",
    "share",
    "reserve_share",
    "increment_rate",
    "hit_count",
    "cumulative_contributions",
    "cumulative_wins",
    "cumulative_seed_funding",
    "cumulative_boosts",
    "period_hits",
    "period_contributions",
    "period_wins",
    "period_seed_funding",
    "period_boosts",
    "last_awards",
]


def meter_report_csv(report: dict[str, Any]) -> str:
    """One row per pot, then one row `*` for the whole instance (its contributions include
    the house's part). `last_awards`: `timestamp:amount[:withheld]` newest first, `;`-separated."""

    def text(value: Any) -> str:
        if value is None:
            return ""
        return format_amount(value) if isinstance(value, Decimal) else str(value)

    def figures(cumulative: dict[str, Any], period: dict[str, Any]) -> dict[str, Any]:
        return {
            "hit_count": cumulative["hits"],
            "period_hits": period["hits"],
            **{
                f"{when}_{name}": figures[name]
                for when, figures in (("cumulative", cumulative), ("period", period))
                for name in ("contributions", "wins", "seed_funding", "boosts")
            },
        }

    common = {
        "instance_id": report["instance_id"],
        "currency": report["currency"],
        "period_from": report["period"]["from_ms"],
        "period_to": report["period"]["to_ms"],
    }
    rows = []
    for pot in report["pots"]:
        awards = ";".join(
            f"{a['timestamp']}:{format_amount(a['amount'])}"
            + (":withheld" if a["withheld"] else "")
            for a in pot["last_awards"]
        )
        rows.append(
            {
                **common,
                **{name: pot[name] for name in METER_COLUMNS if name in pot},
                **figures(pot["cumulative"], pot["period"]),
                "last_awards": awards,
            }
        )
    rows.append(
        {
            **common,
            "pot_id": "*",
            "current_value": sum((pot["current_value"] for pot in report["pots"]), Decimal(0)),
            "reserve": sum((pot["reserve"] for pot in report["pots"]), Decimal(0)),
            **figures(report["cumulative"], report["period_totals"]),
        }
    )
    out = io.StringIO()
    writer = csv.DictWriter(out, METER_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({name: text(row.get(name)) for name in METER_COLUMNS})
    return out.getvalue()
