"""What every store mixin shares: the client, the script runner and JSON helpers."""

from __future__ import annotations

import json
from typing import Any

from app.core.config import Settings
from app.store.script_table import ScriptSpec
from app.store.scripts import ScriptArgsError, ScriptKeysError, ScriptRunner


def dumps(value: Any) -> str:
    """Canonical JSON, so equal objects are equal strings (idempotent writes compare them)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def loads(raw: str | None) -> Any:
    return None if raw is None else json.loads(raw)


class StoreBase:
    def __init__(
        self,
        client: Any,
        runner: ScriptRunner,
        *,
        cluster: bool = False,
        events_cap: int = Settings.events_stream_cap,
    ) -> None:
        self.client = client
        self.runner = runner
        self.cluster = cluster
        self.events_cap = events_cap  # entries kept in each instance's events stream

    @property
    def publish_mode(self) -> str:
        """How scripts publish events: sharded pub/sub on a cluster."""
        return "spublish" if self.cluster else "publish"

    async def script(self, spec: ScriptSpec, keys: list[str], args: list[Any]) -> Any:
        """Run a script of the table (app.store.script_table) with its KEYS and ARGV: a call
        with other than the table's ARGV count (at least it, for a variable tail) is refused
        before anything is sent (ScriptArgsError), as a wrong KEYS count is (ScriptKeysError)."""
        if len(keys) != spec.nkeys:
            raise ScriptKeysError(f"{spec.name} takes {spec.nkeys} KEYS, got {len(keys)}")
        fixed = len(spec.argv)
        if len(args) < fixed or (spec.rest is None and len(args) > fixed):
            more = " or more" if spec.rest is not None else ""
            raise ScriptArgsError(f"{spec.name} takes {fixed}{more} ARGV, got {len(args)}")
        return await self.runner.run(self.client, spec, keys, args)

    async def stream_page(
        self, key: str, after: str = "-", count: int = 100
    ) -> list[tuple[str, dict[str, str]]]:
        """Up to `count` entries of a stream after the entry id `after` ("-": from the start)."""
        start = after if after == "-" else f"({after}"
        entries = await self.client.xrange(key, start, "+", count)
        return [(entry_id, fields) for entry_id, fields in entries]
