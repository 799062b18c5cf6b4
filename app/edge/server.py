"""Serve the app with Hypercorn; on SIGTERM/SIGINT close websockets first, then stop.

One process (`serve`) or several worker processes on one socket (`serve_workers`): each
worker runs `serve` too, so each closes its websockets with 1001 whether it is sent SIGTERM
itself (a supervisor signalling the whole process group) or only the parent is.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import os
import signal
import tempfile
import time
from collections.abc import Coroutine
from multiprocessing.connection import wait
from multiprocessing.synchronize import Event as ProcessEvent
from typing import Any

from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Config, Sockets
from hypercorn.protocol import ws_stream
from hypercorn.utils import wrap_app
from quart import Quart
from wsproto.extensions import Extension, PerMessageDeflate

from app.core.config import Settings
from app.schemas.stream import MAX_CLIENT_FRAME_BYTES

log = logging.getLogger("jackpot_gateway")
# Young-generation collections every 20,000 container allocations instead of 700: a request
# allocates hundreds, and each collection walks every young object again.
GC_THRESHOLD = (20_000, 10, 10)


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run a server coroutine on uvloop where it is installed (less event-loop CPU per
    request than asyncio's own loop), else on asyncio's."""
    try:
        import uvloop
    except ImportError:  # e.g. Windows, where uvloop does not exist
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


def tune_gc() -> None:
    """After start-up: move what exists (modules, app, schemas) out of the collector's
    sight, so a collection no longer walks it, and collect young objects less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


class _NoCompression(Extension):
    """Stands for Hypercorn's permessage-deflate offer when compression is off: its name
    matches no client offer, so none is negotiated."""

    name = "x-jackpot-gateway-no-compression"

    def offer(self) -> bool:  # a server never offers
        return False


def websocket_compression(enabled: bool) -> None:
    """Hypercorn offers permessage-deflate (with context takeover) to every websocket; a
    socket that negotiates it keeps a zlib compressor of about 256 KB between messages
    (measured with tracemalloc: 262 KB per idle socket). Off unless EVENTS_COMPRESSION."""
    # Hypercorn's ws_stream module looks the class up by this name for every new socket.
    setattr(ws_stream, "PerMessageDeflate", PerMessageDeflate if enabled else _NoCompression)  # noqa: B010


def hypercorn_config(settings: Settings) -> Config:
    websocket_compression(settings.events_compression)
    config = Config()
    config.bind = [f"{settings.host}:{settings.port}"]
    # In-flight requests are answered for up to this long after SIGTERM (the listening
    # socket closes at once); one still running then is cancelled, maybe applied.
    config.graceful_timeout = settings.shutdown_grace_s
    # Bounds a client's websocket frame (the heartbeat is the app's own Ping: Hypercorn's
    # websocket_ping_interval would hold the graceful stop and break SIGTERM -> 1001).
    config.websocket_max_message_size = MAX_CLIENT_FRAME_BYTES
    config.accesslog = None  # the app logs one line per request itself
    config.errorlog = logging.getLogger("hypercorn.error")  # through our handler
    return config


async def serve(
    app: Quart,
    settings: Settings,
    stop: asyncio.Event | None = None,
    *,
    sockets: Sockets | None = None,
    parent_stop: ProcessEvent | None = None,
) -> None:
    """Run until `stop` is set, a termination signal arrives or (a worker process of
    `serve_workers`, on the parent's `sockets`) the parent sets `parent_stop`."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    async def follow_parent(event: ProcessEvent) -> None:
        # A multiprocessing event has nothing to await: look at it ten times a second.
        while not event.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        stop.set()

    async def shutdown_trigger() -> None:
        await stop.wait()
        # Hypercorn does not finish a graceful shutdown while websockets are open: close them.
        from app.edge.web import shutdown_hooks  # the app's module, imported by whoever built it

        for hook in shutdown_hooks(app):
            with contextlib.suppress(Exception):
                await hook()

    watcher = None if parent_stop is None else asyncio.create_task(follow_parent(parent_stop))
    tune_gc()
    config = hypercorn_config(settings)
    try:
        await worker_serve(
            # app.asgi_app: Quart.__call__ only awaits it (one coroutine less per request)
            wrap_app(app.asgi_app, config.wsgi_max_body_size, "asgi"),
            config,
            sockets=sockets,
            shutdown_trigger=shutdown_trigger,
        )
    finally:
        if watcher is not None:
            watcher.cancel()


def _worker(sockets: Sockets, parent_stop: ProcessEvent) -> None:
    """One worker process of `serve_workers` (spawned: it imports the app afresh)."""
    from app.edge.asgi import app, settings

    run(serve(app, settings, sockets=sockets, parent_stop=parent_stop))


# A dead web worker is replaced at once, unless this many died within RESTART_WINDOW_S: then
# the whole process exits non-zero, so that the platform restarts it (or says why not).
MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0


def serve_workers(settings: Settings) -> int:
    """Several web worker processes on one socket, each running `serve`; metrics add up
    across them through prometheus-client's multiprocess directory. SIGTERM or SIGINT to
    this process stops every worker gracefully (exit 0 when all stopped cleanly). A worker
    that dies (killed, crashed) is replaced at once while the others go on serving; more
    than MAX_RESTARTS deaths within RESTART_WINDOW_S stop them all and exit 1."""
    # Set before the workers start: prometheus-client reads it when they import it.
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="jg-metrics-"))
    config = hypercorn_config(settings)
    sockets = config.create_sockets()
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    # Workers start with SIGINT ignored (a Ctrl-C reaches the whole process group; `serve`
    # then handles it in each worker), and stop when `stop` is set.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def spawn(n: int) -> multiprocessing.process.BaseProcess:
        worker = context.Process(target=_worker, args=(sockets, stop), name=f"web-{n}")
        worker.start()
        return worker

    workers = [spawn(n) for n in range(settings.web_workers)]
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    deaths: list[float] = []
    failed = 0
    while not stop.is_set():
        wait([worker.sentinel for worker in workers], timeout=0.2)  # a death, or look again
        for n, worker in enumerate(workers):
            if worker.exitcode is None or stop.is_set():
                continue
            now = time.monotonic()
            deaths = [t for t in deaths if now - t < RESTART_WINDOW_S] + [now]
            if len(deaths) > MAX_RESTARTS:
                log.error(
                    "web worker %s ended (%s): %d deaths in %g s, stopping",
                    worker.name,
                    worker.exitcode,
                    len(deaths),
                    RESTART_WINDOW_S,
                )
                failed = 1
                stop.set()
                break
            log.error("web worker %s ended (%s); replacing it", worker.name, worker.exitcode)
            workers[n] = spawn(n)
    # This process's copy of the listening socket: closed now, the workers close theirs as
    # they stop accepting (then the kernel refuses new connections).
    for sock in (*sockets.secure_sockets, *sockets.insecure_sockets):
        sock.close()
    deadline = time.monotonic() + config.graceful_timeout + 4
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
        if worker.exitcode is None:  # stuck: a failed shutdown
            worker.kill()
            worker.join()
    # A supervisor (honcho, Heroku) may send SIGTERM to the whole process group: a worker ended
    # by that signal (before it could handle it) stopped as asked, a clean stop, not a failure.
    codes = [0 if w.exitcode == -signal.SIGTERM else int(w.exitcode or 0) for w in workers]
    return failed or next((code for code in codes if code != 0), 0)
