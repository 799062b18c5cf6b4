"""Player opt-ins per instance.

Hash `keys.instance_optins(id)`, fields per player key `<operator>:<brand>:<player>`:
  `<pk>|opted_in`  "1" or "0"
  `<pk>|value`     preferred contribution in micro-units of the instance currency ("" = default)
  `<pk>|value_raw` the preferred value as the player gave it ("0.50")
  `<pk>|currency`  the currency of value_raw
  `<pk>|count`     contributions made by the player to the instance (HINCRBY by contribute)
  `<pk>|updated`   last change, epoch ms
"""

from __future__ import annotations

from app.store.base import StoreBase


class OptInStore(StoreBase):
    pass
