"""Compile a validated instance definition into the integer form the Lua scripts read.

Every amount becomes micro-units of the instance currency, every share parts per million.
Engine JSON (the contract with lua/*.lua):
  {id, currency, auto_payout_limit (micros, -1 = none), opt_in_required,
   contribution: {type: "Fixed", amount} | {type: "Percentage", ppm},
   pots: [{id, share_ppm, reserve_ppm, seed, max_value (-1 = uncapped), progressive,
           trigger: {type: <trigger type>, ...} (compiled by its module of app/triggers/)}],
   raffle: null | {ticket_cost, ticket_basis, prizes, draw_every_ms (null = at end or daily),
           at_end (true: one round, drawn at the instance's end; tickets after it go
           nowhere, where a recurring raffle's go to the next round)}}
  raffle.prizes is the JSON text of [{amount} | {share_ppm}] (a string inside the engine
  JSON): every contribution decodes the engine, and only a draw needs the prizes, which
  would otherwise cost a Lua table each (up to 100) on every contribution.
"""

from __future__ import annotations

import json
from typing import Any

from app.core.money import to_micros, to_ppm
from app.schemas.common import period_ms
from app.triggers import compile_trigger

NONE = -1


def compile_engine(definition: dict[str, Any]) -> dict[str, Any]:
    contribution_type = definition["contribution_type"]
    if "Fixed" in contribution_type:
        contribution = {"type": "Fixed", "amount": to_micros(contribution_type["Fixed"])}
    else:
        contribution = {"type": "Percentage", "ppm": to_ppm(contribution_type["Percentage"])}
    limit = definition["auto_payout_limit"]
    return {
        "id": definition["id"],
        "currency": definition["currency"],
        "auto_payout_limit": NONE if limit is None else to_micros(limit),
        "opt_in_required": bool(definition["opt_in_required"]),
        "contribution": contribution,
        "pots": [_compile_pot(pot) for pot in definition["pots"]],
        "raffle": _compile_raffle(definition["raffle"]),
    }


def _compile_pot(pot: dict[str, Any]) -> dict[str, Any]:
    cap = pot["max_value"]
    return {
        "id": pot["id"],
        "share_ppm": to_ppm(pot["share"]),
        "reserve_ppm": to_ppm(pot["reserve_share"]),
        "seed": to_micros(pot["seed"]),
        "max_value": NONE if cap is None else to_micros(cap),
        "progressive": bool(pot["is_progressive"]),
        "trigger": compile_trigger(pot["trigger"]),
    }


def _compile_raffle(raffle: dict[str, Any] | None) -> dict[str, Any] | None:
    if raffle is None:
        return None
    every = raffle["draw"].get("every")
    return {
        "ticket_cost": to_micros(raffle["ticket_cost"]),
        "ticket_basis": raffle["ticket_basis"],
        "prizes": json.dumps(
            [
                {"share_ppm": to_ppm(prize["share"])}
                if isinstance(prize, dict)
                else {"amount": to_micros(prize)}
                for prize in raffle["prizes"]
            ],
            separators=(",", ":"),
        ),
        "draw_every_ms": None if every is None else period_ms(every),
        "at_end": raffle["draw"].get("at") == "end",
    }
