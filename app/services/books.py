"""An instance's books rebuilt from its ledger alone: what every pot, reserve and total must
hold, and the regulators' meters (hits, cumulative contributions and wins, seed funding, the
last awards, and the figures of a period).

Replay rules, one per ledger entry type (money in integer micro-units):
  seed_funding  without `win`: the initial seed of a pot (value += amount, seed funding);
                with `win`: the reseed shortfall of that win, already counted by the win
  contribution  each pot's value and reserve += its parts; contributions, house += ...
  win           pot value += seed - amount (the pot restarts at its seed), reserve -=
                from_reserve, deficit and seed funding += deficit; wins += amount; one hit;
                a raffle prize (with `raffle_round`): the prize pot's value -= from_pot, the
                shortfall (deficit) is seed funding
  raffle_draw, raffle_round, raffle_snapshot  no money
  boost         pot value and reserve += their parts; boosts += amount
  win_rejected  wins -= amount; `reserve` of it back to the pot's reserve, `returned` of it to
                the operator (returned += ...); an entry written before those fields existed
                sends it all to the reserve
  close         the instance was terminated: each pot's value and reserve (fields
                pot:<id>:value, pot:<id>:reserve) leave the pot for the operator (returned)
  win_approved, status  no money
Any other type is reported as unknown, so a reconciliation never silently skips money.

A replay may start from a checkpoint (`Books.from_json` of what an earlier replay reached,
`start=`), so a report costs what changed since it. It yields to the event loop every
`YIELD_EVERY` entries, so a long replay in a web process does not hold up its requests.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from typing import Any

TOTALS = ("contributions", "seed_funding", "boosts", "house", "wins", "returned")
NO_MONEY = frozenset({"status", "raffle_draw", "raffle_round", "raffle_snapshot"})
# win_approved moves no money either; it is handled with win_rejected for the awards.
AWARDS_KEPT = 5
YIELD_EVERY = 50  # entries replayed between two yields to the event loop (~1 ms)
# A long replay shares its process: after BUSY_S of work it leaves the event loop alone for
# PAUSE_S, so requests arriving meanwhile run their several steps without waiting behind it.
BUSY_S = 0.002
PAUSE_S = 0.001


@dataclass
class Meters:
    """What one pot (or the instance) took in and paid out."""

    contributions: int = 0
    wins: int = 0
    hits: int = 0
    seed_funding: int = 0
    boosts: int = 0


@dataclass
class PotBooks:
    value: int = 0
    reserve: int = 0
    deficit: int = 0
    meters: Meters = field(default_factory=Meters)
    period: Meters = field(default_factory=Meters)
    awards: list[dict[str, Any]] = field(default_factory=list)  # newest first


@dataclass
class Books:
    pots: dict[str, PotBooks]
    totals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TOTALS, 0))
    period_totals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TOTALS, 0))
    entries: int = 0
    unknown: dict[str, int] = field(default_factory=dict)  # entry type -> count
    # "entry <n> (<type>): <field> = <value>" for each money field that is not an integer
    corrupt: list[str] = field(default_factory=list)
    decisions: dict[str, str] = field(default_factory=dict)  # win id -> approved | rejected

    def pot(self, pot_id: str) -> PotBooks:
        return self.pots.setdefault(pot_id, PotBooks())

    def to_json(self) -> str:
        """The running figures a later replay continues from (a checkpoint): every pot's
        value, reserve, deficit, meters and last awards, the totals and the entry count;
        not the period figures, the decisions (kept beside it) nor problems (a checkpoint is
        only taken of a clean replay). Integers of any size, exactly."""
        return json.dumps(
            {
                "entries": self.entries,
                "totals": self.totals,
                "pots": {
                    pot_id: {
                        "value": pot.value,
                        "reserve": pot.reserve,
                        "deficit": pot.deficit,
                        "meters": asdict(pot.meters),
                        "awards": pot.awards,
                    }
                    for pot_id, pot in self.pots.items()
                },
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str) -> Books:
        data = json.loads(raw)
        pots = {
            pot_id: PotBooks(
                value=int(pot["value"]),
                reserve=int(pot["reserve"]),
                deficit=int(pot["deficit"]),
                meters=Meters(**{k: int(v) for k, v in pot["meters"].items()}),
                awards=list(pot["awards"]),
            )
            for pot_id, pot in data["pots"].items()
        }
        totals = dict.fromkeys(TOTALS, 0)
        totals.update({name: int(value) for name, value in data["totals"].items()})
        return cls(pots, totals=totals, entries=int(data["entries"]))


class _Corrupt(ValueError):
    """A ledger entry's money field is not an integer."""


def _int(fields: dict[str, str], name: str) -> int:
    value = fields.get(name) or "0"
    if not is_integer(value):
        raise _Corrupt(f"{name} = {value!r}")
    return int(value)


def stream_id(entry_id: str) -> tuple[int, int]:
    """A stream entry id '<ms>-<seq>' as numbers, for comparing (as text '9-0' > '10-0')."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def stream_id_after(entry_id: str, other: str) -> bool:
    return stream_id(entry_id) > stream_id(other)


def is_integer(value: str) -> bool:
    """Decimal digits with an optional minus: what a stored money field must be."""
    digits = value[1:] if value[:1] == "-" else value
    return digits.isascii() and digits.isdigit()


async def replay(
    pot_ids: list[str],
    entries: AsyncIterator[dict[str, str]],
    period: tuple[int, int] | None = None,
    *,
    start: Books | None = None,
    share_loop: bool = True,
) -> Books:
    """The books after `entries` (continuing from `start`, a checkpoint, when given: its
    figures are not changed); `period` [from, to) in epoch ms also sums the entries whose
    `ts` falls inside it. `share_loop` False (a process of its own) replays without pauses."""
    if start is None:
        books = Books({pot_id: PotBooks() for pot_id in pot_ids})
    else:
        books = copy.deepcopy(start)  # its pots in the definition's order
        books.pots = {
            **{pot_id: books.pots.get(pot_id) or PotBooks() for pot_id in pot_ids},
            **books.pots,
        }
    loop = asyncio.get_running_loop()
    busy_since = loop.time()
    async for fields in entries:
        books.entries += 1
        if share_loop and books.entries % YIELD_EVERY == 0:  # let the process's requests in
            if loop.time() - busy_since >= BUSY_S:
                await asyncio.sleep(PAUSE_S)
                busy_since = loop.time()
            else:
                await asyncio.sleep(0)
        try:
            ts = _int(fields, "ts")
            in_period = period is not None and period[0] <= ts < period[1]
            _apply(books, fields, in_period)
        except _Corrupt as error:  # named in the report; the replay goes on without it
            books.corrupt.append(f"entry {books.entries} ({fields.get('type')}): {error}")
    return books


def _meter(pot: PotBooks, in_period: bool, **amounts: int) -> None:
    """Add to the pot's meters (and its period's, when the entry falls inside it)."""
    for meters in [pot.meters, pot.period] if in_period else [pot.meters]:
        for name, amount in amounts.items():
            setattr(meters, name, getattr(meters, name) + amount)


def _total(books: Books, in_period: bool, **amounts: int) -> None:
    for totals in [books.totals, books.period_totals] if in_period else [books.totals]:
        for name, amount in amounts.items():
            totals[name] += amount


def _apply(books: Books, fields: dict[str, str], in_period: bool) -> None:
    kind = fields.get("type")
    if kind == "contribution":
        for pot_id in books.pots:
            to_value = _int(fields, f"pot:{pot_id}:value")
            to_reserve = _int(fields, f"pot:{pot_id}:reserve")
            pot = books.pots[pot_id]
            pot.value += to_value
            pot.reserve += to_reserve
            _meter(pot, in_period, contributions=to_value + to_reserve)
        _total(books, in_period, contributions=_int(fields, "amount"), house=_int(fields, "house"))
    elif kind == "win" and "raffle_round" in fields:
        # A raffle prize: `from_pot` out of the prize pot's value (if any), `from_reserve` out
        # of its reserve, the shortfall from the operator (its seed_funding entry is counted
        # here, like a reseed's).
        amount, deficit = _int(fields, "amount"), _int(fields, "deficit")
        if fields.get("pot"):
            pot = books.pot(fields["pot"])
            pot.value -= _int(fields, "from_pot")
            pot.reserve -= _int(fields, "from_reserve")  # 0 in a prize paid before it spent one
            pot.deficit += deficit
            _meter(pot, in_period, wins=amount, hits=1, seed_funding=deficit)
        _total(books, in_period, wins=amount, seed_funding=deficit)
    elif kind == "win":
        pot = books.pot(fields["pot"])
        amount, deficit = _int(fields, "amount"), _int(fields, "deficit")
        pot.value += _int(fields, "seed") - amount
        pot.reserve -= _int(fields, "from_reserve")
        pot.deficit += deficit
        _meter(pot, in_period, wins=amount, hits=1, seed_funding=deficit)
        _total(books, in_period, wins=amount, seed_funding=deficit)
        award = {
            "win_id": fields.get("id"),
            "amount": amount,
            "timestamp": _int(fields, "ts"),
            "withheld": fields.get("withheld") == "1",
            "decision": None,
        }
        pot.awards = [award, *pot.awards][:AWARDS_KEPT]
    elif kind == "seed_funding":
        if not fields.get("win"):  # a reseed's shortfall is counted with its win
            pot = books.pot(fields["pot"])
            amount = _int(fields, "amount")
            pot.value += amount
            _meter(pot, in_period, seed_funding=amount)
            _total(books, in_period, seed_funding=amount)
    elif kind == "boost":
        pot = books.pot(fields["pot"])
        pot.value += _int(fields, "value")
        pot.reserve += _int(fields, "reserve")
        _meter(pot, in_period, boosts=_int(fields, "amount"))
        _total(books, in_period, boosts=_int(fields, "amount"))
    elif kind in ("win_approved", "win_rejected"):
        pot_id = fields.get("pot") or ""
        if kind == "win_rejected":
            amount = _int(fields, "amount")
            if "returned" in fields:
                to_reserve, returned = _int(fields, "reserve"), _int(fields, "returned")
            else:
                to_reserve, returned = amount, 0
            _total(books, in_period, wins=-amount, returned=returned)
            if pot_id:
                pot = books.pot(pot_id)
                pot.reserve += to_reserve
                _meter(pot, in_period, wins=-amount)
        books.decisions[str(fields.get("id"))] = kind.removeprefix("win_")
        if pot_id:
            for award in books.pot(pot_id).awards:
                if award["win_id"] == fields.get("id"):
                    award["decision"] = kind.removeprefix("win_")
    elif kind == "close":
        returned = 0
        for pot_id, pot in books.pots.items():
            value, reserve = (
                _int(fields, f"pot:{pot_id}:value"),
                _int(fields, f"pot:{pot_id}:reserve"),
            )
            pot.value -= value
            pot.reserve -= reserve
            returned += value + reserve
        _total(books, in_period, returned=returned)
    elif kind not in NO_MONEY:
        books.unknown[str(kind)] = books.unknown.get(str(kind), 0) + 1
