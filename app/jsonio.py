"""JSON out with exact decimals: a Decimal is written as a JSON number with its own digits.

`json` can only write floats through float repr, which would round amounts with many digits.
Decimals are first written as marked strings, then unquoted; the marker carries a random
per-process token, so no client-supplied string can imitate it.
"""

from __future__ import annotations

import json
import re
import secrets
from decimal import Decimal
from typing import Any

from app.money import format_amount

_TOKEN = secrets.token_hex(8)
_MARKED = re.compile(r'"\\u0000' + _TOKEN + r'(-?[0-9]+(?:\.[0-9]+)?)\\u0000"')


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"\x00{_TOKEN}{format_amount(value)}\x00"
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> str:
    return _MARKED.sub(r"\1", json.dumps(value, default=_default, separators=(",", ":")))
