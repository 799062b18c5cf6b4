"""Schemas of the jackpot managers' operations: audit trail, boosts, reports, callbacks."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from app.core.clock import DAY_MS
from app.schemas.common import Amount, Id, StrictSchema


def Money(description: str = "", **kwargs: Any) -> fields.Raw:
    """An amount answered as an exact JSON number (a Decimal written by app.core.jsonio)."""
    return fields.Raw(metadata={"type": "number", "description": description}, **kwargs)


class AuditEntrySchema(StrictSchema):
    id = fields.String(metadata={"description": "stream entry id; page with ?after=<id>"})
    at = fields.Integer(metadata={"description": "epoch ms"})
    by = fields.String(metadata={"description": "username, or cli / scheduler"})
    by_operator = fields.String(allow_none=True)
    action = fields.String(metadata={"description": "e.g. instance.create, account.delete"})
    target = fields.String()
    before = fields.Raw(allow_none=True, metadata={"description": "secrets shown [redacted]"})
    after = fields.Raw(allow_none=True)
    changed = fields.List(fields.String(), metadata={"description": "top-level fields changed"})


class AuditPageSchema(StrictSchema):
    entries = fields.List(fields.Nested(AuditEntrySchema))
    next = fields.String(allow_none=True, metadata={"description": "`after` of the next page"})


class BoostSchema(StrictSchema):
    """A seed boost: operator money added to a pot's reserve (default) or value."""

    EXAMPLE = {"pot_id": "mini", "amount": "50.00", "target": "reserve", "boost_id": "boost-1"}

    pot_id = Id(required=True)
    amount = Amount(required=True, minimum=0, min_inclusive=False)
    target = fields.String(load_default="reserve", validate=validate.OneOf(["reserve", "value"]))
    boost_id = Id(
        load_default=None,
        metadata={"description": "retry-safe: a repeated id applies once (made when absent)"},
    )


class BoostViewSchema(StrictSchema):
    boost_id = fields.String()
    instance_id = fields.String()
    pot_id = fields.String()
    target = fields.String()
    amount = Money()
    to_value = Money("part added to the pot (up to its max_value)")
    to_reserve = Money("part added to the pot's reserve")


class ReconciliationLineSchema(StrictSchema):
    field = fields.String(metadata={"description": "pot:<id>:value|reserve|deficit, total:<name>"})
    ledger = Money("what the ledger's replay says")
    live = Money(
        "what the live state holds (null: not an integer, named in corrupt)", allow_none=True
    )
    difference = Money("live - ledger, to the micro-unit (null when live is)", allow_none=True)


class ConservationSchema(StrictSchema):
    paid_in = Money("contributions + seed funding + boosts")
    held_and_paid_out = Money("pot values + reserves + house + wins + returned")
    difference = Money()


class ReconciliationSchema(StrictSchema):
    instance_id = fields.String()
    as_of_entry = fields.String(allow_none=True, metadata={"description": "last ledger id"})
    entries_replayed = fields.Integer(
        metadata={"description": "live entries replayed after the checkpoint (all: none)"}
    )
    entries_total = fields.Integer(
        metadata={"description": "ledger entries the figures cover (archived ones included)"}
    )
    checkpoint = fields.String(
        allow_none=True,
        metadata={"description": "the ledger id of the checkpoint the replay started from"},
    )
    checkpoint_saved = fields.Boolean(
        metadata={"description": "whether this balanced report became the new checkpoint"}
    )
    balanced = fields.Boolean()
    differences = fields.List(fields.Nested(ReconciliationLineSchema))
    compared = fields.List(fields.Nested(ReconciliationLineSchema))
    unknown_entries = fields.Dict(
        keys=fields.String(), values=fields.Integer(), metadata={"description": "type -> count"}
    )
    corrupt = fields.List(
        fields.String(),
        metadata={"description": "stored money fields that are not integers, each named"},
    )
    decisions = fields.List(
        fields.String(),
        metadata={"description": "wins whose record's decision differs from the ledger's"},
    )
    conservation = fields.Nested(ConservationSchema)


class MeterQuerySchema(StrictSchema):
    """The report's period: a UTC `date` (today when nothing is given) or `from` and `to`,
    epoch ms at midnight UTC (whole days: the meters are counted per UTC day)."""

    date = fields.Date(load_default=None, metadata={"description": "UTC day, YYYY-MM-DD"})
    from_ms = fields.Integer(
        data_key="from", load_default=None, strict=False, validate=validate.Range(min=0)
    )
    to_ms = fields.Integer(
        data_key="to", load_default=None, strict=False, validate=validate.Range(min=0)
    )
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "csv"]))

    @validates_schema
    def _one_period(self, data: dict[str, Any], **kwargs: Any) -> None:
        bounds = (data["from_ms"], data["to_ms"])
        if bounds == (None, None):
            return
        if None in bounds:
            raise ValidationError("Give both from and to (epoch ms).", "from")
        if data["date"] is not None:
            raise ValidationError("Give a date or from and to, not both.", "date")
        if bounds[0] >= bounds[1]:
            raise ValidationError("from must be before to.", "from")
        if bounds[0] % DAY_MS or bounds[1] % DAY_MS:
            # the meters are counted per UTC day (lua/includes/meters.lua)
            raise ValidationError("from and to must be at midnight UTC (whole days).", "from")


class MeterFiguresSchema(StrictSchema):
    contributions = Money()
    wins = Money()
    hits = fields.Integer()
    seed_funding = Money("initial seeds and reseed shortfalls (operator money)")
    boosts = Money("seed boosts (operator money)")


class InstanceFiguresSchema(MeterFiguresSchema):
    house = Money()
    returned = Money("returned to the operator: a terminated instance's pots, rejected wins")


class AwardSchema(StrictSchema):
    win_id = fields.String(allow_none=True)
    amount = Money()
    timestamp = fields.Integer()
    withheld = fields.Boolean()
    decision = fields.String(allow_none=True, metadata={"description": "approved | rejected"})


class PotMetersSchema(StrictSchema):
    pot_id = fields.String()
    name = fields.String()
    is_progressive = fields.Boolean()
    current_value = Money()
    reserve = Money()
    seed = Money("reset value")
    cap = Money("max_value; null when uncapped", allow_none=True)
    share = Money()
    reserve_share = Money()
    increment_rate = Money("share of each contribution that raises the value")
    cumulative = fields.Nested(MeterFiguresSchema)
    period = fields.Nested(MeterFiguresSchema)
    last_awards = fields.List(fields.Nested(AwardSchema), metadata={"description": "newest first"})


class PeriodSchema(StrictSchema):
    from_ms = fields.Integer(data_key="from")
    to_ms = fields.Integer(data_key="to")


class MeterReportSchema(StrictSchema):
    instance_id = fields.String()
    name = fields.String()
    currency = fields.String()
    status = fields.String(allow_none=True)
    generated_at = fields.Integer()
    as_of_entry = fields.String(allow_none=True)
    period = fields.Nested(PeriodSchema)
    cumulative = fields.Nested(InstanceFiguresSchema)
    period_totals = fields.Nested(InstanceFiguresSchema)
    pots = fields.List(fields.Nested(PotMetersSchema))


class OperatorQuerySchema(StrictSchema):
    """Whose records (failed callbacks, withheld wins, audit trail) a request reaches."""

    operator_id = Id(
        load_default=None,
        metadata={
            "description": "The operator; default: the caller's. Another operator's needs the "
            "platform role (else 403 OPERATOR_FORBIDDEN)."
        },
    )


class FailedQuerySchema(OperatorQuerySchema):
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))


class FailedDeliverySchema(StrictSchema):
    delivery_id = fields.String(metadata={"description": "the X-Jackpot-Delivery id, kept"})
    operator_id = fields.String()
    instance_id = fields.String(allow_none=True)
    url = fields.String()
    last_error = fields.String()
    attempts = fields.Integer()
    failed_at = fields.Integer(metadata={"description": "epoch ms of the last attempt"})


class FailedDeliveriesSchema(StrictSchema):
    deliveries = fields.List(
        fields.Nested(FailedDeliverySchema), metadata={"description": "oldest first"}
    )


class RedeliveredSchema(StrictSchema):
    redelivered = fields.List(fields.String(), metadata={"description": "delivery ids queued"})


class DeadLetterSchema(StrictSchema):
    job_id = fields.String(metadata={"description": "the queued job's id; replay keeps it"})
    kind = fields.String(
        validate=validate.OneOf(["contribution", "callback"]),
        metadata={"description": "an asynchronous contribution, or a callback delivery"},
    )
    operator_id = fields.String(allow_none=True)
    delivery_id = fields.String(
        allow_none=True, metadata={"description": "the X-Jackpot-Delivery id of its outcome"}
    )
    enqueued_at = fields.Integer(allow_none=True, metadata={"description": "epoch ms"})
    failed_at = fields.Integer(
        allow_none=True, metadata={"description": "epoch ms of the last attempt"}
    )
    last_error = fields.String()


class DeadLettersSchema(StrictSchema):
    dead_letters = fields.List(
        fields.Nested(DeadLetterSchema), metadata={"description": "oldest first"}
    )


class ReplayedSchema(StrictSchema):
    replayed = fields.List(fields.String(), metadata={"description": "job ids queued again"})


class WithheldQuerySchema(OperatorQuerySchema):
    instance_id = Id(load_default=None)
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0))


class DecisionSchema(StrictSchema):
    EXAMPLE = {"reason": "Identity checked."}

    reason = fields.String(load_default="", validate=validate.Length(max=500))


class RejectionSchema(StrictSchema):
    EXAMPLE = {"reason": "Bonus abuse confirmed."}

    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class WinViewSchema(StrictSchema):
    win_id = fields.String()
    instance_id = fields.String()
    win_pot_id = fields.String()
    operator_id = fields.String()
    brand_id = fields.String()
    player_id = fields.String()
    win_amount = Money()
    currency = fields.String()
    timestamp = fields.Integer()
    gameround_id = fields.String(allow_none=True)
    source_id = fields.String(allow_none=True)
    win_withheld = fields.Boolean(metadata={"description": "false once approved (paid)"})
    decision = fields.String(allow_none=True, metadata={"description": "approved | rejected"})
    decided_at = fields.Integer(allow_none=True)
    decided_by = fields.String(allow_none=True)
    decision_reason = fields.String(allow_none=True)


class WithheldPageSchema(StrictSchema):
    total = fields.Integer(metadata={"description": "withheld wins waiting, in all pages"})
    wins = fields.List(fields.Nested(WinViewSchema), metadata={"description": "oldest first"})
