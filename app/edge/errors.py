"""The HTTP edge's errors: the JSON shape {"error", "code", "details"} and the one table that
gives each domain refusal its status."""

from __future__ import annotations

from typing import Any

from app.core.refusals import Refused
from app.services.failures import StoreError, StoreUnavailable


class APIError(Exception):
    """An error answered by the HTTP layer itself (validation, token, size, routing);
    domain refusals are `app.core.refusals.Refused` and get the status their code declares."""

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
        return cls(refused.code.status, refused.code.value, refused.message, refused.details)


# Every domain refusal and its HTTP status (a test checks that no code is missing). 400 is
# kept for requests that do not match the published schema; a well-formed request that names
# something not configured, or breaks a limit of the configuration, is a 422.
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
