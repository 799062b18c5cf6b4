"""The idempotency record keeps only what a replayed or read-back answer shows
(lua/contribute-13.lua's header): the answers stay byte for byte the first one's, and a
record written in the format before (hex hash, JSON context and the whole JSON outcome)
still replays and reads back, so a retry across an upgrade is still the same contribution."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from quart.testing import QuartClient

from app.services import Services
from app.store import keys
from app.store.contributions import ContributionOutcome
from tests.support.definitions import hit_rate, instance, pot
from tests.support.http import create_instance, exact_json, post, v1_body

RECORDED = "/jackpots/contributions"
METADATA = {"bet_id": "b-1234567890", "market": "1x2", "odds": Decimal("2.35")}


async def record_of(gateway: Services, instance_id: str, key: str) -> str:
    raw = await gateway.store.client.get(keys.instance_idempotency(instance_id, "demo", key))
    assert raw is not None
    return str(raw)


@pytest.mark.parametrize("wins", [False, True])
async def test_the_record_is_lean_and_the_answers_stay_the_first_ones(
    client: QuartClient, gateway: Services, headers: dict[str, str], wins: bool
) -> None:
    trigger = hit_rate(1) if wins else hit_rate(10**9)
    await create_instance(
        client, headers, instance("lean", pots=[pot("mini", "0.7", trigger, seed="10")])
    )
    body = v1_body("lean", idempotency_key="bet-1", currency="SEK", base_wager=Decimal("20"))
    first = await post(client, "/jackpots/contribute", body, headers)
    answered = await first.get_data()
    assert first.status_code == 200 and (json.loads(answered)["win_pot_id"] is not None) == wins
    record = await record_of(gateway, "lean", "bet-1")
    line, _, kept = record.partition("\n")
    digest, _, context = line.partition(" ")
    assert len(digest) == 43  # sha256, base64url
    assert json.loads(context) == ["demo:brand1", "SEK", None]
    fields = kept.split("|")
    assert fields[0] == "1" and fields[1] == first.headers["X-Contribution-Id"]
    assert fields[-1] == "round-1"  # the game round, last
    # nothing but the answer: without a win about 170 bytes (the JSON outcome took ~600)
    assert len(record) < (260 if wins else 180)
    retry = await post(client, "/jackpots/contribute", {**body, "token": "new"}, headers)
    assert (retry.status_code, await retry.get_data()) == (204, b"")
    for name in ("X-Contribution-Id", "X-Instance-Id"):
        assert retry.headers[name] == first.headers[name]
    query = {"instance_id": "lean", "idempotency_key": "bet-1"}
    recorded = await client.get(RECORDED, query_string=query, headers=headers)
    assert await recorded.get_data() == answered
    assert recorded.headers["X-Instance-Id"] == "lean"


@pytest.mark.real_redis
@pytest.mark.parametrize("redis_url", ["real"], indirect=True)
async def test_bytes_per_record_on_real_redis(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    """MEMORY USAGE of a record (key included): at most 300 bytes without metadata."""
    await create_instance(client, headers, instance("sized"))
    sizes = {}
    for name, metadata in (("none", None), ("typical", METADATA)):
        key = f"k-{name}-0123456789abcdef0123456789abcdef"
        body = v1_body("sized", idempotency_key=key, metadata=metadata)
        assert (await post(client, "/jackpots/contribute", body, headers)).status_code == 200
        redis_key = keys.instance_idempotency("sized", "demo", key)
        sizes[name] = await gateway.store.client.memory_usage(redis_key, samples=0)
    assert sizes["none"] <= 300
    assert sizes["typical"] > sizes["none"]


async def test_a_record_written_before_the_lean_format_still_answers(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    await create_instance(
        client, headers, instance("old", pots=[pot("mini", "0.7", hit_rate(1), seed="10")])
    )
    body = v1_body("old", idempotency_key="bet-1", currency="SEK", metadata=METADATA)
    first = await post(client, "/jackpots/contribute", body, headers)
    answered = await exact_json(first)
    # Rewrite the record as the previous release wrote it: hex hash, a JSON object of the
    # context, and the whole JSON outcome.
    redis_key = keys.instance_idempotency("old", "demo", "bet-1")
    line, _, kept = (await record_of(gateway, "old", "bet-1")).partition("\n")
    lean = ContributionOutcome.from_record(kept, "old")
    digest, _, context = line.partition(" ")
    brand, currency, metadata = json.loads(context, parse_float=Decimal)
    old_line = f"{_hex(digest)} " + json.dumps(
        {"brand": brand, "currency": currency, "metadata": _plain(metadata)},
        separators=(",", ":"),
    )
    old_outcome = {
        "contribution_id": lean.contribution_id,
        "instance_id": "old",
        "timestamp": lean.timestamp,
        "amount": "1000000",
        "house": "300000",
        "paid": str(lean.paid),
        "shown": lean.shown,
        "win_id": lean.win_id,
        "win_pot_id": lean.win_pot_id,
        "win_amount": str(lean.win_amount),
        "win_withheld": lean.win_withheld,
        "seed": "10000000",
        "seed_deficit": "10000000",
        "tickets_awarded": "0",
        "raffle_round": None,
        "tickets_total": "0",
        "accumulated_cost": "0",
        "contribution_count": "1",
        "gameround_id": lean.gameround_id,
        "source_id": None,
    }
    ttl = await gateway.store.client.pttl(redis_key)
    await gateway.store.client.set(
        redis_key, old_line + "\n" + json.dumps(old_outcome, separators=(",", ":")), px=ttl
    )
    before = await gateway.store.client.xlen(keys.instance_ledger("old"))
    retry = await post(client, "/jackpots/contribute", body, headers)
    assert retry.status_code == 204
    assert retry.headers["X-Contribution-Id"] == first.headers["X-Contribution-Id"]
    assert await gateway.store.client.xlen(keys.instance_ledger("old")) == before
    query = {"instance_id": "old", "idempotency_key": "bet-1"}
    recorded = await client.get(RECORDED, query_string=query, headers=headers)
    assert await exact_json(recorded) == answered
    other = await post(client, "/jackpots/contribute", {**body, "base_wager": "3"}, headers)
    assert other.status_code == 409


def _hex(digest: str) -> str:
    import base64

    return base64.urlsafe_b64decode(digest + "=").hex()


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return float(value) if isinstance(value, Decimal) else value
