"""POST /authenticate/service: username and password in, a service token out."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate
from quart import Blueprint, request

from app.contract import Reply, declare
from app.http import services
from app.refusals import Code
from app.schemas.common import ErrorSchema, StrictSchema

blueprint = Blueprint("auth", __name__)


class AuthenticateSchema(StrictSchema):
    EXAMPLE = {"username": "demo-service", "password": "demo-password-123"}  # `make dev`'s

    username = fields.String(required=True, validate=validate.Length(1, 200))
    password = fields.String(required=True, validate=validate.Length(1, 1024))


class TokenSchema(StrictSchema):
    token = fields.String(required=True, metadata={"description": "A bearer token (JWT)."})


@blueprint.post("/authenticate/service")
@declare(
    "Exchange a service account's username and password for a bearer token.",
    tag="Authentication",
    public=True,
    uses_store=True,
    body=AuthenticateSchema(),
    responses={
        200: Reply("The token, valid for TOKEN_TTL_SECONDS.", schema=TokenSchema),
        429: Reply(
            "Too many failed logins from this address for this username; retry later.",
            schema=ErrorSchema,
            headers={"Retry-After": "Seconds until the next attempt is allowed."},
        ),
    },
    refusals=(Code.INVALID_CREDENTIALS, Code.TOO_MANY_LOGIN_ATTEMPTS),
)
async def authenticate(body: dict[str, Any]) -> dict[str, Any]:
    address = request.remote_addr or "unknown"
    token = await services().auth.login(body["username"], body["password"], address)
    return TokenSchema().dump({"token": token})
