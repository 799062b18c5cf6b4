"""`jackpot-gateway serve` in a subprocess on a free loopback port, for tests that need the real
web server (websocket back-pressure, several processes, signals)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage
from wsproto.utilities import LocalProtocolError

from app.store.embedded import free_port
from tests.conftest import DRAW_KEY, SECRET


class WebServer:
    def __init__(
        self, redis_url: str, port: int | None = None, *, own_group: bool = False, **env: str
    ) -> None:
        """`own_group`: the server leads its own process group (see `terminate`)."""
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        # Kept open while the server runs (closed by `stop`).
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115
            prefix="serve-", suffix=".log", delete=False
        )
        script = shutil.which("jackpot-gateway") or str(
            Path(sys.executable).with_name("jackpot-gateway")
        )
        self.process = subprocess.Popen(
            [script, "serve"],
            env={
                **os.environ,
                "JWT_SECRET": SECRET,
                "DRAW_KEY": DRAW_KEY,
                "REDIS_URL": redis_url,
                "HOST": "127.0.0.1",
                "PORT": str(self.port),
                **env,
            },
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=own_group,
        )
        self._wait_healthy()

    def _wait_healthy(self, within: float = 20.0) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited: {self.output()[-2000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("serve did not become healthy")

    def terminate(self, within: float = 10.0, group: bool = False) -> int:
        """SIGTERM (to its whole process group, as a supervisor may, with `group`: the server
        must then lead its own), then the exit code (killed after `within` seconds: a failed
        shutdown)."""
        if self.process.poll() is None:
            if group:
                os.killpg(self.process.pid, signal.SIGTERM)
            else:
                self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(within)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return -9

    def output(self) -> str:
        """What the server printed (a file: a pipe nobody reads would block it)."""
        return Path(self.log.name).read_text(errors="replace")

    def stop(self) -> None:
        self.terminate()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


class StalledWebsocket:
    """A websocket client that authenticates, then reads nothing until `close_code` is
    called: the server's frames pile up in the kernel buffers (a small receive buffer), as
    behind a client that cannot keep up. Blocking calls: run them in a thread."""

    def __init__(self, port: int, first_frame: str) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.sock.sendall(self.ws.send(Request(host=f"127.0.0.1:{port}", target="/events")))
        while not any(isinstance(e, AcceptConnection) for e in self._events()):
            pass
        self.sock.sendall(self.ws.send(TextMessage(data=first_frame)))
        self.messages = 0

    def _events(self) -> list[Any]:
        data = self.sock.recv(65536)
        self.ws.receive_data(data or None)
        return list(self.ws.events())

    def close_code(self) -> int | None:
        """Read everything the server sent; the code of its close frame (None: no frame)."""
        try:
            while True:
                for event in self._events():
                    if isinstance(event, CloseConnection):
                        return event.code
                    if isinstance(event, TextMessage) and event.message_finished:
                        self.messages += 1
        except (OSError, LocalProtocolError):
            return None
        finally:
            self.sock.close()
