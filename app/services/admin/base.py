"""What every part of the admin service holds, and how a change reaches every process.

Each successful change bumps the configuration version, which tells every process to refresh
its cache.
"""

from __future__ import annotations

from app.services.audit import AuditTrail
from app.services.config import ConfigCache
from app.services.raffles import RaffleService
from app.store import Store


class AdminBase:
    """The store, the configuration cache, the audit trail and the settings every part uses."""

    def __init__(
        self,
        store: Store,
        config: ConfigCache,
        raffles: RaffleService,
        *,
        token_ttl_s: int = 1800,
        optin_retention_ms: int = 7 * 86_400_000,
    ) -> None:
        self._store = store
        self._config = config
        self._token_ttl_ms = token_ttl_s * 1000
        self._optin_retention_ms = optin_retention_ms
        self.audit = AuditTrail(store)
        self._raffles = raffles

    async def _changed(self) -> None:
        await self._store.bump_config_version()
        self._config.invalidate()
