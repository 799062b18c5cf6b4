"""HitRate {max_magic_number, cost_per_attempt}: a contribution buys amount / cost_per_attempt
attempts, each hitting with probability 1 / max_magic_number (its hit test:
lua/includes/triggers/hit_rate.lua)."""

from __future__ import annotations

import secrets
from decimal import Decimal

from marshmallow import validate

from app.core.money import to_micros
from app.schemas.common import Amount, StrictInt, StrictSchema
from app.triggers.base import Body, Compiled, Inputs, TriggerType

HIT_RANDOM_BOUND = 2**52  # the hit input is uniform in [0, HIT_RANDOM_BOUND)


class HitRateSchema(StrictSchema):
    max_magic_number = StrictInt(required=True, validate=validate.Range(1, 10**12))
    cost_per_attempt = Amount(required=True, minimum=0, min_inclusive=False)


def compile_trigger(body: Body) -> Compiled:
    return {
        "type": "HitRate",
        "max_magic_number": int(body["max_magic_number"]),
        "cost_per_attempt": to_micros(Decimal(body["cost_per_attempt"])),
    }


def inputs(trigger: Compiled, now_ms: int) -> Inputs:
    return secrets.randbelow(HIT_RANDOM_BOUND), None


TRIGGER = TriggerType("HitRate", HitRateSchema, compile_trigger, inputs)
