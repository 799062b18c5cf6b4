"""The request examples /docs pre-fills are requests the server accepts: every requestBody
example of the served /openapi.json, sent to its route with an admin token of operator
`demo` on a fresh copy of the demo data (examples/demo.yaml), is answered 2xx."""

from __future__ import annotations

import json

import pytest
from quart.testing import QuartClient

from app import create_app
from app.core import jsonio
from app.edge.openapi import build_spec
from tests.conftest import make_settings

DOCUMENT = json.loads(jsonio.dumps(build_spec(create_app(make_settings("memory://spec")), "x")))
OPERATIONS = [
    (method, path)
    for path, operations in DOCUMENT["paths"].items()
    for method, operation in operations.items()
    if "requestBody" in operation
]
# Path parameters, as a person trying the route in /docs would type them (the demo's names).
PATH_VALUES = {"instance_id": "daily-drop", "username": "demo-service", "win_id": "no-such-win"}
# The one refusal allowed, about state and not shape: the demo data has no withheld win to
# decide (every demo pot's wins are below daily-drop's auto_payout_limit, so they are paid at
# once), and a win's id cannot be known before the win.
STATE_REFUSALS = {
    "/admin/instances/{instance_id}/wins/{win_id}/approve": (404, "WIN_NOT_FOUND"),
    "/admin/instances/{instance_id}/wins/{win_id}/reject": (404, "WIN_NOT_FOUND"),
}


def test_every_request_body_has_an_example() -> None:
    assert len(OPERATIONS) >= 15
    missing = [
        f"{method.upper()} {path}"
        for method, path in OPERATIONS
        if "example"
        not in DOCUMENT["paths"][path][method]["requestBody"]["content"]["application/json"]
    ]
    assert missing == [], "a request body schema without EXAMPLE (app/schemas/common.py)"


@pytest.mark.usefixtures("cheap_passwords")
@pytest.mark.parametrize("redis_url", ["fake"], indirect=True)
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
async def test_the_example_is_accepted(
    client: QuartClient,
    demo_headers: dict[str, str],
    platform_headers: dict[str, str],
    method: str,
    path: str,
) -> None:
    served = json.loads(await (await client.get("/openapi.json")).get_data(as_text=True))
    operation = served["paths"][path][method]
    example = operation["requestBody"]["content"]["application/json"]["example"]
    # as a reader of /docs would: the demo operator's account, the platform's for its routes
    headers = platform_headers if operation.get("x-scope") == "platform" else demo_headers
    response = await client.open(
        path.format(**PATH_VALUES),
        method=method.upper(),
        data=jsonio.dumps(example),
        headers={**headers, "Content-Type": "application/json"},
    )
    text = await response.get_data(as_text=True)
    expected = STATE_REFUSALS.get(path)
    if expected is None:
        assert 200 <= response.status_code < 300, text
    else:
        assert (response.status_code, json.loads(text)["code"]) == expected, text
