"""Issue 20, 3: draws on time after a scheduler crash or stop. A killed scheduler's claimed
draws waited out a 60 s lease; a SIGTERM cancelled the running tick, leaving its items leased;
a big round's archive ran inside its draw item and held up every draw claimed with it. Now the
lease is short and renewed while an item runs, a stopping scheduler finishes or hands back
its items, archives are items of their own, and each instance's items run beside the others'.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from quart.testing import QuartClient

from app.core.clock import now_ms
from app.services import Services, lifecycle
from tests.support.http import bet, expect, post
from tests.test_raffle_integrity import clock, headers  # noqa: F401 (fixtures)
from tests.test_raffle_rounds import HOUR, Clock, get_round, raffle

pytestmark = pytest.mark.parametrize("redis_url", ["real"], indirect=True)


@pytest.fixture
async def successor(gateway: Services) -> AsyncIterator[Services]:
    """Another scheduler process's services on the same store."""
    other = Services.create(gateway.settings)
    yield other
    await other.close()


async def test_a_killed_schedulers_draw_runs_within_10_s_of_a_successor(
    client: QuartClient,
    headers: dict[str, str],  # noqa: F811
    gateway: Services,
    successor: Services,
    clock: Clock,  # noqa: F811
) -> None:
    await expect(await post(client, "/admin/instances", raffle("kill"), headers), 201)
    await bet(client, headers, "kill", "a", "3")
    clock.now += HOUR
    # The first scheduler claims the draw and is killed (kill -9: nothing runs after).
    assert await gateway.store.claim_due(clock.now, 100, lifecycle.LEASE_MS) == [("draw", "kill@1")]
    assert await successor.lifecycle.run_due() == []  # leased
    clock.now += 10_000  # a successor started now draws within 10 s
    assert ("draw", "kill@1") in await successor.lifecycle.run_due()
    assert (await get_round(client, headers, "kill", 1))["status"] == "drawn"


async def test_a_running_items_lease_is_renewed_until_it_is_done(
    gateway: Services, successor: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lifecycle, "LEASE_MS", 300)
    monkeypatch.setattr(lifecycle, "RENEW_MS", 50)
    ran: list[str] = []

    async def slow(target: str) -> None:
        ran.append(target)
        await asyncio.sleep(1.0)  # three leases and more

    for services in (gateway, successor):
        services.lifecycle.register("archive", slow)
    await gateway.store.schedule("archive", "long@1", now_ms() - 1)
    [task] = await gateway.lifecycle.start_due()
    for _ in range(8):  # the successor never finds it due while it runs
        await asyncio.sleep(0.12)
        assert await successor.lifecycle.start_due() == []
    assert await task == [("archive", "long@1")]
    assert ran == ["long@1"]
    assert await gateway.store.scheduled() == []


async def test_an_archive_holds_up_no_draw(
    client: QuartClient,
    headers: dict[str, str],  # noqa: F811
    gateway: Services,
    clock: Clock,  # noqa: F811
) -> None:
    release = asyncio.Event()

    async def long_archive(target: str) -> None:
        await release.wait()

    gateway.lifecycle.register("archive", long_archive)
    await gateway.store.schedule("archive", "giant@7", clock.now - 1)
    for instance_id in ("x", "y"):
        await expect(await post(client, "/admin/instances", raffle(instance_id), headers), 201)
        await bet(client, headers, instance_id, "a", "2")
    [archiving] = await gateway.lifecycle.start_due()
    clock.now += HOUR  # the two draws are due while the archive runs
    draws = await gateway.lifecycle.start_due()  # the next tick does not wait for it
    ran = [item for items in await asyncio.gather(*draws) for item in items]
    assert sorted(ran) == [("draw", "x@1"), ("draw", "y@1")]
    assert not archiving.done()
    release.set()
    assert await archiving == [("archive", "giant@7")]


async def test_a_stopping_scheduler_finishes_or_hands_back_its_items(
    gateway: Services, successor: Services
) -> None:
    done: list[str] = []
    forever = asyncio.Event()

    async def quick(target: str) -> None:
        await asyncio.sleep(0.05)
        done.append(target)

    async def stuck(target: str) -> None:
        await forever.wait()

    gateway.lifecycle.register("quick", quick)
    gateway.lifecycle.register("stuck", stuck)
    successor.lifecycle.register("stuck", lambda target: asyncio.sleep(0))
    for action in ("quick", "stuck"):
        await gateway.store.schedule(action, f"{action}-instance@1", now_ms() - 1)
    assert len(await gateway.lifecycle.start_due()) == 2
    # SIGTERM: the quick item finishes within the grace; the stuck one is handed back.
    assert await gateway.lifecycle.stop(0.5) == ["stuck|stuck-instance@1"]
    assert done == ["quick-instance@1"]
    assert await gateway.lifecycle.start_due() == []  # claims nothing once stopping
    assert await successor.lifecycle.run_due() == [("stuck", "stuck-instance@1")]  # at once
    assert await gateway.store.scheduled() == []


async def test_each_draw_logs_a_line_and_its_delay(
    client: QuartClient,
    headers: dict[str, str],  # noqa: F811
    gateway: Services,
    clock: Clock,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    await expect(await post(client, "/admin/instances", raffle("logged"), headers), 201)
    await bet(client, headers, "logged", "a", "2")
    clock.now += HOUR + 1_500  # the scheduler is 1.5 s late
    with caplog.at_level(logging.INFO, logger="jackpot_gateway.raffles"):
        await gateway.lifecycle.run_due()
    [line] = [r for r in caplog.records if r.getMessage().startswith("raffle logged round 1")]
    assert (line.instance_id, line.round, line.winners, line.delay_ms) == (  # type: ignore[attr-defined]
        "logged",
        1,
        1,
        1_500,
    )
    assert "demo:brand1:a" in line.getMessage()
    metrics = gateway.metrics.render().decode()
    assert "jg_raffle_draw_delay_seconds_count 1.0" in metrics
    assert 'jg_raffle_draw_delay_seconds_bucket{le="2.0"} 1.0' in metrics
