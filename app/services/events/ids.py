"""A stream event's id: `<epoch>:<offset>`, about 25 bytes whatever the number of instances.

The offset is the event's entry id in its instance's stream; the epoch is the short string
stored next to the stream when its first event was written (a stream written before epochs
existed has NO_EPOCH until its next event). A client sends the last id it saw per channel to
resume there.
"""

from __future__ import annotations

import re
from typing import Any

NO_EPOCH = "0"  # a stream written before epochs existed (its first new event sets one)
MAX_EVENT_ID_BYTES = 64
_EVENT_ID = re.compile(r"^([0-9a-z]{1,16}):([0-9]{1,20})-([0-9]{1,20})$")


def event_id(epoch: str, offset: str) -> str:
    return f"{epoch}:{offset}"


def parse_event_id(text: Any) -> tuple[str, str] | None:
    """(epoch, offset) of a stream event's id, None when it is not one."""
    if not isinstance(text, str) or len(text) > MAX_EVENT_ID_BYTES:
        return None
    match = _EVENT_ID.match(text)
    if match is None:
        return None
    return match.group(1), f"{int(match.group(2))}-{int(match.group(3))}"
