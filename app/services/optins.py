"""Players opting in and out of instances (v1 and v2 with linked instances)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from app.core.clock import now_ms
from app.core.money import format_amount
from app.core.refusals import Code, Refused
from app.core.security import Principal
from app.services.charges import preferred_micros
from app.services.config import ConfigCache, ConfigSnapshot
from app.services.eligibility import check_eligible
from app.services.refusals import refused
from app.services.scope import BrandRef, check_operator, qualified_brand, resolve_brand
from app.services.targets import instance_definition, resolve_source_instance
from app.store import ScriptRefusal, Store
from app.store.optins import OptInRecord


class OptInService:
    def __init__(self, store: Store, config: ConfigCache) -> None:
        self._store = store
        self._config = config

    async def opt_in_v1(self, principal: Principal, body: dict[str, Any]) -> dict[str, Any] | None:
        config = await self._config.get()
        brand = resolve_brand(principal, body["brand_id"], config)
        definition = instance_definition(config, body["instance_id"], brand.operator_id)
        record = await self._apply(
            config,
            definition,
            brand,
            body["player_id"],
            body["player_country"],
            body["opt_in"],
            body["contribution_value"],
            body["contribution_currency"],
        )
        return status_view(record)

    async def opt_in_v2(self, principal: Principal, body: dict[str, Any]) -> dict[str, Any]:
        config = await self._config.get()
        check_operator(principal, body["operator_id"])
        player = body["player"]
        brand = resolve_brand(
            principal, qualified_brand(body["operator_id"], player["brand_id"]), config
        )
        target = body["target"]
        if target["type"] == "instance":
            definition = instance_definition(config, target["id"], brand.operator_id)
        else:
            # An opt-in carries no segments: not checked, as when the instance is named.
            definition = resolve_source_instance(
                config, brand, target["id"], player["country"], None
            )
        preference = body["contribution_preference"] or {}
        attempts: list[tuple[dict[str, Any], Decimal | None, str | None]] = [
            (definition, preference.get("value"), preference.get("currency"))
        ]
        if body["opt_linked"]:
            # Linked instances take their default contribution, not the preference.
            attempts += [
                (config.instances[linked], None, None)
                for linked in definition["linked_instances"]
                if linked in config.instances
            ]
        success: list[str] = []
        failed: list[dict[str, str]] = []
        for instance, value, currency in attempts:
            try:
                await self._apply(
                    config,
                    instance,
                    brand,
                    player["id"],
                    player["country"],
                    body["opt_in"],
                    value,
                    currency,
                )
            except Refused as error:
                failed.append(
                    {"instance_id": instance["id"], "code": error.code, "error": error.message}
                )
            else:
                success.append(instance["id"])
        return {"success": success, "failed": failed}

    async def _apply(
        self,
        config: ConfigSnapshot,
        definition: dict[str, Any],
        brand: BrandRef,
        player_id: str,
        country: str,
        opt_in: bool,
        value: Decimal | None,
        currency: str | None,
    ) -> OptInRecord:
        value_micros = value_raw = None
        if opt_in:
            # Leaving is always allowed; joining needs an eligible player.
            check_eligible(definition, brand.path, country, segments=None)
            if value is not None:
                currency = currency or definition["currency"]
                value_micros = preferred_value_micros(config, definition, brand, value, currency)
                value_raw = format_amount(value)
        try:
            return await self._store.set_optin(
                definition["id"],
                operator_id=brand.operator_id,
                brand_id=brand.brand_id,
                player_id=player_id,
                opted_in=opt_in,
                value_micros=value_micros,
                value_raw=value_raw,
                currency=None if value_raw is None else currency,
                now_ms=now_ms(),
                event_id=str(uuid.uuid4()),
            )
        except ScriptRefusal as refusal:
            raise refused(refusal, definition["id"]) from None


def preferred_value_micros(
    config: ConfigSnapshot,
    definition: dict[str, Any],
    brand: BrandRef,
    value: Decimal,
    currency: str,
) -> int:
    """The preference in instance micro-units, checked by the contribution rules (charges.py)."""
    converter = config.converter(brand.path)
    if not converter.knows(currency):
        raise Refused(Code.UNKNOWN_CURRENCY, f"Currency {currency} is not configured.")
    return preferred_micros(definition, converter, value, currency)


def status_view(record: OptInRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {
        "opted_in": record.opted_in,
        "contribution_value": None if record.value_raw is None else Decimal(record.value_raw),
        "contribution_currency": record.currency,
        "contribution_count": record.contribution_count,
        "last_updated": record.last_updated,
    }
