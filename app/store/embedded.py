"""The embedded store of dev mode: a private redis-server on a free port, or fakeredis."""

from __future__ import annotations

import contextlib
import ctypes
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import redis

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    # Linux: the kernel kills the private redis-server if the dev process dies abruptly.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedRedis:
    """A redis-server child process that keeps nothing on disk and dies with us."""

    def __init__(self, binary: str, *extra_args: str) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="jackpot-gateway-")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
                *extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,  # runs before any thread of ours exists
            start_new_session=True,  # a Ctrl-C in the terminal must not reach it before us
        )
        self.url = f"redis://127.0.0.1:{self.port}/0"
        deadline = time.monotonic() + 10
        client = redis.Redis(port=self.port)
        try:
            while True:
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline or self.process.poll() is not None:
                        self.stop()
                        raise RuntimeError(
                            f"redis-server on port {self.port} did not start"
                        ) from None
                    time.sleep(0.05)
        finally:
            client.close()

    @classmethod
    def start_if_available(cls) -> EmbeddedRedis | None:
        binary = shutil.which("redis-server")
        return cls(binary) if binary else None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)
