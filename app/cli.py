"""The `jackpot-gateway` command: serve, worker, scheduler, dev, load, create-account, draw,
mint-display-token."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from datetime import date
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import yaml
from marshmallow import ValidationError

from app.core import jsonio
from app.core.config import DISPLAY_TTL_MIN_S, ConfigError, Settings, port_busy
from app.core.logs import configure_logging
from app.core.money import MoneyError, format_amount, to_decimal
from app.core.refusals import Code, Refused
from app.core.security import ROLES, Principal
from app.services import Services
from app.services.audit import CLI_ACTOR
from app.services.definitions import load_file, read_definitions
from app.services.ledger import ArchiveError
from app.services.treasury import is_whole_days, meter_report_csv, utc_day
from app.store.errors import BackendError
from app.triggers import TriggerRegistryError

__all__ = ["main", "read_definitions"]


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
        summary = asyncio.run(
            _with_services(settings, lambda s: load_file(s.admin, Path(args.file)))
        )
    except ValidationError as error:
        return _fail(f"{args.file} is invalid: {json.dumps(error.messages, default=str)}")
    except BackendError as error:  # e.g. Redis unreachable: one line, not a traceback
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
    except BackendError as error:
        return _fail(f"Redis failed: {error}")
    roles = ", ".join(account["roles"])
    print(f"created {account['username']} for {account['operator_id']} ({roles})")
    return 0


def cmd_mint_display_token(args: argparse.Namespace, settings: Settings) -> int:
    """Print a display token for a lobby screen as JSON (what POST /authenticate/display
    answers), minted for a service account: deleting the account revokes it."""

    if args.ttl_seconds is not None and args.ttl_seconds < DISPLAY_TTL_MIN_S:
        return _fail(f"--ttl-seconds must be at least {DISPLAY_TTL_MIN_S}")

    async def mint(services: Services) -> dict[str, Any]:
        account = await services.store.account(args.account)
        if account is None:
            raise Refused(Code.ACCOUNT_NOT_FOUND, f"Account {args.account} does not exist.")
        caller = Principal(args.account, account["operator_id"], tuple(account["roles"]))
        return await services.auth.mint_display(caller, args.brand, args.ttl_seconds)

    minted, status = _admin(settings, mint)
    if status == 0:
        print(json.dumps(minted, sort_keys=True))
    return status


def _admin(settings: Settings, work: Any) -> tuple[Any, int]:
    """Run one admin operation; (result, 0) or (None, exit status) with the error printed."""
    try:
        return asyncio.run(_with_services(settings, work)), 0
    except Refused as error:
        details = f" {json.dumps(error.details)}" if error.details else ""
        return None, _fail(error.message + details)
    except BackendError as error:
        return None, _fail(f"Redis failed: {error}")
    except ArchiveError as error:
        return None, _fail(str(error))


def _json_lines(settings: Settings, work: Any) -> int:
    """Run one admin listing and print its records one JSON object per line."""
    records, status = _admin(settings, work)
    for record in records or []:
        print(json.dumps(record, sort_keys=True))
    return status


def cmd_delete_account(args: argparse.Namespace, settings: Settings) -> int:
    _, status = _admin(settings, lambda s: s.admin.delete_account(args.username))
    if status == 0:
        print(f"deleted {args.username}; its tokens are revoked")
    return status


def cmd_set_roles(args: argparse.Namespace, settings: Settings) -> int:
    account, status = _admin(settings, lambda s: s.admin.set_roles(args.username, args.role))
    if status == 0:
        print(f"{account['username']}: {', '.join(account['roles'])}; older tokens are revoked")
    return status


def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    """One JSON object per line, oldest first."""
    return _json_lines(
        settings, lambda s: s.admin.audit.page(args.operator, args.after, args.count)
    )


def cmd_boost(args: argparse.Namespace, settings: Settings) -> int:
    try:
        amount = to_decimal(args.amount)
    except MoneyError as error:
        return _fail(f"--amount: {error}")

    async def run(services: Services) -> Any:
        return await services.treasury.boost(
            CLI_ACTOR,
            args.instance,
            pot_id=args.pot,
            amount=amount,
            target=args.to,
            boost_id=args.boost_id,
        )

    result, status = _admin(settings, run)
    if status == 0:
        done, created = result
        print(
            f"{'boosted' if created else 'already applied'} {done['boost_id']}: "
            f"{done['instance_id']}/{done['pot_id']} value +{format_amount(done['to_value'])}, "
            f"reserve +{format_amount(done['to_reserve'])}"
        )
    return status


def cmd_reconcile(args: argparse.Namespace, settings: Settings) -> int:
    """The report as JSON; exit status 3 when the books do not balance."""
    report, status = _admin(settings, lambda s: s.treasury.reconciliation(CLI_ACTOR, args.instance))
    if status != 0:
        return status
    print(jsonio.dumps(report))
    return 0 if report["balanced"] else 3


def cmd_meter_report(args: argparse.Namespace, settings: Settings) -> int:
    """The meter report as CSV, to --output or stdout."""
    try:
        day = None if args.date is None else date.fromisoformat(args.date)
    except ValueError:
        return _fail(f"--date must be YYYY-MM-DD, got {args.date!r}")
    if (args.start is None) != (args.end is None) or (day and args.start is not None):
        return _fail("give --date, or both --from and --to (epoch ms)")
    period = utc_day(day) if args.start is None else (args.start, args.end)
    if period[0] >= period[1]:
        return _fail("--from must be before --to")
    if not is_whole_days(*period):
        return _fail("--from and --to must be at midnight UTC (the meters count whole UTC days)")
    report, status = _admin(
        settings, lambda s: s.treasury.meter_report(CLI_ACTOR, args.instance, period)
    )
    if status != 0:
        return status
    text = meter_report_csv(report)
    if args.output:
        Path(args.output).write_text(text, newline="")
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_backfill_meters(args: argparse.Namespace, settings: Settings) -> int:
    """Backfill an instance's meter counters from its ledger, once (JSON)."""
    report, status = _admin(
        settings, lambda s: s.treasury.backfill_meters(CLI_ACTOR, args.instance)
    )
    if status != 0:
        return status
    print(jsonio.dumps(report))
    return 0


def cmd_failed_callbacks(args: argparse.Namespace, settings: Settings) -> int:
    """One JSON object per line, oldest first."""
    return _json_lines(settings, lambda s: s.deliveries.failed(args.operator))


def cmd_redeliver(args: argparse.Namespace, settings: Settings) -> int:
    if (args.delivery is None) == (not args.all):
        return _fail("give --delivery ID or --all")

    async def run(services: Services) -> list[str]:
        if args.all:
            return await services.deliveries.redeliver_all(CLI_ACTOR, args.operator)
        await services.deliveries.redeliver(CLI_ACTOR, args.operator, args.delivery)
        return [args.delivery]

    redelivered, status = _admin(settings, run)
    for delivery_id in redelivered or []:
        print(f"queued {delivery_id}")
    return status


def cmd_dead_letters(args: argparse.Namespace, settings: Settings) -> int:
    """One JSON object per line, oldest first."""
    return _json_lines(settings, lambda s: s.dead_letters.listed(args.operator))


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    if (args.job is None) == (not args.all):
        return _fail("give --job ID or --all")

    async def run(services: Services) -> list[str]:
        if args.all:
            return await services.dead_letters.replay_all(CLI_ACTOR, args.operator)
        await services.dead_letters.replay(CLI_ACTOR, args.operator, args.job)
        return [args.job]

    replayed, status = _admin(settings, run)
    for job_id in replayed or []:
        print(f"queued {job_id}")
    return status


def cmd_draw(args: argparse.Namespace, settings: Settings) -> int:
    async def draw(services: Services) -> dict[str, Any] | None:
        return await services.raffles.draw(args.instance, "cli")

    try:
        record = asyncio.run(_with_services(settings, draw))
    except Refused as error:
        return _fail(f"{error.code.value}: {error.message}")
    except BackendError as error:
        return _fail(f"Redis failed: {error}")
    print(json.dumps(record, indent=2))
    return 0


def cmd_withheld_wins(args: argparse.Namespace, settings: Settings) -> int:
    """One JSON object per line, oldest first."""
    page, status = _admin(
        settings,
        lambda s: s.treasury.withheld_wins(
            CLI_ACTOR, args.operator, instance_id=args.instance, limit=1000
        ),
    )
    for win in (page or {}).get("wins", []):
        print(jsonio.dumps(win))
    return status


def cmd_decide_win(args: argparse.Namespace, settings: Settings) -> int:
    approve = args.command == "approve-win"
    if not approve and not args.reason:
        return _fail("a rejection needs --reason")
    win, status = _admin(
        settings,
        lambda s: s.treasury.decide_win(
            CLI_ACTOR, args.instance, args.win, approve=approve, reason=args.reason or ""
        ),
    )
    if status == 0:
        print(f"{win['decision']} {win['win_id']}: {format_amount(win['win_amount'])}")
    return status


def cmd_ledger(args: argparse.Namespace, settings: Settings) -> int:
    """`ledger verify`: one JSON report per instance, exit status 3 when any has a problem;
    `ledger archive --now`: one JSON summary per instance."""
    if args.ledger_command == "verify":
        if args.day is not None:
            try:
                date.fromisoformat(args.day)
            except ValueError:
                return _fail(f"--day must be YYYY-MM-DD, got {args.day!r}")
        reports, status = _admin(settings, lambda s: s.ledger.verify(args.instance, args.day))
        for report in reports or []:
            print(jsonio.dumps(report))
        if status == 0 and any(not report["ok"] for report in reports):
            return 3
        return status
    if not args.now:
        return _fail("ledger archive runs only with --now (the scheduler runs it on its own)")

    async def archive(services: Services) -> list[dict[str, Any]]:
        if services.ledger.archive is None:
            raise ArchiveError("LEDGER_ARCHIVE_URL is not set: there is no archive to write")
        if args.instance:
            return [await services.ledger.run(args.instance)]
        return await services.ledger.run_all()

    summaries, status = _admin(settings, archive)
    for summary in summaries or []:
        print(jsonio.dumps(summary))
    if status == 0 and any("error" in summary for summary in summaries):
        return 1
    return status


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from app.edge.server import run, serve, serve_workers
    from app.edge.web import create_app

    busy = port_busy(settings.host, settings.port)
    if busy:
        return _fail(busy)
    if settings.web_workers > 1:
        return serve_workers(settings)
    run(serve(create_app(settings), settings))
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from workers.main import run_worker

    return run_worker(settings)


def cmd_scheduler(args: argparse.Namespace, settings: Settings) -> int:
    from schedulers.main import run_scheduler

    asyncio.run(run_scheduler(Services.create(settings)))
    return 0


def cmd_dev(args: argparse.Namespace, settings: Settings | None) -> int:
    from app.dev import run_dev

    return run_dev(port=args.port, demo=not args.no_demo)


def package_version() -> str:
    try:
        return version("jackpot-gateway")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jackpot-gateway", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str) -> argparse.ArgumentParser:
        """A subcommand whose one-sentence summary shows in both listings and its own --help."""
        return commands.add_parser(
            name, help=summary, description=summary[0].upper() + summary[1:] + "."
        )

    command("serve", "serve the REST API and the /events websocket with Hypercorn (HOST, PORT)")
    command("worker", "run an RQ worker: asynchronous contributions and callback deliveries")
    command("scheduler", "run the scheduler: instance activations and ends, raffle draws")
    dev = command("dev", "web, worker and scheduler in one process on an embedded store, demo data")
    dev.add_argument("--port", type=int, default=None, help="HTTP port (default: PORT or 8000)")
    dev.add_argument("--no-demo", action="store_true", help="start without the demo definitions")
    load = command("load", "load definitions (operators, accounts, currencies, sources, instances)")
    load.add_argument("file", help="a YAML or JSON definition file, e.g. examples/demo.yaml")
    draw = command("draw", "draw a raffle's ended round now")
    draw.add_argument("instance", help="the raffle instance id")
    account = command("create-account", "create a service account")
    account.add_argument("--username", required=True, help="the account's login name")
    account.add_argument("--operator", required=True, help="the operator id it acts for")
    account.add_argument(
        "--role",
        action="append",
        choices=ROLES,
        help="a role (repeat for several; default operator)",
    )
    account.add_argument(
        "--password-env", help="read the password from this variable (default: a prompt)"
    )
    display = command(
        "mint-display-token",
        "mint a read-only display token for a lobby screen (prints JSON: token, expires_in)",
    )
    display.add_argument(
        "--account", required=True, help="the service account it is minted for (its operator)"
    )
    display.add_argument(
        "--brand",
        action="append",
        required=True,
        help="a brand whose instances the screen shows (repeat for several)",
    )
    display.add_argument(
        "--ttl-seconds",
        type=int,
        help="lifetime in seconds (default DISPLAY_TOKEN_TTL_SECONDS, at most the MAX)",
    )
    delete = command("delete-account", "delete an account and revoke its tokens")
    delete.add_argument("--username", required=True, help="the account to delete")
    roles = command("set-roles", "change an account's roles and revoke its older tokens")
    roles.add_argument("--username", required=True, help="the account to change")
    roles.add_argument(
        "--role", action="append", choices=ROLES, required=True, help="a role (repeat for several)"
    )
    boost = command("boost", "seed boost: add operator money to a pot's value or reserve")
    boost.add_argument("--instance", required=True, help="the instance id")
    boost.add_argument("--pot", required=True, help="the pot id")
    boost.add_argument("--amount", required=True, help="in the instance currency, e.g. 250.00")
    boost.add_argument(
        "--to", choices=("reserve", "value"), default="reserve", help="where (default: reserve)"
    )
    boost.add_argument("--boost-id", help="retry-safe id: a repeated id applies once")
    reconcile = command("reconcile", "replay an instance's ledger against its live state (JSON)")
    reconcile.add_argument("--instance", required=True, help="the instance id")
    meters = command("meter-report", "an instance's meter report for a period (CSV)")
    meters.add_argument("--instance", required=True, help="the instance id")
    meters.add_argument("--date", help="UTC day YYYY-MM-DD (default: today)")
    meters.add_argument(
        "--from", dest="start", type=int, help="period start, epoch ms at midnight UTC"
    )
    meters.add_argument(
        "--to", dest="end", type=int, help="period end (excluded), epoch ms at midnight UTC"
    )
    meters.add_argument("--output", help="file to write (default: stdout)")
    backfill = command(
        "backfill-meters",
        "add the ledger written before the meter counters existed to them (once per instance)",
    )
    backfill.add_argument("--instance", required=True, help="the instance id")
    failed = command("failed-callbacks", "list an operator's callbacks that exhausted retries")
    failed.add_argument("--operator", required=True, help="the operator id")
    redeliver = command("redeliver", "queue failed callbacks again")
    redeliver.add_argument("--operator", required=True, help="the operator id")
    redeliver.add_argument("--delivery", help="one delivery id")
    redeliver.add_argument("--all", action="store_true", help="every failed delivery")
    dead = command("dead-letters", "list an operator's queued jobs that could not run")
    dead.add_argument("--operator", required=True, help="the operator id")
    replay = command("replay", "queue an operator's dead letters again")
    replay.add_argument("--operator", required=True, help="the operator id")
    replay.add_argument("--job", help="one job id")
    replay.add_argument("--all", action="store_true", help="every dead letter")
    withheld = command("withheld-wins", "list wins waiting for a manager's decision")
    withheld.add_argument("--operator", required=True, help="the operator id")
    withheld.add_argument("--instance", help="only this instance")
    for verb in ("approve", "reject"):
        decide = command(f"{verb}-win", f"{verb} a withheld win")
        decide.add_argument("--instance", required=True, help="the instance id")
        decide.add_argument("--win", required=True, help="the win id")
        decide.add_argument("--reason", help="why (required to reject; kept in the audit trail)")
    ledger = command("ledger", "the ledger archive: verify it, or archive the due days now")
    ledger_commands = ledger.add_subparsers(
        dest="ledger_command", required=True, metavar="ACTION", help="verify or archive"
    )
    verify = ledger_commands.add_parser(
        "verify",
        help="check the archive against its manifests, and archive + live against the state",
        description="Re-hash, recount and re-sum every archived day against its manifest, "
        "replay each day from its opening to its closing figures, and check that the archive "
        "plus the live ledger add up to the live state (money conservation).",
    )
    verify.add_argument("--instance", help="only this instance (default: every one)")
    verify.add_argument("--day", help="only this UTC day, YYYY-MM-DD (no live comparison)")
    run = ledger_commands.add_parser(
        "archive",
        help="checkpoint, archive and trim the days past their retention now",
        description="Run the scheduler's ledger job now: checkpoint each instance's books, "
        "export each closed day past LEDGER_RETENTION_DAYS, verify it and trim it from Redis.",
    )
    run.add_argument("--now", action="store_true", help="run it now (required)")
    run.add_argument("--instance", help="only this instance (default: every one)")
    audit = command("audit", "print an operator's audit trail (JSON lines, oldest first)")
    audit.add_argument("--operator", required=True, help="the operator id")
    audit.add_argument("--after", default="-", help="entry id to start after (default: the start)")
    audit.add_argument("--count", type=int, default=100, help="entries to print (default: 100)")
    return parser


HANDLERS = {
    "serve": cmd_serve,
    "worker": cmd_worker,
    "scheduler": cmd_scheduler,
    "load": cmd_load,
    "create-account": cmd_create_account,
    "mint-display-token": cmd_mint_display_token,
    "delete-account": cmd_delete_account,
    "set-roles": cmd_set_roles,
    "audit": cmd_audit,
    "boost": cmd_boost,
    "reconcile": cmd_reconcile,
    "ledger": cmd_ledger,
    "meter-report": cmd_meter_report,
    "backfill-meters": cmd_backfill_meters,
    "failed-callbacks": cmd_failed_callbacks,
    "redeliver": cmd_redeliver,
    "dead-letters": cmd_dead_letters,
    "replay": cmd_replay,
    "draw": cmd_draw,
    "withheld-wins": cmd_withheld_wins,
    "approve-win": cmd_decide_win,
    "reject-win": cmd_decide_win,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "dev":
        return cmd_dev(args, None)
    try:
        settings = Settings.from_env()
    except ConfigError as error:
        return _fail(str(error), code=2)
    try:
        if args.command in ("serve", "worker", "scheduler"):
            configure_logging(args.command, json_lines=settings.log_json, level=settings.log_level)
            risk = asyncio.run(_with_services(settings, lambda s: s.eviction_risk()))
            if risk:
                return _fail(f"refusing to start: {risk}")
        return HANDLERS[args.command](args, settings)
    except ArchiveError as error:  # e.g. an s3:// archive without s3fs installed
        return _fail(str(error), code=2)
    except TriggerRegistryError as error:  # a trigger type without its Lua half, or the reverse
        return _fail(f"refusing to start: {error}", code=2)


if __name__ == "__main__":
    sys.exit(main())
