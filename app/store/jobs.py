"""RQ jobs enqueued once per id: a duplicate request enqueues nothing new.

The queue Redis is plain redis-py under RQ, so its failures are classified here, like the
state client's (see `app.store.errors`).
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue
from rq.exceptions import DuplicateJobError

from app.store.errors import StoreOutcomeUnknown, StoreUnavailable


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
