"""What goes out on a websocket: events and control messages.

An event (Message) is built once per process and its text rendered once per operator:
masking differs per viewer, as the catalogue's MASKS declares for each event type (a type
without a declaration is never sent). Control messages (Authenticated, Subscribed,
ResumeFailed, Error, Ping) are not events: they carry no event id.
"""

from __future__ import annotations

import logging
from typing import Any

from marshmallow import ValidationError

from app.core import jsonio
from app.schemas.events import MASKS, EventType, JackpotUpdateEventSchema, decode_event
from app.services.events.ids import event_id
from app.store.events import StoredEvent

log = logging.getLogger("jackpot_gateway.events")

UPDATE = EventType.JACKPOT_UPDATE.value
UPDATE_SCHEMA = JackpotUpdateEventSchema()


def control(event_type: str, data: dict[str, Any], channel: str | None = None) -> str:
    """A message that is not an event (Authenticated, Subscribed, ResumeFailed, Error, Ping)."""
    return jsonio.dumps(
        {"event_type": event_type, "event_id": None, "channel": channel, "data": data}
    )


PING = control("Ping", {})


class Message:
    """One event, built once; its text is rendered once per operator (masking differs)."""

    __slots__ = ("_rendered", "data", "event_id", "event_type", "instance_id", "stream_id")

    def __init__(
        self,
        event_type: str,
        instance_id: str,
        stream_id: str | None,
        data: dict[str, Any],
        event_id: str | None = None,
    ) -> None:
        self.event_type = event_type
        self.instance_id = instance_id
        self.stream_id = stream_id  # None for a JackpotUpdateEvent (not in a stream)
        self.event_id = event_id
        self.data = data
        self._rendered: dict[str, str] = {}

    @classmethod
    def from_stored(cls, event: StoredEvent, epoch: str) -> Message | None:
        """The event as the catalogue reads it; None (logged) when it does not match."""
        try:
            envelope = decode_event(event.payload)
        except (ValidationError, ValueError):
            log.error(
                "event stream: %s %s is not in the catalogue", event.instance_id, event.stream_id
            )
            return None
        return cls(
            envelope["event_type"].value,
            event.instance_id,
            event.stream_id,
            envelope["data"],
            event_id(epoch, event.stream_id),
        )

    def _view(self, operator_id: str) -> dict[str, Any]:
        """What one operator may see, as the catalogue declares for this event type (MASKS):
        other operators' players masked, their brands and sources and their contributions'
        metadata left out. A type without a declaration is never sent."""
        mask = MASKS.get(EventType(self.event_type))
        if mask is None:
            raise ValidationError(f"{self.event_type} declares no masking (MASKS)")
        data = mask(self.data, operator_id)
        if self.event_type == UPDATE:
            errors = UPDATE_SCHEMA.validate(data)
            if errors:  # a defect: the catalogue and this builder disagree
                raise ValidationError(errors)
        return data

    def text_for(self, operator_id: str) -> str:
        text = self._rendered.get(operator_id)
        if text is None:
            text = self._rendered[operator_id] = (
                f'{{"event_type":"{self.event_type}",'
                f'"event_id":{jsonio.dumps(self.event_id)},'
                f'"channel":{jsonio.dumps(self.instance_id)},'
                f'"data":{jsonio.dumps(self._view(operator_id))}}}'
            )
        return text
