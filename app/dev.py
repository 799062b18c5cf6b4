"""`jackpot-gateway dev`: web, worker and scheduler in one process on an embedded store."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import replace
from pathlib import Path

from app.core.config import Settings, port_busy
from app.core.logs import configure_logging
from app.store.embedded import EmbeddedRedis

DEMO_PASSWORD = "demo-password-123"
RIVAL_PASSWORD = "rival-password-123"
PLATFORM_PASSWORD = "platform-password-123"
DEV_CALLBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def demo_file() -> Path:
    checkout = Path(__file__).resolve().parents[1] / "examples" / "demo.yaml"
    if checkout.is_file():
        return checkout
    from importlib import resources

    return Path(str(resources.files("app") / "_examples" / "demo.yaml"))


async def _run(settings: Settings, demo: bool, store_name: str) -> None:
    from app.edge.server import serve
    from app.edge.web import create_app
    from app.services import Services
    from app.services.definitions import load_file
    from schedulers.main import start_scheduler
    from workers.jobs import configure as configure_jobs
    from workers.main import start_worker_thread

    services = Services.create(settings)
    if demo:
        await load_file(services.admin, demo_file())
    app = create_app(settings, services)
    # Jobs of the in-process worker run on this loop, with these services.
    configure_jobs(services, asyncio.get_running_loop())
    scheduler = start_scheduler(services)
    stop_worker = start_worker_thread(settings)
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    base = f"http://{host}:{settings.port}"
    print(
        f"Jackpot Gateway dev server on {base}  (store: {store_name})\n"
        f"  health     {base}/health\n"
        f"  login      POST {base}/authenticate/service\n"
        f"  demo       username demo-service  password {os.environ['DEMO_SERVICE_PASSWORD']}"
        "  (operator demo, roles operator+admin)\n"
        f"  platform   username platform-admin  password {os.environ['PLATFORM_ADMIN_PASSWORD']}"
        "  (operator provider, role platform: every operator)\n"
        "  Ctrl-C stops everything.",
        flush=True,
    )
    try:
        await serve(app, settings)
    finally:
        scheduler.shutdown(wait=False)
        stop_worker.set()
        await services.close()


def run_dev(port: int | None = None, demo: bool = True) -> int:
    os.environ.setdefault("DEMO_SERVICE_PASSWORD", DEMO_PASSWORD)
    os.environ.setdefault("RIVAL_SERVICE_PASSWORD", RIVAL_PASSWORD)
    os.environ.setdefault("PLATFORM_ADMIN_PASSWORD", PLATFORM_PASSWORD)
    settings = Settings.from_env(dev_mode=True)
    settings = replace(settings, port=settings.port if port is None else port)
    busy = port_busy(settings.host, settings.port)
    if busy:
        print(f"error: {busy}", file=sys.stderr)
        return 1
    embedded = EmbeddedRedis.start_if_available()
    try:
        configure_logging("dev", json_lines=settings.log_json, level=settings.log_level)
        url = embedded.url if embedded else "memory://dev"
        settings = replace(
            settings,
            redis_url=url,
            queue_redis_url=url,
            redis_cluster=False,
            # Dev callbacks usually go to a receiver on this machine.
            callback_allowlist=settings.callback_allowlist or DEV_CALLBACK_HOSTS,
        )
        store_name = f"private redis-server on port {embedded.port}" if embedded else "fakeredis"
        asyncio.run(_run(settings, demo, store_name))
    except KeyboardInterrupt:
        pass
    finally:
        if embedded:
            embedded.stop()
    print("stopped", file=sys.stderr)
    return 0
