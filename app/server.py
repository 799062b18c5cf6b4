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
from collections.abc import Awaitable, Callable, Coroutine
from multiprocessing.connection import wait
from multiprocessing.synchronize import Event as ProcessEvent
from typing import Any

from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Config, Sockets
from hypercorn.utils import wrap_app
from quart import Quart

from app.config import Settings

ShutdownHook = Callable[[], Awaitable[None]]
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


def shutdown_hooks(app: Quart) -> list[ShutdownHook]:
    """Callables run before the server stops (the event stream closes its sockets with 1001)."""
    hooks: list[ShutdownHook] = app.extensions.setdefault("shutdown_hooks", [])
    return hooks


def hypercorn_config(settings: Settings) -> Config:
    config = Config()
    config.bind = [f"{settings.host}:{settings.port}"]
    config.graceful_timeout = 5
    config.accesslog = None  # the app logs one line per request itself
    config.errorlog = logging.getLogger("hypercorn.error")  # through our handler
    config.websocket_ping_interval = settings.events_ping_s or None
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
    from app.asgi import app, settings

    run(serve(app, settings, sockets=sockets, parent_stop=parent_stop))


def serve_workers(settings: Settings) -> int:
    """Several web worker processes on one socket, each running `serve`; metrics add up
    across them through prometheus-client's multiprocess directory. SIGTERM or SIGINT to
    this process stops every worker gracefully; when one worker ends, the others are
    stopped too. The exit code is the first failing worker's (0 when all stopped cleanly)."""
    # Set before the workers start: prometheus-client reads it when they import it.
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="jg-metrics-"))
    config = hypercorn_config(settings)
    sockets = config.create_sockets()
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    # Workers start with SIGINT ignored (a Ctrl-C reaches the whole process group; `serve`
    # then handles it in each worker), and stop when `stop` is set.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    workers = [
        context.Process(target=_worker, args=(sockets, stop), name=f"web-{n}")
        for n in range(settings.web_workers)
    ]
    for worker in workers:
        worker.start()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    wait([worker.sentinel for worker in workers])  # until one ends (stopped, or failed)
    stop.set()
    for worker in workers:
        worker.join(config.graceful_timeout + 10)
        if worker.exitcode is None:  # stuck: a failed shutdown
            worker.kill()
            worker.join()
    for sock in (*sockets.secure_sockets, *sockets.insecure_sockets):
        sock.close()
    # A supervisor (honcho, Heroku) may send SIGTERM to the whole process group: a worker ended
    # by that signal (before it could handle it) stopped as asked, a clean stop, not a failure.
    codes = [0 if w.exitcode == -signal.SIGTERM else int(w.exitcode or 0) for w in workers]
    return next((code for code in codes if code != 0), 0)
