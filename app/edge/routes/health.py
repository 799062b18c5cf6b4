"""GET /health (liveness: the version), GET /ready (readiness: the store and the queue) and
GET /metrics (Prometheus text)."""

from __future__ import annotations

import functools
import hmac
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from marshmallow import fields
from quart import Blueprint, Response, request

from app.core.metrics import CONTENT_TYPE
from app.edge.contract import Reply, declare
from app.edge.errors import APIError
from app.edge.http import services
from app.schemas.common import ErrorSchema, StrictSchema

blueprint = Blueprint("health", __name__)


class HealthSchema(StrictSchema):
    version = fields.String(required=True, metadata={"description": "The server's version."})


@functools.cache  # reading package metadata costs more than the rest of the request
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


class ReadySchema(StrictSchema):
    ready = fields.Boolean(required=True, metadata={"description": "Every check is ok."})
    checks = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        required=True,
        metadata={"description": "store, queue: 'ok' or why not."},
    )


@blueprint.get("/ready")
@declare(
    "Tell whether the server can serve: its store and its queue answer.",
    tag="Health",
    public=True,
    responses={200: ReadySchema, 503: ReadySchema},
)
async def ready() -> tuple[dict[str, Any], int]:
    """200 when every dependency answers, else 503 (a load balancer stops sending traffic;
    /health keeps answering so the process is not restarted for Redis being away)."""
    checks = await services().readiness()
    ok = all(value == "ok" for value in checks.values())
    return {"ready": ok, "checks": checks}, 200 if ok else 503


@blueprint.get("/metrics")
@declare(
    "Read the server's metrics in the Prometheus text format.",
    description="Without a token: the series that name no operator. With `Authorization: "
    "Bearer <METRICS_TOKEN>` (a setting): also the series per instance and pot "
    "(contributions, wins, pot values).",
    tag="Health",
    public=True,
    responses={
        200: Reply("Prometheus text exposition format.", content_type="text/plain"),
        401: Reply("A bearer token that is not METRICS_TOKEN (INVALID_TOKEN).", ErrorSchema),
    },
)
async def metrics() -> Response:
    gateway = services()
    per_instance = _bears_metrics_token(gateway.settings.metrics_token)
    await gateway.refresh_gauges()
    return Response(gateway.metrics.render(per_instance=per_instance), content_type=CONTENT_TYPE)


def _bears_metrics_token(expected: str) -> bool:
    """Whether the scrape bears METRICS_TOKEN; a bearer token that is not it is a 401 (a
    scraper set up wrong hears of it rather than silently losing series)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    if not expected or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise APIError(401, "INVALID_TOKEN", "The bearer token is not the metrics token.")
    return True
