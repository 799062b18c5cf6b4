from __future__ import annotations

from quart.testing import QuartClient


async def test_health_answers_the_version(client: QuartClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert (await response.get_json())["version"] == "0.1.0"


async def test_currencies_merge_brand_overrides(
    client: QuartClient, demo_headers: dict[str, str]
) -> None:
    response = await client.get("/currencies/demo:brand2", headers=demo_headers)
    assert response.status_code == 200
    body = await response.get_json()
    assert body["base_currency"] == "EUR"
    assert body["multipliers"]["USD"] == 1.1
    assert body["multipliers"]["GBP"] == 0.86
