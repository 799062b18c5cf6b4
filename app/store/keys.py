"""Every Redis key name is built here.

Global configuration keys live under `jg:`; all keys of one jackpot instance share the hash
tag `{jp:<instance_id>}` so that every script touching an instance stays in one cluster slot.
"""

from __future__ import annotations

PREFIX = "jg"

# -- global configuration -------------------------------------------------------------
CONFIG_VERSION = f"{PREFIX}:cfg:version"  # INCR on every admin change
CONFIG_CHANNEL = f"{PREFIX}:cfg:changed"  # PUBLISH <version> on every admin change
OPERATORS = f"{PREFIX}:operators"  # hash operator_id -> JSON
ACCOUNTS = f"{PREFIX}:accounts"  # hash username -> JSON (argon2id hash inside)
REVOCATIONS = f"{PREFIX}:revocations"  # hash username -> epoch ms: older tokens are void
CURRENCIES = f"{PREFIX}:currencies"  # string JSON
SOURCES = f"{PREFIX}:sources"  # hash "<owner_id>|<source_id>" -> JSON
INSTANCES = f"{PREFIX}:instances"  # sorted set of instance ids, scored by creation time
SCHEDULE = f"{PREFIX}:schedule"  # sorted set "<action>|<instance_id>" -> due ms
READY_PROBE = f"{PREFIX}:ready-probe"  # string, 10 s: /ready's write (can Redis take writes?)


def login_attempts(subject: str) -> str:
    """Login attempts of one subject (the client address and the username) in its window."""
    return f"{PREFIX}:login-attempts:{subject}"


def audit(operator_id: str) -> str:
    """Stream: the admin decisions concerning the operator (audit trail); never trimmed."""
    return f"{PREFIX}:audit:{operator_id}"


def failed_deliveries(operator_id: str) -> str:
    """Hash: delivery id -> JSON of a callback delivery that exhausted its retries."""
    return f"{PREFIX}:failed-callbacks:{operator_id}"


def callback_headers(delivery_id: str) -> str:
    """String: JSON of the headers a caller gave a callback, until it is delivered (TTL)."""
    return f"{PREFIX}:callback-headers:{delivery_id}"


def source_field(owner_id: str, source_id: str) -> str:
    return f"{owner_id}|{source_id}"


# -- one jackpot instance -------------------------------------------------------------
def instance_tag(instance_id: str) -> str:
    return "{jp:" + instance_id + "}"


def instance_definition(instance_id: str) -> str:
    """String: the validated definition as JSON (decimals as strings)."""
    return instance_tag(instance_id) + ":def"


def instance_engine(instance_id: str) -> str:
    """String: the definition compiled to integer micro-units, read by the Lua scripts."""
    return instance_tag(instance_id) + ":engine"


def instance_state(instance_id: str) -> str:
    """Hash: status, time window, pot balances, reserves, drop values and money totals."""
    return instance_tag(instance_id) + ":state"


def instance_ledger(instance_id: str) -> str:
    """Stream: every money movement and draw of the instance. Whole UTC days (of the entry
    ids) are exported to the ledger archive and then trimmed (app/services/ledger.py)."""
    return instance_tag(instance_id) + ":ledger"


def instance_books(instance_id: str) -> str:
    """Hash: the last reconciliation checkpoint ('checkpoint' JSON at 'checkpoint_id', and
    'decision:<win id>' of decided wins still held), and how far the ledger is archived
    ('archived_id', 'archived_day'); app/store/ledger.py."""
    return instance_tag(instance_id) + ":books"


def instance_meter(instance_id: str) -> str:
    """Hash: the meter report's counters, '<scope>|<figure>' cumulative and
    '<yyyymmdd>|<scope>|<figure>' per UTC day (lua/includes/meters.lua)."""
    return instance_tag(instance_id) + ":meter"


def instance_boosts(instance_id: str) -> str:
    """Hash: boost id -> what it did (lua/boost_pot-5.lua), so a retried boost applies once."""
    return instance_tag(instance_id) + ":boosts"


def instance_optins(instance_id: str) -> str:
    """Hash: "<operator>:<brand>:<player>|<field>" -> one field of an opt-in record (optins.py)."""
    return instance_tag(instance_id) + ":optins"


def instance_idempotency(instance_id: str, operator_id: str, key: str) -> str:
    return f"{instance_tag(instance_id)}:idem:{operator_id}:{key}"


def instance_wins(instance_id: str) -> str:
    """Hash: win id -> win record JSON; every win stored once, never trimmed (wins.py)."""
    return instance_tag(instance_id) + ":wins"


def instance_wins_index(instance_id: str) -> str:
    """Sorted set: the latest win ids per group (instance, pot, brand, brand+pot), capped."""
    return instance_tag(instance_id) + ":wins:recent"


def instance_tickets(instance_id: str) -> str:
    """Hash: raffle ticket records and Fenwick trees, every field prefixed by its round."""
    return instance_tag(instance_id) + ":tickets"


def instance_ticket_ranking(instance_id: str) -> str:
    """Sorted set, lexicographic: raffle ticket holders by round, order and scope (raffles.py)."""
    return instance_tag(instance_id) + ":tickets:ranking"


def instance_raffle_rounds(instance_id: str) -> str:
    """Hash: '<round>' -> a drawn raffle round's record (JSON), '<round>|snapshot' -> its
    ticket snapshot hash."""
    return instance_tag(instance_id) + ":raffle:rounds"


def instance_archived_round(instance_id: str, round_id: int) -> str:
    """Hash: an archived raffle round's record (JSON) and snapshot hash; expires with its
    tickets (lua/archive_round-5.lua)."""
    return f"{instance_tag(instance_id)}:raffle:round:{round_id}"


def instance_archived_tickets(instance_id: str, round_id: int) -> str:
    """List: an archived raffle round's ticket snapshot, '<index> <player key> <tickets>' in
    index order; expires with the round's record."""
    return f"{instance_tag(instance_id)}:raffle:round:{round_id}:tickets"


def instance_events(instance_id: str) -> str:
    """Capped stream of the instance's events, for websocket resume."""
    return instance_tag(instance_id) + ":events"


def instance_events_epoch(instance_id: str) -> str:
    """String: the epoch of the instance's events stream (base36 of the ms of its first event),
    set with SET NX by the script that emits an event (lua/includes/events.lua): a stream lost
    with this key gets a new epoch, and clients' offsets in the old one are refused."""
    return instance_tag(instance_id) + ":events:epoch"


def instance_channel(instance_id: str) -> str:
    """Pub/sub channel (SPUBLISH on a cluster) of the instance's events."""
    return instance_tag(instance_id) + ":channel"


def player_key(operator_id: str, brand_id: str, player_id: str) -> str:
    return f"{operator_id}:{brand_id}:{player_id}"
