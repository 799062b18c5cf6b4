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
        """Attempts are counted per client address and username: a guesser locks out only
        itself, never the service that logs in from its own address. An attempt is counted
        before its password is checked, in the same store call that decides whether it may
        be made, so at most LOGIN_MAX_FAILURES passwords are checked per window however many
        arrive at once; a successful login clears the count."""
        subject = f"{address}|{username}"
        allowed, value = await self._store.take_login_attempt(
            subject, self._max_failures, self._window_ms
        )
        if not allowed:
            raise Refused(
                Code.TOO_MANY_LOGIN_ATTEMPTS,
                "Too many failed logins from this address for this username; try again later.",
                {"retry_after": max(1, math.ceil(value / 1000))},
            )
        account = await self._store.account(username)
        password_hash = account["password_hash"] if account else DUMMY_HASH
        # argon2 takes tens of milliseconds of CPU: keep it off the event loop.
        valid = await asyncio.to_thread(verify_password, password_hash, password)
        if account is None or not valid:
            raise Refused(Code.INVALID_CREDENTIALS, "Unknown username or wrong password.")
        await self._store.clear_login_attempts(subject)
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
