"""POST /authenticate/service: username and password in, a service token out."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate
from quart import Blueprint

from app.http import load_body, public, services
from app.schemas.common import StrictSchema

blueprint = Blueprint("auth", __name__)


class AuthenticateSchema(StrictSchema):
    username = fields.String(required=True, validate=validate.Length(1, 200))
    password = fields.String(required=True, validate=validate.Length(1, 1024))


class TokenSchema(StrictSchema):
    token = fields.String(required=True)


@blueprint.post("/authenticate/service")
@public
async def authenticate() -> dict[str, Any]:
    body = await load_body(AuthenticateSchema())
    token = await services().auth.login(body["username"], body["password"])
    return TokenSchema().dump({"token": token})
