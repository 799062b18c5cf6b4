"""Service accounts and the failed-login throttle."""

from __future__ import annotations

from typing import Any

from app.store import keys
from app.store.base import StoreBase, dumps, loads


class AccountStore(StoreBase):
    async def account(self, username: str) -> dict[str, Any] | None:
        return loads(await self.client.hget(keys.ACCOUNTS, username))

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

    async def login_failures(self, subject: str) -> int:
        return int(await self.client.get(keys.login_failures(subject)) or 0)

    async def record_login_failure(self, subject: str, window_ms: int) -> int:
        result = await self.script(
            "record_login_failure", [keys.login_failures(subject)], [window_ms]
        )
        return int(result)

    async def login_retry_after_ms(self, subject: str) -> int:
        return max(int(await self.client.pttl(keys.login_failures(subject))), 0)

    async def clear_login_failures(self, subject: str) -> None:
        await self.client.delete(keys.login_failures(subject))
