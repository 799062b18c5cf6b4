"""Production observability through the public interfaces: /metrics (prometheus-client text)
counts contributions, wins, pot values, store errors; every request gets one log line with
its request id, honoured from X-Request-Id or made up, and returned."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

import pytest
from prometheus_client.parser import text_string_to_metric_families
from quart.testing import QuartClient

from app.core.config import Settings
from app.core.logs import configure_logging
from app.services import Services
from tests.conftest import make_settings
from tests.support.definitions import hit_rate, instance, pot
from tests.support.http import create_instance, post, v1_body

FAKE = pytest.mark.parametrize("redis_url", ["fake"], indirect=True)
METRICS_TOKEN = "metrics-token-0123456789"
SCRAPER = {"Authorization": f"Bearer {METRICS_TOKEN}"}
PER_INSTANCE = ("jg_contributions", "jg_wins", "jg_pot_value")


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return make_settings(redis_url, metrics_token=METRICS_TOKEN)


async def samples(
    client: QuartClient, headers: dict[str, str] = SCRAPER
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200
    text = await response.get_data(as_text=True)
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@FAKE
async def test_metrics_count_contributions_wins_and_show_pot_values(
    client: QuartClient, gateway: Services, headers: dict[str, str]
) -> None:
    await create_instance(
        client,
        headers,
        instance("m", pots=[pot("mini", "0.7", hit_rate(1), seed="10"), pot("big", "0.0")]),
    )
    for key in ("a", "b", "a"):  # the second "a" is a replay: not counted again
        response = await post(
            client, "/jackpots/contribute", v1_body("m", idempotency_key=key), headers
        )
        assert response.status_code in (200, 204)
    found = await samples(client)
    assert found[("jg_contributions_total", (("instance", "m"),))] == 2
    assert found[("jg_wins_total", (("instance", "m"), ("withheld", "false")))] == 2
    # each win pays 10.70 and reseeds at 10: the pot shows its seed
    assert found[("jg_pot_value", (("instance", "m"), ("pot", "mini")))] == float(Decimal("10"))
    route = (("method", "POST"), ("route", "/jackpots/contribute"), ("status", "200"))
    assert found[("jg_http_requests_total", route)] == 2
    assert found[("jg_queue_depth", (("queue", "contributions"),))] == 0

    # Without the metrics token: nothing per instance (no operator's ids, no pot values).
    response = await client.get("/metrics")
    text = await response.get_data(as_text=True)
    assert response.status_code == 200
    assert not [line for line in text.splitlines() if line.startswith(PER_INSTANCE)]
    assert 'instance="m"' not in text and "jg_http_requests_total" in text
    # A bearer token that is not the metrics token is told so.
    wrong = await client.get("/metrics", headers={"Authorization": "Bearer " + "x" * 24})
    assert (wrong.status_code, (await wrong.get_json())["code"]) == (401, "INVALID_TOKEN")


@FAKE
async def test_a_request_id_is_honoured_or_made_and_logged_once_per_request(
    client: QuartClient, headers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="jackpot_gateway.access")
    given = await client.get("/health", headers={"X-Request-Id": "trace-42.a"})
    made = await client.get("/health", headers={"X-Request-Id": "bad id\twith spaces"})
    assert given.headers["X-Request-Id"] == "trace-42.a"
    assert len(made.headers["X-Request-Id"]) == 32 and made.headers["X-Request-Id"] != "bad id"
    lines = [r for r in caplog.records if r.name == "jackpot_gateway.access"]
    assert len(lines) == 2
    first = lines[0]
    assert (first.method, first.route, first.status) == ("GET", "/health", 200)  # type: ignore[attr-defined]
    assert first.request_id == "trace-42.a"  # type: ignore[attr-defined]
    assert first.duration_ms >= 0  # type: ignore[attr-defined]
    assert lines[1].request_id == made.headers["X-Request-Id"]  # type: ignore[attr-defined]


def test_production_logs_are_json_lines_and_dev_logs_plain(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("web", json_lines=True)
        logging.getLogger("jackpot_gateway.access").info("GET /x 200", extra={"status": 200})
        line = json.loads(capsys.readouterr().out.strip())
        assert (line["message"], line["status"], line["level"]) == ("GET /x 200", 200, "INFO")
        assert line["process_type"] == "web"
        configure_logging("dev", json_lines=False)
        logging.getLogger("jackpot_gateway").warning("hello")
        assert capsys.readouterr().out.strip().endswith("WARNING jackpot_gateway: hello")
    finally:
        root.handlers, root.level = saved[0], saved[1]


@FAKE
async def test_open_websockets_are_counted(client: QuartClient, gateway: Services) -> None:
    from tests.conftest import DEMO, load_demo
    from tests.support.events import receive

    await load_demo(gateway)
    async with client.websocket(f"/events?token={gateway.tokens.issue(DEMO)}") as ws:
        assert (await receive(ws))["event_type"] == "Authenticated"
        assert (await samples(client))[("jg_open_websockets", ())] == 1
    await asyncio.sleep(0.1)  # the server side notices the close
    assert (await samples(client))[("jg_open_websockets", ())] == 0
