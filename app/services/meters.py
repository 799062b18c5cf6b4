"""The meter counters of lua/includes/meters.lua computed from ledger entries, by the same
rules (app/services/books.py's replay, counted per UTC day): what `backfill-meters` adds for
the entries an instance's ledger held before its scripts kept counters."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import date

from app.core.clock import DAY_MS

EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def day_of(ts: int) -> str:
    return date.fromordinal(EPOCH_ORDINAL + ts // DAY_MS).strftime("%Y%m%d")


async def counters_of(pot_ids: list[str], entries: AsyncIterator[dict[str, str]]) -> dict[str, int]:
    """Counter field -> amount ('<scope>|<figure>' and '<yyyymmdd>|<scope>|<figure>')."""
    found: dict[str, int] = defaultdict(int)

    def add(ts: int, scope: str, figure: str, amount: int) -> None:
        if amount:
            found[f"{scope}|{figure}"] += amount
            found[f"{day_of(ts)}|{scope}|{figure}"] += amount

    def num(fields: dict[str, str], name: str) -> int:
        return int(fields.get(name) or 0)

    async for fields in entries:
        kind, ts = fields.get("type"), num(fields, "ts")
        if kind == "contribution":
            for pot_id in pot_ids:
                part = num(fields, f"pot:{pot_id}:value") + num(fields, f"pot:{pot_id}:reserve")
                add(ts, pot_id, "contributions", part)
            add(ts, "*", "contributions", num(fields, "amount"))
            add(ts, "*", "house", num(fields, "house"))
        elif kind == "win":
            amount, deficit, won = num(fields, "amount"), num(fields, "deficit"), fields.get("pot")
            if won:
                add(ts, won, "hits", 1)
                add(ts, won, "wins", amount)
                add(ts, won, "seed_funding", deficit)
            add(ts, "*", "wins", amount)
            add(ts, "*", "seed_funding", deficit)
        elif kind == "seed_funding" and not fields.get("win"):
            add(ts, fields["pot"], "seed_funding", num(fields, "amount"))
            add(ts, "*", "seed_funding", num(fields, "amount"))
        elif kind == "boost":
            add(ts, fields["pot"], "boosts", num(fields, "amount"))
            add(ts, "*", "boosts", num(fields, "amount"))
        elif kind == "win_rejected":
            amount = num(fields, "amount")
            returned = num(fields, "returned") if "returned" in fields else 0
            if fields.get("pot"):
                add(ts, fields["pot"], "rejected", amount)
            add(ts, "*", "rejected", amount)
            add(ts, "*", "returned", returned)
        elif kind == "close":
            add(ts, "*", "returned", num(fields, "amount"))
    return dict(found)
