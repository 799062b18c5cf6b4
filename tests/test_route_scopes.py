"""The route-scope matrix: every route of the URL map, for five callers, answers as its
declaration says (DESIGN.md section 9), and a refused request changes nothing.

The callers: the platform role (the jackpot provider's staff), operator A's admin, operator B's
admin acting on A's objects, and A's operator service account. Every path names an object of
operator A (`demo`). What each caller gets follows from the route's declaration alone, so a new
route is probed without editing this file (a route with a body needs a sample in BODIES: the
test says so):

- admin route, scope `platform`: platform allowed; both admins 403 PLATFORM_REQUIRED; A's
  service 403 ADMIN_REQUIRED.
- admin route, scope `operator`: platform and A's admin allowed; A's service 403
  ADMIN_REQUIRED; B's admin 404 (A's object named in the path is unknown) or 403
  OPERATOR_FORBIDDEN (operator A named in the body or query), and where nothing of A is
  named (the lists), allowed with none of A's data in the answer.
- operator API, role `operator` (contribute, opt in): A's service allowed; the three
  others 403 OPERATOR_REQUIRED.
- operator API, other routes: A's service and A's admin allowed; B's admin and the platform
  (both speak for their own operator there) 403 OPERATOR_FORBIDDEN or 404.
- a display token of A's (read-only, for a lobby screen): 403 DISPLAY_TOKEN_FORBIDDEN on
  every route, whatever its scope or role (it opens the GET /events websocket alone).

"Allowed" means past every scope check: 2xx, or a refusal about the object's state (409, 422).
"403 or 404" is 403 OPERATOR_FORBIDDEN (another operator named) or 404 `*_NOT_FOUND` (another
operator's object is unknown), whichever check the route makes first.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from quart import Quart
from quart.blueprints import BlueprintSetupState
from quart.testing import QuartClient
from rq.registry import FailedJobRegistry
from werkzeug.routing import Rule

from app import create_app
from app.core.security import Principal
from app.edge.contract import Declaration, Reply, Scope, declaration_of, declare
from app.edge.routes import admin as admin_routes
from app.services import Services
from tests.conftest import DEMO_PASSWORDS, PLATFORM, auth, load_demo, login, make_settings
from tests.support.definitions import hit_rate, instance, pot
from tests.support.http import contribution, expect, post, v2_body

A_ADMIN = Principal("demo-admin", "demo", ("admin",))
B_ADMIN = Principal("rival-admin", "rival", ("admin",))
A_SERVICE = Principal("demo-ops", "demo", ("operator",))
A_DISPLAY = Principal("demo-ops", "demo", ("display",), brands=("demo:brand1", "demo:brand2"))
CALLERS = {
    "platform": PLATFORM,
    "a-admin": A_ADMIN,
    "b-admin": B_ADMIN,
    "a-service": A_SERVICE,
    "a-display": A_DISPLAY,
}

# A's objects, named in every path (and query, and body).
DELIVERY_ID = "dlv-1"
DEAD_LETTER = "async-job-1"
PATH_VALUES = {
    "operator_id": "demo",
    "username": "demo-ops",
    "owner_id": "demo:brand1",
    "source_id": "held-src",
    "brand_id": "demo:brand1",
    "player_id": "p1",
    "delivery_id": DELIVERY_ID,
    "round_id": "1",
    "job_id": DEAD_LETTER,
}
OF_A = {"operator_id": "demo"}
QUERIES: dict[str, dict[str, str]] = {
    "admin.failed_callbacks": OF_A,
    "admin.redeliver_callback": OF_A,
    "admin.redeliver_all_callbacks": OF_A,
    "admin.withheld_wins": OF_A,
    "admin.dead_letters": OF_A,
    "admin.replay_dead_letter": OF_A,
    "admin.replay_dead_letters": OF_A,
    "admin.audit": OF_A,
    "jackpots.recorded_contribution": {"instance_id": "held", "idempotency_key": "k1"},
    "jackpots.instance_for_source": {"player_id": "p1", "country_code": "DE"},
    "catalog.sources": {"owner_id": "demo:brand1"},
}
CURRENCIES = {
    "base_currency": "EUR",
    "multipliers": {"EUR": 1, "USD": "1.08", "GBP": "0.86", "SEK": "11.4", "JPY": 162},
    "decimals": {"JPY": 0},
    "brand_overrides": {"demo:brand2": {"USD": "1.10"}},
}
BODIES: dict[str, Any] = {
    "admin.put_operator": {"id": "demo", "name": "Demo", "brands": ["brand1", "brand2"]},
    "admin.create_account": {
        "username": "new-ops",
        "password": "a-long-enough-password",
        "operator_id": "demo",
        "roles": ["operator"],
    },
    "admin.set_account_roles": {"roles": ["operator", "admin"]},
    "admin.put_currencies": CURRENCIES,
    "auth.display_token": {"brands": ["demo:brand1"], "ttl_seconds": 600},
    "admin.put_source": {
        "source_id": "book",
        "owner_id": "demo:brand1",
        "source_name": "Book",
        "instance_ids": ["daily-drop"],
    },
    "admin.create_instance": instance("new-jp"),
    "admin.boost": {"pot_id": "mini", "amount": "5"},
    "admin.approve_win": {"reason": "checked"},
    "admin.reject_win": {"reason": "checked"},
    "jackpots.contribute": {**contribution("held", "p2"), "idempotency_key": "k2"},
    "jackpots.contribute_by_source": {
        **contribution("held", "p3"),
        "instance_id": None,
        "source_id": "held-src",
    },
    "jackpots.contribute_v2": v2_body("held"),
    "jackpots.opt_in": {
        "instance_id": "daily-drop",
        "player_id": "p1",
        "brand_id": "demo:brand1",
        "player_country": "DE",
        "opt_in": True,
    },
    "jackpots.opt_in_v2": {
        "target": {"type": "instance", "id": "daily-drop"},
        "operator_id": "demo",
        "player": {"id": "p1", "brand_id": "brand1", "country": "DE"},
        "opt_in": True,
    },
}
del BODIES["jackpots.contribute_by_source"]["instance_id"]
# What B's admin must never see of A in an answer it is allowed.
A_MARKERS = ('"demo"', "daily-drop", "weekly-raffle", '"held', "demo-ops", "held-src", DELIVERY_ID)
ALLOWED = "allowed"
UNSEEN = "allowed, nothing of A's"
FOREIGN = "403 or 404"


def everything(gateway: Services) -> dict[bytes, Any]:
    """Every key of the store and of the queues (one fakeredis server), its value read by
    type as bytes (queued jobs are binary); login throttles excluded."""
    queue = gateway.contributions.queue
    assert queue is not None
    client = queue.connection
    found: dict[bytes, Any] = {}
    for key in client.scan_iter(count=1000):
        if b":login-failures:" in key:
            continue
        kind = client.type(key)
        found[key] = {
            b"string": client.get,
            b"hash": client.hgetall,
            b"zset": lambda k: client.zrange(k, 0, -1, withscores=True),
            b"list": lambda k: client.lrange(k, 0, -1),
            b"set": lambda k: sorted(client.smembers(k)),
            b"stream": client.xrange,
        }[kind](key)
    return found


def instance_for(rule: Rule) -> str:
    if "/wins/" in rule.rule:
        return "held"  # the instance of A's withheld win
    if "raffle" in rule.rule or "rounds" in rule.rule or rule.rule.endswith("/draw"):
        return "weekly-raffle"
    return "daily-drop"


def expected(caller: str, declaration: Declaration, rule: Rule) -> Any:
    """ALLOWED, UNSEEN, FOREIGN or (status, code) for `caller` on a route."""
    who = CALLERS[caller]
    if who.is_display:
        return 403, "DISPLAY_TOKEN_FORBIDDEN"
    if declaration.scope is not None:  # the admin API
        if caller == "a-service":
            return 403, "ADMIN_REQUIRED"
        if declaration.scope is Scope.PLATFORM:
            return ALLOWED if caller == "platform" else (403, "PLATFORM_REQUIRED")
        if caller != "b-admin":
            return ALLOWED
        names_a = rule.arguments or rule.endpoint in BODIES or rule.endpoint in QUERIES
        return FOREIGN if names_a else UNSEEN
    if declaration.role is not None and declaration.role not in who.roles:
        return 403, f"{declaration.role.upper()}_REQUIRED"
    return ALLOWED if who.operator_id == "demo" else FOREIGN


async def setup_a(gateway: Services, client: QuartClient) -> dict[str, str]:
    """The demo operators, currencies, instances and sources, and more of A's objects: a
    service account, an instance `held` whose every win is withheld (and one such win), its
    source, a contribution made with an idempotency key, a failed callback delivery."""
    await load_demo(gateway)
    platform = auth(gateway, PLATFORM)
    await gateway.admin.create_account("demo-ops", "a-long-enough-password", "demo", ["operator"])
    held = instance(
        "held",
        pots=[pot("big", "0.7", hit_rate(1), seed="5", reserve_share="0.2")],
        auto_payout_limit="1",
    )
    await expect(await post(client, "/admin/instances", held, platform), 201)
    source = {
        "source_id": "held-src",
        "owner_id": "demo:brand1",
        "source_name": "Held",
        "instance_ids": ["held"],
    }
    await expect(await post(client, "/admin/sources", source, platform), 200)
    bet = {**contribution("held", "p1"), "idempotency_key": "k1"}
    response = await post(client, "/jackpots/contribute", bet, auth(gateway, A_SERVICE))
    assert (await expect(response, 200))["win_withheld"] is True
    await gateway.deliveries.record_failure(
        operator_id="demo",
        instance_id="daily-drop",
        delivery_id=DELIVERY_ID,
        url="https://hooks.example/jackpot",
        body="{}",
        attempts=5,
        error="connection refused",
    )
    await asyncio.to_thread(dead_letter, gateway, DEAD_LETTER)
    return {"win_id": str(response.headers["X-Contribution-Id"])}


def dead_letter(gateway: Services, job_id: str) -> None:
    """An asynchronous contribution of A's whose retries ran out: in RQ's failed registry."""
    queue = gateway.contributions.queue
    assert queue is not None
    job = queue.create_job(
        "workers.jobs.run_contribution", job_id=job_id, meta={"operator_id": "demo"}
    )
    job.save()
    FailedJobRegistry(queue=queue).add(job, ttl=3600, exc_string="the store was away")


def probes(app: Quart, values: dict[str, str]) -> list[tuple[Rule, Declaration, str, str]]:
    """(rule, declaration, method, path) of every non-public HTTP route; the DELETEs last
    (each removes an object other routes name)."""
    adapter = app.url_map.bind("localhost")
    found = []
    for rule in app.url_map.iter_rules():
        declaration = declaration_of(app.view_functions[rule.endpoint])
        if rule.websocket or declaration is None or declaration.public:
            continue
        arguments = {**PATH_VALUES, **values, "instance_id": instance_for(rule)}
        path = adapter.build(rule.endpoint, {n: arguments[n] for n in rule.arguments})
        methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        found += [(rule, declaration, method, path) for method in methods]
    return sorted(found, key=lambda probe: probe[2] == "DELETE")


@pytest.fixture
async def app() -> AsyncIterator[Quart]:
    """A fresh fakeredis store for each caller: its allowed requests change things."""
    application = create_app(make_settings(f"memory://scopes-{uuid.uuid4().hex}"))
    async with application.test_app():
        yield application


@pytest.mark.usefixtures("cheap_passwords")
@pytest.mark.parametrize("caller", list(CALLERS))
async def test_every_route_answers_each_caller_as_its_scope_says(
    app: Quart, client: QuartClient, gateway: Services, caller: str
) -> None:
    values = await setup_a(gateway, client)
    headers = auth(gateway, CALLERS[caller])
    seen = []
    for rule, declaration, method, path in probes(app, values):
        if declaration.body is not None:
            assert rule.endpoint in BODIES, f"give {rule.endpoint} a sample body in BODIES"
        want = expected(caller, declaration, rule)
        before = await asyncio.to_thread(everything, gateway)
        response = await client.open(
            path,
            method=method,
            headers=headers,
            json=BODIES.get(rule.endpoint),
            query_string=QUERIES.get(rule.endpoint),
        )
        text = await response.get_data(as_text=True)
        status, where = response.status_code, (caller, method, path, text)
        if want in (ALLOWED, UNSEEN):
            assert status < 400 or status in (409, 422), where
            if want == UNSEEN:
                assert not [marker for marker in A_MARKERS if marker in text], where
        else:
            body = await response.get_json()
            if want == FOREIGN:
                assert (status, body["code"]) == (403, "OPERATOR_FORBIDDEN") or (
                    status == 404 and body["code"].endswith("_NOT_FOUND")
                ), where
            else:
                assert (status, body["code"]) == want, where
            assert await asyncio.to_thread(everything, gateway) == before, where
        seen.append((method, rule.rule))
    assert len(seen) >= 45  # a floor: a broken walk cannot pass vacuously


# -- the probe that found the defect, request by request -------------------------------------
B_ON_A = [
    ("POST", "/admin/accounts", BODIES["admin.create_account"] | {"roles": ["admin"]}, 403),
    ("PATCH", "/admin/accounts/demo-ops", {"roles": ["operator"]}, 404),
    ("DELETE", "/admin/accounts/demo-ops", None, 404),
    ("POST", "/admin/operators/demo/callback-secret", None, 404),
    ("POST", "/admin/operators", {"id": "demo", "name": "Mine", "brands": ["brand1"]}, 403),
    ("POST", "/admin/instances/daily-drop/pause", None, 404),
    ("DELETE", "/admin/sources/demo:brand1/starburst", None, 404),
    ("GET", "/admin/instances/daily-drop/ledger", None, 404),
    ("GET", "/admin/instances/daily-drop", None, 404),
    ("POST", "/admin/instances/held/boosts", BODIES["admin.boost"] | {"pot_id": "big"}, 404),
]


@pytest.mark.usefixtures("cheap_passwords")
async def test_another_operators_admin_reaches_nothing_of_a(
    client: QuartClient, gateway: Services
) -> None:
    await setup_a(gateway, client)
    b_admin = auth(gateway, B_ADMIN)
    before = await asyncio.to_thread(everything, gateway)
    for method, path, body, status in B_ON_A:
        response = await client.open(path, method=method, headers=b_admin, json=body)
        text = await response.get_data(as_text=True)
        assert response.status_code == status, (method, path, text)
        assert "callback_secret" not in text
    for listing in ("/admin/accounts", "/admin/instances", "/admin/sources", "/admin/operators"):
        text = await (await client.get(listing, headers=b_admin)).get_data(as_text=True)
        assert not [marker for marker in (*A_MARKERS, "starburst") if marker in text], text
    assert await asyncio.to_thread(everything, gateway) == before


# -- an instance shared by several operators -------------------------------------------------
NETWORK = instance("network", allowed_brands=["demo:brand1", "rival:main"], opt_in_required=False)


@pytest.mark.parametrize(
    ("method", "path", "body", "participant"),
    [
        ("GET", "/admin/instances/network", None, 200),
        ("GET", "/admin/instances/network/reconciliation", None, 200),
        ("GET", "/admin/instances/network/meters", None, 200),
        ("GET", "/admin/instances/network/ledger", None, 403),
        ("POST", "/admin/instances/network/pause", None, 403),
        ("POST", "/admin/instances/network/terminate", None, 403),
        ("POST", "/admin/instances/network/boosts", {"pot_id": "main", "amount": "5"}, 403),
    ],
)
async def test_a_shared_instance_is_read_by_its_operators_and_changed_by_the_platform(
    client: QuartClient,
    gateway: Services,
    method: str,
    path: str,
    body: Any,
    participant: int,
) -> None:
    await load_demo(gateway)
    platform = auth(gateway, PLATFORM)
    await expect(await post(client, "/admin/instances", NETWORK, platform), 201)
    outsider = auth(gateway, Principal("third-admin", "provider", ("admin",)))
    for headers, status in (
        (auth(gateway, A_ADMIN), participant),
        (auth(gateway, B_ADMIN), participant),
        (outsider, 404),  # plays no brand of it: unknown
    ):
        before = await asyncio.to_thread(everything, gateway)
        response = await client.open(path, method=method, headers=headers, json=body)
        code = None if status == 200 else ("PLATFORM_REQUIRED", "INSTANCE_NOT_FOUND")
        found = await expect(response, status, None)
        if code is not None:
            assert found["code"] == code[0 if status == 403 else 1]
            assert await asyncio.to_thread(everything, gateway) == before
    response = await client.open(path, method=method, headers=platform, json=body)
    assert response.status_code in (200, 201), await response.get_data(as_text=True)


async def test_an_operator_admin_may_not_create_a_shared_instance(
    client: QuartClient, gateway: Services
) -> None:
    await load_demo(gateway)
    before = await asyncio.to_thread(everything, gateway)
    response = await post(client, "/admin/instances", NETWORK, auth(gateway, A_ADMIN))
    await expect(response, 403, "OPERATOR_FORBIDDEN")
    # Linking to an instance it cannot see, or a source offering one: as if it did not exist.
    own = instance("own", allowed_brands=["rival:main"], linked_instances=["daily-drop"])
    response = await post(client, "/admin/instances", own, auth(gateway, B_ADMIN))
    await expect(response, 422, "INVALID_REFERENCE")
    source = {
        "source_id": "mine",
        "owner_id": "rival:main",
        "source_name": "Mine",
        "instance_ids": ["daily-drop"],
    }
    response = await post(client, "/admin/sources", source, auth(gateway, B_ADMIN))
    await expect(response, 422, "INVALID_REFERENCE")
    assert await asyncio.to_thread(everything, gateway) == before


# -- the platform role is granted by the platform only ---------------------------------------
@pytest.mark.usefixtures("cheap_passwords")
async def test_an_operator_admin_cannot_grant_or_touch_the_platform_role(
    client: QuartClient, gateway: Services
) -> None:
    await setup_a(gateway, client)
    platform = auth(gateway, PLATFORM)
    staff = {
        "username": "staff",
        "password": "a-long-enough-password",
        "operator_id": "demo",
        "roles": ["platform"],
    }
    a_admin = auth(gateway, A_ADMIN)
    before = await asyncio.to_thread(everything, gateway)
    await expect(await post(client, "/admin/accounts", staff, a_admin), 403, "PLATFORM_REQUIRED")
    escalate = {"roles": ["admin", "platform"]}
    response = await client.patch("/admin/accounts/demo-ops", json=escalate, headers=a_admin)
    await expect(response, 403, "PLATFORM_REQUIRED")
    assert await asyncio.to_thread(everything, gateway) == before
    # One made by the platform in A's operator is listed to A's admin but not changed by it.
    await expect(await post(client, "/admin/accounts", staff, platform), 201)
    listed = await expect(await client.get("/admin/accounts", headers=a_admin), 200)
    assert {"username": "staff", "operator_id": "demo", "roles": ["platform"]} in listed
    before = await asyncio.to_thread(everything, gateway)
    for method in ("DELETE", "PATCH"):
        response = await client.open(
            "/admin/accounts/staff", method=method, headers=a_admin, json={"roles": ["operator"]}
        )
        await expect(response, 403, "PLATFORM_REQUIRED")
    assert await asyncio.to_thread(everything, gateway) == before
    await expect(await client.delete("/admin/accounts/staff", headers=platform), 204)


def test_the_app_refuses_to_build_with_an_admin_route_without_a_scope(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    @declare("List things.", tag="Admin", role="admin", responses={200: Reply("Things.")})
    async def things() -> str:
        return ""

    def unscoped(state: BlueprintSetupState) -> None:
        state.add_url_rule("/things", view_func=things, endpoint="things")

    blueprint = admin_routes.blueprint
    monkeypatch.setattr(blueprint, "deferred_functions", [*blueprint.deferred_functions, unscoped])
    with pytest.raises(RuntimeError, match="without a declared scope: /admin/things"):
        create_app(make_settings(f"memory://scopes-{uuid.uuid4().hex}"))


@pytest.mark.usefixtures("cheap_passwords")
async def test_the_demo_has_a_platform_account_and_its_admin_sees_its_own_operator(
    client: QuartClient, demo: dict[str, Any]
) -> None:
    platform = await login(client, "platform-admin", DEMO_PASSWORDS["PLATFORM_ADMIN_PASSWORD"])
    demo_admin = await login(client, "demo-service", DEMO_PASSWORDS["DEMO_SERVICE_PASSWORD"])
    for token, operators in ((platform, ["demo", "provider", "rival"]), (demo_admin, ["demo"])):
        headers = {"Authorization": f"Bearer {token}"}
        listed = await expect(await client.get("/admin/operators", headers=headers), 200)
        assert sorted(operator["id"] for operator in listed) == operators
    # The README's tour: the demo admin reads its operator's instance.
    headers = {"Authorization": f"Bearer {demo_admin}"}
    await expect(await client.get("/admin/instances/daily-drop", headers=headers), 200)
