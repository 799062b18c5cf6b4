"""GET /health (the version) and GET /metrics (Prometheus text)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from marshmallow import fields
from quart import Blueprint, Response, current_app

from app.contract import Reply, declare
from app.schemas.common import StrictSchema

blueprint = Blueprint("health", __name__)


class HealthSchema(StrictSchema):
    version = fields.String(required=True, metadata={"description": "The server's version."})


def package_version() -> str:
    try:
        return version("jackpot-gateway")
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "0.0.0+unknown"


@blueprint.get("/health")
@declare(
    "Tell that the server is up, and its version.",
    tag="Health",
    public=True,
    responses={200: HealthSchema},
)
async def health() -> dict[str, Any]:
    return {"version": package_version()}


@blueprint.get("/metrics")
@declare(
    "Read the server's metrics in the Prometheus text format.",
    tag="Health",
    public=True,
    responses={200: Reply("Prometheus text exposition format.", content_type="text/plain")},
)
async def metrics() -> Response:
    text = current_app.extensions["metrics"].render()
    return Response(text, content_type="text/plain; version=0.0.4; charset=utf-8")
