"""The login throttle's script (take_login_attempt): one call counts the attempt and decides,
so concurrent attempts cannot all pass a check made before any of them was counted."""

from __future__ import annotations

import asyncio

import pytest

from app.core.refusals import Code
from app.store import ScriptRefusal, Store
from app.store.keys import login_attempts
from app.store.script_table import TAKE_LOGIN_ATTEMPT

WINDOW_MS = 60_000


async def take(store: Store, limit: int = 5, window_ms: int = WINDOW_MS) -> list[int]:
    return [
        int(part)
        for part in await store.script(
            TAKE_LOGIN_ATTEMPT, [login_attempts("192.0.2.1|u")], [limit, window_ms]
        )
    ]


async def test_concurrent_attempts_pass_exactly_the_limit(store: Store) -> None:
    answers = await asyncio.gather(*(take(store) for _ in range(40)))
    allowed = sorted(n for ok, n in answers if ok == 1)
    refused = [ms for ok, ms in answers if ok == 0]
    assert allowed == [1, 2, 3, 4, 5]  # each allowed attempt has its own number
    assert len(refused) == 35
    assert all(0 < ms <= WINDOW_MS for ms in refused)


async def test_the_window_opens_at_the_first_attempt_and_ends(store: Store) -> None:
    assert await take(store, limit=2, window_ms=300) == [1, 1]
    ttl = await store.client.pttl(login_attempts("192.0.2.1|u"))
    assert 0 < ttl <= 300
    assert await take(store, limit=2, window_ms=300) == [1, 2]
    refused, wait_ms = await take(store, limit=2, window_ms=300)
    assert refused == 0 and 0 < wait_ms <= 300
    await asyncio.sleep(0.4)
    assert await take(store, limit=2, window_ms=300) == [1, 1]


async def test_a_counter_without_expiry_gets_one(store: Store) -> None:
    """A counter left without a TTL (written by hand, or by an older version) cannot lock the
    subject out for ever."""
    await store.client.set(login_attempts("192.0.2.1|u"), 9)
    refused, wait_ms = await take(store)
    assert refused == 0 and wait_ms == WINDOW_MS
    assert 0 < await store.client.pttl(login_attempts("192.0.2.1|u")) <= WINDOW_MS


@pytest.mark.parametrize(("limit", "window_ms"), [(0, 1000), (5, 0), ("x", 1000), (5, 1.5)])
async def test_bad_arguments_are_refused_before_anything_is_written(
    store: Store, limit: object, window_ms: object
) -> None:
    with pytest.raises(ScriptRefusal) as caught:
        await store.script(TAKE_LOGIN_ATTEMPT, [login_attempts("192.0.2.1|u")], [limit, window_ms])
    assert caught.value.code is Code.BAD_ARGUMENT
    assert await store.client.exists(login_attempts("192.0.2.1|u")) == 0
