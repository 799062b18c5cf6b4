"""Raffle integrity (issue 20), each defect as found by an auditor:

1. sales close at the round's end, to the millisecond, by the store's clock too;
2. nobody reading Redis during sales can predict (and so aim tickets at) the winner;
3. draws are on time after a scheduler crash (tests/test_scheduler_leases.py);
4. a round reads the same while it is archived, and reading it writes nothing;
5. exact sampling at any ticket count; an empty round says so (no empty win).

Contract tests run on real Redis and fakeredis (the `store` fixture); API tests through the
Quart test client on an injected services' clock (contributions keep the real one)."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import random
from decimal import Decimal
from typing import Any

import pytest
from quart.testing import QuartClient

from app.core.clock import now_ms
from app.services import Services, draws, lifecycle, raffles
from app.services.admin import accounts as admin_accounts
from app.services.admin import instances as admin_instances
from app.store import Store, keys
from tests.conftest import DEMO, auth, load_demo
from tests.support.http import bet, expect, post, v1_body, view
from tests.test_lua_contribute import BRAND, OP, M, contribute, ledger
from tests.test_lua_draw import draw
from tests.test_lua_draw import raffle as lua_raffle
from tests.test_raffle_rounds import Clock, get_round, raffle, recompute

HOUR = 3_600_000
PK = f"{OP}:{BRAND}"
TICKETS = "/jackpots/instances/raffle/tickets"
ROUNDS = "/jackpots/instances/raffle/rounds"


# -- 1. sales close at the round's end ----------------------------------------------------------
async def test_sales_close_at_the_rounds_end_to_the_millisecond(store: Store) -> None:
    ends = now_ms() + HOUR  # the store's clock is well before the end
    engine = await lua_raffle(store, ["1"], ends=ends)
    before = await contribute(store, engine, player="a", amount=2 * M, now=ends - 1)
    at_end = await contribute(store, engine, player="b", amount=3 * M, now=ends)
    after = await contribute(store, engine, player="a", amount=1 * M, now=ends + 11)
    assert [o.raffle_round for o in (before, at_end, after)] == [1, 2, 2]
    assert await store.round_tickets("jp1", 1) == [(1, f"{PK}:a", 2)]
    assert await store.round_tickets("jp1", 2) == [(1, f"{PK}:b", 3), (2, f"{PK}:a", 1)]
    rounds = [e["round"] for e in await ledger(store) if e["type"] == "contribution"]
    assert rounds == ["1", "2", "2"]
    # The draw of round 1 runs over round 1's tickets only; round 2's stay for its draw.
    record = await draw(store, engine, [0], now=ends)
    assert [w["player_id"] for w in record["winners"]] == ["a"]
    assert record["tickets_total"] == "2"
    record = await draw(store, engine, [0], round_id=2, now=ends)
    assert (record["tickets_total"], record["players"]) == ("4", 2)


async def test_the_store_clock_closes_sales_when_the_callers_clock_is_behind(
    store: Store,
) -> None:
    ends = now_ms() - 5  # ended by the store's clock
    engine = await lua_raffle(store, ["1"], ends=ends)
    # a web process whose clock is a minute behind
    late = await contribute(store, engine, player="a", amount=2 * M, now=ends - 60_000)
    assert (late.raffle_round, late.tickets_awarded) == (2, 2)
    assert await store.round_tickets("jp1", 1) == []
    assert await store.client.hget(keys.instance_tickets("jp1"), f"2|{PK}:a|tickets") == "2"


# -- through the API ----------------------------------------------------------------------------
@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The services' clock, moved by the test (contributions keep the real one)."""
    fake = Clock()
    for module in (admin_accounts, admin_instances, lifecycle, raffles):
        monkeypatch.setattr(module, "now_ms", fake)
    return fake


@pytest.fixture
async def headers(gateway: Services) -> dict[str, str]:
    await load_demo(gateway)
    return auth(gateway, DEMO)


async def test_a_ticket_bought_after_the_end_belongs_to_the_next_round(
    client: QuartClient, headers: dict[str, str], gateway: Services, clock: Clock
) -> None:
    clock.now = now_ms() - HOUR - 50  # round 1 ended 50 ms ago
    await expect(await post(client, "/admin/instances", raffle("late"), headers), 201)
    response = await post(
        client, "/jackpots/contribute", v1_body("late", base_wager=Decimal("3")), headers
    )
    body = await expect(response, 200)
    assert (body["tickets_awarded"], body["raffle_round"]) == (3, 2)
    [mine] = await expect(await client.get(f"{TICKETS}/late/brand/brand1/p1", headers=headers), 200)
    assert (mine["round"], mine["ticket_count"]) == (2, 3)
    clock.now += HOUR
    assert await gateway.lifecycle.run_due() == [("draw", "late@1"), ("archive", "late@1")]
    drawn = await get_round(client, headers, "late", 1)
    assert (drawn["tickets_total"], drawn["winners"], drawn["tickets"]) == ("0", [], [])
    # Round 2 holds the late ticket and is drawn over it.
    clock.now += HOUR
    await gateway.lifecycle.run_due()
    drawn = await get_round(client, headers, "late", 2)
    assert [w["player_id"] for w in drawn["winners"]] == ["p1"]


def redis_dump_texts(values: list[Any]) -> set[str]:
    found: set[str] = set()
    for value in values:
        if isinstance(value, dict):
            found |= redis_dump_texts([*value.keys(), *value.values()])
        elif isinstance(value, list | tuple):
            found |= redis_dump_texts(list(value))
        elif value is not None:
            found.add(str(value))
    return found


async def read_everything(gateway: Services) -> set[str]:
    """Every key and value in Redis, as an insider with full read access sees them."""
    client = gateway.store.client
    texts: set[str] = set()
    for key in await client.keys("*"):
        kind = await client.type(key)
        if kind == "string":
            value: Any = await client.get(key)
        elif kind == "hash":
            value = await client.hgetall(key)
        elif kind == "zset":
            value = await client.zrange(key, 0, -1)
        elif kind == "list":
            value = await client.lrange(key, 0, -1)
        elif kind == "stream":
            value = [fields for _, fields in await client.xrange(key)]
        elif kind == "set":
            value = list(await client.smembers(key))
        else:
            value = None
        texts |= redis_dump_texts([key, value])
    return texts


def predicted_winner(seed: str, instance_id: str, round_id: int, lines: list[Any]) -> int:
    """The first prize's winning index if `seed` were the round's seed, both ways a draw has
    derived its random number: from the seed alone (u = HMAC >> 12, u mod R: how a round
    was drawn before) and from the seed and the snapshot (the verifier in docs/raffles.md)."""
    total = sum(held for _, _, held in lines)
    key = bytes.fromhex(seed)
    old = (
        int.from_bytes(
            hmac.new(key, f"{instance_id}:{round_id}:1".encode(), "sha256").digest()[:8], "big"
        )
        >> 12
    )
    new = draws.draw_winners(seed, instance_id, round_id, draws.snapshot_hash(lines), lines, 1)[0]
    targets = {old % total: "old", new.target: "new"}
    found = set()
    for target in targets:
        acc = 0
        for index, _, held in lines:
            acc += held
            if acc > target:
                found.add(index)
                break
    return max(found)  # the insider's index is the last: any hit aims at it


@pytest.mark.parametrize("redis_url", ["real"], indirect=True)
async def test_an_insider_reading_redis_during_sales_cannot_aim_at_the_prize(
    client: QuartClient, headers: dict[str, str], gateway: Services, clock: Clock
) -> None:
    """Issue 20, 2: with full read access to Redis during sales, an insider looked for the
    seed and bought just enough tickets to win the first prize (4 of 4 rounds with 6 to 19 %
    of the tickets). Now no value in Redis is the seed before the draw reveals it, and the
    random numbers depend on the sealed snapshot, so the insider wins as often as its share
    of the tickets says, no more."""
    rounds, rng = 24, random.Random(2026)
    definition = raffle("aim")
    definition["raffle"]["prizes"] = ["1"]
    await expect(await post(client, "/admin/instances", definition, headers), 201)
    wins, expected, variance = 0, 0.0, 0.0
    for round_id in range(1, rounds + 1):
        for player in ("a", "b", "c", "d", "e"):
            await bet(client, headers, "aim", f"{player}{round_id}", str(rng.randint(5, 40)))
        texts = await read_everything(gateway)  # the insider reads Redis during sales
        lines = await gateway.store.live_round_tickets("aim", round_id)
        total = sum(held for _, _, held in lines)
        candidates = {t for t in texts if len(t) == 64 and all(c in "0123456789abcdef" for c in t)}
        me = f"demo:brand1:insider{round_id}"
        buy = max(1, total // 10)  # no hit: a tenth of the round, to play anyway
        # a candidate whose sha256 is the open round's commitment is its seed: try it first
        state = await gateway.store.client.hgetall(keys.instance_state("aim"))
        committed = [
            c
            for c in candidates
            if hashlib.sha256(bytes.fromhex(c)).hexdigest() == state["raffle:commitment"]
        ]
        for seed in committed + sorted(candidates - set(committed)):
            hit = next(
                (
                    x
                    for x in range(1, total // 4 + 1)
                    if predicted_winner(seed, "aim", round_id, [*lines, (len(lines) + 1, me, x)])
                    == len(lines) + 1
                ),
                None,
            )
            if hit is not None:
                buy = hit
                break
        await bet(client, headers, "aim", f"insider{round_id}", str(buy))
        share = buy / (total + buy)
        expected, variance = expected + share, variance + share * (1 - share)
        clock.now += HOUR
        assert ("draw", f"aim@{round_id}") in await gateway.lifecycle.run_due()
        drawn = await get_round(client, headers, "aim", round_id)
        assert drawn["seed"] not in texts  # nobody could read the seed before the draw
        assert recompute(drawn, "aim", drawn["commitment"])  # and it verifies
        wins += drawn["winners"][0]["player_id"] == f"insider{round_id}"
    assert wins <= expected + 3 * variance**0.5 + 1, (wins, expected)


async def test_a_round_past_2_to_the_52_tickets_is_drawn_fairly(
    client: QuartClient, headers: dict[str, str], gateway: Services, clock: Clock
) -> None:
    """Issue 20, 5: 52-bit randoms modulo a round of 10^16 tickets never reached the second
    half: a player holding 50 % won 0 of 20 rounds. Now a round holds up to 2^53 - 1
    tickets, and each winner is sampled exactly (256-bit randoms, rejection sampling)."""
    definition = raffle("huge", allowed_brands=["demo:brand1"])
    definition["raffle"] |= {"ticket_cost": "0.000001", "prizes": ["1"]}
    await expect(await post(client, "/admin/instances", definition, headers), 201)
    rounds, second = 20, 0
    for round_id in range(1, rounds + 1):
        for player in ("first", "second"):  # 5 x 9 x 10^14: each half of 9 x 10^15 tickets
            for _ in range(5):
                await bet(client, headers, "huge", player, "900000000")
        clock.now += HOUR
        await gateway.lifecycle.run_due()
        drawn = await get_round(client, headers, "huge", round_id)
        assert drawn["tickets_total"] == str(9 * 10**15)
        second += drawn["winners"][0]["player_id"] == "second"
    assert 3 <= second <= 17, second  # binomial(20, 1/2): outside it with p < 0.003


# -- 4. reads while a round is archived ----------------------------------------------------------
async def test_a_round_reads_whole_at_every_moment_of_its_archive(
    client: QuartClient,
    headers: dict[str, str],
    gateway: Services,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 20, 4: read while it was archived, a round answered 500, 404 or 200 with an
    empty ticket list. Here the archive takes one step between any two commands a read
    sends (as a scheduler archiving at the same time may): every read answers the whole
    round."""
    await expect(await post(client, "/admin/instances", raffle("busy"), headers), 201)
    for n in range(12):
        await bet(client, headers, "busy", f"p{n}", str(n % 5 + 1))
    clock.now += HOUR
    await gateway.raffles.draw("busy", "test")
    whole = await get_round(client, headers, "busy", 1)
    assert len(whole["tickets"]) == 12
    store, redis = gateway.store, gateway.store.client
    phase, stepping = "copy", False

    async def one_step() -> None:
        nonlocal phase
        if phase == "archived":
            return
        done, _, _ = await store.archive_round_step(
            "busy",
            1,
            step="copy" if phase in ("copy", "copying") else "clear",
            chunk=2,
            retention_ms=HOUR,
        )
        phase = "clear" if done == "copied" else done

    real = redis.execute_command

    async def archiving_meanwhile(*args: Any, **options: Any) -> Any:
        nonlocal stepping
        if not stepping:
            stepping = True
            try:
                await one_step()
            finally:
                stepping = False
        return await real(*args, **options)

    monkeypatch.setattr(redis, "execute_command", archiving_meanwhile)
    seen = []
    while phase != "archived":
        for path in ("/admin/instances/busy/rounds/1", f"{ROUNDS}/busy/1"):
            response = await client.get(path, headers=headers)
            body = await response.get_json()
            seen.append((response.status_code, len(body.get("tickets", []))))
            if path.startswith("/admin") and response.status_code == 200:
                assert body == whole
        assert len(seen) < 500, "the archive does not advance"
    monkeypatch.setattr(redis, "execute_command", real)
    assert set(seen) == {(200, 12)}, seen
    assert await store.archive_state("busy", 1) == "archived"
    assert await get_round(client, headers, "busy", 1) == whole


async def test_reading_a_round_writes_nothing(
    client: QuartClient, headers: dict[str, str], gateway: Services, clock: Clock
) -> None:
    """Issue 20, 4: a read route wrote (recorded a missing snapshot hash). A round drawn
    before this change by a process that stopped before recording its snapshot hash (a
    version 1 record without one) now reads with the hash computed, and nothing is
    written."""
    await expect(await post(client, "/admin/instances", raffle("quiet"), headers), 201)
    for player in ("a", "b"):
        await bet(client, headers, "quiet", player, "3")
    clock.now += HOUR
    await gateway.raffles.draw("quiet", "test")
    rounds, redis = keys.instance_raffle_rounds("quiet"), gateway.store.client
    record = json.loads(await redis.hget(rounds, "1"))
    for name in ("snapshot_hash", "snapshot_version"):
        del record[name]
    await redis.hset(rounds, "1", json.dumps(record))
    await redis.hdel(rounds, "1|snapshot")
    digest = draws.snapshot_hash(await gateway.store.live_round_tickets("quiet", 1))
    before = await read_everything(gateway)
    for path in ("/admin/instances/quiet/rounds/1", f"{ROUNDS}/quiet/1"):
        published = await expect(await client.get(path, headers=headers), 200)
        assert published["snapshot_hash"] == digest
    assert await read_everything(gateway) == before


# -- 5. rejected prizes, paused raffles ---------------------------------------------------------
async def test_a_rejected_operator_funded_prize_is_spent_by_the_next_draw(
    client: QuartClient, headers: dict[str, str], gateway: Services, clock: Clock
) -> None:
    """Issue 20, 5: rejecting a withheld, operator-funded raffle prize moved it into the prize
    pot's reserve, which draws never spent, while later shortfalls were still charged to the
    operator. Draws now pay from the pot's value, then its reserve, then the operator."""
    definition = raffle("held-raffle", auto_payout_limit="50")
    definition["raffle"]["prizes"] = ["100"]
    await expect(await post(client, "/admin/instances", definition, headers), 201)
    await bet(client, headers, "held-raffle", "a", "10")  # 1 % of 10 EUR: 0.05 to the pot
    clock.now += HOUR
    await gateway.lifecycle.run_due()
    [won] = (await get_round(client, headers, "held-raffle", 1))["winners"]
    assert (won["win_amount"], won["shortfall"], won["win_withheld"]) == (
        "100000000",
        "99950000",
        True,
    )
    path = f"/admin/instances/held-raffle/wins/{won['win_id']}/reject"
    await expect(await post(client, path, {"reason": "fraud"}, headers), 200)
    books = await view(client, headers, "held-raffle")
    assert books["pots"]["pool"]["reserve"] == 100
    funded = books["totals"]["seed_funding"]
    await bet(client, headers, "held-raffle", "b", "10")
    clock.now += HOUR
    await gateway.lifecycle.run_due()
    [won] = (await get_round(client, headers, "held-raffle", 2))["winners"]
    # 0.05 from the pot, 99.95 from the reserve: nothing more from the operator
    assert (won["from_pot"], won["from_reserve"], won["shortfall"]) == ("50000", "99950000", "0")
    books = await view(client, headers, "held-raffle")
    assert books["totals"]["seed_funding"] == funded
    assert books["pots"]["pool"]["reserve"] == Decimal("0.05")
    report = await expect(
        await client.get("/admin/instances/held-raffle/reconciliation", headers=headers), 200
    )
    assert report["balanced"] is True, report


async def test_a_paused_raffle_draws_once_it_is_resumed(
    client: QuartClient, headers: dict[str, str], gateway: Services, clock: Clock
) -> None:
    """Issue 20, 5: a paused raffle kept drawing. A pause now holds the draw too: the
    scheduler tries again every minute, an admin's draw is refused, and the round is drawn
    once the raffle is resumed."""
    await expect(await post(client, "/admin/instances", raffle("paused"), headers), 201)
    await bet(client, headers, "paused", "a", "3")
    await expect(await client.post("/admin/instances/paused/pause", headers=headers), 200)
    clock.now += HOUR
    assert await gateway.lifecycle.run_due() == [("draw", "paused@1")]
    assert (await get_round(client, headers, "paused", 1))["status"] == "open"
    items = dict(await gateway.store.scheduled())
    assert items["draw|paused@1"] == clock.now + raffles.PAUSED_RETRY_MS
    await expect(
        await client.post("/admin/instances/paused/draw", headers=headers),
        409,
        "INSTANCE_NOT_ACTIVE",
    )
    await expect(await client.post("/admin/instances/paused/resume", headers=headers), 200)
    clock.now += raffles.PAUSED_RETRY_MS
    assert await gateway.lifecycle.run_due() == [("draw", "paused@1"), ("archive", "paused@1")]
    drawn = await get_round(client, headers, "paused", 1)
    assert [w["player_id"] for w in drawn["winners"]] == ["a"]


async def test_a_rotated_draw_key_still_draws_the_rounds_committed_under_it(
    client: QuartClient, headers: dict[str, str], gateway: Services, clock: Clock
) -> None:
    """DRAW_KEY rotated, the old key in DRAW_KEY_PREVIOUS: rounds committed under the old key
    (the open round and the next, published with it) draw with it; later rounds use the new
    one. Without the old key the draw refuses rather than break its commitment."""
    await expect(await post(client, "/admin/instances", raffle("rot"), headers), 201)
    old_key = gateway.settings.draw_key
    new_key = "a-new-draw-key-after-rotation-0123456789"
    rotated = Services.create(
        dataclasses.replace(gateway.settings, draw_key=new_key, draw_keys_previous=(old_key,))
    )
    forgetful = Services.create(dataclasses.replace(gateway.settings, draw_key=new_key))
    try:
        for round_id in (1, 2, 3):
            await bet(client, headers, "rot", "a", "2")
            clock.now += HOUR
            if round_id == 1:
                with pytest.raises(draws.UnknownDrawKey):
                    await forgetful.raffles.draw("rot", "test")
            await rotated.raffles.draw("rot", "test")
            drawn = await rotated.raffles.round("rot", round_id)  # a process with both keys
            key = old_key if round_id < 3 else new_key
            assert drawn["key_id"] == draws.key_id(key)
            assert drawn["seed"] == draws.derive_seed(key, "rot", round_id)
            assert recompute(drawn, "rot", drawn["commitment"]) == ["demo:brand1:a"]
    finally:
        await rotated.close()
        await forgetful.close()


@pytest.mark.parametrize(
    "weights", [[1, 2, 3, 4, 10], [2**52, 2**52 - 1, 2**50], [2**53 - 4, 1, 1, 1]]
)
def test_the_winners_sampler_is_fair_at_any_ticket_count(weights: list[int]) -> None:
    """Chi-square over 2,000 draws of two prizes with fresh seeds (app/services/draws.py):
    the first winner in proportion to tickets, the second in proportion among the rest, at
    small counts and at the largest a round holds."""
    lines = [(i + 1, f"op:b:p{i}", held) for i, held in enumerate(weights)]
    total, n, trials = sum(weights), len(weights), 2000
    rng = random.Random(20)
    first, second = [0] * n, [0] * n
    for trial in range(trials):
        seed = f"{rng.getrandbits(256):064x}"
        a, b = draws.draw_winners(seed, "chi", 1, f"{trial:064x}", lines, 2)
        assert a.index != b.index
        first[a.index - 1] += 1
        second[b.index - 1] += 1
    p_first = [w / total for w in weights]
    p_second = [
        sum(weights[x] / total * weights[y] / (total - weights[x]) for x in range(n) if x != y)
        for y in range(n)
    ]
    for observed, probabilities in [(first, p_first), (second, p_second)]:
        cells = [(o, trials * p) for o, p in zip(observed, probabilities, strict=True)]
        kept = [(o, e) for o, e in cells if e >= 5]  # cells too rare to expect: asserted 0
        assert all(o <= 3 for o, e in cells if e < 5), cells
        chi2 = sum((o - e) ** 2 / e for o, e in kept)
        assert chi2 < 18.47, (observed, chi2)  # df <= 4, p = 0.001
