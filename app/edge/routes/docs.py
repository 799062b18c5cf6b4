"""GET /openapi.json (built from the routes' declarations) and GET /docs (Swagger UI).

Swagger UI's assets come from the `swagger-ui-bundle` wheel and are served by this app: the
page loads nothing from elsewhere.
"""

from __future__ import annotations

import functools
from typing import Any

from marshmallow import fields, validate
from quart import Blueprint, Response, current_app
from swagger_ui_bundle import swagger_ui_path

from app.edge.contract import Reply, declare
from app.edge.routes.health import package_version

blueprint = Blueprint("docs", __name__)

# The only files the page needs, and their types.
ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
}

DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Jackpot Gateway API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
</head><body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  persistAuthorization: true,
  tryItOutEnabled: true,
  displayRequestDuration: true,
  docExpansion: "list",
  validatorUrl: null
});
</script></body></html>
"""


@functools.cache
def _asset_bytes(name: str) -> bytes:
    data: bytes = (swagger_ui_path / name).read_bytes()
    return data


@blueprint.get("/openapi.json")
@declare(
    "Read this API's OpenAPI 3 document, generated from the routes' declarations.",
    tag="Documentation",
    public=True,
    responses={200: Reply("The OpenAPI document.", schema={"type": "object"})},
)
async def openapi() -> dict[str, Any]:
    cached = current_app.extensions.get("openapi")
    if cached is None:
        from app.edge.openapi import build_spec

        cached = current_app.extensions["openapi"] = build_spec(current_app, package_version())
    return cached


@blueprint.get("/docs")
@declare(
    "Browse this API's reference (Swagger UI): try requests with a bearer token.",
    tag="Documentation",
    public=True,
    responses={200: Reply("The reference page.", content_type="text/html")},
)
async def docs() -> Response:
    return Response(DOCS_PAGE, content_type="text/html; charset=utf-8")


@blueprint.get("/docs/assets/<asset>")
@declare(
    "Read one of the reference page's assets (from the swagger-ui-bundle package).",
    tag="Documentation",
    public=True,
    path={"asset": fields.String(validate=validate.OneOf(sorted(ASSETS)))},
    responses={
        200: Reply(
            "The asset.",
            content_type="text/css",
            text_types=("text/javascript", "image/png"),
        )
    },
)
async def asset(asset: str) -> Response:
    response = Response(_asset_bytes(asset), content_type=ASSETS[asset])
    response.cache_control.max_age = 86400
    response.cache_control.public = True
    return response
