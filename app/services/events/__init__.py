"""The event stream's fan-out: one hub per web process feeds every websocket of the process.

Channels, offsets, epochs (after Centrifugo). A channel is one jackpot instance; its name is
the instance id. Each instance's capped events stream (app.store.events) is the channel's
history: an event's offset is its stream entry id (strictly increasing per channel), and the
stream's epoch is the short string the first emitting script stored next to it with SET NX
(lua/includes/events.lua), so a stream lost with its key gets a new epoch. A client resumes
with `positions: {channel: last event id}` for the channels it subscribes to; per channel the
missed entries are replayed in order, each once, or `ResumeFailed` (reason epoch, ahead,
trimmed or invalid) is followed by a fresh snapshot of that channel.

The parts, each importing only those listed before it:

- `ids`: a stream event's id, `<epoch>:<offset>`;
- `messages`: one event rendered once per operator (masking), control messages;
- `resume`: where a client's positions lead: a replay, or ResumeFailed and a snapshot;
- `subscriber`: one websocket: its selection, its bounded outbox, its close codes;
- `updates`: the JackpotUpdateEvent data of an instance and a snapshot's recent wins;
- `hub`: the EventHub: listening, update ticks, snapshots, resume, heartbeats.
"""
