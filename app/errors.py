"""The HTTP edge's errors: the JSON shape {"error", "code", "details"} and the one table that
gives each domain refusal its status."""

from __future__ import annotations

from typing import Any

from app.refusals import Code, Refused
from app.store.errors import StoreError, StoreUnavailable


class APIError(Exception):
    """An error answered by the HTTP layer itself (validation, token, size, routing);
    domain refusals are `app.refusals.Refused` and get their status from `STATUS`."""

    def __init__(
        self, status: int, code: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.message, "code": self.code, "details": self.details}

    def headers(self) -> dict[str, str]:
        """What the answer carries beside its JSON body."""
        headers = {}
        if self.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        retry_after = self.details.get("retry_after")
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        return headers

    @classmethod
    def from_refusal(cls, refused: Refused) -> APIError:
        return cls(STATUS[refused.code], refused.code.value, refused.message, refused.details)


# Every domain refusal and its HTTP status (a test checks that no code is missing). 400 is
# kept for requests that do not match the published schema; a well-formed request that names
# something not configured, or breaks a limit of the configuration, is a 422.
STATUS: dict[Code, int] = {
    Code.UNKNOWN_CURRENCY: 422,
    Code.INVALID_REFERENCE: 422,
    Code.WAGER_TOO_LARGE: 422,
    Code.CONTRIBUTION_BELOW_MIN: 422,
    Code.CONTRIBUTION_ABOVE_MAX: 422,
    Code.CONTRIBUTION_TOO_LARGE: 422,
    Code.CONTRIBUTION_PRECISION: 422,
    Code.CALLBACK_NOT_ALLOWED: 422,
    Code.CALLBACK_HEADER_RESERVED: 400,  # the published schema's header-name pattern refuses it
    Code.INVALID_CREDENTIALS: 401,
    Code.OPERATOR_FORBIDDEN: 403,
    Code.DISPLAY_TOKEN_FORBIDDEN: 403,
    Code.DISPLAY_TTL_TOO_LONG: 422,
    Code.PLATFORM_REQUIRED: 403,
    Code.BRAND_NOT_ALLOWED: 403,
    Code.COUNTRY_NOT_ALLOWED: 403,
    Code.SEGMENT_NOT_ALLOWED: 403,
    Code.NOT_OPTED_IN: 403,
    Code.INSTANCE_NOT_FOUND: 404,
    Code.BRAND_NOT_FOUND: 404,
    Code.OPERATOR_NOT_FOUND: 404,
    Code.SOURCE_NOT_FOUND: 404,
    Code.NO_ACTIVE_INSTANCE: 404,
    Code.ACCOUNT_NOT_FOUND: 404,
    Code.CONTRIBUTION_NOT_FOUND: 404,
    Code.CURRENCIES_NOT_CONFIGURED: 404,
    Code.POT_NOT_FOUND: 404,
    Code.DELIVERY_NOT_FOUND: 404,
    Code.JOB_NOT_FOUND: 404,
    Code.WIN_NOT_FOUND: 404,
    Code.INSTANCE_NOT_ACTIVE: 409,
    Code.INSTANCE_NOT_STARTED: 409,
    Code.INSTANCE_ENDED: 409,
    Code.INSTANCE_TERMINATED: 409,
    Code.INVALID_TRANSITION: 409,
    Code.INSTANCE_EXISTS: 409,
    Code.ACCOUNT_EXISTS: 409,
    Code.IDEMPOTENCY_MISMATCH: 409,
    Code.POT_NOT_PROGRESSIVE: 409,
    Code.BOOST_ID_REUSED: 409,
    Code.NOT_A_RAFFLE: 404,
    Code.ROUND_NOT_FOUND: 404,
    Code.NO_OPEN_ROUND: 409,
    Code.ROUND_NOT_CLOSED: 409,
    Code.ROUND_ALREADY_DRAWN: 409,
    Code.WIN_NOT_WITHHELD: 409,
    Code.WIN_ALREADY_DECIDED: 409,
    Code.AMOUNT_OVERFLOW: 409,
    Code.TOO_MANY_LOGIN_ATTEMPTS: 429,
    Code.QUEUE_UNAVAILABLE: 503,
}


def store_error(error: StoreError, method: str) -> APIError:
    """503 when nothing ran (or the request only reads): retry freely. 504 when a write was
    sent and no reply came: it may have been applied, so retry with the same idempotency
    key (which answers the first outcome) or read the outcome back. `details.reason` names
    the failure (app.store.errors), `Retry-After` when to try again."""
    details = {"retry_after": error.retry_after, "reason": error.reason}
    if isinstance(error, StoreUnavailable) or method in ("GET", "HEAD"):
        return APIError(
            503,
            "STORE_UNAVAILABLE",
            "The jackpot store is unavailable; nothing was applied. Retry later.",
            details,
        )
    return APIError(
        504,
        "OUTCOME_UNKNOWN",
        "The jackpot store did not confirm the outcome; it may have been applied. Retry "
        "with the same idempotency key, or read the contribution back.",
        details,
    )
