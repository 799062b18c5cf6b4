"""Sizes fixed by the engine, each defined once (schemas, services and the store read them)."""

MAX_POTS = 20  # pots per instance
WINNERS_CAP = 100  # latest wins kept per index (instance, pot, brand, brand+pot): the max `limit`
