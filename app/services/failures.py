"""The store's failures as the layers above the services see them, so the HTTP edge maps them
(503 nothing ran, 504 the outcome is unknown, `details.reason`) without importing the store:
`classify` turns any exception from a store call into one of them, or None when it is not a
store failure (app/store/errors.py says how each Redis failure is classified)."""

from __future__ import annotations

from app.store.errors import StoreError, StoreOutcomeUnknown, StoreUnavailable, classify

__all__ = ["StoreError", "StoreOutcomeUnknown", "StoreUnavailable", "classify"]
