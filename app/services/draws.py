"""Verifiable raffle draws: seeds, commitments, the random numbers of a draw, the ticket
snapshot's hash, and when rounds end.

A round's seed is 32 bytes from `secrets`, published as hex at the draw; its commitment,
published when the round opens, is sha256 of those bytes. Prize j's random number is the
first 52 bits of HMAC-SHA256(key = seed bytes, message = "<instance_id>:<round>:<j>"), so
anyone holding the revealed seed recomputes every random number of the draw.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from app.schemas.admin import period_ms

RANDOM_BITS = 52  # the draw script takes integers in [0, 2^52)
DAY_MS = 86_400_000


def new_seed() -> str:
    return secrets.token_hex(32)


def commitment(seed: str) -> str:
    return hashlib.sha256(bytes.fromhex(seed)).hexdigest()


def draw_randoms(seed: str, instance_id: str, round_id: int, count: int) -> list[int]:
    key = bytes.fromhex(seed)
    return [
        int.from_bytes(
            hmac.new(key, f"{instance_id}:{round_id}:{j}".encode(), hashlib.sha256).digest()[:8],
            "big",
        )
        >> (64 - RANDOM_BITS)
        for j in range(1, count + 1)
    ]


def snapshot_hash(entries: Iterable[tuple[int, str, int]]) -> str:
    """sha256 of the lines "<fenwick index> <operator>:<brand>:<player> <tickets>\\n" in index
    order: the tickets a draw ran over."""
    digest = hashlib.sha256()
    for index, player_key, tickets in entries:
        digest.update(f"{index} {player_key} {tickets}\n".encode())
    return digest.hexdigest()


def round_end(draw: dict[str, Any], definition: dict[str, Any], after: int, now: int) -> int | None:
    """When a round that opens after `after` (the previous round's end, or the raffle's start)
    ends: the first scheduled moment later than both `after` and `now`, so a scheduler that
    was down draws the overdue round once and the next round keeps to the schedule."""
    if draw.get("at") == "end":
        end = definition["timestamp_end"]
        return None if end is None else int(end)
    floor = max(after, now)
    if draw.get("every") is not None:
        period = period_ms(draw["every"])
        steps = (floor - after) // period + 1
        return after + steps * period
    times = sorted(draw["daily"])
    day = datetime.fromtimestamp(floor // 1000, UTC).replace(hour=0, minute=0, second=0)
    for offset in range(2):
        for text in times:
            hour, minute = (int(part) for part in text.split(":"))
            moment = day + timedelta(days=offset, hours=hour, minutes=minute)
            moment_ms = int(moment.timestamp() * 1000)
            if moment_ms > floor:
                return moment_ms
    raise AssertionError("a daily time always falls within two days")


def round_view(state: dict[str, str]) -> dict[str, Any]:
    """The open round from an instance's state hash (views of operation 13 and admin)."""
    ends = state.get("raffle:ends")
    return {
        "round": int(state.get("raffle:round") or 1),
        "commitment": state.get("raffle:commitment") or None,
        "opened": int(state.get("raffle:opened") or 0),
        "ends": int(ends) if ends else None,
    }
