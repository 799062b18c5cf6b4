"""Currencies: the multipliers and brand overrides every operator shares."""

from __future__ import annotations

from typing import Any

from app.core.security import Principal
from app.schemas.admin import CurrenciesSchema
from app.services.admin.base import AdminBase
from app.services.admin.references import check_currencies_references
from app.services.audit import CLI_ACTOR
from app.services.config import ConfigSnapshot


class CurrencyAdmin(AdminBase):
    async def put_currencies(
        self, currencies: dict[str, Any], *, by: Principal = CLI_ACTOR
    ) -> dict[str, Any]:
        config = await self._config.get()
        check_currencies_references(currencies, config)
        stored: dict[str, Any] = CurrenciesSchema().dump(currencies)
        if await self._write_currencies(stored, by, config):
            await self._changed()
        return stored

    async def _write_currencies(
        self, stored: dict[str, Any], by: Principal, config: ConfigSnapshot
    ) -> bool:
        """Currencies concern every operator."""
        before = await self._store.currencies()
        changed = await self._store.put_currencies(stored)
        if changed:
            await self.audit.record(
                by,
                "currencies.put",
                "currencies",
                before=before,
                after=stored,
                operators=config.operators,
            )
        return changed
