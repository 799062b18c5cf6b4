"""Prometheus metrics (prometheus-client).

With `PROMETHEUS_MULTIPROC_DIR` set (several web workers: `serve` sets it itself), every
process writes its values to files there and `/metrics` adds them up across processes
(prometheus-client's multiprocess mode); without it, values live in this process's registry.
The variable must be set before the process starts: prometheus-client reads it on import.
"""

from __future__ import annotations

import os
from functools import cache

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

disable_created_metrics()  # no *_created series: they double the output and say little

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# Labelled with instance ids (and pot values): every operator's business, so shown only to a
# scrape that bears METRICS_TOKEN. The rest names no operator.
PER_INSTANCE = frozenset({"jg_contributions", "jg_wins", "jg_pot_value"})


class _Without(Collector):
    """What `source` collects but the metric families named in `names`."""

    def __init__(self, source: Collector, names: frozenset[str]) -> None:
        self._source = source
        self._names = names

    def collect(self) -> list[Metric]:
        return [metric for metric in self._source.collect() if metric.name not in self._names]


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Metrics:
    def __init__(self) -> None:
        # In multiprocess mode values go to files, not to a registry.
        self.registry = None if multiprocess_dir() else CollectorRegistry()
        registry = self.registry
        self.http_requests = Counter(
            "jg_http_requests",
            "HTTP requests by route and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.http_seconds = Histogram(
            "jg_http_request_seconds",
            "HTTP request latency by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.contributions = Counter(
            "jg_contributions",
            "Contributions applied, by instance.",
            ["instance"],
            registry=registry,
        )
        self.wins = Counter(
            "jg_wins",
            "Wins by instance; withheld: above the auto-payout limit.",
            ["instance", "withheld"],
            registry=registry,
        )
        self.pot_value = Gauge(
            "jg_pot_value",
            "A pot's current value, in units of its instance's currency (read at scrape).",
            ["instance", "pot"],
            multiprocess_mode="mostrecent",
            registry=registry,
        )
        self.open_websockets = Gauge(
            "jg_open_websockets",
            "Open event-stream websockets.",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.callbacks = Counter(
            "jg_callback_deliveries",
            "Callback delivery attempts by outcome (delivered, failed).",
            ["outcome"],
            registry=registry,
        )
        self.queue_depth = Gauge(
            "jg_queue_depth",
            "Jobs waiting in an RQ queue (read at scrape).",
            ["queue"],
            multiprocess_mode="mostrecent",
            registry=registry,
        )
        self.redis_memory_used = Gauge(
            "jg_redis_memory_used_bytes",
            "Memory the state Redis uses, all primaries together (read at scrape).",
            multiprocess_mode="mostrecent",
            registry=registry,
        )
        self.redis_memory_max = Gauge(
            "jg_redis_memory_max_bytes",
            "The state Redis's maxmemory, all primaries added up; 0: a node has none (at scrape).",
            multiprocess_mode="mostrecent",
            registry=registry,
        )
        self.draw_delay = Histogram(
            "jg_raffle_draw_delay_seconds",
            "How late a scheduled raffle draw ran after its round's end.",
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900),
            registry=registry,
        )
        self.dead_letters = Gauge(
            "jg_dead_letters",
            "Jobs of an RQ queue that could not run, waiting to be replayed (read at scrape).",
            ["queue"],
            multiprocess_mode="mostrecent",
            registry=registry,
        )
        self.store_errors = Counter(
            "jg_store_errors",
            "Store failures by kind (unavailable, outcome_unknown).",
            ["kind"],
            registry=registry,
        )

    def render(self, *, per_instance: bool = True) -> bytes:
        """The exposition text; without the PER_INSTANCE families unless `per_instance`."""
        path = multiprocess_dir()
        if path is None:
            assert self.registry is not None
            registry = self.registry
        else:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=path)
        return generate_latest(registry if per_instance else _Without(registry, PER_INSTANCE))


@cache
def _process_metrics() -> Metrics:
    return Metrics()


def new_metrics() -> Metrics:
    """Metrics for one set of services: its own registry, or in multiprocess mode this
    process's one set (two sets writing the same files would overwrite each other)."""
    return _process_metrics() if multiprocess_dir() else Metrics()
