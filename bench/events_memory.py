"""Where an idle /events socket's memory goes: tracemalloc over N sockets on one in-process
web server (`serve` on a private redis-server), grouped by file and by traceback.

    python -m bench.events_memory [--sockets 100] [--instances 200]

The clients run in the same process (their `websockets` allocations are filtered out; their
asyncio ones are not, so the total is an upper bound of the server's). Slow: tracemalloc
keeps 8 frames per allocation.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import shutil
import sys
import tempfile
import tracemalloc
from pathlib import Path

from bench.events import INSTANCE, quiet_instances


async def profile(sockets: int, instances: int, top: int) -> None:
    from websockets.asyncio.client import connect

    from app.core.config import Settings
    from app.core.security import Principal
    from app.edge.server import serve
    from app.edge.web import create_app
    from app.services import Services
    from app.services.definitions import read_definitions
    from app.store.embedded import EmbeddedRedis, free_port

    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not on PATH")
    redis_server = EmbeddedRedis(binary)
    port = free_port()
    env = {"JWT_SECRET": "j" * 40, "DRAW_KEY": "d" * 40, "REDIS_URL": redis_server.url}
    settings = Settings.from_env(
        {**env, "HOST": "127.0.0.1", "PORT": str(port), "LOG_LEVEL": "WARNING"}
    )
    services = Services.create(settings)
    path = Path(tempfile.mkdtemp()) / "definitions.json"
    operator = {"id": "bench", "name": "Bench", "brands": ["main"], "callback_secret": "x" * 32}
    path.write_text(
        json.dumps(
            {
                "operators": [operator],
                "currencies": {"base_currency": "EUR", "multipliers": {"EUR": 1}},
                "instances": [INSTANCE, *quiet_instances(instances - 1)],
            }
        )
    )
    await services.admin.apply(read_definitions(path), lambda name: None)
    token = services.tokens.issue(Principal("bench", "bench", ("operator",)))
    await services.close()
    stop = asyncio.Event()
    server = asyncio.create_task(serve(create_app(settings), settings, stop))
    url = f"ws://127.0.0.1:{port}/events?token={token}"
    clients = []

    async def one() -> None:
        ws = await connect(url, ping_interval=None, max_queue=None, open_timeout=120)
        for _ in range(instances + 1):  # Authenticated and the snapshot
            await ws.recv()
        clients.append(ws)

    for _ in range(100):  # the first one starts the hub
        try:
            await one()
            break
        except OSError:
            await asyncio.sleep(0.1)
    gc.collect()
    tracemalloc.start(8)
    before = tracemalloc.take_snapshot()
    for start in range(0, sockets, 20):
        await asyncio.gather(*(one() for _ in range(min(20, sockets - start))))
    await asyncio.sleep(1)
    gc.collect()
    after = tracemalloc.take_snapshot()
    skip = [tracemalloc.Filter(False, "*websockets/*"), tracemalloc.Filter(False, "*tracemalloc*")]
    after, before = after.filter_traces(skip), before.filter_traces(skip)
    by_trace = after.compare_to(before, "traceback")
    print(f"traced per socket: {sum(s.size_diff for s in by_trace) / sockets / 1024:.1f} KB")
    for stat in after.compare_to(before, "filename")[:top]:
        name = stat.traceback[0].filename.split("site-packages/")[-1]
        print(f"{stat.size_diff / sockets:8.0f} B/socket  {name}")
    print("-- largest tracebacks")
    for stat in by_trace[:top]:
        print(f"{stat.size_diff / sockets:8.0f} B/socket")
        for line in stat.traceback.format()[-6:]:
            print("    " + line)
    for ws in clients:
        await ws.close()
    stop.set()
    await server
    redis_server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sockets", type=int, default=100)
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    asyncio.run(profile(args.sockets, args.instances, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
