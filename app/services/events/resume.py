"""Resuming from a client's positions: per channel, replay after it, or fail and snapshot.

A client resumes with `positions: {channel: last event id}` for the channels it subscribes
to; per channel the missed entries are replayed in order, each once, or `ResumeFailed`
(reason epoch, ahead, trimmed or invalid) is followed by a fresh snapshot of that channel.
What the hub has not delivered yet is not replayed: live events bring it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.services.events.ids import NO_EPOCH, parse_event_id
from app.services.events.messages import control
from app.store.events import START, ChannelHead, stream_id_key

RESUME_FAILURES = {
    "invalid": "Not an event id of this channel.",
    "epoch": "The channel's stream was reset (new epoch): a fresh snapshot follows.",
    "ahead": "The position is ahead of the channel's stream: a fresh snapshot follows.",
    "trimmed": "Events after the position are no longer kept: a fresh snapshot follows.",
}


@dataclass
class ResumePlan:
    """Per channel with a parsed position: `resume` the stream after this offset, or `failed`
    (reason, position given); `floor`: the position is past what this process has delivered
    (another process was ahead), so its live events up to there are skipped; `epochs`: the
    channel's current epoch."""

    resume: dict[str, str] = field(default_factory=dict)
    failed: dict[str, tuple[str, Any]] = field(default_factory=dict)
    floor: dict[str, str] = field(default_factory=dict)
    epochs: dict[str, str] = field(default_factory=dict)


def parse_positions(
    positions: dict[str, str], channels: frozenset[str]
) -> tuple[dict[str, tuple[str, str]], dict[str, tuple[str, Any]]]:
    """The positions of subscribed channels as (epoch, offset), and those that are not event
    ids ("invalid"). Positions for channels outside the subscription are ignored."""
    parsed: dict[str, tuple[str, str]] = {}
    failed: dict[str, tuple[str, Any]] = {}
    for channel, given in positions.items():
        if channel not in channels:
            continue
        position = parse_event_id(given)
        if position is None:
            failed[channel] = ("invalid", given)
        else:
            parsed[channel] = position
    return parsed, failed


def plan_resume(
    positions: dict[str, str],
    parsed: dict[str, tuple[str, str]],
    heads: dict[str, ChannelHead],
    now: dict[str, str],
) -> ResumePlan:
    """Where each parsed position leads, given its channel's stream (`heads`) and what this
    process has delivered (`now`, a stream id per channel)."""
    plan = ResumePlan()
    for channel, (epoch, offset) in parsed.items():
        head = heads[channel]
        plan.epochs[channel] = current = head.epoch or NO_EPOCH
        given = positions[channel]
        if (epoch, offset) == (NO_EPOCH, START) and head.kept_from == START:
            epoch = current  # seen before the channel's first event: all of it is missed
        if epoch != current:
            plan.failed[channel] = ("epoch", given)
        elif stream_id_key(offset) > stream_id_key(head.last_id):
            plan.failed[channel] = ("ahead", given)
        elif head.kept_from != START and stream_id_key(offset) < stream_id_key(head.kept_from):
            plan.failed[channel] = ("trimmed", given)
        elif stream_id_key(offset) >= stream_id_key(now[channel]):
            if stream_id_key(offset) > stream_id_key(now[channel]):
                plan.floor[channel] = offset  # another process was ahead of this one
        else:
            plan.resume[channel] = offset
    return plan


def resume_failed(channel: str, reason: str, given: Any, head: ChannelHead | None) -> str:
    """The ResumeFailed control message of a channel (a fresh snapshot of it follows)."""
    data = {"reason": reason, "message": RESUME_FAILURES[reason], "position": given}
    if head is not None:
        data["epoch"] = head.epoch or NO_EPOCH
    return control("ResumeFailed", data, channel)
