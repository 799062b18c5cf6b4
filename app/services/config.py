"""The per-process configuration cache the hot path reads instead of Redis.

Admin changes bump a version counter in Redis; a process re-reads the configuration when it
sees a new version, checking at most every `refresh_s` seconds (so the contribution path costs
one extra GET per second per process, not per request). Writers in this process invalidate
their own cache at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from app.services.canonical import from_storage
from app.services.conversion import Converter
from app.store import Store

DEFAULT_DECIMALS = 2


@dataclass(frozen=True)
class ConfigSnapshot:
    version: int
    operators: dict[str, dict[str, Any]] = field(default_factory=dict)
    currencies: dict[str, Any] | None = None
    sources: list[dict[str, Any]] = field(default_factory=list)
    instances: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Live statuses; every status change bumps the version, so they are as fresh as the rest.
    statuses: dict[str, str] = field(default_factory=dict)
    # username -> epoch ms: the account's tokens issued until then are revoked.
    revocations: dict[str, int] = field(default_factory=dict)
    # Converters by brand, made on first use: every contribution needs its brand's.
    _converters: dict[str | None, Converter] = field(
        default_factory=dict, compare=False, repr=False
    )

    def brand_exists(self, brand_path: str) -> bool:
        operator_id, _, brand_id = brand_path.partition(":")
        operator = self.operators.get(operator_id)
        return operator is not None and brand_id in operator["brands"]

    def currency_known(self, currency: str) -> bool:
        return self.currencies is not None and currency in self.currencies["multipliers"]

    @property
    def base_currency(self) -> str | None:
        return None if self.currencies is None else str(self.currencies["base_currency"])

    def multipliers(self, brand_path: str | None = None) -> dict[str, Decimal]:
        """1 base unit = m units of each currency, with the brand's overrides merged."""
        if self.currencies is None:
            return {}
        merged = {ccy: Decimal(m) for ccy, m in self.currencies["multipliers"].items()}
        if brand_path is not None:
            overrides = self.currencies["brand_overrides"].get(brand_path, {})
            merged.update({ccy: Decimal(m) for ccy, m in overrides.items()})
        return merged

    def decimals(self, currency: str) -> int:
        if self.currencies is None:
            return DEFAULT_DECIMALS
        return int(self.currencies["decimals"].get(currency, DEFAULT_DECIMALS))

    def converter(self, brand_path: str | None = None) -> Converter:
        converter = self._converters.get(brand_path)
        if converter is None:
            decimals = {} if self.currencies is None else dict(self.currencies["decimals"])
            converter = self._converters[brand_path] = Converter(
                self.multipliers(brand_path), decimals
            )
        return converter

    def sources_of(self, owner_id: str) -> list[dict[str, Any]]:
        return [source for source in self.sources if source["owner_id"] == owner_id]

    def source(self, owner_id: str, source_id: str) -> dict[str, Any] | None:
        for source in self.sources:
            if source["owner_id"] == owner_id and source["source_id"] == source_id:
                return source
        return None


class ConfigCache:
    def __init__(self, store: Store, refresh_s: float) -> None:
        self._store = store
        self._refresh_s = refresh_s
        self._snapshot: ConfigSnapshot | None = None
        self._checked_at = 0.0

    def invalidate(self) -> None:
        self._snapshot = None

    async def get(self) -> ConfigSnapshot:
        now = time.monotonic()
        snapshot = self._snapshot
        if snapshot is not None and now - self._checked_at < self._refresh_s:
            return snapshot
        if snapshot is not None:
            # Requests arriving while this check is in flight keep the current snapshot,
            # so a busy process still sends one version check per interval, not one each.
            self._checked_at = now
        version = await self._store.config_version()
        if snapshot is None or version != snapshot.version:
            snapshot = await self._load(version)
            self._snapshot = snapshot
        self._checked_at = now
        return snapshot

    async def _load(self, version: int) -> ConfigSnapshot:
        store = self._store
        instance_ids = await store.instance_ids()
        return ConfigSnapshot(
            version=version,
            operators=await store.operators(),
            currencies=await store.currencies(),
            sources=await store.sources(),
            instances={
                instance_id: from_storage(stored)
                for instance_id, stored in (await store.definitions(instance_ids)).items()
            },
            statuses=await store.statuses(instance_ids),
            revocations=await store.revocations(),
        )
