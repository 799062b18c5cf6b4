"""Accounts: username, password hash, operator and roles; a deleted account's or changed
role's tokens are revoked."""

from __future__ import annotations

import asyncio
from typing import Any

from app.core.clock import now_ms
from app.core.refusals import Code, Refused
from app.core.security import PLATFORM, Principal, hash_password
from app.services.admin.base import AdminBase
from app.services.admin.references import invalid_reference, platform_required
from app.services.audit import CLI_ACTOR
from app.services.scope import check_operator

ACCOUNT_VIEW = ("username", "operator_id", "roles")


def account_view(account: dict[str, Any]) -> dict[str, Any]:
    """An account without its password hash."""
    return {key: account[key] for key in ACCOUNT_VIEW}


class AccountAdmin(AdminBase):
    async def create_account(
        self,
        username: str,
        password: str,
        operator_id: str,
        roles: list[str],
        *,
        by: Principal = CLI_ACTOR,
    ) -> dict[str, Any]:
        config = await self._config.get()
        if not by.sees(operator_id):
            check_operator(by, operator_id)
        self._check_roles(by, roles)
        if operator_id not in config.operators:
            raise invalid_reference("operator_id", f"Operator {operator_id} does not exist.")
        if await self._store.account(username) is not None:
            raise Refused(Code.ACCOUNT_EXISTS, f"Account {username} already exists.")
        created = await self._write_account(username, password, operator_id, roles)
        await self.audit.record(
            by, "account.create", username, after=created, operators=[operator_id]
        )
        return created

    async def _write_account(
        self, username: str, password: str, operator_id: str, roles: list[str]
    ) -> dict[str, Any]:
        password_hash = await asyncio.to_thread(hash_password, password)
        account = {
            "username": username,
            "password_hash": password_hash,
            "operator_id": operator_id,
            "roles": sorted(set(roles)),
        }
        await self._store.put_account(account)
        return account_view(account)

    async def accounts(self, by: Principal = CLI_ACTOR) -> list[dict[str, Any]]:
        """The accounts the caller sees: its operator's, or all for the platform role."""
        return [
            account_view(account)
            for account in await self._store.accounts()
            if by.sees(account["operator_id"])
        ]

    async def _managed_account(self, username: str, by: Principal) -> dict[str, Any]:
        """An account the caller may change: its operator's (another operator's is unknown);
        one with the platform role, only by the platform."""
        account = await self._store.account(username)
        if account is None or not by.sees(account["operator_id"]):
            raise Refused(Code.ACCOUNT_NOT_FOUND, f"Account {username} does not exist.")
        self._check_roles(by, account["roles"])
        return account

    @staticmethod
    def _check_roles(by: Principal, roles: list[str]) -> None:
        if PLATFORM in roles and not by.is_platform:
            raise platform_required("Only the platform role manages accounts with that role.")

    async def delete_account(self, username: str, *, by: Principal = CLI_ACTOR) -> None:
        account = await self._managed_account(username, by)
        if not await self._store.delete_account(username):
            raise Refused(Code.ACCOUNT_NOT_FOUND, f"Account {username} does not exist.")
        await self.audit.record(
            by,
            "account.delete",
            username,
            before=account_view(account),
            operators=[account["operator_id"]],
        )
        await self._revoke(username)

    async def set_roles(
        self, username: str, roles: list[str], *, by: Principal = CLI_ACTOR
    ) -> dict[str, Any]:
        account = await self._managed_account(username, by)
        self._check_roles(by, roles)
        changed = {**account, "roles": sorted(set(roles))}
        if changed != account:
            await self._store.put_account(changed)
            await self.audit.record(
                by,
                "account.roles",
                username,
                before=account_view(account),
                after=account_view(changed),
                operators=[account["operator_id"]],
            )
            await self._revoke(username)
        return account_view(changed)

    async def _revoke(self, username: str) -> None:
        """Tokens already issued to `username` stop working at the next configuration
        refresh of every process (this one at once)."""
        await self._store.revoke_tokens(username, now_ms(), self._token_ttl_ms)
        await self._changed()
