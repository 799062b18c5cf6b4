// A test double for the ticker page (tests/test_ticker_browser.py), installed before the page's
// script as `window.jackpotTickerEnv`: a fake clock, an event-stream server speaking the
// channel protocol (docs/ticker.md) on that clock, and the operator's token endpoint.
// Everything runs on the fake clock, so a simulated day takes seconds and is deterministic.
(function () {
  'use strict';
  const START = Date.UTC(2026, 11, 6, 8, 0, 0);
  const PING_MS = 25000;
  const PONG_TIMEOUT_MS = 10000;
  const TOKEN_TTL_S = 900;
  // Knobs a test sets in an init script run before this one.
  const options = window.fakeOptions || {};

  // -- the clock: timers fire in order; microtasks run between them -----------------------
  let now = START;
  let nextId = 1;
  const timers = new Map(); // id -> {at, seq, fn}
  let seq = 0;
  function setTimeoutFake(fn, ms) {
    const id = nextId++;
    timers.set(id, { at: now + Math.max(0, Number(ms) || 0), seq: seq++, fn: fn });
    return id;
  }
  function clearTimeoutFake(id) { timers.delete(id); }
  function nextTimer(limit) {
    let best = null;
    for (const [id, t] of timers) {
      if (t.at <= limit && (!best || t.at < best[1].at || (t.at === best[1].at && t.seq < best[1].seq))) best = [id, t];
    }
    return best;
  }
  async function flush() { for (let i = 0; i < 20; i++) await null; }
  async function advance(ms) {
    const target = now + ms;
    await flush();
    for (;;) {
      const found = nextTimer(target);
      if (!found) break;
      timers.delete(found[0]);
      now = found[1].at;
      found[1].fn();
      await flush();
    }
    now = target;
  }

  // -- the server's state -------------------------------------------------------------------
  let EPOCH = 'e1';
  const multipliers = { EUR: '1', USD: '1.08', GBP: '0.86', JPY: '162' };
  const instances = {
    daily: { id: 'daily', name: 'Daily Drop', jackpot_type: 'Jackpot', currency: 'EUR', status: 'Active',
      pots: [{ id: 'mini', name: 'Mini', micros: 10000000n }, { id: 'major', name: 'Major', micros: 1000000000n }] },
    raffle: { id: 'raffle', name: 'Sunday Raffle', jackpot_type: 'Raffle', currency: 'EUR', status: 'Active',
      pots: [{ id: 'prize', name: 'Prize', micros: 100000000n }], next_draw_at: START + 6 * 3600000 },
  };
  const log = { daily: [], raffle: [] }; // per channel: [{offset, message}]
  const recent = { daily: [], raffle: [] };
  const stats = {
    tokens: 0, authenticated: 0, resumed: 0, pings: 0, pongs: 0, closes: {}, winsSent: 0,
    rejectedTokens: 0, snapshots: 0, maxSockets: 0, opened: [],
  };
  const tokens = new Map(); // token -> expiry (fake ms)
  const sockets = new Set();
  let down = false;

  function decimal(micros) {
    const negative = micros < 0n;
    const a = negative ? -micros : micros;
    const whole = a / 1000000n;
    let frac = (a % 1000000n).toString().padStart(6, '0').replace(/0+$/, '');
    return (negative ? '-' : '') + whole.toString() + (frac ? '.' + frac : '');
  }

  function update(id) {
    const i = instances[id];
    const data = {
      id: i.id, name: i.name, jackpot_type: i.jackpot_type, currency: i.currency, status: i.status,
      pots: i.pots.map((p) => ({ id: p.id, name: p.name, is_progressive: true, current_value: decimal(p.micros) })),
      allowed_brands: [], allowed_sources: [], timestamp_start: null, timestamp_end: null,
      last_updated: now, recent_wins: recent[id].slice(-5),
    };
    if (i.next_draw_at) data.next_draw_at = i.next_draw_at;
    const last = log[id].length ? log[id][log[id].length - 1].offset : 0;
    return { event_type: 'JackpotUpdateEvent', event_id: EPOCH + ':' + last, channel: id, data: data };
  }

  function publish(channel, eventType, data) {
    const offset = log[channel].length + 1;
    const message = { event_type: eventType, event_id: EPOCH + ':' + offset, channel: channel, data: data };
    log[channel].push({ offset: offset, message: message });
    for (const socket of sockets) if (socket.authenticated) socket.deliver(message);
  }

  function broadcastUpdate(id) {
    for (const socket of sockets) if (socket.authenticated) socket.deliver(update(id));
  }

  // -- a socket -------------------------------------------------------------------------------
  class FakeSocket {
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.authenticated = false;
      this.onopen = this.onmessage = this.onclose = null;
      this.timers = [];
      this.lastPong = now;
      sockets.add(this);
      stats.opened.push(now);
      stats.maxSockets = Math.max(stats.maxSockets, sockets.size);
      setTimeoutFake(() => {
        if (down) { this.serverClose(1013, 'try again later'); return; }
        this.readyState = 1;
        if (this.onopen) this.onopen({});
        this.later(() => { if (!this.authenticated) this.serverClose(4401, 'AUTHENTICATION_TIMEOUT'); }, 5000);
      }, 5);
    }
    later(fn, ms) { this.timers.push(setTimeoutFake(fn, ms)); }
    deliver(message) {
      if (this.readyState !== 1) return;
      const text = JSON.stringify(message);
      setTimeoutFake(() => { if (this.readyState === 1 && this.onmessage) this.onmessage({ data: text }); }, 1);
    }
    send(text) {
      if (this.readyState !== 1) throw new Error('send on a socket that is not open');
      const frame = JSON.parse(text);
      if (frame.Pong) { stats.pongs += 1; this.lastPong = now; return; }
      if (frame.Authenticate) { this.authenticate(frame.Authenticate); return; }
      this.serverClose(4400, 'unexpected frame ' + text.slice(0, 40));
    }
    authenticate(frame) {
      const expires = tokens.get(frame.token);
      if (this.authenticated || expires == null || expires <= now) {
        stats.rejectedTokens += 1;
        this.serverClose(4401, expires == null ? 'INVALID_TOKEN' : 'TOKEN_EXPIRED');
        return;
      }
      this.authenticated = true;
      stats.authenticated += 1;
      this.deliver({ event_type: 'Authenticated', event_id: null, channel: null, data: { expires_at: expires } });
      const positions = frame.positions || {};
      if (Object.keys(positions).length) stats.resumed += 1;
      for (const id of Object.keys(instances)) {
        const at = positions[id];
        if (at != null) {
          const [epoch, offset] = String(at).split(':');
          if (epoch === EPOCH && Number(offset) <= log[id].length) {
            for (const entry of log[id]) if (entry.offset > Number(offset)) this.deliver(entry.message);
          } else {
            this.deliver({ event_type: 'ResumeFailed', event_id: null, channel: id, data: { reason: 'EPOCH_CHANGED' } });
          }
        }
        stats.snapshots += 1;
        this.deliver(update(id));
      }
      this.later(() => this.serverClose(4401, 'TOKEN_EXPIRED'), expires - now);
      const ping = () => {
        if (this.readyState !== 1) return;
        stats.pings += 1;
        const sent = now;
        this.deliver({ event_type: 'Ping', event_id: null, channel: null, data: {} });
        this.later(() => { if (this.lastPong < sent) this.serverClose(4408, 'HEARTBEAT_TIMEOUT'); }, PONG_TIMEOUT_MS);
        this.later(ping, PING_MS);
      };
      this.later(ping, PING_MS);
    }
    close(code) { this.shut(code || 1000, 'client', false); }
    serverClose(code, reason) { this.shut(code, reason, true); }
    shut(code, reason, byServer) {
      if (this.readyState === 3) return;
      this.readyState = 3;
      this.authenticated = false;
      sockets.delete(this);
      for (const id of this.timers) clearTimeoutFake(id);
      const key = (byServer ? 'server ' : 'client ') + code;
      stats.closes[key] = (stats.closes[key] || 0) + 1;
      setTimeoutFake(() => { if (this.onclose) this.onclose({ code: code, reason: reason }); }, 1);
    }
  }

  // -- the operator's backend: POST token-url ---------------------------------------------
  function fakeFetch(url, init) {
    if (!String(url).endsWith('/ticker-token')) return Promise.reject(new Error('unexpected ' + url));
    if (options.tokenDown) return Promise.resolve({ ok: false, status: 503, json: () => Promise.resolve({}) });
    stats.tokens += 1;
    const token = 'display-' + stats.tokens;
    tokens.set(token, now + TOKEN_TTL_S * 1000);
    const body = { token: token, expires_in: TOKEN_TTL_S, expires_at: now + TOKEN_TTL_S * 1000,
      brands: ['demo:brand1'], currencies: { base_currency: 'EUR', multipliers: multipliers, decimals: { JPY: 0 } } };
    return Promise.resolve({ ok: true, status: 200, json: () => Promise.resolve(body) });
  }

  // -- a day of jackpot life -----------------------------------------------------------------
  let minute = 0;
  function everyMinute() {
    minute += 1;
    instances.daily.pots[0].micros += 123457n; // 0.123457 EUR a minute
    instances.daily.pots[1].micros += 3333333n;
    broadcastUpdate('daily');
    if (minute % 60 === 30) { // a jackpot win every hour
      const pot = instances.daily.pots[0];
      const win = { brand_id: 'demo:brand1', player_id: '***', source_id: null, instance_id: 'daily',
        jackpot_name: 'Daily Drop', timestamp: now, win_pot_id: 'mini', win_amount: decimal(pot.micros),
        jackpot_currency: 'EUR', currency_multipliers: { EUR: 1, USD: 1.08 }, seed: '10', seed_deficit: '0',
        win_withheld: false, metadata: null };
      pot.micros = 10000000n;
      stats.winsSent += 1;
      recent.daily.push({ ...win });
      publish('daily', 'JackpotWinEvent', win);
      broadcastUpdate('daily');
    }
    if (instances.raffle.next_draw_at <= now) { // a draw every 6 hours; the third has no tickets
      const round = Math.round((instances.raffle.next_draw_at - START) / (6 * 3600000));
      if (round === 3) {
        publish('raffle', 'RaffleNoWinnersEvent', { instance_id: 'raffle', jackpot_name: 'Sunday Raffle',
          timestamp: now, round: round, reason: 'NO_TICKETS', unpaid_prizes: [1] });
      } else {
        const data = { brand_id: null, instance_id: 'raffle', jackpot_name: 'Sunday Raffle', jackpot_currency: 'EUR',
          currency_multipliers: { EUR: 1, USD: 1.08 }, timestamp: now, round: round,
          winners: [{ player_id: '***', brand_id: 'demo:brand1', currency: 'EUR', win_amount: '100', win_withheld: false }],
          win_withheld: false, unpaid_prizes: [] };
        stats.winsSent += 1;
        recent.raffle.push({ ...data });
        publish('raffle', 'RaffleWinEvent', data);
      }
      instances.raffle.next_draw_at += 6 * 3600000;
      broadcastUpdate('raffle');
    }
    setTimeoutFake(everyMinute, 60000);
  }
  setTimeoutFake(everyMinute, 60000);

  // The server restarts: every socket closed 1001, new ones refused (1013) for `ms`. With
  // `epoch`, its streams start over (a store lost): offsets restart from 1 under a new epoch.
  function restart(ms, epoch) {
    down = true;
    if (epoch) {
      EPOCH = epoch;
      for (const id of Object.keys(log)) log[id] = [];
    }
    for (const socket of Array.from(sockets)) socket.serverClose(1001, 'server shutting down');
    setTimeoutFake(() => { down = false; }, ms);
  }

  window.jackpotTickerEnv = {
    now: () => now,
    setTimeout: setTimeoutFake,
    clearTimeout: clearTimeoutFake,
    random: () => (options.random ?? 0.5),
    WebSocket: FakeSocket,
    fetch: fakeFetch,
  };
  window.fakeServer = {
    advance: advance, restart: restart, stats: stats, instances: instances,
    now: () => now, sockets: () => sockets.size, decimal: decimal, options: options, publish: publish,
  };
})();
