"""GET /health (the version) and GET /metrics (Prometheus text)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from quart import Blueprint, Response, current_app

from app.http import public

blueprint = Blueprint("health", __name__)


def package_version() -> str:
    try:
        return version("jackpot-gateway")
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "0.0.0+unknown"


@blueprint.get("/health")
@public
async def health() -> dict[str, Any]:
    return {"version": package_version()}


@blueprint.get("/metrics")
@public
async def metrics() -> Response:
    text = current_app.extensions["metrics"].render()
    return Response(text, content_type="text/plain; version=0.0.4; charset=utf-8")
