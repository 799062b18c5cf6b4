"""Verifiable raffle draws: seeds, commitments, the random numbers of a draw, the ticket
snapshot's hash, and when rounds end.

A round's seed is HMAC-SHA256(key = the draw key, message = "<instance_id>:<round>"), 32
bytes, published as hex at the draw and never written anywhere before: the draw key
(`DRAW_KEY`) is held by the processes only, so nobody reading Redis during sales can know
it. Its commitment, published before the round's first ticket sells, is sha256 of those
bytes. A round records the id of its key (`key_id`, an HMAC of a fixed text under the key:
it names the key and reveals nothing of it), so a rotated key still draws the rounds
committed under it (`DRAW_KEY_PREVIOUS`).

The random numbers also depend on the round's sealed ticket snapshot, so no one can aim
tickets at a known outcome: prize j's random is the first accepted u of
HMAC-SHA256(key = seed bytes, message = "<instance_id>:<round>:<snapshot_hash>:<j>:<k>") for
k = 0, 1, ... read as a 256-bit big-endian integer; with R the tickets of the players not yet
drawn, u is accepted when u < 2^256 - (2^256 mod R) (rejection sampling: every ticket
exactly as likely), and the winning ticket is u mod R, counted from 0 in index order.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from app.schemas.common import period_ms

RANDOM_BITS = 52  # draw version 1 (rounds drawn before version 2): integers in [0, 2^52)
DRAW_VERSION = 2
DAY_MS = 86_400_000
_KEY_ID_TEXT = b"jackpot-gateway raffle draw key id"
_SPACE = 1 << 256


def new_seed() -> str:
    """A random seed (tests and benchmarks; rounds derive theirs from the draw key)."""
    return secrets.token_hex(32)


def commitment(seed: str) -> str:
    return hashlib.sha256(bytes.fromhex(seed)).hexdigest()


def key_id(key: str) -> str:
    """The public name of a draw key."""
    return hmac.new(key.encode(), _KEY_ID_TEXT, hashlib.sha256).hexdigest()[:16]


def derive_seed(key: str, instance_id: str, round_id: int) -> str:
    return hmac.new(key.encode(), f"{instance_id}:{round_id}".encode(), hashlib.sha256).hexdigest()


class Postponed(Exception):
    """A scheduled item that cannot run yet (a paused raffle's draw): due again at `due_ms`."""

    def __init__(self, due_ms: int, reason: str) -> None:
        super().__init__(reason)
        self.due_ms = due_ms


def derive_salt(key: str, instance_id: str, round_id: int, player_key: str) -> str:
    message = f"salt:{instance_id}:{round_id}:{player_key}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def player_commit(player_key: str, salt: str) -> str:
    """A snapshot line's stand-in for the player (version 2): sha256 hex of
    "<operator>:<brand>:<player> <salt>"; without the salt nobody can test a guess of it."""
    return hashlib.sha256(f"{player_key} {salt}".encode()).hexdigest()


class UnknownDrawKey(Exception):
    """A round was committed under a draw key this process does not hold."""


class DrawKeys:
    """The draw key (new rounds) and the previous ones (rounds committed before a rotation)."""

    def __init__(self, current: str, previous: Iterable[str] = ()) -> None:
        self._current = current
        self._keys = {key_id(key): key for key in (*previous, current) if key}

    @property
    def current_id(self) -> str:
        if not self._current:
            raise UnknownDrawKey("no DRAW_KEY is configured")
        return key_id(self._current)

    def seed(self, instance_id: str, round_id: int, key: str | None = None) -> str:
        """The seed of a round committed under the key named `key` (the current key)."""
        name = key or self.current_id
        found = self._keys.get(name)
        if found is None:
            raise UnknownDrawKey(f"the draw key {name} is not configured")
        return derive_seed(found, instance_id, round_id)

    def salt(self, key: str, instance_id: str, round_id: int, player_key: str) -> str:
        """The salt of a player's line in a round's snapshot (version 2), from the round's
        key: published to the player's operator and admins only."""
        found = self._keys.get(key)
        if found is None:
            raise UnknownDrawKey(f"the draw key {key} is not configured")
        return derive_salt(found, instance_id, round_id, player_key)

    def commitment(self, instance_id: str, round_id: int) -> tuple[str, str]:
        """(key id, commitment) of a round committed now, under the current key."""
        return self.current_id, commitment(self.seed(instance_id, round_id))


def draw_randoms(seed: str, instance_id: str, round_id: int, count: int) -> list[int]:
    """Draw version 1's random numbers (rounds drawn before version 2), kept to read them."""
    key = bytes.fromhex(seed)
    return [
        int.from_bytes(
            hmac.new(key, f"{instance_id}:{round_id}:{j}".encode(), hashlib.sha256).digest()[:8],
            "big",
        )
        >> (64 - RANDOM_BITS)
        for j in range(1, count + 1)
    ]


def draw_random(
    seed: str, instance_id: str, round_id: int, snapshot: str, prize: int, attempt: int
) -> int:
    message = f"{instance_id}:{round_id}:{snapshot}:{prize}:{attempt}".encode()
    digest = hmac.new(bytes.fromhex(seed), message, hashlib.sha256).digest()
    return int.from_bytes(digest, "big")


def sample(
    seed: str, instance_id: str, round_id: int, snapshot: str, prize: int, remaining: int
) -> tuple[int, int]:
    """(u, u mod remaining): the first 256-bit random of the prize below the largest multiple
    of `remaining` (no modulo bias at any ticket count)."""
    limit = _SPACE - _SPACE % remaining
    attempt = 0
    while True:
        u = draw_random(seed, instance_id, round_id, snapshot, prize, attempt)
        if u < limit:
            return u, u % remaining
        attempt += 1


@dataclass(frozen=True)
class Pick:
    prize: int
    random: int
    target: int  # the winning ticket, from 0 over the players not drawn yet
    index: int  # the winner's index in the snapshot


class _Tree:
    """A Fenwick tree over the snapshot's ticket counts (exact Python integers)."""

    def __init__(self, counts: Sequence[int]) -> None:
        self.size = 1
        while self.size < len(counts):
            self.size *= 2
        self.nodes = [0] * (self.size + 1)
        for i, count in enumerate(counts, start=1):
            j = i
            while j <= self.size:
                self.nodes[j] += count
                j += j & -j

    def add(self, i: int, delta: int) -> None:
        while i <= self.size:
            self.nodes[i] += delta
            i += i & -i

    def find(self, target: int) -> int:
        pos, rest, step = 0, target, self.size
        while step:
            nxt = pos + step
            if nxt <= self.size and self.nodes[nxt] <= rest:
                pos, rest = nxt, rest - self.nodes[nxt]
            step //= 2
        return pos + 1


def draw_winners(
    seed: str,
    instance_id: str,
    round_id: int,
    snapshot: str,
    tickets: Sequence[tuple[int, str, int]],
    prizes: int,
) -> list[Pick]:
    """The winners of a round: one per prize in order, distinct, each the holder of the
    sampled ticket among the players not drawn yet. `tickets` are the snapshot's lines
    (index 1..n in order, player key, tickets)."""
    counts = [held for _, _, held in sorted(tickets)]
    tree = _Tree(counts)
    remaining = sum(counts)
    picks: list[Pick] = []
    for prize in range(1, prizes + 1):
        if remaining <= 0:
            break
        u, target = sample(seed, instance_id, round_id, snapshot, prize, remaining)
        index = tree.find(target)
        picks.append(Pick(prize, u, target, index))
        tree.add(index, -counts[index - 1])
        remaining -= counts[index - 1]
    return picks


SNAPSHOT_VERSION = 2


def snapshot_hash(entries: Iterable[tuple[int, str, int]]) -> str:
    """sha256 of the lines "<index> <name> <tickets>" + newline, in index order: the tickets a
    draw ran over. Version 2 (SNAPSHOT_VERSION) names each player by its commit
    (player_commit; pass salted_lines' entries), so an operator checks the hash without
    seeing other operators' players; version 1 (rounds drawn before) by its player key."""
    digest = hashlib.sha256()
    for index, player_key, tickets in entries:
        digest.update(f"{index} {player_key} {tickets}\n".encode())
    return digest.hexdigest()


def salted_lines(
    entries: Iterable[tuple[int, str, int]], salt_of: Callable[[str], str]
) -> list[tuple[int, str, int]]:
    """A snapshot's entries (index, player key, tickets) with each player key replaced by its
    commit (version 2), for snapshot_hash."""
    return [(index, player_commit(pk, salt_of(pk)), held) for index, pk, held in entries]


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
        "key_id": state.get("raffle:key") or None,
        "next_commitment": state.get("raffle:next_commitment") or None,
    }
