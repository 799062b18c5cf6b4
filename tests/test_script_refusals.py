"""Every refusal of every Lua script leaves the store byte-identical (issue 25): each case runs
one script call that must be refused (or fail on corrupt data) and compares DUMP and
PEXPIRETIME of every key of the database before and after, on real Redis. A script checks
everything, then writes: no script may answer an error after its first write.

`test_every_refusal_of_every_script_is_covered` reads each script's source for the codes it can
answer, so a script or a refusal added later without a case here fails the suite."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from redis.exceptions import ResponseError

from app.core.refusals import Code
from app.services.draws import DrawKeys, draw_winners, salted_lines, snapshot_hash
from app.store import ScriptRefusal, Store, keys
from app.store.contributions import PricedPreference
from app.store.script_table import BY_NAME
from tests.conftest import DRAW_KEY
from tests.support.definitions import hit_rate, pot
from tests.test_lua_contribute import NOW, M, contribute, create, definition

REAL = pytest.mark.parametrize("redis_url", ["real"], indirect=True)

LUA = Path(__file__).resolve().parents[1] / "lua"
INT64_MAX = 2**63 - 1
ERROR = "error"  # a plain script error (corrupt data), not a refusal
DRAW_KEYS = DrawKeys(DRAW_KEY)  # seeds and salts, as app/services/raffles.py derives them
LEGACY_SEED = "09" * 32  # a seed kept in the state by a round opened before seeds were derived
ENDS = NOW + 10**12  # round 2's end: after the store's clock (TIME), so its sales are open
AFTER = ENDS  # a moment at which round 2 has ended


async def dump(store: Store) -> dict[str, tuple[bytes, int]]:
    """Every key of the database: its serialized value (DUMP) and when it expires (PEXPIRETIME,
    an absolute time: -1 for none)."""
    raw = store.client
    found: dict[str, tuple[bytes, int]] = {}
    for key in sorted(await raw.keys("*")):
        found[key] = (
            await raw.execute_command("DUMP", key, NEVER_DECODE=True),
            await raw.execute_command("PEXPIRETIME", key),
        )
    return found


Call = Callable[[Store], Awaitable[Any]]


def script(name: str, keys_: list[str], args: list[Any]) -> Call:
    spec = BY_NAME[name]  # a misspelt script fails when the cases are built
    return lambda store: store.script(spec, keys_, args)


J = "jp1"  # the world's jackpot (a withheld win, a paid win, a decided win, a boost)
R = "r1"  # its raffle (round 1 drawn, round 2 open with two players, ending at ENDS)
T = "gone"  # a terminated instance
RAFFLE: dict[str, Any] = {  # one prize, a ticket per unit contributed, a draw a day
    "jackpot_type": "Raffle",
    "contribution": {"Percentage": "1"},
    "raffle": {"ticket_cost": "1.00", "prizes": ["1"], "draw": {"every": "1d"}},
}
STATE, LEDGER = keys.instance_state(J), keys.instance_ledger(J)
EVENTS, CHANNEL = keys.instance_events(J), keys.instance_channel(J)
METER = keys.instance_meter(J)
EPOCH = keys.instance_events_epoch(J)


async def world(store: Store) -> dict[str, Any]:
    """The instances every case works on, with the wins and rounds the cases refer to."""
    engine = await create(
        store,
        definition(
            [
                pot("main", "0.5", hit_rate(1), seed="1", reserve_share="0.1"),
                pot("flat", "0.2", hit_rate(10**12), progressive=False),
            ],
            house="0.3",
            auto_payout_limit="1",
            opt_in_required=False,
        ),
    )
    withheld = await contribute(store, engine, randoms={"main": 0}, amount=5_000_000)
    decided = await contribute(store, engine, randoms={"main": 0}, amount=5_000_000)
    await store.decide_win(
        J, decided.contribution_id, decision="reject", reason="r", by="t", operator_id="",
        event_id="e", now_ms=NOW,
    )  # fmt: skip
    paid = await contribute(store, engine, randoms={"main": 0}, amount=1)
    await store.boost_pot(J, boost_id="b1", pot_id="main", target="reserve", amount=5, by="t",
                          now_ms=NOW)  # fmt: skip
    await contribute(store, engine, amount=1, idempotency_key="k", request_hash="h")
    raffle = await create(store, definition([pot("pool", "0.5")], house="0.5", instance_id=R,
                                            **RAFFLE))  # fmt: skip
    # round 1 opened as the service opens it: its commitment and round 2's, no seed stored
    key, first = DRAW_KEYS.commitment(R, 1)
    _, second = DRAW_KEYS.commitment(R, 2)
    assert await store.open_round(
        R, now_ms=NOW - 1, key_id=key, commitment=first, ends=None, next_key=key,
        next_commitment=second, event_id="o1", jackpot_name=None,
    )  # fmt: skip
    await contribute(store, raffle, amount=3 * M)
    # round 1 drawn as the service draws it: sales sealed, the snapshot read and hashed, the
    # winners computed from the seed and the hash, then checked and paid by the script
    assert await store.close_round(R, 1, now_ms=NOW, key_id=key)
    await store.draw_raffle(**await draw_arguments(store, R, 1, now=NOW, next_ends=ENDS))
    await contribute(store, raffle, player="a", amount=2 * M)  # round 2: two players
    await contribute(store, raffle, player="b", amount=3 * M)
    assert await store.current_rounds([R]) == {R: 2}
    gone = await create(store, definition([pot("main", "1")], instance_id=T))
    await store.set_status(T, "terminate", now_ms=NOW, by="t")
    return {
        "engine": engine,
        "raffle": raffle,
        "gone": gone,
        "withheld": withheld.contribution_id,
        "decided": decided.contribution_id,
        "paid": paid.contribution_id,
    }


def decide(win_id: str, decision: str = "reject", **changes: Any) -> Call:
    args = [NOW, win_id, decision, "r", "t", "", "e", 100, "publish"]
    for index, value in changes.items():
        args[int(index[1:]) - 1] = value
    return script(
        "decide_win", [STATE, LEDGER, keys.instance_wins(J), EVENTS, CHANNEL, METER, EPOCH], args
    )


def boost(pot_id: str = "main", target: str = "reserve", amount: int = 1, **kw: Any) -> Call:
    instance_id = kw.pop("instance_id", J)
    return lambda store: store.boost_pot(
        instance_id, boost_id=kw.pop("boost_id", "new"), pot_id=pot_id, target=target,
        amount=amount, by="t", now_ms=NOW,
    )  # fmt: skip


def contribution(engine_key: str = "engine", **kw: Any) -> Callable[[dict[str, Any]], Call]:
    return lambda w: lambda store: contribute(store, w[engine_key], **kw)


async def draw_arguments(
    store: Store, instance_id: str, round_id: int, *, now: int, next_ends: int | None = None
) -> dict[str, Any]:
    """The arguments of RaffleStore.draw_raffle for a round, computed as
    app/services/raffles.py computes them (the round's sales already sealed): its seed from
    the draw key, its live tickets' salted snapshot hash, the winners of draws.draw_winners
    (the raffle's one prize), and the next round's commitment (published when the round
    opened) and the one after."""
    state = await store.raffle_round(instance_id)
    key = state["key"] or DRAW_KEYS.current_id
    tickets = await store.live_round_tickets(instance_id, round_id)
    digest = snapshot_hash(
        salted_lines(tickets, lambda pk: DRAW_KEYS.salt(key, instance_id, round_id, pk))
    )
    seed = DRAW_KEYS.seed(instance_id, round_id, key)
    picks = draw_winners(seed, instance_id, round_id, digest, tickets, 1)
    after_key, after_commitment = DRAW_KEYS.commitment(instance_id, round_id + 2)
    return {
        "instance_id": instance_id, "now_ms": now, "round_id": round_id, "seed": seed,
        "snapshot": digest, "tickets_total": sum(held for _, _, held in tickets),
        "picks": [(p.random, p.target, p.index) for p in picks], "event_id": f"d{round_id}",
        "jackpot_name": None, "currency_multipliers": {}, "next_key": state["next_key"],
        "next_commitment": state["next_commitment"], "next_ends": next_ends,
        "after_key": after_key, "after_commitment": after_commitment,
        "opened_event_id": f"o{round_id + 1}", "by": "t",
    }  # fmt: skip


def draw(round_id: int = 2, now: int = AFTER, **changes: Any) -> Call:
    """Draw round `round_id` of the raffle with the arguments the service would pass, but for
    `changes` (`instance_id` draws another instance with the raffle's arguments)."""
    instance_id = changes.pop("instance_id", R)

    async def call(store: Store) -> Any:
        arguments = await draw_arguments(store, R, round_id, now=now)
        arguments.update(changes, instance_id=instance_id)
        return await store.draw_raffle(**arguments)

    return call


def picked(change: Callable[[tuple[int, int, int]], tuple[int, int, int]]) -> Call:
    """Draw round 2 with its winner's (random, target, index) changed."""

    async def call(store: Store) -> Any:
        arguments = await draw_arguments(store, R, 2, now=AFTER)
        arguments["picks"] = [change(pick) for pick in arguments["picks"]]
        return await store.draw_raffle(**arguments)

    return call


async def seal(store: Store, round_id: int = 2) -> None:
    """Seal a round's sales, as the service does before its draw."""
    assert await store.close_round(R, round_id, now_ms=AFTER, key_id=DRAW_KEYS.current_id)


def close(round_id: int = 2, now: int = AFTER, instance_id: str = R) -> Call:
    return lambda store: store.close_round(
        instance_id, round_id, now_ms=now, key_id=DRAW_KEYS.current_id
    )


def open_round(instance_id: str = R, **changes: Any) -> Call:
    key, first = DRAW_KEYS.commitment(instance_id, 1)
    arguments: dict[str, Any] = {
        "now_ms": NOW, "key_id": key, "commitment": first, "ends": None, "next_key": "",
        "next_commitment": "", "event_id": "o", "jackpot_name": None,
    }  # fmt: skip
    arguments.update(changes)
    return lambda store: store.open_round(instance_id, **arguments)


def read_tickets(round_id: int, first: int, count: int, players: int) -> Call:
    return script(
        "read_round_tickets",
        [keys.instance_tickets(R), keys.instance_archived_tickets(R, round_id)],
        [round_id, first, count, players],
    )


def login(limit: int | str, window: int) -> Call:
    return script("take_login_attempt", [keys.login_attempts("u")], [limit, window])


async def arrange(store: Store, instance_id: str, **fields: Any) -> None:
    await store.client.hset(keys.instance_state(instance_id), mapping=fields)


ARCHIVE = [keys.instance_tickets(R), keys.instance_ticket_ranking(R),
           keys.instance_raffle_rounds(R), keys.instance_archived_round(R, 1),
           keys.instance_archived_tickets(R, 1)]  # fmt: skip
OPTIN = [keys.instance_state(J), keys.instance_optins(J), EVENTS, CHANNEL, EPOCH]
OPTIN_ARGS = ["1", NOW, "op1:brand1:p9", "", "", "", "e", J, "p9", "op1:brand1", "publish", 100]

# (script, code, description, arrangement of the state, the call)
Case = tuple[
    str, str, str, Callable[[Store], Awaitable[None]] | None, Callable[[dict[str, Any]], Call]
]


BOOKS = keys.instance_books(J)


def tombstone(state: str) -> Callable[[Store], Awaitable[None]]:
    """Every win record of the world replaced by the tombstone of an archived one."""

    async def arrange_(store: Store) -> None:
        wins = keys.instance_wins(J)
        for win_id in await store.client.hkeys(wins):
            await store.client.hset(wins, win_id, f"archived 2026-01-01 op1 {state}")

    return arrange_


async def books_marks(store: Store) -> None:
    await store.client.hset(BOOKS, mapping={"archived_id": "3-0", "checkpoint_id": "5-0"})


async def require_opt_in(store: Store) -> None:
    engine = await store.client.get(keys.instance_engine(J))
    assert '"opt_in_required":false' in engine
    required = engine.replace('"opt_in_required":false', '"opt_in_required":true')
    await store.client.set(keys.instance_engine(J), required)


CASES: list[Case] = [
    # add_meters-1
    ("add_meters", "BAD_ARGUMENT", "entry id", None,
     lambda w: script("add_meters", [METER], ["last", "*|wins", "1"])),
    ("add_meters", "BAD_ARGUMENT", "amount", None,
     lambda w: script("add_meters", [METER], ["1-0", "*|wins", "-1"])),
    # archive_round-5
    ("archive_round", "BAD_ARGUMENT", "round 0", None,
     lambda w: script("archive_round", ARCHIVE, [0, "copy", 10, 0])),
    ("archive_round", "ROUND_NOT_DRAWN", "open round", None,
     lambda w: script("archive_round", ARCHIVE, [2, "copy", 10, 0])),
    ("archive_round", "SNAPSHOT_MISSING", "drawn before draws hashed their snapshot",
     lambda s: s.client.hdel(keys.instance_raffle_rounds(R), "1|snapshot"),
     lambda w: script("archive_round", ARCHIVE, [1, "copy", 10, 0])),
    # boost_pot-5
    ("boost_pot", "BAD_ARGUMENT", "amount 0", None, lambda w: boost(amount=0)),
    ("boost_pot", "INSTANCE_NOT_FOUND", "no instance", None,
     lambda w: boost(instance_id="nowhere")),
    ("boost_pot", "INSTANCE_TERMINATED", "terminated", None, lambda w: boost(instance_id=T)),
    ("boost_pot", "POT_NOT_FOUND", "no pot", None, lambda w: boost("nope")),
    ("boost_pot", "POT_NOT_PROGRESSIVE", "fixed pot", None, lambda w: boost("flat", "value")),
    ("boost_pot", "BOOST_ID_REUSED", "reused id", None, lambda w: boost(amount=6, boost_id="b1")),
    ("boost_pot", "AMOUNT_OVERFLOW", "value at the boundary",
     lambda s: arrange(s, J, **{"pot:main:value": INT64_MAX}), lambda w: boost(target="value")),
    ("boost_pot", "AMOUNT_OVERFLOW", "reserve at the boundary",
     lambda s: arrange(s, J, **{"pot:main:reserve": INT64_MAX}), lambda w: boost()),
    ("boost_pot", "AMOUNT_OVERFLOW", "reserve past the boundary",
     lambda s: arrange(s, J, **{"pot:main:reserve": INT64_MAX - 1}), lambda w: boost(amount=2)),
    # claim_due-1
    ("claim_due", "BAD_ARGUMENT", "no limit", None,
     lambda w: script("claim_due", [keys.SCHEDULE], [NOW, 0, 10])),
    # close_round-2
    ("close_round", "BAD_ARGUMENT", "round 0", None, lambda w: close(0)),
    ("close_round", "INSTANCE_NOT_FOUND", "no instance", None,
     lambda w: close(instance_id="nowhere")),
    ("close_round", "INSTANCE_NOT_FOUND", "an engine without state",
     lambda s: s.client.delete(keys.instance_state(R)), lambda w: close()),
    ("close_round", "NOT_A_RAFFLE", "a jackpot", None, lambda w: close(instance_id=J)),
    ("close_round", "ROUND_MISMATCH", "drawn round", None, lambda w: close(1)),
    ("close_round", "ROUND_MISMATCH", "a round not opened", None, lambda w: close(3)),
    ("close_round", "ROUND_NOT_CLOSED", "before its end", None, lambda w: close(now=ENDS - 1)),
    # contribute-13
    ("contribute", "BAD_ARGUMENT", "bad base wager", None, contribution(base_wager=-1)),
    ("contribute", "BAD_ARGUMENT", "pots differ", None,
     lambda w: lambda store: contribute(store, w["gone"] | {"id": J})),
    ("contribute", "IDEMPOTENCY_MISMATCH", "another request", None,
     contribution(amount=1, idempotency_key="k", request_hash="other")),
    ("contribute", "INSTANCE_NOT_FOUND", "no instance", None,
     lambda w: lambda store: contribute(store, w["engine"] | {"id": "nowhere"})),
    ("contribute", "INSTANCE_TERMINATED", "terminated", None, contribution("gone")),
    ("contribute", "INSTANCE_NOT_ACTIVE", "paused", lambda s: arrange(s, J, status="Paused"),
     contribution()),
    ("contribute", "INSTANCE_NOT_STARTED", "before start",
     lambda s: arrange(s, J, timestamp_start=NOW + 1), contribution()),
    ("contribute", "INSTANCE_ENDED", "at the end", lambda s: arrange(s, J, timestamp_end=NOW),
     contribution()),
    ("contribute", "NOT_OPTED_IN", "opt-in required", lambda s: require_opt_in(s),
     contribution()),
    ("contribute", "PREFERENCE_UNPRICED", "a preference not priced",
     lambda s: s.client.hset(keys.instance_optins(J), mapping={
         "op1:brand1:p1|opted_in": "1", "op1:brand1:p1|value": "7",
         "op1:brand1:p1|currency": "EUR", "op1:brand1:p1|value_raw": "0.000007"}),
     contribution(preference=PricedPreference("8|EUR|0.000008", 0, 8))),  # type: ignore[arg-type]
    ("contribute", "AMOUNT_OVERFLOW", "value at the boundary",
     lambda s: arrange(s, J, **{"pot:main:value": INT64_MAX - 1}), contribution(amount=10)),
    ("contribute", "AMOUNT_OVERFLOW", "reserve at the boundary",
     lambda s: arrange(s, J, **{"pot:flat:reserve": INT64_MAX}), contribution(amount=10)),
    ("contribute", "AMOUNT_OVERFLOW", "a won pot past the boundary",
     lambda s: arrange(s, J, **{"pot:main:value": INT64_MAX}),
     contribution(amount=10, randoms={"main": 0})),
    ("contribute", ERROR, "corrupt contribution count",
     lambda s: s.client.hset(keys.instance_optins(J), "op1:brand1:p1|count", "x"),
     contribution(amount=10)),
    ("contribute", ERROR, "corrupt total", lambda s: arrange(s, J, **{"total:house": "1.5"}),
     contribution(amount=10)),
    # create_instance-5
    ("create_instance", "BAD_ARGUMENT", "engine", None,
     lambda w: script("create_instance", [keys.instance_definition("new"),
                      keys.instance_engine("new"), keys.instance_state("new"),
                      keys.instance_ledger("new"), keys.instance_meter("new")],
                     ["{}", "x", NOW, "Active", "", ""])),
    # decide_win-7
    ("decide_win", "BAD_ARGUMENT", "decision", None, lambda w: decide(w["withheld"], "maybe")),
    ("decide_win", "WIN_NOT_FOUND", "no win", None, lambda w: decide("nope")),
    ("decide_win", "WIN_NOT_FOUND", "another operator's", None,
     lambda w: decide(w["withheld"], a6="rival")),
    ("decide_win", "WIN_NOT_WITHHELD", "paid", None, lambda w: decide(w["paid"])),
    ("decide_win", "WIN_ALREADY_DECIDED", "decided", None, lambda w: decide(w["decided"])),
    ("decide_win", "WIN_ALREADY_DECIDED", "archived decided", tombstone("approved"),
     lambda w: decide(w["withheld"])),
    ("decide_win", "WIN_NOT_WITHHELD", "archived paid", tombstone("paid"),
     lambda w: decide(w["withheld"])),
    ("decide_win", "WIN_NOT_FOUND", "another operator's archived", tombstone("rejected"),
     lambda w: decide(w["withheld"], a6="rival")),
    # archive_wins-2
    ("archive_wins", "BAD_ARGUMENT", "day", None,
     lambda w: script("archive_wins", [keys.instance_wins(J), BOOKS], ["2026-1-1", "x"])),
    ("archive_wins", "BAD_ARGUMENT", "empty win id", None,
     lambda w: script("archive_wins", [keys.instance_wins(J), BOOKS], ["2026-01-01", ""])),
    ("decide_win", ERROR, "wins total below the win", lambda s: arrange(s, J, **{"total:wins": 1}),
     lambda w: decide(w["withheld"])),
    ("decide_win", ERROR, "corrupt reserve",
     lambda s: arrange(s, J, **{"pot:main:reserve": "-"}), lambda w: decide(w["withheld"])),
    # draw_raffle-11 (round 2 sealed first, as the service does, unless it has not ended)
    ("draw_raffle", "BAD_ARGUMENT", "a winner too many", seal,
     lambda w: draw(picks=[(0, 0, 1), (0, 0, 2)])),
    ("draw_raffle", "BAD_ARGUMENT", "no winner", seal, lambda w: draw(picks=[])),
    ("draw_raffle", "BAD_ARGUMENT", "a random of 79 digits", seal,
     lambda w: picked(lambda p: (10**78, p[1], p[2]))),
    ("draw_raffle", "BAD_ARGUMENT", "snapshot hash", seal, lambda w: draw(snapshot="zz")),
    ("draw_raffle", "BAD_ARGUMENT", "next round without its key", seal,
     lambda w: draw(next_key=None)),
    ("draw_raffle", "INSTANCE_NOT_FOUND", "no instance", None,
     lambda w: draw(instance_id="nowhere")),
    ("draw_raffle", "INSTANCE_NOT_FOUND", "an engine without state",
     lambda s: s.client.delete(keys.instance_state(R)), lambda w: draw()),
    ("draw_raffle", "NOT_A_RAFFLE", "a jackpot", None, lambda w: draw(instance_id=J)),
    ("draw_raffle", "ROUND_MISMATCH", "drawn round", seal, lambda w: draw(1)),
    ("draw_raffle", "ROUND_MISMATCH", "a round not opened", seal, lambda w: draw(3)),
    ("draw_raffle", "SEED_MISMATCH", "a legacy seed", lambda s: arrange(s, R, **{
        "raffle:seed": LEGACY_SEED}), lambda w: draw()),
    ("draw_raffle", "ROUND_NOT_CLOSED", "before its end", None, lambda w: draw(now=ENDS - 1)),
    ("draw_raffle", "SNAPSHOT_MISMATCH", "a ticket more than the round's", seal,
     lambda w: draw(tickets_total=6)),
    ("draw_raffle", "SNAPSHOT_MISMATCH", "a ticket less than the round's", seal,
     lambda w: draw(tickets_total=4)),
    ("draw_raffle", "SNAPSHOT_MISMATCH", "a ticket past the last", seal,
     lambda w: picked(lambda p: (p[0], 5, p[2]))),
    ("draw_raffle", "SNAPSHOT_MISMATCH", "another index", seal,
     lambda w: picked(lambda p: (p[0], p[1], 3 - p[2]))),
    ("draw_raffle", ERROR, "corrupt wins total",
     lambda s: arrange(s, R, **{"total:wins": "1.5"}), lambda w: draw()),
    ("draw_raffle", ERROR, "corrupt prize pot", lambda s: arrange(s, R, **{"pot:pool:value": "x"}),
     lambda w: draw()),
    # mark_archived-1
    ("mark_archived", "BAD_ARGUMENT", "id", None,
     lambda w: script("mark_archived", [BOOKS], ["12", "2026-01-01"])),
    ("mark_archived", "BAD_ARGUMENT", "day", None,
     lambda w: script("mark_archived", [BOOKS], ["1-0", "2026-1-1"])),
    # open_round-5
    ("open_round", "BAD_ARGUMENT", "commitment not hex", None,
     lambda w: open_round(commitment="zz")),
    ("open_round", "BAD_ARGUMENT", "no key id", None, lambda w: open_round(key_id="")),
    ("open_round", "BAD_ARGUMENT", "next commitment without its key", None,
     lambda w: open_round(next_commitment="ab")),
    ("open_round", "INSTANCE_NOT_FOUND", "no instance", None, lambda w: open_round("x")),
    # read_round_tickets-2
    ("read_round_tickets", "BAD_ARGUMENT", "count 0", None, lambda w: read_tickets(1, 1, 0, 1)),
    ("read_round_tickets", "BAD_ARGUMENT", "index 0", None, lambda w: read_tickets(1, 0, 5, 1)),
    ("read_round_tickets", ERROR, "more players than the round's", None,
     lambda w: read_tickets(1, 1, 5, 2)),
    # read_wins-2
    ("read_wins", "BAD_ARGUMENT", "limit", None,
     lambda w: script("read_wins", [keys.instance_wins(J), keys.instance_wins_index(J)],
                      ["-1", "i"])),
    # purge_optins-2
    ("purge_optins", "BAD_ARGUMENT", "now", None,
     lambda w: script("purge_optins", [STATE, keys.instance_optins(J)], ["soon"])),
    ("purge_optins", "INSTANCE_NOT_FOUND", "no instance", None,
     lambda w: script("purge_optins", [keys.instance_state("x"), keys.instance_optins("x")],
                      [NOW])),
    ("purge_optins", "INVALID_TRANSITION", "not terminated", None,
     lambda w: script("purge_optins", [STATE, keys.instance_optins(J)], [NOW])),
    # read_meters-3
    ("read_meters", "BAD_ARGUMENT", "mode", None,
     lambda w: script("read_meters", [STATE, LEDGER, METER], ["some"])),
    # record_snapshot-2
    ("record_snapshot", "BAD_ARGUMENT", "hash", None,
     lambda w: script("record_snapshot", [keys.instance_raffle_rounds(R),
                      keys.instance_ledger(R)], [1, "zz", NOW])),
    ("record_snapshot", "ROUND_NOT_DRAWN", "open round", None,
     lambda w: script("record_snapshot", [keys.instance_raffle_rounds(R),
                      keys.instance_ledger(R)], [2, "ab", NOW])),
    # save_checkpoint-1
    ("save_checkpoint", "BAD_ARGUMENT", "id", None,
     lambda w: script("save_checkpoint", [BOOKS], ["x-1", "{}"])),
    ("save_checkpoint", "BAD_ARGUMENT", "no books", None,
     lambda w: script("save_checkpoint", [BOOKS], ["9-0", ""])),
    ("save_checkpoint", "BAD_ARGUMENT", "a decision", None,
     lambda w: script("save_checkpoint", [BOOKS], ["9-0", "{}", "w1", "maybe"])),
    ("save_checkpoint", "BAD_ARGUMENT", "odd pairs", None,
     lambda w: script("save_checkpoint", [BOOKS], ["9-0", "{}", "w1"])),
    # set_optin-5
    ("set_optin", "BAD_ARGUMENT", "opt_in", None,
     lambda w: script("set_optin", OPTIN, ["2", *OPTIN_ARGS[1:]])),
    ("set_optin", "INSTANCE_NOT_FOUND", "no instance", None,
     lambda w: script("set_optin", [keys.instance_state("x"), *OPTIN[1:]], OPTIN_ARGS)),
    ("set_optin", "INSTANCE_TERMINATED", "terminated", None,
     lambda w: script("set_optin", [keys.instance_state(T), *OPTIN[1:]], OPTIN_ARGS)),
    ("set_optin", "INSTANCE_ENDED", "ended", lambda s: arrange(s, J, timestamp_end=NOW),
     lambda w: script("set_optin", OPTIN, OPTIN_ARGS)),
    # set_status-6
    ("set_status", "BAD_ARGUMENT", "action", None,
     lambda w: script("set_status", [STATE, LEDGER, EVENTS, CHANNEL, METER, EPOCH],
                      ["explode", NOW, "t", J, "e", "publish", 100])),
    ("set_status", "INSTANCE_NOT_FOUND", "no instance", None,
     lambda w: script("set_status",
                      [keys.instance_state("x"), LEDGER, EVENTS, CHANNEL, METER, EPOCH],
                      ["pause", NOW, "t", "x", "e", "publish", 100])),
    ("set_status", "INVALID_TRANSITION", "close an active one", None,
     lambda w: script("set_status", [STATE, LEDGER, EVENTS, CHANNEL, METER, EPOCH],
                      ["close", NOW, "t", J, "e", "publish", 100])),
    ("set_status", ERROR, "terminate with a corrupt pot value",
     lambda s: arrange(s, J, **{"pot:main:value": "12x"}),
     lambda w: script("set_status", [STATE, LEDGER, EVENTS, CHANNEL, METER, EPOCH],
                      ["terminate", NOW, "t", J, "e", "publish", 100])),
    ("set_status", "INVALID_TRANSITION", "pause a terminated one", None,
     lambda w: script("set_status", [keys.instance_state(T), keys.instance_ledger(T),
                      keys.instance_events(T), keys.instance_channel(T),
                      keys.instance_meter(T), keys.instance_events_epoch(T)],
                      ["pause", NOW, "t", T, "e", "publish", 100])),
    # trim_ledger-2 (books: checkpoint at 5-0, archived up to 3-0)
    ("trim_ledger", "BAD_ARGUMENT", "until id", books_marks,
     lambda w: script("trim_ledger", [LEDGER, BOOKS], ["3", 10])),
    ("trim_ledger", "BAD_ARGUMENT", "limit 0", books_marks,
     lambda w: script("trim_ledger", [LEDGER, BOOKS], ["3-0", 0])),
    ("trim_ledger", "LEDGER_NOT_ARCHIVED", "past the archived mark", books_marks,
     lambda w: script("trim_ledger", [LEDGER, BOOKS], ["4-0", 10])),
    ("trim_ledger", "LEDGER_NOT_ARCHIVED", "no mark", None,
     lambda w: script("trim_ledger", [LEDGER, BOOKS], ["1-0", 10])),
    ("trim_ledger", "LEDGER_NOT_CHECKPOINTED", "past the checkpoint",
     lambda s: s.client.hset(BOOKS, mapping={"archived_id": "9-0", "checkpoint_id": "5-0"}),
     lambda w: script("trim_ledger", [LEDGER, BOOKS], ["6-0", 10])),
    # take_login_attempt-1
    ("take_login_attempt", "BAD_ARGUMENT", "limit 0", None, lambda w: login(0, 1000)),
    ("take_login_attempt", "BAD_ARGUMENT", "window 0", None, lambda w: login(5, 0)),
    ("take_login_attempt", "BAD_ARGUMENT", "a fractional limit", None, lambda w: login("1.5", 1)),
]  # fmt: skip


@REAL
@pytest.mark.parametrize(
    ("name", "code", "arrangement", "call"),
    [pytest.param(c[0], c[1], c[3], c[4], id=f"{c[0]}-{c[1]}-{c[2]}") for c in CASES],
)
async def test_a_refusal_leaves_the_store_byte_identical(
    store: Store, name: str, code: str, arrangement: Any, call: Any
) -> None:
    w = await world(store)
    if arrangement is not None:
        await arrangement(store)
    before = await dump(store)
    if code == ERROR:
        with pytest.raises(ResponseError):
            await call(w)(store)
    else:
        with pytest.raises(ScriptRefusal) as caught:
            await call(w)(store)
        assert caught.value.code is Code[code], caught.value
    assert await dump(store) == before


@REAL
async def test_the_cases_calls_are_accepted_unchanged(store: Store) -> None:
    """Without their change the cases' calls succeed as the service's do (round 2 sealed at
    its end, drawn over its two players, round 3 opened; a new raffle's round 1 opened; a
    login attempt taken; the drawn round's tickets read), so each case is refused for what it
    changes."""
    await world(store)
    assert await close()(store) is True
    record = await draw()(store)
    assert (record["round"], record["tickets_total"], record["players"]) == (2, "5", 2)
    assert [w["player_id"] for w in record["winners"]] in (["a"], ["b"])
    assert await store.current_rounds([R]) == {R: 3}
    await create(store, definition([pot("pool", "1")], instance_id="r9", **RAFFLE))
    assert await open_round("r9")(store) is True
    assert await login(5, 1000)(store) == [1, 1]
    assert await read_tickets(1, 1, 5, 1)(store) == ["1 op1:brand1:p1 3"]


def codes_of(source: str) -> set[str]:
    found = set(re.findall(r"error_reply\('([A-Z_]+)", source))
    if re.search(r"\bbad\(", source) or "'BAD_ARGUMENT" in source:
        found.add("BAD_ARGUMENT")
    return found


def test_every_refusal_of_every_script_is_covered() -> None:
    covered = {(case[0], case[1]) for case in CASES}
    expected = set()
    for path in sorted(LUA.glob("*.lua")):
        name = path.name.split("-")[0]
        expected |= {(name, code) for code in codes_of(path.read_text())}
    assert expected - covered == set()
    # every script that refuses anything has a case (read_books refuses nothing)
    assert {name for name, _ in expected} == {name for name, _ in covered}
