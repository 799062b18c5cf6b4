"""Serve the app with Hypercorn; on SIGTERM/SIGINT close websockets first, then stop."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import tempfile
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config
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
    return config


async def serve(app: Quart, settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until `stop` is set or a termination signal arrives."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    async def shutdown_trigger() -> None:
        await stop.wait()
        # Hypercorn does not finish a graceful shutdown while websockets are open: close them.
        for hook in shutdown_hooks(app):
            with contextlib.suppress(Exception):
                await hook()

    tune_gc()
    await hypercorn_serve(app, hypercorn_config(settings), shutdown_trigger=shutdown_trigger)


def serve_workers(settings: Settings) -> int:
    """Several web worker processes on one socket (Hypercorn's own process manager); metrics
    add up across them through prometheus-client's multiprocess directory."""
    from hypercorn.run import run as hypercorn_run

    # Set before the workers start: prometheus-client reads it when they import it.
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="jg-metrics-"))
    config = hypercorn_config(settings)
    config.workers = settings.web_workers
    config.application_path = "app.asgi:app"
    with contextlib.suppress(ImportError):
        import uvloop  # noqa: F401  (Hypercorn's workers then run on it, as `serve` does)

        config.worker_class = "uvloop"
    exitcode = hypercorn_run(config)
    # A supervisor (honcho, Heroku) may send SIGTERM to the whole process group: a worker ended
    # by that signal stopped as asked, which is a clean stop, not a failure.
    return 0 if exitcode == -signal.SIGTERM else exitcode
