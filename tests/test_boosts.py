"""Seed boosts: operator money added to a pot's reserve or value, in the ledger as operator
funding, retry-safe, scoped, and the extended conservation law exact."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from quart.testing import QuartClient

from app.core.refusals import Code
from app.core.security import Principal
from app.services import Services
from app.store import ScriptRefusal, keys
from app.store.script_table import BOOST_POT
from tests.conftest import CLI, auth
from tests.support.definitions import hit_rate, instance, pot
from tests.support.http import create_instance, expect, post, set_status, v1_body, view
from tests.support.money import assert_conserved, units
from tests.support.snapshots import snapshot

RIVAL_ADMIN = Principal("rival-admin", "rival", ("admin",))
FAKE_ONLY = pytest.mark.parametrize("redis_url", ["fake"], indirect=True)
RARE = hit_rate(1_000_000)  # the boosted instance gets no contribution anyway
POTS = [
    pot("capped", "0.40", RARE, reserve_share="0.1", seed="5", max_value="20"),
    pot("fixed", "0.30", RARE, seed="50", progressive=False),
]


async def boost(client: QuartClient, headers: dict[str, str], instance_id: str, **body: Any) -> Any:
    return await post(client, f"/admin/instances/{instance_id}/boosts", body, headers)


@pytest.fixture
async def boosted(client: QuartClient, headers: dict[str, str]) -> str:
    await create_instance(client, headers, instance("boosted", pots=POTS))
    return "boosted"


async def ledger_boosts(client: QuartClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = await client.get("/admin/instances/boosted/ledger", headers=headers)
    return [e for e in (await expect(response, 200))["entries"] if e["type"] == "boost"]


async def test_a_reserve_boost_funds_the_reserve_and_is_operator_money(
    client: QuartClient, headers: dict[str, str], boosted: str
) -> None:
    before = await view(client, headers, boosted)
    response = await boost(client, headers, boosted, pot_id="capped", amount="123.456789")
    body = await expect(response, 201)
    assert body == {
        "boost_id": body["boost_id"],
        "instance_id": "boosted",
        "pot_id": "capped",
        "target": "reserve",
        "amount": Decimal("123.456789"),
        "to_value": Decimal("0"),
        "to_reserve": Decimal("123.456789"),
    }
    after = await view(client, headers, boosted)
    capped_before, capped = before["pots"]["capped"], after["pots"]["capped"]
    assert capped["reserve"] == capped_before["reserve"] + Decimal("123.456789")
    assert capped["current_value"] == capped_before["current_value"]
    assert after["totals"]["boosts"] == Decimal("123.456789")
    assert after["pots"]["fixed"] == before["pots"]["fixed"]
    assert_conserved(after)
    [entry] = await ledger_boosts(client, headers)
    assert {k: entry[k] for k in ("id", "pot", "target", "amount", "value", "reserve", "by")} == {
        "id": body["boost_id"],
        "pot": "capped",
        "target": "reserve",
        "amount": "123456789",
        "value": "0",
        "reserve": "123456789",
        "by": "demo-service",
    }


async def test_a_value_boost_stops_at_max_value_and_the_rest_goes_to_the_reserve(
    client: QuartClient, headers: dict[str, str], boosted: str
) -> None:
    # The pot starts at its seed 5 with a cap of 20: room for 15.
    response = await boost(client, headers, boosted, pot_id="capped", amount="7.5", target="value")
    assert (await expect(response, 201))["to_value"] == Decimal("7.5")
    response = await boost(client, headers, boosted, pot_id="capped", amount="10", target="value")
    body = await expect(response, 201)
    assert (body["to_value"], body["to_reserve"]) == (Decimal("7.5"), Decimal("2.5"))
    after = await view(client, headers, boosted)
    assert after["pots"]["capped"]["current_value"] == Decimal("20")
    assert after["pots"]["capped"]["reserve"] == Decimal("2.5")
    assert after["totals"]["boosts"] == Decimal("17.5")
    assert_conserved(after)


async def test_a_boosted_reserve_pays_the_reseed_so_no_deficit(
    client: QuartClient, headers: dict[str, str]
) -> None:
    pots = [pot("hot", "0.70", hit_rate(1), seed="10")]
    await create_instance(client, headers, instance("hot", pots=pots))
    await expect(await boost(client, headers, "hot", pot_id="hot", amount="10"), 201)
    response = await post(client, "/jackpots/contribute", v1_body("hot"), headers)
    assert (await expect(response, 200))["win_pot_id"] == "hot"
    after = await view(client, headers, "hot")
    # Won 10 (seed) + 0.70 (its share of the 1.00 stake); reseeded from the boosted reserve.
    assert after["totals"]["wins"] == Decimal("10.7")
    assert after["pots"]["hot"] == {
        "current_value": Decimal("10"),
        "reserve": Decimal("0"),
        "seed_deficit": Decimal("0"),
    }
    assert (after["totals"]["seed_funding"], after["totals"]["boosts"]) == (10, 10)
    assert_conserved(after)


async def test_a_repeated_boost_id_applies_once(
    client: QuartClient, headers: dict[str, str], gateway: Services, boosted: str
) -> None:
    first = await expect(
        await boost(client, headers, boosted, pot_id="capped", amount="1", boost_id="b-1"), 201
    )
    state = await snapshot(gateway.store, boosted)
    again = await expect(
        await boost(client, headers, boosted, pot_id="capped", amount="1", boost_id="b-1"), 200
    )
    assert again == first
    assert await snapshot(gateway.store, boosted) == state
    response = await boost(client, headers, boosted, pot_id="capped", amount="2", boost_id="b-1")
    await expect(response, 409, "BOOST_ID_REUSED")
    assert await snapshot(gateway.store, boosted) == state


@pytest.mark.real_redis
@pytest.mark.parametrize("redis_url", ["real"], indirect=True)
async def test_concurrent_repeats_of_one_boost_apply_once(
    client: QuartClient, headers: dict[str, str], boosted: str
) -> None:
    responses = await asyncio.gather(
        *(
            boost(client, headers, boosted, pot_id="capped", amount="3", boost_id="same")
            for _ in range(20)
        )
    )
    assert sorted(r.status_code for r in responses) == [200] * 19 + [201]
    after = await view(client, headers, boosted)
    assert after["totals"]["boosts"] == Decimal("3")
    assert len(await ledger_boosts(client, headers)) == 1


async def test_refusals_change_nothing(
    client: QuartClient, headers: dict[str, str], gateway: Services, boosted: str
) -> None:
    await create_instance(client, headers, instance("ended"))
    await set_status(client, headers, "ended", "terminate")
    state = await snapshot(gateway.store)
    cases = [
        (
            "boosted",
            {"pot_id": "fixed", "amount": "1", "target": "value"},
            409,
            "POT_NOT_PROGRESSIVE",
        ),
        ("boosted", {"pot_id": "nope", "amount": "1"}, 404, "POT_NOT_FOUND"),
        ("nowhere", {"pot_id": "capped", "amount": "1"}, 404, "INSTANCE_NOT_FOUND"),
        ("ended", {"pot_id": "main", "amount": "1"}, 409, "INSTANCE_TERMINATED"),
    ]
    for instance_id, body, status, code in cases:
        await expect(await boost(client, headers, instance_id, **body), status, code)
    # Another operator's admin does not see demo's instance at all.
    rival = auth(gateway, RIVAL_ADMIN)
    await expect(
        await boost(client, rival, "boosted", pot_id="capped", amount="1"),
        404,
        "INSTANCE_NOT_FOUND",
    )
    assert await snapshot(gateway.store) == state


@FAKE_ONLY
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"pot_id": "capped", "amount": "0"}, "amount"),
        ({"pot_id": "capped", "amount": "-1"}, "amount"),
        ({"pot_id": "capped", "amount": "0.0000001"}, "amount"),
        ({"pot_id": "capped", "amount": "NaN"}, "amount"),
        ({"pot_id": "capped", "amount": "1000000001"}, "amount"),
        ({"pot_id": "capped", "amount": True}, "amount"),
        ({"pot_id": "capped"}, "amount"),
        ({"amount": "1"}, "pot_id"),
        ({"pot_id": "capped", "amount": "1", "target": "house"}, "target"),
        ({"pot_id": "capped", "amount": "1", "boost_id": "a|b"}, "boost_id"),
        ({"pot_id": "capped", "amount": "1", "extra": 1}, "extra"),
    ],
)
async def test_bad_boosts_are_refused(
    client: QuartClient,
    headers: dict[str, str],
    gateway: Services,
    boosted: str,
    body: Any,
    field: str,
) -> None:
    state = await snapshot(gateway.store, boosted)
    details = (
        await expect(await boost(client, headers, boosted, **body), 400, "VALIDATION_ERROR")
    )["details"]
    assert field in details
    assert await snapshot(gateway.store, boosted) == state


async def test_a_boost_is_in_the_audit_trail(
    client: QuartClient, headers: dict[str, str], boosted: str
) -> None:
    body = await expect(await boost(client, headers, boosted, pot_id="capped", amount="2"), 201)
    response = await client.get("/admin/audit", headers=headers, query_string={"count": 1000})
    entry = (await expect(response, 200))["entries"][-1]
    assert (entry["by"], entry["action"], entry["target"]) == (
        "demo-service",
        "instance.boost",
        "boosted",
    )
    assert entry["after"]["boost_id"] == body["boost_id"]
    assert Decimal(entry["after"]["amount"]) == 2


async def test_cli_boost(
    client: QuartClient, headers: dict[str, str], boosted: str, cli: CLI
) -> None:
    args = ["boost", "--instance", "boosted", "--pot", "capped", "--amount", "16.25"]
    args += ["--to", "value", "--boost-id", "cli-1"]
    done = "cli-1: boosted/capped value +15, reserve +1.25\n"
    assert await cli(*args) == (0, f"boosted {done}", "")
    assert await cli(*args) == (0, f"already applied {done}", "")
    after = await view(client, headers, boosted)
    assert after["totals"]["boosts"] == Decimal("16.25")
    assert_conserved(after)
    bad = await cli("boost", "--instance", "boosted", "--pot", "capped", "--amount", "x")
    assert bad[0] == 1
    refused = await cli("boost", "--instance", "boosted", "--pot", "nope", "--amount", "1")
    assert refused == (1, "", "error: Instance boosted has no such pot.\n")


@pytest.mark.parametrize(
    "args",
    [
        ["x", "b", "capped", "reserve", "1", "me"],  # now
        ["1", "", "capped", "reserve", "1", "me"],  # boost id
        ["1", "a|b", "capped", "reserve", "1", "me"],
        ["1", "b", "capped", "house", "1", "me"],  # target
        ["1", "b", "capped", "reserve", "0", "me"],  # amount
        ["1", "b", "capped", "reserve", "-1", "me"],
        ["1", "b", "capped", "reserve", "1.5", "me"],
        ["1", "b", "capped", "reserve", "9007199254740992", "me"],
    ],
)
async def test_the_script_refuses_malformed_arguments_and_writes_nothing(
    gateway: Services, client: QuartClient, boosted: str, args: list[str]
) -> None:
    state = await snapshot(gateway.store, boosted)
    script_keys = [
        keys.instance_engine(boosted),
        keys.instance_state(boosted),
        keys.instance_ledger(boosted),
        keys.instance_boosts(boosted),
        keys.instance_meter(boosted),
    ]
    with pytest.raises(ScriptRefusal) as refused:
        await gateway.store.script(BOOST_POT, script_keys, args)
    assert refused.value.code is Code.BAD_ARGUMENT
    assert await snapshot(gateway.store, boosted) == state


# -- exact money at any size ------------------------------------------------------------------
INT64_MAX = 2**63 - 1
TWO53 = 2**53


async def arrange_history(gateway: Services, instance_id: str, pot_id: str, amount: int) -> None:
    """A long-lived instance: `amount` micros were boosted into the pot's value and then won,
    in the ledger, the state and the meter counters (lua/includes/meters.lua), as the scripts
    write them (so the books still balance)."""
    client = gateway.store.client
    ledger = keys.instance_ledger(instance_id)
    await client.xadd(
        ledger,
        {"type": "boost", "id": "history", "pot": pot_id, "target": "value", "amount": amount,
         "value": amount, "reserve": 0, "by": "test", "ts": 1},
    )  # fmt: skip
    await client.xadd(
        ledger,
        {"type": "win", "id": "history-win", "pot": pot_id, "amount": amount, "seed": 0,
         "from_reserve": 0, "deficit": 0, "withheld": "0", "drop_at": "", "random": "",
         "operator": "demo", "brand": "brand1", "player": "p", "event_id": "e", "ts": 2},
    )  # fmt: skip
    state_key = keys.instance_state(instance_id)
    s = await client.hgetall(state_key)
    await client.hset(
        state_key,
        mapping={
            name: str(int(s.get(name) or 0) + amount) for name in ("total:boosts", "total:wins")
        },
    )
    meter = keys.instance_meter(instance_id)
    held = await client.hgetall(meter)
    day = "19700101|"  # the entries' ts
    fields = [f"{scope}|{figure}" for scope in (pot_id, "*") for figure in ("boosts", "wins")]
    await client.hset(
        meter,
        mapping={
            **{name: str(int(held.get(name) or 0) + amount) for name in fields},
            **{day + name: str(amount) for name in fields},
            f"{pot_id}|hits": str(int(held.get(f"{pot_id}|hits") or 0) + 1),
            f"{day}{pot_id}|hits": "1",
        },
    )


async def test_total_boosts_passes_2_to_the_63_exactly_and_every_reader_agrees(
    client: QuartClient, headers: dict[str, str], gateway: Services
) -> None:
    """total:boosts is a lifetime total: a decimal string of any size, never a limit. The
    instance view, the reconciliation and the meter report read it exactly past 2^63."""
    await create_instance(client, headers, instance("long", pots=[pot("main", "0.70", RARE)]))
    history = INT64_MAX - 1_000_000
    await arrange_history(gateway, "long", "main", history)
    for amount in ("1.5", "0.000001"):
        await expect(await boost(client, headers, "long", pot_id="main", amount=amount), 201)
    expected = history + 1_500_001  # 2^63 + 500_000: past what HINCRBY holds
    state = await gateway.store.client.hgetall(keys.instance_state("long"))
    assert state["total:boosts"] == str(expected)
    assert (await view(client, headers, "long"))["totals"]["boosts"] == units(expected)
    response = await client.get("/admin/instances/long/reconciliation", headers=headers)
    books = await expect(response, 200)
    assert (books["balanced"], books["differences"]) == (True, [])
    response = await client.get("/admin/instances/long/meters", headers=headers)
    assert (await expect(response, 200))["cumulative"]["boosts"] == units(expected)


@pytest.mark.parametrize("start", [TWO53 - 1, TWO53 + 1, INT64_MAX - 3_000_000])
async def test_a_boost_lifts_a_pot_exactly_past_2_to_the_53(
    gateway: Services, client: QuartClient, headers: dict[str, str], start: int
) -> None:
    pots = [pot("big", "0.70", RARE)]
    await create_instance(client, headers, instance("huge", pots=pots))
    state_key = keys.instance_state("huge")
    await gateway.store.client.hset(
        state_key, mapping={"pot:big:value": start, "pot:big:reserve": start}
    )
    for target in ("value", "reserve"):
        done = await gateway.store.boost_pot(
            "huge", boost_id=target, pot_id="big", target=target, amount=3_000_000, by="t",
            now_ms=1,
        )  # fmt: skip
        assert done == ((False, 3_000_000, 0) if target == "value" else (False, 0, 3_000_000))
    state = await gateway.store.client.hgetall(state_key)
    assert (state["pot:big:value"], state["pot:big:reserve"]) == (str(start + 3_000_000),) * 2


async def test_a_boost_past_2_to_the_63_is_refused_and_changes_nothing(
    gateway: Services, client: QuartClient, headers: dict[str, str]
) -> None:
    await create_instance(client, headers, instance("full", pots=[pot("main", "0.70", RARE)]))
    state_key = keys.instance_state("full")
    await gateway.store.client.hset(
        state_key, mapping={"pot:main:value": INT64_MAX - 1, "pot:main:reserve": INT64_MAX - 2}
    )
    before = await snapshot(gateway.store, "full")
    for target in ("value", "reserve"):
        body = {"pot_id": "main", "amount": "0.000003", "target": target}
        await expect(await boost(client, headers, "full", **body), 409, "AMOUNT_OVERFLOW")
    assert await snapshot(gateway.store, "full") == before
    body = {"pot_id": "main", "amount": "0.000001", "target": "value"}
    await expect(await boost(client, headers, "full", **body), 201)
    state = await gateway.store.client.hgetall(state_key)
    assert state["pot:main:value"] == str(INT64_MAX)
