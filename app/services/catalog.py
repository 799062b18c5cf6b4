"""Read-only views of the configuration for operators: currencies and sources."""

from __future__ import annotations

from typing import Any

from app.core.refusals import Code, Refused
from app.core.security import Principal
from app.services.config import ConfigCache
from app.services.scope import resolve_brand


class CatalogService:
    def __init__(self, config: ConfigCache) -> None:
        self._config = config

    async def currencies(self, principal: Principal, brand: str) -> dict[str, Any]:
        config = await self._config.get()
        ref = resolve_brand(principal, brand, config)
        if config.currencies is None:
            raise Refused(Code.CURRENCIES_NOT_CONFIGURED, "No currencies are configured yet.")
        return {
            "brand_id": brand,
            "base_currency": config.base_currency,
            "multipliers": config.multipliers(ref.path),
        }

    async def sources(
        self, principal: Principal, owner_id: str, name: str | None
    ) -> list[dict[str, Any]]:
        config = await self._config.get()
        ref = resolve_brand(principal, owner_id, config)
        needle = (name or "").casefold()
        return [
            source
            for source in config.sources_of(ref.path)
            if needle in source["source_name"].casefold()
        ]
