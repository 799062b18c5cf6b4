"""JSON out keeps decimals exact, whichever encoder writes it."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from app.core import jsonio

VALUES: list[Any] = [
    {"amount": Decimal("0.000001"), "pots": [Decimal("123456789.123456"), Decimal("-5.5")]},
    {"amount": Decimal("1.000000"), "big": Decimal("99999999999999999999.999999")},
    {"text": "Ünïcødé ✓", "n": 7, "none": None, "flag": True},
    {"lone surrogate": "\ud800", "amount": Decimal("2.50")},  # orjson refuses: json writes it
    {"beyond 64 bits": 2**70, "amount": Decimal("0.1")},  # orjson refuses: json writes it
    {1: "integer key", "amount": Decimal("3")},
]


@pytest.mark.parametrize("value", VALUES)
def test_decimals_come_back_exact_and_the_text_is_json(value: dict[Any, Any]) -> None:
    text = jsonio.dumps(value)
    parsed = json.loads(text, parse_float=Decimal)
    expected = {str(key): item for key, item in value.items()}
    assert parsed == expected
    for key, item in expected.items():
        if isinstance(item, Decimal):
            assert type(parsed[key]) in (Decimal, int)
            assert Decimal(parsed[key]) == item


def test_a_client_string_cannot_pass_for_a_number() -> None:
    text = jsonio.dumps({"s": "\x00123\x00", "t": '"\\u0000'})
    assert json.loads(text) == {"s": "\x00123\x00", "t": '"\\u0000'}


def test_an_unknown_type_is_still_a_type_error() -> None:
    with pytest.raises(TypeError):
        jsonio.dumps({"x": object()})
