"""Loads the Lua scripts of `lua/` against their table and runs them with their KEYS count
checked.

The scripts are declared once, in app.store.script_table (name, KEYS, ARGV, refusals): at
load a file the table does not declare, a declared script without its file, or a KEYS count
other than the file name's N is refused; the store calls a script by its table entry.

File names follow `<verb_noun>-<N>.lua`, N being the number of KEYS the script takes. Shared
Lua lives in `lua/includes/`: a line `--- @include "includes/x.lua"` (a glob such as
`"includes/triggers/*.lua"` includes each matching file, sorted) is replaced by that file's
text before `SCRIPT LOAD`; a file is included once per script however often it is named. A
name in GENERATED_INCLUDES (`"generated:<what>"`) is replaced by Lua made from Python instead. A
business refusal in Lua is `redis.error_reply('CODE detail')`; it reaches Python as a
`ScriptRefusal` whose `code` is a member of `Code`.

On a TCP Redis (or each node of a Redis Cluster) script calls go through one multiplexed
`CommandPipe` per node (see app.store.pipe): the calls of one event-loop tick share a write.
Other clients (fakeredis, TLS, unix sockets) run scripts through redis-py as they are.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import redis.asyncio as aredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import AskError, MovedError, NoScriptError, ResponseError, TryAgainError

from app.core.refusals import Code
from app.store.connection import ClassifyingConnection, HiredisPackingConnection
from app.store.errors import StoreOutcomeUnknown, StoreUnavailable, refused
from app.store.pipe import CommandPipe, pack
from app.store.script_table import TABLE, ScriptSpec
from app.triggers import lua_dispatch

_NAME = re.compile(r"^(?P<name>[a-z][a-z0-9_]*)-(?P<nkeys>\d+)\.lua$")
_INCLUDE = re.compile(r'^--- @include "(?P<path>[^"]+)"[ \t]*$', re.MULTILINE)


class ScriptKeysError(TypeError):
    """A script was called with the wrong number of KEYS (a programming error)."""


class ScriptArgsError(TypeError):
    """A script was called with another number of ARGV than its table entry declares."""


class ScriptRefusal(Exception):
    """A script refused the operation with one of the codes of `app.core.refusals.Code`."""

    def __init__(self, code: Code, detail: str = "") -> None:
        super().__init__(f"{code.value} {detail}".strip())
        self.code = code
        self.detail = detail


def parse_refusal(error: ResponseError) -> ScriptRefusal | None:
    """Find `CODE detail` in a script's error reply (fakeredis may wrap the text)."""
    text = str(error)
    for word_match in re.finditer(r"[A-Z][A-Z0-9_]{2,}", text):
        word = word_match.group(0)
        if word in Code.__members__:
            detail = text[word_match.end() :].strip()
            return ScriptRefusal(Code[word], detail)
    return None


def lua_dir() -> Path:
    """`lua/` of a checkout, else the copy packaged inside the installed wheel."""
    checkout = Path(__file__).resolve().parents[2] / "lua"
    if checkout.is_dir():
        return checkout
    return Path(str(resources.files("app") / "_lua"))


@dataclass(frozen=True)
class LuaScript:
    name: str
    nkeys: int
    source: str
    path: Path
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode()).hexdigest())

    def check_keys(self, keys: list[str]) -> None:
        if len(keys) != self.nkeys:
            raise ScriptKeysError(f"{self.name} takes {self.nkeys} KEYS, got {len(keys)}")


# Lua made from Python when a script is loaded, by include name (given the lua/ directory):
# the trigger types' dispatch table, from their registry (it refuses a half-registered type).
GENERATED_INCLUDES: dict[str, Callable[[Path], str]] = {"generated:triggers": lua_dispatch}


def expand_includes(source: str, directory: Path, seen: set[Path] | None = None) -> str:
    """`source` with every `--- @include "path"` line replaced by the named files' text
    (paths relative to `directory`, globs allowed, nested includes expanded, each file once)."""
    seen = set() if seen is None else seen

    def include(match: re.Match[str]) -> str:
        pattern = match.group("path")
        generate = GENERATED_INCLUDES.get(pattern)
        if generate is not None:
            return expand_includes(generate(directory), directory, seen)
        paths = sorted(directory.glob(pattern))
        if not paths:
            raise ValueError(f"Lua include {pattern!r} matches no file")
        parts = []
        for path in paths:
            resolved = path.resolve()
            if resolved in seen:
                continue
            seen.add(resolved)
            text = expand_includes(path.read_text(), directory, seen)
            parts.append(f"-- included from {path.relative_to(directory)}\n{text.rstrip()}")
        return "\n".join(parts)

    return _INCLUDE.sub(include, source)


def load_scripts(
    directory: Path | None = None, table: tuple[ScriptSpec, ...] | None = TABLE
) -> dict[str, LuaScript]:
    """The scripts of `directory` (default `lua/`), checked against `table` (the script table
    of app.store.script_table; None only for a test's own scripts): a file without an entry,
    an entry without a file or a KEYS count other than the file name's N is refused."""
    directory = directory or lua_dir()
    scripts: dict[str, LuaScript] = {}
    for path in sorted(directory.glob("*.lua")):
        match = _NAME.match(path.name)
        if not match:
            raise ValueError(f"Lua file {path.name} does not follow <verb_noun>-<N>.lua")
        name = match.group("name")
        if name in scripts:
            raise ValueError(f"two Lua scripts are named {name}")
        source = expand_includes(path.read_text(), directory)
        scripts[name] = LuaScript(name, int(match.group("nkeys")), source, path)
    if table is not None:
        check_against_table(scripts, table)
    return scripts


def check_against_table(scripts: dict[str, LuaScript], table: tuple[ScriptSpec, ...]) -> None:
    declared = {spec.name: spec for spec in table}
    for name, script in scripts.items():
        spec = declared.get(name)
        if spec is None:
            raise ValueError(
                f"Lua script {script.path.name} is not declared in app/store/script_table.py"
            )
        if spec.nkeys != script.nkeys:
            raise ValueError(
                f"Lua script {script.path.name} takes {script.nkeys} KEYS but "
                f"app/store/script_table.py declares {spec.nkeys} ({spec.file})"
            )
    missing = sorted(spec.file for name, spec in declared.items() if name not in scripts)
    if missing:
        raise ValueError(f"app/store/script_table.py declares scripts without a file: {missing}")


# Plain TCP connection classes (not TLS, unix sockets or fakeredis, which subclass them).
_TCP_CONNECTIONS = (aredis.Connection, ClassifyingConnection, HiredisPackingConnection)
_REDIRECTED = (MovedError, AskError, TryAgainError)
DEFAULT_TIMEOUT_S = 3.0  # as app.store.connection.Timeouts


class ScriptRunner:
    """Runs the scripts by EVALSHA (loading them on NOSCRIPT), multiplexed where it can."""

    def __init__(self, scripts: dict[str, LuaScript] | None = None) -> None:
        self.scripts = scripts if scripts is not None else load_scripts()
        self._pipes: dict[tuple[Any, Any], CommandPipe] = {}

    def _script(self, spec: ScriptSpec | str, keys: list[str]) -> LuaScript:
        script = self.scripts[spec if isinstance(spec, str) else spec.name]
        script.check_keys(keys)
        return script

    async def run(
        self, client: Any, spec: ScriptSpec | str, keys: list[str], args: list[Any]
    ) -> Any:
        """Run the script `spec` (an entry of app.store.script_table; a name only for a
        runner built on a test's own scripts)."""
        script = self._script(spec, keys)
        try:
            pipe = await self._pipe(client, keys)
            if pipe is None:
                return await self._run_redis_py(client, script, keys, args)
            try:
                return await self._run_pipe(pipe, script, keys, args)
            except _REDIRECTED:
                # The node no longer owns the slot (nothing ran): redis-py follows the
                # redirection and refreshes its slot table, which the next call uses.
                return await self._run_redis_py(client, script, keys, args)
        except ResponseError as error:
            refusal = parse_refusal(error)
            if refusal is not None:
                raise refusal from None
            not_run = refused(error)  # LOADING, OOM, READONLY, BUSY, ...: nothing ran
            if not_run is not None:
                raise not_run from None
            raise

    async def _run_pipe(
        self, pipe: CommandPipe, script: LuaScript, keys: list[str], args: list[Any]
    ) -> Any:
        packed = pack("EVALSHA", script.sha, len(keys), *keys, *args)
        try:
            return await pipe.call(packed)
        except NoScriptError:  # nothing ran: load it on this node and call again
            try:
                await pipe.command("SCRIPT", "LOAD", script.source)
            except StoreOutcomeUnknown as error:  # the script call itself was never sent
                raise StoreUnavailable(str(error)) from error
            return await pipe.call(packed)

    @staticmethod
    async def _run_redis_py(
        client: Any, script: LuaScript, keys: list[str], args: list[Any]
    ) -> Any:
        try:
            return await client.evalsha(script.sha, len(keys), *keys, *args)
        except NoScriptError:
            await client.script_load(script.source)
            return await client.evalsha(script.sha, len(keys), *keys, *args)

    async def _pipe(self, client: Any, keys: list[str]) -> CommandPipe | None:
        """The pipe to the node that serves `keys`, or None to use redis-py."""
        host: Any
        port: Any
        if isinstance(client, RedisCluster):
            if getattr(client, "_initialize", False):
                await client.initialize()
            node = client.get_node_from_key(keys[0]) if keys else None
            if node is None:
                return None
            options = client.connection_kwargs
            connection_class = options.get("connection_class", aredis.Connection)
            host, port = node.host, node.port
        elif isinstance(client, aredis.Redis):
            pool = client.connection_pool
            options, connection_class = pool.connection_kwargs, pool.connection_class
            host, port = options.get("host"), options.get("port")
        else:
            return None
        if connection_class not in _TCP_CONNECTIONS or host is None or port is None:
            return None
        pipe = self._pipes.get((host, port))
        if pipe is None or pipe.loop is not asyncio.get_running_loop():
            timeout = options.get("socket_timeout") or options.get("orig_socket_timeout")
            connect_timeout = options.get("socket_connect_timeout") or timeout
            pipe = self._pipes[(host, port)] = CommandPipe(
                host,
                int(port),
                db=int(options.get("db") or 0),
                username=options.get("username"),
                password=options.get("password"),
                timeout_s=float(timeout or DEFAULT_TIMEOUT_S),
                connect_timeout_s=float(connect_timeout or DEFAULT_TIMEOUT_S),
            )
        return pipe

    def close(self) -> None:
        pipes, self._pipes = self._pipes, {}
        for pipe in pipes.values():
            pipe.close()
