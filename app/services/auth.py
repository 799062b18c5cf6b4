"""Service login: argon2id password check, throttling of failures, token issue."""

from __future__ import annotations

import asyncio
import math

from app.config import Settings
from app.refusals import Code, Refused
from app.security import DUMMY_HASH, Principal, TokenError, TokenIssuer, verify_password
from app.services.config import ConfigCache
from app.store import Store


class AuthService:
    def __init__(
        self, store: Store, tokens: TokenIssuer, settings: Settings, config: ConfigCache
    ) -> None:
        self._store = store
        self._tokens = tokens
        self._config = config
        self._max_failures = settings.login_max_failures
        self._window_ms = settings.login_window_s * 1000

    async def login(self, username: str, password: str, address: str) -> str:
        """Failures are counted per client address and username: a guesser locks out only
        itself, never the service that logs in from its own address."""
        subject = f"{address}|{username}"
        if await self._store.login_failures(subject) >= self._max_failures:
            retry_ms = await self._store.login_retry_after_ms(subject)
            raise Refused(
                Code.TOO_MANY_LOGIN_ATTEMPTS,
                "Too many failed logins from this address for this username; try again later.",
                {"retry_after": max(1, math.ceil(retry_ms / 1000))},
            )
        account = await self._store.account(username)
        password_hash = account["password_hash"] if account else DUMMY_HASH
        # argon2 takes tens of milliseconds of CPU: keep it off the event loop.
        valid = await asyncio.to_thread(verify_password, password_hash, password)
        if account is None or not valid:
            await self._store.record_login_failure(subject, self._window_ms)
            raise Refused(Code.INVALID_CREDENTIALS, "Unknown username or wrong password.")
        await self._store.clear_login_failures(subject)
        principal = Principal(username, account["operator_id"], tuple(account["roles"]))
        return self._tokens.issue(principal)

    async def principal(self, token: str) -> Principal:
        """The caller behind a token that is valid and not revoked. Revocations travel with
        the cached configuration, so this costs no Redis round trip of its own: a deleted
        account or changed roles take effect within the configuration refresh interval."""
        principal = self._tokens.verify(token)
        revoked_ms = (await self._config.get()).revocations.get(principal.username)
        if revoked_ms is not None and principal.issued_ms <= revoked_ms:
            raise TokenError("TOKEN_REVOKED", "the token was revoked; authenticate again")
        return principal
