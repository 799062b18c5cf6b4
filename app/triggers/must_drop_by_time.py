"""MustDropByTime {period, drop_by?}: the pot must drop within each period.

Periods are aligned to UTC: they start at multiples of the period since the epoch (days at
00:00, hours on the hour, "30s" on multiples of 30 s). A hidden moment is drawn uniformly in
[period start, drop_by) from `secrets`; the first contribution at or after it (and before the
period ends) wins the pot. After a win the next period's moment is drawn; when a period passed
without one, the current period's moment takes over (lua/includes/triggers/must_drop_by_time.lua).
One rule, whatever the previous period did: a period's first contribution after its window (after
`drop_by`) is past the period's moment, so it wins. `drop_by` is a time of day ("22:00",
"21:30:15") for daily periods; without it the window is the whole period.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from marshmallow import ValidationError, fields, validates_schema

from app.schemas.common import PERIOD_PATTERN, Pattern, StrictSchema, period_ms
from app.triggers.base import Body, Compiled, Inputs, TriggerType

DAY_MS = 86_400_000
DROP_BY_PATTERN = re.compile(r"^(?P<h>[01]\d|2[0-4]):(?P<m>[0-5]\d)(?::(?P<s>[0-5]\d))?$")


def drop_by_ms(text: str) -> int:
    """A time of day as ms after 00:00 ("22:00" -> 79_200_000)."""
    match = DROP_BY_PATTERN.fullmatch(text)
    if not match:
        raise ValueError(text)
    hours, minutes, seconds = (int(match.group(g) or 0) for g in ("h", "m", "s"))
    return ((hours * 60 + minutes) * 60 + seconds) * 1000


class MustDropByTimeSchema(StrictSchema):
    period = fields.String(
        required=True,
        validate=Pattern(PERIOD_PATTERN, error="A period such as 30s, 1h or 1d."),
    )
    drop_by = fields.String(
        load_default=None,
        allow_none=True,
        validate=Pattern(DROP_BY_PATTERN, error="A time of day such as 22:00."),
    )

    @validates_schema
    def _daily(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["drop_by"] is None:
            return
        if period_ms(data["period"]) != DAY_MS:
            raise ValidationError("drop_by is a time of day: only for a 1d period.", "drop_by")
        if not 0 < drop_by_ms(data["drop_by"]) <= DAY_MS:
            raise ValidationError("drop_by must be after 00:00 and at most 24:00.", "drop_by")


def compile_trigger(body: Body) -> Compiled:
    period = period_ms(body["period"])
    drop_by = body.get("drop_by")
    return {
        "type": "MustDropByTime",
        "period_ms": period,
        "window_ms": period if drop_by is None else drop_by_ms(drop_by),
    }


def period_start(trigger: Compiled, now_ms: int) -> int:
    return now_ms - now_ms % int(trigger["period_ms"])


def inputs(trigger: Compiled, now_ms: int) -> Inputs:
    """The moment of the current period (used when the stored one's period has passed) and
    the moment of the next period (the state after a win)."""
    start, window = period_start(trigger, now_ms), int(trigger["window_ms"])
    following = start + int(trigger["period_ms"])
    return start + secrets.randbelow(window), following + secrets.randbelow(window)


def initial_state(trigger: Compiled, now_ms: int) -> int | None:
    """A moment in what is left of the current window, else in the next period's window."""
    start, window = period_start(trigger, now_ms), int(trigger["window_ms"])
    if now_ms < start + window:
        return now_ms + secrets.randbelow(start + window - now_ms)
    return start + int(trigger["period_ms"]) + secrets.randbelow(window)


TRIGGER = TriggerType(
    "MustDropByTime", MustDropByTimeSchema, compile_trigger, inputs, initial_state
)
