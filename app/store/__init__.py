"""The only package that talks to Redis. Everything above it calls `Store` methods."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.exceptions import ResponseError

from app.core.config import Settings
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
from app.store.ledger import LedgerStore
from app.store.optins import OptInStore
from app.store.raffles import RaffleStore
from app.store.scripts import ScriptRefusal, ScriptRunner
from app.store.wins import WinStore

__all__ = [
    "ScriptRefusal",
    "Store",
    "StoreError",
    "StoreOutcomeUnknown",
    "StoreUnavailable",
]


@dataclass(frozen=True)
class Memory:
    """One Redis node's memory: its eviction policy, bytes used and the limit (0: none)."""

    policy: str
    used_bytes: int
    max_bytes: int

    @property
    def may_evict(self) -> bool:
        """Only `noeviction` keeps every key: the others drop pots, ledgers and idempotency
        records (the volatile-* ones those with a TTL) once memory reaches the limit."""
        return self.policy != "noeviction"


class Store(
    ConfigStore,
    AccountStore,
    AuditStore,
    InstanceStore,
    LedgerStore,
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

    async def memory(self) -> list[Memory]:
        """Each node's memory figures (each primary of a cluster); [] where INFO is not
        available (the embedded fakeredis, or a managed Redis that renamed the command)."""
        try:
            if self.cluster:
                replies = await self.client.info("memory", target_nodes=self.client.PRIMARIES)
                infos = list(replies.values()) if isinstance(replies, dict) else [replies]
                if infos and not isinstance(infos[0], dict):  # one node answered directly
                    infos = [replies]
            else:
                infos = [await self.client.info("memory")]
        except Exception as error:
            failure = classify(error)  # away, loading, a cluster without nodes: say so
            if failure is not None:
                raise failure from error
            if isinstance(error, ResponseError):  # an unknown or renamed command
                return []
            raise
        return [
            Memory(
                policy=str(info.get("maxmemory_policy", "unknown")),
                used_bytes=int(info.get("used_memory", 0)),
                max_bytes=int(info.get("maxmemory", 0)),
            )
            for info in infos
            if isinstance(info, dict)
        ]

    async def close(self) -> None:
        self.runner.close()
        close: Any = getattr(self.client, "aclose", None) or self.client.close
        await close()
