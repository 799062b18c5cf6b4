"""Jackpot Gateway. The web application's factory is `app.edge.web.create_app`; importing a part
(`app.core.money`, `app.store`, ...) does not import Quart or build the web app."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # `from app import create_app` still works, loading the web app only when asked for.
    if name == "create_app":
        from app.edge.web import create_app

        return create_app
    raise AttributeError(f"module 'app' has no attribute {name!r}")
