"""/openapi.json is generated from the schemas the routes use; /docs renders it offline."""

from __future__ import annotations

import re

from quart import Quart
from quart.testing import QuartClient

from app.openapi import OPERATIONS


async def test_openapi_documents_every_operator_route_with_its_schemas(
    app: Quart, client: QuartClient
) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    spec = await response.get_json()
    assert spec["openapi"] == "3.0.3"
    documented = {(path, method) for path, item in spec["paths"].items() for method in item}
    for rule in app.url_map.iter_rules():
        if rule.websocket:
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            assert (path, method.lower()) in documented
        if not rule.endpoint.startswith(("admin.", "docs.")):
            assert rule.endpoint in OPERATIONS, f"{rule.endpoint} has no OpenAPI description"
    contribute = spec["paths"]["/jackpots/contribute"]["post"]
    assert contribute["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Contribute"
    }
    body = spec["components"]["schemas"]["Contribute"]
    assert body["properties"]["base_wager"]["type"] == "number"
    assert {"instance_id", "token", "brand_id", "player_id", "base_wager"} <= set(body["required"])
    assert contribute["security"] == [{"bearer": []}]
    assert "security" not in spec["paths"]["/health"]["get"]


async def test_docs_page_is_served_without_any_external_resource(client: QuartClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert response.content_type.startswith("text/html")
    page = await response.get_data(as_text=True)
    assert "/openapi.json" in page
    assert not re.search(r"""(src|href)=["']https?://""", page)
