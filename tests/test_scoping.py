"""A token speaks for its own operator only: brand resolution on currencies and sources."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

import pytest
from quart.testing import QuartClient

from app.cli import read_definitions
from app.core.security import Principal
from app.services import Services
from tests.conftest import DEMO_FILE

_DEMO = read_definitions(DEMO_FILE)  # parsed once: YAML parsing costs ~50 ms


def demo_without_accounts() -> dict[str, Any]:
    """The demo definitions without their accounts (argon2 hashing is slow)."""
    return {**copy.deepcopy(_DEMO), "accounts": []}


DEMO = Principal("demo-service", "demo", ("admin", "operator"))
RIVAL = Principal("rival-service", "rival", ("operator",))
# Checked before the store is touched (or not backend-specific): one backend is enough.
FAKE_ONLY = pytest.mark.parametrize("redis_url", ["fake"], indirect=True)

STARBURST = {
    "source_id": "starburst",
    "owner_id": "demo:brand1",
    "source_name": "Starburst",
    "instance_ids": ["daily-drop", "weekly-raffle"],
}
SPORTSBOOK = {
    "source_id": "sportsbook",
    "owner_id": "demo:brand2",
    "source_name": "Sportsbook",
    "instance_ids": ["daily-drop"],
}
BASE_MULTIPLIERS = {
    "EUR": Decimal("1"),
    "USD": Decimal("1.08"),
    "GBP": Decimal("0.86"),
    "SEK": Decimal("11.4"),
    "JPY": Decimal("162"),
}


@pytest.fixture
async def config(gateway: Services) -> None:
    """The demo definitions, without the accounts (tokens are issued directly below)."""
    await gateway.admin.apply(demo_without_accounts(), lambda name: None)


@pytest.fixture
def demo_auth(gateway: Services) -> dict[str, str]:
    return {"Authorization": f"Bearer {gateway.tokens.issue(DEMO)}"}


@pytest.fixture
def rival_auth(gateway: Services) -> dict[str, str]:
    return {"Authorization": f"Bearer {gateway.tokens.issue(RIVAL)}"}


async def exact_json(response: Any) -> Any:
    """The body with decimals parsed exactly (1.10 must not become a float near 1.1)."""
    return json.loads(await response.get_data(as_text=True), parse_float=Decimal)


async def error_code(response: Any) -> str:
    body = await response.get_json()
    assert set(body) == {"error", "code", "details"}
    return str(body["code"])


# -- currencies ----------------------------------------------------------------------
async def test_currencies_of_a_brand_without_overrides(
    client: QuartClient, config: None, demo_auth: dict[str, str]
) -> None:
    response = await client.get("/currencies/demo:brand1", headers=demo_auth)
    assert response.status_code == 200
    assert await exact_json(response) == {
        "brand_id": "demo:brand1",
        "base_currency": "EUR",
        "multipliers": BASE_MULTIPLIERS,
    }


async def test_currencies_merge_the_brand_override_exactly(
    client: QuartClient, config: None, demo_auth: dict[str, str]
) -> None:
    response = await client.get("/currencies/demo:brand2", headers=demo_auth)
    assert response.status_code == 200
    body = await exact_json(response)
    assert body["multipliers"] == {**BASE_MULTIPLIERS, "USD": Decimal("1.10")}
    # Written as a JSON number with its own digits, never through a float.
    assert '"USD":1.1' in (await response.get_data(as_text=True)).replace(" ", "")


async def test_a_bare_brand_id_is_a_brand_of_the_callers_operator(
    client: QuartClient, config: None, demo_auth: dict[str, str], rival_auth: dict[str, str]
) -> None:
    response = await client.get("/currencies/brand2", headers=demo_auth)
    assert response.status_code == 200
    body = await exact_json(response)
    assert body["brand_id"] == "brand2"
    assert body["multipliers"]["USD"] == Decimal("1.1")
    # The rival has no brand2: its bare id does not reach the demo operator's brand.
    response = await client.get("/currencies/brand2", headers=rival_auth)
    assert response.status_code == 404
    assert await error_code(response) == "BRAND_NOT_FOUND"
    response = await client.get("/currencies/main", headers=rival_auth)
    assert response.status_code == 200
    assert (await exact_json(response))["multipliers"] == BASE_MULTIPLIERS


@FAKE_ONLY
@pytest.mark.parametrize("brand", ["demo:brand1", "demo:brand2", "demo:unknown", "ghost:brand1"])
async def test_another_operators_brand_is_forbidden(
    client: QuartClient, config: None, rival_auth: dict[str, str], brand: str
) -> None:
    response = await client.get(f"/currencies/{brand}", headers=rival_auth)
    assert response.status_code == 403
    assert await error_code(response) == "OPERATOR_FORBIDDEN"


@FAKE_ONLY
@pytest.mark.parametrize("brand", ["demo:brand3", "brand3"])
async def test_an_unknown_brand_of_the_own_operator_is_not_found(
    client: QuartClient, config: None, demo_auth: dict[str, str], brand: str
) -> None:
    response = await client.get(f"/currencies/{brand}", headers=demo_auth)
    assert response.status_code == 404
    body = await response.get_json()
    assert body["code"] == "BRAND_NOT_FOUND"
    assert body["error"] == "Brand demo:brand3 does not exist."


async def test_currencies_before_any_are_configured(
    client: QuartClient, gateway: Services, demo_auth: dict[str, str]
) -> None:
    await gateway.admin.put_operator(
        {"id": "demo", "name": None, "brands": ["brand1"], "callback_secret": None}
    )
    response = await client.get("/currencies/brand1", headers=demo_auth)
    assert response.status_code == 404
    assert await error_code(response) == "CURRENCIES_NOT_CONFIGURED"


# -- sources -------------------------------------------------------------------------
async def test_sources_of_an_owner(
    client: QuartClient, config: None, demo_auth: dict[str, str]
) -> None:
    response = await client.get("/jackpots/sources?owner_id=demo:brand1", headers=demo_auth)
    assert response.status_code == 200
    assert await response.get_json() == [STARBURST]
    response = await client.get("/jackpots/sources?owner_id=brand2", headers=demo_auth)
    assert response.status_code == 200
    assert await response.get_json() == [SPORTSBOOK]


@FAKE_ONLY
@pytest.mark.parametrize(
    ("name", "expected"),
    [("STAR", [STARBURST]), ("burst", [STARBURST]), ("sTaRbUrSt", [STARBURST]), ("book", [])],
)
async def test_the_name_filter_is_a_case_insensitive_substring(
    client: QuartClient,
    config: None,
    demo_auth: dict[str, str],
    name: str,
    expected: list[Any],
) -> None:
    response = await client.get(
        "/jackpots/sources",
        query_string={"owner_id": "demo:brand1", "name": name},
        headers=demo_auth,
    )
    assert response.status_code == 200
    assert await response.get_json() == expected


async def test_sources_of_another_operator_are_forbidden(
    client: QuartClient, config: None, rival_auth: dict[str, str]
) -> None:
    response = await client.get("/jackpots/sources?owner_id=demo:brand1", headers=rival_auth)
    assert response.status_code == 403
    assert await error_code(response) == "OPERATOR_FORBIDDEN"


async def test_sources_of_an_unknown_brand(
    client: QuartClient, config: None, demo_auth: dict[str, str]
) -> None:
    response = await client.get("/jackpots/sources?owner_id=demo:nope", headers=demo_auth)
    assert response.status_code == 404
    assert await error_code(response) == "BRAND_NOT_FOUND"


async def test_sources_need_an_owner(
    client: QuartClient, config: None, demo_auth: dict[str, str]
) -> None:
    response = await client.get("/jackpots/sources", headers=demo_auth)
    assert response.status_code == 400
    body = await response.get_json()
    assert body["code"] == "VALIDATION_ERROR"
    assert list(body["details"]) == ["owner_id"]
