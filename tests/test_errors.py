"""Every error is JSON {error, code, details} with a stable code; /metrics counts requests."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from quart import Quart
from quart.testing import QuartClient

from app import create_app
from app.core.security import Principal
from app.services import Services
from tests.conftest import make_settings

# The platform role: currencies (below) are the platform's.
ADMIN = Principal("platform-admin", "provider", ("platform",))
LIMIT = 64 * 1024


@pytest.fixture
async def app() -> AsyncIterator[Quart]:
    """Error handling does not depend on the backend: fakeredis only."""
    application = create_app(make_settings(f"memory://errors-{uuid.uuid4().hex}"))

    async def boom() -> None:
        raise RuntimeError("secret internals")

    boom.is_public = True  # type: ignore[attr-defined]
    application.add_url_rule("/test-only/boom", "boom", boom)
    async with application.test_app():
        yield application


@pytest.fixture
def admin(app: Quart) -> dict[str, str]:
    gateway: Services = app.extensions["gateway"]
    return {"Authorization": f"Bearer {gateway.tokens.issue(ADMIN)}"}


async def error_body(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, await response.get_data(as_text=True)
    assert response.content_type == "application/json"
    body = await response.get_json()
    assert set(body) == {"error", "code", "details"}, body
    assert body["code"] == code, body
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["details"], dict)
    return dict(body)


# -- routing -------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/nope", "/jackpots", "/admin", "/currencies/"])
async def test_unknown_route(client: QuartClient, path: str) -> None:
    body = await error_body(await client.get(path), 404, "NOT_FOUND")
    assert body == {"error": "No such resource.", "code": "NOT_FOUND", "details": {}}


async def test_unknown_route_with_a_token(client: QuartClient, admin: dict[str, str]) -> None:
    await error_body(await client.get("/admin/nothing-here", headers=admin), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/health", {"GET", "HEAD"}),
        ("GET", "/authenticate/service", {"POST"}),
        ("PUT", "/admin/instances", {"GET", "HEAD", "POST"}),
        ("OPTIONS", "/metrics", {"GET", "HEAD"}),
    ],
)
async def test_wrong_method(client: QuartClient, method: str, path: str, allowed: set[str]) -> None:
    response = await client.open(path, method=method)
    body = await error_body(response, 405, "METHOD_NOT_ALLOWED")
    assert body["error"] == f"Method {method} is not allowed here."
    assert {m.strip() for m in response.headers["Allow"].split(",")} == allowed


# -- bodies --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw",
    ['{"username": "a", ', "not json", "", "{'single': 'quotes'}", "[" * 30_000 + "]" * 30_000],
    ids=["truncated", "text", "empty", "single-quotes", "deeply-nested"],
)
async def test_malformed_json(client: QuartClient, raw: str) -> None:
    response = await client.post(
        "/authenticate/service", data=raw, headers={"Content-Type": "application/json"}
    )
    await error_body(response, 400, "MALFORMED_JSON")


async def test_malformed_json_on_an_admin_route(client: QuartClient, admin: dict[str, str]) -> None:
    response = await client.post(
        "/admin/instances",
        data="{",
        headers={**admin, "Content-Type": "application/json"},
    )
    await error_body(response, 400, "MALFORMED_JSON")


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
async def test_non_finite_json_numbers_are_refused(
    client: QuartClient, admin: dict[str, str], constant: str
) -> None:
    raw = '{"base_currency": "EUR", "multipliers": {"EUR": 1, "USD": ' + constant + "}}"
    response = await client.put(
        "/admin/currencies", data=raw, headers={**admin, "Content-Type": "application/json"}
    )
    await error_body(response, 400, "MALFORMED_JSON")
    raw = '{"username": "a", "password": ' + constant + "}"
    response = await client.post(
        "/authenticate/service", data=raw, headers={"Content-Type": "application/json"}
    )
    await error_body(response, 400, "MALFORMED_JSON")


def padded_login(size: int) -> bytes:
    """A login body of exactly `size` bytes (the padding is an unknown field)."""
    empty = '{"username": "u", "password": "p", "pad": ""}'
    raw = empty.replace('""}', '"' + "x" * (size - len(empty)) + '"}').encode()
    assert len(raw) == size
    return raw


async def test_a_body_of_exactly_64_kib_is_read(client: QuartClient) -> None:
    response = await client.post(
        "/authenticate/service",
        data=padded_login(LIMIT),
        headers={"Content-Type": "application/json"},
    )
    body = await error_body(response, 400, "VALIDATION_ERROR")
    assert list(body["details"]) == ["pad"]


@pytest.mark.parametrize("path", ["/authenticate/service", "/admin/instances"])
async def test_a_body_over_64_kib_is_refused(
    client: QuartClient, admin: dict[str, str], path: str
) -> None:
    response = await client.post(
        path,
        data=padded_login(LIMIT + 1),
        headers={**admin, "Content-Type": "application/json"},
    )
    body = await error_body(response, 413, "BODY_TOO_LARGE")
    assert body["error"] == f"The body is larger than {LIMIT} bytes."


async def test_validation_errors_name_the_field(client: QuartClient) -> None:
    response = await client.post("/authenticate/service", json={"username": 5})
    body = await error_body(response, 400, "VALIDATION_ERROR")
    assert sorted(body["details"]) == ["password", "username"]


async def test_an_unexpected_exception_is_a_json_500_without_internals(
    client: QuartClient, caplog: pytest.LogCaptureFixture
) -> None:
    response = await client.get("/test-only/boom")
    body = await error_body(response, 500, "INTERNAL_ERROR")
    assert body == {
        "error": "An unexpected error occurred.",
        "code": "INTERNAL_ERROR",
        "details": {},
    }
    assert "secret internals" not in await response.get_data(as_text=True)
    assert "secret internals" in caplog.text  # logged for the operator, not answered


async def test_error_bodies_are_plain_json_objects(client: QuartClient) -> None:
    response = await client.get("/nope")
    assert response.content_type == "application/json"
    body = json.loads(await response.get_data(as_text=True))
    assert isinstance(body, dict)
    assert set(body) == {"error", "code", "details"}
    assert (body["code"], type(body["error"])) == ("NOT_FOUND", str)


# -- metrics -------------------------------------------------------------------------
async def test_metrics_count_requests_by_route_and_status(client: QuartClient) -> None:
    assert (await client.get("/health")).status_code == 200
    assert (await client.get("/health")).status_code == 200
    assert (await client.get("/currencies/brand1")).status_code == 401
    assert (await client.get("/nope")).status_code == 404
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type == "text/plain; version=0.0.4; charset=utf-8"
    lines = (await response.get_data(as_text=True)).splitlines()
    assert "# TYPE jg_http_requests_total counter" in lines
    assert 'jg_http_requests_total{method="GET",route="/health",status="200"} 2.0' in lines
    assert (
        'jg_http_requests_total{method="GET",route="/currencies/<brand_id>",status="401"} 1.0'
        in lines
    )
    assert 'jg_http_requests_total{method="GET",route="unmatched",status="404"} 1.0' in lines
    assert "# TYPE jg_http_request_seconds histogram" in lines
    assert 'jg_http_request_seconds_count{route="/health"} 2.0' in lines
    assert 'jg_http_request_seconds_bucket{le="+Inf",route="/health"} 2.0' in lines
