"""The store and the worker override redis-py and RQ methods by name: when a release renames or
drops one, the override silently stops running. Each must still override a method of the
library with the parameters our version accepts."""

from __future__ import annotations

import inspect

import pytest

from app.store import connection
from workers.main import PromptStop

OVERRIDING = [
    connection._Classifying,
    connection.ClassifyingConnection,
    connection.HiredisPackingConnection,
    connection.ClassifyingPool,
    PromptStop,
]


def _library_method(cls: type, name: str) -> object | None:
    for base in cls.__mro__[1:]:
        if base.__module__.startswith(("redis.", "rq.")) and name in vars(base):
            return vars(base)[name]
    return None


def _overrides() -> list[tuple[type, str]]:
    found = []
    for cls in OVERRIDING:
        for name, member in vars(cls).items():
            if callable(member) and not name.startswith("_"):  # _helpers are our own
                found.append((cls, name))
    return found


def test_the_overriding_classes_are_found() -> None:
    names = {name for _, name in _overrides()}
    assert {"connect_check_health", "send_packed_command", "get_connection", "subscribe"} <= names


@pytest.mark.parametrize(
    ("cls", "name"), _overrides(), ids=[f"{c.__name__}.{n}" for c, n in _overrides()]
)
def test_each_override_still_overrides_a_library_method(cls: type, name: str) -> None:
    base = _library_method(cls, name)
    assert base is not None, f"{cls.__name__}.{name} overrides nothing in this redis-py/RQ"
    ours = inspect.signature(getattr(cls, name)).parameters
    theirs = inspect.signature(base).parameters  # type: ignore[arg-type]
    missing = [
        parameter
        for parameter in theirs
        if parameter not in ours
        and not any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in ours.values())
    ]
    assert not missing, f"{cls.__name__}.{name} lacks parameters {missing} of the library's"
