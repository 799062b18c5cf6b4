"""What a failed store call tells the caller: was the command run, may it have been, and when
to try again. One table (`REPLIES`, `classify`) for every way the store fails.

redis-py raises the same `ConnectionError`/`TimeoutError` whether a command never left the
process (no connection, pool exhausted, connect refused) or was sent and its reply was lost
(read timeout, connection dropped mid-command). For a money-moving script the difference
matters: the first is safe to retry, the second may have been applied. The connection
classes in `app.store.connection` raise one of these two instead, at the point where the
difference is known. Both subclass redis-py's `ConnectionError`, so redis-py's own handling
(disconnect, cluster topology refresh) still applies.

Redis also refuses commands with error replies that say the server cannot serve now:
`LOADING` (reading its AOF/RDB after a restart), `OOM` (maxmemory reached with noeviction),
`READONLY` (a replica, e.g. after a failover), `MASTERDOWN`, `BUSY` (another script runs
past the busy threshold), `CLUSTERDOWN`, `TRYAGAIN`, `NOREPLICAS`, `MISCONF`. Each is answered
before the command runs; for a script, Redis checks OOM, READONLY and the replica state at
its first write and refuses it only while nothing was written yet ("we can't stop in the
middle"), so a script refused with any of them applied nothing: `StoreRefused`, a
`StoreUnavailable`. A script that runs past the busy threshold is not refused: it goes on
(other callers get BUSY) and its own caller's reply times out, `StoreOutcomeUnknown`.
`NOSCRIPT`, `MOVED` and `ASK` are handled inside the call (load the script, follow the
redirection) and never reach the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.exceptions import BusyLoadingError, RedisClusterException, RedisError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# Any failure of the Redis client, for the processes that stop on one with a line, not a
# traceback (only app.store imports redis).
BackendError = RedisError


class StoreError(RedisConnectionError):
    """The store could not be reached, did not answer or refused to serve; `kind` tells
    whether the command may have run, `reason` names the failure (the API's
    `details.reason`), `retry_after` when to try again (seconds)."""

    kind = "error"
    reason = "connection"
    retry_after = 1

    def __init__(self, message: str = "", *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class StoreUnavailable(StoreError):
    """The command was never run: nothing was applied, a retry is safe."""

    kind = "unavailable"


class StoreOutcomeUnknown(StoreError):
    """The command was sent but no reply arrived: it may or may not have been applied."""

    kind = "outcome_unknown"


@dataclass(frozen=True)
class Refusal:
    """An error reply of Redis that means it ran nothing."""

    reason: str
    retry_after: int  # seconds


# The error reply's first word -> what it means. Every one: nothing ran (503 for the HTTP
# API), and the store cannot take writes until it passes (/ready says so).
REPLIES: dict[str, Refusal] = {
    "LOADING": Refusal("loading", 5),
    "OOM": Refusal("out_of_memory", 30),
    "READONLY": Refusal("read_only", 5),
    "MASTERDOWN": Refusal("master_down", 5),
    "BUSY": Refusal("busy_script", 5),
    "CLUSTERDOWN": Refusal("cluster_down", 5),
    "TRYAGAIN": Refusal("try_again", 1),
    "NOREPLICAS": Refusal("no_replicas", 5),
    "MISCONF": Refusal("persistence_failed", 30),
}


class StoreRefused(StoreUnavailable):
    """Redis answered with an error reply of `REPLIES`: it ran nothing."""

    def __init__(self, message: str, refusal: Refusal) -> None:
        super().__init__(message, reason=refusal.reason)
        self.retry_after = refusal.retry_after


def reply_code(error: BaseException) -> str:
    """The first word of an error reply (redis-py keeps it apart for the classes it knows)."""
    code = getattr(error, "status_code", None)
    if isinstance(code, str) and code:
        return code
    text = str(error)
    return text.split(" ", 1)[0] if text else ""


def refused(error: BaseException) -> StoreRefused | None:
    """The error reply as a `StoreRefused`, or None when it is no refusal of `REPLIES`."""
    if not isinstance(error, ResponseError | BusyLoadingError):
        return None
    code = reply_code(error)
    refusal = REPLIES.get(code)
    if refusal is None:
        return None
    text = str(error)
    return StoreRefused(text if text.startswith(code) else f"{code} {text}", refusal)


def classify(error: BaseException) -> StoreError | None:
    """The store failure `error` is, or None for anything else (a defect: a 500).

    A connection failure that the connection classes did not classify cannot tell whether
    its command ran: it is taken as unknown (a retry with the same idempotency key is always
    safe). A cluster with no node for a slot sent nothing."""
    if isinstance(error, StoreError):
        return error
    refusal = refused(error)
    if refusal is not None:
        return refusal
    if isinstance(error, RedisTimeoutError | TimeoutError):
        return StoreOutcomeUnknown(str(error) or "timed out", reason="timeout")
    if isinstance(error, RedisConnectionError):
        return StoreOutcomeUnknown(str(error))
    if isinstance(error, RedisClusterException):
        return StoreUnavailable(str(error), reason="cluster_down")
    return None
