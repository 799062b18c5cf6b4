"""The audit trail: who decided what, when, with the values before and after.

The ledger is the record of money; this is the record of decisions. Each entry goes to the
stream of every operator it concerns (the actor's operator and the operators owning the
changed object), so an operator pages through its own trail only. Secrets (callback
secrets, passwords and their hashes) are never written: they show as "[redacted]", and the
entry's `changed` list still says that one changed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from app.core.clock import now_ms
from app.core.security import Principal
from app.store import Store

SECRETS = frozenset({"callback_secret", "password", "password_hash"})
REDACTED = "[redacted]"

# Who acts when no token does: the command line and the scheduler.
# Both act for no operator and on every operator's objects (the platform role).
CLI_ACTOR = Principal("cli", "", ("platform",))
SCHEDULER_ACTOR = Principal("scheduler", "", ("platform",))


def redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: (REDACTED if key in SECRETS and item is not None else redact(item))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def changed_fields(before: Any, after: Any) -> list[str]:
    """Top-level fields that differ, when both sides are objects."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return [] if before == after else ["*"]
    return sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))


def brand_operators(brands: Iterable[str]) -> set[str]:
    """The operators of `operator:brand` paths."""
    return {brand.partition(":")[0] for brand in brands}


class AuditTrail:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def record(
        self,
        by: Principal,
        action: str,
        target: str,
        *,
        before: Any = None,
        after: Any = None,
        operators: Iterable[str] = (),
    ) -> None:
        entry = {
            "at": str(now_ms()),
            "by": by.username,
            "by_operator": by.operator_id,
            "action": action,
            "target": target,
            "before": json.dumps(redact(before), sort_keys=True, default=str),
            "after": json.dumps(redact(after), sort_keys=True, default=str),
            "changed": ",".join(changed_fields(before, after)),
        }
        concerned = {by.operator_id, *operators} - {""}
        await self._store.append_audit(concerned, entry)

    async def page(self, operator_id: str, after: str, count: int) -> list[dict[str, Any]]:
        return [
            {
                "id": entry_id,
                "at": int(fields["at"]),
                "by": fields["by"],
                "by_operator": fields["by_operator"] or None,
                "action": fields["action"],
                "target": fields["target"],
                "before": json.loads(fields["before"]),
                "after": json.loads(fields["after"]),
                "changed": fields["changed"].split(",") if fields["changed"] else [],
            }
            for entry_id, fields in await self._store.audit(operator_id, after=after, count=count)
        ]
