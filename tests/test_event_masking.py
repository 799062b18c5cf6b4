"""Masking is declared per event type in the catalogue and fails closed: every event type that
names a player or a brand reaches another operator with nothing of that operator's player."""

from __future__ import annotations

from typing import Any

import pytest
from marshmallow import ValidationError

from app.schemas.events import (
    EVENT_SCHEMAS,
    INTERNAL_EVENTS,
    MASKED_PLAYER,
    MASKS,
    PUBLIC_EVENTS,
    EventType,
    decode_event,
    encode_event,
    same_for_everyone,
)
from app.services.events import Message

SECRET = "secret"  # every value only the owning operator may read contains this
POT = {"id": "mini", "name": "Mini", "is_progressive": True, "current_value": "10"}
WINNER = {"currency": "EUR", "win_amount": "5", "win_withheld": False}
SAMPLES: dict[EventType, dict[str, Any]] = {
    EventType.JACKPOT_UPDATE: {
        "id": "shared",
        "name": "Shared",
        "jackpot_type": "Jackpot",
        "currency": "EUR",
        "pots": [POT],
        "allowed_brands": ["demo:secret-brand", "rival:main"],
        "allowed_sources": [
            {"source_id": "secret-source", "owner_id": "demo:secret-brand"},
            {"source_id": "slots", "owner_id": "rival:main"},
        ],
        "status": "Active",
        "timestamp_start": None,
        "timestamp_end": None,
        "last_updated": 1,
    },
    EventType.JACKPOT_WIN: {
        "brand_id": "demo:brand1",
        "player_id": "secret-player",
        "source_id": None,
        "instance_id": "shared",
        "jackpot_name": "Shared",
        "timestamp": 1,
        "win_pot_id": "mini",
        "win_amount": "10",
        "jackpot_currency": "EUR",
        "currency_multipliers": {"EUR": 1},
        "seed": "10",
        "seed_deficit": "0",
        "win_withheld": False,
        "metadata": {"note": "secret-metadata"},
    },
    EventType.RAFFLE_WIN: {
        "brand_id": None,
        "instance_id": "shared",
        "jackpot_name": "Shared",
        "jackpot_currency": "EUR",
        "currency_multipliers": {"EUR": 1},
        "timestamp": 1,
        "round": 1,
        "winners": [
            {**WINNER, "player_id": "secret-player", "brand_id": "demo:brand1"},
            {**WINNER, "player_id": "rival-player", "brand_id": "rival:main"},
        ],
        "win_withheld": False,
        "unpaid_prizes": [],
    },
    EventType.OPT_IN: {
        "instance_id": "shared",
        "player_id": "secret-player",
        "ext_player_id": "secret-external-player",
        "player_brand_id": "demo:brand1",
        "preferred_contribution_value": None,
        "contribution_count": 1,
        "contribution_value": None,
        "opted_in": True,
        "last_updated": 1,
    },
    EventType.WIN_DECISION: {
        "instance_id": "shared",
        "win_id": "w1",
        "win_pot_id": "mini",
        "brand_id": "demo:brand1",
        "player_id": "secret-player",
        "win_amount": "10",
        "decision": "rejected",
        "reason": "secret: the manager's note about the player",
        "timestamp": 1,
    },
}


def message(event_type: EventType) -> Message:
    """The message as the hub holds it: a stream event decoded through the catalogue; a pot
    update as the hub builds it (its sources with their owners, for masking)."""
    if event_type == EventType.JACKPOT_UPDATE:
        return Message(event_type.value, "shared", None, SAMPLES[event_type])
    envelope = decode_event(encode_event(event_type, "id", SAMPLES[event_type]))
    return Message(event_type.value, "shared", "1-0", envelope["data"])


# Events that name no player, brand, source or metadata: shown alike to every operator.
SAME_FOR_EVERYONE = {EventType.RAFFLE_NO_WINNERS, EventType.RAFFLE_ROUND_OPENED}
PRIVATE_FIELDS = {"player_id", "ext_player_id", "brand_id", "player_brand_id", "metadata"}


def test_every_event_type_declares_its_masking_and_has_a_sample_here() -> None:
    assert set(MASKS) == set(EventType)
    assert set(SAMPLES) | SAME_FOR_EVERYONE == set(PUBLIC_EVENTS)


@pytest.mark.parametrize("event_type", sorted(SAME_FOR_EVERYONE))
def test_an_event_shown_alike_to_everyone_carries_nothing_private(event_type: EventType) -> None:
    assert MASKS[event_type] is same_for_everyone
    assert not PRIVATE_FIELDS & set(EVENT_SCHEMAS[event_type]().fields)


@pytest.mark.parametrize("event_type", sorted(SAMPLES))
def test_another_operator_sees_nothing_of_the_owners_players(event_type: EventType) -> None:
    event = message(event_type)
    assert SECRET not in event.data_for("rival")
    assert SECRET in event.data_for("demo")


def test_the_other_operators_players_stay_readable_to_their_own_operator() -> None:
    event = message(EventType.RAFFLE_WIN)
    assert "rival-player" in event.data_for("rival")
    assert "rival-player" not in event.data_for("demo")
    assert MASKED_PLAYER in event.data_for("demo")


def test_an_event_type_without_a_declaration_is_never_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(MASKS, EventType.JACKPOT_WIN)
    with pytest.raises(ValidationError):
        message(EventType.JACKPOT_WIN).data_for("rival")


@pytest.mark.parametrize("event_type", sorted(INTERNAL_EVENTS))
def test_internal_events_are_never_rendered_for_a_client(event_type: EventType) -> None:
    with pytest.raises(ValueError):
        MASKS[event_type]({}, "demo")
