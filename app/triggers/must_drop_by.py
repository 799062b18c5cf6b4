"""MustDropBy {min, max}: a hidden drop value drawn uniformly in [min, max) at every (re)seed;
the contribution that lifts the pot to it wins (lua/includes/triggers/must_drop_by.lua)."""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

from marshmallow import ValidationError, validates_schema

from app.core.money import to_micros
from app.schemas.common import Amount, StrictSchema
from app.triggers.base import Body, Compiled, Inputs, TriggerType


class MustDropBySchema(StrictSchema):
    min = Amount(required=True)
    max = Amount(required=True)

    @validates_schema
    def _ordered(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["min"] >= data["max"]:
            raise ValidationError("min must be below max.", "max")


def compile_trigger(body: Body) -> Compiled:
    return {
        "type": "MustDropBy",
        "min": to_micros(Decimal(body["min"])),
        "max": to_micros(Decimal(body["max"])),
    }


def drop_value(trigger: Compiled) -> int:
    """A hidden drop value, uniform in [min, max) micro-units, from the OS CSPRNG."""
    low, high = int(trigger["min"]), int(trigger["max"])
    return low + secrets.randbelow(high - low)


def inputs(trigger: Compiled, now_ms: int) -> Inputs:
    return None, drop_value(trigger)  # the next drop value, used only if the pot wins


def initial_state(trigger: Compiled, now_ms: int) -> int | None:
    return drop_value(trigger)


def check_pot(pot: dict[str, Any], body: Body) -> None:
    if not pot["is_progressive"]:
        raise ValidationError("A MustDropBy pot must be progressive to reach its drop.", "trigger")
    if body["min"] < pot["seed"]:
        raise ValidationError("MustDropBy.min must be at least the seed.", "trigger")
    cap = pot["max_value"]
    if cap is not None and body["max"] > cap:
        raise ValidationError("MustDropBy.max must not exceed max_value.", "trigger")


TRIGGER = TriggerType(
    "MustDropBy", MustDropBySchema, compile_trigger, inputs, initial_state, check_pot
)
