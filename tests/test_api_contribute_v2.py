"""POST /v2/jackpots/contribute: a target instance or source, then its directly linked
instances, one item each; on real Redis and on fakeredis. Money is asserted exactly from the
documented rules (tests/support/money.py)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from quart.testing import QuartClient

from app.services import Services
from tests.conftest import RIVAL, auth
from tests.support.definitions import hit_rate, instance, pot
from tests.support.http import (
    create_instance,
    error_of,
    exact_json,
    post,
    set_status,
    v2_body,
    view,
)
from tests.support.money import (
    BRAND2_MULTIPLIERS,
    MULTIPLIERS,
    charge,
    floor_player,
    micros,
    split,
    to_instance,
    to_player,
    units,
)
from tests.support.snapshots import snapshot

CONTRIBUTE_V2 = "/v2/jackpots/contribute"


async def contribute(client: QuartClient, headers: dict[str, str], body: dict[str, Any]) -> Any:
    response = await post(client, CONTRIBUTE_V2, body, headers)
    assert response.status_code == 200, await response.get_data(as_text=True)
    return await exact_json(response)


def wager(value: str, currency: str = "EUR") -> dict[str, Any]:
    return {"value": Decimal(value), "currency": currency}


async def contributions_of(client: QuartClient, headers: dict[str, str], instance_id: str) -> Any:
    return (await view(client, headers, instance_id))["totals"]["contributions"]


# -- linked instances ----------------------------------------------------------------------
async def test_the_target_then_each_linked_instance_gets_its_own_contribution(
    client: QuartClient, headers: dict[str, str]
) -> None:
    """EUR Fixed target, JPY Percentage link, EUR Fixed link; a USD player of brand2."""
    jpy = await create_instance(
        client,
        headers,
        instance(
            "link-jpy",
            currency="JPY",
            contribution_type={"Percentage": "0.015"},
            pots=[pot("main", "0.5", reserve_share="0.1")],
            house_share="0.5",
        ),
    )
    eur = await create_instance(
        client, headers, instance("link-eur", contribution_type={"Fixed": "0.375"})
    )
    target = await create_instance(
        client,
        headers,
        instance(
            "target",
            contribution_type={"Fixed": "0.125"},
            linked_instances=["link-jpy", "link-eur"],
            pots=[pot("a", "0.333333", reserve_share="0.15", seed="1"), pot("b", "0.25")],
            house_share="0.416667",
        ),
    )
    body = v2_body(
        "target",
        player={"id": "p9", "brand_id": "brand2", "country": "DE"},
        base_wager=wager("12.34", "USD"),
        metadata={"odds": Decimal("1.25")},
    )
    items = await contribute(client, headers, body)
    assert [(i["instance_id"], i["linked"], i["success"]) for i in items] == [
        ("target", False, True),
        ("link-jpy", True, True),
        ("link-eur", True, True),
    ]
    assert all(set(item) == {"instance_id", "linked", "success", "result"} for item in items)
    rates = BRAND2_MULTIPLIERS
    # What the player pays in USD, whole cents, rounded down; the jackpots get its worth.
    paid = {
        "target": charge(Decimal("0.125"), "EUR", "USD", rates),  # 0.1375 -> 0.13 USD
        "link-jpy": floor_player(Decimal("12.34") * Decimal("0.015"), "USD"),  # 0.18 USD
        "link-eur": charge(Decimal("0.375"), "EUR", "USD", rates),  # 0.4125 -> 0.41 USD
    }
    definitions = {"target": target, "link-jpy": jpy, "link-eur": eur}
    amounts = {
        instance_id: to_instance(value, "USD", definitions[instance_id]["currency"], rates)
        for instance_id, value in paid.items()
    }
    for item in items:
        instance_id = item["instance_id"]
        definition = definitions[instance_id]
        result = item["result"]
        assert result == {
            "instance_id": instance_id,
            "timestamp": result["timestamp"],
            "gameround_id": "round-1",
            "win_amount": None,
            "win_pot_id": None,
            "tickets_awarded": 0,
            "raffle_round": None,
            "win_withheld": False,
            "contribution_currency": "USD",
            "contribution_amount": paid[instance_id],
            "metadata": {"odds": Decimal("1.25")},
        }
        state = await view(client, headers, instance_id)
        parts, house = split(amounts[instance_id], definition["pots"])
        for pot_def in definition["pots"]:
            to_value, to_reserve = parts[pot_def["id"]]
            assert state["pots"][pot_def["id"]]["current_value"] == Decimal(
                pot_def["seed"]
            ) + units(to_value)
            assert state["pots"][pot_def["id"]]["reserve"] == units(to_reserve)
        assert state["totals"]["contributions"] == units(amounts[instance_id])
        assert state["totals"]["house"] == units(house)
    assert items[1]["result"]["contribution_amount"] == paid["link-jpy"]
    assert items[0]["result"]["contribution_amount"] == Decimal("0.13")  # 0.1375 rounded down
    assert items[2]["result"]["contribution_amount"] == Decimal("0.41")  # 0.4125


async def test_links_are_not_transitive(client: QuartClient, headers: dict[str, str]) -> None:
    await create_instance(client, headers, instance("c"))
    await create_instance(client, headers, instance("b", linked_instances=["c"]))
    await create_instance(client, headers, instance("a", linked_instances=["b"]))
    items = await contribute(client, headers, v2_body("a"))
    assert [(i["instance_id"], i["linked"]) for i in items] == [("a", False), ("b", True)]
    assert await contributions_of(client, headers, "a") == 1
    assert await contributions_of(client, headers, "b") == 1
    assert await contributions_of(client, headers, "c") == 0
    # From b, c is its direct link.
    items = await contribute(client, headers, v2_body("b"))
    assert [(i["instance_id"], i["linked"]) for i in items] == [("b", False), ("c", True)]


async def test_a_failing_target_stops_before_the_linked_instances(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    await create_instance(client, headers, instance("linked"))
    await create_instance(
        client, headers, instance("opt", opt_in_required=True, linked_instances=["linked"])
    )
    await create_instance(client, headers, instance("halted", linked_instances=["linked"]))
    await set_status(client, headers, "halted", "pause")
    frozen = await snapshot(gateway.store)
    for target, code in [("opt", "NOT_OPTED_IN"), ("halted", "INSTANCE_NOT_ACTIVE")]:
        items = await contribute(client, headers, v2_body(target))
        assert len(items) == 1
        (item,) = items
        assert set(item) == {"instance_id", "linked", "success", "error"}
        assert (item["instance_id"], item["linked"], item["success"]) == (target, False, False)
        assert item["error"]["code"] == code
        assert target in item["error"]["error"]
    assert await snapshot(gateway.store) == frozen


async def test_a_failing_linked_instance_does_not_stop_the_others(
    client: QuartClient, headers: dict[str, str]
) -> None:
    await create_instance(client, headers, instance("l-paused"))
    await set_status(client, headers, "l-paused", "pause")
    await create_instance(client, headers, instance("l-optin", opt_in_required=True))
    await create_instance(client, headers, instance("l-blocked", blocked_countries=["DE"]))
    await create_instance(client, headers, instance("l-brand", allowed_brands=["demo:brand2"]))
    await create_instance(client, headers, instance("l-vip", segments=["vip"]))
    await create_instance(client, headers, instance("l-jpy", currency="JPY"))  # Fixed 1 JPY
    await create_instance(client, headers, instance("l-ok"))
    links = ["l-paused", "l-optin", "l-blocked", "l-brand", "l-vip", "l-jpy", "l-ok"]
    await create_instance(client, headers, instance("hub", linked_instances=links))

    # 1e9 EUR is a valid wager, but beyond any stake once converted to JPY.
    body = v2_body("hub", base_wager=wager("1000000000"))
    items = await contribute(client, headers, body)
    outcome = [
        (i["instance_id"], i["linked"], i["success"], i.get("error", {}).get("code")) for i in items
    ]
    assert outcome == [
        ("hub", False, True, None),
        ("l-paused", True, False, "INSTANCE_NOT_ACTIVE"),
        ("l-optin", True, False, "NOT_OPTED_IN"),
        ("l-blocked", True, False, "COUNTRY_NOT_ALLOWED"),
        ("l-brand", True, False, "BRAND_NOT_ALLOWED"),
        ("l-vip", True, False, "SEGMENT_NOT_ALLOWED"),
        ("l-jpy", True, False, "WAGER_TOO_LARGE"),
        ("l-ok", True, True, None),
    ]
    for instance_id in ("hub", "l-ok"):
        assert await contributions_of(client, headers, instance_id) == 1
    for instance_id in links[:-1]:
        assert await contributions_of(client, headers, instance_id) == 0


# -- targets and who may contribute ------------------------------------------------------
async def test_a_source_target_resolves_its_instance_and_records_the_source(
    client: QuartClient, headers: dict[str, str]
) -> None:
    await create_instance(client, headers, instance("side"))
    await create_instance(
        client,
        headers,
        instance(
            "by-source",
            segments=["vip"],
            linked_instances=["side"],
            pots=[pot("mini", "0.7", hit_rate(1), seed="3")],
        ),
    )
    response = await post(
        client,
        "/admin/sources",
        {
            "source_id": "roulette",
            "owner_id": "demo:brand1",
            "source_name": "Roulette",
            "instance_ids": ["by-source"],
        },
        headers,
    )
    assert response.status_code == 200
    player = {"id": "p1", "brand_id": "brand1", "country": "DE", "segments": ["vip"]}
    body = v2_body("roulette", "source", player=player, source={"gameround_id": "gr-5"})
    items = await contribute(client, headers, body)
    assert [(i["instance_id"], i["success"]) for i in items] == [
        ("by-source", True),
        ("side", True),
    ]
    result = items[0]["result"]
    assert (result["win_pot_id"], result["win_amount"]) == ("mini", Decimal("3.7"))
    assert result["gameround_id"] == "gr-5"
    response = await client.get("/jackpots/instances/by-source/winners", headers=headers)
    (winner,) = await exact_json(response)
    assert (winner["source_id"], winner["gameround_id"]) == ("roulette", "gr-5")

    # Without the segment: refused before anything is written.
    no_vip = v2_body("roulette", "source", player={**player, "segments": ["basic"]})
    status, code, _ = await error_of(await post(client, CONTRIBUTE_V2, no_vip, headers))
    assert (status, code) == (403, "SEGMENT_NOT_ALLOWED")
    missing = v2_body("nope", "source")
    assert (await error_of(await post(client, CONTRIBUTE_V2, missing, headers)))[:2] == (
        404,
        "SOURCE_NOT_FOUND",
    )


async def test_owner_id_is_an_alias_of_operator_id(
    client: QuartClient, headers: dict[str, str]
) -> None:
    await create_instance(client, headers, instance("alias"))
    body = v2_body("alias")
    body["owner_id"] = body.pop("operator_id")
    items = await contribute(client, headers, body)
    assert items[0]["success"] is True
    both = {**v2_body("alias"), "owner_id": "demo"}
    assert (await contribute(client, headers, both))[0]["success"] is True
    differ = {**v2_body("alias"), "owner_id": "rival"}
    status, code, details = await error_of(await post(client, CONTRIBUTE_V2, differ, headers))
    assert (status, code, list(details)) == (400, "VALIDATION_ERROR", ["owner_id"])
    assert await contributions_of(client, headers, "alias") == 2


async def test_refusals_are_answered_before_anything_is_written(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    await create_instance(
        client, headers, instance("v2", blocked_countries=["US"], segments=["vip"])
    )
    await create_instance(client, headers, instance("v2-usd", currency="USD"))
    rival = auth(gateway, RIVAL)
    frozen = await snapshot(gateway.store)
    vip = {"id": "p1", "brand_id": "brand1", "country": "DE", "segments": ["vip"]}
    cases: list[tuple[dict[str, Any], dict[str, str], int, str]] = [
        (v2_body("nope", player=vip), headers, 404, "INSTANCE_NOT_FOUND"),
        (v2_body("v2", player=vip, operator_id="rival"), headers, 403, "OPERATOR_FORBIDDEN"),
        (
            v2_body("v2", player=vip, owner_id="rival") | {"operator_id": "rival"},
            headers,
            403,
            "OPERATOR_FORBIDDEN",
        ),
        (v2_body("v2", player=vip), rival, 403, "OPERATOR_FORBIDDEN"),
        (v2_body("v2", player={**vip, "brand_id": "brand9"}), headers, 404, "BRAND_NOT_FOUND"),
        (v2_body("v2", player={**vip, "country": "US"}), headers, 403, "COUNTRY_NOT_ALLOWED"),
        (v2_body("v2"), headers, 403, "SEGMENT_NOT_ALLOWED"),
        (v2_body("v2", player={**vip, "segments": None}), headers, 403, "SEGMENT_NOT_ALLOWED"),
        (v2_body("v2", player=vip, base_wager=wager("1", "XYZ")), headers, 422, "UNKNOWN_CURRENCY"),
        (v2_body("v2-usd", base_wager=wager("999999999.99")), headers, 422, "WAGER_TOO_LARGE"),
        (v2_body("v2", player=vip, base_wager=wager("-1")), headers, 400, "VALIDATION_ERROR"),
        (
            v2_body("v2", player=vip, base_wager={"value": "NaN", "currency": "EUR"}),
            headers,
            400,
            "VALIDATION_ERROR",
        ),
        (
            v2_body("v2", player=vip, base_wager={"value": True, "currency": "EUR"}),
            headers,
            400,
            "VALIDATION_ERROR",
        ),
        (
            v2_body("v2", player=vip, target={"type": "game", "id": "v2"}),
            headers,
            400,
            "VALIDATION_ERROR",
        ),
        (v2_body("v2", player=vip, extra=1), headers, 400, "VALIDATION_ERROR"),
    ]
    wrong = []
    for body, who, status, code in cases:
        got = await error_of(await post(client, CONTRIBUTE_V2, body, who))
        if got[:2] != (status, code):
            wrong.append((body, got))
    assert wrong == []
    for name in ("target", "operator_id", "player", "base_wager"):
        body = v2_body("v2", player=vip)
        del body[name]
        status, code, details = await error_of(await post(client, CONTRIBUTE_V2, body, headers))
        assert (status, code, list(details)) == (400, "VALIDATION_ERROR", [name])
    assert await snapshot(gateway.store) == frozen


# -- idempotency and pass-through -------------------------------------------------------
async def test_a_repeated_v2_idempotency_key_replays_every_first_result(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    await create_instance(client, headers, instance("rep-link"))
    await create_instance(
        client,
        headers,
        instance(
            "rep",
            linked_instances=["rep-link"],
            pots=[pot("mini", "0.7", hit_rate(1), seed="2")],
        ),
    )
    body = v2_body("rep", options={"idempotency_key": "v2-key"})
    first = await contribute(client, headers, body)
    assert [(i["instance_id"], i["success"]) for i in first] == [("rep", True), ("rep-link", True)]
    assert first[0]["result"]["win_amount"] == Decimal("2.7")
    frozen = await snapshot(gateway.store)
    # Like v1: 204, no body, the target's first headers; each first response reads back.
    replay = await post(
        client, CONTRIBUTE_V2, {**body, "player": {**body["player"], "token": "t2"}}, headers
    )
    assert (replay.status_code, await replay.get_data()) == (204, b"")
    assert replay.headers["X-Instance-Id"] == "rep"
    for item in first:
        query = {"instance_id": item["instance_id"], "idempotency_key": "v2-key"}
        recorded = await client.get("/jackpots/contributions", query_string=query, headers=headers)
        assert recorded.status_code == 200
        assert await exact_json(recorded) == item["result"]
    assert recorded.headers["X-Instance-Id"] == "rep-link"
    assert await snapshot(gateway.store) == frozen
    changed = {**body, "base_wager": wager("3")}
    items = await contribute(client, headers, changed)
    assert [(i["instance_id"], i["error"]["code"]) for i in items] == [
        ("rep", "IDEMPOTENCY_MISMATCH")
    ]
    assert await snapshot(gateway.store) == frozen


async def test_event_metadata_reaches_a_win_on_a_linked_instance(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    await create_instance(
        client,
        headers,
        instance("lucky-link", pots=[pot("mini", "0.7", hit_rate(1), seed="10")]),
    )
    await create_instance(client, headers, instance("plain", linked_instances=["lucky-link"]))
    event_metadata = {"campaign": "x", "weight": Decimal("0.5"), "ids": [1, 2]}
    body = v2_body(
        "plain",
        event_metadata=event_metadata,
        player={"id": "w1", "brand_id": "brand2", "country": "SE"},
        base_wager=wager("10", "JPY"),
    )
    items = await contribute(client, headers, body)
    win = items[1]["result"]
    assert (win["win_pot_id"], win["contribution_currency"]) == ("mini", "JPY")
    assert win["win_amount"] == to_player(micros("10.7"), "EUR", "JPY", MULTIPLIERS)  # 1733
    events = await gateway.store.client.xrevrange("{jp:lucky-link}:events")
    data = json.loads(events[0][1]["payload"], parse_float=Decimal)["data"]
    assert data["metadata"] == event_metadata
    assert (data["player_id"], data["brand_id"], data["win_amount"]) == (
        "w1",
        "demo:brand2",
        "10.7",
    )
    assert await gateway.store.client.xlen("{jp:plain}:events") == 0
