"""Contribution throughput benchmark: `python -m bench.contribute` (also `make bench`).

Starts everything it needs and stops it again: a private redis-server on a free loopback port
(no persistence; the Redis on 6379 is never touched), the definitions of bench/definitions.yaml
loaded with `jackpot-gateway load`, N `jackpot-gateway serve` processes on N ports, and the
load generator (bench/loadgen.py) in its own process, whose connections are spread over the
N ports. Then, after a warm-up, it measures in one run (health and contributions alternate
in short rounds, so other load on the machine weighs on both alike):

  GET /health                    throughput and latency (the floor of the web stack)
  POST /jackpots/contribute      throughput and latency (sync, random players and
                                 currencies, a unique idempotency key per request)
  Redis commands per contribution  INFO commandstats deltas around the measured phase, and
                                 a short audit under MONITOR that tells the commands the web
                                 processes send apart from those the Lua script runs
                                 (commandstats counts both)

and finally checks the instance's money: contributions + seed funding must equal pots +
reserves + house + wins exactly, and the contributions total must equal the number of
successful contributions times the fixed amount.

It is not a test (pytest collects tests/ only). Options: --workers, --connections,
--duration, --warmup, --rounds, --audit; the default run takes about 40 seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEFINITIONS = Path(__file__).resolve().parent / "definitions.yaml"
INSTANCE_ID = "bench-drop"
USERNAME = "bench-service"
PASSWORD_ENV = "BENCH_SERVICE_PASSWORD"


# -- processes ----------------------------------------------------------------------------
def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _die_with_parent() -> None:
    """In the child: get SIGTERM if the benchmark dies without cleaning up (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def gateway_command() -> list[str]:
    script = Path(sys.executable).parent / "jackpot-gateway"
    return [str(script)] if script.exists() else [sys.executable, "-m", "app.cli"]


class Processes:
    """Every process the benchmark starts; `stop` ends them (SIGTERM, then SIGKILL)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("wb")
        process = subprocess.Popen(
            command,
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the benchmark, which stops them in order
            preexec_fn=_die_with_parent,
        )
        log.close()
        self.started.append((name, process))
        return process

    def log_tail(self, name: str, lines: int = 20) -> str:
        path = self.workdir / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        for _, process in reversed(self.started):
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + 10
        for name, process in reversed(self.started):
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"{name} did not stop on SIGTERM: killing it", file=sys.stderr)
                process.kill()
                process.wait()
        self.started.clear()


def wait_until(check: Any, what: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {process.returncode}")
        with contextlib.suppress(OSError):
            if check():
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not ready after {timeout:g} s")
        time.sleep(0.05)


def redis_ping(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(64).startswith(b"+PONG")


def start_redis(processes: Processes, port: int) -> subprocess.Popen[bytes]:
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(processes.workdir), "--daemonize", "no"]
    process = processes.start("redis", command, dict(os.environ))
    wait_until(lambda: redis_ping(port), "redis-server", process, 10)
    return process


# -- HTTP from the orchestrator (a handful of requests: urllib is enough) -------------------
def http(port: int, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=data, headers=headers, method=method
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read(), parse_float=Decimal)


def healthy(port: int) -> bool:
    try:
        http(port, "GET", "/health")
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False
    return True


# -- the machine ----------------------------------------------------------------------------
def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    redis_version = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True, check=False
    ).stdout.split()
    version = next((w[2:] for w in redis_version if w.startswith("v=")), "?")
    return (
        f"nproc {len(os.sched_getaffinity(0))}, {cpu}, Python {platform.python_version()}, "
        f"redis-server {version}, {platform.system()} {platform.release()}"
    )


# -- report -------------------------------------------------------------------------------
def fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def cpu_per_request(phase: dict[str, Any]) -> float:
    """Seconds of web-process CPU per answered request."""
    return float(phase["cpu"]["web"] * phase["elapsed"] / max(phase["ok"] + phase["errors"], 1))


def report(args: argparse.Namespace, results: dict[str, Any], machine_line: str) -> None:
    health, contribute = results["phases"]["health"], results["phases"]["contribute"]
    print()
    print(
        f"### Jackpot Gateway: {args.workers} web process(es), {args.connections} connections, "
        f"{args.duration:g} s measured per endpoint ({args.rounds} alternating rounds) "
        f"after {args.warmup:g} s warm-up"
    )
    print()
    print(
        "| endpoint | requests/s | p50 ms | p90 ms | p99 ms | max ms | errors "
        "| web CPU ms/request |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, phase in (("GET /health", health), ("POST /jackpots/contribute", contribute)):
        cpu_ms = cpu_per_request(phase) * 1000
        print(
            f"| {label} | {phase['rate']:.0f} | {fmt_ms(phase['p50'])} | {fmt_ms(phase['p90'])} "
            f"| {fmt_ms(phase['p99'])} | {fmt_ms(phase['max'])} | {phase['errors']} "
            f"| {cpu_ms:.3f} |"
        )
    print()
    ratio = contribute["rate"] / health["rate"] if health["rate"] else 0.0
    verdict = "meets" if ratio >= 0.85 else "misses"
    print(f"- contribute/health throughput: **{ratio:.2f}** ({verdict} the target >= 0.85)")
    cpu_ratio = cpu_per_request(health) / max(cpu_per_request(contribute), 1e-9)
    print(
        f"- the same ratio from web CPU time per request (less sensitive to other load on the "
        f"machine): {cpu_ratio:.2f}"
    )

    successes = contribute["ok"]
    commands: dict[str, int] = results["commands"]
    total = sum(commands.values())
    per = {name: calls / successes for name, calls in commands.items()} if successes else {}
    breakdown = ", ".join(
        f"{name} {value:.3f}" for name, value in sorted(per.items(), key=lambda kv: -kv[1])
    )
    print(
        f"- Redis commands per contribution (INFO commandstats, measured phase, "
        f"{successes} contributions): **{total / max(successes, 1):.3f}** in all; "
        f"evalsha **{per.get('evalsha', 0.0):.3f}**"
    )
    print(f"  - breakdown (commandstats also counts the commands run inside scripts): {breakdown}")
    audit = results.get("audit")
    if audit and audit["contributions"]:
        n = audit["contributions"]
        sent = sum(audit["by_client"].values())
        inside = sum(audit["in_scripts"].values())
        print(
            f"- Commands sent by the web processes per contribution (MONITOR audit, {n} "
            f"contributions; MONITOR slows Redis): **{sent / n:.4f}** ("
            + ", ".join(f"{k} {v}" for k, v in sorted(audit["by_client"].items()))
            + f"); run inside the script: {inside / n:.2f} per contribution"
        )
        if successes:
            # The commands the audit saw web processes send, minus what scripts run of the same
            # command at the audit's per-contribution rate (GET: exactly 2 per contribution).
            estimate = sum(
                max(0.0, commands.get(name, 0) - audit["in_scripts"].get(name, 0) / n * successes)
                for name in audit["by_client"]
            )
            print(
                f"- Commands sent by the web processes per contribution in the measured phase "
                f"(commandstats minus in-script calls at the audit's rate): "
                f"**{estimate / successes:.4f}** (target 1.00)"
            )
    wins = contribute["wins"]
    print(f"- wins during the measured phase: {wins} ({wins / max(successes, 1):.2%})")
    cpu = contribute["cpu"]
    print(
        "- CPU during the measured contribute phase (share of one core): "
        + ", ".join(f"{role} {share:.0%}" for role, share in cpu.items())
        + "; health phase: "
        + ", ".join(f"{role} {share:.0%}" for role, share in health["cpu"].items())
    )
    for label, phase in (("health", health), ("contribute", contribute)):
        if phase["errors"]:
            print(f"- {label} errors by status: {phase['statuses']}; e.g. {phase['error_samples']}")
    print(f"- machine: {machine_line}")
    load = results["load_average"]
    print(
        f"- load average (1 min) before / after the run: {load[0]:.2f} / {load[1]:.2f}"
        " (above 0 means other processes shared the CPUs)"
    )


def check_money(port: int, token: str, contributed: int) -> bool:
    view = http(port, "GET", f"/admin/instances/{INSTANCE_ID}", token=token)
    totals = {name: Decimal(value) for name, value in view["totals"].items()}
    pots = sum((Decimal(p["current_value"]) for p in view["pots"]), Decimal(0))
    reserves = sum((Decimal(p["reserve"]) for p in view["pots"]), Decimal(0))
    money_in = totals["contributions"] + totals["seed_funding"] + totals["boosts"]
    money_out = pots + reserves + totals["house"] + totals["wins"]
    fixed = Decimal(view["definition"]["contribution_type"]["Fixed"])
    expected = fixed * contributed
    balanced = money_in == money_out
    counted = totals["contributions"] == expected
    print()
    print(
        f"- money: contributions {totals['contributions']} + seed funding "
        f"{totals['seed_funding']} + boosts {totals['boosts']} = {money_in}; "
        f"pots {pots} + reserves {reserves} + house "
        f"{totals['house']} + wins {totals['wins']} = {money_out}: "
        + ("**balanced**" if balanced else "**NOT BALANCED**")
    )
    print(
        f"- contributions total {totals['contributions']} = {contributed} successful "
        f"contributions x {fixed}: " + ("**yes**" if counted else f"**NO** (expected {expected})")
    )
    return balanced and counted


# -- main -----------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.contribute", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--workers", type=int, default=1, help="web processes (default 1)")
    parser.add_argument("--connections", type=int, default=64, help="concurrent connections")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per phase")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per phase")
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="the measured time alternates health and contribute in this many rounds",
    )
    parser.add_argument(
        "--audit", type=float, default=2.0, help="seconds of the MONITOR audit (0: none)"
    )
    args = parser.parse_args(argv)
    if min(args.workers, args.connections, args.rounds) < 1:
        parser.error("--workers, --connections and --rounds must be >= 1")
    if args.duration <= 0 or args.warmup < 0 or args.audit < 0:
        parser.error("--duration must be > 0, --warmup and --audit >= 0")
    return args


def run(args: argparse.Namespace, processes: Processes) -> int:
    load_before = os.getloadavg()[0]
    redis_port, *web_ports = free_ports(1 + args.workers)
    password = secrets.token_urlsafe(18)
    env = dict(os.environ)
    env.update(
        {
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "QUEUE_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "JWT_SECRET": secrets.token_hex(32),
            PASSWORD_ENV: password,
            "HOST": "127.0.0.1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.pop("REDIS_CLUSTER", None)
    print(f"redis-server on 127.0.0.1:{redis_port} (private, no persistence)", file=sys.stderr)
    redis_process = start_redis(processes, redis_port)

    loaded = subprocess.run(
        [*gateway_command(), "load", str(DEFINITIONS)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if loaded.returncode != 0:
        raise RuntimeError(f"jackpot-gateway load failed: {loaded.stderr.strip()}")
    print(
        f"loaded {DEFINITIONS.name}: {loaded.stdout.strip()}".replace("\n", "; "), file=sys.stderr
    )

    servers = []
    for index, port in enumerate(web_ports):
        server_env = {**env, "PORT": str(port)}
        servers.append(processes.start(f"web-{index}", [*gateway_command(), "serve"], server_env))
    for index, (port, server) in enumerate(zip(web_ports, servers, strict=True)):
        try:
            wait_until(lambda port=port: healthy(port), f"web-{index}", server, 30)
        except RuntimeError:
            print(processes.log_tail(f"web-{index}"), file=sys.stderr)
            raise
    print(f"{args.workers} web process(es) on ports {web_ports}", file=sys.stderr)

    token = http(
        web_ports[0],
        "POST",
        "/authenticate/service",
        {"username": USERNAME, "password": password},
    )["token"]
    brands = yaml.safe_load(DEFINITIONS.read_text())["operators"][0]["brands"]
    params = {
        "ports": web_ports,
        "connections": args.connections,
        "duration": args.duration,
        "warmup": args.warmup,
        "rounds": args.rounds,
        "audit": args.audit,
        "token": token,
        "instance_id": INSTANCE_ID,
        "brands": brands,
        "redis_port": redis_port,
        "pids": {"web": [s.pid for s in servers], "redis": [redis_process.pid]},
    }
    loadgen = subprocess.Popen(
        [sys.executable, "-m", "bench.loadgen"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,  # Ctrl-C goes to the benchmark only, which ends it
        preexec_fn=_die_with_parent,
    )
    try:
        output, _ = loadgen.communicate(json.dumps(params).encode())
    finally:
        if loadgen.poll() is None:
            loadgen.terminate()
            loadgen.wait()
    if loadgen.returncode != 0:
        raise RuntimeError(f"the load generator failed with exit code {loadgen.returncode}")
    results = json.loads(output)
    results["load_average"] = (load_before, os.getloadavg()[0])
    for index, server in enumerate(servers):
        if server.poll() is not None:
            print(processes.log_tail(f"web-{index}"), file=sys.stderr)
            raise RuntimeError(f"web-{index} exited during the run ({server.returncode})")

    report(args, results, machine())
    money_ok = check_money(web_ports[0], token, results["contributed"])
    return 0 if money_ok else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)  # also when started with SIGINT ignored
    with tempfile.TemporaryDirectory(prefix="jg-bench-") as workdir:
        processes = Processes(Path(workdir))
        try:
            return run(args, processes)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        except (RuntimeError, OSError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        finally:
            processes.stop()


if __name__ == "__main__":
    sys.exit(main())
