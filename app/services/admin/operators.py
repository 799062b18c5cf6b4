"""Operators: their brands and callback secrets (write-only: shown once, when generated)."""

from __future__ import annotations

import secrets
from typing import Any

from app.core.refusals import Code, Refused
from app.core.security import Principal
from app.services.admin.base import AdminBase
from app.services.audit import CLI_ACTOR


class OperatorAdmin(AdminBase):
    async def put_operator(
        self, operator: dict[str, Any], *, by: Principal = CLI_ACTOR
    ) -> dict[str, Any]:
        """Create or replace; the answer shows a secret only when this call generated it."""
        existing = (await self._config.get()).operators.get(operator["id"])
        secret = operator.get("callback_secret")
        generated = secret is None and (existing is None or not existing.get("callback_secret"))
        if secret is None:
            secret = new_secret() if generated else existing["callback_secret"]  # type: ignore[index]
        stored = {**operator_record(operator), "callback_secret": secret}
        if await self._write_operator(stored, by):
            await self._changed()
        view = operator_view(stored)
        return {**view, "callback_secret": secret} if generated else view

    async def operators(self, by: Principal = CLI_ACTOR) -> list[dict[str, Any]]:
        """The operators the caller sees: its own, or all for the platform role."""
        return [
            operator_view(op)
            for op in (await self._config.get()).operators.values()
            if by.sees(op["id"])
        ]

    async def rotate_callback_secret(
        self, operator_id: str, *, by: Principal = CLI_ACTOR
    ) -> dict[str, Any]:
        operator = (await self._config.get()).operators.get(operator_id)
        if operator is None or not by.sees(operator_id):
            raise Refused(Code.OPERATOR_NOT_FOUND, f"Operator {operator_id} does not exist.")
        secret = new_secret()
        await self._write_operator({**operator, "callback_secret": secret}, by)
        await self._changed()
        return {"operator_id": operator_id, "callback_secret": secret}

    async def _write_operator(self, stored: dict[str, Any], by: Principal) -> bool:
        before = (await self._store.operators()).get(stored["id"])
        changed = await self._store.put_operator(stored)
        if changed:
            await self.audit.record(
                by,
                "operator.put",
                stored["id"],
                before=before,
                after=stored,
                operators=[stored["id"]],
            )
        return changed


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def operator_record(operator: dict[str, Any]) -> dict[str, Any]:
    return {"id": operator["id"], "name": operator.get("name"), "brands": operator["brands"]}


def operator_view(operator: dict[str, Any]) -> dict[str, Any]:
    """What may be shown of an operator: everything but its secret."""
    return {
        **operator_record(operator),
        "callback_secret_set": bool(operator.get("callback_secret")),
    }
