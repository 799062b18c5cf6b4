"""Domain refusals: why the domain said no, as a stable code. Nothing here knows HTTP.

`Code` declares each refusal once (code, status, script message); services raise
`Refused(Code.X, message)`, Lua scripts answer the same codes.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Code(StrEnum):
    """Every refusal, declared once: its code (the value), the HTTP status it is answered
    with, and, for a refusal a Lua script answers, the message (`{id}`: the instance id).
    Services raise `Refused(Code.X, message)`; scripts answer `redis.error_reply('X detail')`
    (the store's `ScriptRefusal`); the HTTP edge and the OpenAPI document take the status
    from here; tests/test_script_refusals.py checks that every code a script answers is here.
    A new refusal is one line below."""

    _value_: str
    status: int
    text: str

    def __new__(cls, value: str, status: int, text: str = "") -> Code:
        member = str.__new__(cls, value)
        member._value_ = value
        member.status = status
        member.text = text
        return member

    # The request names something the configuration does not have.
    UNKNOWN_CURRENCY = "UNKNOWN_CURRENCY", 422
    INVALID_REFERENCE = "INVALID_REFERENCE", 422
    WAGER_TOO_LARGE = "WAGER_TOO_LARGE", 422
    CONTRIBUTION_BELOW_MIN = "CONTRIBUTION_BELOW_MIN", 422
    CONTRIBUTION_ABOVE_MAX = "CONTRIBUTION_ABOVE_MAX", 422
    CONTRIBUTION_TOO_LARGE = "CONTRIBUTION_TOO_LARGE", 422
    CONTRIBUTION_PRECISION = "CONTRIBUTION_PRECISION", 422
    CALLBACK_NOT_ALLOWED = "CALLBACK_NOT_ALLOWED", 422
    CALLBACK_HEADER_RESERVED = "CALLBACK_HEADER_RESERVED", 400
    # Who is asking.
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS", 401
    TOO_MANY_LOGIN_ATTEMPTS = "TOO_MANY_LOGIN_ATTEMPTS", 429
    OPERATOR_FORBIDDEN = "OPERATOR_FORBIDDEN", 403
    # A display token (read-only, for a lobby screen) opens GET /events and nothing else.
    DISPLAY_TOKEN_FORBIDDEN = "DISPLAY_TOKEN_FORBIDDEN", 403
    # A display token asked to live longer than DISPLAY_TOKEN_MAX_TTL_SECONDS.
    DISPLAY_TTL_TOO_LONG = "DISPLAY_TTL_TOO_LONG", 422
    # An admin object the caller knows but does not own alone (an instance shared by several
    # operators, a platform account): the platform role manages it.
    PLATFORM_REQUIRED = "PLATFORM_REQUIRED", 403
    # Eligibility: the player may not play this instance (one status for all of them).
    BRAND_NOT_ALLOWED = "BRAND_NOT_ALLOWED", 403
    COUNTRY_NOT_ALLOWED = "COUNTRY_NOT_ALLOWED", 403
    SEGMENT_NOT_ALLOWED = "SEGMENT_NOT_ALLOWED", 403
    NOT_OPTED_IN = "NOT_OPTED_IN", 403, "The player is not opted in to instance {id}."
    # Unknown to the caller (another operator's instance is unknown too).
    INSTANCE_NOT_FOUND = "INSTANCE_NOT_FOUND", 404, "Instance {id} does not exist."
    BRAND_NOT_FOUND = "BRAND_NOT_FOUND", 404
    OPERATOR_NOT_FOUND = "OPERATOR_NOT_FOUND", 404
    SOURCE_NOT_FOUND = "SOURCE_NOT_FOUND", 404
    NO_ACTIVE_INSTANCE = "NO_ACTIVE_INSTANCE", 404
    ACCOUNT_NOT_FOUND = "ACCOUNT_NOT_FOUND", 404
    CONTRIBUTION_NOT_FOUND = "CONTRIBUTION_NOT_FOUND", 404
    CURRENCIES_NOT_CONFIGURED = "CURRENCIES_NOT_CONFIGURED", 404
    POT_NOT_FOUND = "POT_NOT_FOUND", 404, "Instance {id} has no such pot."
    DELIVERY_NOT_FOUND = "DELIVERY_NOT_FOUND", 404
    JOB_NOT_FOUND = "JOB_NOT_FOUND", 404
    WIN_NOT_FOUND = "WIN_NOT_FOUND", 404, "Instance {id} has no such win."
    # The state of things does not allow it.
    INSTANCE_NOT_ACTIVE = "INSTANCE_NOT_ACTIVE", 409, "Instance {id} is not active."
    INSTANCE_NOT_STARTED = "INSTANCE_NOT_STARTED", 409, "Instance {id} has not started yet."
    INSTANCE_ENDED = "INSTANCE_ENDED", 409, "Instance {id} has ended."
    INSTANCE_TERMINATED = "INSTANCE_TERMINATED", 409, "Instance {id} is terminated."
    INVALID_TRANSITION = "INVALID_TRANSITION", 409
    INSTANCE_EXISTS = "INSTANCE_EXISTS", 409
    ACCOUNT_EXISTS = "ACCOUNT_EXISTS", 409
    IDEMPOTENCY_MISMATCH = (
        "IDEMPOTENCY_MISMATCH",
        409,
        "The idempotency key was already used with a different request.",
    )
    POT_NOT_PROGRESSIVE = (
        "POT_NOT_PROGRESSIVE",
        409,
        "A fixed pot's value cannot grow: boost its reserve.",
    )
    BOOST_ID_REUSED = "BOOST_ID_REUSED", 409, "The boost id was already used for another boost."
    # Raffles.
    NOT_A_RAFFLE = "NOT_A_RAFFLE", 404
    ROUND_NOT_FOUND = "ROUND_NOT_FOUND", 404
    NO_OPEN_ROUND = "NO_OPEN_ROUND", 409
    ROUND_NOT_CLOSED = "ROUND_NOT_CLOSED", 409
    ROUND_ALREADY_DRAWN = "ROUND_ALREADY_DRAWN", 409
    WIN_NOT_WITHHELD = (
        "WIN_NOT_WITHHELD",
        409,
        "The win was paid automatically: there is nothing to decide.",
    )
    WIN_ALREADY_DECIDED = "WIN_ALREADY_DECIDED", 409, "The win was already decided."
    AMOUNT_OVERFLOW = (
        "AMOUNT_OVERFLOW",
        409,
        "A pot of instance {id} cannot hold more (2^63 - 1 micro-units).",
    )
    # This deployment cannot do it.
    QUEUE_UNAVAILABLE = "QUEUE_UNAVAILABLE", 503

    # Script answers a caller never sees: a defect of ours (BAD_ARGUMENT) or a condition the
    # service handles itself (a round or seed that moved on, a preference without a price).
    BAD_ARGUMENT = "BAD_ARGUMENT", 500
    PREFERENCE_UNPRICED = "PREFERENCE_UNPRICED", 500
    ROUND_MISMATCH = "ROUND_MISMATCH", 500
    SEED_MISMATCH = "SEED_MISMATCH", 500
    SNAPSHOT_MISMATCH = "SNAPSHOT_MISMATCH", 500
    SNAPSHOT_MISSING = "SNAPSHOT_MISSING", 500
    ROUND_NOT_DRAWN = "ROUND_NOT_DRAWN", 500
    LEDGER_NOT_ARCHIVED = "LEDGER_NOT_ARCHIVED", 500
    LEDGER_NOT_CHECKPOINTED = "LEDGER_NOT_CHECKPOINTED", 500


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
