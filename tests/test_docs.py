"""/openapi.json is generated from the routes' declarations alone; /docs renders it offline."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from quart.testing import QuartClient

from app import create_app
from app.core.refusals import ELIGIBILITY, Code
from app.edge.contract import declare
from app.edge.openapi import UndeclaredRoute, build_spec
from app.schemas.events import PUBLIC_EVENTS
from tests.conftest import make_settings


async def openapi(client: QuartClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    spec: dict[str, Any] = await response.get_json()
    return spec


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op) for path, item in spec["paths"].items() for method, op in item.items()
    ]


async def test_every_route_is_documented_with_a_sentence_and_its_parameters(
    app: Quart, client: QuartClient
) -> None:
    spec = await openapi(client)
    assert spec["openapi"] == "3.0.3"
    documented = {(path, method) for path, method, _ in operations(spec)}
    for rule in app.url_map.iter_rules():
        if rule.websocket:
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            assert (path, method.lower()) in documented
    for path, method, op in operations(spec):
        summary = op["summary"]
        assert re.fullmatch(r"[A-Z][^.]+\.", summary), (path, method, summary)
        names = {p["name"] for p in op["parameters"] if p["in"] == "path"}
        assert names == set(re.findall(r"{(\w+)}", path)), (path, method)
        assert op["responses"], (path, method)


async def test_admin_routes_are_documented_like_every_other(client: QuartClient) -> None:
    spec = await openapi(client)
    admin = [
        (path, method, op) for path, method, op in operations(spec) if path.startswith("/admin")
    ]
    assert len(admin) >= 15
    for path, method, op in admin:
        assert op["security"] == [{"bearer": []}], path
        assert "403" in op["responses"] and "401" in op["responses"], (path, method)
        # Each declares its scope: the platform's, or an operator's admin on its own objects.
        assert op["x-scope"] in ("platform", "operator"), (path, method)
        assert (
            f"`{'admin' if op['x-scope'] == 'operator' else 'platform'}` role" in op["description"]
        ), (path, method)
        assert any(status.startswith("2") for status in op["responses"]), (path, method)
    ledger = spec["paths"]["/admin/instances/{instance_id}/ledger"]["get"]
    assert {p["name"] for p in ledger["parameters"] if p["in"] == "query"} == {"after", "count"}


async def test_public_routes_have_no_security_and_the_others_do(client: QuartClient) -> None:
    spec = await openapi(client)
    public = {path for path, _, op in operations(spec) if "security" not in op}
    assert public == {
        "/authenticate/service",
        "/health",
        "/ready",
        "/metrics",
        "/openapi.json",
        "/docs",
        "/ticker",
        "/ticker/{name}",
        "/docs/assets/{asset}",
    }
    for path, _, op in operations(spec):
        if path not in public:
            assert "401" in op["responses"], path


async def test_contributions_document_every_answer_honestly(client: QuartClient) -> None:
    spec = await openapi(client)
    contribute = spec["paths"]["/jackpots/contribute"]["post"]
    assert contribute["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Contribute"
    }
    ok = contribute["responses"]["200"]
    # The outcome as JSON, or (asynchronous mode) an empty text/plain body.
    assert set(ok["content"]) == {"application/json", "text/plain"}
    assert set(ok["headers"]) == {"X-Contribution-Id", "X-Instance-Id"}
    replay = contribute["responses"]["204"]
    assert "content" not in replay and set(replay["headers"]) == {
        "X-Contribution-Id",
        "X-Instance-Id",
    }
    for status in ("400", "401", "403", "404", "409", "413"):
        assert status in contribute["responses"], status
    assert "NOT_OPTED_IN" in contribute["responses"]["403"]["description"]
    body = spec["components"]["schemas"]["Contribute"]
    assert {"instance_id", "token", "brand_id", "player_id", "base_wager"} <= set(body["required"])
    assert "session" in body["properties"]["token"]["description"]


async def test_amounts_show_their_precision_and_bounds(client: QuartClient) -> None:
    spec = await openapi(client)
    wager = spec["components"]["schemas"]["Contribute"]["properties"]["base_wager"]
    number, string = wager["anyOf"]
    assert number["type"] == "number" and number["minimum"] == 0
    assert number["maximum"] == 1000000000
    assert number["multipleOf"] == 0.000001
    assert string["type"] == "string" and "{1,6}" in string["pattern"]
    assert "6 decimal places" in wager["description"]


async def test_the_callback_and_preference_are_exact_schemas(client: QuartClient) -> None:
    spec = await openapi(client)
    schemas = spec["components"]["schemas"]
    for name in ("Callback", "ContributionPreference"):
        schema = schemas[name]
        assert schema["type"] == "object" and schema["additionalProperties"] is False
    text = str(spec)
    assert "'anyOf': [{'$ref'" not in text  # no object alternatives beside a bare object


def test_every_refusal_is_declared_once_with_its_status() -> None:
    """app.core.refusals.Code is the one table: each code's value is its name, its status an
    HTTP error status; the eligibility refusals share 403; a code a script answers has the
    message its refusal shows (or is a defect: 500)."""
    assert all(code.value == code.name for code in Code)
    assert all(400 <= code.status <= 599 for code in Code)
    assert {code.status for code in ELIGIBILITY} == {403}
    for code in Code:
        assert code.status == 500 or "{" not in code.text.replace("{id}", "")


async def test_a_route_without_a_declaration_breaks_the_document() -> None:
    app = create_app(make_settings(f"memory://docs-{uuid.uuid4().hex}"))

    @app.get("/undeclared")
    async def undeclared() -> str:
        return "x"

    with pytest.raises(UndeclaredRoute, match="/undeclared"):
        build_spec(app, "1")


async def test_path_parameters_must_all_be_declared() -> None:
    app = create_app(make_settings(f"memory://docs-{uuid.uuid4().hex}"))

    @app.get("/things/<thing_id>")
    @declare("Read a thing.", tag="Things", responses={200: None})
    async def thing(thing_id: str) -> str:
        return thing_id

    with pytest.raises(UndeclaredRoute, match="path parameters"):
        build_spec(app, "1")


async def test_openapi_lists_the_event_catalogue_as_components(client: QuartClient) -> None:
    schemas = (await (await client.get("/openapi.json")).get_json())["components"]["schemas"]
    for event_type in ("JackpotUpdateEvent", "JackpotWinEvent", "RaffleWinEvent", "OptInEvent"):
        assert event_type in schemas, event_type
    assert set(schemas["EventEnvelope"]["required"]) == {
        "event_type",
        "event_id",
        "channel",
        "data",
    }
    # What a client can receive: internal events (InstanceStatusEvent) are not listed.
    published = schemas["EventEnvelope"]["properties"]["event_type"]["enum"]
    assert set(published) == {event_type.value for event_type in PUBLIC_EVENTS}
    assert "InstanceStatusEvent" not in published and "InstanceStatusEvent" not in schemas
    win = schemas["JackpotWinEvent"]["properties"]
    assert win["win_amount"]["type"] == "string"
    assert "ext_player_id" in schemas["OptInEvent"]["properties"]


async def test_docs_page_is_served_without_any_external_resource(client: QuartClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert response.content_type.startswith("text/html")
    page = await response.get_data(as_text=True)
    assert "/openapi.json" in page
    assert not re.search(r"""(src|href)=["']https?://""", page)
    for asset in re.findall(r'(?:src|href)="(/docs/assets/[^"]+)"', page):
        served = await client.get(asset)
        assert served.status_code == 200, asset
        assert len(await served.get_data()) > 500, asset
    assert (await client.get("/docs/assets/index.html")).status_code == 400  # only the assets


async def test_allow_headers_match_the_routes(app: Quart, client: QuartClient) -> None:
    """A method a path does not take is a 405 whose Allow lists exactly what it takes (no
    catch-all rule such as /instances/<id>/<action> shadows a sibling)."""
    adapter = app.url_map.bind("localhost")
    allowed: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.websocket:
            continue
        values = {name: f"x{name}" for name in rule.arguments}
        path = adapter.build(rule.endpoint, values, append_unknown=False)
        allowed.setdefault(path, set()).update(rule.methods or set())
    failures = []
    for path, methods in allowed.items():
        for method in {"GET", "POST", "PUT", "DELETE", "PATCH"} - methods:
            response = await client.open(path, method=method)
            allow = set(response.headers.get("Allow", "").split(", "))
            if response.status_code != 405 or allow != methods - {"OPTIONS"}:
                failures.append((method, path, response.status_code, allow))
    assert failures == []


async def test_store_failures_are_documented_where_they_can_happen(client: QuartClient) -> None:
    spec = await openapi(client)
    for path, method, op in operations(spec):
        touches_store = "security" in op or path == "/authenticate/service"
        assert ("503" in op["responses"]) == (touches_store or path == "/ready"), (path, method)
        assert ("504" in op["responses"]) == (touches_store and method != "get"), (path, method)


def test_every_setting_and_every_lua_script_the_docs_name_exist() -> None:
    """docs/operating.md lists every environment variable app/core/config.py reads, and no page
    names a Lua script file that is not in lua/ (a renamed script leaves no stale name)."""
    root = Path(__file__).resolve().parents[1]
    config = (root / "app" / "core" / "config.py").read_text()
    read = set(re.findall(r'env(?:\.get\(|, )"([A-Z][A-Z0-9_]+)"', config))
    assert {"REDIS_URL", "LEDGER_ARCHIVE_URL", "BODY_TIMEOUT_SECONDS"} <= read
    operating = (root / "docs" / "operating.md").read_text()
    assert sorted(name for name in read if f"`{name}`" not in operating) == []
    scripts = {path.name for path in (root / "lua").glob("*.lua")}
    pages = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    stale = {
        f"{page.name}: {name}"
        for page in pages
        for name in re.findall(r"\b([a-z_]+-\d+\.lua)\b", page.read_text())
        if name not in scripts
    }
    assert sorted(stale) == []


def test_every_file_the_docs_name_exists() -> None:
    """A moved or renamed module leaves no stale path on a page (the examples of a file one
    would add are named as such)."""
    root = Path(__file__).resolve().parents[1]
    examples = {"app/triggers/every_nth.py", "lua/includes/triggers/every_nth.lua"}
    pages = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    named = {
        (page.name, path)
        for page in pages
        for path in re.findall(
            r"\b((?:app|workers|schedulers|bench|tests|lua)/[\w/.-]+\.(?:py|lua|js|yaml))\b",
            page.read_text(),
        )
    }
    assert len(named) > 30
    missing = sorted(
        f"{page}: {path}"
        for page, path in named
        if path not in examples and not (root / path).exists()
    )
    assert missing == []
