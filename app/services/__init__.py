"""Domain logic. Routes call services; services call the store."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from rq import Queue

from app.core.config import Settings
from app.core.metrics import Metrics, new_metrics
from app.core.money import from_micros
from app.core.queues import CALLBACK_QUEUE, CONTRIBUTION_QUEUE
from app.core.security import TokenIssuer
from app.services.admin.service import AdminService
from app.services.auth import AuthService
from app.services.catalog import CatalogService
from app.services.config import ConfigCache
from app.services.contributions import ContributionService
from app.services.deadletters import DeadLetterService
from app.services.deliveries import DeliveryService
from app.services.draws import DAY_MS, DrawKeys
from app.services.events.hub import EventHub
from app.services.instances import InstanceService
from app.services.ledger import LedgerService
from app.services.lifecycle import LifecycleService
from app.services.optins import OptInService
from app.services.raffles import RaffleService
from app.services.replayer import Replayer
from app.services.treasury import TreasuryService
from app.store import Store, StoreError
from app.store.archive import LedgerArchive
from app.store.connection import sync_client, sync_ping
from app.store.jobs import queue_length


@dataclass
class Services:
    settings: Settings
    store: Store
    config: ConfigCache
    tokens: TokenIssuer
    auth: AuthService
    admin: AdminService
    lifecycle: LifecycleService
    catalog: CatalogService
    contributions: ContributionService
    optins: OptInService
    instances: InstanceService
    treasury: TreasuryService
    ledger: LedgerService
    replayer: Replayer
    deliveries: DeliveryService
    dead_letters: DeadLetterService
    events: EventHub
    raffles: RaffleService
    metrics: Metrics

    @classmethod
    def create(cls, settings: Settings, store: Store | None = None) -> Services:
        store = store or Store.from_settings(settings)
        config = ConfigCache(store, settings.config_refresh_s)
        metrics = new_metrics()
        tokens = TokenIssuer(settings.jwt_secret, settings.jwt_issuer, settings.token_ttl_s)
        raffles = RaffleService(
            store,
            config,
            DrawKeys(settings.draw_key, settings.draw_keys_previous),
            round_retention_ms=settings.raffle_round_retention_days * DAY_MS,
        )
        raffles.metrics = metrics
        # A revocation is kept as long as any token it revokes may live (display tokens too).
        revoke_for_s = max(settings.token_ttl_s, settings.display_token_max_ttl_s)
        admin = AdminService(
            store,
            config,
            raffles,
            token_ttl_s=revoke_for_s,
            optin_retention_ms=settings.optin_retention_days * DAY_MS,
        )
        queue_client = sync_client(settings.queue_url, timeouts=Store.timeouts(settings))
        queue = Queue(CONTRIBUTION_QUEUE, connection=queue_client)
        callbacks = Queue(CALLBACK_QUEUE, connection=queue_client)
        events = EventHub(
            store,
            config,
            update_interval_s=settings.update_interval_s,
            queue_limit=settings.events_queue_limit,
            ping_interval_s=settings.events_ping_interval_s,
            pong_timeout_s=settings.events_pong_timeout_s,
            recent_wins=settings.events_recent_wins,
        )
        events.on_count = metrics.open_websockets.set
        replayer = Replayer(store, settings)
        treasury = TreasuryService(store, config, admin.audit, replayer)
        ledger = LedgerService(
            store,
            config,
            treasury,
            LedgerArchive(settings.ledger_archive_url) if settings.ledger_archive_url else None,
            retention_days=settings.ledger_retention_days,
        )
        lifecycle = LifecycleService(store, admin, raffles)
        lifecycle.register("ledger", ledger.run)
        return cls(
            settings=settings,
            store=store,
            config=config,
            tokens=tokens,
            auth=AuthService(store, tokens, settings, config),
            admin=admin,
            lifecycle=lifecycle,
            catalog=CatalogService(config),
            contributions=ContributionService(store, config, settings, queue, metrics),
            optins=OptInService(store, config),
            instances=InstanceService(store, config),
            treasury=treasury,
            ledger=ledger,
            replayer=replayer,
            deliveries=DeliveryService(store, config, admin.audit, callbacks),
            dead_letters=DeadLetterService(
                {CONTRIBUTION_QUEUE: queue, CALLBACK_QUEUE: callbacks}, admin.audit
            ),
            events=events,
            raffles=raffles,
            metrics=metrics,
        )

    async def readiness(self) -> dict[str, str]:
        """Each dependency: 'ok' or why not. The web process needs the store; async
        contributions also need the queue Redis."""
        checks = {"store": await self.store.readiness()}
        queue = self.contributions.queue
        if queue is not None:
            checks["queue"] = await asyncio.to_thread(sync_ping, queue.connection)
        return checks

    async def eviction_risk(self) -> str | None:
        """Why the state store could silently drop jackpot state (one line), or None. A store
        that cannot be reached now is no reason to refuse: the processes wait for it."""
        try:
            nodes = await self.store.memory()
        except StoreError:
            return None
        evicting = sorted({node.policy for node in nodes if node.may_evict})
        if not evicting:
            return None
        return (
            f"the state Redis has maxmemory-policy {', '.join(evicting)}: it would evict pots, "
            "ledgers and idempotency records when full; set maxmemory-policy noeviction"
        )

    async def refresh_gauges(self) -> None:
        """Values read at scrape time: pot values of the configured instances, the state
        Redis's memory, queue depths."""
        config = await self.config.get()
        states = await self.store.states(sorted(config.instances))
        for instance_id, state in states.items():
            for pot in config.instances[instance_id]["pots"]:
                raw = state.get(f"pot:{pot['id']}:value")
                if raw is not None:  # exposition only: a float is what Prometheus reads
                    value = float(from_micros(int(raw)))
                    self.metrics.pot_value.labels(instance_id, pot["id"]).set(value)
        nodes = await self.store.memory()
        if nodes:
            self.metrics.redis_memory_used.set(sum(node.used_bytes for node in nodes))
            limits = [node.max_bytes for node in nodes]
            self.metrics.redis_memory_max.set(0 if 0 in limits else sum(limits))
        queue = self.contributions.queue
        if queue is not None:
            for name in (CONTRIBUTION_QUEUE, CALLBACK_QUEUE):
                depth = await asyncio.to_thread(queue_length, queue.connection, name)
                self.metrics.queue_depth.labels(name).set(depth)
            for name, count in (await self.dead_letters.counts()).items():
                self.metrics.dead_letters.labels(name).set(count)

    async def close(self) -> None:
        self.replayer.close()
        await self.events.stop()
        await self.store.close()
