"""What keeps a contribution at one Redis command: the token and configuration caches."""

from __future__ import annotations

import asyncio
import time

import pytest

from app.core.security import Principal, TokenError, TokenIssuer
from app.services.config import ConfigCache
from app.store import Store
from tests.conftest import SECRET


def test_a_remembered_token_still_expires_on_time() -> None:
    issuer = TokenIssuer(SECRET, "jackpot-gateway", ttl_s=60)
    # exp lies 3.5 s in the past; the validator's 5 s leeway keeps it valid 1.5 s more.
    token = issuer.issue(Principal("svc", "demo", ("operator",)), now=time.time() - 63.5)
    assert issuer.verify(token).username == "svc"
    assert issuer.verify(token).username == "svc"
    time.sleep(1.7)
    with pytest.raises(TokenError) as caught:
        issuer.verify(token)
    assert caught.value.code == "TOKEN_EXPIRED"


def test_a_tampered_token_is_not_served_from_the_cache() -> None:
    issuer = TokenIssuer(SECRET, "jackpot-gateway", ttl_s=60)
    token = issuer.issue(Principal("svc", "demo", ("operator",)))
    issuer.verify(token)
    header, claims, signature = token.split(".")
    forged = ".".join([header, claims, signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")])
    with pytest.raises(TokenError) as caught:
        issuer.verify(forged)
    assert caught.value.code == "INVALID_TOKEN"


class CountingStore:
    """Counts configuration-version reads made through the store."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.version_reads = 0

    async def config_version(self) -> int:
        self.version_reads += 1
        await asyncio.sleep(0.01)  # a round trip during which other requests arrive
        return await self._store.config_version()

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)


async def test_concurrent_requests_share_one_version_check(store: Store) -> None:
    counting = CountingStore(store)
    cache = ConfigCache(counting, refresh_s=0.05)  # type: ignore[arg-type]
    await cache.get()
    assert counting.version_reads == 1
    await asyncio.sleep(0.06)  # the interval has passed: the next requests re-check
    snapshots = await asyncio.gather(*(cache.get() for _ in range(100)))
    assert counting.version_reads == 2
    assert len({id(snapshot) for snapshot in snapshots}) == 1
    await store.bump_config_version()
    await asyncio.sleep(0.06)
    changed = await cache.get()
    assert changed.version == snapshots[0].version + 1
