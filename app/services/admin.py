"""Jackpot managers' operations: operators, accounts, currencies, sources, instances.

Every write is validated against the whole configuration first (schema rules, then cross
references), so bad input changes nothing. Each successful change bumps the configuration
version, which tells every process to refresh its cache.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from app.clock import now_ms
from app.money import format_amount, from_micros
from app.refusals import Code, Refused
from app.schemas.admin import (
    CurrenciesSchema,
    SourceSchema,
)
from app.security import PLATFORM, Principal, hash_password, verify_password
from app.services.audit import CLI_ACTOR, AuditTrail, brand_operators
from app.services.canonical import from_storage, same_meaning, to_storage
from app.services.config import ConfigCache, ConfigSnapshot
from app.services.draws import round_view
from app.services.engine import compile_engine
from app.services.raffles import RaffleService
from app.services.scope import admin_instance, check_brands, check_operator, managed_instance
from app.store import ScriptRefusal, Store
from app.triggers import initial_state

PasswordLookup = Callable[[str], str | None]
ACCOUNT_VIEW = ("username", "operator_id", "roles")


def account_view(account: dict[str, Any]) -> dict[str, Any]:
    """An account without its password hash."""
    return {key: account[key] for key in ACCOUNT_VIEW}


def invalid_reference(where: str, message: str) -> Refused:
    return Refused(Code.INVALID_REFERENCE, message, {where: [message]})


def platform_required(message: str) -> Refused:
    return Refused(Code.PLATFORM_REQUIRED, message)


@dataclass
class Plan:
    """What a definitions file would change, checked before anything is written."""

    operators: list[dict[str, Any]] = field(default_factory=list)
    currencies: dict[str, Any] | None = None
    accounts: list[dict[str, Any]] = field(default_factory=list)
    instances: list[dict[str, Any]] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)


class AdminService:
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

    # -- reference checks against a (possibly not yet written) configuration ----------
    @staticmethod
    def _check_brands(where: str, brands: list[str], config: ConfigSnapshot) -> None:
        for brand in brands:
            if not config.brand_exists(brand):
                raise invalid_reference(where, f"Brand {brand} does not exist.")

    @staticmethod
    def _check_currency(where: str, currency: str, config: ConfigSnapshot) -> None:
        if not config.currency_known(currency):
            raise invalid_reference(where, f"Currency {currency} is not configured.")

    def _check_instance(self, definition: dict[str, Any], config: ConfigSnapshot) -> None:
        where = f"instances.{definition['id']}"
        self._check_currency(where, definition["currency"], config)
        for currency in definition["contribution_limits"]:
            self._check_currency(where, currency, config)
        self._check_brands(where, definition["allowed_brands"], config)
        for linked in definition["linked_instances"]:
            if linked not in config.instances:
                raise invalid_reference(where, f"Linked instance {linked} does not exist.")

    def _check_source(self, source: dict[str, Any], config: ConfigSnapshot) -> None:
        where = f"sources.{source['source_id']}"
        self._check_brands(where, [source["owner_id"]], config)
        for instance_id in source["instance_ids"]:
            if instance_id not in config.instances:
                raise invalid_reference(where, f"Instance {instance_id} does not exist.")

    def _check_currencies(self, currencies: dict[str, Any], config: ConfigSnapshot) -> None:
        self._check_brands("currencies", list(currencies["brand_overrides"]), config)
        for definition in config.instances.values():
            for currency in [definition["currency"], *definition["contribution_limits"]]:
                if currency not in currencies["multipliers"]:
                    raise invalid_reference(
                        "currencies", f"Instance {definition['id']} uses {currency}."
                    )

    # -- single-object operations (admin API) ------------------------------------------
    async def put_operator(
        self, operator: dict[str, Any], *, by: Principal = CLI_ACTOR
    ) -> dict[str, Any]:
        """Create or replace; the answer shows a secret only when this call generated it."""
        existing = (await self._config.get()).operators.get(operator["id"])
        secret = operator.get("callback_secret")
        generated = secret is None and (existing is None or not existing.get("callback_secret"))
        if secret is None:
            secret = new_secret() if generated else existing["callback_secret"]  # type: ignore[index]
        stored = {**_operator_record(operator), "callback_secret": secret}
        if await self._write_operator(stored, by):
            await self._changed()
        view = operator_view(stored)
        return {**view, "callback_secret": secret} if generated else view

    async def operators(self, by: Principal = CLI_ACTOR) -> list[dict[str, Any]]:
        """The operators the caller sees: its own, or all for the platform role."""
        return [
            operator_view(op)
            for op in (await self._config.get()).operators.values()
            if by.sees(op["id"])
        ]

    async def rotate_callback_secret(
        self, operator_id: str, *, by: Principal = CLI_ACTOR
    ) -> dict[str, Any]:
        operator = (await self._config.get()).operators.get(operator_id)
        if operator is None or not by.sees(operator_id):
            raise Refused(Code.OPERATOR_NOT_FOUND, f"Operator {operator_id} does not exist.")
        secret = new_secret()
        await self._write_operator({**operator, "callback_secret": secret}, by)
        await self._changed()
        return {"operator_id": operator_id, "callback_secret": secret}

    async def _write_operator(self, stored: dict[str, Any], by: Principal) -> bool:
        before = (await self._store.operators()).get(stored["id"])
        changed = await self._store.put_operator(stored)
        if changed:
            await self.audit.record(
                by,
                "operator.put",
                stored["id"],
                before=before,
                after=stored,
                operators=[stored["id"]],
            )
        return changed

    async def put_currencies(
        self, currencies: dict[str, Any], *, by: Principal = CLI_ACTOR
    ) -> dict[str, Any]:
        config = await self._config.get()
        self._check_currencies(currencies, config)
        stored: dict[str, Any] = CurrenciesSchema().dump(currencies)
        if await self._write_currencies(stored, by, config):
            await self._changed()
        return stored

    async def _write_currencies(
        self, stored: dict[str, Any], by: Principal, config: ConfigSnapshot
    ) -> bool:
        """Currencies concern every operator."""
        before = await self._store.currencies()
        changed = await self._store.put_currencies(stored)
        if changed:
            await self.audit.record(
                by,
                "currencies.put",
                "currencies",
                before=before,
                after=stored,
                operators=config.operators,
            )
        return changed

    async def sources(self, by: Principal = CLI_ACTOR) -> list[dict[str, Any]]:
        """The sources the caller sees: its operator's brands', or all for the platform."""
        return [
            source
            for source in (await self._config.get()).sources
            if by.sees(source["owner_id"].partition(":")[0])
        ]

    async def put_source(
        self, source: dict[str, Any], *, by: Principal = CLI_ACTOR
    ) -> dict[str, Any]:
        config = await self._config.get()
        check_brands(by, [source["owner_id"]])
        self._check_source(source, config)
        self._check_visible(by, f"sources.{source['source_id']}", source["instance_ids"], config)
        stored: dict[str, Any] = SourceSchema().dump(source)
        if await self._write_source(stored, by):
            await self._changed()
        return stored

    async def _write_source(self, stored: dict[str, Any], by: Principal) -> bool:
        before = self._find_source(await self._store.sources(), stored)
        changed = await self._store.put_source(stored)
        if changed:
            await self.audit.record(
                by,
                "source.put",
                f"{stored['owner_id']}/{stored['source_id']}",
                before=before,
                after=stored,
                operators=brand_operators([stored["owner_id"]]),
            )
        return changed

    @staticmethod
    def _find_source(
        sources: list[dict[str, Any]], wanted: dict[str, Any]
    ) -> dict[str, Any] | None:
        for source in sources:
            if (source["owner_id"], source["source_id"]) == (
                wanted["owner_id"],
                wanted["source_id"],
            ):
                return source
        return None

    async def delete_source(
        self, owner_id: str, source_id: str, *, by: Principal = CLI_ACTOR
    ) -> None:
        wanted = {"owner_id": owner_id, "source_id": source_id}
        before = self._find_source(await self._store.sources(), wanted)
        if not by.sees(owner_id.partition(":")[0]) or not await self._store.delete_source(
            owner_id, source_id
        ):
            raise Refused(Code.SOURCE_NOT_FOUND, f"Source {owner_id}/{source_id} does not exist.")
        await self.audit.record(
            by,
            "source.delete",
            f"{owner_id}/{source_id}",
            before=before,
            operators=brand_operators([owner_id]),
        )
        await self._changed()

    async def create_account(
        self,
        username: str,
        password: str,
        operator_id: str,
        roles: list[str],
        *,
        by: Principal = CLI_ACTOR,
    ) -> dict[str, Any]:
        config = await self._config.get()
        if not by.sees(operator_id):
            check_operator(by, operator_id)
        self._check_roles(by, roles)
        if operator_id not in config.operators:
            raise invalid_reference("operator_id", f"Operator {operator_id} does not exist.")
        if await self._store.account(username) is not None:
            raise Refused(Code.ACCOUNT_EXISTS, f"Account {username} already exists.")
        created = await self._write_account(username, password, operator_id, roles)
        await self.audit.record(
            by, "account.create", username, after=created, operators=[operator_id]
        )
        return created

    async def _write_account(
        self, username: str, password: str, operator_id: str, roles: list[str]
    ) -> dict[str, Any]:
        password_hash = await asyncio.to_thread(hash_password, password)
        account = {
            "username": username,
            "password_hash": password_hash,
            "operator_id": operator_id,
            "roles": sorted(set(roles)),
        }
        await self._store.put_account(account)
        return account_view(account)

    async def accounts(self, by: Principal = CLI_ACTOR) -> list[dict[str, Any]]:
        """The accounts the caller sees: its operator's, or all for the platform role."""
        return [
            account_view(account)
            for account in await self._store.accounts()
            if by.sees(account["operator_id"])
        ]

    async def _managed_account(self, username: str, by: Principal) -> dict[str, Any]:
        """An account the caller may change: its operator's (another operator's is unknown);
        one with the platform role, only by the platform."""
        account = await self._store.account(username)
        if account is None or not by.sees(account["operator_id"]):
            raise Refused(Code.ACCOUNT_NOT_FOUND, f"Account {username} does not exist.")
        self._check_roles(by, account["roles"])
        return account

    @staticmethod
    def _check_roles(by: Principal, roles: list[str]) -> None:
        if PLATFORM in roles and not by.is_platform:
            raise platform_required("Only the platform role manages accounts with that role.")

    async def delete_account(self, username: str, *, by: Principal = CLI_ACTOR) -> None:
        account = await self._managed_account(username, by)
        if not await self._store.delete_account(username):
            raise Refused(Code.ACCOUNT_NOT_FOUND, f"Account {username} does not exist.")
        await self.audit.record(
            by,
            "account.delete",
            username,
            before=account_view(account),
            operators=[account["operator_id"]],
        )
        await self._revoke(username)

    async def set_roles(
        self, username: str, roles: list[str], *, by: Principal = CLI_ACTOR
    ) -> dict[str, Any]:
        account = await self._managed_account(username, by)
        self._check_roles(by, roles)
        changed = {**account, "roles": sorted(set(roles))}
        if changed != account:
            await self._store.put_account(changed)
            await self.audit.record(
                by,
                "account.roles",
                username,
                before=account_view(account),
                after=account_view(changed),
                operators=[account["operator_id"]],
            )
            await self._revoke(username)
        return account_view(changed)

    async def _revoke(self, username: str) -> None:
        """Tokens already issued to `username` stop working at the next configuration
        refresh of every process (this one at once)."""
        await self._store.revoke_tokens(username, now_ms(), self._token_ttl_ms)
        await self._changed()

    async def create_instance(
        self, definition: dict[str, Any], *, by: Principal = CLI_ACTOR
    ) -> tuple[dict[str, Any], bool]:
        """Returns the stored definition and whether it was created (False: identical exists)."""
        if definition["id"] is None:
            definition = {**definition, "id": str(uuid.uuid4())}
        config = await self._config.get()
        check_brands(by, definition["allowed_brands"])
        self._check_instance(definition, config)
        where = f"instances.{definition['id']}"
        self._check_visible(by, where, definition["linked_instances"], config)
        return await self._write_instance(definition, by)

    @staticmethod
    def _check_visible(
        by: Principal, where: str, instance_ids: list[str], config: ConfigSnapshot
    ) -> None:
        """Instances named in a body: another operator's is as unknown as a missing one."""
        for instance_id in instance_ids:
            try:
                admin_instance(by, config.instances.get(instance_id), instance_id, own=False)
            except Refused:
                raise invalid_reference(where, f"Instance {instance_id} does not exist.") from None

    async def _write_instance(
        self, definition: dict[str, Any], by: Principal
    ) -> tuple[dict[str, Any], bool]:
        storage = to_storage(definition)
        engine = compile_engine(definition)
        now = now_ms()
        created = await self._store.create_instance(
            storage,
            engine,
            now_ms=now,
            status=definition["status"],
            timestamp_start=definition["timestamp_start"],
            timestamp_end=definition["timestamp_end"],
            drop_values=[initial_state(pot["trigger"], now) for pot in engine["pots"]],
        )
        if created:
            await self._schedule_lifecycle(definition)
            if definition["raffle"] is not None:
                await self._raffles.open_first_round(definition, now)
            await self.audit.record(
                by,
                "instance.create",
                definition["id"],
                after=storage["definition"],
                operators=brand_operators(definition["allowed_brands"]),
            )
            await self._changed()
        else:
            existing = (await self._store.definitions([definition["id"]])).get(definition["id"])
            if existing is None or not same_meaning(existing, definition):
                raise Refused(
                    Code.INSTANCE_EXISTS,
                    f"Instance {definition['id']} exists with another definition.",
                )
        body: dict[str, Any] = storage["definition"]
        return body, created

    async def _schedule_lifecycle(self, definition: dict[str, Any]) -> None:
        """Pending instances activate at their start; every instance ends at its end."""
        if definition["status"] == "Pending":
            await self._store.schedule("activate", definition["id"], definition["timestamp_start"])
        if definition["timestamp_end"] is not None:
            await self._store.schedule("terminate", definition["id"], definition["timestamp_end"])

    async def set_status(self, instance_id: str, action: str, by: Principal) -> str:
        await managed_instance(self._config, by, instance_id, own=True)
        before = (await self._store.statuses([instance_id])).get(instance_id)
        now = now_ms()
        try:
            status = await self._store.set_status(instance_id, action, now_ms=now, by=by.username)
        except ScriptRefusal as refusal:
            if refusal.code is Code.INSTANCE_NOT_FOUND:
                raise Refused(
                    Code.INSTANCE_NOT_FOUND, f"Instance {instance_id} does not exist."
                ) from None
            if refusal.code is Code.INVALID_TRANSITION:
                raise Refused(
                    Code.INVALID_TRANSITION, f"Cannot {action}: {refusal.detail}."
                ) from None
            raise
        if status == "Terminated" and before != "Terminated":
            # the players' opt-in records end OPTIN_RETENTION_DAYS later (purge_optins)
            await self._store.schedule(
                "purge_optins", instance_id, now + self._optin_retention_ms, only_new=True
            )
        stored = (await self._store.definitions([instance_id])).get(instance_id)
        definition = {} if stored is None else from_storage(stored)
        await self.audit.record(
            by,
            f"instance.{action}",
            instance_id,
            before={"status": before},
            after={"status": status},
            operators=brand_operators(definition.get("allowed_brands", [])),
        )
        await self._changed()
        return status

    async def purge_optins(self, instance_id: str) -> bool:
        """End a Terminated instance's opt-in records (the scheduler's `purge_optins` item);
        False when they had been ended before."""
        return await self._store.purge_optins(instance_id, now_ms=now_ms())

    async def instance(self, instance_id: str, by: Principal = CLI_ACTOR) -> dict[str, Any]:
        """The definition with its live status, pot balances, reserves and money totals."""
        definition = await managed_instance(self._config, by, instance_id, own=False)
        states = await self._store.states([instance_id])
        if instance_id not in states:
            raise Refused(Code.INSTANCE_NOT_FOUND, f"Instance {instance_id} does not exist.")
        return self._view(definition, states[instance_id])

    async def instances(self, by: Principal = CLI_ACTOR) -> list[dict[str, Any]]:
        """The instances the caller reads: those its operator's brands may play, or all."""
        config = await self._config.get()
        visible = {
            instance_id: definition
            for instance_id, definition in config.instances.items()
            if by.is_platform or by.operator_id in brand_operators(definition["allowed_brands"])
        }
        states = await self._store.states(list(visible))
        return [
            self._view(definition, states[instance_id])
            for instance_id, definition in visible.items()
            if instance_id in states
        ]

    @staticmethod
    def _view(definition: dict[str, Any], state: dict[str, str]) -> dict[str, Any]:
        def amount(name: str) -> str:
            return format_amount(from_micros(int(state.get(name) or 0)))

        pots = [
            {
                "id": pot["id"],
                "name": pot["name"],
                "current_value": amount(f"pot:{pot['id']}:value"),
                "reserve": amount(f"pot:{pot['id']}:reserve"),
                "seed_deficit": amount(f"pot:{pot['id']}:deficit"),
            }
            for pot in definition["pots"]
        ]
        totals = {
            name: amount(f"total:{name}")
            for name in ("contributions", "seed_funding", "boosts", "house", "wins", "returned")
        }
        view = {
            "definition": definition,
            "status": state.get("status"),
            "last_updated": int(state.get("last_updated") or 0),
            "pots": pots,
            "totals": totals,
        }
        if definition.get("raffle") is not None:
            view["raffle_round"] = round_view(state)
        return view

    # -- a whole definitions file (CLI `load`) ------------------------------------------
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
            record = {**_operator_record(operator), "callback_secret": secret}
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
            self._check_currencies(plan.currencies, merged)
        for definition in plan.instances:
            self._check_instance(definition, merged)
        for source in plan.sources:
            self._check_source(source, merged)
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


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def _operator_record(operator: dict[str, Any]) -> dict[str, Any]:
    return {"id": operator["id"], "name": operator.get("name"), "brands": operator["brands"]}


def operator_view(operator: dict[str, Any]) -> dict[str, Any]:
    """What may be shown of an operator: everything but its secret."""
    return {
        **_operator_record(operator),
        "callback_secret_set": bool(operator.get("callback_secret")),
    }


def environment_passwords(env: Mapping[str, str]) -> PasswordLookup:
    return env.get
