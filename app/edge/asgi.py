"""The ASGI app of one web worker process when `serve` runs several (WEB_CONCURRENCY > 1):
Hypercorn imports `app.edge.asgi:app` in each worker process it spawns."""

from __future__ import annotations

from app.core.config import Settings
from app.core.logs import configure_logging
from app.edge.web import create_app

settings = Settings.from_env()
configure_logging("web", json_lines=settings.log_json, level=settings.log_level)
app = create_app(settings)
