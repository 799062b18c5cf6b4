"""Every value of a Redis server, read by type, and searched for texts that must not be there
(as stored, and as RQ's zlib compression and base64 encoding would hide them)."""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Iterator, Mapping

import redis


def readings(value: bytes) -> Iterator[bytes]:
    """A stored value as stored, and as RQ's zlib and base64 encodings hide it."""
    yield value
    for data in (value, _unbase64(value)):
        if data is None:
            continue
        yield data
        inflated = _inflate(data)
        if inflated is not None:
            yield inflated


def _inflate(value: bytes) -> bytes | None:
    try:
        return zlib.decompress(value)
    except zlib.error:
        return None


def _unbase64(value: bytes) -> bytes | None:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def stored_values(url: str) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) for every value of every key of the server, read by type."""
    client = redis.Redis.from_url(url)
    try:
        assert set(client.info("keyspace")) <= {"db0"}
        for key in client.scan_iter(count=1000):
            kind = client.type(key)
            values: list[bytes] = []
            if kind == b"string":
                values = [client.get(key) or b""]
            elif kind == b"hash":
                for field, value in client.hgetall(key).items():
                    values += [field, value]
            elif kind == b"list":
                values = client.lrange(key, 0, -1)
            elif kind == b"set":
                values = list(client.smembers(key))
            elif kind == b"zset":
                values = [member for member, _ in client.zrange(key, 0, -1, withscores=True)]
            elif kind == b"stream":
                for _, entry in client.xrange(key):
                    for field, value in entry.items():
                        values += [field, value]
            else:
                raise AssertionError(f"unexpected type {kind!r} of {key!r}")
            for value in values:
                yield key, value
    finally:
        client.close()


def found_in_redis(
    url: str, searched: Mapping[str, str], allowed: Mapping[str, set[str]] | None = None
) -> list[str]:
    """ "<name> in <key>" for each searched text (by name) found in a value; `allowed`: the
    names that may be in a key (a secret in the configuration that holds it)."""
    found = set()
    for key, value in stored_values(url):
        permitted = (allowed or {}).get(key.decode(errors="replace"), set())
        for name, text in searched.items():
            if name in permitted:
                continue
            if any(text.encode() in reading for reading in readings(value)):
                found.add(f"redis: {name} in {key!r}")
    return sorted(found)
