"""Domain refusals: why the domain said no, as a stable code. Nothing here knows HTTP.

Services raise `Refused(Code.X, message)`; the HTTP edge (`app.errors.STATUS`) maps each code
to its status, in one table. Script refusals from Lua (`app.store.Refusal`) carry the same
code names.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Code(StrEnum):
    # The request names something the configuration does not have.
    UNKNOWN_CURRENCY = "UNKNOWN_CURRENCY"
    INVALID_REFERENCE = "INVALID_REFERENCE"
    WAGER_TOO_LARGE = "WAGER_TOO_LARGE"
    CONTRIBUTION_BELOW_MIN = "CONTRIBUTION_BELOW_MIN"
    CONTRIBUTION_ABOVE_MAX = "CONTRIBUTION_ABOVE_MAX"
    CONTRIBUTION_TOO_LARGE = "CONTRIBUTION_TOO_LARGE"
    CONTRIBUTION_PRECISION = "CONTRIBUTION_PRECISION"
    CALLBACK_NOT_ALLOWED = "CALLBACK_NOT_ALLOWED"
    CALLBACK_HEADER_RESERVED = "CALLBACK_HEADER_RESERVED"
    # Who is asking.
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    TOO_MANY_LOGIN_ATTEMPTS = "TOO_MANY_LOGIN_ATTEMPTS"
    OPERATOR_FORBIDDEN = "OPERATOR_FORBIDDEN"
    # A display token (read-only, for a lobby screen) opens GET /events and nothing else.
    DISPLAY_TOKEN_FORBIDDEN = "DISPLAY_TOKEN_FORBIDDEN"
    # A display token asked to live longer than DISPLAY_TOKEN_MAX_TTL_SECONDS.
    DISPLAY_TTL_TOO_LONG = "DISPLAY_TTL_TOO_LONG"
    # An admin object the caller knows but does not own alone (an instance shared by several
    # operators, a platform account): the platform role manages it.
    PLATFORM_REQUIRED = "PLATFORM_REQUIRED"
    # Eligibility: the player may not play this instance (one status for all of them).
    BRAND_NOT_ALLOWED = "BRAND_NOT_ALLOWED"
    COUNTRY_NOT_ALLOWED = "COUNTRY_NOT_ALLOWED"
    SEGMENT_NOT_ALLOWED = "SEGMENT_NOT_ALLOWED"
    NOT_OPTED_IN = "NOT_OPTED_IN"
    # Unknown to the caller (another operator's instance is unknown too).
    INSTANCE_NOT_FOUND = "INSTANCE_NOT_FOUND"
    BRAND_NOT_FOUND = "BRAND_NOT_FOUND"
    OPERATOR_NOT_FOUND = "OPERATOR_NOT_FOUND"
    SOURCE_NOT_FOUND = "SOURCE_NOT_FOUND"
    NO_ACTIVE_INSTANCE = "NO_ACTIVE_INSTANCE"
    ACCOUNT_NOT_FOUND = "ACCOUNT_NOT_FOUND"
    CONTRIBUTION_NOT_FOUND = "CONTRIBUTION_NOT_FOUND"
    CURRENCIES_NOT_CONFIGURED = "CURRENCIES_NOT_CONFIGURED"
    POT_NOT_FOUND = "POT_NOT_FOUND"
    DELIVERY_NOT_FOUND = "DELIVERY_NOT_FOUND"
    JOB_NOT_FOUND = "JOB_NOT_FOUND"
    WIN_NOT_FOUND = "WIN_NOT_FOUND"
    # The state of things does not allow it.
    INSTANCE_NOT_ACTIVE = "INSTANCE_NOT_ACTIVE"
    INSTANCE_NOT_STARTED = "INSTANCE_NOT_STARTED"
    INSTANCE_ENDED = "INSTANCE_ENDED"
    INSTANCE_TERMINATED = "INSTANCE_TERMINATED"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    INSTANCE_EXISTS = "INSTANCE_EXISTS"
    ACCOUNT_EXISTS = "ACCOUNT_EXISTS"
    IDEMPOTENCY_MISMATCH = "IDEMPOTENCY_MISMATCH"
    POT_NOT_PROGRESSIVE = "POT_NOT_PROGRESSIVE"
    BOOST_ID_REUSED = "BOOST_ID_REUSED"
    # Raffles.
    NOT_A_RAFFLE = "NOT_A_RAFFLE"
    ROUND_NOT_FOUND = "ROUND_NOT_FOUND"
    NO_OPEN_ROUND = "NO_OPEN_ROUND"
    ROUND_NOT_CLOSED = "ROUND_NOT_CLOSED"
    ROUND_ALREADY_DRAWN = "ROUND_ALREADY_DRAWN"
    WIN_NOT_WITHHELD = "WIN_NOT_WITHHELD"
    WIN_ALREADY_DECIDED = "WIN_ALREADY_DECIDED"
    AMOUNT_OVERFLOW = "AMOUNT_OVERFLOW"
    # This deployment cannot do it.
    QUEUE_UNAVAILABLE = "QUEUE_UNAVAILABLE"


ELIGIBILITY = frozenset(
    {Code.BRAND_NOT_ALLOWED, Code.COUNTRY_NOT_ALLOWED, Code.SEGMENT_NOT_ALLOWED, Code.NOT_OPTED_IN}
)


class Refused(Exception):
    """The domain refuses: `code` is stable, `message` is for humans, `details` per field."""

    def __init__(self, code: Code, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.message, "code": self.code.value, "details": self.details}
