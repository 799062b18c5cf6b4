"""The Quart application factory: create_app()."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from quart import Quart, Response, g, has_request_context, request, websocket
from quart.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException

from app.core import jsonio
from app.core.config import Settings
from app.core.logs import REQUEST_ID_HEADER, accept_request_id, request_id
from app.core.security import TokenError
from app.edge.access import record_request
from app.edge.contract import check_scopes
from app.edge.direct import DirectRoutes, RequestLimits
from app.edge.errors import APIError
from app.edge.http import error_for, http_error_for
from app.edge.proxy import TrustedProxies
from app.services import Services

ShutdownHook = Callable[[], Awaitable[None]]


def shutdown_hooks(app: Quart) -> list[ShutdownHook]:
    """Callables the server runs before it stops (the event stream closes its sockets with
    1001); app.edge.server calls them."""
    hooks: list[ShutdownHook] = app.extensions.setdefault("shutdown_hooks", [])
    return hooks


class JSONProvider(DefaultJSONProvider):
    """Responses keep decimals exact (see app.core.jsonio)."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return jsonio.dumps(obj)


def _json_error(error: APIError) -> Response:
    return Response(
        jsonio.dumps(error.to_dict()),
        status=error.status,
        headers=error.headers(),
        content_type="application/json",
    )


def create_app(settings: Settings | None = None, services: Services | None = None) -> Quart:
    settings = settings or Settings.from_env()
    app = Quart("jackpot_gateway", static_folder=None)
    app.json = JSONProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["BODY_TIMEOUT"] = settings.body_timeout_s
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    app.extensions["settings"] = settings

    @app.before_serving
    async def open_services() -> None:
        app.extensions["gateway"] = services or Services.create(settings)

    async def close_event_streams() -> None:
        await app.extensions["gateway"].events.close_all()

    shutdown_hooks(app).append(close_event_streams)

    @app.after_serving
    async def close_services() -> None:
        gateway: Services | None = app.extensions.pop("gateway", None)
        if gateway is not None and services is None:
            await gateway.close()
        elif gateway is not None:
            await gateway.events.stop()

    @app.before_request
    async def authenticate() -> None:
        g.started = time.perf_counter()
        g.request_id = accept_request_id(request.headers.get(REQUEST_ID_HEADER))
        request_id.set(g.request_id)
        view = app.view_functions.get(request.endpoint or "")
        if view is None or getattr(view, "is_public", False):
            return
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise APIError(
                401, "MISSING_TOKEN", "An Authorization: Bearer <token> header is required."
            )
        try:
            g.principal = await app.extensions["gateway"].auth.principal(token.strip())
        except TokenError as error:
            raise APIError(401, error.code, error.message) from None

    @app.after_request
    async def count_and_log(response: Response) -> Response:
        """Request counts and latency by route; one log line per request; the request id."""
        started = g.get("started")
        rid = g.get("request_id") or accept_request_id(None)
        response.headers[REQUEST_ID_HEADER] = rid
        record_request(
            app.extensions.get("gateway"),
            request.method,
            request.url_rule.rule if request.url_rule else "unmatched",
            request.path,
            response.status_code,
            time.perf_counter() - started if started is not None else 0.0,
            rid,
            request.remote_addr,
        )
        return response

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> Response:
        response = _json_error(http_error_for(error, request.method, settings.max_body_bytes))
        valid_methods = getattr(error, "valid_methods", None)
        if error.code == 405 and valid_methods:  # RFC 9110: a 405 must list the allowed methods
            response.headers["Allow"] = ", ".join(sorted(valid_methods))
        return response

    @app.errorhandler(Exception)
    async def failure(error: Exception) -> Response:
        """Every error but routing's (above): refusals, validation, the store, defects."""
        gateway: Services | None = app.extensions.get("gateway")
        if has_request_context():
            method, path = request.method, request.path
        else:  # a websocket handler's error (the handler closes the socket itself)
            method, path = "GET", websocket.path
        return _json_error(error_for(error, method, path, gateway))

    from app.edge.routes import admin, auth, catalog, docs, events, health, jackpots, raffles

    for module in (auth, health, admin, catalog, jackpots, raffles, docs, events):
        app.register_blueprint(module.blueprint)
    check_scopes(app, admin.blueprint.url_prefix or "/admin")
    if settings.direct_routes:
        quart_app: Any = app.asgi_app  # ASGI either way; Quart's types are narrower
        app.asgi_app = DirectRoutes(  # type: ignore[method-assign, assignment]
            jackpots.DIRECT_ROUTES, app.extensions, RequestLimits.of(app.config), quart_app
        )
    if settings.trusted_proxies:
        # Outermost: the direct routes and Quart see the same client address.
        inner: Any = app.asgi_app
        app.asgi_app = TrustedProxies(inner, settings.trusted_proxies)  # type: ignore[method-assign, assignment]
    return app
