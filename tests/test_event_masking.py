"""Masking is declared per event type in the catalogue and fails closed: every event type that
names a player or a brand reaches another operator with nothing of that operator's player."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from marshmallow import ValidationError
from quart.testing import QuartClient

from app.core.config import Settings
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
from app.services import Services
from app.services.events.messages import Message
from app.store import keys
from tests.conftest import DEMO, PLATFORM, RIVAL, auth, load_demo, make_settings
from tests.support.definitions import hit_rate, instance, pot
from tests.support.events import authenticate, receive_until
from tests.support.http import contribution, create_instance, expect, post

SECRET = "secret"  # every value only the owning operator may read contains this
POT = {"id": "mini", "name": "Mini", "is_progressive": True, "current_value": "10"}
RECENT = {"win_pot_id": "mini", "win_amount": "5", "currency": "EUR", "timestamp": 1}
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
        "next_draw_at": None,
        "last_updated": 1,
        "recent_wins": [
            {
                **RECENT,
                "win_id": "w1",
                "brand_id": "demo:brand1",
                "player_id": "secret-player",
                "win_withheld": False,
                "source_id": None,
            },
            {
                **RECENT,
                "win_id": "w2",
                "brand_id": "rival:main",
                "player_id": "rival-player",
                "win_withheld": False,
                "source_id": None,
            },
        ],
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
    assert SECRET not in event.text_for("rival")
    assert SECRET in event.text_for("demo")


@pytest.mark.parametrize("event_type", [EventType.RAFFLE_WIN, EventType.JACKPOT_UPDATE])
def test_the_other_operators_players_stay_readable_to_their_own_operator(
    event_type: EventType,
) -> None:
    event = message(event_type)
    assert "rival-player" in event.text_for("rival")
    assert "rival-player" not in event.text_for("demo")
    assert MASKED_PLAYER in event.text_for("demo")


def test_an_event_type_without_a_declaration_is_never_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(MASKS, EventType.JACKPOT_WIN)
    with pytest.raises(ValidationError):
        message(EventType.JACKPOT_WIN).text_for("rival")


@pytest.mark.parametrize("event_type", sorted(INTERNAL_EVENTS))
def test_internal_events_are_never_rendered_for_a_client(event_type: EventType) -> None:
    with pytest.raises(ValueError):
        MASKS[event_type]({}, "demo")


# -- through the hub: every catalogue type to subscribers of two operators --------------------
ALIKE_SAMPLES: dict[EventType, dict[str, Any]] = {
    EventType.RAFFLE_NO_WINNERS: {
        "instance_id": "shared",
        "jackpot_name": "Shared",
        "timestamp": 1,
        "round": 1,
        "reason": "NO_TICKETS",
        "unpaid_prizes": [1],
    },
    EventType.RAFFLE_ROUND_OPENED: {
        "instance_id": "shared",
        "jackpot_name": "Shared",
        "round": 2,
        "opened": 1,
        "ends": None,
        "commitment": "ab" * 32,
        "key_id": "k1",
        "next_commitment": None,
    },
}


@pytest.fixture
def settings() -> Settings:
    return make_settings(f"memory://masking-{uuid.uuid4().hex}", update_interval_s=0.2)


async def test_every_catalogue_type_sent_through_the_hub_is_masked_as_declared(
    client: QuartClient, gateway: Services
) -> None:
    """Each public event type goes into a shared instance's stream as a script writes it;
    demo (whose player and brand the samples name) and rival each receive what MASKS
    declares for them, and rival never a secret. The update comes as a snapshot whose
    recent wins hold a real win of demo's player."""
    assert set(SAMPLES) | set(ALIKE_SAMPLES) == set(PUBLIC_EVENTS)  # a new type needs one
    await load_demo(gateway)
    winning = [pot("mini", "0.5", hit_rate(1), seed="10"), pot("grand", "0.2")]
    shared = instance("shared", pots=winning, allowed_brands=["demo:brand1", "rival:main"])
    await create_instance(client, auth(gateway, PLATFORM), shared)
    body = {**contribution("shared", "secret-player"), "event_metadata": {"n": "secret-meta"}}
    await expect(await post(client, "/jackpots/contribute", body, auth(gateway, DEMO)), 200)
    sockets = {}
    try:
        for principal in (DEMO, RIVAL):
            ws = await client.websocket("/events").__aenter__()
            await ws.send(authenticate(gateway.tokens.issue(principal), instance_ids=["shared"]))
            await receive_until(ws, "Authenticated")
            sockets[principal.operator_id] = ws
        snapshots = {
            op: await receive_until(ws, "JackpotUpdateEvent") for op, ws in sockets.items()
        }
        (demo_win,) = snapshots["demo"]["data"]["recent_wins"]
        (rival_view,) = snapshots["rival"]["data"]["recent_wins"]
        assert demo_win["player_id"] == "secret-player"
        assert rival_view == {**demo_win, "player_id": MASKED_PLAYER}
        assert snapshots["rival"]["data"]["allowed_brands"] == ["rival:main"]
        samples = {**SAMPLES, **ALIKE_SAMPLES}
        sent = [t for t in PUBLIC_EVENTS if t != EventType.JACKPOT_UPDATE]
        for event_type in sent:
            payload = encode_event(event_type, uuid.uuid4().hex, samples[event_type])
            fields_ = {"event_id": "x", "event_type": event_type.value, "payload": payload}
            await gateway.store.client.xadd(keys.instance_events("shared"), fields_)
            await gateway.store.client.publish(keys.instance_channel("shared"), payload)
        for operator_id, ws in sockets.items():
            for event_type in sent:
                received = await receive_until(ws, event_type.value)
                assert received["channel"] == "shared"
                assert len(received["event_id"].encode()) <= 64
                data = decode_event(encode_event(event_type, "x", samples[event_type]))["data"]
                assert received["data"] == MASKS[event_type](data, operator_id)
                text = json.dumps(received, default=str)
                assert (SECRET in text) == (operator_id == "demo" and event_type in SAMPLES)
    finally:
        for ws in sockets.values():
            await ws.__aexit__(None, None, None)
