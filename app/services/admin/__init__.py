"""Jackpot managers' operations: operators, accounts, currencies, sources, instances.

The parts, each importing only those listed before it:

- `references`: a write's cross references checked against the whole configuration;
- `base`: what every part holds (store, configuration cache, audit trail) and how a change
  is announced to every process;
- `operators`, `currencies`, `sources`, `accounts`, `instances`: the operations on each;
- `service`: AdminService, all of them, and a whole definitions file applied at once.
"""
