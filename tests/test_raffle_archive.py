"""Drawn raffle rounds are archived and expire; operators read a drawn round of their own
raffles, other operators' players masked, and recompute its winners from that view.

On an injected clock (the services'; contributions keep the real one), on real Redis and on
fakeredis: the scheduler's draw job archives the round it drew in bounded steps (the tickets
hash and the ticket index then hold only the open round), an archive interrupted midway is
resumed by the next scheduler run, the published data of an archived round still recomputes
its winners, and an archived round expires after the configured retention."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from typing import Any

import pytest
from quart.testing import QuartClient

from app.core.clock import now_ms
from app.services import Services, lifecycle, raffles
from app.services.admin import accounts as admin_accounts
from app.services.admin import instances as admin_instances
from app.store import keys
from tests.conftest import DEMO, PLATFORM, RIVAL, auth, load_demo
from tests.support.http import bet, expect, post
from tests.test_raffle_rounds import HOUR, Clock, get_round, raffle, recompute, snapshot_checks

LEASE_MS = lifecycle.LEASE_MS


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    fake = Clock()
    for module in (admin_accounts, admin_instances, lifecycle, raffles):
        monkeypatch.setattr(module, "now_ms", fake)
    yield fake


@pytest.fixture
async def headers(gateway: Services) -> dict[str, str]:
    await load_demo(gateway)
    return auth(gateway, DEMO)


@pytest.fixture
def rival(gateway: Services, headers: dict[str, str]) -> dict[str, str]:
    return auth(gateway, RIVAL)


async def live_data(gateway: Services, instance_id: str) -> tuple[set[str], set[str]]:
    """The rounds present in the tickets hash and in the ticket index."""
    client = gateway.store.client
    fields = await client.hkeys(keys.instance_tickets(instance_id))
    members = await client.zrange(keys.instance_ticket_ranking(instance_id), 0, -1)
    return {f.split("|", 1)[0] for f in fields}, {str(int(m.split("|", 1)[0])) for m in members}


async def operator_round(
    client: QuartClient, headers: dict[str, str], instance_id: str, n: int, status: int = 200
) -> Any:
    response = await client.get(
        f"/jackpots/instances/raffle/rounds/{instance_id}/{n}", headers=headers
    )
    return await expect(response, status)


async def test_drawn_rounds_leave_only_the_open_round_in_the_live_data(
    client: QuartClient, headers: dict[str, str], gateway: Services, clock: Clock
) -> None:
    start = clock.now
    await expect(await post(client, "/admin/instances", raffle("daily"), headers), 201)
    commitments = {1: (await get_round(client, headers, "daily", 1))["commitment"]}
    for round_id in (1, 2, 3):
        for player, wager in (("a", "3"), ("b", "5"), (f"p{round_id}", "2")):
            await bet(client, headers, "daily", player, wager)
        assert await live_data(gateway, "daily") == ({str(round_id)}, {str(round_id)})
        clock.now = start + round_id * HOUR
        assert await gateway.lifecycle.run_due() == [
            ("draw", f"daily@{round_id}"),
            ("archive", f"daily@{round_id}"),
        ]
        commitments[round_id + 1] = (await get_round(client, headers, "daily", round_id + 1))[
            "commitment"
        ]
        # The drawn round is gone from the live data (round r + 1 has no ticket yet).
        assert await live_data(gateway, "daily") == (set(), set())
    await bet(client, headers, "daily", "late", "4")
    assert await live_data(gateway, "daily") == ({"4"}, {"4"})
    # The ticket endpoints answer the open round only.
    listed = await expect(
        await client.get("/jackpots/instances/raffle/tickets/daily", headers=headers), 200
    )
    assert [(t["player_id"], t["ticket_count"]) for t in listed] == [("late", 4)]
    mine = await client.get(
        "/jackpots/instances/raffle/tickets/daily/brand/brand1/a", headers=headers
    )
    assert await expect(mine, 200) == []
    # Every archived round still recomputes from its published data.
    for round_id in (1, 2, 3):
        published = await get_round(client, headers, "daily", round_id)
        assert published["status"] == "drawn"
        assert len(published["tickets"]) == 3
        expected = recompute(published, "daily", commitments[round_id])
        assert [f"demo:{w['brand_id']}:{w['player_id']}" for w in published["winners"]] == expected
    # Kept for the retention (90 days by default) after the draw, then expired by Redis.
    before = now_ms()
    ttl = await gateway.store.client.pttl(keys.instance_archived_round("daily", 1))
    assert (await get_round(client, headers, "daily", 1))["drawn_at"] == start + HOUR
    expected_ttl = start + HOUR + 90 * 24 * HOUR - before
    assert expected_ttl - 60_000 < ttl <= expected_ttl
    assert await gateway.store.client.pttl(keys.instance_archived_tickets("daily", 1)) > 0


async def test_an_interrupted_archive_resumes_on_the_next_run(
    client: QuartClient,
    headers: dict[str, str],
    gateway: Services,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    start = clock.now
    await expect(await post(client, "/admin/instances", raffle("big"), headers), 201)
    commitment = (await get_round(client, headers, "big", 1))["commitment"]
    for n in range(40):  # ~300 hash fields: past a small hash's compact encoding
        await bet(client, headers, "big", f"p{n}", str(n % 7 + 1))
    gateway.raffles.archive_chunk = 5  # many small steps
    store = gateway.store
    real_step = store.archive_round_step
    steps: list[str] = []

    async def dies_midway(*args: Any, **kwargs: Any) -> tuple[str, int, int]:
        if len(steps) == 11:  # the copy is done; the first 'clear' steps ran
            raise RuntimeError("the scheduler process died")
        steps.append(kwargs["step"])
        return await real_step(*args, **kwargs)

    monkeypatch.setattr(store, "archive_round_step", dies_midway)
    clock.now = start + HOUR
    with pytest.raises(RuntimeError):
        await gateway.lifecycle.run_due()
    assert steps.count("copy") == 8 and steps.count("clear") == 3
    # Midway: part of the live data is gone, the round still reads whole (from the copy).
    fields, members = await live_data(gateway, "big")
    assert "1" in fields | members
    published = await get_round(client, headers, "big", 1)
    assert len(published["tickets"]) == 40
    assert [f"demo:{w['brand_id']}:{w['player_id']}" for w in published["winners"]] == recompute(
        published, "big", commitment
    )
    # The draw item is done; the archive's item is still leased; once the lease ends the
    # next run finishes the archive.
    monkeypatch.setattr(store, "archive_round_step", real_step)
    assert await gateway.lifecycle.run_due() == []
    clock.now += LEASE_MS
    assert await gateway.lifecycle.run_due() == [("archive", "big@1")]
    assert await live_data(gateway, "big") == (set(), set())
    again = await get_round(client, headers, "big", 1)
    assert again == published
    draws = [
        e
        for e in (
            await expect(
                await client.get("/admin/instances/big/ledger?count=1000", headers=headers), 200
            )
        )["entries"]
        if e["type"] == "raffle_draw"
    ]
    assert len(draws) == 1  # drawn once, archived across two runs


async def test_a_round_drawn_by_hand_is_archived_by_its_scheduled_item(
    client: QuartClient, headers: dict[str, str], gateway: Services, clock: Clock
) -> None:
    start = clock.now
    await expect(await post(client, "/admin/instances", raffle("hand"), headers), 201)
    await bet(client, headers, "hand", "a", "3")
    clock.now = start + HOUR
    await expect(await client.post("/admin/instances/hand/draw", headers=headers), 200)
    assert await live_data(gateway, "hand") == ({"1"}, {"1"})  # the request does not archive
    assert await gateway.lifecycle.run_due() == [("draw", "hand@1"), ("archive", "hand@1")]
    assert await live_data(gateway, "hand") == (set(), set())


async def test_archived_rounds_expire_after_the_retention(
    client: QuartClient, headers: dict[str, str], gateway: Services, clock: Clock
) -> None:
    clock.now = now_ms() - 2 * HOUR  # round 1 ended an hour ago
    await expect(await post(client, "/admin/instances", raffle("old"), headers), 201)
    await bet(client, headers, "old", "a", "3")
    gateway.raffles.round_retention_ms = 30 * 60_000  # half an hour: past already
    clock.now += HOUR
    assert await gateway.lifecycle.run_due() == [("draw", "old@1"), ("archive", "old@1")]
    await expect(
        await client.get("/admin/instances/old/rounds/1", headers=headers), 404, "ROUND_NOT_FOUND"
    )
    assert not await gateway.store.client.exists(
        keys.instance_archived_round("old", 1), keys.instance_archived_tickets("old", 1)
    )
    assert (await get_round(client, headers, "old", 2))["status"] == "open"


# -- the operator's view of a round ---------------------------------------------------------
def shared(instance_id: str) -> dict[str, Any]:
    """A raffle both operators' brands play."""
    return raffle(instance_id, allowed_brands=["demo:brand1", "demo:brand2", "rival:main"])


async def test_an_operator_reads_and_recomputes_a_round_with_others_players_masked(
    client: QuartClient,
    headers: dict[str, str],
    rival: dict[str, str],
    gateway: Services,
    clock: Clock,
) -> None:
    start = clock.now
    platform = auth(gateway, PLATFORM)  # an instance shared by two operators is the platform's
    await expect(await post(client, "/admin/instances", shared("both"), platform), 201)
    await expect(await post(client, "/admin/instances", raffle("demo-only"), headers), 201)
    opened = await operator_round(client, rival, "both", 1)
    assert opened["status"] == "open" and len(opened["commitment"]) == 64
    commitment = opened["commitment"]
    for player, wager in (("a", "2"), ("b", "30"), ("c", "9")):
        await bet(client, headers, "both", player, wager)
    for player, wager in (("x", "25"), ("y", "4")):
        await bet(client, rival, "both", player, wager, brand="rival:main")
    clock.now = start + HOUR
    assert ("draw", "both@1") in await gateway.lifecycle.run_due()
    full = await get_round(client, platform, "both", 1)
    for viewer, operator_id in ((headers, "demo"), (rival, "rival")):
        seen = await operator_round(client, viewer, "both", 1)
        assert "by" not in seen
        # Published as to admins: commitment, seed, randoms, hash, counts, indexes.
        for name in ("commitment", "seed", "randoms", "targets", "snapshot_hash", "tickets_total"):
            assert seen[name] == full[name]
        assert [(t["index"], t["tickets"]) for t in seen["tickets"]] == [
            (t["index"], t["tickets"]) for t in full["tickets"]
        ]
        # Other operators' players are ***, their operator and brand shown.
        for theirs, whole in zip(seen["tickets"], full["tickets"], strict=True):
            op, brand, player = whole["player_key"].split(":", 2)
            shown = player if op == operator_id else "***"
            assert theirs["player_key"] == f"{op}:{brand}:{shown}"
            # another operator's line keeps its commit, not its salt (no guess is testable)
            assert theirs["salt"] == (whole["salt"] if op == operator_id else None)
            assert theirs["player_commit"] == whole["player_commit"]
        for theirs, whole in zip(seen["winners"], full["winners"], strict=True):
            shown = whole["player_id"] if whole["operator_id"] == operator_id else "***"
            assert {**whole, "player_id": shown} == theirs
        # The operator recomputes the winning indexes from the view alone.
        assert seen["commitment"] == commitment  # the one published when the round opened
        assert [w["index"] for w in seen["winners"]] == winning_indexes(seen, "both")
        assert seen["seed"] and seen["snapshot_hash"]
    # Three prizes, three of demo's five players: the rival sees at least one masked winner.
    masked = (await operator_round(client, rival, "both", 1))["winners"]
    assert len(masked) == 3 and any(w["player_id"] == "***" for w in masked)
    # Scoped like the ticket endpoints: another operator's raffle is unknown.
    await operator_round(client, rival, "demo-only", 1, 404)
    await operator_round(client, rival, "nowhere", 1, 404)
    await operator_round(client, headers, "both", 9, 404)
    assert (await operator_round(client, headers, "both", 2))["status"] == "open"
    not_raffle = await client.get("/jackpots/instances/raffle/rounds/daily-drop/1", headers=headers)
    await expect(not_raffle, 404, "NOT_A_RAFFLE")


def winning_indexes(published: dict[str, Any], instance_id: str) -> list[int]:
    """docs/raffles.md, "Verifying a draw" from the operator view: the seed matches the commitment,
    the randoms come from the seed and the snapshot hash, and each prize goes to the index
    holding ticket u mod R (masked player keys do not change the weights)."""
    seed = bytes.fromhex(published["seed"])
    assert hashlib.sha256(seed).hexdigest() == published["commitment"]
    holders = [
        [t["index"], t["tickets"]] for t in sorted(published["tickets"], key=lambda t: t["index"])
    ]
    assert sum(h for _, h in holders) == int(published["tickets_total"])
    assert snapshot_checks(published)  # other operators' lines by their commits
    space, snapshot, winners = 2**256, published["snapshot_hash"], []
    for j in range(1, len(published["randoms"]) + len(published["unpaid_prizes"]) + 1):
        remaining = sum(held for _, held in holders)
        if remaining == 0:
            break
        k = 0
        while True:
            message = f"{instance_id}:{published['round']}:{snapshot}:{j}:{k}".encode()
            u = int.from_bytes(hmac.new(seed, message, "sha256").digest(), "big")
            if u < space - space % remaining:
                break
            k += 1
        assert str(u) == published["randoms"][j - 1]
        target, acc = u % remaining, 0
        for holder in holders:
            acc += holder[1]
            if acc > target:
                winners.append(holder[0])
                holder[1] = 0
                break
    return winners


async def test_archived_lines_hold_no_index_and_the_older_lines_still_verify(
    client: QuartClient, headers: dict[str, str], gateway: Services, clock: Clock
) -> None:
    """An archived line is '<player key> <tickets>' (its index is its position: 6 bytes a
    line less); a round archived with '<i> <player key> <tickets>' lines reads the same."""
    start = clock.now
    await expect(await post(client, "/admin/instances", raffle("short"), headers), 201)
    commitment = (await get_round(client, headers, "short", 1))["commitment"]
    for player, wager in (("a", "3"), ("b", "5"), ("c", "2")):
        await bet(client, headers, "short", player, wager)
    clock.now = start + HOUR
    await gateway.lifecycle.run_due()
    key = keys.instance_archived_tickets("short", 1)
    lines = await gateway.store.client.lrange(key, 0, -1)
    assert [line.split(" ")[0] for line in lines] == [f"demo:brand1:{p}" for p in "abc"]
    published = await get_round(client, headers, "short", 1)
    expected = recompute(published, "short", commitment)
    assert [f"demo:{w['brand_id']}:{w['player_id']}" for w in published["winners"]] == expected
    # the same round as the previous release archived it
    ttl = await gateway.store.client.pttl(key)
    await gateway.store.client.delete(key)
    await gateway.store.client.rpush(key, *(f"{i} {line}" for i, line in enumerate(lines, 1)))
    await gateway.store.client.pexpire(key, ttl)
    assert await get_round(client, headers, "short", 1) == published
    assert await gateway.store.archived_tickets("short", 1) == [
        (i, line.split(" ")[0], int(line.split(" ")[1])) for i, line in enumerate(lines, 1)
    ]
