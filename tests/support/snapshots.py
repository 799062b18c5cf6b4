"""Snapshots of Redis keys, to prove that a refused or replayed request changed nothing."""

from __future__ import annotations

from typing import Any

from redis.asyncio.cluster import RedisCluster

from app.store import Store, keys


async def snapshot(store: Store, *instance_ids: str, expect_keys: bool = True) -> dict[str, Any]:
    """Every key of these instances (of all instances when none is named) with its type, its
    whole content and whether it expires. With `expect_keys`, finding no key at all fails:
    such a snapshot would prove nothing."""
    patterns = [keys.instance_tag(i) + "*" for i in instance_ids] or ["{jp:*"]
    state = await _read(store, patterns)
    if expect_keys:
        assert state, "no instance keys: the snapshot would prove nothing"
    return state


async def store_snapshot(store: Store) -> dict[str, Any]:
    """Every key of the store (configuration, accounts, audit trails, every instance), read as
    `snapshot` reads an instance's: to prove a refused request wrote nothing anywhere."""
    state = await _read(store, ["*"])
    assert state, "an empty store: the snapshot would prove nothing"
    return state


async def _read(store: Store, patterns: list[str]) -> dict[str, Any]:
    client = store.client
    # On a cluster, KEYS answers for one node: ask every primary.
    every_node = (
        {"target_nodes": RedisCluster.PRIMARIES} if isinstance(client, RedisCluster) else {}
    )
    found = {key for pattern in patterns for key in await client.keys(pattern, **every_node)}
    state: dict[str, Any] = {}
    for key in sorted(found):
        kind = await client.type(key)
        if kind == "string":
            content: Any = await client.get(key)
        elif kind == "hash":
            content = await client.hgetall(key)
        elif kind == "list":
            content = await client.lrange(key, 0, -1)
        elif kind == "set":
            content = sorted(await client.smembers(key))
        elif kind == "zset":
            content = await client.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            content = await client.xrange(key)
        else:
            raise AssertionError(f"{key}: unexpected type {kind}")
        state[key] = (kind, content, await client.pttl(key) > 0)
    return state
