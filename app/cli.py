"""The `jackpot-gateway` command: serve, worker, scheduler, dev, load, create-account."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

import yaml
from marshmallow import ValidationError
from redis.exceptions import RedisError

from app.config import ConfigError, Settings
from app.refusals import Refused
from app.schemas.admin import DefinitionsSchema
from app.security import ROLES
from app.services import Services
from app.services.admin import environment_passwords


def read_definitions(path: Path) -> dict[str, Any]:
    text = path.read_text()
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a mapping of definitions")
    loaded: dict[str, Any] = DefinitionsSchema().load(data)
    return loaded


async def load_file(services: Services, path: Path) -> dict[str, Any]:
    return await services.admin.apply(read_definitions(path), environment_passwords(os.environ))


def _fail(message: str, code: int = 1) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


async def _with_services(settings: Settings, work: Any) -> Any:
    services = Services.create(settings)
    try:
        return await work(services)
    finally:
        await services.close()


def cmd_load(args: argparse.Namespace, settings: Settings) -> int:
    try:
        summary = asyncio.run(_with_services(settings, lambda s: load_file(s, Path(args.file))))
    except ValidationError as error:
        return _fail(f"{args.file} is invalid: {json.dumps(error.messages, default=str)}")
    except RedisError as error:  # e.g. Redis unreachable: one line, not a traceback
        return _fail(f"Redis failed: {error}")
    except yaml.YAMLError as error:  # PyYAML's messages span several lines
        return _fail(f"{args.file} is not valid YAML: {' '.join(str(error).split())}")
    except (OSError, ValueError) as error:
        return _fail(str(error))
    except Refused as error:
        return _fail(f"{error.message} {json.dumps(error.details) if error.details else ''}")
    for kind, outcomes in summary.items():
        print(f"{kind}: " + ", ".join(f"{n} {what}" for what, n in sorted(outcomes.items())))
    return 0


def cmd_create_account(args: argparse.Namespace, settings: Settings) -> int:
    if args.password_env:
        password = os.environ.get(args.password_env, "")
        if not password:
            return _fail(f"environment variable {args.password_env} is not set")
    else:
        password = getpass.getpass(f"Password for {args.username}: ")
    if len(password) < 12:
        return _fail("the password must have at least 12 characters")

    async def create(services: Services) -> dict[str, Any]:
        return await services.admin.create_account(
            args.username, password, args.operator, args.role or ["operator"]
        )

    try:
        account = asyncio.run(_with_services(settings, create))
    except Refused as error:
        return _fail(error.message)
    except RedisError as error:
        return _fail(f"Redis failed: {error}")
    roles = ", ".join(account["roles"])
    print(f"created {account['username']} for {account['operator_id']} ({roles})")
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from app import create_app
    from app.server import serve

    asyncio.run(serve(create_app(settings), settings))
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from workers.main import run_worker

    run_worker(settings)
    return 0


def cmd_scheduler(args: argparse.Namespace, settings: Settings) -> int:
    from schedulers.main import run_scheduler

    asyncio.run(run_scheduler(Services.create(settings)))
    return 0


def cmd_dev(args: argparse.Namespace, settings: Settings | None) -> int:
    from app.dev import run_dev

    return run_dev(port=args.port, demo=not args.no_demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jackpot-gateway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve the REST API and the websocket (Hypercorn)")
    commands.add_parser("worker", help="run an RQ worker (async contributions, callbacks)")
    commands.add_parser("scheduler", help="run the scheduler (lifecycle, raffle draws)")
    dev = commands.add_parser("dev", help="all processes in one, embedded store, demo data")
    dev.add_argument("--port", type=int, default=None, help="HTTP port (default: PORT or 8000)")
    dev.add_argument("--no-demo", action="store_true", help="do not load the demo definitions")
    load = commands.add_parser("load", help="load definitions from a YAML or JSON file")
    load.add_argument("file")
    account = commands.add_parser("create-account", help="create a service account")
    account.add_argument("--username", required=True)
    account.add_argument("--operator", required=True)
    account.add_argument("--role", action="append", choices=ROLES)
    account.add_argument("--password-env", help="read the password from this variable")
    return parser


HANDLERS = {
    "serve": cmd_serve,
    "worker": cmd_worker,
    "scheduler": cmd_scheduler,
    "load": cmd_load,
    "create-account": cmd_create_account,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "dev":
        return cmd_dev(args, None)
    try:
        settings = Settings.from_env()
    except ConfigError as error:
        return _fail(str(error), code=2)
    return HANDLERS[args.command](args, settings)


if __name__ == "__main__":
    sys.exit(main())
