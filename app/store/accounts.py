"""Service accounts and the failed-login throttle."""

from __future__ import annotations

from typing import Any

from app.store import keys
from app.store.base import StoreBase, dumps, loads
from app.store.script_table import TAKE_LOGIN_ATTEMPT


class AccountStore(StoreBase):
    async def account(self, username: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = loads(await self.client.hget(keys.ACCOUNTS, username))
        return found

    async def accounts(self) -> list[dict[str, Any]]:
        raw = await self.client.hgetall(keys.ACCOUNTS)
        return [loads(value) for value in raw.values()]

    async def put_account(self, account: dict[str, Any]) -> None:
        await self.client.hset(keys.ACCOUNTS, account["username"], dumps(account))

    async def delete_account(self, username: str) -> bool:
        return bool(await self.client.hdel(keys.ACCOUNTS, username))

    async def revoke_tokens(self, username: str, now_ms: int, keep_ms: int) -> None:
        """Tokens of `username` issued at or before `now_ms` are void. Entries older than
        `keep_ms` (a token's lifetime) can no longer void anything and are dropped."""
        stale = [
            name
            for name, at in (await self.client.hgetall(keys.REVOCATIONS)).items()
            if int(at) < now_ms - keep_ms
        ]
        if stale:
            await self.client.hdel(keys.REVOCATIONS, *stale)
        await self.client.hset(keys.REVOCATIONS, username, now_ms)

    async def revocations(self) -> dict[str, int]:
        raw = await self.client.hgetall(keys.REVOCATIONS)
        return {username: int(at) for username, at in raw.items()}

    async def take_login_attempt(
        self, subject: str, max_attempts: int, window_ms: int
    ) -> tuple[bool, int]:
        """(True, n): attempt n of the window, go ahead; (False, ms): refused, the window
        ends in `ms`. Counted and decided in one script call (see take_login_attempt-1.lua)."""
        allowed, value = await self.script(
            TAKE_LOGIN_ATTEMPT, [keys.login_attempts(subject)], [max_attempts, window_ms]
        )
        return int(allowed) == 1, int(value)

    async def clear_login_attempts(self, subject: str) -> None:
        await self.client.delete(keys.login_attempts(subject))
