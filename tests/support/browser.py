"""Page tests: the app served for real on a loopback port, and headless Chromium to look at it.

Chromium is Debian's package (`.ci/run` installs it), driven by Playwright for Python with
`executable_path` (Playwright's own browser downloads are not used). Page tests are `async`
and serve the app with `LiveServer` (its own thread and loop), so the browser's requests go
over a real socket. Screenshots go to
`test-output/` (override with TEST_OUTPUT_DIR), kept with the test run's output.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from quart import Quart

from app.core.config import Settings
from app.edge.server import serve
from app.store.embedded import free_port

OUTPUT_DIR = Path(os.environ.get("TEST_OUTPUT_DIR", Path(__file__).parents[2] / "test-output"))


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class LiveServer:
    """`app` served by Hypercorn on a free loopback port, in a thread with its own event loop
    (the page's own requests, websockets included, go over a real socket)."""

    def __init__(self, app: Quart, settings: Settings) -> None:
        self.app = app
        self.port = free_port()
        self.settings = replace(settings, host="127.0.0.1", port=self.port)
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await serve(self.app, self.settings, self._stop)

        asyncio.run(main())

    def __enter__(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                if not self._thread.is_alive():
                    break
                time.sleep(0.05)
        raise RuntimeError(f"the app did not start listening on port {self.port}")

    def call(self, coroutine: Any, timeout: float = 30) -> Any:
        """Run a coroutine on the server's loop (to seed data through its services)."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=15)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """A headless Chromium (Playwright's async API, on the test's event loop)."""
    path = chromium_path()
    if path is None:
        pytest.skip("Chromium is not installed (Debian package `chromium`; .ci/run installs it)")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=path, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            await chromium.close()


def screenshot_path(name: str) -> Path:
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    return OUTPUT_DIR / name
