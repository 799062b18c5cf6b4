"""Service login: argon2id password check, throttling of failures, token issue."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

from app.core.config import Settings
from app.core.money import format_amount
from app.core.refusals import Code, Refused
from app.core.security import (
    DISPLAY,
    DUMMY_HASH,
    Principal,
    TokenError,
    TokenIssuer,
    verify_password,
)
from app.services.config import ConfigCache
from app.services.scope import resolve_brand
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
        self._display_ttl_s = settings.display_token_ttl_s
        self._display_max_ttl_s = settings.display_token_max_ttl_s

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

    async def principal(self, token: str, *, display: bool = False) -> Principal:
        """The caller behind a token that is valid and not revoked. Revocations travel with
        the cached configuration, so this costs no Redis round trip of its own: a deleted
        account or changed roles take effect within the configuration refresh interval.
        A display token is refused (403 DISPLAY_TOKEN_FORBIDDEN) unless the caller is the
        event stream (`display=True`): every route refuses it by default, new ones too."""
        principal = self._tokens.verify(token)
        revoked_ms = (await self._config.get()).revocations.get(principal.username)
        if revoked_ms is not None and principal.issued_ms <= revoked_ms:
            raise TokenError("TOKEN_REVOKED", "the token was revoked; authenticate again")
        if principal.is_display and not display:
            raise Refused(
                Code.DISPLAY_TOKEN_FORBIDDEN,
                "A display token opens the event stream (GET /events) and nothing else.",
            )
        return principal

    async def mint_display(
        self, principal: Principal, brands: list[str], ttl_s: int | None = None
    ) -> dict[str, Any]:
        """A display token for a lobby screen: read-only (GET /events alone), showing only
        instances these brands (the caller's operator's) may play, every player id masked,
        living `ttl_s` (default DISPLAY_TOKEN_TTL_SECONDS, at most the MAX). Its subject is
        the minting account: deleting the account or changing its roles revokes it too. The
        answer also carries the first brand's currency view, so the page shows pots in any
        currency without another call."""
        ttl = self._display_ttl_s if ttl_s is None else ttl_s
        if ttl > self._display_max_ttl_s:
            raise Refused(
                Code.DISPLAY_TTL_TOO_LONG,
                f"A display token lives at most {self._display_max_ttl_s} seconds.",
                {"ttl_seconds": self._display_max_ttl_s},
            )
        config = await self._config.get()
        paths: list[str] = []
        for brand in brands:
            path = resolve_brand(principal, brand, config).path  # 403 / 404 for others'
            if path not in paths:
                paths.append(path)
        display = Principal(
            principal.username, principal.operator_id, (DISPLAY,), brands=tuple(paths)
        )
        now = time.time()
        token = self._tokens.issue(display, now=now, ttl_s=ttl)
        currencies = None
        if config.currencies is not None:
            multipliers = config.multipliers(paths[0])
            currencies = {
                "base_currency": config.base_currency,
                "multipliers": {c: format_amount(m) for c, m in sorted(multipliers.items())},
                "decimals": {c: config.decimals(c) for c in sorted(multipliers)},
            }
        return {
            "token": token,
            "expires_in": ttl,
            "expires_at": (int(now) + ttl) * 1000,
            "brands": paths,
            "currencies": currencies,
        }
