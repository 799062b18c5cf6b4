"""Every route but the public ones needs a token: proven by walking the URL map."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from quart import Quart
from werkzeug.routing import FloatConverter, IntegerConverter, Rule, UUIDConverter

from app import create_app
from tests.conftest import make_settings

# The only routes reachable without a token (DESIGN.md section 3).
REQUIRED_PUBLIC = {"/authenticate/service", "/health", "/ready", "/metrics"}
# Documentation and the ticker page (it takes its token in the page) may be public; nothing else.
OPTIONAL_PUBLIC = {"/openapi.json", "/docs", "/docs/assets/<asset>", "/ticker", "/ticker/<name>"}
SKIPPED_METHODS = {"HEAD", "OPTIONS"}


@pytest.fixture
async def app() -> AsyncIterator[Quart]:
    application = create_app(make_settings(f"memory://urlmap-{uuid.uuid4().hex}"))
    async with application.test_app():
        yield application


def is_public(app: Quart, rule: Rule) -> bool:
    return bool(getattr(app.view_functions[rule.endpoint], "is_public", False))


def dummy_value(rule: Rule, name: str) -> str:
    converter = rule._converters[name]
    if isinstance(converter, IntegerConverter):
        return "7"
    if isinstance(converter, FloatConverter):
        return "7.5"
    if isinstance(converter, UUIDConverter):
        return "00000000-0000-4000-8000-000000000000"
    return f"dummy-{name}"


def probes(app: Quart) -> list[tuple[str, str, str]]:
    """(endpoint, method, path) for every protected HTTP rule and method."""
    adapter = app.url_map.bind("localhost")
    found = []
    for rule in app.url_map.iter_rules():
        if rule.websocket or is_public(app, rule):
            continue
        values = {name: dummy_value(rule, name) for name in rule.arguments}
        path = adapter.build(rule.endpoint, values, append_unknown=False)
        for method in sorted((rule.methods or set()) - SKIPPED_METHODS):
            # Make sure the dummy path really reaches this rule (not a sibling).
            endpoint, _ = adapter.match(path, method)
            assert endpoint == rule.endpoint, (path, method, endpoint)
            found.append((rule.endpoint, method, path))
    return found


def test_the_public_routes_are_exactly_the_expected_ones(app: Quart) -> None:
    public = {
        rule.rule
        for rule in app.url_map.iter_rules()
        if not rule.websocket and is_public(app, rule)
    }
    assert public >= REQUIRED_PUBLIC
    assert public - REQUIRED_PUBLIC <= OPTIONAL_PUBLIC, public - REQUIRED_PUBLIC


def test_there_are_protected_routes_to_probe(app: Quart) -> None:
    endpoints = {endpoint for endpoint, _, _ in probes(app)}
    # A floor, so that a broken walk (no rules found) cannot pass the tests below vacuously.
    assert {
        "admin.create_instance",
        "admin.pause_instance",
        "admin.ledger",
        "catalog.currencies",
        "catalog.sources",
    } <= endpoints


async def test_every_protected_route_refuses_a_request_without_token(app: Quart) -> None:
    client = app.test_client()
    failures = []
    for endpoint, method, path in probes(app):
        response = await client.open(path, method=method)
        body = await response.get_json(silent=True)
        code = body.get("code") if isinstance(body, dict) else None
        if response.status_code != 401 or code != "MISSING_TOKEN":
            failures.append((endpoint, method, path, response.status_code, code))
    assert failures == []


async def test_every_protected_route_refuses_a_bad_token(app: Quart) -> None:
    client = app.test_client()
    failures = []
    for endpoint, method, path in probes(app):
        response = await client.open(
            path, method=method, headers={"Authorization": "Bearer not.a.token"}, json={}
        )
        body = await response.get_json(silent=True)
        code = body.get("code") if isinstance(body, dict) else None
        if response.status_code != 401 or code != "INVALID_TOKEN":
            failures.append((endpoint, method, path, response.status_code, code))
    assert failures == []


async def test_public_routes_answer_without_token(app: Quart) -> None:
    client = app.test_client()
    health = await client.get("/health")
    assert health.status_code == 200
    assert await health.get_json() == {"version": "0.1.0"}
    assert (await client.get("/metrics")).status_code == 200
    # Reaches the view (a validation error), not the token check.
    response = await client.post("/authenticate/service", json={})
    assert response.status_code == 400
    assert (await response.get_json())["code"] == "VALIDATION_ERROR"


async def test_head_requests_are_protected_too(app: Quart) -> None:
    """HEAD runs the GET view: it must not answer without a token either."""
    client = app.test_client()
    adapter = app.url_map.bind("localhost")
    failures = []
    for rule in app.url_map.iter_rules():
        if rule.websocket or is_public(app, rule) or "HEAD" not in (rule.methods or set()):
            continue
        values = {name: dummy_value(rule, name) for name in rule.arguments}
        path = adapter.build(rule.endpoint, values, append_unknown=False)
        response = await client.open(path, method="HEAD")
        if response.status_code != 401:
            failures.append((rule.endpoint, path, response.status_code))
    assert failures == []
