"""One record per answered request: the request metrics by route and the access log line.
Shared by the Quart app (an after-request hook) and the direct routes (app.edge.direct)."""

from __future__ import annotations

import logging

from app.services import Services

access_log = logging.getLogger("jackpot_gateway.access")


def record_request(
    gateway: Services | None,
    method: str,
    rule: str,
    path: str,
    status: int,
    seconds: float,
    request_id: str,
    client: str | None = None,
) -> None:
    """`client`: the caller's address (the forwarded one behind a trusted proxy)."""
    if gateway is not None:
        gateway.metrics.http_requests.labels(method, rule, str(status)).inc()
        gateway.metrics.http_seconds.labels(rule).observe(seconds)
    access_log.info(
        "%s %s %s %.1fms",
        method,
        path,
        status,
        seconds * 1000,
        extra={
            "method": method,
            "route": rule,
            "path": path,
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
            "request_id": request_id,
            "client": client,
        },
    )
