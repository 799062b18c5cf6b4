"""The benchmarks still run: each one, at a tiny size, ends with exit 0 and prints its table.

The benchmarks are not tests (they measure, they do not assert speeds), but they import the
application's store and services, so a change there can silently break them. This runs each
one for a few seconds; the numbers it prints are not looked at.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.slow,
    pytest.mark.real_redis,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
]


def run_bench(module: str, *args: str, timeout: float = 110) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{module} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done.stdout


def test_contribute_benchmark_runs_and_balances_the_money() -> None:
    out = run_bench(
        "bench.contribute",
        *("--base", "none", "--head", ".", "--rounds", "1", "--seconds", "0.5"),
        *("--warmup", "0.2", "--audit", "0.3", "--store-requests", "200", "--connections", "8"),
    )
    assert "| head | POST /jackpots/contribute |" in out
    assert "(**balanced**)" in out


def test_events_benchmark_delivers_every_win() -> None:
    out = run_bench(
        "bench.events",
        *("--clients", "3", "--rate", "4", "--duration", "1.5", "--idle", "1", "--tick", "0.5"),
        *("--instances", "3", "--web-processes", "1", "2"),
    )
    for webs in (1, 2):
        row = next(line for line in out.splitlines() if line.startswith(f"| {webs} | 3 |"))
        wins, delivered = row.split("|")[3].strip(), row.split("|")[4].strip()
        assert int(wins) > 0
        assert delivered == f"{3 * int(wins)}/{3 * int(wins)}"
        sizes = next(line for line in out.splitlines() if line.startswith(f"| {webs} | 3/3 |"))
        cells = [cell.strip() for cell in sizes.split("|")]
        assert "(3 snapshots)" in cells[3], sizes  # every client had its whole snapshot
        assert 0 < int(cells[5]) <= 1024 and 0 < int(cells[6]) <= 64, sizes


def test_raffle_benchmark_draws_and_awards() -> None:
    out = run_bench("bench.raffle", "--sizes", "200", "--per-player", "4")
    assert any(line.startswith("| 2,200 | 50 |") for line in out.splitlines()), out


def test_raffle_benchmark_with_a_ballast_and_a_base_script() -> None:
    """--ballast builds another round first; --base runs a second copy of the scripts (here
    this checkout's lua/ again), so the round gets twice the awards."""
    out = run_bench(
        "bench.raffle", *("--sizes", "200", "--per-player", "4", "--ballast", "30", "--base", ".")
    )
    lines = out.splitlines()
    assert "ballast: a round of 30 players (120 tickets)" in out
    assert any(line.startswith("| 4,200 | 50 |") for line in lines), out
    head = next(i for i, line in enumerate(lines) if line.startswith("| players | award, head"))
    assert lines[head + 2].startswith("| 50 | "), out


def test_ledger_benchmark_archives_and_verifies() -> None:
    out = run_bench("bench.ledger", "--entries", "3000", "--quiet", "0.5", "--rate", "50")
    assert "| ledger verify | problems=[] |" in out, out
    assert "| after the checkpoint |" in out and "balanced=True" in out


@pytest.mark.timeout(300)
def test_faults_benchmark_loses_nothing_and_answers_truthfully() -> None:
    out = run_bench(
        "bench.faults",
        *("--only", "OOM,1 of 2,READONLY", "--concurrency", "4", "--fault-seconds", "1"),
        timeout=280,
    )
    rows = [line for line in out.splitlines() if line.startswith("| ") and "fault |" not in line]
    assert len(rows) == 3, out
    for row in rows:
        lost, wrong = row.split("|")[5].strip(), row.split("|")[6].strip()
        assert (lost, wrong) == ("0", "0"), row


def test_sizing_benchmark_prints_bytes_per_contribution() -> None:
    out = run_bench("bench.sizing", "--count", "1000", "--sample", "50", "--v2", "5")
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if line.count("|") > 3}
    assert "right after" in rows and "after the idempotency window (records deleted)" in rows
    assert any(
        name.startswith("after archiving (the archive job: 1 day(s) exported") for name in rows
    )
    # the lean idempotency record, measured on real Redis
    none = next(line for line in out.splitlines() if line.startswith("| none |"))
    assert int(none.split("|")[2].replace(",", "")) <= 300
    assert "| target, then links at once (now) | 10 | 2.00 |" in out
