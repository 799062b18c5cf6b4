"""A JSON string with a lone UTF-16 surrogate escape (`\\ud800`) is not Unicode that Redis can
store: every JSON body refuses it with 400 at the edge, and nothing is written."""

from __future__ import annotations

import pytest
from quart.testing import QuartClient

from app.core import jsonio
from app.services import Services
from tests.support.http import expect, post, v1_body, v2_body
from tests.support.snapshots import snapshot

pytestmark = pytest.mark.parametrize("redis_url", ["fake"], indirect=True)
LONE = "\\ud800"  # as written in the JSON text


def with_lone_surrogate(text: str, value: str) -> str:
    """The JSON text with `"value"` replaced by a string ending in a lone surrogate escape."""
    assert f'"{value}"' in text
    return text.replace(f'"{value}"', f'"{value}{LONE}"', 1)


@pytest.mark.parametrize(
    ("path", "body", "value"),
    [
        ("/jackpots/contribute", v1_body("weekly-raffle"), "p1"),
        ("/jackpots/contribute", v1_body("weekly-raffle"), "round-1"),
        ("/v2/jackpots/contribute", v2_body("weekly-raffle"), "p1"),
        (
            "/jackpots/optin",
            {
                "instance_id": "daily-drop",
                "brand_id": "demo:brand1",
                "player_id": "p1",
                "player_country": "DE",
                "opt_in": True,
            },
            "p1",
        ),
    ],
)
async def test_a_lone_surrogate_in_any_field_is_a_400_and_writes_nothing(
    client: QuartClient,
    gateway: Services,
    headers: dict[str, str],
    path: str,
    body: dict,
    value: str,
) -> None:
    frozen = await snapshot(gateway.store)
    text = with_lone_surrogate(jsonio.dumps(body), value)
    await expect(await post(client, path, text, headers), 400, "MALFORMED_JSON")
    assert await snapshot(gateway.store) == frozen


async def test_login_with_a_lone_surrogate_username_is_a_400(client: QuartClient) -> None:
    text = '{"username": "demo-service' + LONE + '", "password": "demo-password-123"}'
    await expect(await post(client, "/authenticate/service", text, {}), 400, "MALFORMED_JSON")
    text = '{"username": "x", "password": "' + LONE + 'abcdefghijkl"}'
    await expect(await post(client, "/authenticate/service", text, {}), 400, "MALFORMED_JSON")


async def test_a_surrogate_pair_is_one_character_and_accepted(
    client: QuartClient, headers: dict[str, str]
) -> None:
    text = with_lone_surrogate(jsonio.dumps(v1_body("weekly-raffle")), "p1").replace(
        LONE, "\\ud83d\\ude00"
    )
    response = await post(client, "/jackpots/contribute", text, headers)
    await expect(response, 200)
