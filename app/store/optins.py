"""Player opt-ins per instance.

Hash `keys.instance_optins(id)`, fields per player key `<operator>:<brand>:<player>`:
  `<pk>|opted_in`  "1" or "0"
  `<pk>|value`     preferred contribution in micro-units of the instance currency ("" = default)
  `<pk>|value_raw` the preferred value as the player gave it ("0.50")
  `<pk>|currency`  the currency of value_raw
  `<pk>|count`     contributions the player made while having this record (contribute;
                   a player without a record has no field at all)
  `<pk>|updated`   last change, epoch ms

Writes go through `lua/set_optin-5.lua` (its header has the full contract: opting out keeps
the preference, a repeated identical call writes and publishes nothing, opting in to a
Terminated or ended instance is refused, opting out never is). The records end with the
instance: OPTIN_RETENTION_DAYS after its termination the scheduler runs
`lua/purge_optins-2.lua`, which deletes the hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.store import keys
from app.store.base import StoreBase
from app.store.script_table import PURGE_OPTINS, SET_OPTIN

_FIELDS = ("opted_in", "value", "value_raw", "currency", "count", "updated")


@dataclass(frozen=True)
class OptInRecord:
    opted_in: bool
    value_micros: int | None  # preferred contribution, instance currency; None = default
    value_raw: str | None  # the preference as the player gave it
    currency: str | None  # currency of value_raw
    contribution_count: int
    last_updated: int  # epoch ms

    @classmethod
    def from_fields(cls, values: list[Any]) -> OptInRecord:
        """From the six values in `_FIELDS` order (the script's reply or an HMGET)."""
        opted_in, value, value_raw, currency, count, updated = (
            "" if v is None else str(v) for v in values
        )
        return cls(
            opted_in=opted_in == "1",
            value_micros=int(value) if value else None,
            value_raw=value_raw or None,
            currency=currency or None,
            contribution_count=int(count or 0),
            last_updated=int(updated or 0),
        )


def _fields(operator_id: str, brand_id: str, player_id: str) -> list[str]:
    pk = keys.player_key(operator_id, brand_id, player_id)
    return [f"{pk}|{name}" for name in _FIELDS]


class OptInStore(StoreBase):
    async def set_optin(
        self,
        instance_id: str,
        *,
        operator_id: str,
        brand_id: str,
        player_id: str,
        opted_in: bool,
        value_micros: int | None,
        value_raw: str | None,
        currency: str | None,
        now_ms: int,
        event_id: str,
        publish_mode: str | None = None,
    ) -> OptInRecord:
        """Opt a player in or out atomically and publish an OptInEvent when something changed.

        `value_micros` None means no preference (the default contribution applies); when it
        is set, `value_raw` and `currency` (the preference as given) are required. They are
        ignored when opting out: the stored preference is kept. `publish_mode` is "publish"
        or "spublish"; None picks "spublish" on a cluster. Raises `ScriptRefusal`
        (INSTANCE_NOT_FOUND, INSTANCE_TERMINATED, INSTANCE_ENDED, BAD_ARGUMENT).
        """
        if opted_in and value_micros is not None:
            if value_micros <= 0:
                raise ValueError("value_micros must be positive")
            if not value_raw or not currency:
                raise ValueError("a preferred value needs value_raw and currency")
            preference = [str(value_micros), value_raw, currency]
        else:
            preference = ["", "", ""]
        if publish_mode is None:
            publish_mode = self.publish_mode
        reply = await self.script(
            SET_OPTIN,
            [
                keys.instance_state(instance_id),
                keys.instance_optins(instance_id),
                keys.instance_events(instance_id),
                keys.instance_channel(instance_id),
                keys.instance_events_epoch(instance_id),
            ],
            [
                "1" if opted_in else "0",
                now_ms,
                keys.player_key(operator_id, brand_id, player_id),
                *preference,
                event_id,
                instance_id,
                player_id,
                f"{operator_id}:{brand_id}",
                publish_mode,
                self.events_cap,
            ],
        )
        return OptInRecord.from_fields(list(reply))

    async def purge_optins(self, instance_id: str, *, now_ms: int) -> bool:
        """End a Terminated instance's opt-in records (lua/purge_optins-2.lua); False when
        they had been ended before. Raises `ScriptRefusal` (INSTANCE_NOT_FOUND,
        INVALID_TRANSITION when the instance is not Terminated)."""
        done = await self.script(
            PURGE_OPTINS,
            [keys.instance_state(instance_id), keys.instance_optins(instance_id)],
            [now_ms],
        )
        return bool(int(done))

    async def optin(
        self, instance_id: str, operator_id: str, brand_id: str, player_id: str
    ) -> OptInRecord | None:
        """One player's record, or None when the player never opted in or out."""
        values = await self.client.hmget(
            keys.instance_optins(instance_id), _fields(operator_id, brand_id, player_id)
        )
        return None if values[0] is None else OptInRecord.from_fields(values)

    async def optins_many(
        self, instance_ids: list[str], operator_id: str, brand_id: str, player_id: str
    ) -> dict[str, OptInRecord]:
        """One player's records in several instances, in one pipeline (absent ones left out)."""
        if not instance_ids:
            return {}
        fields = _fields(operator_id, brand_id, player_id)
        async with self.client.pipeline(transaction=False) as pipe:
            for instance_id in instance_ids:
                pipe.hmget(keys.instance_optins(instance_id), fields)
            replies = await pipe.execute()
        return {
            instance_id: OptInRecord.from_fields(values)
            for instance_id, values in zip(instance_ids, replies, strict=True)
            if values[0] is not None
        }
