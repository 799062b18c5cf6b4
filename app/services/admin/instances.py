"""Instances: created once (an identical definition again changes nothing), moved through
their lifecycle (activate, pause, terminate: scheduled at their start and end), read with
their live state and money totals."""

from __future__ import annotations

import uuid
from typing import Any

from app.core.clock import now_ms
from app.core.money import format_amount, from_micros
from app.core.refusals import Code, Refused
from app.core.security import Principal
from app.services.admin.base import AdminBase
from app.services.admin.references import check_instance_references, check_visible_instances
from app.services.audit import CLI_ACTOR, brand_operators
from app.services.canonical import from_storage, same_meaning, to_storage
from app.services.draws import round_view
from app.services.engine import compile_engine
from app.services.scope import check_brands, managed_instance
from app.store import ScriptRefusal
from app.triggers import initial_state


class InstanceAdmin(AdminBase):
    async def create_instance(
        self, definition: dict[str, Any], *, by: Principal = CLI_ACTOR
    ) -> tuple[dict[str, Any], bool]:
        """Returns the stored definition and whether it was created (False: identical exists)."""
        if definition["id"] is None:
            definition = {**definition, "id": str(uuid.uuid4())}
        config = await self._config.get()
        check_brands(by, definition["allowed_brands"])
        check_instance_references(definition, config)
        where = f"instances.{definition['id']}"
        check_visible_instances(by, where, definition["linked_instances"], config)
        return await self._write_instance(definition, by)

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
