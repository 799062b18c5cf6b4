"""Withheld wins are decidable at every amount the engine accepts, and a decision writes all of
its money or nothing (issue 25, defects 1 to 4 and the terminated-instance part of 8).

Each test arranges a long-lived instance's history in the ledger and the state together (as the
scripts write them), so the reconciliation must stay balanced through every decision."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from quart.testing import QuartClient

from app.services import Services, raffles
from app.store import keys
from tests.support.definitions import hit_rate, instance, pot
from tests.support.http import bet, contribution, create_instance, expect, post, view
from tests.support.snapshots import snapshot

INT64_MAX = 2**63 - 1
TWO53 = 2**53
M = 1_000_000
# Every contribution of 1.00 EUR wins the pot; every win is withheld (limit 0).
HELD = [pot("main", "0.7", hit_rate(1), seed="1")]


async def state(gateway: Services, instance_id: str) -> dict[str, str]:
    return dict(await gateway.store.client.hgetall(keys.instance_state(instance_id)))


async def add_history(gateway: Services, instance_id: str, **amounts: int) -> None:
    """Money a long-lived instance took in, written to the ledger and the state as the scripts
    write them: `value` boosted into the main pot's value, `reserve` into its reserve, `won`
    boosted into its value and then won (so it is counted in total:wins)."""
    client = gateway.store.client
    ledger = keys.instance_ledger(instance_id)
    s = await state(gateway, instance_id)
    value, reserve, won = (amounts.get(name, 0) for name in ("value", "reserve", "won"))
    for target, amount in (("value", value + won), ("reserve", reserve)):
        if amount:
            to_value, to_reserve = (amount, 0) if target == "value" else (0, amount)
            await client.xadd(
                ledger,
                {"type": "boost", "id": f"history-{target}", "pot": "main", "target": target,
                 "amount": amount, "value": to_value, "reserve": to_reserve, "by": "t", "ts": 1},
            )  # fmt: skip
    if won:
        await client.xadd(
            ledger,
            {"type": "win", "id": "history-win", "pot": "main", "amount": won, "seed": 0,
             "from_reserve": 0, "deficit": 0, "withheld": "0", "drop_at": "", "random": "",
             "operator": "demo", "brand": "brand1", "player": "p", "event_id": "e", "ts": 2},
        )  # fmt: skip
    await client.hset(
        keys.instance_state(instance_id),
        mapping={
            "pot:main:value": str(int(s["pot:main:value"]) + value),
            "pot:main:reserve": str(int(s["pot:main:reserve"]) + reserve),
            "total:boosts": str(int(s.get("total:boosts") or 0) + value + reserve + won),
            "total:wins": str(int(s["total:wins"]) + won),
        },
    )


async def reconciled(client: QuartClient, headers: dict[str, str], instance_id: str) -> Any:
    response = await client.get(f"/admin/instances/{instance_id}/reconciliation", headers=headers)
    report = await expect(response, 200)
    assert report["balanced"] is True and report["differences"] == [], report
    return report


async def win(client: QuartClient, headers: dict[str, str], instance_id: str) -> str:
    response = await post(client, "/jackpots/contribute", contribution(instance_id, "p1"), headers)
    body = await expect(response, 200)
    assert body["win_withheld"] is True, body
    return str(response.headers["X-Contribution-Id"])


async def decide(
    client: QuartClient, headers: dict[str, str], instance_id: str, win_id: str, verb: str
) -> Any:
    path = f"/admin/instances/{instance_id}/wins/{win_id}/{verb}"
    return await post(client, path, {"reason": "checked"}, headers)


def conserved(s: dict[str, str], pot_ids: list[str]) -> None:
    """contributions + seed funding + boosts = pots + reserves + house + wins + returned."""
    total = {name: int(s.get(f"total:{name}") or 0) for name in
             ("contributions", "seed_funding", "boosts", "house", "wins", "returned")}  # fmt: skip
    held = sum(int(s[f"pot:{p}:value"]) + int(s[f"pot:{p}:reserve"]) for p in pot_ids)
    assert total["contributions"] + total["seed_funding"] + total["boosts"] == (
        held + total["house"] + total["wins"] + total["returned"]
    ), s


async def test_a_rejection_past_what_a_reserve_holds_is_whole(
    client: QuartClient, headers: dict[str, str], gateway: Services
) -> None:
    """Defect 1: the reserve is full (2^63 - 1 less 10 micro-units after the reseed): the
    rejection still moves the whole win, the part the reserve cannot hold to the operator."""
    await create_instance(client, headers, instance("full", pots=HELD, auto_payout_limit="0"))
    # after the win the reseed takes its 1.00 from the reserve: then 10 micro-units of room
    await add_history(gateway, "full", reserve=INT64_MAX - 10 + M)
    win_id = await win(client, headers, "full")
    before = await state(gateway, "full")
    amount = int((await gateway.store.win("full", win_id)).win_amount)  # type: ignore[union-attr]
    assert int(before["pot:main:reserve"]) == INT64_MAX - 10
    body = await expect(await decide(client, headers, "full", win_id, "reject"), 200)
    assert body["decision"] == "rejected"
    after = await state(gateway, "full")
    assert after["pot:main:reserve"] == str(INT64_MAX)
    assert after["total:wins"] == str(int(before["total:wins"]) - amount)
    assert after["total:returned"] == str(amount - 10)
    conserved(after, ["main"])
    [entry] = [
        f
        for _, f in await gateway.store.client.xrange(keys.instance_ledger("full"))
        if f["type"] == "win_rejected"
    ]
    assert (entry["amount"], entry["reserve"], entry["returned"]) == (
        str(amount),
        "10",
        str(amount - 10),
    )
    await reconciled(client, headers, "full")


async def test_a_rejection_with_the_wins_total_past_2_to_the_63(
    client: QuartClient, headers: dict[str, str], gateway: Services
) -> None:
    """Defect 2: total:wins is a lifetime total of any size; a rejection takes the amount out
    of it exactly, and the reconciliation agrees."""
    await create_instance(client, headers, instance("wins", pots=HELD, auto_payout_limit="0"))
    await add_history(gateway, "wins", won=INT64_MAX + 5)
    win_id = await win(client, headers, "wins")
    before = await state(gateway, "wins")
    assert int(before["total:wins"]) > INT64_MAX
    await expect(await decide(client, headers, "wins", win_id, "reject"), 200)
    after = await state(gateway, "wins")
    assert after["total:wins"] == str(INT64_MAX + 5)
    assert int(after["pot:main:reserve"]) == int(before["pot:main:reserve"]) + 1_700_000
    conserved(after, ["main"])
    await reconciled(client, headers, "wins")


@pytest.mark.parametrize("verb", ["approve", "reject"])
async def test_a_win_above_2_to_the_53_is_decided(
    client: QuartClient, headers: dict[str, str], gateway: Services, verb: str
) -> None:
    """Defect 4: a withheld win of 10,000,000,001 EUR (past 2^53 micro-units) is decided like
    any other, and leaves the withheld list."""
    await create_instance(client, headers, instance("huge", pots=HELD, auto_payout_limit="0"))
    await add_history(gateway, "huge", value=10_000_000_001 * M - M - 700_000)
    win_id = await win(client, headers, "huge")
    record = await gateway.store.win("huge", win_id)
    assert record is not None and record.win_amount == 10_000_000_001 * M > TWO53
    body = await expect(await decide(client, headers, "huge", win_id, verb), 200)
    assert body["win_amount"] == Decimal("10000000001")
    response = await client.get("/admin/wins/withheld", headers=headers)
    assert (await expect(response, 200))["total"] == 0
    after = await state(gateway, "huge")
    if verb == "reject":
        assert after["pot:main:reserve"] == str(10_000_000_001 * M)
    conserved(after, ["main"])
    await reconciled(client, headers, "huge")


async def test_a_rejected_prize_of_a_raffle_without_pots_returns_to_the_operator(
    client: QuartClient, headers: dict[str, str], gateway: Services, monkeypatch: Any
) -> None:
    """Defect 3: a pot-less raffle's prizes are operator money; a rejected one goes back to
    the operator (total:returned), in one step with its ledger entry."""
    definition = instance(
        "nopots",
        jackpot_type="Raffle",
        contribution_type={"Percentage": "0.01"},
        house_share="1",
        pots=[],
        auto_payout_limit="1",
        raffle={"ticket_cost": "1.00", "ticket_basis": "base_wager", "prizes": ["5"],
                "draw": {"every": "1h"}},
    )  # fmt: skip
    await create_instance(client, headers, definition)
    await bet(client, headers, "nopots", "a", "3")
    monkeypatch.setattr(raffles, "now_ms", lambda: 2**45)
    record = await gateway.raffles.draw("nopots", "test")
    assert record is not None
    [winner] = record["winners"]
    assert winner["win_withheld"] is True
    body = await expect(await decide(client, headers, "nopots", winner["win_id"], "reject"), 200)
    assert body["decision"] == "rejected"
    after = await state(gateway, "nopots")
    assert (after["total:wins"], after["total:returned"]) == ("0", str(5 * M))
    conserved(after, [])
    shown = await view(client, headers, "nopots")
    assert shown["totals"]["returned"] == 5
    await reconciled(client, headers, "nopots")


async def test_a_refused_decision_writes_nothing(
    client: QuartClient, headers: dict[str, str], gateway: Services
) -> None:
    await create_instance(client, headers, instance("twice", pots=HELD, auto_payout_limit="0"))
    win_id = await win(client, headers, "twice")
    await expect(await decide(client, headers, "twice", win_id, "reject"), 200)
    before = await snapshot(gateway.store, "twice")
    for verb in ("approve", "reject"):
        response = await decide(client, headers, "twice", win_id, verb)
        await expect(response, 409, "WIN_ALREADY_DECIDED")
    assert await snapshot(gateway.store, "twice") == before


async def test_a_win_rejected_after_termination_is_returned_to_the_operator(
    client: QuartClient, headers: dict[str, str], gateway: Services
) -> None:
    """Defect 8: a terminated instance's pots take nothing more (no contribution, no boost);
    a withheld win rejected after it ends goes to the operator (total:returned), not to a
    reserve nothing will spend."""
    await create_instance(client, headers, instance("ended", pots=HELD, auto_payout_limit="0"))
    win_id = await win(client, headers, "ended")
    await expect(await client.post("/admin/instances/ended/terminate", headers=headers), 200)
    before = await state(gateway, "ended")
    amount = int((await gateway.store.win("ended", win_id)).win_amount)  # type: ignore[union-attr]
    await expect(await decide(client, headers, "ended", win_id, "reject"), 200)
    after = await state(gateway, "ended")
    assert after["pot:main:reserve"] == before["pot:main:reserve"] == "0"  # closed
    assert int(after["total:returned"]) == int(before["total:returned"]) + amount
    conserved(after, ["main"])
    await reconciled(client, headers, "ended")


async def test_terminating_closes_the_books_to_the_operator(
    client: QuartClient, headers: dict[str, str], gateway: Services
) -> None:
    """Defect 8: at termination every pot value and reserve still held goes back to the
    operator (total:returned) in one 'close' ledger entry; deficits stay as the record of the
    operator's funding; the books stay balanced."""
    pots = [pot("main", "0.5", hit_rate(10**12), seed="3", reserve_share="0.2"),
            pot("side", "0.2", hit_rate(10**12), seed="1")]  # fmt: skip
    await create_instance(client, headers, instance("closing", pots=pots))
    for player in ("a", "b"):
        body = contribution("closing", player)
        await expect(await post(client, "/jackpots/contribute", body, headers), 200)
    before = await state(gateway, "closing")
    held = {
        name: int(before[name])
        for name in before
        if name.startswith("pot:") and name.endswith((":value", ":reserve"))
    }
    await expect(await client.post("/admin/instances/closing/terminate", headers=headers), 200)
    after = await state(gateway, "closing")
    assert {name: after[name] for name in held} == dict.fromkeys(held, "0")
    assert after["total:returned"] == str(sum(held.values()))
    assert after["pot:main:deficit"] == before["pot:main:deficit"]
    conserved(after, ["main", "side"])
    entries = await gateway.store.client.xrange(keys.instance_ledger("closing"))
    [close] = [f for _, f in entries if f["type"] == "close"]
    assert close["amount"] == str(sum(held.values()))
    moved = {name: amount for name, amount in held.items() if amount}  # only what pots held
    assert {k: int(v) for k, v in close.items() if k.startswith("pot:")} == moved
    await reconciled(client, headers, "closing")
    # Terminating again changes nothing; nothing can be added any more.
    frozen = await snapshot(gateway.store, "closing")
    await expect(await client.post("/admin/instances/closing/terminate", headers=headers), 200)
    boost = {"pot_id": "main", "amount": "1"}
    path = "/admin/instances/closing/boosts"
    await expect(await post(client, path, boost, headers), 409, "INSTANCE_TERMINATED")
    assert await snapshot(gateway.store, "closing") == frozen


async def test_a_terminated_raffle_pays_its_last_round_from_its_pot_then_closes(
    client: QuartClient, headers: dict[str, str], gateway: Services, monkeypatch: Any
) -> None:
    definition = instance(
        "lastdraw",
        jackpot_type="Raffle",
        contribution_type={"Percentage": "0.01"},
        house_share="0.5",
        pots=[pot("pool", "0.5", seed="1")],
        raffle={"ticket_cost": "1.00", "ticket_basis": "base_wager", "prizes": [{"share": "0.5"}],
                "draw": {"every": "1h"}},
    )  # fmt: skip
    await create_instance(client, headers, definition)
    await bet(client, headers, "lastdraw", "a", "100")  # 1.00 EUR: 0.50 to the pool
    await expect(await client.post("/admin/instances/lastdraw/terminate", headers=headers), 200)
    kept = await state(gateway, "lastdraw")
    assert kept["pot:pool:value"] == str(M + 500_000)  # kept for the round's draw
    assert "total:returned" not in kept or kept["total:returned"] == "0"
    monkeypatch.setattr(raffles, "now_ms", lambda: 2**45)
    record = await gateway.raffles.draw("lastdraw", "test")
    assert record is not None
    [winner] = record["winners"]
    assert int(winner["win_amount"]) == 750_000  # half the pot at the draw
    after = await state(gateway, "lastdraw")
    assert (after["pot:pool:value"], after["total:returned"]) == ("0", "750000")
    conserved(after, ["pool"])
    await reconciled(client, headers, "lastdraw")
