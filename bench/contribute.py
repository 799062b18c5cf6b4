"""Side-by-side benchmark of two checkouts: `python -m bench.contribute` (also `make bench`).

    python -m bench.contribute [--base REF_OR_DIR] [--head REF_OR_DIR] [--workers N] ...

Compares the web tier of two checkouts (by default `main`, checked out into a temporary git
worktree, against this working tree) in one run, on one machine, at the same time. Each side
gets its own private redis-server on a free loopback port (no persistence; the Redis on 6379
is never touched), the definitions of bench/definitions.yaml loaded with its own `load`
command, and N of its own `serve` processes. One load generator (bench/loadgen.py, its own
process) then cuts the measured time into short rounds; every round runs each endpoint on
each side in turn (the side that goes first alternates), so load from other processes on a
shared machine weighs on both sides alike:

  GET /health                    public, no token: the framework's floor
  GET /currencies/{brand}        an authenticated trivial route: token check, a cached
                                 configuration read, a small JSON body
  POST /jackpots/contribute      sync, random players and currencies, a unique
                                 idempotency key per request

It reports, per side and endpoint, web-process CPU per request (utime+stime of the `serve`
processes from /proc, divided by the requests answered: the figure a busy machine distorts
least), requests/s and latency percentiles; then the ratios head/base and contribute/floor.
Requests/s and latencies depend on what else runs on the machine; CPU per request much less.

Then, per side: Redis commands per contribution (INFO commandstats, and a short MONITOR
audit that tells the commands the web processes send apart from those the script runs), the
money check (contributions + seed funding = pots + reserves + house + wins, exactly; the
contributions total = successful contributions x the fixed amount), and the store's own
limit: the busiest EVALSHA seen under MONITOR, replayed by `redis-benchmark` (pipelined,
idempotency keys made unique) against that side's Redis.

`--base-workers N` / `--head-workers N` give one side another number of web processes:
`--base . --head . --head-workers 2` measures how one checkout scales from one process to two
(compare requests/s: CPU per request stays flat when it scales).

`--profile S` adds S seconds of contributions per side under `py-spy record` and prints
where the web process's samples fall, by package. `--head-env K=V` / `--base-env K=V` set
environment variables on one side only, so two settings of one checkout compare the same
way (`--base . --head . --head-env ...`). It is not a test (pytest collects tests/ only).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import redis
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEFINITIONS = Path(__file__).resolve().parent / "definitions.yaml"
INSTANCE_ID = "bench-drop"
USERNAME = "bench-service"
PASSWORD_ENV = "BENCH_SERVICE_PASSWORD"
KIND_LABELS = {
    "health": "GET /health",
    "floor": "GET /currencies/{brand}",
    "contribute": "POST /jackpots/contribute",
}
IDEMPOTENCY_KEY = re.compile(r"idem-[0-9a-f]+-[0-9]+")


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


class Processes:
    """Every process the benchmark starts; `stop` ends them (SIGTERM, then SIGKILL)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(
        self, name: str, command: list[str], env: dict[str, str], cwd: Path = ROOT
    ) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("wb")
        process = subprocess.Popen(
            command,
            env=env,
            cwd=cwd,
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
        with contextlib.suppress(OSError):
            if check():  # first: a process may exit right after doing what was awaited
                return
        if process.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not ready after {timeout:g} s")
        time.sleep(0.05)


def redis_ping(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(64).startswith(b"+PONG")


def gateway_command() -> list[str]:
    """The CLI of the checkout the interpreter runs (PYTHONPATH or the working directory)."""
    return [sys.executable, "-m", "app.cli"]


def start_redis(processes: Processes, name: str, port: int) -> subprocess.Popen[bytes]:
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(processes.workdir), "--daemonize", "no"]
    process = processes.start(name, command, dict(os.environ))
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


# -- checkouts and sides --------------------------------------------------------------------
@dataclass
class SideSetup:
    """One checkout under test, started: its Redis, its web processes, a token."""

    name: str  # "base" or "head"
    spec: str  # what the user asked for: a git ref or a directory
    path: Path
    env: dict[str, str]
    workers: int
    commit: str = ""
    redis_port: int = 0
    web_ports: list[int] = field(default_factory=list)
    redis_pid: int = 0
    web_pids: list[int] = field(default_factory=list)
    token: str = ""
    brands: list[str] = field(default_factory=list)


def git(*args: str, cwd: Path = ROOT) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def describe(path: Path) -> str:
    with contextlib.suppress(RuntimeError):
        commit = git("rev-parse", "--short", "HEAD", cwd=path)
        dirty = git("status", "--porcelain", "--untracked-files=no", cwd=path)
        return commit + (" + uncommitted changes" if dirty else "")
    return "not a git checkout"


@contextlib.contextmanager
def checkout(spec: str, workdir: Path, name: str) -> Any:
    """A directory as it is, or a git ref checked out into a temporary worktree."""
    as_dir = Path(spec)
    if as_dir.is_dir() and (as_dir / "app").is_dir():
        yield as_dir.resolve()
        return
    target = workdir / f"checkout-{name}"
    git("worktree", "add", "--detach", "--quiet", str(target), spec)
    try:
        yield target
    finally:
        with contextlib.suppress(RuntimeError):
            git("worktree", "remove", "--force", str(target))


def side_env(side: SideSetup, password: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("REDIS_CLUSTER", None)
    env.update(
        {
            "REDIS_URL": f"redis://127.0.0.1:{side.redis_port}/0",
            "QUEUE_REDIS_URL": f"redis://127.0.0.1:{side.redis_port}/0",
            "JWT_SECRET": secrets.token_hex(32),
            "DRAW_KEY": secrets.token_hex(32),
            PASSWORD_ENV: password,
            "HOST": "127.0.0.1",
            "PYTHONUNBUFFERED": "1",
            # This interpreter (and its packages) runs the side's own code.
            "PYTHONPATH": str(side.path),
        }
    )
    env.update(side.env)
    return env


def start_side(side: SideSetup, processes: Processes) -> None:
    side.commit = describe(side.path)
    side.redis_port, *side.web_ports = free_ports(1 + side.workers)
    password = secrets.token_urlsafe(18)
    env = side_env(side, password)
    side.redis_pid = start_redis(processes, f"{side.name}-redis", side.redis_port).pid
    definitions = side.path / "bench" / "definitions.yaml"
    definitions = definitions if definitions.exists() else DEFINITIONS
    gateway = gateway_command()
    loaded = subprocess.run(
        [*gateway, "load", str(definitions)],
        env=env,
        cwd=side.path,
        capture_output=True,
        text=True,
        check=False,
    )
    if loaded.returncode != 0:
        raise RuntimeError(f"{side.name}: load failed: {loaded.stderr.strip()}")
    servers = []
    for index, port in enumerate(side.web_ports):
        servers.append(
            processes.start(
                f"{side.name}-web-{index}",
                [*gateway, "serve"],
                {**env, "PORT": str(port)},
                cwd=side.path,
            )
        )
    for index, (port, server) in enumerate(zip(side.web_ports, servers, strict=True)):
        try:
            wait_until(lambda port=port: healthy(port), f"{side.name}-web-{index}", server, 30)
        except RuntimeError:
            print(processes.log_tail(f"{side.name}-web-{index}"), file=sys.stderr)
            raise
    side.web_pids = [server.pid for server in servers]
    side.token = http(
        side.web_ports[0],
        "POST",
        "/authenticate/service",
        {"username": USERNAME, "password": password},
    )["token"]
    side.brands = yaml.safe_load(definitions.read_text())["operators"][0]["brands"]
    print(
        f"{side.name} ({side.spec}, {side.commit}): redis on {side.redis_port}, "
        f"web on {side.web_ports}",
        file=sys.stderr,
    )


def loadgen_spec(side: SideSetup) -> dict[str, Any]:
    return {
        "name": side.name,
        "ports": side.web_ports,
        "pids": {"web": side.web_pids, "redis": [side.redis_pid]},
        "redis_port": side.redis_port,
        "token": side.token,
        "instance_id": INSTANCE_ID,
        "brands": side.brands,
    }


def run_loadgen(params: dict[str, Any]) -> dict[str, Any]:
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
    result: dict[str, Any] = json.loads(output)
    return result


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


# -- the store's own limit ------------------------------------------------------------------
def store_limit(side: SideSetup, command: list[str], requests: int) -> dict[str, Any] | None:
    """Replay one EVALSHA as a web process sent it with redis-benchmark (pipelined, 4 clients),
    each call with its own idempotency key; Redis CPU per call from /proc."""
    if shutil.which("redis-benchmark") is None:
        return None
    template = [IDEMPOTENCY_KEY.sub("idem-__rand_int__", arg) for arg in command]
    probe = [arg.replace("__rand_int__", secrets.token_hex(6)) for arg in template]
    client = redis.Redis(port=side.redis_port)
    try:
        client.execute_command(*probe)  # the replayed command must succeed, not be refused
    except redis.RedisError as error:
        client.close()
        return {"error": f"the sampled command fails: {error}"}
    client.close()
    cpu_before = cpu_seconds(side.redis_pid)
    started = time.perf_counter()
    done = subprocess.run(
        [
            *("redis-benchmark", "-p", str(side.redis_port), "-n", str(requests), "-c", "4"),
            *("-P", "32", "-r", "1000000000", "-q", *template),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(side.redis_pid) - cpu_before
    rate = re.findall(r"([0-9.]+) requests per second", done.stdout)
    if done.returncode != 0 or not rate:
        return {"error": (done.stderr or done.stdout).strip()[-300:]}
    return {
        "rate": float(rate[-1]),
        "redis_cpu_us": cpu / requests * 1e6,
        "elapsed": elapsed,
        "script_keys": int(command[2]),
    }


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- profiles -------------------------------------------------------------------------------
PROFILE_BUCKETS = (  # py-spy names a frame "function (package/module.py:line)"
    # Time in a loop's C code (uvloop) shows as the Python frame that started the loop.
    ("event loop", "Runner.run (asyncio/runners.py"),
    ("event loop", "run (app/edge/server.py"),
    ("hypercorn", "(hypercorn/"),
    ("h11", "(h11/"),
    ("quart", "(quart/"),
    ("werkzeug", "(werkzeug/"),
    ("redis-py", "(redis/"),
    ("marshmallow", "(marshmallow/"),
    ("joserfc", "(joserfc/"),
    ("app", "(app/"),
    ("asyncio", "(asyncio/"),
    ("uvloop", "uvloop"),
    ("json", "(json/"),
)


def profile_side(
    side: SideSetup, seconds: float, connections: int, kind: str = "contribute"
) -> tuple[str, int]:
    """Requests of one kind (contributions by default) under `py-spy record` (non-blocking
    sampling of the first web process): the share of samples by package of the innermost
    Python frame, and how many contributions the profile run made."""
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(pyspy).exists():
        return "py-spy is not installed (pip install py-spy)", 0
    raw = Path(tempfile.gettempdir()) / f"jg-bench-{side.name}-{os.getpid()}.pyspy.txt"
    recorder = subprocess.Popen(
        [
            *(pyspy, "record", "--pid", str(side.web_pids[0]), "--rate", "500", "--nonblocking"),
            *("--format", "raw", "--output", str(raw), "--duration", str(int(seconds) + 2)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(1.0)  # py-spy attaches
    params = {
        "sides": [loadgen_spec(side)],
        "connections": connections,
        "warmup": 0,
        "rounds": 1,
        "seconds": seconds,
        "kinds": [kind],
        "audit": 0,
    }
    contributed = int(run_loadgen(params)["sides"][side.name]["contributed"])
    _, errors = recorder.communicate()
    if not raw.exists():
        return f"py-spy failed: {errors.decode(errors='replace').strip()[:300]}", contributed
    by_bucket: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        leaf = stack.rsplit(";", 1)[-1]
        bucket = next((name for name, part in PROFILE_BUCKETS if part in leaf), "other")
        by_bucket[bucket] += int(count)
        total += int(count)
    if not total:
        return "py-spy took no samples", contributed
    shares = ", ".join(f"{name} {n / total:.0%}" for name, n in by_bucket.most_common())
    return f"{kind}, {total} samples; innermost frame by package: {shares}; stacks: {raw}", (
        contributed
    )


# -- report ---------------------------------------------------------------------------------
def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def cpu_us(phase: dict[str, Any]) -> float:
    """Microseconds of web-process CPU per answered request."""
    answered = max(phase["ok"] + phase["errors"], 1)
    return float(phase["cpu_seconds"]["web"] / answered * 1e6)


def cores(phase: dict[str, Any]) -> str:
    """CPU seconds per second of each role: how much of the machine each one got."""
    used = phase["cpu_seconds"]
    elapsed = max(phase["elapsed"], 1e-9)
    roles = ("web", "redis", "load generator")
    return " / ".join(f"{used.get(role, 0.0) / elapsed:.2f}" for role in roles)


def round_cpu_us(phase: dict[str, Any]) -> list[float]:
    return [r["web_cpu"] / r["ok"] * 1e6 for r in phase["rounds"] if r["ok"]]


def report(
    args: argparse.Namespace, sides: list[SideSetup], results: dict[str, Any], machine_line: str
) -> None:
    data = results["sides"]
    print()
    print(
        f"### {args.connections} connections, "
        f"{args.rounds} rounds of {args.seconds:g} s per endpoint and side"
    )
    print()
    for side in sides:
        print(
            f"- {side.name}: `{side.spec}` ({side.commit}), {side.workers} web process(es)"
            + env_note(side)
        )
    print()
    print(
        "| side | endpoint | web CPU µs/request (rounds min-max) | requests/s "
        "| p50 ms | p90 ms | p99 ms | errors | cores busy: web / redis / load generator |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for side in sides:
        for kind, phase in data[side.name]["phases"].items():
            per_round = round_cpu_us(phase)
            spread = f" ({min(per_round):.0f}-{max(per_round):.0f})" if per_round else ""
            print(
                f"| {side.name} | {KIND_LABELS[kind]} | {cpu_us(phase):.0f}{spread} "
                f"| {phase['rate']:.0f} | {fmt(phase['p50'])} | {fmt(phase['p90'])} "
                f"| {fmt(phase['p99'])} | {phase['errors']} | {cores(phase)} |"
            )
    print()
    if len(sides) == 2:
        base, head = (data[s.name]["phases"] for s in sides)
        for kind in base:
            cpu_ratio = cpu_us(head[kind]) / max(cpu_us(base[kind]), 1e-9)
            rate_ratio = head[kind]["rate"] / max(base[kind]["rate"], 1e-9)
            per_round = [
                h / b
                for h, b in zip(round_cpu_us(head[kind]), round_cpu_us(base[kind]), strict=False)
            ]
            rates = [
                (h["ok"] / h["elapsed"]) / (b["ok"] / b["elapsed"])
                for h, b in zip(head[kind]["rounds"], base[kind]["rounds"], strict=False)
                if b["ok"]
            ]
            median = f", per-round median {statistics.median(per_round):.2f}" if per_round else ""
            rate_median = f" (per-round median {statistics.median(rates):.2f})" if rates else ""
            print(
                f"- {KIND_LABELS[kind]}: head/base web CPU per request **{cpu_ratio:.2f}**"
                f"{median}; requests/s **{rate_ratio:.2f}**{rate_median}"
            )
    for side in sides:
        phases = data[side.name]["phases"]
        if "floor" in phases and "contribute" in phases:
            ratio = cpu_us(phases["contribute"]) / max(cpu_us(phases["floor"]), 1e-9)
            print(
                f"- {side.name}: contribute / authenticated trivial route, web CPU per request: "
                f"**{ratio:.2f}**"
            )
    for side in sides:
        report_side(side, data[side.name])
    print(f"- machine: {machine_line}")
    load = results["load_average"]
    print(
        f"- load average (1 min) before / after: {load[0]:.2f} / {load[1]:.2f} (the machine's "
        "other work: compare the ratios and CPU per request, not absolute requests/s)"
    )


def env_note(side: SideSetup) -> str:
    return "" if not side.env else " with " + " ".join(f"{k}={v}" for k, v in side.env.items())


def report_side(side: SideSetup, result: dict[str, Any]) -> None:
    contribute = result["phases"].get("contribute")
    if contribute is None:
        return
    successes = contribute["ok"]
    commands: dict[str, int] = result["commands"]
    total = sum(commands.values())
    line = (
        f"- {side.name}: Redis commands per contribution (commandstats, scripts' inner calls "
        f"included): {total / max(successes, 1):.2f}; evalsha "
        f"{commands.get('evalsha', 0) / max(successes, 1):.3f}"
    )
    audit = result.get("audit")
    if audit and audit["contributions"]:
        n = audit["contributions"]
        sent = sum(audit["by_client"].values())
        sent_by = ", ".join(f"{k} {v}" for k, v in sorted(audit["by_client"].items()))
        line += (
            f"; sent by the web processes (MONITOR, {n} contributions): **{sent / n:.3f}** "
            f"({sent_by})"
        )
    print(line)
    if result.get("reconnects"):
        print(f"  - reconnects after `Connection: close` (not errors): {result['reconnects']}")
    for kind, phase in result["phases"].items():
        if phase["errors"]:
            print(
                f"  - {kind} errors by status: {phase['statuses']}; e.g. {phase['error_samples']}"
            )
    limit = result.get("store_limit")
    if limit and "rate" in limit:
        web_rate = 1e6 / max(cpu_us(contribute), 1e-9)
        print(
            f"  - store limit: redis-benchmark replays the web's EVALSHA ({limit['script_keys']} "
            f"KEYS) at **{limit['rate']:.0f}/s** ({limit['redis_cpu_us']:.0f} µs Redis CPU per "
            f"call); a fully busy web process does {web_rate:.0f}/s, so one Redis core feeds "
            f"about {1e6 / limit['redis_cpu_us'] / web_rate:.1f} of them"
        )
    elif limit:
        print(f"  - store limit: {limit['error']}")
    if result.get("money"):
        print(f"  - money: {result['money']}")
    if result.get("profile"):
        print(f"  - profile: {result['profile']}")


def check_money(side: SideSetup, contributed: int) -> tuple[bool, str]:
    view = http(side.web_ports[0], "GET", f"/admin/instances/{INSTANCE_ID}", token=side.token)
    totals = {name: Decimal(value) for name, value in view["totals"].items()}
    pots = sum((Decimal(p["current_value"]) for p in view["pots"]), Decimal(0))
    reserves = sum((Decimal(p["reserve"]) for p in view["pots"]), Decimal(0))
    boosts = totals.get("boosts", Decimal(0))  # operator money (seed boosts), if counted
    money_in = totals["contributions"] + totals["seed_funding"] + boosts
    money_out = pots + reserves + totals["house"] + totals["wins"]
    fixed = Decimal(view["definition"]["contribution_type"]["Fixed"])
    balanced = money_in == money_out
    counted = totals["contributions"] == fixed * contributed
    text = (
        f"in {money_in} = out {money_out} " + ("(**balanced**)" if balanced else "(NOT BALANCED)")
    ) + (
        f"; contributions {totals['contributions']} = {contributed} x {fixed}"
        + (" (**yes**)" if counted else " (**NO**)")
    )
    return balanced and counted, text


# -- main -----------------------------------------------------------------------------------
def parse_env(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"{pair}: expected KEY=VALUE")
        env[key] = value
    return env


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.contribute", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add = parser.add_argument
    add("--base", default="main", help="git ref or directory (default main); 'none': head only")
    add("--head", default=str(ROOT), help="git ref or directory (default: this working tree)")
    add("--base-env", action="append", default=[], metavar="K=V", help="environment, base only")
    add("--head-env", action="append", default=[], metavar="K=V", help="environment, head only")
    add("--workers", type=int, default=1, help="web processes per side (default 1)")
    add("--base-workers", type=int, help="web processes of the base side (default --workers)")
    add("--head-workers", type=int, help="web processes of the head side (default --workers)")
    add("--connections", type=int, default=64, help="concurrent connections (default 64)")
    add("--rounds", type=int, default=6, help="measured rounds (default 6)")
    add("--seconds", type=float, default=1.5, help="seconds per endpoint, side and round")
    add("--warmup", type=float, default=1.5, help="warm-up seconds per endpoint and side")
    add("--audit", type=float, default=1.0, help="seconds of the MONITOR audit per side (0: none)")
    add("--store-requests", type=int, default=50_000, help="redis-benchmark calls (0: none)")
    add("--profile", type=float, default=0.0, help="seconds under py-spy per side (0: none)")
    add(
        "--profile-endpoint",
        choices=("health", "floor", "contribute"),
        default="contribute",
        help="the endpoint the profile drives",
    )
    args = parser.parse_args(argv)
    args.base_workers = args.base_workers or args.workers
    args.head_workers = args.head_workers or args.workers
    if min(args.base_workers, args.head_workers, args.connections, args.rounds) < 1:
        parser.error("--workers, --connections and --rounds must be >= 1")
    if args.seconds <= 0 or args.warmup < 0 or args.audit < 0 or args.profile < 0:
        parser.error("--seconds must be > 0; --warmup, --audit and --profile >= 0")
    try:
        args.base_env, args.head_env = parse_env(args.base_env), parse_env(args.head_env)
    except argparse.ArgumentTypeError as error:
        parser.error(str(error))
    return args


def run(args: argparse.Namespace, processes: Processes, workdir: Path) -> int:
    load_before = os.getloadavg()[0]
    with contextlib.ExitStack() as stack:
        sides = []
        wanted = [
            ("base", args.base, args.base_env, args.base_workers),
            ("head", args.head, args.head_env, args.head_workers),
        ]
        for name, spec, env, workers in wanted:
            if spec == "none":
                continue
            path = stack.enter_context(checkout(spec, workdir, name))
            sides.append(SideSetup(name, spec, path, env, workers))
        for side in sides:
            start_side(side, processes)
        results = run_loadgen(
            {
                "sides": [loadgen_spec(side) for side in sides],
                "connections": args.connections,
                "warmup": args.warmup,
                "rounds": args.rounds,
                "seconds": args.seconds,
                "audit": args.audit,
            }
        )
        results["load_average"] = (load_before, os.getloadavg()[0])
        all_ok = True
        for side in sides:
            result = results["sides"][side.name]
            if args.profile:
                result["profile"], profiled = profile_side(
                    side, args.profile, args.connections, args.profile_endpoint
                )
                result["contributed"] += profiled
            try:
                ok, result["money"] = check_money(side, result["contributed"])
            except (KeyError, ValueError, urllib.error.URLError) as error:
                ok, result["money"] = False, f"could not be checked: {error!r}"
            all_ok = all_ok and ok
            errors = sum(phase["errors"] for phase in result["phases"].values())
            if errors:
                print(f"{side.name}-web-0 log:\n{processes.log_tail(f'{side.name}-web-0')}")
            all_ok = all_ok and errors == 0
            sample = (result.get("audit") or {}).get("sample_evalsha")
            if sample and args.store_requests:
                result["store_limit"] = store_limit(side, sample, args.store_requests)
        report(args, sides, results, machine())
        return 0 if all_ok else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)  # also when started with SIGINT ignored
    with tempfile.TemporaryDirectory(prefix="jg-bench-") as workdir:
        processes = Processes(Path(workdir))
        try:
            return run(args, processes, Path(workdir))
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
