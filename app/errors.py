"""The one API error type and its JSON shape: {"error", "code", "details"}."""

from __future__ import annotations

from typing import Any


class APIError(Exception):
    """An error answered to the client; `code` is stable, `message` is for humans."""

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


def bad_request(message: str, details: dict[str, Any] | None = None) -> APIError:
    return APIError(400, "VALIDATION_ERROR", message, details)


def not_found(code: str, message: str) -> APIError:
    return APIError(404, code, message)


def forbidden(code: str, message: str) -> APIError:
    return APIError(403, code, message)


def conflict(code: str, message: str, details: dict[str, Any] | None = None) -> APIError:
    return APIError(409, code, message, details)
