"""Trigger types, registered in one table.

A trigger type is one module here (its definition schema, its compilation into the engine
JSON, the random inputs it needs per contribution, its initial hidden state) and one Lua
include, `lua/includes/triggers/<module>.lua` (its hit test and its reset on a win). A pot's
`trigger` in a definition is `{"<name>": body}` with exactly one registered name; any other
is refused when the definition is loaded.
"""

from __future__ import annotations

from typing import Any

from app.triggers import hit_rate, must_drop_by, must_drop_by_time
from app.triggers.base import Compiled, Inputs, TriggerType

TRIGGERS: dict[str, TriggerType] = {
    trigger.name: trigger
    for trigger in (hit_rate.TRIGGER, must_drop_by.TRIGGER, must_drop_by_time.TRIGGER)
}


def trigger_of(definition_trigger: dict[str, Any]) -> tuple[TriggerType, dict[str, Any]]:
    """The type and body of a pot's `{"<name>": body}` trigger."""
    [(name, body)] = definition_trigger.items()
    return TRIGGERS[name], body


def compile_trigger(definition_trigger: dict[str, Any]) -> Compiled:
    trigger, body = trigger_of(definition_trigger)
    return trigger.compile(body)


def pot_inputs(definition_trigger: dict[str, Any], now_ms: int) -> Inputs:
    """A pot's two script inputs for one contribution, from `secrets`."""
    trigger, body = trigger_of(definition_trigger)
    return trigger.inputs(trigger.compile(body), now_ms)


def initial_state(compiled: Compiled, now_ms: int) -> int | None:
    """A compiled pot trigger's hidden state at creation (None: it keeps none)."""
    return TRIGGERS[compiled["type"]].initial_state(compiled, now_ms)
