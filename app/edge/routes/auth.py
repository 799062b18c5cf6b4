"""POST /authenticate/service: username and password in, a service token out.
POST /authenticate/display: a service token in, a display token for a lobby screen out."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate
from quart import Blueprint, request

from app.core.config import DISPLAY_TTL_CEILING_S, DISPLAY_TTL_MIN_S
from app.core.refusals import Code
from app.edge.contract import Reply, declare
from app.edge.http import dumped, principal, services
from app.schemas.common import ErrorSchema, Pattern, StrictSchema

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
    return dumped(TokenSchema(), {"token": token})


MAX_DISPLAY_BRANDS = 50
# `operator_id:brand_id` or a bare brand id (app.schemas.common's ID and BRAND_PATH patterns).
BRAND_PATTERN = r"^(?:[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}:)?[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"


class DisplayTokenRequestSchema(StrictSchema):
    EXAMPLE = {"brands": ["demo:brand1"], "ttl_seconds": 900}

    brands = fields.List(
        fields.String(validate=Pattern(BRAND_PATTERN, error="Not a valid brand id.")),
        required=True,
        validate=validate.Length(1, MAX_DISPLAY_BRANDS),
        metadata={
            "description": "The brands whose instances the screen shows: `operator_id:brand_id` "
            "or a bare brand id, all of the caller's operator. The first brand's currency "
            "multipliers come back in `currencies`."
        },
    )
    ttl_seconds = fields.Integer(
        strict=True,
        load_default=None,
        validate=validate.Range(DISPLAY_TTL_MIN_S, DISPLAY_TTL_CEILING_S),
        metadata={
            "description": "Lifetime; default DISPLAY_TOKEN_TTL_SECONDS (900), at most "
            "DISPLAY_TOKEN_MAX_TTL_SECONDS (3600), else 422 DISPLAY_TTL_TOO_LONG."
        },
    )


class DisplayCurrenciesSchema(StrictSchema):
    base_currency = fields.String(required=True)
    multipliers = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        required=True,
        metadata={"description": "Units per base unit, as exact decimal strings."},
    )
    decimals = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        required=True,
        metadata={"description": "Minor-unit digits of each currency."},
    )


class DisplayTokenSchema(StrictSchema):
    token = fields.String(required=True, metadata={"description": "A display token (JWT)."})
    expires_in = fields.Integer(required=True, metadata={"description": "Seconds it lives."})
    expires_at = fields.Integer(required=True, metadata={"description": "Epoch ms."})
    brands = fields.List(fields.String(), required=True)
    currencies = fields.Nested(DisplayCurrenciesSchema, required=True, allow_none=True)


@blueprint.post("/authenticate/display")
@declare(
    "Mint a display token for a lobby screen: read-only, brand-scoped, short-lived.",
    tag="Authentication",
    body=DisplayTokenRequestSchema(),
    description=(
        "Called by the operator's own backend with its service token (which never reaches a "
        "browser). The display token opens the event stream (GET /events) and nothing else "
        "(403 DISPLAY_TOKEN_FORBIDDEN); it shows only instances its brands may play, with "
        "every player id masked, and is closed with 4401 at expiry. A page refreshes it "
        "before expiry through the operator's backend (docs/ticker.md)."
    ),
    responses={200: Reply("The display token and what a page needs.", schema=DisplayTokenSchema)},
    refusals=(Code.OPERATOR_FORBIDDEN, Code.BRAND_NOT_FOUND, Code.DISPLAY_TTL_TOO_LONG),
)
async def display_token(body: dict[str, Any]) -> dict[str, Any]:
    minted = await services().auth.mint_display(principal(), body["brands"], body["ttl_seconds"])
    return dumped(DisplayTokenSchema(), minted)
