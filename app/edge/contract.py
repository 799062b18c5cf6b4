"""Route declarations: what a route takes and what it answers, written next to the route.

In the style of Quart-Schema's `@validate_request` / `@validate_response`, over marshmallow
(Quart-Schema itself speaks pydantic, msgspec or attrs, not marshmallow). One `@declare(...)`
per route says its summary, whether it is public, the role it needs, its path and query
parameters, its request body, each status it answers with its body, and the domain refusals it
may raise. The decorator validates the path, query and body (passing `query=` and `body=` to
the view) and enforces the role; `app.edge.openapi` builds `/openapi.json` from these declarations
alone. Response bodies are shaped by the views and checked against their declarations by the
schemathesis test rather than on every request (the contribution path stays lean).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from marshmallow import Schema, fields
from quart import g

from app.core.refusals import Code
from app.edge.errors import APIError
from app.edge.http import load_args, load_body, load_text

View = TypeVar("View", bound=Callable[..., Awaitable[Any]])


class Scope(StrEnum):
    """Whose objects an admin route reaches (DESIGN.md section 9)."""

    # The jackpot provider's staff only (role `platform`): objects no operator owns alone
    # (operators, currencies) or every operator's at once.
    PLATFORM = "platform"
    # An operator's admin (role `admin`) on its own operator's objects; another operator's
    # are unknown to it (404). The platform role reaches every operator's.
    OPERATOR = "operator"


# The role a scope needs (named in its 403 code), and every role that has it.
SCOPE_ROLES = {
    Scope.PLATFORM: ("platform", frozenset({"platform"})),
    Scope.OPERATOR: ("admin", frozenset({"admin", "platform"})),
}


@dataclass(frozen=True)
class Reply:
    """One documented answer. `schema`: a JSON body; `content_type` without a schema: a body
    of that type (text, HTML); neither: no body at all (204). `text_types`: other media types
    the same status may answer with a text body (an empty text/plain 200, say)."""

    description: str
    schema: Schema | type[Schema] | dict[str, Any] | None = None  # dict: an OpenAPI schema
    content_type: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)  # name -> description
    text_types: tuple[str, ...] = ()

    @property
    def media_type(self) -> str | None:
        if self.schema is not None:
            return self.content_type or "application/json"
        return self.content_type


@dataclass(frozen=True)
class Declaration:
    summary: str
    tag: str
    public: bool
    role: str | None  # named in the 403 code (`ADMIN_REQUIRED`)
    roles: frozenset[str]  # any of them lets the caller in
    scope: Scope | None
    path: Mapping[str, fields.Field[Any]]
    query: Schema | None
    body: Schema | None
    responses: Mapping[int, Reply]
    refusals: tuple[Code, ...]
    rules: Mapping[str, str]
    description: str | None
    uses_store: bool

    def error_statuses(self, method: str = "GET") -> dict[int, list[str]]:
        """Every error status the route may answer, with the codes behind it."""
        found: dict[int, list[str]] = {}

        def add(status: int, code: str) -> None:
            codes = found.setdefault(status, [])
            if code not in codes:
                codes.append(code)

        if self.path or self.query is not None or self.body is not None:
            add(400, "VALIDATION_ERROR")
        if self.body is not None:
            add(400, "MALFORMED_JSON")
            add(413, "BODY_TOO_LARGE")
        if not self.public:
            for code in ("MISSING_TOKEN", "INVALID_TOKEN", "TOKEN_EXPIRED", "TOKEN_REVOKED"):
                add(401, code)
            add(403, "DISPLAY_TOKEN_FORBIDDEN")  # a display token opens GET /events alone
        if self.role is not None:
            add(403, f"{self.role.upper()}_REQUIRED")
        for code in self.refusals:
            add(code.status, code.value)
        if self.uses_store:
            add(503, "STORE_UNAVAILABLE")
            if method not in ("GET", "HEAD"):
                add(504, "OUTCOME_UNKNOWN")
        return found


def _as_reply(value: Reply | Schema | type[Schema] | None, status: int) -> Reply:
    if isinstance(value, Reply):
        return value
    if value is None:
        return Reply("No content.")
    return Reply("OK" if status < 300 else "Refused", schema=value)


def declare(
    summary: str,
    *,
    tag: str,
    responses: Mapping[int, Reply | Schema | type[Schema] | None],
    public: bool = False,
    role: str | None = None,
    scope: Scope | None = None,
    path: Mapping[str, fields.Field[Any]] | None = None,
    query: Schema | None = None,
    body: Schema | None = None,
    refusals: Iterable[Code] = (),
    rules: Mapping[str, str] | None = None,
    description: str | None = None,
    uses_store: bool | None = None,
) -> Callable[[View], View]:
    """Declare a route (see the module docstring). Put it under the blueprint's decorator.

    `rules`: what the body must also satisfy that the OpenAPI document cannot say (sums and
    orders across fields, the names of a map's keys), by the field they are reported under
    (`"pots"`, `"callback.headers"`); documented, and refused with 400 `VALIDATION_ERROR`.
    `uses_store` (default: not public) documents 503 STORE_UNAVAILABLE, and 504
    OUTCOME_UNKNOWN for a method that writes.
    `scope` (admin routes): whose objects the route reaches; it sets the role (`role` then
    stays unset). `role` (other routes): the one role the token needs."""
    if scope is not None:
        if role is not None:
            raise ValueError(f"{summary!r}: a scope sets the role; do not give both")
        role, roles = SCOPE_ROLES[scope]
    else:
        roles = frozenset() if role is None else frozenset({role})
    declaration = Declaration(
        summary=summary,
        tag=tag,
        public=public,
        role=role,
        roles=roles,
        scope=scope,
        path=dict(path or {}),
        query=query,
        body=body,
        responses={status: _as_reply(value, status) for status, value in responses.items()},
        refusals=tuple(refusals),
        rules=dict(rules or {}),
        description=description,
        uses_store=not public if uses_store is None else uses_store,
    )
    path_schema = Schema.from_dict(dict(declaration.path))() if declaration.path else None

    def decorator(view: View) -> View:
        @functools.wraps(view)
        async def wrapper(**kwargs: Any) -> Any:
            if role is not None and roles.isdisjoint(g.principal.roles):
                raise APIError(
                    403,
                    f"{role.upper()}_REQUIRED",
                    f"This operation needs a token with the {role} role.",
                )
            if path_schema is not None:
                kwargs.update(load_text(path_schema, kwargs))
            if query is not None:
                kwargs["query"] = load_args(query)
            if body is not None:
                kwargs["body"] = await load_body(body)
            return await view(**kwargs)

        wrapper.declaration = declaration  # type: ignore[attr-defined]
        wrapper.is_public = public  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorator


def declaration_of(view: Callable[..., Any]) -> Declaration | None:
    return getattr(view, "declaration", None)


def check_scopes(app: Any, prefix: str) -> None:
    """Refuse to build an app with a route under `prefix` that declares no scope."""
    missing = sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(prefix)
        and getattr(declaration_of(app.view_functions[rule.endpoint]), "scope", None) is None
    )
    if missing:
        raise RuntimeError(f"routes without a declared scope: {', '.join(missing)}")
