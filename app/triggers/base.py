"""What one trigger type provides; app/triggers/__init__.py finds each one (a module of the
package with its `TRIGGER`) and its Lua half, and registers both in TRIGGERS."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from marshmallow import Schema

Body = dict[str, Any]  # the trigger's body in a definition: a pot's {"<name>": body}
Compiled = dict[str, Any]  # the trigger in the engine JSON: {"type": name, ...integers}
Inputs = tuple[int | None, int | None]  # (hit input, reset input) of one contribution


def no_state(trigger: Compiled, now_ms: int) -> int | None:
    return None


def any_pot(pot: dict[str, Any], body: Body) -> None:
    return None


@dataclass(frozen=True)
class TriggerType:
    """The Python half of a trigger type, `app/triggers/<module>.py`, which ends with
    `TRIGGER = TriggerType(...)`. Its Lua half (the hit test and the reset on a win) is
    `lua/includes/triggers/<module>.lua`, the same module name; the registry pairs them and
    sets `module`.

    - `schema` validates the body in a definition.
    - `compile(body)` is the engine JSON's trigger: integers (micros, ms) and `type`.
    - `inputs(compiled, now_ms)`: the pot's two script inputs for one contribution, drawn from
      `secrets` (hit input, reset input; None where the trigger needs none).
    - `initial_state(compiled, now_ms)`: the pot's hidden state (its `drop_at`) when the
      instance is created, None when the trigger keeps none.
    - `check_pot(pot, body)` refuses (ValidationError) a pot the trigger cannot work with.
    """

    name: str
    schema: type[Schema]
    compile: Callable[[Body], Compiled]
    inputs: Callable[[Compiled, int], Inputs]
    initial_state: Callable[[Compiled, int], int | None] = no_state
    check_pot: Callable[[dict[str, Any], Body], None] = any_pot
    module: str = ""  # set by the registry: the module's name, which is the Lua half's too
