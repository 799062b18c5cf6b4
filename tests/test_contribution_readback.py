"""A caller who lost a contribution's response reads it back by its idempotency key:
GET /jackpots/contributions?instance_id=&idempotency_key= answers the first response exactly
(a win included, amounts in the player's currency), for v1 and v2 alike; a retry answers 204."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from quart.testing import QuartClient

from app.services import Services
from tests.conftest import RIVAL, auth
from tests.support.definitions import hit_rate, instance, pot
from tests.support.http import create_instance, error_of, exact_json, post, v1_body, view
from tests.support.money import MULTIPLIERS, micros, to_player

RECORDED = "/jackpots/contributions"


async def read_back(
    client: QuartClient, headers: dict[str, str], instance_id: str, key: str
) -> Any:
    query = {"instance_id": instance_id, "idempotency_key": key}
    return await client.get(RECORDED, query_string=query, headers=headers)


async def test_the_first_response_reads_back_exactly_win_and_metadata_included(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    await create_instance(
        client, headers, instance("lucky", pots=[pot("mini", "0.7", hit_rate(1), seed="10")])
    )
    metadata = {"bet": "b-1", "odds": Decimal("2.50"), "n": [1, 2]}
    body = v1_body(
        "lucky",
        idempotency_key="bet-1",
        currency="SEK",
        base_wager=Decimal("20"),
        metadata=metadata,
    )
    first = await post(client, "/jackpots/contribute", body, headers)
    assert first.status_code == 200
    answered = await exact_json(first)
    # mini held its seed 10 EUR plus 70% of the 1 EUR contribution when it dropped
    assert answered["win_amount"] == to_player(micros("10.7"), "EUR", "SEK", MULTIPLIERS)
    before = await view(client, headers, "lucky")

    recorded = await read_back(client, headers, "lucky", "bet-1")
    assert recorded.status_code == 200
    assert await exact_json(recorded) == answered
    assert await exact_json(recorded) == {**answered, "metadata": metadata}
    for name in ("X-Contribution-Id", "X-Instance-Id"):
        assert recorded.headers[name] == first.headers[name]

    # A retry with a refreshed player session token is the same contribution.
    retry = await post(client, "/jackpots/contribute", {**body, "token": "refreshed"}, headers)
    assert (retry.status_code, await retry.get_data()) == (204, b"")
    assert retry.headers["X-Contribution-Id"] == first.headers["X-Contribution-Id"]
    assert await view(client, headers, "lucky") == before


async def test_unknown_keys_other_operators_and_bad_queries_are_refused(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    await create_instance(client, headers, instance("plain"))
    keyless = await post(client, "/jackpots/contribute", v1_body("plain"), headers)
    assert keyless.status_code == 200
    keyed = await post(
        client, "/jackpots/contribute", v1_body("plain", idempotency_key="k"), headers
    )
    assert keyed.status_code == 200

    assert (await error_of(await read_back(client, headers, "plain", "other")))[:2] == (
        404,
        "CONTRIBUTION_NOT_FOUND",
    )
    assert (await error_of(await read_back(client, headers, "nowhere", "k")))[:2] == (
        404,
        "INSTANCE_NOT_FOUND",
    )
    rival = auth(gateway, RIVAL)  # the key is the demo operator's: unknown to the rival
    status, code, _ = await error_of(await read_back(client, rival, "plain", "k"))
    assert (status, code) in {(404, "INSTANCE_NOT_FOUND"), (404, "CONTRIBUTION_NOT_FOUND")}
    bad = await client.get(RECORDED, query_string={"instance_id": "plain"}, headers=headers)
    status, code, details = await error_of(bad)
    assert (status, code, list(details)) == (400, "VALIDATION_ERROR", ["idempotency_key"])
    assert (await client.get(RECORDED, query_string={"instance_id": "plain"})).status_code == 401


async def test_the_read_back_is_the_first_answer_byte_for_byte_whatever_the_rates_do(
    client: QuartClient,
    gateway: Services,
    headers: dict[str, str],
    platform_auth: dict[str, str],
) -> None:
    """Issue 25, defect 5: a charge of 10 in a 6-digit currency is credited what it is worth
    (rounded down to the micro-unit); the read-back still says 10, not the credited amount
    shown back (9.999999), and shows the win with the first answer's rates after they
    changed."""
    currencies = await exact_json(await client.get("/admin/currencies", headers=platform_auth))
    currencies["multipliers"]["MIC"] = Decimal("1234.56789")
    currencies["decimals"] = {**currencies.get("decimals", {}), "MIC": 6}
    response = await client.put("/admin/currencies", json=_plain(currencies), headers=platform_auth)
    assert response.status_code == 200, await response.get_data(as_text=True)
    await create_instance(
        client,
        headers,
        instance(
            "exact",
            contribution_type={"Percentage": "1"},
            pots=[pot("mini", "0.7", hit_rate(1), seed="10")],
        ),
    )
    body = v1_body("exact", idempotency_key="k-10", currency="MIC", base_wager=Decimal("10"))
    first = await post(client, "/jackpots/contribute", body, headers)
    assert first.status_code == 200
    answered = await first.get_data()
    assert (await exact_json(first))["contribution_amount"] == Decimal("10")
    assert (await view(client, headers, "exact"))["totals"]["contributions"] == Decimal("0.0081")
    recorded = await read_back(client, headers, "exact", "k-10")
    assert await recorded.get_data() == answered
    currencies["multipliers"]["MIC"] = Decimal("2000")
    response = await client.put("/admin/currencies", json=_plain(currencies), headers=platform_auth)
    assert response.status_code == 200
    recorded = await read_back(client, headers, "exact", "k-10")
    assert await recorded.get_data() == answered


def _plain(value: Any) -> Any:
    """JSON-ready: Decimals as strings."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return str(value) if isinstance(value, Decimal) else value
