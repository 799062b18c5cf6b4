"""What a failed store call tells the caller: was the command sent at all?

redis-py raises the same `ConnectionError`/`TimeoutError` whether a command never left the
process (no connection, pool exhausted, connect refused) or was sent and its reply was lost
(read timeout, connection dropped mid-command). For a money-moving script the difference
matters: the first is safe to retry, the second may have been applied. The connection
classes in `app.store.connection` raise one of these two instead, at the point where the
difference is known. Both subclass redis-py's `ConnectionError`, so redis-py's own handling
(disconnect, cluster topology refresh) still applies.
"""

from __future__ import annotations

from redis.exceptions import ConnectionError as RedisConnectionError


class StoreError(RedisConnectionError):
    """The store could not be reached or did not answer; `kind` names which."""

    kind = "error"


class StoreUnavailable(StoreError):
    """The command was never sent: nothing was applied, a retry is safe."""

    kind = "unavailable"


class StoreOutcomeUnknown(StoreError):
    """The command was sent but no reply arrived: it may or may not have been applied."""

    kind = "outcome_unknown"
