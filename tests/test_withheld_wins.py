"""Withheld wins: listed per operator, approved (paid) or rejected (the amount back to the pot's
reserve) exactly once, with the conservation law exact and an event for listeners."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import pytest
from quart.testing import QuartClient

from app.core.security import Principal
from app.schemas.events import MASKED_PLAYER, EventType, decode_event
from app.services import Services
from app.services.events.messages import Message
from app.store import keys
from app.store.events import StoredEvent
from tests.conftest import CLI, auth
from tests.support.definitions import hit_rate, instance, pot
from tests.support.http import contribution, create_instance, expect, post, view
from tests.support.money import assert_conserved

RIVAL_ADMIN = Principal("rival-admin", "rival", ("admin",))
FAKE_ONLY = pytest.mark.parametrize("redis_url", ["fake"], indirect=True)
# Every stake of 1.00 wins `big` (seed 5 + 0.7 x 0.8): above the auto-payout limit of 1.
POTS = [pot("big", "0.7", hit_rate(1), seed="5", reserve_share="0.2")]


async def withheld_win(client: QuartClient, headers: dict[str, str], player: str = "p1") -> str:
    response = await post(client, "/jackpots/contribute", contribution("held", player), headers)
    body = await expect(response, 200)
    assert body["win_withheld"] is True
    return str(response.headers["X-Contribution-Id"])


@pytest.fixture
async def held(client: QuartClient, headers: dict[str, str]) -> str:
    definition = instance("held", pots=POTS, auto_payout_limit="1")
    await create_instance(client, headers, definition)
    return "held"


async def decide(
    client: QuartClient, headers: dict[str, str], win_id: str, verb: str, reason: str = "checked"
) -> Any:
    path = f"/admin/instances/held/wins/{win_id}/{verb}"
    return await post(client, path, {"reason": reason}, headers)


async def listed(client: QuartClient, headers: dict[str, str], **query: Any) -> Any:
    response = await client.get("/admin/wins/withheld", headers=headers, query_string=query)
    return await expect(response, 200)


async def reconciled(client: QuartClient, headers: dict[str, str]) -> None:
    response = await client.get("/admin/instances/held/reconciliation", headers=headers)
    report = await expect(response, 200)
    assert report["balanced"] and report["differences"] == [], report


async def decision_events(gateway: Services) -> list[dict[str, Any]]:
    entries = await gateway.store.client.xrange(keys.instance_events("held"))
    events = [decode_event(fields["payload"]) for _, fields in entries]
    return [e for e in events if e["event_type"] is EventType.WIN_DECISION]


async def test_withheld_wins_are_listed_oldest_first_and_paged(
    client: QuartClient, headers: dict[str, str], held: str
) -> None:
    wins = []
    for n in range(3):
        wins.append(await withheld_win(client, headers, f"p{n}"))
        await asyncio.sleep(0.002)  # oldest first is by the millisecond (ties: by win id)
    page = await listed(client, headers)
    assert page["total"] == 3
    assert [w["win_id"] for w in page["wins"]] == wins
    first = page["wins"][0]
    assert {k: first[k] for k in ("instance_id", "win_pot_id", "operator_id", "player_id")} == {
        "instance_id": "held",
        "win_pot_id": "big",
        "operator_id": "demo",
        "player_id": "p0",
    }
    assert first["win_amount"] == Decimal("5.56")  # seed 5 + 0.7 x (1 - 0.2)
    assert (first["win_withheld"], first["decision"]) == (True, None)
    page = await listed(client, headers, limit=1, offset=1, instance_id="held")
    assert (page["total"], [w["win_id"] for w in page["wins"]]) == (3, wins[1:2])


async def test_approval_pays_the_win_once_and_tells_listeners(
    client: QuartClient, gateway: Services, headers: dict[str, str], held: str
) -> None:
    win_id = await withheld_win(client, headers)
    before = await view(client, headers, "held")
    body = await expect(await decide(client, headers, win_id, "approve", "kyc done"), 200)
    assert (body["win_withheld"], body["decision"], body["decided_by"]) == (
        False,
        "approved",
        "demo-service",
    )
    assert body["decision_reason"] == "kyc done"
    # No money moves: the win was already counted; the winners view now shows it paid.
    assert await view(client, headers, "held") == before
    response = await client.get("/jackpots/instances/held/winners", headers=headers)
    [winner] = await expect(response, 200)
    assert (winner["win_id"], winner["win_withheld"]) == (win_id, False)
    assert (await listed(client, headers))["total"] == 0
    [event] = await decision_events(gateway)
    assert event["data"]["decision"] == "approved"
    assert event["data"]["win_id"] == win_id
    assert event["data"]["win_amount"] == "5.56"
    # Decided once.
    await expect(await decide(client, headers, win_id, "reject"), 409, "WIN_ALREADY_DECIDED")
    await expect(await decide(client, headers, win_id, "approve"), 409, "WIN_ALREADY_DECIDED")
    await reconciled(client, headers)


async def test_rejection_returns_the_amount_to_the_pot_reserve(
    client: QuartClient, gateway: Services, headers: dict[str, str], held: str
) -> None:
    win_id = await withheld_win(client, headers)
    before = await view(client, headers, "held")
    body = await expect(await decide(client, headers, win_id, "reject", "fraud"), 200)
    assert (body["win_withheld"], body["decision"], body["decision_reason"]) == (
        True,
        "rejected",
        "fraud",
    )
    after = await view(client, headers, "held")
    amount = Decimal("5.56")
    assert after["totals"]["wins"] == before["totals"]["wins"] - amount
    assert after["pots"]["big"]["reserve"] == before["pots"]["big"]["reserve"] + amount
    assert after["pots"]["big"]["current_value"] == before["pots"]["big"]["current_value"]
    assert_conserved(after)
    await reconciled(client, headers)
    [event] = await decision_events(gateway)
    assert (event["data"]["decision"], event["data"]["reason"]) == ("rejected", "fraud")
    ledger = await gateway.store.client.xrange(keys.instance_ledger("held"))
    assert [f for _, f in ledger if f["type"].startswith("win_")] == [
        {
            "type": "win_rejected",
            "id": win_id,
            "pot": "big",
            "amount": "5560000",
            "reserve": "5560000",
            "returned": "0",
            "by": "demo-service",
            "reason": "fraud",
            "ts": str(body["decided_at"]),
        }
    ]
    # The meter report no longer counts it as won.
    meters = await client.get("/admin/instances/held/meters", headers=headers)
    [pot_meters] = (await expect(meters, 200))["pots"]
    assert pot_meters["cumulative"]["wins"] == 0
    assert pot_meters["last_awards"][0]["decision"] == "rejected"


async def test_refusals(
    client: QuartClient, gateway: Services, headers: dict[str, str], held: str
) -> None:
    win_id = await withheld_win(client, headers)
    await expect(await decide(client, headers, "nope", "approve"), 404, "WIN_NOT_FOUND")
    # Another operator's admin neither sees nor decides it.
    rival = auth(gateway, RIVAL_ADMIN)
    assert (await listed(client, rival))["total"] == 0
    await expect(await decide(client, rival, win_id, "approve"), 404, "INSTANCE_NOT_FOUND")
    # A win under the limit was paid automatically.
    await create_instance(client, headers, instance("paid", pots=POTS))
    response = await post(client, "/jackpots/contribute", contribution("paid", "p1"), headers)
    paid_id = response.headers["X-Contribution-Id"]
    path = f"/admin/instances/paid/wins/{paid_id}/approve"
    await expect(await post(client, path, {}, headers), 409, "WIN_NOT_WITHHELD")
    # A rejection needs a reason.
    path = f"/admin/instances/held/wins/{win_id}/reject"
    await expect(await post(client, path, {}, headers), 400, "VALIDATION_ERROR")
    assert (await listed(client, headers))["total"] == 1


@pytest.mark.real_redis
@pytest.mark.parametrize("redis_url", ["real"], indirect=True)
async def test_concurrent_decisions_apply_exactly_one(
    client: QuartClient, gateway: Services, headers: dict[str, str], held: str
) -> None:
    wins = [await withheld_win(client, headers, f"p{n}") for n in range(5)]
    before = await view(client, headers, "held")
    attempts = [
        decide(client, headers, win_id, verb)
        for win_id in wins
        for verb in ["approve", "reject"] * 5
    ]
    responses = await asyncio.gather(*attempts)
    by_win: dict[str, list[int]] = {}
    for (win_id, _), response in zip(
        [(w, v) for w in wins for v in ["approve", "reject"] * 5], responses, strict=True
    ):
        by_win.setdefault(win_id, []).append(response.status_code)
    assert all(sorted(codes) == [200] + [409] * 9 for codes in by_win.values())
    ledger = await gateway.store.client.xrange(keys.instance_ledger("held"))
    decisions = [f for _, f in ledger if f["type"] in ("win_approved", "win_rejected")]
    assert sorted(f["id"] for f in decisions) == sorted(wins)
    rejected = sum(
        Decimal(f["amount"]) / 1_000_000 for f in decisions if f["type"] == "win_rejected"
    )
    after = await view(client, headers, "held")
    assert after["totals"]["wins"] == before["totals"]["wins"] - rejected
    assert_conserved(after)
    await reconciled(client, headers)
    assert len(await decision_events(gateway)) == len(wins)


async def test_cli_lists_approves_and_rejects(
    client: QuartClient, headers: dict[str, str], held: str, cli: CLI
) -> None:
    first, second = await withheld_win(client, headers), await withheld_win(client, headers)
    code, out, _ = await cli("withheld-wins", "--operator", "demo")
    assert code == 0
    assert [json.loads(line)["win_id"] for line in out.splitlines()] == [first, second]
    args = ["--instance", "held", "--win", first]
    assert await cli("approve-win", *args) == (0, f"approved {first}: 5.56\n", "")
    assert (await cli("reject-win", "--instance", "held", "--win", second))[0] == 1
    args = ["--instance", "held", "--win", second, "--reason", "duplicate account"]
    assert await cli("reject-win", *args) == (0, f"rejected {second}: 5.56\n", "")
    assert await cli("reject-win", *args) == (1, "", "error: The win was already decided.\n")
    assert (await cli("withheld-wins", "--operator", "demo"))[1] == ""
    audit = await client.get("/admin/audit", headers=headers, query_string={"count": 1000})
    actions = [(e["by"], e["action"]) for e in (await expect(audit, 200))["entries"]]
    assert actions[-2:] == [("cli", "win.approve"), ("cli", "win.reject")]


async def test_other_operators_listening_see_the_decision_masked(
    client: QuartClient, gateway: Services, headers: dict[str, str], held: str
) -> None:
    win_id = await withheld_win(client, headers)
    await expect(await decide(client, headers, win_id, "reject", "fraud"), 200)
    [(stream_id, entry)] = [
        (i, f)
        for i, f in await gateway.store.client.xrange(keys.instance_events("held"))
        if f["event_type"] == "WinDecisionEvent"
    ]
    stored = StoredEvent("held", stream_id, entry["event_type"], entry["payload"])
    message = Message.from_stored(stored, "e")
    assert message is not None
    own = json.loads(message.text_for("demo"))["data"]
    other = json.loads(message.text_for("rival"))["data"]
    assert (own["player_id"], own["reason"]) == ("p1", "fraud")
    assert (other["player_id"], other["reason"]) == (MASKED_PLAYER, "")
    assert other["win_amount"] == own["win_amount"] == "5.56"
