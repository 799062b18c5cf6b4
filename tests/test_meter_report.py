"""The meter report (JSON and CSV, API and CLI), its figures computed here independently from
the documented rules: split, reserve share, win of the whole pot, reseed from the reserve."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from quart.testing import QuartClient

from app.core.clock import DAY_MS
from app.core.security import Principal
from app.services import Services
from app.services.admin import instances as admin_instances
from tests.conftest import CLI, auth
from tests.support.definitions import NEVER, hit_rate, instance, pot
from tests.support.http import contribution, create_instance, expect, post

RIVAL_ADMIN = Principal("rival-admin", "rival", ("admin",))
FAKE_ONLY = pytest.mark.parametrize("redis_url", ["fake"], indirect=True)
M = 1_000_000
STAKE = 1 * M
POTS = [
    pot("always", "0.5", hit_rate(1), reserve_share="0.2", seed="2"),  # every stake wins it
    pot("never", "0.2", NEVER, reserve_share="0.1", seed="10"),
]
CONTRIBUTIONS = 7
BOOST = 3 * M  # to the reserve of `never`


def expected_figures() -> dict[str, Any]:
    """Each stake of 1.00: `always` gets 0.5 (a fifth to its reserve), then is won whole and
    restarts at its seed 2, from its reserve as far as it goes (the rest is a deficit);
    `never` gets 0.2 (a tenth to its reserve); the house keeps 0.3."""
    always = {"value": 2 * M, "reserve": 0, "wins": [], "deficits": 0}
    never = {"value": 10 * M, "reserve": BOOST}
    for _ in range(CONTRIBUTIONS):
        part = STAKE // 2
        always["reserve"] += part // 5
        won = always["value"] + part - part // 5
        from_reserve = min(always["reserve"], 2 * M)
        always["wins"].append(won)
        always["deficits"] += 2 * M - from_reserve
        always["value"], always["reserve"] = 2 * M, always["reserve"] - from_reserve
        part = STAKE // 5
        never["reserve"] += part // 10
        never["value"] += part - part // 10
    return {"always": always, "never": never}


def units(micros: int) -> Decimal:
    return Decimal(micros) / M


async def meters(
    client: QuartClient, headers: dict[str, str], status: int = 200, **query: Any
) -> Any:
    response = await client.get(
        "/admin/instances/metered/meters", headers=headers, query_string=query
    )
    return await expect(response, status)


@pytest.fixture
async def metered(
    client: QuartClient, headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """The instance after its contributions; the awards (win id, timestamp) oldest first and
    a period of whole UTC days that starts after the creation (the instance is created on the
    day before the first contribution's, so the initial seeds fall outside it)."""
    today = int(time.time() * 1000) // DAY_MS * DAY_MS
    with monkeypatch.context() as patch:
        patch.setattr(admin_instances, "now_ms", lambda: today - 1)  # yesterday's last ms, UTC
        await create_instance(client, headers, instance("metered", pots=POTS, fixed="1.00"))
    awards = []
    for _ in range(CONTRIBUTIONS):
        response = await post(
            client, "/jackpots/contribute", contribution("metered", "p1"), headers
        )
        body = await expect(response, 200)
        assert body["win_pot_id"] == "always"
        awards.append((response.headers["X-Contribution-Id"], body["timestamp"]))
    boost = {"pot_id": "never", "amount": "3"}
    await expect(await post(client, "/admin/instances/metered/boosts", boost, headers), 201)
    end = (int(time.time() * 1000) // DAY_MS + 1) * DAY_MS  # two days if midnight just passed
    return {"awards": awards, "period": (today, end)}


async def test_the_figures_per_pot_and_for_the_instance(
    client: QuartClient, headers: dict[str, str], metered: dict[str, Any]
) -> None:
    start, end = metered["period"]
    report = await meters(client, headers, **{"from": start, "to": end})
    model = expected_figures()
    always, never = model["always"], model["never"]
    assert report["period"] == {"from": start, "to": end}
    assert (report["instance_id"], report["currency"], report["status"]) == (
        "metered",
        "EUR",
        "Active",
    )
    by_pot = {p["pot_id"]: p for p in report["pots"]}
    assert {
        k: by_pot["always"][k]
        for k in ("current_value", "reserve", "seed", "cap", "share", "reserve_share")
    } == {
        "current_value": units(always["value"]),
        "reserve": units(always["reserve"]),
        "seed": 2,
        "cap": None,
        "share": Decimal("0.5"),
        "reserve_share": Decimal("0.2"),
    }
    assert by_pot["always"]["increment_rate"] == Decimal("0.4")
    assert by_pot["never"]["increment_rate"] == Decimal("0.18")
    assert by_pot["always"]["cumulative"] == {
        "contributions": units(CONTRIBUTIONS * STAKE // 2),
        "wins": units(sum(always["wins"])),
        "hits": CONTRIBUTIONS,
        "seed_funding": units(2 * M + always["deficits"]),  # the initial seed, then deficits
        "boosts": 0,
    }
    # The period starts after the creation: the same figures without the initial seed.
    assert by_pot["always"]["period"] == {
        **by_pot["always"]["cumulative"],
        "seed_funding": units(always["deficits"]),
    }
    assert by_pot["never"]["current_value"] == units(never["value"])
    assert by_pot["never"]["reserve"] == units(never["reserve"])
    assert by_pot["never"]["cumulative"] == {
        "contributions": units(CONTRIBUTIONS * STAKE // 5),
        "wins": 0,
        "hits": 0,
        "seed_funding": 10,
        "boosts": 3,
    }
    # The last 5 awards, newest first.
    newest = list(reversed(metered["awards"]))[:5]
    assert by_pot["always"]["last_awards"] == [
        {
            "win_id": win_id,
            "amount": units(won),
            "timestamp": ts,
            "withheld": False,
            "decision": None,
        }
        for (win_id, ts), won in zip(newest, list(reversed(always["wins"])), strict=False)
    ]
    assert by_pot["never"]["last_awards"] == []
    assert report["cumulative"] == {
        "contributions": units(CONTRIBUTIONS * STAKE),
        "house": units(CONTRIBUTIONS * (STAKE - STAKE // 2 - STAKE // 5)),
        "wins": units(sum(always["wins"])),
        "hits": CONTRIBUTIONS,
        "seed_funding": units(12 * M + always["deficits"]),
        "boosts": 3,
        "returned": 0,
    }
    assert report["period_totals"] == {
        **report["cumulative"],
        "seed_funding": units(always["deficits"]),
    }


async def test_a_quiet_period_is_reported_with_zeros(
    client: QuartClient, headers: dict[str, str], metered: dict[str, Any]
) -> None:
    report = await meters(client, headers, date="2001-01-01")
    start = int(datetime(2001, 1, 1, tzinfo=UTC).timestamp() * 1000)
    assert report["period"] == {"from": start, "to": start + 86_400_000}
    zero = {"contributions": 0, "wins": 0, "hits": 0, "seed_funding": 0, "boosts": 0}
    assert report["period_totals"] == {**zero, "house": 0, "returned": 0}
    assert all(p["period"] == zero for p in report["pots"])
    assert report["cumulative"]["hits"] == CONTRIBUTIONS


async def test_the_default_period_is_today_utc(
    client: QuartClient, headers: dict[str, str], metered: dict[str, Any]
) -> None:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    report = await meters(client, headers)
    start = int(today.timestamp() * 1000)
    assert report["period"] == {"from": start, "to": start + 86_400_000}


async def test_csv_has_a_row_per_pot_and_one_for_the_instance(
    client: QuartClient, headers: dict[str, str], metered: dict[str, Any]
) -> None:
    start, end = metered["period"]
    query = {"from": start, "to": end}
    report = await meters(client, headers, **query)
    response = await client.get(
        "/admin/instances/metered/meters", headers=headers, query_string={**query, "format": "csv"}
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(await response.get_data(as_text=True))))
    assert [row["pot_id"] for row in rows] == ["always", "never", "*"]
    for row, pot_report in zip(rows, report["pots"], strict=False):
        assert Decimal(row["current_value"]) == pot_report["current_value"]
        assert Decimal(row["cumulative_wins"]) == pot_report["cumulative"]["wins"]
        assert Decimal(row["period_seed_funding"]) == pot_report["period"]["seed_funding"]
        assert int(row["hit_count"]) == pot_report["cumulative"]["hits"]
        assert (row["period_from"], row["period_to"]) == (str(start), str(end))
    awards = rows[0]["last_awards"].split(";")
    assert len(awards) == 5
    assert (
        awards[0] == f"{metered['awards'][-1][1]}:{report['pots'][0]['last_awards'][0]['amount']}"
    )
    total = rows[2]
    assert Decimal(total["cumulative_contributions"]) == report["cumulative"]["contributions"]
    assert Decimal(total["cumulative_boosts"]) == 3
    assert total["seed"] == total["last_awards"] == ""


async def test_cli_writes_the_csv(
    client: QuartClient, headers: dict[str, str], metered: dict[str, Any], cli: CLI, tmp_path: Path
) -> None:
    start, end = metered["period"]
    target = tmp_path / "meters.csv"
    args = ["--instance", "metered", "--from", str(start), "--to", str(end)]
    assert await cli("meter-report", *args, "--output", str(target)) == (0, f"wrote {target}\n", "")
    response = await client.get(
        "/admin/instances/metered/meters",
        headers=headers,
        query_string={"from": start, "to": end, "format": "csv"},
    )
    assert target.read_bytes() == await response.get_data()
    code, out, _ = await cli("meter-report", "--instance", "metered", "--date", "2001-01-01")
    assert code == 0 and out.startswith("instance_id,pot_id,")
    code, _, err = await cli("meter-report", "--instance", "metered", "--from", "5")
    assert code == 1 and "--from and --to" in err
    code, _, err = await cli("meter-report", "--instance", "metered", "--from", "0", "--to", "5")
    assert code == 1 and "midnight UTC" in err


async def test_scoping(
    client: QuartClient, gateway: Services, headers: dict[str, str], metered: dict[str, Any]
) -> None:
    await meters(client, auth(gateway, RIVAL_ADMIN), 404)


@FAKE_ONLY
@pytest.mark.parametrize(
    "query",
    [
        {"from": 10},
        {"to": 10},
        {"from": 10, "to": 10},
        {"from": 0, "to": 10},  # whole UTC days only: the meters count per day
        {"from": DAY_MS, "to": DAY_MS + 1},
        {"from": -1, "to": 10},
        {"from": 1, "to": 10, "date": "2020-01-01"},
        {"date": "2020-13-01"},
        {"format": "xml"},
        {"other": 1},
    ],
)
async def test_bad_queries(
    client: QuartClient, headers: dict[str, str], query: dict[str, Any]
) -> None:
    await create_instance(client, headers, instance("metered"))
    response = await client.get(
        "/admin/instances/metered/meters", headers=headers, query_string=query
    )
    await expect(response, 400, "VALIDATION_ERROR")
