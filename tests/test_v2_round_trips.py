"""A v2 contribution settles its target, then all its linked instances at once: two writes to
Redis whatever the number of links (app.store.pipe batches the calls of one event-loop tick),
one atomic script per instance, and a refused link is still only its own item."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from quart.testing import QuartClient

from app.services import Services
from app.store import pipe
from tests.support.definitions import instance
from tests.support.http import exact_json, post, v2_body

LINKS = 10
REAL = pytest.mark.parametrize("redis_url", ["real"], indirect=True)


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of commands in each write the command pipes make."""
    seen: list[int] = []
    flush = pipe.CommandPipe._flush

    def counted(self: pipe.CommandPipe) -> None:
        pending = [f for _, f in self._outbox if not f.done()]
        if pending:
            seen.append(len(pending))
        flush(self)

    monkeypatch.setattr(pipe.CommandPipe, "_flush", counted)
    return seen


async def linked(client: QuartClient, headers: dict[str, str], links: int) -> None:
    for i in range(links):
        definition = instance(f"link-{i}", opt_in_required=i == 3)  # link-3 refuses: no opt-in
        await post(client, "/admin/instances", definition, headers)
    target = instance("target", linked_instances=[f"link-{i}" for i in range(links)])
    await post(client, "/admin/instances", target, headers)


def body(idempotency_key: str) -> dict[str, Any]:
    return v2_body(
        "target",
        player={"id": "p1", "brand_id": "brand1", "country": "DE"},
        base_wager={"value": Decimal("2"), "currency": "EUR"},
        options={"idempotency_key": idempotency_key},
    )


@pytest.mark.real_redis
@REAL
async def test_ten_links_take_two_writes(
    client: QuartClient, gateway: Services, headers: dict[str, str], writes: list[int]
) -> None:
    await linked(client, headers, LINKS)
    # the first call of a script on a fresh server loads it (NOSCRIPT, SCRIPT LOAD, again)
    await post(client, "/v2/jackpots/contribute", body("warm-up"), headers)
    await gateway.store.client.config_resetstat()
    writes.clear()
    response = await post(client, "/v2/jackpots/contribute", body("k1"), headers)
    assert response.status_code == 200
    items = await exact_json(response)
    assert [i["instance_id"] for i in items] == ["target"] + [f"link-{i}" for i in range(LINKS)]
    assert [i["success"] for i in items] == [True] + [i != 3 for i in range(LINKS)]
    assert items[4]["error"]["code"] == "NOT_OPTED_IN"
    # the target alone, then the ten links in one write
    assert writes == [1, LINKS]
    stats = await gateway.store.client.info("commandstats")
    assert stats["cmdstat_evalsha"]["calls"] == 1 + LINKS
    # a retry: the same two writes, every applied item a replay
    writes.clear()
    retry = await post(client, "/v2/jackpots/contribute", body("k1"), headers)
    assert retry.status_code == 204
    assert writes == [1, LINKS]


@pytest.mark.real_redis
@REAL
async def test_a_refused_target_attempts_no_link(
    client: QuartClient, gateway: Services, headers: dict[str, str], writes: list[int]
) -> None:
    await linked(client, headers, 3)
    await post(client, "/v2/jackpots/contribute", body("warm-up"), headers)
    await post(client, "/admin/instances/target/pause", {}, headers)
    writes.clear()
    response = await post(client, "/v2/jackpots/contribute", body("k2"), headers)
    items = await exact_json(response)
    assert [(i["instance_id"], i["success"]) for i in items] == [("target", False)]
    assert writes == [1]
