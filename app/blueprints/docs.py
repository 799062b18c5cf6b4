"""GET /openapi.json (from the marshmallow schemas) and GET /docs (a page rendering it)."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, current_app

from app.blueprints.health import package_version
from app.contract import Reply, declare

blueprint = Blueprint("docs", __name__)

# A self-contained page: no CDN, the document is rendered by a few lines of script.
DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Jackpot Gateway API</title>
<style>
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
h2{border-bottom:1px solid #ddd;padding-bottom:.3rem}
.op{margin:.6rem 0;padding:.5rem .8rem;border-left:4px solid #888;background:#f7f7f7}
.method{font-weight:bold;display:inline-block;width:4.5rem}
.get{border-color:#2b7bb9}.post{border-color:#2f9e44}.put{border-color:#e8590c}
.delete{border-color:#c92a2a}
pre{background:#fff;border:1px solid #eee;padding:.5rem;overflow:auto;font-size:.85rem}
</style></head><body>
<h1>Jackpot Gateway API</h1><p>Machine-readable: <a href="/openapi.json">/openapi.json</a></p>
<div id="ops">Loading...</div>
<script>
fetch('/openapi.json').then(r => r.json()).then(spec => {
  const byTag = {};
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(item)) {
      (byTag[op.tags[0]] = byTag[op.tags[0]] || []).push({path, method, op});
    }
  }
  const root = document.getElementById('ops');
  root.textContent = '';
  for (const tag of Object.keys(byTag).sort()) {
    const h = document.createElement('h2'); h.textContent = tag; root.appendChild(h);
    for (const {path, method, op} of byTag[tag]) {
      const div = document.createElement('div'); div.className = 'op ' + method;
      const head = document.createElement('div');
      const m = document.createElement('span'); m.className = 'method';
      m.textContent = method.toUpperCase(); head.appendChild(m);
      head.appendChild(document.createTextNode(path + ' - ' + op.summary));
      div.appendChild(head);
      const body = op.requestBody && op.requestBody.content['application/json'].schema;
      if (body) {
        const pre = document.createElement('pre');
        pre.textContent = 'body: ' + JSON.stringify(body, null, 1); div.appendChild(pre);
      }
      root.appendChild(div);
    }
  }
  const s = document.createElement('h2'); s.textContent = 'Schemas'; root.appendChild(s);
  const pre = document.createElement('pre');
  pre.textContent = JSON.stringify(spec.components.schemas, null, 1); root.appendChild(pre);
});
</script></body></html>
"""


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
        from app.openapi import build_spec

        cached = current_app.extensions["openapi"] = build_spec(current_app, package_version())
    return cached


@blueprint.get("/docs")
@declare(
    "Browse this API's reference page.",
    tag="Documentation",
    public=True,
    responses={200: Reply("An HTML page rendering /openapi.json.", content_type="text/html")},
)
async def docs() -> Response:
    return Response(DOCS_PAGE, content_type="text/html; charset=utf-8")
