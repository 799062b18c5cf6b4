"""One connection to one Redis node shared by every script call of a process.

redis-py's asyncio client spends more client CPU on a call than Redis spends running the
contribute script: a pooled connection per call, a Task for its socket timeout, a write and a
read per call. A `CommandPipe` multiplexes instead: the calls issued during one event-loop
tick go out in one write, the replies come back in order through hiredis's C reader, and one
timer (not one per call) enforces the timeout. Redis still executes one command per call; a
batch is a pipeline, never a transaction.

Failures keep the distinction of app.store.errors, since a script that moves money must
never run twice:
  `StoreUnavailable`     the call never reached the socket (could not connect, or the
                         connection was gone before the batch was written): nothing ran.
  `StoreOutcomeUnknown`  it was written but no reply came (connection lost, timeout: then
                         `ReplyTimeout`): it may have run. The connection is dropped, since
                         later replies would no longer match their calls; the next call
                         reconnects.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, cast

import hiredis
from redis.exceptions import (
    AskError,
    AuthenticationError,
    MovedError,
    NoScriptError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import (
    TimeoutError as RedisTimeoutError,
)

from app.store.errors import StoreOutcomeUnknown, StoreUnavailable


class ReplyTimeout(StoreOutcomeUnknown, RedisTimeoutError):
    """No reply within the timeout: the command may or may not have run."""

    reason = "timeout"


_ERRORS: dict[str, type[ResponseError]] = {
    "NOSCRIPT": NoScriptError,
    "MOVED": MovedError,
    "ASK": AskError,
    "TRYAGAIN": TryAgainError,
}


def reply_error(message: str) -> Exception:
    """An error reply as redis-py would raise it (NOSCRIPT, MOVED, ... get their classes)."""
    code, _, rest = message.partition(" ")
    error_class = _ERRORS.get(code)
    if error_class is not None:
        # redis-py's redirection errors take the text after the code (slot and address).
        return error_class(rest if error_class in (MovedError, AskError) else message)
    return ResponseError(message)


def pack(*args: Any) -> bytes:
    """One command in RESP, packed in C."""
    return bytes(hiredis.pack_command(args))


class _Connection(asyncio.Protocol):
    """One TCP connection of a pipe; events of a connection the pipe gave up are ignored."""

    def __init__(self, pipe: CommandPipe) -> None:
        self.pipe = pipe
        self.transport: asyncio.Transport | None = None
        self.reader = hiredis.Reader(encoding="utf-8", replyError=reply_error)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        self.pipe._replies(self, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.pipe._lost(self, exc)


class CommandPipe:
    """A multiplexed connection to one node: calls of one tick share a write, replies are
    matched to calls in order. Only for commands that answer once (no blocking commands, no
    pub/sub)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float | None = 3.0,
        connect_timeout_s: float = 3.0,
    ) -> None:
        self.address = (host, port)
        self._setup: list[tuple[Any, ...]] = []
        if password:
            self._setup.append(("AUTH", username, password) if username else ("AUTH", password))
        if db:
            self._setup.append(("SELECT", db))
        self._timeout_s = timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._loop = asyncio.get_running_loop()
        self._connection: _Connection | None = None
        self._opening: asyncio.Task[None] | None = None
        self._outbox: list[tuple[bytes, asyncio.Future[Any]]] = []  # not written yet
        self._pending: deque[tuple[asyncio.Future[Any], float]] = deque()  # written, sent at
        self._flush_handle: asyncio.Handle | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    # -- calls ------------------------------------------------------------------------------
    async def call(self, packed: bytes) -> Any:
        """Send one packed command with the others of this tick; its reply, or its error
        reply raised (a ResponseError subclass)."""
        if self._connection is None:
            await self._connect()
        future = self._loop.create_future()
        self._outbox.append((packed, future))
        if self._flush_handle is None:
            self._flush_handle = self._loop.call_soon(self._flush)
        reply = await future
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def command(self, *args: Any) -> Any:
        return await self.call(pack(*args))

    def _flush(self) -> None:
        self._flush_handle = None
        batch = [(packed, future) for packed, future in self._outbox if not future.done()]
        self._outbox.clear()
        if not batch:
            return
        connection = self._connection
        if connection is None or connection.transport is None:
            error = StoreUnavailable(
                f"no connection to Redis at {self.address[0]}:{self.address[1]}"
            )
            for _, future in batch:
                future.set_exception(error)
            return
        sent_at = self._loop.time()
        self._pending.extend((future, sent_at) for _, future in batch)
        connection.transport.write(b"".join(packed for packed, _ in batch))
        if self._timer is None and self._timeout_s is not None:
            self._timer = self._loop.call_at(sent_at + self._timeout_s, self._check_timeout)

    def _check_timeout(self) -> None:
        self._timer = None
        if not self._pending or self._timeout_s is None:
            return
        deadline = self._pending[0][1] + self._timeout_s
        if self._loop.time() >= deadline:
            self._drop(ReplyTimeout(f"no reply from Redis within {self._timeout_s:g} s"))
        else:
            self._timer = self._loop.call_at(deadline, self._check_timeout)

    # -- the connection -----------------------------------------------------------------
    async def _connect(self) -> None:
        if self._closed:
            raise StoreUnavailable("the connection to Redis is closed")
        if self._opening is None:
            self._opening = self._loop.create_task(self._open())
        opening = self._opening
        try:
            await asyncio.shield(opening)
        finally:
            if opening.done() and self._opening is opening:
                self._opening = None

    async def _open(self) -> None:
        host, port = self.address
        try:
            _, connection = await asyncio.wait_for(
                self._loop.create_connection(lambda: _Connection(self), host, port),
                self._connect_timeout_s,
            )
        except OSError as error:  # TimeoutError included
            raise StoreUnavailable(f"cannot connect to Redis at {host}:{port}: {error}") from None
        self._connection = connection
        try:
            for setup in self._setup:
                await self.command(*setup)
        except ResponseError as error:
            self._drop(StoreUnavailable(str(error)))
            raise AuthenticationError(str(error)) from None

    def _replies(self, connection: _Connection, data: bytes) -> None:
        if connection is not self._connection:
            return
        reader, pending = connection.reader, self._pending
        reader.feed(data)
        while True:
            try:
                reply = reader.gets()
            except hiredis.ProtocolError as error:
                self._drop(StoreOutcomeUnknown(f"Redis protocol error: {error}"))
                return
            if reply is False:
                return
            if not pending:  # a reply nobody asked for: the stream cannot be trusted
                self._drop(StoreOutcomeUnknown("Redis sent an unexpected reply"))
                return
            future, _ = pending.popleft()
            if not future.done():  # a cancelled caller's reply is read and dropped
                future.set_result(reply)

    def _lost(self, connection: _Connection, exc: Exception | None) -> None:
        if connection is self._connection:
            self._connection = None
            self._fail_pending(StoreOutcomeUnknown(f"connection to Redis lost: {exc or 'closed'}"))

    def _fail_pending(self, error: Exception) -> None:
        pending, self._pending = self._pending, deque()
        for future, _ in pending:
            if not future.done():
                future.set_exception(error)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _drop(self, error: Exception) -> None:
        """Give up the connection: calls in flight fail with `error`; the next reconnects."""
        connection, self._connection = self._connection, None
        self._fail_pending(error)
        if connection is not None and connection.transport is not None:
            connection.transport.abort()

    def close(self) -> None:
        self._closed = True
        if self._opening is not None:
            self._opening.cancel()
        self._drop(StoreOutcomeUnknown("the connection to Redis was closed"))
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        for _, future in self._outbox:
            if not future.done():
                future.set_exception(StoreUnavailable("the connection to Redis was closed"))
        self._outbox.clear()
