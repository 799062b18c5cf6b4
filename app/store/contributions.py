"""Contributions: the contribute-and-trigger script, winners lists, raffle tickets."""

from __future__ import annotations

from app.store.base import StoreBase


class ContributionStore(StoreBase):
    pass
