"""Sources: an operator's brand's games (or source ids) and the instances they feed."""

from __future__ import annotations

from typing import Any

from app.core.refusals import Code, Refused
from app.core.security import Principal
from app.schemas.admin import SourceSchema
from app.services.admin.base import AdminBase
from app.services.admin.references import check_source_references, check_visible_instances
from app.services.audit import CLI_ACTOR, brand_operators
from app.services.scope import check_brands


class SourceAdmin(AdminBase):
    async def sources(self, by: Principal = CLI_ACTOR) -> list[dict[str, Any]]:
        """The sources the caller sees: its operator's brands', or all for the platform."""
        return [
            source
            for source in (await self._config.get()).sources
            if by.sees(source["owner_id"].partition(":")[0])
        ]

    async def put_source(
        self, source: dict[str, Any], *, by: Principal = CLI_ACTOR
    ) -> dict[str, Any]:
        config = await self._config.get()
        check_brands(by, [source["owner_id"]])
        check_source_references(source, config)
        check_visible_instances(
            by, f"sources.{source['source_id']}", source["instance_ids"], config
        )
        stored: dict[str, Any] = SourceSchema().dump(source)
        if await self._write_source(stored, by):
            await self._changed()
        return stored

    async def _write_source(self, stored: dict[str, Any], by: Principal) -> bool:
        before = self._find_source(await self._store.sources(), stored)
        changed = await self._store.put_source(stored)
        if changed:
            await self.audit.record(
                by,
                "source.put",
                f"{stored['owner_id']}/{stored['source_id']}",
                before=before,
                after=stored,
                operators=brand_operators([stored["owner_id"]]),
            )
        return changed

    @staticmethod
    def _find_source(
        sources: list[dict[str, Any]], wanted: dict[str, Any]
    ) -> dict[str, Any] | None:
        for source in sources:
            if (source["owner_id"], source["source_id"]) == (
                wanted["owner_id"],
                wanted["source_id"],
            ):
                return source
        return None

    async def delete_source(
        self, owner_id: str, source_id: str, *, by: Principal = CLI_ACTOR
    ) -> None:
        wanted = {"owner_id": owner_id, "source_id": source_id}
        before = self._find_source(await self._store.sources(), wanted)
        if not by.sees(owner_id.partition(":")[0]) or not await self._store.delete_source(
            owner_id, source_id
        ):
            raise Refused(Code.SOURCE_NOT_FOUND, f"Source {owner_id}/{source_id} does not exist.")
        await self.audit.record(
            by,
            "source.delete",
            f"{owner_id}/{source_id}",
            before=before,
            operators=brand_operators([owner_id]),
        )
        await self._changed()
