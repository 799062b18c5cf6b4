"""Hostile numbers are refused at once, wherever a request carries a number.

Every numeric place of every route is found in the served /openapi.json (request bodies,
with the free-form `metadata` objects; query and path parameters), so a field added later is
covered without editing this test. Each gets extreme exponents (1e-999999999 passed the old
"at most 6 places" check and then built 10**999999999, holding the server for good), huge
integers, long mantissas and NaN/Infinity in their JSON and string spellings. Each request
must be answered 400 (or 422) with a JSON error naming the field, within 100 ms, and the
store must be unchanged afterwards. Through the direct routes (app.edge.direct) and through Quart.

A real server (`jackpot-gateway serve`) gets the hang case too and must still answer
/health at once.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
import uuid
from collections.abc import Iterator
from string import Formatter
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import Schema, fields
from quart.testing import QuartClient

from app import create_app
from app.core import jsonio
from app.core.money import MAX_DIGITS, MAX_EXPONENT
from app.core.security import Principal
from app.edge.contract import declaration_of
from app.edge.openapi import build_spec
from app.schemas.admin import DefinitionsSchema, InstanceSchema
from app.schemas.contributions import (
    ContributeBySourceSchema,
    ContributeSchema,
    ContributeV2Schema,
)
from app.schemas.managers import BoostSchema
from app.schemas.optins import OptInSchema
from app.services import Services
from tests.conftest import auth, load_demo, make_settings
from tests.support.snapshots import store_snapshot
from tests.support.web import WebServer

# Per request: no hostile number may hold the event loop longer. Measured as this process's
# CPU time (a hang or a quadratic parse burns CPU; the machine's other load does not count);
# the wall time gets a looser bound, for anything that would wait instead.
BUDGET_S = 0.1
WALL_BUDGET_S = 1.0
MARK = "\x00hostile\x00"  # stands for the hostile literal in a body, replaced in its JSON text
Path = tuple[str | int, ...]
TIMES: list[tuple[float, str]] = []  # every refusal's CPU time (-s prints the slowest)

DOCUMENT = json.loads(jsonio.dumps(build_spec(create_app(make_settings("memory://spec")), "x")))
COMPONENTS = DOCUMENT["components"]["schemas"]
# Path parameters that are not the number under test: the demo's names.
PATH_VALUES = {
    "instance_id": "daily-drop",
    "username": "demo-service",
    "win_id": "no-such-win",
    "round_id": "1",
    "brand_id": "demo:brand1",
    "player_id": "p1",
    "source_id": "starburst",
    "owner_id": "demo:brand1",
    "operator_id": "demo",
    "delivery_id": "no-such-delivery",
}

# The spellings the probe used, and their neighbours.
BARE = [  # JSON number literals (valid JSON, beyond the bounds)
    "1e-999999999",
    "1e999999999",
    "1E+5000",
    "-0e-100000",
    "0e401",
    "1" + "0" * 5000,  # a 5001-digit integer literal
    "-" + "9" * (MAX_DIGITS + 1),
    "0." + "0" * 5000 + "1",
    "1." + "1" * 5000,
]
CONSTANTS = ["NaN", "Infinity", "-Infinity"]  # not JSON: Python's parser would take them
STRINGS = [  # the same as JSON strings, and every NaN/infinity spelling Decimal knows
    *BARE,
    "nan",
    "NaN",
    "-nan",
    "sNaN",
    "-sNaN",
    "NaN123",
    "inf",
    "Infinity",
    "-Infinity",
    "+Infinity",
    "1e-6",
]

# The demo operator with every role, so that every route (platform ones too) reads its body.
EVERY_ROLE = Principal("hostile", "demo", ("admin", "operator", "platform"))


# -- where the numbers are -------------------------------------------------------------------
def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while True:
        if "$ref" in schema:
            schema = COMPONENTS[schema["$ref"].rsplit("/", 1)[1]]
        elif "allOf" in schema and len(schema["allOf"]) == 1:
            schema = {**schema["allOf"][0], **{k: v for k, v in schema.items() if k != "allOf"}}
        else:
            return schema


def numeric(schema: dict[str, Any]) -> bool:
    alternatives = schema.get("anyOf", [schema])
    return any(resolve(s).get("type") in ("number", "integer") for s in alternatives)


def free_form(schema: dict[str, Any]) -> bool:
    """Any JSON at all (`metadata`): no type, no structure."""
    shape = {"type", "properties", "additionalProperties", "items", "anyOf", "oneOf", "enum"}
    return not shape & set(schema)


def variants(schema: dict[str, Any], example: Any, path: Path) -> Iterator[tuple[Path, Any, bool]]:
    """(path of a number, this value with MARK at that path and the example elsewhere,
    whether the place is free-form JSON)."""
    schema = resolve(schema)
    if numeric(schema):
        yield path, MARK, False
    elif free_form(schema):
        yield path, MARK, True
        yield (*path, "nested", 0), {"nested": [MARK]}, True
    for alternative in schema.get("anyOf", []):
        alternative = resolve(alternative)
        if alternative.get("type") == "object":
            yield from variants(alternative, example, path)
    base = example if isinstance(example, dict) else {}
    one_of = schema.get("maxProperties") == 1  # {"Fixed": ...} or {"Percentage": ...}
    for name, sub in schema.get("properties", {}).items():
        for where, value, free in variants(sub, base.get(name), (*path, name)):
            yield where, {name: value} if one_of else {**base, name: value}, free
    values = schema.get("additionalProperties")
    if isinstance(values, dict) and values:
        key = next(iter(base), "EUR")
        for where, value, free in variants(values, base.get(key), (*path, key)):
            yield where, {**base, key: value}, free
    if schema.get("type") == "array":
        items = example if isinstance(example, list) else []
        first = items[0] if items else None
        for where, value, free in variants(schema["items"], first, (*path, 0)):
            yield where, [value, *items[1:]], free


class Target:
    """One numeric place of one operation: a body path, or a query or path parameter."""

    def __init__(
        self,
        method: str,
        route: str,
        where: str,
        path: Path,
        body: Any = None,
        free_form: bool = False,
    ) -> None:
        self.method, self.route, self.where, self.path = method, route, where, path
        self.body = body
        self.free_form = free_form  # in `metadata`: any JSON, where a string is no number

    def __repr__(self) -> str:
        return f"{self.method.upper()} {self.route} {self.where}:{'.'.join(map(str, self.path))}"

    def request(self, literal: str) -> tuple[str, str, str | None]:
        """(method, url, JSON text of the body) with `literal` at the place (raw JSON text in
        a body; a query or path parameter's text)."""
        values = dict(PATH_VALUES)
        query = ""
        if self.where == "path":
            values[str(self.path[0])] = quote(literal, safe="")
        elif self.where == "query":
            query = f"?{self.path[0]}={quote(literal, safe='')}"
        url = self.route.format(**values) + query
        if self.where != "body":
            return self.method.upper(), url, None
        text = jsonio.dumps(self.body)
        assert text.count(json.dumps(MARK)) == 1, self
        return self.method.upper(), url, text.replace(json.dumps(MARK), literal)


def targets() -> list[Target]:
    found = []
    for route, operations in DOCUMENT["paths"].items():
        for method, operation in operations.items():
            for parameter in operation["parameters"]:
                if parameter["in"] in ("query", "path") and numeric(parameter["schema"]):
                    found.append(Target(method, route, parameter["in"], (parameter["name"],)))
            content = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if content is not None:
                for path, body, free in variants(content["schema"], content.get("example"), ()):
                    found.append(Target(method, route, "body", path, body, free))
    return found


TARGETS = targets()


def test_the_numeric_places_are_found() -> None:
    """The enumeration finds what the probe hit (a broken walk would test nothing)."""
    names = {repr(t) for t in TARGETS}
    for expected in (
        "POST /jackpots/contribute body:base_wager",
        "POST /jackpots/contribute body:metadata.nested.0",
        "POST /jackpots/contribute/source body:base_wager",
        "POST /v2/jackpots/contribute body:base_wager.value",
        "POST /jackpots/optin body:contribution_value",
        "POST /v2/jackpots/optin body:contribution_preference.value",
        "POST /admin/instances/{instance_id}/boosts body:amount",
        "PUT /admin/currencies body:multipliers.EUR",
        "PUT /admin/currencies body:brand_overrides.demo:brand2.USD",
        "POST /admin/instances body:pots.0.trigger.HitRate.cost_per_attempt",
        "POST /admin/instances body:raffle.prizes.0",
        "POST /admin/instances body:raffle.prizes.0.share",
        "POST /admin/instances body:contribution_type.Fixed",
        "POST /admin/instances body:timestamp_start",
        "GET /jackpots/instances/raffle/tickets/{instance_id} query:page",
        "GET /admin/instances/{instance_id}/rounds/{round_id} path:round_id",
    ):
        assert expected in names, sorted(names)
    assert len(TARGETS) >= 50


# -- the checks ------------------------------------------------------------------------------
def named(details: Any, path: Path) -> bool:
    """Whether the error details reach `path` (a map's value is reported under its key's
    "value", as marshmallow's Dict does)."""
    if not path:
        return True
    if not isinstance(details, dict):
        return False
    nodes = {str(key): value for key, value in details.items()}
    part = str(path[0])
    if part in nodes:
        return named(nodes[part], path[1:])
    return "value" in nodes and named(nodes["value"], path)


async def refused(
    client: QuartClient, headers: dict[str, str], target: Target, literal: str, bare: bool
) -> None:
    method, url, text = target.request(literal)
    started, cpu = time.perf_counter(), time.process_time()
    response = await client.open(
        url,
        method=method,
        data=text,
        headers={**headers, "Content-Type": "application/json"} if text else headers,
    )
    answer = await response.get_data(as_text=True)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    where = f"{target} = {literal[:40]!r}: {response.status_code} {answer[:300]}"
    TIMES.append((cpu, where))
    assert cpu < BUDGET_S, f"{cpu * 1000:.0f} ms of CPU: {where}"
    assert elapsed < WALL_BUDGET_S, f"{elapsed * 1000:.0f} ms: {where}"
    assert response.status_code in (400, 422), where
    body = json.loads(answer)
    assert set(body) == {"error", "code", "details"}, where
    if bare and literal in CONSTANTS:
        assert body["code"] == "MALFORMED_JSON", where
        return
    assert body["code"] == "VALIDATION_ERROR", where
    assert named(body["details"], target.path), where


class Served:
    """An app on the demo data with an admin token of `demo`, entered on its own loop (a
    hypothesis test cannot take function-scoped async fixtures)."""

    def __init__(self, direct: bool) -> None:
        self.app = create_app(
            make_settings(f"memory://hostile-{uuid.uuid4().hex}", direct_routes=direct)
        )
        self.loop = asyncio.new_event_loop()
        self.context = self.app.test_app()
        self.loop.run_until_complete(self.context.__aenter__())
        self.gateway: Services = self.app.extensions["gateway"]
        self.loop.run_until_complete(load_demo(self.gateway))
        self.headers = auth(self.gateway, EVERY_ROLE)
        self.client = self.app.test_client()
        # The first request of an app loads its configuration: not what is measured.
        self.run(self.client.get("/admin/instances/daily-drop", headers=self.headers))

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def close(self) -> None:
        self.run(self.context.__aexit__(None, None, None))
        self.loop.close()


@pytest.fixture(params=[True, False], ids=["direct-routes", "quart-only"])
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    side = Served(direct=request.param)
    yield side
    side.close()


def test_every_numeric_place_refuses_every_hostile_spelling(served: Served) -> None:
    before = served.run(store_snapshot(served.gateway.store))
    for target in TARGETS:
        literals = [(s, True) for s in BARE + CONSTANTS] + [(json.dumps(s), False) for s in STRINGS]
        if target.where != "body":  # a parameter is text: every spelling as it is
            literals = [(s, False) for s in BARE + STRINGS]
        for literal, bare in literals:
            if target.free_form and not bare:
                continue  # a string in free-form metadata is just a string
            served.run(refused(served.client, served.headers, target, literal, bare))
    assert served.run(store_snapshot(served.gateway.store)) == before
    for cpu, where in sorted(TIMES, reverse=True)[:3]:  # the slowest, with -s
        print(f"{cpu * 1000:6.1f} ms CPU  {where[:150]}")


# -- the property: any number beyond the bounds, anywhere -----------------------------------
def mantissas() -> st.SearchStrategy[str]:
    return st.from_regex(r"-?(0|[1-9][0-9]{0,5})(\.[0-9]{1,6})?", fullmatch=True)


def exponents() -> st.SearchStrategy[int]:
    """Beyond the bounds whatever the mantissa (at most 6 digits each side of the point:
    0.000000e407 is 0E+401)."""
    return st.integers(MAX_EXPONENT + 7, 10**10) | st.integers(-(10**10), -(MAX_EXPONENT + 1))


def hostile_literals() -> st.SearchStrategy[str]:
    """JSON number literals beyond the bounds: extreme exponents, long integers and long
    mantissas."""
    scientific = st.builds(
        lambda m, e, mark, sign: f"{m}{mark}{'+' if sign and e > 0 else ''}{e}",
        mantissas(),
        exponents(),
        st.sampled_from("eE"),
        st.booleans(),
    )
    integers = st.builds(
        lambda sign, n, first: f"{sign}{first}{'7' * n}",
        st.sampled_from(["", "-"]),
        st.integers(MAX_DIGITS, 6000),
        st.sampled_from("123456789"),
    )
    fractions = st.builds(
        lambda whole, n: f"{whole}.{'3' * n}",
        st.sampled_from(["0", "1", "-12"]),
        st.integers(MAX_DIGITS, 6000),
    )
    return scientific | integers | fractions


def non_finite_strings() -> st.SearchStrategy[str]:
    spellings = st.sampled_from(["nan", "snan", "inf", "infinity"]).flatmap(
        lambda word: st.lists(st.booleans(), min_size=len(word), max_size=len(word)).map(
            lambda upper: "".join(c.upper() if u else c for c, u in zip(word, upper, strict=True))
        )
    )
    return st.builds(lambda sign, word: sign + word, st.sampled_from(["", "-", "+"]), spellings)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    target=st.sampled_from(TARGETS),
    hostile=st.one_of(
        hostile_literals().map(lambda text: (text, True)),
        (hostile_literals() | non_finite_strings()).map(lambda text: (json.dumps(text), False)),
        st.sampled_from(CONSTANTS).map(lambda text: (text, True)),
    ),
)
def test_any_number_beyond_the_bounds_is_refused_at_once(
    served: Served, target: Target, hostile: tuple[str, bool]
) -> None:
    literal, bare = hostile
    if target.where != "body":  # a parameter is text: the number's text as it is
        literal, bare = (json.loads(literal) if not bare else literal), False
    if target.free_form and not bare:
        return  # a string in free-form metadata is just a string
    before = served.run(store_snapshot(served.gateway.store))
    served.run(refused(served.client, served.headers, target, literal, bare))
    assert served.run(store_snapshot(served.gateway.store)) == before


# -- a real server ---------------------------------------------------------------------------
PROBES = [  # what the attacker's probe sent (each hung the server or answered 500)
    ("/jackpots/contribute", ContributeSchema.EXAMPLE, ("base_wager",), "1e-999999999"),
    (
        "/jackpots/contribute/source",
        ContributeBySourceSchema.EXAMPLE,
        ("base_wager",),
        "1e-999999999",
    ),
    (
        "/v2/jackpots/contribute",
        ContributeV2Schema.EXAMPLE,
        ("base_wager", "value"),
        "1e-999999999",
    ),
    ("/jackpots/optin", OptInSchema.EXAMPLE, ("contribution_value",), "1e-999999999"),
    ("/jackpots/contribute", ContributeSchema.EXAMPLE, ("base_wager",), "1e999999999"),
    ("/jackpots/contribute", ContributeSchema.EXAMPLE, ("metadata",), '{"n": 1e999999999}'),
    ("/admin/instances/daily-drop/boosts", BoostSchema.EXAMPLE, ("amount",), "1e-999999999"),
]


def probe_text(example: dict[str, Any], path: Path, literal: str) -> str:
    body = copy.deepcopy(example)
    node = body
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = MARK
    return jsonio.dumps(body).replace(json.dumps(MARK), literal)


@pytest.mark.real_redis
@pytest.mark.timeout(120)
async def test_a_real_server_answers_at_once_after_each_probe(real_redis_url: str) -> None:
    services = Services.create(make_settings(real_redis_url))
    await load_demo(services)
    headers = {**auth(services, EVERY_ROLE), "Content-Type": "application/json"}
    server = WebServer(real_redis_url)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=2.0) as http:
            before = await store_snapshot(services.store)
            for route, example, path, literal in PROBES:
                text = probe_text(example, path, literal)
                started = time.perf_counter()
                response = await http.post(route, content=text, headers=headers)
                elapsed = time.perf_counter() - started
                assert response.status_code == 400, (route, literal, response.text)
                assert response.json()["code"] == "VALIDATION_ERROR", response.text
                assert named(response.json()["details"], path), response.text
                assert elapsed < 1.0, (route, literal, elapsed)
                health = await http.get("/health", timeout=1.0)
                assert health.status_code == 200
            # The raffle prize whose error message broke str.format (a fuzzer's 500).
            definition = {**InstanceSchema.EXAMPLE, "jackpot_type": "Raffle"}
            definition["raffle"] = {"ticket_cost": "1", "prizes": [{"x": 1}], "draw": {"at": "end"}}
            response = await http.post(
                "/admin/instances", content=jsonio.dumps(definition), headers=headers
            )
            assert response.status_code == 400, response.text
            assert named(response.json()["details"], ("raffle", "prizes", "0")), response.text
            assert await store_snapshot(services.store) == before
        assert server.terminate(within=5.0) == 0, server.output()[-2000:]
    finally:
        server.stop()
        await services.close()


# -- messages --------------------------------------------------------------------------------
def every_field(schema: Schema) -> Iterator[tuple[str, fields.Field]]:
    seen: set[int] = set()
    pending: list[tuple[str, Any]] = [(type(schema).__name__, schema)]
    while pending:
        where, item = pending.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, Schema):
            pending += [(f"{where}.{name}", field) for name, field in item.fields.items()]
            continue
        yield where, item
        inner = [
            getattr(item, "schema", None) if isinstance(item, fields.Nested) else None,
            getattr(item, "inner", None),
            getattr(item, "key_field", None),
            getattr(item, "value_field", None),
            *(value for value in vars(item).values() if isinstance(value, fields.Field)),
            *(value for value in vars(type(item)).values() if isinstance(value, fields.Field)),
        ]
        pending += [(where, part) for part in inner if part is not None]


def request_schemas() -> Iterator[Schema]:
    app = create_app(make_settings("memory://messages"))
    for view in app.view_functions.values():
        declaration = declaration_of(view)
        if declaration is None:
            continue
        if declaration.body is not None:
            yield declaration.body
        if declaration.query is not None:
            yield declaration.query
        if declaration.path:
            yield Schema.from_dict(dict(declaration.path))()
    yield DefinitionsSchema()


def test_no_error_message_is_a_broken_format_string() -> None:
    """marshmallow formats every error message with str.format (its own keywords only):
    a literal brace in a message (`{"share": ...}`) made the error itself a 500."""
    broken = []
    checked = 0
    for schema in request_schemas():
        for where, field in every_field(schema):
            templates = list(field.error_messages.values())
            templates += [getattr(v, "error", None) for v in field.validators]
            for template in templates:
                if not isinstance(template, str):
                    continue
                checked += 1
                try:
                    names = [name for _, name, _, _ in Formatter().parse(template) if name]
                except ValueError:
                    names = ["<unbalanced>"]
                if not all(name.isidentifier() for name in names):
                    broken.append(f"{where}: {template}")
    assert checked > 100
    assert broken == []


# -- exact places ----------------------------------------------------------------------------
@pytest.mark.parametrize("redis_url", ["fake"], indirect=True)
@pytest.mark.parametrize(
    "wager",
    [
        '"100000000.000000000000000000000001"',  # rounds to 1E+8 in a 28-digit context
        "100000000.000000000000000000000001",
        "1.0000000000000000000000000000000000001",
        "2.0000001",
    ],
)
async def test_places_are_counted_exactly_beyond_28_digits(
    client: QuartClient, headers: dict[str, str], wager: str
) -> None:
    """Counting places on `normalize()` rounded an amount to the context's 28 digits first:
    a sub-micro fraction past the 28th digit went through as if it were not there."""
    text = probe_text(ContributeSchema.EXAMPLE, ("base_wager",), wager)
    response = await client.post(
        "/jackpots/contribute", data=text, headers={**headers, "Content-Type": "application/json"}
    )
    body = json.loads(await response.get_data(as_text=True))
    assert response.status_code == 400, body
    assert body["details"] == {"base_wager": ["At most 6 decimal places."]}


@pytest.mark.parametrize("redis_url", ["fake"], indirect=True)
@pytest.mark.parametrize(
    "route", ["/admin/audit", "/admin/instances/daily-drop/ledger"], ids=["audit", "ledger"]
)
@pytest.mark.parametrize("after", ["2-74308302496131675262", "99999999999999999999-0"])
async def test_a_stream_cursor_beyond_64_bits_is_refused(
    client: QuartClient, headers: dict[str, str], route: str, after: str
) -> None:
    """A Redis stream id's parts are 64-bit: a 20-digit part past 2^64 - 1 was a 500 (found
    by the contract fuzz test under its new explicit seeds)."""
    response = await client.get(f"{route}?after={after}", headers=headers)
    body = json.loads(await response.get_data(as_text=True))
    assert response.status_code == 400, body
    assert list(body["details"]) == ["after"]


# -- the largest bodies ----------------------------------------------------------------------
LIMIT = 64 * 1024  # MAX_BODY_BYTES


def filled(item: str, separator: str = ",") -> str:
    """A contribution whose metadata is a list of `item`, as many as fit in LIMIT bytes."""
    shell = probe_text(ContributeSchema.EXAMPLE, ("metadata",), "[]")
    count = (LIMIT - len(shell.encode())) // len((item + separator).encode())
    return shell.replace("[]", "[" + separator.join([item] * count) + "]")


LARGEST = {
    "nested 32768 deep": "[" * 32768 + "]" * 32768,
    "1e400 (within the bounds, written out as 401 digits)": filled("1e400"),
    "1e-400": filled("1e-400"),
    "1e401 (each beyond the bounds)": filled("1e401"),
    "40-digit integers": filled("9" * 40),
    "empty objects": filled("{}"),
    "\\ud800 escapes (a lone surrogate)": filled('"\\ud800"'),
    "6000 keys, a duplicate last": "{" + ",".join(f'"k{i}":1' for i in range(6000)) + ',"k5999":1}',
}


@pytest.mark.parametrize("name", list(LARGEST))
def test_the_largest_hostile_bodies_cost_little(served: Served, name: str) -> None:
    """A body of MAX_BODY_BYTES built to cost the most: answered 400 in well under 100 ms of
    this process's CPU (CPU time, not wall time: the measure must not depend on the machine's
    other load), twice over with the direct routes (they parse, then hand to Quart)."""
    text = LARGEST[name]
    assert len(text.encode()) <= LIMIT
    costs = []
    for _ in range(3):
        started = time.process_time()
        response = served.run(
            served.client.post(
                "/jackpots/contribute",
                data=text,
                headers={**served.headers, "Content-Type": "application/json"},
            )
        )
        costs.append(time.process_time() - started)
        assert response.status_code == 400, served.run(response.get_data(as_text=True))[:300]
    print(f"{min(costs) * 1000:6.1f} ms CPU  {name}")
    assert min(costs) < BUDGET_S, f"{min(costs) * 1000:.0f} ms of CPU: {name}"


@pytest.mark.parametrize("depth", [500, 900])
def test_a_body_nested_as_deep_as_the_parser_takes_is_no_500(served: Served, depth: int) -> None:
    """The JSON parser takes nesting up to about 1000 levels; the checks after it recursed
    too (two frames a level) and a RecursionError became a 500. They are iterative now."""
    text = probe_text(
        {k: v for k, v in ContributeSchema.EXAMPLE.items() if k != "idempotency_key"},
        ("metadata",),
        "[" * depth + "]" * depth,
    )
    response = served.run(
        served.client.post(
            "/jackpots/contribute",
            data=text,
            headers={**served.headers, "Content-Type": "application/json"},
        )
    )
    assert response.status_code == 200, served.run(response.get_data(as_text=True))[:300]
