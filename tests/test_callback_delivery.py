"""Callback delivery: the URL is checked again at delivery against the address actually
connected to (a DNS answer that changed since the request cannot aim the signed result at a
private address), and redirects are never followed."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any
from unittest.mock import MagicMock

import pytest

import workers.jobs
from app.core.refusals import Code, Refused
from app.services.callbacks import CallbackFailed

SECRET = "s" * 32


class Server:
    def __init__(self, status: int = 200, location: str | None = None) -> None:
        self.requests: list[dict[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append(dict(self.headers))
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.close()


@pytest.fixture
def allow(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Set the worker's CALLBACK_ALLOWLIST (restored after the test)."""

    def allowing(*hosts: str) -> None:
        settings = SimpleNamespace(callback_allowlist=hosts)
        services = SimpleNamespace(settings=settings, metrics=MagicMock())
        context = SimpleNamespace(services=services)
        monkeypatch.setattr(workers.jobs, "_context", context)

    return allowing


def deliver(url: str) -> int:
    return workers.jobs.post_callback(url, {"X-Op": "1"}, '{"ok":true}', "d-1", SECRET)


def test_a_redirect_is_not_followed(servers: list[Server], allow: Any) -> None:
    thief = Server()
    servers.append(thief)
    redirector = Server(302, location=thief.url)
    servers.append(redirector)
    allow("127.0.0.1")
    with pytest.raises(CallbackFailed, match="302"):
        deliver(redirector.url)
    assert len(redirector.requests) == 1
    assert thief.requests == []  # neither the body nor the signature went there


def test_a_host_that_now_resolves_to_a_private_address_is_refused(
    servers: list[Server], allow: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The host passed the check when the request arrived; its DNS answer now says 127.0.0.1."""
    receiver = Server()
    servers.append(receiver)
    real = socket.getaddrinfo

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "hooks.example.com":
            return real("127.0.0.1", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    allow()
    with pytest.raises(Refused) as refused:
        deliver(f"http://hooks.example.com:{receiver.port}/hook")
    assert refused.value.code is Code.CALLBACK_NOT_ALLOWED
    assert receiver.requests == []


def test_the_connection_goes_to_the_checked_address_with_the_callers_host(
    servers: list[Server], allow: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = Server()
    servers.append(receiver)
    real = socket.getaddrinfo
    answers = iter(["127.0.0.1", "10.9.9.9"])  # a second lookup would say otherwise

    def lookup(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "hooks.test":
            return real(next(answers), port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    allow("hooks.test")
    assert deliver(f"http://hooks.test:{receiver.port}/hook") == 200
    [headers] = receiver.requests
    assert headers["Host"] == f"hooks.test:{receiver.port}"
    assert headers["X-Jackpot-Signature"].startswith("sha256=")
    assert headers["X-Op"] == "1"


def test_headers_that_frame_the_request_are_not_taken_from_the_callback(
    servers: list[Server],
    allow: Any,
) -> None:
    receiver = Server()
    servers.append(receiver)
    allow("127.0.0.1")
    headers = {"Content-Length": "1", "Transfer-Encoding": "chunked", "X-Op": "1"}
    assert workers.jobs.post_callback(receiver.url, headers, '{"a":1}', "d-2", SECRET) == 200
    [received] = receiver.requests
    assert received["Content-Length"] == "7" and "Transfer-Encoding" not in received
