"""Contributions: the contribute-and-trigger script.

`contribute` is one EVALSHA of `lua/contribute-13.lua` (its header is the contract). The store
draws nothing: the caller passes every trigger input (random numbers from `secrets`, next
hidden values), so tests can inject deterministic ones. All money here is int micro-units of
the instance currency.

Redis layout written by the script (all under the instance's hash tag):
  `keys.instance_wins(id)`, `keys.instance_wins_index(id)`  each win stored once (wins.py)
  `keys.instance_tickets(id)`, `keys.instance_ticket_ranking(id)`  raffle tickets (raffles.py)
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from app.core import jsonio
from app.core.limits import WINNERS_CAP
from app.core.money import format_amount, to_decimal
from app.core.refusals import Code
from app.store import keys
from app.store.base import StoreBase
from app.store.script_table import CONTRIBUTE

DEFAULT_IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000
_WINDOW_FIELDS = ("status", "timestamp_start", "timestamp_end")


@dataclass(frozen=True)
class PotDraw:
    """The caller's trigger inputs for one pot of the instance (passed in engine order); what
    each means is its trigger's (app/triggers/): `hit_input` is read by the hit test (a
    HitRate pot's random), `reset_input` when the pot wins (a MustDropBy pot's next drop)."""

    pot_id: str
    hit_input: int | None = None
    reset_input: int | None = None


@dataclass(frozen=True)
class PricedPreference:
    """A player's preferred value as the opt-in hash holds it (`token`: '<value micros>|
    <currency>|<value_raw>', as PREFERENCE_UNPRICED names it) and its charge in the player's
    currency: `paid` reported, `credited` micros of the instance currency."""

    token: str
    paid: Decimal
    credited: int


@dataclass(frozen=True)
class ContributionOutcome:
    """What one contribution did; money in micro-units of the instance currency.

    A replay read from a lean idempotency record (from_record) knows only what the answer
    shows: contribution id, timestamp, paid, tickets awarded, raffle round, the win (pot,
    amount, withheld, the rates it was shown with) and the game round; its other counts and
    amounts are 0 (amount, house, tickets_total, accumulated_cost, contribution_count) or None
    (seed, seed_deficit, source_id)."""

    replay: bool  # True: the idempotency key was seen before; this is the first outcome
    contribution_id: str
    instance_id: str
    timestamp: int
    amount: int
    house: int
    paid: Decimal | None  # the charge reported, in the player's currency (None: a record
    # written before the outcome kept it)
    shown: dict[str, Any]  # the rates the first answer showed amounts with ({} if unknown)
    win_id: str | None
    win_pot_id: str | None
    win_amount: int | None
    win_withheld: bool
    seed: int | None
    seed_deficit: int | None
    tickets_awarded: int
    raffle_round: int | None  # the round the tickets belong to (None: no raffle, no round)
    tickets_total: int
    accumulated_cost: int
    contribution_count: int
    gameround_id: str | None
    source_id: str | None

    @classmethod
    def from_script(cls, replay: bool, raw: str, instance_id: str = "") -> ContributionOutcome:
        """The script's answer: its JSON outcome, or on a replay the stored record's answer
        part (the lean record, or the JSON outcome of a record written before it)."""
        if raw.startswith(LEAN_RECORD):
            return cls.from_record(raw, instance_id)
        data = orjson.loads(raw)
        return cls(
            replay=replay,
            contribution_id=data["contribution_id"],
            instance_id=data["instance_id"],
            timestamp=int(data["timestamp"]),
            amount=int(data["amount"]),
            house=int(data["house"]),
            paid=None if data.get("paid") is None else Decimal(data["paid"]),
            shown=data.get("shown") or {},
            win_id=data["win_id"],
            win_pot_id=data["win_pot_id"],
            win_amount=_opt_int(data["win_amount"]),
            win_withheld=bool(data["win_withheld"]),
            seed=_opt_int(data["seed"]),
            seed_deficit=_opt_int(data["seed_deficit"]),
            tickets_awarded=int(data["tickets_awarded"]),
            raffle_round=data.get("raffle_round"),
            tickets_total=int(data["tickets_total"]),
            accumulated_cost=int(data["accumulated_cost"]),
            contribution_count=int(data["contribution_count"]),
            gameround_id=data["gameround_id"],
            source_id=data["source_id"],
        )

    @classmethod
    def from_record(cls, raw: str, instance_id: str = "") -> ContributionOutcome:
        """A replay from the lean idempotency record of lua/contribute-13.lua (its header):
        '1|id|timestamp|paid|tickets|round|pot|win amount|withheld|shown|gameround'."""
        fields = raw.split("|", 10)
        (_, contribution_id, timestamp, paid, tickets, round_, pot_id, won, withheld, shown) = (
            fields[:10]
        )
        gameround = fields[10]
        return cls(
            replay=True,
            contribution_id=contribution_id,
            instance_id=instance_id,
            timestamp=int(timestamp),
            amount=0,
            house=0,
            paid=Decimal(paid),
            shown=orjson.loads(shown) if shown else {},
            win_id=contribution_id if pot_id else None,
            win_pot_id=pot_id or None,
            win_amount=int(won) if pot_id else None,
            win_withheld=withheld == "1",
            seed=None,
            seed_deficit=None,
            tickets_awarded=int(tickets),
            raffle_round=int(round_) if round_ else None,
            tickets_total=0,
            accumulated_cost=0,
            contribution_count=0,
            gameround_id=gameround or None,
            source_id=None,
        )


LEAN_RECORD = "1|"  # the first field of a lean idempotency record (its format version)


def _opt_int(value: str | None) -> int | None:
    return None if value is None else int(value)


def _metadata_json(value: Any) -> str:
    """Event metadata as compact JSON. It is the operator's opaque data: a JSON number of the
    request (parsed as an exact Decimal) goes back out as the same number, never a string."""
    return jsonio.dumps(value)


def _multipliers_json(multipliers: Mapping[str, Decimal | str | int] | None) -> str:
    """{"USD":1.08,...} with exact decimal numbers (never through a float)."""
    return _multipliers_json_of(tuple((multipliers or {}).items()))


@functools.lru_cache(maxsize=256)
def _multipliers_json_of(items: tuple[tuple[str, Decimal | str | int], ...]) -> str:
    # Every contribution sends its brand's multipliers, which change only with the
    # configuration: format them once. Equal values format alike, so equal keys are safe.
    body = ",".join(f"{json.dumps(ccy)}:{format_amount(to_decimal(m))}" for ccy, m in items)
    return "{" + body + "}"


def contribute_keys(instance_id: str, operator_id: str, idempotency_key: str | None) -> list[str]:
    """The 12 KEYS of contribute-13.lua."""
    return [
        keys.instance_engine(instance_id),
        keys.instance_state(instance_id),
        keys.instance_optins(instance_id),
        keys.instance_tickets(instance_id),
        keys.instance_ticket_ranking(instance_id),
        keys.instance_ledger(instance_id),
        keys.instance_wins(instance_id),
        keys.instance_wins_index(instance_id),
        keys.instance_events(instance_id),
        keys.instance_channel(instance_id),
        keys.instance_idempotency(instance_id, operator_id, idempotency_key or ""),
        keys.instance_meter(instance_id),
        keys.instance_events_epoch(instance_id),
    ]


def contribute_call(
    instance_id: str,
    *,
    operator_id: str,
    brand_id: str,
    player_id: str,
    contribution_id: str,
    event_id: str,
    now_ms: int,
    pots: Sequence[PotDraw],
    publish_mode: str,
    events_cap: int,
    amount: int | None = None,
    base_wager: int = 0,
    source_id: str | None = None,
    gameround_id: str | None = None,
    idempotency_key: str | None = None,
    request_hash: str = "",
    legacy_hash: str = "",
    idempotency_ttl_ms: int = DEFAULT_IDEMPOTENCY_TTL_MS,
    jackpot_name: str | None = None,
    event_metadata: Any = None,
    currency_multipliers: Mapping[str, Decimal | str | int] | None = None,
    winners_cap: int = WINNERS_CAP,
    paid: Decimal | str = "0",
    preference: PricedPreference | None = None,
    shown: Mapping[str, Any] | None = None,
) -> tuple[list[str], list[str | int]]:
    """The KEYS and ARGV of one contribute-13.lua call (ContributionStore.contribute; the
    sizing bench pipelines them)."""
    pot_args: list[str | int] = []
    for pot in pots:
        pot_args += [
            pot.pot_id,
            "" if pot.hit_input is None else pot.hit_input,
            "" if pot.reset_input is None else pot.reset_input,
        ]
    args: list[str | int] = [
        now_ms,
        contribution_id,
        operator_id,
        brand_id,
        player_id,
        keys.player_key(operator_id, brand_id, player_id),
        "" if amount is None else amount,
        base_wager,
        source_id or "",
        gameround_id or "",
        "1" if idempotency_key else "",
        request_hash,
        idempotency_ttl_ms,
        winners_cap,
        publish_mode,
        events_cap,
        event_id,
        jackpot_name or "",
        _metadata_json(event_metadata),
        _multipliers_json(currency_multipliers),
        str(paid),
        "" if preference is None else preference.token,
        "" if preference is None else f"{preference.paid}|{preference.credited}",
        jsonio.dumps(dict(shown or {})),
        legacy_hash,
        *pot_args,
    ]
    return contribute_keys(instance_id, operator_id, idempotency_key), args


class ContributionStore(StoreBase):
    async def contribute(self, instance_id: str, **call: Any) -> ContributionOutcome:
        """Contribute and settle in one round trip; see lua/contribute-13.lua and
        contribute_call (the arguments).

        `pots`: one PotDraw per pot of the instance, in engine order. `amount`: the
        contribution (micros) as charged; on a Fixed instance the player's preferred value
        replaces it, and None means the engine's Fixed amount. `base_wager`: the
        base wager in instance micros (raffle ticket basis). An empty `idempotency_key` means
        none. `paid`: the default charge as reported (player's currency); `preference`: the
        charge of the player's stored preference, priced by the caller (the script refuses
        with PREFERENCE_UNPRICED when the stored one is another); `shown`: the rates the
        answer shows amounts with, kept in the outcome. Raises `ScriptRefusal` with a `Code`
        code when refused (nothing written).
        """
        script_keys, args = contribute_call(
            instance_id, publish_mode=self.publish_mode, events_cap=self.events_cap, **call
        )
        replay, raw = await self.script(CONTRIBUTE, script_keys, args)
        return ContributionOutcome.from_script(bool(int(replay)), raw, instance_id)

    async def refusal_now(
        self,
        instance_id: str,
        *,
        operator_id: str,
        brand_id: str,
        player_id: str,
        now_ms: int,
        opt_in_required: bool,
    ) -> Code | None:
        """What lua/contribute-13.lua would refuse now for the status, the time window and the
        opt-in (in its order), read in one pipeline and changing nothing; None if nothing.
        The script checks again when it runs: this only answers early."""
        pk = keys.player_key(operator_id, brand_id, player_id)
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hmget(
                keys.instance_state(instance_id), ["status", "timestamp_start", "timestamp_end"]
            )
            pipe.hget(keys.instance_optins(instance_id), f"{pk}|opted_in")
            (status, start, end), opted_in = await pipe.execute()
        if status is None:
            return Code.INSTANCE_NOT_FOUND
        if status == "Terminated":
            return Code.INSTANCE_TERMINATED
        if status != "Active":
            return Code.INSTANCE_NOT_ACTIVE
        if start and now_ms < int(start):
            return Code.INSTANCE_NOT_STARTED
        if end and now_ms >= int(end):
            return Code.INSTANCE_ENDED
        if opt_in_required and opted_in != "1":
            return Code.NOT_OPTED_IN
        return None

    async def recorded(
        self, instance_id: str, operator_id: str, idempotency_key: str
    ) -> tuple[str, ContributionOutcome] | None:
        """The idempotency record of a key: the request's fingerprint line and the first
        outcome (as a replay), or None when the key is unknown or expired."""
        raw = await self.client.get(
            keys.instance_idempotency(instance_id, operator_id, idempotency_key)
        )
        if raw is None:
            return None
        fingerprint, _, outcome = raw.partition("\n")
        return fingerprint, ContributionOutcome.from_script(True, outcome, instance_id)
