"""Raffle rounds end to end on an injected clock: commitments, draws by hand (admin endpoint
and CLI) and by the scheduler, recurring rounds, catch-up, exactly-once draws, and a draw
recomputed from its published data alone."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from quart.testing import QuartClient

from app.cli import main
from app.core.clock import now_ms
from app.services import Services, draws, lifecycle, raffles
from app.services.admin import accounts as admin_accounts
from app.services.admin import instances as admin_instances
from tests.conftest import DEMO, DRAW_KEY, SECRET, auth, load_demo
from tests.support.definitions import instance, pot
from tests.support.http import bet, expect, post, put_source, view

HOUR = 3_600_000


class Clock:
    def __init__(self) -> None:
        self.now = now_ms()

    def __call__(self) -> int:
        return self.now


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


@pytest.fixture
async def second(gateway: Services) -> AsyncIterator[Services]:
    """Another scheduler process's services on the same store (started by mistake)."""
    other = Services.create(gateway.settings)
    yield other
    await other.close()


def raffle(instance_id: str, **fields: Any) -> dict[str, Any]:
    """Hourly rounds; 1 ticket per whole EUR of base wager; half of each contribution
    (1 % of the wager) to the prize pot."""
    definition: dict[str, Any] = {
        "jackpot_type": "Raffle",
        "contribution_type": {"Percentage": "0.01"},
        "house_share": "0.5",
        "pots": [pot("pool", "0.5")],
        "raffle": {
            "ticket_cost": "1.00",
            "ticket_basis": "base_wager",
            "prizes": ["1", {"share": "0.5"}, "2"],
            "draw": {"every": "1h"},
        },
    }
    return instance(instance_id, **{**definition, **fields})


async def create(client: QuartClient, headers: dict[str, str], definition: dict[str, Any]) -> None:
    await expect(await post(client, "/admin/instances", definition, headers), 201)


async def draw(client: QuartClient, headers: dict[str, str], instance_id: str) -> Any:
    return await client.post(f"/admin/instances/{instance_id}/draw", headers=headers)


async def get_round(client: QuartClient, headers: dict[str, str], instance_id: str, n: int) -> Any:
    return await expect(
        await client.get(f"/admin/instances/{instance_id}/rounds/{n}", headers=headers), 200
    )


async def admin_view(client: QuartClient, headers: dict[str, str], instance_id: str) -> Any:
    return await expect(await client.get(f"/admin/instances/{instance_id}", headers=headers), 200)


async def ledger_types(
    client: QuartClient, headers: dict[str, str], instance_id: str
) -> list[dict[str, str]]:
    response = await client.get(
        f"/admin/instances/{instance_id}/ledger?count=1000", headers=headers
    )
    return list((await expect(response, 200))["entries"])


async def scheduled(gateway: Services, instance_id: str) -> list[tuple[str, int]]:
    """The due items of one instance (the demo's weekly raffle has its own), less the end of
    a terminated instance's opt-in records (OPTIN_RETENTION_DAYS later; test_optin_counters)."""
    return [
        (member, due)
        for member, due in await gateway.store.scheduled()
        if member.split("|", 1)[1].split("@")[0] == instance_id
        and not member.startswith("purge_optins|")
    ]


def snapshot_checks(published: dict[str, Any]) -> bool:
    """The snapshot hash over the published lines (version 2: each player named by
    sha256("<player_key> <salt>"), checked wherever the salt is shown; a line without its salt,
    another operator's, is taken by its player_commit)."""
    assert published["snapshot_version"] == 2
    text = ""
    for t in published["tickets"]:
        if t["salt"] is not None:
            made = hashlib.sha256(f"{t['player_key']} {t['salt']}".encode()).hexdigest()
            assert made == t["player_commit"]
        text += f"{t['index']} {t['player_commit']} {t['tickets']}\n"
    assert hashlib.sha256(text.encode()).hexdigest() == published["snapshot_hash"]
    return True


def recompute(published: dict[str, Any], instance_id: str, commitment: str) -> list[str]:
    """The winners of a drawn round from its published data alone (docs/raffles.md, "Verifying a
    draw"): the seed matches the commitment, the tickets match the snapshot hash, the randoms
    come from the seed and the snapshot hash (rejection sampling over 256-bit numbers), and
    each prize goes to the holder of ticket u mod R."""
    seed = bytes.fromhex(published["seed"])
    assert hashlib.sha256(seed).hexdigest() == commitment
    assert snapshot_checks(published)
    holders = [
        [t["player_key"], t["tickets"]]
        for t in sorted(published["tickets"], key=lambda t: t["index"])
    ]
    prizes = len(published["randoms"]) + len(published["unpaid_prizes"])
    space, snapshot, randoms, winners = 2**256, published["snapshot_hash"], [], []
    for j in range(1, prizes + 1):
        remaining = sum(held for _, held in holders)
        if remaining == 0:
            break  # every player has won
        k = 0
        while True:  # the first random below the largest multiple of R: no modulo bias
            message = f"{instance_id}:{published['round']}:{snapshot}:{j}:{k}".encode()
            u = int.from_bytes(hmac.new(seed, message, "sha256").digest(), "big")
            if u < space - space % remaining:
                break
            k += 1
        randoms.append(str(u))
        target, acc = u % remaining, 0
        for holder in holders:
            acc += holder[1]
            if acc > target:
                winners.append(holder[0])
                holder[1] = 0  # a player wins once
                break
    assert randoms == published["randoms"]
    return winners


async def test_a_draw_is_recomputed_from_its_published_data(
    client: QuartClient, headers: dict[str, str], clock: Clock
) -> None:
    await create(client, headers, raffle("r"))
    opened = (await admin_view(client, headers, "r"))["raffle_round"]
    assert (opened["round"], opened["ends"]) == (1, clock.now + HOUR)
    commitment = opened["commitment"]
    assert len(commitment) == 64
    # Operators see it in the instance of a source (operation 13) too.
    await put_source(client, headers, "r-src", ["r"])
    response = await client.get(
        "/jackpots/instances/source/r-src/brand/demo:brand1",
        query_string={"player_id": "a", "country_code": "DE"},
        headers=headers,
    )
    assert (await expect(response, 200))["raffle_round"] == opened
    # The commitment is in the ledger from the start.
    [first] = [e for e in await ledger_types(client, headers, "r") if e["type"] == "raffle_round"]
    assert (first["round"], first["commitment"]) == ("1", commitment)
    wagers = {"a": "12", "b": "3.5", "c": "40", "d": "1", "e": "7.25"}
    for player, wager in wagers.items():
        await bet(
            client, headers, "r", player, wager, "demo:brand2" if player == "e" else "demo:brand1"
        )
    # The round is still open: a draw by hand is refused and changes nothing.
    await expect(await draw(client, headers, "r"), 409, "ROUND_NOT_CLOSED")
    pot_before = (await view(client, headers, "r"))["pots"]["pool"]["current_value"]
    clock.now += HOUR
    record = await expect(await draw(client, headers, "r"), 200)
    assert record["round"] == 1 and record["status"] == "drawn"
    published = await get_round(client, headers, "r", 1)
    expected = recompute(published, "r", commitment)
    assert [f"demo:{w['brand_id']}:{w['player_id']}" for w in published["winners"]] == expected
    assert len(set(expected)) == 3
    # The ledger has the seed, the randoms, the snapshot hash.
    entries = await ledger_types(client, headers, "r")
    [drawn] = [e for e in entries if e["type"] == "raffle_draw"]
    assert (drawn["seed"], drawn["randoms"]) == (published["seed"], ",".join(published["randoms"]))
    assert drawn["snapshot"] == published["snapshot_hash"]
    # Money: prizes 1, half the pot at the draw, 2; the pot pays while it lasts.
    paid = [Decimal(w["win_amount"]) / 10**6 for w in published["winners"]]
    assert paid == [
        Decimal(1),
        (pot_before * Decimal("0.5")).quantize(Decimal("0.000001"), "ROUND_DOWN"),
        Decimal(2),
    ]
    totals = (await view(client, headers, "r"))["totals"]
    assert totals["wins"] == sum(paid)
    left = totals["contributions"] + totals["seed_funding"]
    pot_now = (await view(client, headers, "r"))["pots"]["pool"]
    assert left == pot_now["current_value"] + pot_now["reserve"] + totals["house"] + totals["wins"]
    assert totals["seed_funding"] == pot_now["seed_deficit"] == sum(paid) - pot_before
    # Raffle winners appear in the winners endpoints.
    listed = await expect(await client.get("/jackpots/instances/r/winners", headers=headers), 200)
    assert sorted(w["player_id"] for w in listed) == sorted(k.split(":")[2] for k in expected)
    # The next round is open with a new commitment; tickets now go to it.
    following = await get_round(client, headers, "r", 2)
    assert following["status"] == "open" and following["commitment"] != commitment
    # published when round 1 opened: round 2's tickets sell from round 1's end, before its draw
    assert following["commitment"] == opened["next_commitment"]
    assert following["opened"] == opened["ends"]
    assert following["ends"] == clock.now + HOUR
    await bet(client, headers, "r", "a", "2")
    [mine] = await expect(
        await client.get("/jackpots/instances/raffle/tickets/r/brand/brand1/a", headers=headers),
        200,
    )
    assert mine["ticket_count"] == 2
    await expect(await draw(client, headers, "r"), 409, "ROUND_NOT_CLOSED")
    await expect(
        await client.get("/admin/instances/r/rounds/9", headers=headers), 404, "ROUND_NOT_FOUND"
    )


async def test_the_scheduler_draws_each_round_once_and_catches_up(
    client: QuartClient, headers: dict[str, str], gateway: Services, second: Services, clock: Clock
) -> None:
    start = clock.now
    await create(client, headers, raffle("hourly"))
    await bet(client, headers, "hourly", "a", "3")
    assert await gateway.lifecycle.run_due() == []
    clock.now = start + HOUR
    assert await gateway.lifecycle.run_due() == [("draw", "hourly@1"), ("archive", "hourly@1")]
    assert await scheduled(gateway, "hourly") == [("draw|hourly@2", start + 2 * HOUR)]
    # Two schedulers at once: round 2 is drawn once.
    clock.now = start + 2 * HOUR
    results = await asyncio.gather(gateway.lifecycle.run_due(), second.lifecycle.run_due())
    assert sorted(item for result in results for item in result) == [
        ("archive", "hourly@2"),
        ("draw", "hourly@2"),
    ]
    # Down for three and a half hours: round 3 is drawn once; round 4 keeps to the hour.
    clock.now = start + 5 * HOUR + HOUR // 2
    assert await gateway.lifecycle.run_due() == [("draw", "hourly@3"), ("archive", "hourly@3")]
    assert await scheduled(gateway, "hourly") == [("draw|hourly@4", start + 6 * HOUR)]
    draws_done = [
        e for e in await ledger_types(client, headers, "hourly") if e["type"] == "raffle_draw"
    ]
    assert [(e["round"], e["by"]) for e in draws_done] == [
        ("1", "scheduler"),
        ("2", "scheduler"),
        ("3", "scheduler"),
    ]
    assert (
        json.loads(json.dumps((await get_round(client, headers, "hourly", 1))["winners"]))[0][
            "player_id"
        ]
        == "a"
    )
    # A round drawn by hand first is not drawn again by the scheduler.
    clock.now = start + 6 * HOUR
    await expect(await draw(client, headers, "hourly"), 200)
    assert await gateway.lifecycle.run_due() == [("draw", "hourly@4"), ("archive", "hourly@4")]
    rounds = [
        e["round"]
        for e in await ledger_types(client, headers, "hourly")
        if e["type"] == "raffle_draw"
    ]
    assert rounds == ["1", "2", "3", "4"]


async def test_a_drawing_scheduler_that_stopped_leaves_nothing_undone(
    client: QuartClient, headers: dict[str, str], gateway: Services, clock: Clock
) -> None:
    start = clock.now
    await create(client, headers, raffle("crash"))
    clock.now = start + HOUR
    # A scheduler drew round 1 and stopped before scheduling round 2; its lease on
    # draw|crash@1 ran out, so the item comes back.
    await gateway.raffles.draw("crash", "scheduler")
    await gateway.store.complete_due("draw", "crash@2")
    await gateway.store.schedule("draw", "crash@1", clock.now)
    assert await gateway.lifecycle.run_due() == [("draw", "crash@1"), ("archive", "crash@1")]
    assert await scheduled(gateway, "crash") == [("draw|crash@2", start + 2 * HOUR)]
    rounds = [
        e["round"]
        for e in await ledger_types(client, headers, "crash")
        if e["type"] == "raffle_draw"
    ]
    assert rounds == ["1"]


async def test_a_terminated_raffle_has_no_next_round(
    client: QuartClient, headers: dict[str, str], gateway: Services, clock: Clock
) -> None:
    start = clock.now
    await create(client, headers, raffle("stopped"))
    await expect(await client.post("/admin/instances/stopped/terminate", headers=headers), 200)
    clock.now = start + HOUR
    assert await gateway.lifecycle.run_due() == [("draw", "stopped@1"), ("archive", "stopped@1")]
    assert (await admin_view(client, headers, "stopped"))["raffle_round"]["commitment"] is None
    assert await scheduled(gateway, "stopped") == []


async def test_a_raffle_drawn_at_its_end_has_one_round(
    client: QuartClient, headers: dict[str, str], gateway: Services, clock: Clock
) -> None:
    end = now_ms() + HOUR
    definition = raffle("once", timestamp_end=end)
    definition["raffle"]["draw"] = {"at": "end"}
    await create(client, headers, definition)
    await bet(client, headers, "once", "a", "5")
    clock.now = end
    assert sorted(await gateway.lifecycle.run_due()) == [
        ("archive", "once@1"),
        ("draw", "once@1"),
        ("terminate", "once"),
    ]
    assert (await admin_view(client, headers, "once"))["status"] == "Terminated"
    assert (await get_round(client, headers, "once", 1))["winners"][0]["player_id"] == "a"
    assert (await admin_view(client, headers, "once"))["raffle_round"]["commitment"] is None
    assert await scheduled(gateway, "once") == []
    await expect(await draw(client, headers, "once"), 409, "NO_OPEN_ROUND")


async def test_draw_refusals(client: QuartClient, headers: dict[str, str]) -> None:
    await create(client, headers, instance("plain"))
    await expect(await draw(client, headers, "plain"), 404, "NOT_A_RAFFLE")
    await expect(await draw(client, headers, "missing"), 404, "INSTANCE_NOT_FOUND")


@pytest.mark.parametrize(
    ("draw_rule", "after", "now", "expected"),
    [
        ({"every": "1h"}, "2026-01-01T00:00", "2026-01-01T00:00", "2026-01-01T01:00"),
        ({"every": "1h"}, "2026-01-01T00:00", "2026-01-01T05:30", "2026-01-01T06:00"),
        ({"every": "1d"}, "2026-01-01T12:00", "2026-01-01T11:00", "2026-01-02T12:00"),
        ({"daily": ["20:00"]}, "2026-01-01T00:00", "2026-01-01T19:59", "2026-01-01T20:00"),
        ({"daily": ["20:00"]}, "2026-01-01T00:00", "2026-01-01T20:00", "2026-01-02T20:00"),
        ({"daily": ["20:00", "08:30"]}, "2026-01-01T00:00", "2026-01-01T09:00", "2026-01-01T20:00"),
        ({"daily": ["20:00", "08:30"]}, "2026-01-01T00:00", "2026-01-03T23:00", "2026-01-04T08:30"),
    ],
)
def test_when_rounds_end(draw_rule: dict[str, Any], after: str, now: str, expected: str) -> None:
    def ms(text: str) -> int:
        return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)

    definition = {"timestamp_end": None}
    assert draws.round_end(draw_rule, definition, ms(after), ms(now)) == ms(expected)


@pytest.mark.parametrize("redis_url", ["real"], indirect=True)
async def test_the_draw_command(
    client: QuartClient,
    headers: dict[str, str],
    clock: Clock,
    real_redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await create(client, headers, raffle("cli"))
    await bet(client, headers, "cli", "a", "4")
    monkeypatch.setenv("REDIS_URL", real_redis_url)
    monkeypatch.setenv("JWT_SECRET", SECRET)
    monkeypatch.setenv("DRAW_KEY", DRAW_KEY)
    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(None, main, ["draw", "cli"]) == 1
    assert "ROUND_NOT_CLOSED" in capsys.readouterr().err
    clock.now += HOUR
    assert await loop.run_in_executor(None, main, ["draw", "cli"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["round"], printed["winners"][0]["player_id"]) == (1, "a")
