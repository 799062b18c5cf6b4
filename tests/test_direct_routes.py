"""The direct contribution routes (app.edge.direct) answer exactly as the Quart views do.

The same requests go to two apps, each on its own store loaded alike: one as deployed (the
contribution routes answered straight from ASGI), one with `DIRECT_ROUTES=false` (every
request through Quart's views). Every answer must match: status, headers and body (only
fresh ids, times and the generated request id aside), and so must the request metrics and
the access log lines. A third check shows the direct routes really are taken: a contribution
that reaches the store never enters Quart's request handling, and a request that is refused
before the store does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from quart import Quart, request, request_started
from quart.testing import QuartClient

from app import create_app
from app.core import jsonio
from app.core.security import Principal
from app.edge.direct import QUART_SETTINGS
from app.services import Services
from tests.conftest import DEMO, RIVAL, auth, load_demo, make_settings
from tests.support.definitions import instance
from tests.support.http import (
    create_instance,
    exact_json,
    put_source,
    set_status,
    source_body,
    v1_body,
    v2_body,
)

MAX_BODY = 2048
BODY_TIMEOUT_S = 0.5
CONTRIBUTE = "/jackpots/contribute"


@dataclass
class Side:
    app: Quart
    client: QuartClient
    headers: dict[str, str]
    rival: dict[str, str]
    admin_only: dict[str, str]  # operator demo, role admin: manages, does not contribute
    quart_requests: list[str] = field(default_factory=list)  # paths Quart's handling saw


async def open_side(direct: bool) -> AsyncIterator[Side]:
    settings = make_settings(
        f"memory://direct-{uuid.uuid4().hex}",
        direct_routes=direct,
        max_body_bytes=MAX_BODY,
        body_timeout_s=BODY_TIMEOUT_S,
    )
    app = create_app(settings)
    side: Side | None = None

    async def seen(sender: Quart, **_: Any) -> None:
        if side is not None:
            side.quart_requests.append(request.path)

    request_started.connect(seen, app)
    async with app.test_app():
        gateway: Services = app.extensions["gateway"]
        await load_demo(gateway)
        side = Side(
            app,
            app.test_client(),
            auth(gateway, DEMO),
            auth(gateway, RIVAL),
            auth(gateway, Principal("demo-admin", "demo", ("admin",))),
        )
        await create_instance(side.client, side.headers, instance("eq"))
        await create_instance(side.client, side.headers, instance("paused"))
        await set_status(side.client, side.headers, "paused", "pause")
        await put_source(side.client, side.headers, "eq-source", ["eq"])
        side.quart_requests.clear()
        yield side


@pytest.fixture
async def direct() -> AsyncIterator[Side]:
    async for side in open_side(True):
        yield side


@pytest.fixture
async def quart_only() -> AsyncIterator[Side]:
    async for side in open_side(False):
        yield side


def request_cases(side: Side) -> list[tuple[str, str, Any, dict[str, str]]]:
    """(what, path, body: a JSON value or raw bytes, headers) in the order they are sent."""
    token = {**side.headers, "Content-Type": "application/json"}
    admin_only = {**side.admin_only, "Content-Type": "application/json"}
    keyed = v1_body("eq", idempotency_key="key-1")
    return [
        ("a contribution", CONTRIBUTE, v1_body("eq"), token),
        ("with a caller's request id", CONTRIBUTE, v1_body("eq"), {**token, "X-Request-Id": "r-1"}),
        ("with an idempotency key", CONTRIBUTE, keyed, token),
        ("the same again: a replay", CONTRIBUTE, keyed, token),
        ("the key with another body", CONTRIBUTE, {**keyed, "base_wager": "3.00"}, token),
        ("by source", f"{CONTRIBUTE}/source", source_body("eq-source"), token),
        ("v2", "/v2/jackpots/contribute", v2_body("eq"), token),
        (
            "v2 replayed",
            "/v2/jackpots/contribute",
            v2_body("eq", options={"idempotency_key": "v2-1"}),
            token,
        ),
        (
            "v2 replayed again",
            "/v2/jackpots/contribute",
            v2_body("eq", options={"idempotency_key": "v2-1"}),
            token,
        ),
        ("an unknown instance", CONTRIBUTE, v1_body("nope"), token),
        ("a paused instance", CONTRIBUTE, v1_body("paused"), token),
        (
            "another operator's brand",
            CONTRIBUTE,
            v1_body("eq"),
            {**side.rival, "Content-Type": "application/json"},
        ),
        ("an unknown currency", CONTRIBUTE, v1_body("eq", currency="XXX"), token),
        ("an admin-only token", CONTRIBUTE, v1_body("eq"), admin_only),
        ("an admin-only token, v2", "/v2/jackpots/contribute", v2_body("eq"), admin_only),
        ("no token", CONTRIBUTE, v1_body("eq"), {"Content-Type": "application/json"}),
        ("a bad token", CONTRIBUTE, v1_body("eq"), {"Authorization": "Bearer nope"}),
        ("not a bearer token", CONTRIBUTE, v1_body("eq"), {"Authorization": "Basic eA=="}),
        ("malformed JSON", CONTRIBUTE, b'{"instance_id": ', token),
        ("a key twice", CONTRIBUTE, b'{"instance_id": "eq", "instance_id": "eq"}', token),
        ("an empty body", CONTRIBUTE, b"", token),
        ("a negative wager", CONTRIBUTE, v1_body("eq", base_wager="-1"), token),
        ("a body over the limit", CONTRIBUTE, b" " * (MAX_BODY + 1), token),
        ("a trailing slash", CONTRIBUTE + "/", v1_body("eq"), token),
    ]


ANSWERED_DIRECTLY = {
    "a contribution",
    "with a caller's request id",
    "with an idempotency key",
    "the same again: a replay",
    "the key with another body",
    "by source",
    "v2",
    "v2 replayed",
    "v2 replayed again",
    "an unknown instance",
    "a paused instance",
    "another operator's brand",
    "an unknown currency",
}
FRESH = {"contribution_id", "timestamp", "last_updated"}  # differ between any two runs


def steady(value: Any, fresh_ids: set[str]) -> Any:
    """The body with what differs between two runs of the same request replaced."""
    if isinstance(value, dict):
        return {k: "<fresh>" if k in FRESH else steady(v, fresh_ids) for k, v in value.items()}
    if isinstance(value, list):
        return [steady(item, fresh_ids) for item in value]
    return "<fresh>" if value in fresh_ids else value


async def answers(side: Side) -> list[tuple[str, int, dict[str, str], Any]]:
    answered = []
    for what, path, body, headers in request_cases(side):
        data = body if isinstance(body, bytes) else jsonio.dumps(body).encode()
        response = await side.client.post(path, data=data, headers=headers)
        got = {name.lower(): value for name, value in response.headers.items()}
        fresh = {got.pop("x-contribution-id", "")}
        if "X-Request-Id" not in headers:
            fresh.add(got.pop("x-request-id"))
        got.pop("date", None)
        raw = await response.get_data()
        payload = await exact_json(response) if raw else None
        answered.append((what, response.status_code, got, steady(payload, fresh)))
    return answered


async def test_the_direct_routes_answer_as_the_quart_views_do(
    direct: Side, quart_only: Side, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="jackpot_gateway.access")
    by_direct = await answers(direct)
    direct_log = [r for r in caplog.records if r.name == "jackpot_gateway.access"]
    caplog.clear()
    by_quart = await answers(quart_only)
    quart_log = [r for r in caplog.records if r.name == "jackpot_gateway.access"]

    for mine, theirs in zip(by_direct, by_quart, strict=True):
        assert mine == theirs
    statuses = {what: status for what, status, _, _ in by_direct}
    # The cases cover what they say (so the comparison above compares something).
    assert statuses["a contribution"] == 200
    assert statuses["the same again: a replay"] == 204
    assert statuses["the key with another body"] == 409
    assert statuses["v2 replayed again"] == 204
    assert statuses["an unknown instance"] == 404
    assert statuses["a paused instance"] == 409
    assert statuses["another operator's brand"] == 403
    codes = {what: body.get("code") for what, _, _, body in by_direct if isinstance(body, dict)}
    assert statuses["an admin-only token"] == statuses["an admin-only token, v2"] == 403
    assert codes["an admin-only token"] == codes["an admin-only token, v2"] == "OPERATOR_REQUIRED"
    assert statuses["no token"] == 401
    assert statuses["malformed JSON"] == 400
    assert statuses["a body over the limit"] == 413
    echoed = [h for what, _, h, _ in by_direct if what == "with a caller's request id"]
    assert echoed[0]["x-request-id"] == "r-1"

    def lines(records: list[logging.LogRecord]) -> list[tuple[Any, ...]]:
        fields = ("method", "route", "path", "status")
        return [tuple(getattr(record, name) for name in fields) for record in records]

    assert len(direct_log) == len(request_cases(direct))
    assert lines(direct_log) == lines(quart_log)

    assert await request_metrics(direct) == await request_metrics(quart_only)


async def request_metrics(side: Side) -> list[str]:
    """The request count and duration count series, each of both present."""
    text = (await (await side.client.get("/metrics")).get_data()).decode()
    series = ("jg_http_requests_total{", "jg_http_request_seconds_count{")
    lines = sorted(
        line for line in text.splitlines() if line.startswith(series) and "/metrics" not in line
    )
    for name in series:
        assert any(line.startswith(name) for line in lines), f"no {name} series: {text}"
    return lines


async def test_only_what_reaches_the_store_skips_quart(direct: Side, quart_only: Side) -> None:
    await answers(direct)
    await answers(quart_only)
    cases = request_cases(direct)
    assert quart_only.quart_requests == [path for _, path, _, _ in cases]
    assert direct.quart_requests == [
        path for what, path, _, _ in cases if what not in ANSWERED_DIRECTLY
    ]


async def test_a_client_gone_before_the_answer_still_leaves_its_access_line(
    direct: Side, caplog: pytest.LogCaptureFixture
) -> None:
    """As with Quart's after-request hook: the contribution was applied, so its line and
    count are recorded even when writing the answer fails."""
    caplog.set_level(logging.INFO, logger="jackpot_gateway.access")
    body = jsonio.dumps(v1_body("eq")).encode()
    scope = {
        "type": "http",
        "method": "POST",
        "path": CONTRIBUTE,
        "headers": [(b"authorization", direct.headers["Authorization"].encode())],
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        raise ConnectionResetError("the client is gone")

    with pytest.raises(ConnectionResetError):
        await direct.app(scope, receive, send)
    lines = [r for r in caplog.records if r.name == "jackpot_gateway.access"]
    assert [(r.path, r.status) for r in lines] == [(CONTRIBUTE, 200)]
    assert direct.quart_requests == []


def test_every_quart_request_setting_is_named_by_the_direct_path() -> None:
    """A Quart release that adds a request setting fails here until app.edge.direct says what it
    does with it."""
    assert set(Quart.default_config) == set(QUART_SETTINGS)
    honoured = {name for name, what in QUART_SETTINGS.items() if what.startswith("honoured")}
    assert honoured == {"MAX_CONTENT_LENGTH", "BODY_TIMEOUT", "RESPONSE_TIMEOUT"}


STALL = object()  # the client sends nothing more and stays connected


def raw_cases(side: Side) -> list[tuple[str, list[Any]]]:
    """(what, what the client sends): body chunks (more_body until the last), STALL, or a
    disconnect. Sent as raw ASGI messages: a test client sends a whole body at once."""
    body = jsonio.dumps(v1_body("eq")).encode()
    half = len(body) // 2
    return [
        ("a body in three chunks", [body[:10], body[10:half], body[half:]]),
        ("a stalled body", [body[:half], STALL]),
        ("a stalled empty body", [STALL]),
        ("an oversized body in chunks", [b" " * MAX_BODY, b" " * 10, STALL]),
        ("a client gone mid-body", [body[:half], "disconnect"]),
    ]


async def send_raw(side: Side, chunks: list[Any]) -> tuple[int | None, dict[str, str], Any, float]:
    """The status, headers and body the app answers (None: no answer), and the seconds taken."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": CONTRIBUTE,
        "raw_path": CONTRIBUTE.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"authorization", side.headers["Authorization"].encode()),
            (b"content-type", b"application/json"),
            (b"x-request-id", b"raw-1"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    pending = list(chunks)

    async def receive() -> dict[str, Any]:
        if not pending:  # after the answer: the client has gone
            return {"type": "http.disconnect"}
        chunk = pending.pop(0)
        if chunk is STALL:
            await asyncio.Event().wait()
        if chunk == "disconnect":
            return {"type": "http.disconnect"}
        more = bool(pending) and pending[0] != "disconnect"
        return {"type": "http.request", "body": chunk, "more_body": more}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    started = time.perf_counter()
    await asyncio.wait_for(side.app(scope, receive, send), BODY_TIMEOUT_S * 10)
    took = time.perf_counter() - started
    if not sent:
        return None, {}, None, took
    start = next(m for m in sent if m["type"] == "http.response.start")
    headers = {n.decode().lower(): v.decode() for n, v in start["headers"]}
    headers.pop("date", None)
    fresh = {headers.pop("x-contribution-id", "")}
    raw = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    payload = steady(json.loads(raw), fresh) if raw.strip() else None
    return start["status"], headers, payload, took


async def test_stalled_oversized_and_chunked_bodies_are_answered_alike(
    direct: Side, quart_only: Side, caplog: pytest.LogCaptureFixture
) -> None:
    """A body that stalls is answered 408 after BODY_TIMEOUT on both paths (the direct path
    used to wait forever), with the same body, headers, access line and metrics."""
    caplog.set_level(logging.INFO, logger="jackpot_gateway.access")
    answered: dict[bool, list[tuple[str, Any, Any, Any]]] = {}
    logged: dict[bool, list[tuple[Any, ...]]] = {}
    for side, is_direct in ((direct, True), (quart_only, False)):
        caplog.clear()
        answered[is_direct] = []
        for what, chunks in raw_cases(side):
            status, headers, payload, took = await send_raw(side, chunks)
            if status == 408:  # after the timeout, not before, not much after
                assert BODY_TIMEOUT_S * 0.9 <= took < BODY_TIMEOUT_S * 5, (what, took)
            answered[is_direct].append((what, status, headers, payload))
        logged[is_direct] = [
            (r.method, r.route, r.path, r.status)
            for r in caplog.records
            if r.name == "jackpot_gateway.access"
        ]
    assert answered[True] == answered[False]
    assert logged[True] == logged[False]
    statuses = {what: status for what, status, _, _ in answered[True]}
    assert statuses == {
        "a body in three chunks": 200,
        "a stalled body": 408,
        "a stalled empty body": 408,
        "an oversized body in chunks": 413,
        "a client gone mid-body": 400,  # Quart reads the half body as all there is
    }
    stalled = next(p for what, _, _, p in answered[True] if what == "a stalled body")
    assert stalled["code"] == "REQUEST_TIMEOUT"
    assert await request_metrics(direct) == await request_metrics(quart_only)
