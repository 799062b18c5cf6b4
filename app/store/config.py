"""Global configuration: operators, currencies, sources, the instance index, the version."""

from __future__ import annotations

from typing import Any

from app.store import keys
from app.store.base import StoreBase, dumps, loads


class ConfigStore(StoreBase):
    async def config_version(self) -> int:
        return int(await self.client.get(keys.CONFIG_VERSION) or 0)

    async def bump_config_version(self) -> int:
        version = int(await self.client.incr(keys.CONFIG_VERSION))
        await self.client.publish(keys.CONFIG_CHANNEL, str(version))
        return version

    async def _put_json_field(self, key: str, field: str, value: Any) -> bool:
        """HSET only when the stored JSON differs; True when something changed."""
        encoded = dumps(value)
        if await self.client.hget(key, field) == encoded:
            return False
        await self.client.hset(key, field, encoded)
        return True

    async def _all_json_fields(self, key: str) -> dict[str, Any]:
        raw = await self.client.hgetall(key)
        return {field: loads(value) for field, value in raw.items()}

    async def operators(self) -> dict[str, dict[str, Any]]:
        return await self._all_json_fields(keys.OPERATORS)

    async def put_operator(self, operator: dict[str, Any]) -> bool:
        return await self._put_json_field(keys.OPERATORS, operator["id"], operator)

    async def currencies(self) -> dict[str, Any] | None:
        found: dict[str, Any] | None = loads(await self.client.get(keys.CURRENCIES))
        return found

    async def put_currencies(self, currencies: dict[str, Any]) -> bool:
        encoded = dumps(currencies)
        if await self.client.get(keys.CURRENCIES) == encoded:
            return False
        await self.client.set(keys.CURRENCIES, encoded)
        return True

    async def sources(self) -> list[dict[str, Any]]:
        return list((await self._all_json_fields(keys.SOURCES)).values())

    async def put_source(self, source: dict[str, Any]) -> bool:
        field = keys.source_field(source["owner_id"], source["source_id"])
        return await self._put_json_field(keys.SOURCES, field, source)

    async def delete_source(self, owner_id: str, source_id: str) -> bool:
        return bool(await self.client.hdel(keys.SOURCES, keys.source_field(owner_id, source_id)))
