"""The admin service: every part's operations, and a whole definitions file (CLI `load`)
validated against the configuration it would make, then written."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from app.core.refusals import Code, Refused
from app.core.security import Principal, verify_password
from app.schemas.admin import CurrenciesSchema, SourceSchema
from app.services.admin.accounts import AccountAdmin, account_view
from app.services.admin.currencies import CurrencyAdmin
from app.services.admin.instances import InstanceAdmin
from app.services.admin.operators import OperatorAdmin, operator_record
from app.services.admin.references import (
    check_currencies_references,
    check_instance_references,
    check_source_references,
    invalid_reference,
)
from app.services.admin.sources import SourceAdmin
from app.services.audit import CLI_ACTOR
from app.services.canonical import from_storage, same_meaning, to_storage
from app.services.config import ConfigSnapshot

PasswordLookup = Callable[[str], str | None]


@dataclass
class Plan:
    """What a definitions file would change, checked before anything is written."""

    operators: list[dict[str, Any]] = field(default_factory=list)
    currencies: dict[str, Any] | None = None
    accounts: list[dict[str, Any]] = field(default_factory=list)
    instances: list[dict[str, Any]] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)


class AdminService(OperatorAdmin, CurrencyAdmin, SourceAdmin, AccountAdmin, InstanceAdmin):
    """Jackpot managers' operations (admin API and CLI)."""

    async def apply(
        self, definitions: dict[str, Any], passwords: PasswordLookup, *, by: Principal = CLI_ACTOR
    ) -> dict[str, Any]:
        """Validate everything, then write; a second identical apply changes nothing."""
        config = await self._config.get()
        plan = await self._plan(definitions, passwords, config)
        summary: dict[str, dict[str, int]] = {}

        def count(kind: str, changed: bool | str) -> None:
            outcome = (
                changed if isinstance(changed, str) else ("changed" if changed else "unchanged")
            )
            summary.setdefault(kind, {}).setdefault(outcome, 0)
            summary[kind][outcome] += 1

        changed_any = False
        known = (await self._config.get()).operators
        for operator in plan.operators:
            # A file without a secret keeps the one set by rotation (secrets are write-only).
            secret = operator.get("callback_secret") or known.get(operator["id"], {}).get(
                "callback_secret"
            )
            record = {**operator_record(operator), "callback_secret": secret}
            changed = await self._write_operator(record, by)
            count("operators", changed)
            changed_any |= changed
        if plan.currencies is not None:
            merged = replace(config, operators=await self._store.operators())
            changed = await self._write_currencies(
                CurrenciesSchema().dump(plan.currencies), by, merged
            )
            count("currencies", changed)
            changed_any |= changed
        for account in plan.accounts:
            count("accounts", await self._ensure_account(account, by))
        if changed_any:
            await self._changed()
        for definition in plan.instances:
            _, created = await self._write_instance(definition, by)
            count("instances", "created" if created else "unchanged")
        changed_any = False
        for source in plan.sources:
            changed = await self._write_source(SourceSchema().dump(source), by)
            count("sources", changed)
            changed_any |= changed
        if changed_any:
            await self._changed()
        return summary

    async def _plan(
        self, definitions: dict[str, Any], passwords: PasswordLookup, config: ConfigSnapshot
    ) -> Plan:
        plan = Plan(
            operators=definitions["operators"],
            currencies=definitions["currencies"],
            instances=definitions["instances"],
            sources=definitions["sources"],
        )
        operators = {**config.operators, **{op["id"]: op for op in plan.operators}}
        merged = replace(config, operators=operators)
        if plan.currencies is not None:
            merged = replace(merged, currencies=CurrenciesSchema().dump(plan.currencies))
        for account in definitions["accounts"]:
            where = f"accounts.{account['username']}"
            if account["operator_id"] not in operators:
                raise invalid_reference(where, f"Operator {account['operator_id']} does not exist.")
            password = passwords(account["password_env"])
            if not password:
                raise invalid_reference(
                    where, f"Environment variable {account['password_env']} is not set."
                )
            plan.accounts.append({**account, "password": password})
        new_ids = [definition.get("id") for definition in plan.instances]
        if None in new_ids:
            raise invalid_reference("instances", "Every instance in a file needs an id.")
        if len(set(new_ids)) != len(new_ids):
            raise invalid_reference("instances", "Instance ids must be unique.")
        existing = await self._store.definitions(list(new_ids))  # type: ignore[arg-type]
        instances = {**config.instances}
        for definition in plan.instances:
            stored = existing.get(definition["id"])
            if stored is not None and not same_meaning(stored, definition):
                raise Refused(
                    Code.INSTANCE_EXISTS,
                    f"Instance {definition['id']} exists with another definition.",
                )
            instances[definition["id"]] = from_storage(to_storage(definition))
        merged = replace(merged, instances=instances)
        if plan.currencies is not None:
            check_currencies_references(plan.currencies, merged)
        for definition in plan.instances:
            check_instance_references(definition, merged)
        for source in plan.sources:
            check_source_references(source, merged)
        return plan

    async def _ensure_account(self, account: dict[str, Any], by: Principal) -> str:
        existing = await self._store.account(account["username"])
        if existing is not None:
            same = existing["operator_id"] == account["operator_id"] and existing[
                "roles"
            ] == sorted(set(account["roles"]))
            if same and await asyncio.to_thread(
                verify_password, existing["password_hash"], account["password"]
            ):
                return "unchanged"
        written = await self._write_account(
            account["username"], account["password"], account["operator_id"], account["roles"]
        )
        await self.audit.record(
            by,
            "account.create" if existing is None else "account.put",
            account["username"],
            before=None if existing is None else account_view(existing),
            after=written,
            operators={account["operator_id"], *([existing["operator_id"]] if existing else [])},
        )
        if existing is None:
            return "created"
        await self._revoke(account["username"])
        return "changed"


def environment_passwords(env: Mapping[str, str]) -> PasswordLookup:
    return env.get
