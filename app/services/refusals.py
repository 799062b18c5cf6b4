"""Script refusals as domain refusals: one message per code."""

from __future__ import annotations

from app.refusals import Code, Refused
from app.store import Refusal, ScriptRefusal

_TEXT = {
    Refusal.INSTANCE_NOT_FOUND: "Instance {id} does not exist.",
    Refusal.INSTANCE_NOT_ACTIVE: "Instance {id} is not active.",
    Refusal.INSTANCE_TERMINATED: "Instance {id} is terminated.",
    Refusal.INSTANCE_NOT_STARTED: "Instance {id} has not started yet.",
    Refusal.INSTANCE_ENDED: "Instance {id} has ended.",
    Refusal.NOT_OPTED_IN: "The player is not opted in to instance {id}.",
    Refusal.IDEMPOTENCY_MISMATCH: "The idempotency key was already used with a different request.",
    Refusal.POT_NOT_FOUND: "Instance {id} has no such pot.",
    Refusal.POT_NOT_PROGRESSIVE: "A fixed pot's value cannot grow: boost its reserve.",
    Refusal.BOOST_ID_REUSED: "The boost id was already used for another boost.",
    Refusal.WIN_NOT_FOUND: "Instance {id} has no such win.",
    Refusal.WIN_NOT_WITHHELD: "The win was paid automatically: there is nothing to decide.",
    Refusal.WIN_ALREADY_DECIDED: "The win was already decided.",
    Refusal.AMOUNT_OVERFLOW: "A pot of instance {id} cannot hold more (2^63 - 1 micro-units).",
}


def refused(refusal: ScriptRefusal, instance_id: str) -> Refused:
    text = _TEXT.get(refusal.code)
    if text is None:  # BAD_ARGUMENT and the like are defects of ours, not the caller's
        raise refusal
    return Refused(Code(refusal.code.value), text.format(id=instance_id))
