"""RQ jobs enqueued once per id: a duplicate request enqueues nothing new.

The queue Redis is plain redis-py under RQ, so its failures are classified here, like the
state client's (see `app.store.errors`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue
from rq.exceptions import DuplicateJobError

from app.store.errors import StoreOutcomeUnknown, StoreUnavailable, refused

T = TypeVar("T")


def enqueue_once(queue: Queue, func: Any, *args: Any, job_id: str, **options: Any) -> bool:
    """Enqueue `func(*args)` as job `job_id` unless that job exists; False for a duplicate."""
    try:
        queue.enqueue(func, *args, job_id=job_id, unique=True, **options)
    except DuplicateJobError:
        return False
    except RedisTimeoutError as error:  # sent, unanswered: the job may exist
        raise StoreOutcomeUnknown(f"queue: {error}") from error
    except RedisConnectionError as error:
        raise StoreUnavailable(f"queue: {error}") from error
    return True


def queue_length(connection: Any, name: str) -> int:
    try:
        return int(Queue(name, connection=connection).count)
    except (RedisConnectionError, RedisTimeoutError) as error:
        raise StoreUnavailable(f"queue: {error}") from error


def queue_call(work: Callable[..., T], *args: Any) -> T:
    """`work(*args)` on the queue Redis, its failures classified (app.store.errors): a lost
    reply is unknown, anything else before it unavailable."""
    try:
        return work(*args)
    except RedisTimeoutError as error:
        raise StoreOutcomeUnknown(f"queue: {error}", reason="timeout") from error
    except RedisConnectionError as error:
        raise (refused(error) or StoreUnavailable(f"queue: {error}")) from error
    except ResponseError as error:
        not_run = refused(error)
        if not_run is None:
            raise
        raise not_run from error
