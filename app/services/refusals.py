"""Script refusals as API errors: one HTTP status and message per code."""

from __future__ import annotations

from app.errors import APIError
from app.store import Refusal, ScriptRefusal

_STATUS_AND_TEXT = {
    Refusal.INSTANCE_NOT_FOUND: (404, "Instance {id} does not exist."),
    Refusal.INSTANCE_NOT_ACTIVE: (409, "Instance {id} is not active."),
    Refusal.INSTANCE_TERMINATED: (409, "Instance {id} is terminated."),
    Refusal.INSTANCE_NOT_STARTED: (409, "Instance {id} has not started yet."),
    Refusal.INSTANCE_ENDED: (409, "Instance {id} has ended."),
    Refusal.NOT_OPTED_IN: (409, "The player is not opted in to instance {id}."),
    Refusal.IDEMPOTENCY_MISMATCH: (
        409,
        "The idempotency key was already used with a different request.",
    ),
}


def refusal_error(refusal: ScriptRefusal, instance_id: str) -> APIError:
    known = _STATUS_AND_TEXT.get(refusal.code)
    if known is None:  # BAD_ARGUMENT and the like are defects of ours, not the caller's
        raise refusal
    status, text = known
    return APIError(status, refusal.code.value, text.format(id=instance_id))
