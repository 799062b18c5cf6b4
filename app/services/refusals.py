"""Script refusals as domain refusals: the message each code declares (app.core.refusals.Code)."""

from __future__ import annotations

from app.core.refusals import Refused
from app.store import ScriptRefusal


def refused(refusal: ScriptRefusal, instance_id: str) -> Refused:
    if not refusal.code.text:  # BAD_ARGUMENT and the like are defects of ours, not the caller's
        raise refusal
    return Refused(refusal.code, refusal.code.text.format(id=instance_id))
