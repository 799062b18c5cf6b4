"""The Lua scripts of `lua/`, declared once: name, KEYS, ARGV and the refusals each answers.

This table is the one place a maintainer edits to add, rename or change a script's calling
convention. From it:

- the store calls the scripts (`self.script(SET_STATUS, keys, args)`: the spec is imported by
  its constant, so a misspelt script is an ImportError, not a failure at call time);
- `ScriptRunner` loads `lua/` against it: a script file without an entry, an entry without a
  file, or a KEYS count that is not the file name's N is refused at load;
- tests/test_script_table.py checks each entry against its script's header comment (the
  number of KEYS[i] and ARGV[i] described) and the refusal codes against the
  `redis.error_reply('CODE ...')` of the script with its includes;
- the reference page docs/scripts.md is generated from it (`python -m app.store.script_page >
  docs/scripts.md`); a test fails when the page is not what the table renders.

Each script's header comment stays the long form (units, return shapes, the why); the table
holds the calling convention in a shape Python can use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.core.refusals import Code

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Key:
    """One KEYS[i]: a short name and what the key holds."""

    name: str
    meaning: str


@dataclass(frozen=True)
class Arg:
    """One ARGV[i]: a short name and its meaning with its unit."""

    name: str
    meaning: str


@dataclass(frozen=True)
class ScriptSpec:
    """One script of `lua/`: the file is `<name>-<len(keys)>.lua`."""

    name: str
    summary: str
    keys: tuple[Key, ...]
    argv: tuple[Arg, ...]
    refusals: tuple[Code, ...]
    rest: Arg | None = None  # ARGV[len(argv) + 1 ..]: a variable-length tail

    @property
    def nkeys(self) -> int:
        return len(self.keys)

    @property
    def file(self) -> str:
        return f"{self.name}-{self.nkeys}.lua"


BAD_ARGUMENT = Code.BAD_ARGUMENT  # answered by every script that checks its ARGV

# The scripts, in file-name order. The constant's name is the script's name in capitals.

ADD_METERS = ScriptSpec(
    "add_meters",
    "Backfill an instance's meter counters once (jackpot-gateway backfill-meters): add what the "
    "ledger entries written before the counters existed contribute (app/services/meters.py "
    "computes it from a replay up to an entry read atomically with the counters, so every entry "
    "after it is counted by its own script and none twice).",
    keys=(Key("meter", "instance meter counters (hash; includes/meters.lua)"),),
    argv=(
        Arg(
            "backfilled_id",
            "the ledger entry id the amounts were computed up to (kept in field 'backfilled')",
        ),
    ),
    rest=Arg(
        "field_amount_pairs",
        "ARGV[2 ..] pairs: counter field, amount to add (a decimal string of a non-negative "
        "integer)",
    ),
    refusals=(BAD_ARGUMENT,),
)

ARCHIVE_ROUND = ScriptSpec(
    "archive_round",
    "Archive a drawn raffle round, one bounded step per call: copy its ticket snapshot to a "
    "compact list, then remove its live ticket fields and index members, then move its record to "
    "keys of its own that expire at drawn_at + retention.",
    keys=(
        Key("tickets", "instance raffle tickets (hash, fields prefixed '<round>|')"),
        Key("ticket_index", "instance raffle ticket index (sorted set, lexicographic)"),
        Key(
            "raffle_rounds",
            "instance raffle rounds (hash: '<r>' -> record JSON, '<r>|snapshot' -> snapshot hash,"
            " '<r>|archive' -> this script's progress: 'copy', 'clear:<HSCAN cursor>' or "
            "'unindex')",
        ),
        Key("archived_round", "the archived round (hash: record, snapshot), expiring with KEYS[5]"),
        Key(
            "archived_tickets",
            "the archived round's tickets (list, element i-1 = '<player key> <tickets>' for "
            "Fenwick index i: the lines the snapshot hash is taken over, without the newline and "
            "without the index, which is the position; a round archived before kept '<i> <player "
            "key> <tickets>', and readers take both: app/store/raffles.py)",
        ),
    ),
    argv=(
        Arg("round", "round"),
        Arg(
            "step",
            "step: 'copy' (the next ARGV[3] players to KEYS[5]) | 'clear' (remove the next chunk "
            "of live data; the copy must be complete)",
        ),
        Arg(
            "chunk",
            "chunk: players copied, hash entries scanned (HSCAN COUNT) or index members removed "
            "per call (integer >= 1)",
        ),
        Arg(
            "retention",
            "retention, ms after the draw (integer >= 0): KEYS[4] and KEYS[5] expire then",
        ),
    ),
    refusals=(
        BAD_ARGUMENT,
        Code.ROUND_NOT_DRAWN,
        Code.SNAPSHOT_MISSING,
    ),
)

ARCHIVE_WINS = ScriptSpec(
    "archive_wins",
    "Replace win records that the ledger archive now holds by tombstones, and forget their "
    "decisions in the books (the archive's manifest keeps them).",
    keys=(
        Key("wins", "instance wins (hash: win id -> record JSON or tombstone)"),
        Key("books", "instance books (hash; read_checkpoint-3.lua)"),
    ),
    argv=(
        Arg(
            "day",
            "the archived day (YYYY-MM-DD): the wins file is '<instance>/<day>.wins.jsonl.gz'",
        ),
    ),
    rest=Arg("win_ids", "ARGV[2..] win ids"),
    refusals=(BAD_ARGUMENT,),
)

BOOST_POT = ScriptSpec(
    "boost_pot",
    "Seed boost: add operator money to one pot's value or to its reseed reserve, atomically with "
    "its ledger entry.",
    keys=(
        Key("engine", "instance engine (string, JSON, see app/services/engine.py)"),
        Key("state", "instance state (hash)"),
        Key("ledger", "instance ledger (stream, never trimmed)"),
        Key(
            "boosts",
            "instance boosts (hash: boost id -> '<pot>|<target>|<amount>|<to_value>|<to_reserve>')",
        ),
        Key(
            "meter",
            "instance meter counters (hash; includes/meters.lua: boosts of the pot and instance)",
        ),
    ),
    argv=(
        Arg("now", "now, epoch ms (integer)"),
        Arg("boost_id", "boost id (non-empty, no '|')"),
        Arg("pot_id", "pot id"),
        Arg("target", "target: 'value' | 'reserve'"),
        Arg("amount", "amount, micros (integer, 1 <= amount < 2^53)"),
        Arg("by", "who asked (admin username or 'cli'), for the ledger"),
    ),
    refusals=(
        Code.AMOUNT_OVERFLOW,
        BAD_ARGUMENT,
        Code.BOOST_ID_REUSED,
        Code.INSTANCE_NOT_FOUND,
        Code.INSTANCE_TERMINATED,
        Code.POT_NOT_FOUND,
        Code.POT_NOT_PROGRESSIVE,
    ),
)

CLAIM_DUE = ScriptSpec(
    "claim_due",
    "Claim the scheduled transitions that are due.",
    keys=(
        Key(
            "schedule",
            'schedule (sorted set, member "<action>|<instance_id>", score = due epoch ms)',
        ),
    ),
    argv=(
        Arg("now", "now, epoch milliseconds"),
        Arg("limit", "maximum number of items to claim"),
        Arg("lease", "lease, milliseconds"),
    ),
    refusals=(BAD_ARGUMENT,),
)

CLOSE_ROUND = ScriptSpec(
    "close_round",
    "Seal a raffle round's sales before its draw: from this script on, every ticket goes to the "
    "next round (contribute-13.lua reads raffle:closed), so the round's tickets are frozen while "
    "the drawing process reads them and hashes its snapshot (app/services/raffles.py), whatever "
    "the clocks of the web processes say.",
    keys=(
        Key("state", "instance state (hash: raffle:round, raffle:ends, raffle:closed)"),
        Key("engine", "instance engine (string, JSON; must have a raffle)"),
    ),
    argv=(
        Arg("now", "now, epoch ms (the drawing process's clock)"),
        Arg("round", "the round to seal (must be the open round)"),
        Arg(
            "key_id",
            "id of the current draw key: recorded as the round's (raffle:key) when the round has "
            "none (opened before rounds named their key); its snapshot's salts derive from it",
        ),
    ),
    refusals=(
        BAD_ARGUMENT,
        Code.INSTANCE_NOT_FOUND,
        Code.NOT_A_RAFFLE,
        Code.ROUND_MISMATCH,
        Code.ROUND_NOT_CLOSED,
    ),
)

CONTRIBUTE = ScriptSpec(
    "contribute",
    "Contribute one player's side bet to one jackpot instance and settle it, atomically: "
    "idempotency check, status and time window, opt-in, contribution amount, split across the "
    "pots, the house and the reserves, trigger evaluation, at most one win with its reseed, "
    "raffle tickets, ledger, the win record, the win event (stream + pub/sub) and the idempotency"
    " record.",
    keys=(
        Key("engine", "instance engine (string, JSON, see app/services/engine.py)"),
        Key("state", "instance state (hash)"),
        Key("optins", "instance opt-ins (hash)"),
        Key("tickets", "instance raffle tickets (hash)"),
        Key(
            "ticket_index",
            "instance raffle ticket index (sorted set, lexicographic; see Raffle above)",
        ),
        Key("ledger", "instance ledger (stream, never trimmed)"),
        Key(
            "wins",
            "instance wins (hash: win id -> win record JSON, never trimmed; includes/wins.lua)",
        ),
        Key(
            "wins_index",
            "instance recent-wins index (sorted set, groups capped at ARGV[14]; includes/wins.lua)",
        ),
        Key("events", "instance events (stream, capped near ARGV[16] entries)"),
        Key("channel", "instance event channel (PUBLISH / SPUBLISH target, in KEYS for its slot)"),
        Key(
            "idempotency",
            "idempotency record (string); when the request has no key, a placeholder in the same "
            "hash tag that is never read or written (ARGV[11] = '')",
        ),
        Key("meter", "instance meter counters (hash; includes/meters.lua)"),
        Key(
            "events_epoch",
            "instance events epoch (string, base36 of now_ms, SET NX by the first event; "
            "includes/events.lua)",
        ),
    ),
    argv=(
        Arg("now", "now, epoch ms (integer)"),
        Arg("contribution_id", "contribution id (non-empty; also the win id)"),
        Arg("operator_id", "operator id"),
        Arg("brand_id", "brand id (plain, without the operator)"),
        Arg("player_id", "player id"),
        Arg(
            "player_key",
            "player key '<operator>:<brand>:<player>' (opt-in and ticket field prefix)",
        ),
        Arg(
            "amount",
            "amount: the contribution in micros, as the caller charged it (a preferred value "
            "replaces it on a Fixed instance); '' on a Fixed instance = the engine's amount",
        ),
        Arg(
            "base_wager",
            "base wager, micros of the instance currency (raffle ticket_basis 'base_wager')",
        ),
        Arg("source_id", "source id ('' = none)"),
        Arg("gameround_id", "gameround id ('' = none)"),
        Arg("has_key", "'1' when KEYS[11] is a real idempotency key, '' when the request has none"),
        Arg(
            "request_hash", "request hash (no newline); compared on a repeat of the idempotency key"
        ),
        Arg(
            "idempotency_ttl_ms",
            "idempotency record lifetime, ms (integer >= 1; ignored without a key)",
        ),
        Arg("recent_wins_cap", "recent-wins cap per index group (integer >= 1)"),
        Arg("publish_mode", "'publish' | 'spublish' (Redis Cluster)"),
        Arg("events_cap", "events stream cap, entries (integer >= 1)"),
        Arg("win_event_id", "event id of the win event (used only on a win)"),
        Arg("jackpot_name", "jackpot name for the win event ('' = null)"),
        Arg(
            "event_metadata",
            "event metadata, raw JSON ('null' when none), embedded verbatim in the win event (not"
            " parsed: the caller must pass valid JSON; big numbers keep every digit)",
        ),
        Arg(
            "currency_multipliers",
            "currency multipliers, raw JSON object ('{}' when none), embedded verbatim",
        ),
        Arg(
            "default_charge",
            "the default charge as the response reports it: a decimal string in the player's "
            'currency (the outcome\'s "paid" unless a preferred value applies)',
        ),
        Arg(
            "priced_preference",
            "the preference the caller priced: '<value micros>|<currency>|<value_raw>' as the "
            "opt-in hash holds it, or '' (none priced)",
        ),
        Arg(
            "preference_charge",
            "that preference's charge: '<paid, decimal string>|<credited micros>' ('' with "
            "ARGV[22] '')",
        ),
        Arg(
            "shown_rates",
            "the rates the caller shows amounts with, raw JSON object, embedded verbatim in the "
            'outcome as "shown" (so a read-back answers as the first answer did)',
        ),
        Arg(
            "legacy_fingerprint",
            "the request's fingerprint line in the record format before the lean one ('' = none; "
            "no newline): a stored record whose first line is this one matches too, so a retry of"
            " a request made before an upgrade is still a replay",
        ),
    ),
    rest=Arg(
        "pot_inputs",
        "ARGV[23 + 3i] pot i id (must match the engine); ARGV[24 + 3i] pot i hit input (its "
        "trigger's; '' when the trigger needs none); ARGV[25 + 3i] pot i reset input (its "
        "trigger's; '' when the trigger needs none)",
    ),
    refusals=(
        Code.AMOUNT_OVERFLOW,
        BAD_ARGUMENT,
        Code.IDEMPOTENCY_MISMATCH,
        Code.INSTANCE_ENDED,
        Code.INSTANCE_NOT_ACTIVE,
        Code.INSTANCE_NOT_FOUND,
        Code.INSTANCE_NOT_STARTED,
        Code.INSTANCE_TERMINATED,
        Code.NOT_OPTED_IN,
        Code.PREFERENCE_UNPRICED,
    ),
)

CREATE_INSTANCE = ScriptSpec(
    "create_instance",
    "Create a jackpot instance: store its definition and compiled engine, set every pot to its "
    "seed and record the seed funding in the ledger.",
    keys=(
        Key("definition", "instance definition (string, JSON)"),
        Key("engine", "instance engine (string, JSON in micro-units)"),
        Key("state", "instance state (hash)"),
        Key("ledger", "instance ledger (stream)"),
        Key(
            "meter",
            "instance meter counters (hash; includes/meters.lua: each pot's seed as seed_funding)",
        ),
    ),
    argv=(
        Arg("definition", "definition JSON (its versioned storage form)"),
        Arg("engine", "engine JSON: {pots: [{id, seed (micro-units), ...}], ...}"),
        Arg("now", "now, epoch milliseconds"),
        Arg("status", "initial status: Pending | Active | Paused"),
        Arg("timestamp_start", "timestamp_start, epoch ms, or '' for none"),
        Arg("timestamp_end", "timestamp_end, epoch ms, or '' for none"),
    ),
    rest=Arg(
        "drop_values",
        "ARGV[7..] one drop value per pot in engine order, micro-units ('' for pots without "
        "MustDropBy)",
    ),
    refusals=(BAD_ARGUMENT,),
)

DECIDE_WIN = ScriptSpec(
    "decide_win",
    "Decide a withheld win, once: approve it (the win is paid) or reject it (its amount goes back"
    " to the pot's reserve, where it funds the next reseeds).",
    keys=(
        Key("state", "instance state (hash)"),
        Key("ledger", "instance ledger (stream; its old days go to the ledger archive)"),
        Key(
            "wins",
            "instance wins (hash: win id -> win record JSON, or the tombstone of a record moved "
            "to the ledger archive, archive_wins-2.lua: answered WIN_ALREADY_DECIDED, or "
            "WIN_NOT_WITHHELD for a win paid at once, or WIN_NOT_FOUND for another operator)",
        ),
        Key("events", "instance events (stream, capped near ARGV[8] entries)"),
        Key("channel", "instance event channel (PUBLISH / SPUBLISH target)"),
        Key(
            "meter",
            "instance meter counters (hash; includes/meters.lua): a rejection adds the amount to "
            "'rejected' (of the pot and the instance) and to_returned to the instance's "
            "'returned'",
        ),
        Key(
            "events_epoch",
            "instance events epoch (string, base36 of now_ms, SET NX by the first event; "
            "includes/events.lua)",
        ),
    ),
    argv=(
        Arg("now", "now, epoch ms (integer)"),
        Arg("win_id", "win id"),
        Arg("decision", "decision: 'approve' | 'reject'"),
        Arg("reason", "reason (free text, may be '')"),
        Arg("by", "who decided (admin username or 'cli')"),
        Arg("operator_id", "operator whose win it must be ('' = any: the command line)"),
        Arg("event_id", "event id of the WinDecisionEvent"),
        Arg("events_cap", "events stream cap, entries (integer >= 1)"),
        Arg("publish_mode", "'publish' | 'spublish' (Redis Cluster)"),
    ),
    refusals=(
        BAD_ARGUMENT,
        Code.WIN_ALREADY_DECIDED,
        Code.WIN_NOT_FOUND,
        Code.WIN_NOT_WITHHELD,
    ),
)

DRAW_RAFFLE = ScriptSpec(
    "draw_raffle",
    "Draw a raffle round and close it, atomically: distinct winners weighted by tickets, one per "
    "prize in order, each found in O(log n) in the round's Fenwick tree (includes/fenwick.lua); "
    "prizes paid from the prize pot; the next round opened (a recurring raffle) so that every "
    "ticket awarded after this script belongs to it.",
    keys=(
        Key("engine", "instance engine (string, JSON)"),
        Key(
            "state",
            "instance state (hash: raffle:round, raffle:key, raffle:commitment, raffle:opened, "
            "raffle:ends, raffle:next_key, raffle:next_commitment, raffle:closed, pot values and "
            "totals; raffle:seed only in a round opened before seeds were derived)",
        ),
        Key("tickets", "instance raffle tickets (hash, fields prefixed '<round>|'; read only)"),
        Key("ledger", "instance ledger (stream)"),
        Key("wins", "instance wins (hash: win id -> win record JSON; includes/wins.lua)"),
        Key("wins_index", "instance recent-wins index (sorted set, groups capped at ARGV[7])"),
        Key("events", "instance events (stream, capped near ARGV[9] entries; includes/events.lua)"),
        Key("channel", "instance event channel (PUBLISH / SPUBLISH target)"),
        Key(
            "raffle_rounds",
            "instance raffle rounds (hash: '<round>' -> the drawn round's record, JSON)",
        ),
        Key(
            "meter",
            "instance meter counters (hash; includes/meters.lua): each prize adds to wins and its"
            " shortfall to seed_funding (of the instance, and of the prize pot with a hit)",
        ),
        Key(
            "events_epoch",
            "instance events epoch (string, base36 of now_ms, SET NX by the first event; "
            "includes/events.lua)",
        ),
    ),
    argv=(
        Arg("now", "now, epoch ms"),
        Arg("round", "round to draw (must be the open round)"),
        Arg(
            "seed",
            "the round's seed, hex (revealed in the record and the ledger; the caller checked it "
            "against the commitment; a legacy raffle:seed must equal it)",
        ),
        Arg("event_id", "event id of the RaffleWinEvent (or of the RaffleNoWinnersEvent)"),
        Arg("jackpot_name", "jackpot name ('' = null)"),
        Arg("currency_multipliers", "currency multipliers, raw JSON object, embedded verbatim"),
        Arg("recent_wins_cap", "recent-wins cap per index group (integer >= 1)"),
        Arg("publish_mode", "'publish' | 'spublish'"),
        Arg("events_cap", "events stream cap, entries (integer >= 1)"),
        Arg(
            "next_commitment",
            "next round's commitment, sha256 hex of its seed ('' = no next round)",
        ),
        Arg("next_key_id", "id of the next round's draw key ('' with no next round)"),
        Arg("next_ends", "next round's end, epoch ms ('' = none)"),
        Arg("by", "who draws (scheduler, an admin's name, cli), for the ledger"),
        Arg(
            "snapshot_hash",
            "snapshot hash, hex: of the round's ticket lines, sealed (close_round-2.lua), each "
            "player named by its salted commit (snapshot version 2, app/services/draws.py)",
        ),
        Arg("tickets", "the snapshot's tickets (must equal the round's total)"),
        Arg(
            "after_next_commitment",
            "commitment of the round after the next ('' = none), published now",
        ),
        Arg("after_next_key_id", "id of its draw key ('' = none)"),
        Arg("next_event_id", "event id of the next round's RaffleRoundOpenedEvent"),
        Arg("draw_version", "draw version (2: the randoms of app/services/draws.py)"),
    ),
    rest=Arg(
        "winner_randoms",
        "ARGV[20 + 3(k-1) .. 22 + 3(k-1)] for each winner k = 1..W, W = min(P, players), P = "
        "#engine.raffle.prizes: u_k, t_k, i_k (above)",
    ),
    refusals=(
        BAD_ARGUMENT,
        Code.INSTANCE_NOT_FOUND,
        Code.NOT_A_RAFFLE,
        Code.ROUND_MISMATCH,
        Code.ROUND_NOT_CLOSED,
        Code.SEED_MISMATCH,
        Code.SNAPSHOT_MISMATCH,
    ),
)

MARK_ARCHIVED = ScriptSpec(
    "mark_archived",
    "Record that the ledger is archived (exported, read back and verified, its manifest written) "
    "up to entry `archived_id` included.",
    keys=(Key("books", "instance books (hash; see read_checkpoint-3.lua)"),),
    argv=(
        Arg("archived_id", "the last archived entry id ('<ms>-<seq>')"),
        Arg("day", "the archived day (YYYY-MM-DD, kept for operators)"),
    ),
    refusals=(BAD_ARGUMENT,),
)

OPEN_ROUND = ScriptSpec(
    "open_round",
    "Open a raffle's first round: publish its commitment (sha256 hex of its seed) and the next "
    "round's in the state, the ledger and a RaffleRoundOpenedEvent.",
    keys=(
        Key("state", "instance state (hash)"),
        Key("ledger", "instance ledger (stream)"),
        Key(
            "events", "instance events (stream, capped near ARGV[10] entries; includes/events.lua)"
        ),
        Key("channel", "instance event channel (PUBLISH / SPUBLISH target)"),
        Key(
            "events_epoch",
            "instance events epoch (string, base36 of now_ms, SET NX by the first event; "
            "includes/events.lua)",
        ),
    ),
    argv=(
        Arg("now", "now, epoch ms"),
        Arg(
            "key_id",
            "id of the draw key of round 1 (public: it names the key, reveals nothing of it)",
        ),
        Arg("commitment", "round 1's commitment, sha256 hex of its seed"),
        Arg("ends", "round 1's end, epoch ms ('' = none)"),
        Arg("next_key_id", "id of the draw key of round 2"),
        Arg("next_commitment", "round 2's commitment ('' = a raffle of one round)"),
        Arg("event_id", "event id of the RaffleRoundOpenedEvent"),
        Arg("jackpot_name", "jackpot name ('' = null)"),
        Arg("publish_mode", "'publish' | 'spublish'"),
        Arg("events_cap", "events stream cap, entries (integer >= 1)"),
        Arg("instance_id", "instance id (for the event)"),
    ),
    refusals=(
        BAD_ARGUMENT,
        Code.INSTANCE_NOT_FOUND,
    ),
)

PURGE_OPTINS = ScriptSpec(
    "purge_optins",
    "End the opt-in records of a Terminated instance (the scheduler runs it OPTIN_RETENTION_DAYS "
    "after the termination, app/services/admin.py): the whole opt-ins hash goes (UNLINK: Redis "
    "frees a big one in the background) and the state remembers when, so that a later opt-out "
    "(allowed in every status, lua/set_optin-5.lua) answers without writing a record again.",
    keys=(
        Key("state", "instance state (hash: status; gets optins:purged)"),
        Key("optins", "instance opt-ins (hash; app/store/optins.py)"),
    ),
    argv=(Arg("now", "now, epoch ms"),),
    refusals=(
        BAD_ARGUMENT,
        Code.INSTANCE_NOT_FOUND,
        Code.INVALID_TRANSITION,
    ),
)

READ_BOOKS = ScriptSpec(
    "read_books",
    "Read an instance's live money state and the id of its latest ledger entry in one atomic "
    "step, so a reconciliation replays exactly the entries that made that state (every script "
    "that moves money writes the state and the ledger together).",
    keys=(
        Key("state", "instance state (hash)"),
        Key("ledger", "instance ledger (stream)"),
    ),
    argv=(),
    refusals=(),
)

READ_CHECKPOINT = ScriptSpec(
    "read_checkpoint",
    "Read, in one atomic step, what a reconciliation starts from: the id of the instance's latest"
    " ledger entry, its books hash (the last reconciliation checkpoint and how far the ledger is "
    "archived) and its live money state.",
    keys=(
        Key("state", "instance state (hash)"),
        Key("ledger", "instance ledger (stream)"),
        Key(
            "books",
            "instance books (hash: 'checkpoint' JSON, 'checkpoint_id', 'archived_id', "
            "'decision:<win id>' approved|rejected; app/store/ledger.py)",
        ),
    ),
    argv=(),
    refusals=(),
)

READ_METERS = ScriptSpec(
    "read_meters",
    "Read what the meter report needs in one atomic step: the instance's live state, the id of "
    "its latest ledger entry and its meter counters (includes/meters.lua), so the counters and "
    "the pot values are of the same moment.",
    keys=(
        Key("state", "instance state (hash)"),
        Key("ledger", "instance ledger (stream; only its last entry id is read)"),
        Key("meter", "instance meter counters (hash; includes/meters.lua)"),
    ),
    argv=(
        Arg(
            "mode",
            "'fields': ARGV[2..] are the counter fields to read (HMGET); 'all': every counter "
            "(HGETALL, for a period of many days: the hash holds only the days that happened)",
        ),
    ),
    rest=Arg(
        "fields",
        "ARGV[2..] counter fields ('<scope>|<figure>', '<yyyymmdd>|<scope>|<figure>') with "
        "'fields'",
    ),
    refusals=(BAD_ARGUMENT,),
)

READ_ROUND_TICKETS = ScriptSpec(
    "read_round_tickets",
    "Read a chunk of a drawn raffle round's ticket snapshot, the same whether the round is live, "
    "being archived or archived (archive_round-5.lua): each call is atomic, and the archive "
    "copies the lines in index order before it removes anything, so lines not yet in the copy are"
    " still live.",
    keys=(
        Key(
            "tickets",
            "instance raffle tickets (hash, fields prefixed '<round>|'; contribute-13.lua)",
        ),
        Key(
            "archived_tickets",
            "the archived round's tickets (list, element i-1 = '<player key> <tickets>', or '<i> "
            "<player key> <tickets>' in a round archived before; archive_round-5.lua)",
        ),
    ),
    argv=(
        Arg("round", "round"),
        Arg("first", "first index to read, from 1"),
        Arg("count", "how many (integer >= 1)"),
        Arg("players", "the round's players (its record's `players`): the last index"),
    ),
    refusals=(BAD_ARGUMENT,),
)

READ_WINS = ScriptSpec(
    "read_wins",
    "Read the latest wins of several index groups in one round trip (for example the wins of "
    "every pot of an instance, or the wins of one brand).",
    keys=(
        Key("wins", "instance wins (hash: win id -> win record JSON; includes/wins.lua)"),
        Key("wins_index", "instance recent-wins index (sorted set; includes/wins.lua)"),
    ),
    argv=(Arg("limit", "limit: how many wins per group at most (integer >= 0)"),),
    rest=Arg(
        "groups",
        "ARGV[2..] index groups ('i', 'p:<pot>', 'b:<operator>:<brand>', "
        "'bp:<operator>:<brand>:<pot>')",
    ),
    refusals=(BAD_ARGUMENT,),
)

RECORD_SNAPSHOT = ScriptSpec(
    "record_snapshot",
    "Record the hash of a drawn round's ticket snapshot (computed by the caller from the round's "
    "frozen tickets after the draw) in the round's record and the ledger, once.",
    keys=(
        Key(
            "raffle_rounds",
            "instance raffle rounds (hash: '<round>' -> record, '<round>|snapshot' -> hash)",
        ),
        Key("ledger", "instance ledger (stream)"),
    ),
    argv=(
        Arg("round", "round"),
        Arg("snapshot_hash", "snapshot hash (sha256 hex)"),
        Arg("now", "now, epoch ms"),
    ),
    refusals=(
        BAD_ARGUMENT,
        Code.ROUND_NOT_DRAWN,
    ),
)

SAVE_CHECKPOINT = ScriptSpec(
    "save_checkpoint",
    "Store a reconciliation checkpoint: the books replayed from the ledger up to entry "
    "`checkpoint_id` (app/services/books.py), written only when it is later than the one held, so"
    " concurrent reconciliations never move the checkpoint back (the archive trims the ledger up "
    "to the checkpoint, never past it).",
    keys=(Key("books", "instance books (hash; see read_checkpoint-3.lua)"),),
    argv=(
        Arg("checkpoint_id", "checkpoint id: the ledger entry id the books are at ('<ms>-<seq>')"),
        Arg("books", "the books as JSON (opaque here)"),
    ),
    rest=Arg("decision_pairs", "ARGV[3..] pairs: win id, decision (approved | rejected)"),
    refusals=(BAD_ARGUMENT,),
)

SET_OPTIN = ScriptSpec(
    "set_optin",
    "Opt one player in or out of one instance, and announce it with an OptInEvent.",
    keys=(
        Key("state", "instance state (hash; read: status, timestamp_end, optins:purged)"),
        Key("optins", "instance opt-ins (hash)"),
        Key(
            "events",
            "instance events (stream, capped near ARGV[12] entries; includes/events.lua); each "
            "entry has the fields event_id <uuid>, event_type OptInEvent, payload <the envelope>",
        ),
        Key(
            "channel",
            "instance event channel (pub/sub channel name, not a key; in KEYS because it shares "
            "the instance's hash tag and slot, which SPUBLISH on a cluster requires)",
        ),
        Key(
            "events_epoch",
            "instance events epoch (string, base36 of now_ms, SET NX by the first event; "
            "includes/events.lua)",
        ),
    ),
    argv=(
        Arg("opt_in", "opt_in: '1' to opt in, '0' to opt out"),
        Arg("now", "now, epoch milliseconds"),
        Arg("player_key", "player key `<operator>:<brand>:<player>` (field prefix in KEYS[2])"),
        Arg(
            "value",
            "preferred value, micro-units of the instance currency, a positive integer without "
            "leading zeros, or '' for none (use the instance's default)",
        ),
        Arg(
            "value_raw",
            "the preferred value as the player gave it (display string such as '0.5'); '' iff "
            "ARGV[4] is ''",
        ),
        Arg("currency", "the currency of ARGV[5]; '' iff ARGV[4] is ''"),
        Arg("event_id", "event id (uuid made by the caller)"),
        Arg("instance_id", "instance id, for the event"),
        Arg("player_id", "player id, for the event"),
        Arg(
            "player_brand",
            "player brand path `<operator>:<brand>`, for the event (player_brand_id)",
        ),
        Arg("publish_mode", "publish mode: 'publish' | 'spublish' (Redis Cluster)"),
        Arg("events_cap", "events stream cap, entries (integer >= 1)"),
    ),
    refusals=(
        BAD_ARGUMENT,
        Code.INSTANCE_ENDED,
        Code.INSTANCE_NOT_FOUND,
        Code.INSTANCE_TERMINATED,
    ),
)

SET_STATUS = ScriptSpec(
    "set_status",
    "Move an instance through its lifecycle: Pending -> Active <-> Paused -> Terminated, and tell"
    " the event stream (an InstanceStatusEvent, which the web processes turn into the instance's "
    "JackpotUpdateEvent at once instead of at their next update tick).",
    keys=(
        Key("state", "instance state (hash)"),
        Key("ledger", "instance ledger (stream)"),
        Key("events", "instance events (stream, capped near ARGV[7] entries; includes/events.lua)"),
        Key("channel", "instance event channel (PUBLISH / SPUBLISH target)"),
        Key(
            "meter",
            "instance meter counters (hash; includes/meters.lua): a close adds to 'returned'",
        ),
        Key(
            "events_epoch",
            "instance events epoch (string, base36 of now_ms, SET NX by the first event; "
            "includes/events.lua)",
        ),
    ),
    argv=(
        Arg(
            "action",
            "action: activate | pause | resume | terminate | close (a Terminated instance's pots,"
            " when terminate left them for a raffle's last draw; nothing when none hold money)",
        ),
        Arg("now", "now, epoch milliseconds"),
        Arg("by", "who asked (admin username or 'scheduler'), for the ledger"),
        Arg("instance_id", "the instance id (for the event)"),
        Arg("event_id", "event id of the InstanceStatusEvent"),
        Arg("publish_mode", "'publish' | 'spublish'"),
        Arg("events_cap", "events stream cap, entries (integer >= 1)"),
    ),
    refusals=(
        BAD_ARGUMENT,
        Code.INSTANCE_NOT_FOUND,
        Code.INVALID_TRANSITION,
    ),
)

TAKE_LOGIN_ATTEMPT = ScriptSpec(
    "take_login_attempt",
    "Take one login attempt of a subject (a client address and a username) inside a fixed window:"
    " counted and decided in this one call, so attempts made at the same time cannot all pass a "
    "check that none of them has been counted in yet.",
    keys=(
        Key(
            "login_attempts",
            "login attempt counter of the subject (string; expires with its window)",
        ),
    ),
    argv=(
        Arg("limit", "attempts allowed per window (integer >= 1)"),
        Arg(
            "window_ms",
            "window length in milliseconds (integer >= 1), from the window's first attempt",
        ),
    ),
    refusals=(BAD_ARGUMENT,),
)

TRIM_LEDGER = ScriptSpec(
    "trim_ledger",
    "Remove up to `limit` of the oldest ledger entries at or before `until_id`, with XTRIM MINID,"
    " so one call holds Redis for a bounded time; the caller repeats until it answers 0. Only "
    "entries both archived (books 'archived_id') and covered by the reconciliation checkpoint "
    "(books 'checkpoint_id') may go: a later `until_id` is refused.",
    keys=(
        Key("ledger", "instance ledger (stream)"),
        Key("books", "instance books (hash; see read_checkpoint-3.lua)"),
    ),
    argv=(
        Arg("until_id", "until_id: the last entry id that may be removed ('<ms>-<seq>')"),
        Arg("limit", "limit: entries removed at most by this call (1..100000)"),
    ),
    refusals=(
        BAD_ARGUMENT,
        Code.LEDGER_NOT_ARCHIVED,
        Code.LEDGER_NOT_CHECKPOINTED,
    ),
)

TABLE: tuple[ScriptSpec, ...] = tuple(
    value for value in tuple(globals().values()) if isinstance(value, ScriptSpec)
)
BY_NAME: dict[str, ScriptSpec] = {spec.name: spec for spec in TABLE}


def check_table(table: tuple[ScriptSpec, ...]) -> None:
    """Refuse a malformed table: a bad or repeated name, a repeated KEYS or ARGV name, a
    repeated refusal."""
    seen: set[str] = set()
    for spec in table:
        if not _NAME.match(spec.name) or spec.name in seen:
            raise ValueError(f"script name {spec.name!r} is malformed or declared twice")
        seen.add(spec.name)
        names = [key.name for key in spec.keys] + [arg.name for arg in spec.argv]
        if spec.rest is not None:
            names.append(spec.rest.name)
        for part_name in names:
            if not _NAME.match(part_name):
                raise ValueError(f"{spec.name}: KEYS/ARGV name {part_name!r} is malformed")
        if len({key.name for key in spec.keys}) != len(spec.keys):
            raise ValueError(f"{spec.name}: two KEYS share a name")
        argv_names = [arg.name for arg in spec.argv] + ([spec.rest.name] if spec.rest else [])
        if len(set(argv_names)) != len(argv_names):
            raise ValueError(f"{spec.name}: two ARGV share a name")
        if len(set(spec.refusals)) != len(spec.refusals):
            raise ValueError(f"{spec.name}: a refusal is listed twice")


def _check_constants() -> None:
    for constant, value in tuple(globals().items()):
        if isinstance(value, ScriptSpec) and constant != value.name.upper():
            raise ValueError(
                f"{constant} declares the script {value.name!r}: name it {value.name.upper()}"
            )


check_table(TABLE)
_check_constants()
