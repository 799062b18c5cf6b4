"""Trigger types: each is one module of this package and one Lua include, found by name.

A trigger type is `app/triggers/<module>.py` (its definition schema, its compilation into the
engine JSON, the random inputs it needs per contribution, its initial hidden state; it ends with
`TRIGGER = TriggerType(...)`) and `lua/includes/triggers/<module>.lua` (its hit test and its
reset on a win; it ends with `return {inputs = ..., hit = ..., reset = ...}`). Nothing else
registers it: TRIGGERS is made from this package's modules (all but `base` and `_*`), the
definition schema takes its names from TRIGGERS, and the contribute script's dispatch table is
made from TRIGGERS when the scripts are loaded (`lua_dispatch`), which refuses a half-registered
trigger type, so a process with one stops at start (TriggerRegistryError, one line). A pot's
`trigger` in a definition is `{"<name>": body}` with exactly one registered name; any other is
refused when the definition is loaded.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from app.triggers.base import Compiled, Inputs, TriggerType

SUPPORT_MODULES = frozenset({"base"})  # modules of this package that are no trigger type
LUA_HALVES = "includes/triggers"  # the Lua halves' folder, relative to lua/
_NAME = re.compile(r"^[A-Z][A-Za-z0-9]*$")  # a trigger type's name: a key in definitions


class TriggerRegistryError(Exception):
    """A trigger type is half registered or badly declared (a one-line message)."""


def _discover() -> dict[str, TriggerType]:
    triggers: dict[str, TriggerType] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        if info.name.startswith("_") or info.name in SUPPORT_MODULES:
            continue
        trigger = getattr(importlib.import_module(f"{__name__}.{info.name}"), "TRIGGER", None)
        where = f"app/triggers/{info.name}.py"
        if not isinstance(trigger, TriggerType):
            raise TriggerRegistryError(f"{where} defines no TRIGGER = TriggerType(...)")
        if not _NAME.fullmatch(trigger.name):
            raise TriggerRegistryError(f"{where}: {trigger.name!r} is not a CamelCase name")
        if trigger.name in triggers:
            raise TriggerRegistryError(
                f"{where} registers {trigger.name}, as "
                f"app/triggers/{triggers[trigger.name].module}.py does"
            )
        triggers[trigger.name] = replace(trigger, module=info.name)
    return triggers


TRIGGERS: dict[str, TriggerType] = _discover()


def lua_dispatch(lua_directory: Path) -> str:
    """The contribute script's dispatch table body: each registered type's Lua half, included
    inside a function whose result `register`s it under the type's name (lua/includes/
    triggers.lua). Refuses a registered type without its Lua half, and a Lua half that no
    registered type claims (TriggerRegistryError)."""
    halves = {path.stem for path in (lua_directory / LUA_HALVES).glob("*.lua")}
    for name, trigger in TRIGGERS.items():
        if trigger.module not in halves:
            raise TriggerRegistryError(
                f"trigger type {name} (app/triggers/{trigger.module}.py) has no Lua half: "
                f"lua/{LUA_HALVES}/{trigger.module}.lua is missing"
            )
    orphans = sorted(halves - {trigger.module for trigger in TRIGGERS.values()})
    if orphans:
        raise TriggerRegistryError(
            f"lua/{LUA_HALVES}/{orphans[0]}.lua is the Lua half of no trigger type: "
            f"app/triggers/{orphans[0]}.py (ending with TRIGGER = TriggerType(...)) is missing"
        )
    return "\n".join(
        f"register('{name}', (function()\n"
        f'--- @include "{LUA_HALVES}/{trigger.module}.lua"\n'
        "end)())"
        for name, trigger in sorted(TRIGGERS.items())
    )


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
