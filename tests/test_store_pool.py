"""A process with more commands in flight than pool connections waits, it does not fail."""

from __future__ import annotations

import asyncio

import pytest
from marshmallow import ValidationError

from app.schemas.admin import PotSchema
from app.store import Store
from tests.conftest import make_settings


async def test_more_concurrent_commands_than_connections_all_succeed(real_redis_url: str) -> None:
    store = Store.from_settings(make_settings(real_redis_url, redis_max_connections=4))
    try:
        # BLPOP with a timeout holds its connection, so 4 connections are busy at once.
        results = await asyncio.gather(
            *(store.client.blpop([f"absent-{i}"], timeout=0.05) for i in range(40))
        )
    finally:
        await store.close()
    assert results == [None] * 40


def test_a_non_progressive_must_drop_pot_is_refused() -> None:
    pot = {
        "id": "fixed",
        "name": "Fixed",
        "is_progressive": False,
        "share": "0.5",
        "seed": "10",
        "trigger": {"MustDropBy": {"min": "20", "max": "30"}},
    }
    with pytest.raises(ValidationError) as caught:
        PotSchema().load(pot)
    assert "trigger" in caught.value.messages
    assert PotSchema().load({**pot, "is_progressive": True})["is_progressive"] is True
