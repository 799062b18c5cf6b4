"""The contribution routes answered straight from ASGI, beside Quart.

A contribution is the request operators send most: one per qualifying bet. Quart's own work
for a request (its request and app contexts, the before and after hooks, the Response object,
the timeout task around the view) costs more web CPU than the contribution itself: measured
on the bench machine, a fixed JSON answer costs 103 µs per request from Hypercorn through a
bare ASGI callable and 255 µs through a Quart view. So the contribution routes declared in
`app.edge.routes.jackpots.DIRECT_ROUTES` are answered here, by the same code the Quart views
run: the route's declared body schema and role, the token check, the views' answer functions, the
same error bodies and headers (app.edge.errors), metrics and access log line (app.edge.access).

Only a request that gets as far as the store is answered here. Anything else (a missing or
bad token, a token without the route's role, malformed JSON, a validation error, a body over
the limit, an asynchronous contribution with a callback, a failure before the store call) is
handed to Quart with its body replayed, so every such answer still comes from one place: the
Quart app.
`DIRECT_ROUTES=false` hands every request to Quart.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from marshmallow import Schema
from werkzeug.exceptions import RequestTimeout

from app.core import jsonio
from app.core.logs import accept_request_id, request_id
from app.core.security import Principal
from app.edge.access import record_request
from app.edge.contract import declaration_of
from app.edge.http import Answer, error_for, http_error_for, parse_json
from app.services import Services

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Message, Receive, Send], Awaitable[None]]


# Every request setting of Quart (its default configuration) and what the direct path does
# with it, so that the two paths cannot drift apart unseen: tests/test_direct_routes.py fails
# when Quart gains a setting this table does not name.
QUART_SETTINGS = {
    "MAX_CONTENT_LENGTH": "honoured: a longer body is handed to Quart, which answers 413",
    "BODY_TIMEOUT": "honoured: a body not complete in time is answered 408 as Quart answers it",
    "RESPONSE_TIMEOUT": "honoured: writing the answer is given up after it, as Quart does",
    "PROVIDE_AUTOMATIC_OPTIONS": "not applicable: only POST is answered here",
    "TRUSTED_HOSTS": "not applicable: not set; the Host header is not used",
    "SERVER_NAME": "not applicable: not set; routes match on the path alone",
    "APPLICATION_ROOT": "not applicable: the app is mounted at /",
    "PREFERRED_URL_SCHEME": "not applicable: no URLs are built in an answer",
    "PREFER_SECURE_URLS": "not applicable: no URLs are built in an answer",
    "MAX_COOKIE_SIZE": "not applicable: no cookies",
    "MAX_FORM_MEMORY_SIZE": "not applicable: bodies are JSON, never forms",
    "MAX_FORM_PARTS": "not applicable: bodies are JSON, never forms",
    "SECRET_KEY": "not applicable: no sessions",
    "SECRET_KEY_FALLBACKS": "not applicable: no sessions",
    "PERMANENT_SESSION_LIFETIME": "not applicable: no sessions",
    "SESSION_COOKIE_DOMAIN": "not applicable: no sessions",
    "SESSION_COOKIE_HTTPONLY": "not applicable: no sessions",
    "SESSION_COOKIE_NAME": "not applicable: no sessions",
    "SESSION_COOKIE_PARTITIONED": "not applicable: no sessions",
    "SESSION_COOKIE_PATH": "not applicable: no sessions",
    "SESSION_COOKIE_SAMESITE": "not applicable: no sessions",
    "SESSION_COOKIE_SECURE": "not applicable: no sessions",
    "SESSION_REFRESH_EACH_REQUEST": "not applicable: no sessions",
    "SEND_FILE_MAX_AGE_DEFAULT": "not applicable: no files are sent",
    "USE_X_SENDFILE": "not applicable: no files are sent",
    "TEMPLATES_AUTO_RELOAD": "not applicable: no templates",
    "EXPLAIN_TEMPLATE_LOADING": "not applicable: no templates",
    "DEBUG": "same: errors are answered by app.edge.http.error_for on both paths",
    "ENV": "same: errors are answered by app.edge.http.error_for on both paths",
    "TESTING": "same: errors are answered by app.edge.http.error_for on both paths",
    "PROPAGATE_EXCEPTIONS": "same: errors are answered by app.edge.http.error_for on both paths",
    "PRESERVE_CONTEXT_ON_EXCEPTION": "not applicable: no request context is made",
    "TRAP_BAD_REQUEST_ERRORS": "same: a bad request is handed to Quart",
    "TRAP_HTTP_EXCEPTIONS": "same: HTTP errors are answered by app.edge.http.http_error_for",
    "BACKGROUND_TASK_SHUTDOWN_TIMEOUT": "not applicable: no background tasks are started here",
}


@dataclass(frozen=True)
class RequestLimits:
    """The Quart app's own request limits, read from its configuration, so both paths
    apply the same values."""

    max_body_bytes: int
    body_timeout_s: float
    response_timeout_s: float

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> RequestLimits:
        return cls(
            int(config["MAX_CONTENT_LENGTH"]),
            float(config["BODY_TIMEOUT"]),
            float(config["RESPONSE_TIMEOUT"]),
        )


@dataclass(frozen=True)
class DirectRoute:
    body: Schema  # the route's declared body schema
    roles: frozenset[str]  # the route's declared roles: a caller without any goes to Quart
    answer: Callable[[Services, Principal, dict[str, Any]], Awaitable[Answer]]
    queued: Callable[[dict[str, Any]], bool]  # bodies Quart serves (asynchronous mode)

    @classmethod
    def of(
        cls,
        view: Callable[..., Any],
        answer: Callable[[Services, Principal, dict[str, Any]], Awaitable[Answer]],
        queued: Callable[[dict[str, Any]], bool],
    ) -> DirectRoute:
        declaration = declaration_of(view)
        if declaration is None or declaration.body is None:
            raise ValueError(f"{view.__name__}: a direct route needs a declared body")
        return cls(declaration.body, declaration.roles, answer, queued)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """`receive` for Quart: the body messages already read, then the client's own."""
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


def _encoded(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode(), value.encode("latin-1")) for name, value in headers.items()]


class DirectRoutes:
    """ASGI: POSTs to the direct routes, as far as they can be answered here; the rest to
    `fallback` (the Quart app)."""

    def __init__(
        self,
        routes: Mapping[str, DirectRoute],
        extensions: dict[str, Any],
        limits: RequestLimits,
        fallback: ASGIApp,
    ) -> None:
        self.routes = dict(routes)
        self.extensions = extensions  # the app's: the services live under "gateway"
        self.limits = limits
        self.fallback = fallback

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        route = self.routes.get(scope["path"]) if scope["type"] == "http" else None
        if route is None or scope["method"] != "POST":
            return await self.fallback(scope, receive, send)
        started = time.perf_counter()
        messages: list[Message] = []
        size = 0
        try:
            async with asyncio.timeout(self.limits.body_timeout_s):
                while True:
                    message = await receive()
                    messages.append(message)
                    if message["type"] != "http.request":  # the client left: Quart handles it
                        return await self.fallback(scope, _replay(messages, receive), send)
                    size += len(message.get("body", b""))
                    if size > self.limits.max_body_bytes:  # Quart answers 413
                        return await self.fallback(scope, _replay(messages, receive), send)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            return await self._body_too_slow(scope, send, started)
        prepared = await self._prepare(route, scope, messages)
        if prepared is None:
            return await self.fallback(scope, _replay(messages, receive), send)
        gateway, caller, body, rid = prepared
        request_id.set(rid)
        headers = [(b"x-request-id", rid.encode())]
        try:
            answer = await route.answer(gateway, caller, body)
        except Exception as error:  # answered as the Quart app's error handler answers it
            failure = error_for(error, "POST", scope["path"], gateway)
            status, payload = failure.status, jsonio.dumps(failure.to_dict()).encode()
            headers += _encoded({**failure.headers(), "Content-Type": "application/json"})
        else:
            status, payload = answer.status, b""
            headers += _encoded(answer.headers)
            if answer.status != 204:  # a JSON body, written as Quart's JSON provider does
                payload = (jsonio.dumps(answer.body) + "\n").encode()
                headers.append((b"content-type", b"application/json"))
        headers.append((b"content-length", str(len(payload)).encode()))
        # Recorded before the answer is written, as Quart's after-request hook does: a client
        # gone before the write still leaves its line and count.
        record_request(
            gateway,
            "POST",
            scope["path"],
            scope["path"],
            status,
            time.perf_counter() - started,
            rid,
            scope["client"][0] if scope.get("client") else None,
        )
        await self._write(send, status, headers, payload)

    async def _write(
        self, send: Send, status: int, headers: list[tuple[bytes, bytes]], payload: bytes
    ) -> None:
        """The answer, given up after RESPONSE_TIMEOUT as Quart gives up on a client that
        does not read."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.limits.response_timeout_s):
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": payload})

    async def _body_too_slow(self, scope: Message, send: Send, started: float) -> None:
        """408, as the Quart app answers a body not complete within BODY_TIMEOUT."""
        rid_header = next((v for n, v in scope["headers"] if n == b"x-request-id"), None)
        rid = accept_request_id(None if rid_header is None else rid_header.decode("latin-1"))
        request_id.set(rid)
        failure = http_error_for(RequestTimeout(), "POST", self.limits.max_body_bytes)
        payload = jsonio.dumps(failure.to_dict()).encode()
        headers = [(b"x-request-id", rid.encode())]
        headers += _encoded({**failure.headers(), "Content-Type": "application/json"})
        headers.append((b"content-length", str(len(payload)).encode()))
        record_request(
            self.extensions.get("gateway"),
            "POST",
            scope["path"],
            scope["path"],
            failure.status,
            time.perf_counter() - started,
            rid,
            scope["client"][0] if scope.get("client") else None,
        )
        await self._write(send, failure.status, headers, payload)

    async def _prepare(
        self, route: DirectRoute, scope: Message, messages: list[Message]
    ) -> tuple[Services, Principal, dict[str, Any], str] | None:
        """The caller and the loaded body, or None for a request Quart should answer."""
        gateway: Services | None = self.extensions.get("gateway")
        if gateway is None:
            return None
        authorization = rid_header = None
        for name, value in scope["headers"]:
            if name == b"authorization" and authorization is None:
                authorization = value.decode("latin-1")
            elif name == b"x-request-id" and rid_header is None:
                rid_header = value.decode("latin-1")
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        try:
            caller = await gateway.auth.principal(token.strip())
            if route.roles and route.roles.isdisjoint(caller.roles):
                return None  # the Quart app answers 403 <ROLE>_REQUIRED
            raw = b"".join(message.get("body", b"") for message in messages)
            body = route.body.load(parse_json(raw))
        except Exception:  # the Quart app answers it (401, 400, ...) from its handlers
            return None
        if route.queued(body):
            return None
        return gateway, caller, body, accept_request_id(rid_header)
