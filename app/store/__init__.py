"""The only package that talks to Redis. Everything above it calls `Store` methods."""

from __future__ import annotations

from typing import Any

from app.config import Settings
from app.store import keys
from app.store.accounts import AccountStore
from app.store.audit import AuditStore
from app.store.config import ConfigStore
from app.store.connection import Timeouts, async_client
from app.store.contributions import ContributionStore
from app.store.deliveries import DeliveryStore
from app.store.errors import StoreError, StoreOutcomeUnknown, StoreUnavailable, classify
from app.store.events import EventStore
from app.store.instances import InstanceStore
from app.store.optins import OptInStore
from app.store.raffles import RaffleStore
from app.store.scripts import Refusal, ScriptRefusal, ScriptRunner
from app.store.wins import WinStore

__all__ = [
    "Refusal",
    "ScriptRefusal",
    "Store",
    "StoreError",
    "StoreOutcomeUnknown",
    "StoreUnavailable",
]


class Store(
    ConfigStore,
    AccountStore,
    AuditStore,
    InstanceStore,
    ContributionStore,
    OptInStore,
    DeliveryStore,
    WinStore,
    EventStore,
    RaffleStore,
):
    """Jackpot state on one Redis (or Redis Cluster) client."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        client = async_client(
            settings.redis_url,
            cluster=settings.redis_cluster,
            max_connections=settings.redis_max_connections,
            timeouts=cls.timeouts(settings),
        )
        return cls(
            client,
            ScriptRunner(),
            cluster=settings.redis_cluster,
            events_cap=settings.events_stream_cap,
        )

    @staticmethod
    def timeouts(settings: Settings) -> Timeouts:
        return Timeouts(
            socket=settings.redis_socket_timeout_s,
            connect=settings.redis_connect_timeout_s,
            pool=settings.redis_pool_timeout_s,
        )

    async def ping(self) -> bool:
        return bool(await self.client.ping())

    async def readiness(self) -> str:
        """'ok', or why the store cannot take writes now (one line): a write, since a
        loading, full (OOM) or read-only Redis still answers PING."""
        try:
            await self.client.set(keys.READY_PROBE, "1", px=10_000)
        except Exception as error:
            failure = classify(error)
            if failure is None:
                raise
            return f"{failure.kind}: {failure.reason}: {failure}"
        return "ok"

    async def close(self) -> None:
        self.runner.close()
        close: Any = getattr(self.client, "aclose", None) or self.client.close
        await close()
