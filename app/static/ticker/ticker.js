// Jackpot ticker: a lobby-screen widget over the GET /events websocket. No dependencies, no
// build step. Served at /ticker (a page of its own, for an iframe) and as a script tag:
//
//   <div data-jackpot-ticker data-token-url="/ticker-token" data-currency="USD"></div>
//   <script src="https://jackpots.example/ticker/ticker.js" async></script>
//
// Configuration (data-* attributes of the mount element or of the script tag, or the page's
// #hash / ?query): token-url (the operator's backend answers it with a display token, see
// docs/ticker.md), token (a fixed token, for trying it out), currency, server (the gateway's
// origin; default: where ticker.js came from), title.
//
// Protocol (docs/ticker.md): every message is {event_type, event_id, channel, data}; the page
// keeps the last event_id of each channel and resumes with them; it answers Ping with Pong;
// close codes 4401 (token refused or expired: fetch a new one), 4408 (heartbeat), 1013, 1001:
// reconnect with capped exponential backoff and jitter. Older servers (one cursor for
// everything in `last_event_id`, no channel, no Ping) are understood too.
(function () {
  'use strict';

  // -- environment: the browser's, or a test's (a fake clock, socket and token endpoint) -----
  const hooks = window.jackpotTickerEnv || {};
  const env = {
    now: hooks.now || (() => Date.now()),
    setTimeout: hooks.setTimeout || ((f, ms) => window.setTimeout(f, ms)),
    clearTimeout: hooks.clearTimeout || ((id) => window.clearTimeout(id)),
    random: hooks.random || Math.random,
    WebSocket: hooks.WebSocket || window.WebSocket,
    fetch: hooks.fetch || ((url, init) => window.fetch(url, init)),
  };

  const MAX_WINS = 20;
  const BACKOFF_BASE_MS = 1000;
  const BACKOFF_CAP_MS = 30000;
  const REFRESH_AT = 0.8; // of a token's lifetime
  const SILENCE_FACTOR = 2.5; // heartbeats missed before the page gives up on a socket
  const WIN_HIGHLIGHT_MS = 8000;
  const MASKED = '***';

  // -- exact decimal money (BigInt): no float ever touches a displayed amount ----------------
  function parseDecimal(text) {
    const match = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(String(text).trim());
    if (!match || (match[2] === '' && !match[3])) return null;
    const fraction = match[3] || '';
    let scale = fraction.length - Number(match[4] || 0);
    let digits = BigInt((match[2] || '0') + fraction);
    if (scale < 0) { digits *= 10n ** BigInt(-scale); scale = 0; }
    return { n: match[1] === '-' ? -digits : digits, d: 10n ** BigInt(scale) };
  }

  function roundHalfEven(n, d) { // n / d (d > 0) to the nearest integer, ties to even
    const negative = n < 0n;
    const a = negative ? -n : n;
    let q = a / d;
    const twice = 2n * (a % d);
    if (twice > d || (twice === d && q % 2n === 1n)) q += 1n;
    return negative ? -q : q;
  }

  function groupThousands(text) {
    return text.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  }

  // `amount` (a decimal string in `from`) shown in `to`: amount * m[to] / m[from], rounded
  // half-to-even to `to`'s minor units once, as the server shows a win (app/services/conversion).
  function money(amount, from, to, multipliers, decimals) {
    const value = parseDecimal(amount);
    if (value === null) return '–';
    let currency = from;
    let n = value.n;
    let d = value.d;
    if (to && to !== from && multipliers && multipliers[from] != null && multipliers[to] != null) {
      const mf = parseDecimal(multipliers[from]);
      const mt = parseDecimal(multipliers[to]);
      if (mf && mt && mf.n > 0n) {
        n = n * mt.n * mf.d;
        d = d * mt.d * mf.n;
        currency = to;
      }
    }
    const digits = minorDigits(currency, decimals);
    const minor = roundHalfEven(n * 10n ** BigInt(digits), d);
    const negative = minor < 0n;
    const text = (negative ? -minor : minor).toString().padStart(digits + 1, '0');
    const whole = groupThousands(text.slice(0, text.length - digits));
    const frac = digits ? '.' + text.slice(text.length - digits) : '';
    return (negative ? '-' : '') + whole + frac + ' ' + currency;
  }

  function minorDigits(currency, decimals) {
    if (decimals && decimals[currency] != null) return Number(decimals[currency]);
    return currency === 'JPY' ? 0 : 2;
  }

  // JSON numbers with a fraction (currency multipliers) kept as their source text where the
  // browser allows (JSON.parse source text access); integers stay numbers.
  function parseMessage(text) {
    try {
      return JSON.parse(text, function (key, value, context) {
        const exact = typeof value === 'number' && !Number.isSafeInteger(value);
        return exact && context && context.source ? context.source : value;
      });
    } catch (error) {
      return null;
    }
  }

  // -- configuration --------------------------------------------------------------------------
  const script = document.currentScript;
  function settingsFrom(mount) {
    const read = {};
    const sources = [
      script ? script.dataset : {},
      mount.dataset,
      Object.fromEntries(new URLSearchParams(location.search)),
      Object.fromEntries(new URLSearchParams(location.hash.slice(1))),
    ];
    for (const source of sources) {
      for (const [key, value] of Object.entries(source)) {
        read[key.replace(/-([a-z])/g, (_, c) => c.toUpperCase())] = value;
      }
    }
    let server = read.server;
    if (!server && script && script.src) server = new URL(script.src, location.href).origin;
    return {
      tokenUrl: read.tokenUrl || null,
      token: read.token || null,
      currency: read.currency || null,
      server: server || location.origin,
      title: read.title || 'Jackpots',
    };
  }

  // -- the widget -----------------------------------------------------------------------------
  function Ticker(mount) {
    const config = settingsFrom(mount);
    const state = {
      socket: null, // the socket whose messages count
      opening: null, // a socket opened with a fresh token, not yet authenticated
      token: config.token,
      tokenExpiresAt: null,
      refreshTimer: null,
      retryTimer: null,
      retryPending: false,
      silenceTimer: null,
      clockTimer: null,
      attempts: 0,
      tokenFailures: 0,
      pingEveryMs: null,
      lastPingAt: null,
      protocol: 'unknown', // 'channels' once a message carries `channel`, else 'cursor'
      positions: {}, // channel -> last event_id
      cursor: null, // older servers: one last_event_id for everything
      instances: {}, // id -> last update data
      nextDraw: {}, // raffle id -> epoch ms
      winKeys: new Set(),
      wins: [], // newest first
      currencies: null, // {base_currency, multipliers, decimals} from the token endpoint
      multipliers: null, // the latest known (token endpoint, or a win's own)
      stopped: false,
      reconnects: 0,
      refreshes: 0,
      pongs: 0,
    };

    mount.classList.add('jt');
    mount.innerHTML =
      '<header class="jt-head"><h1 class="jt-title"></h1>' +
      '<span class="jt-status" data-state="idle"><i></i><span>starting…</span></span>' +
      '<label class="jt-currency">Currency <select></select></label></header>' +
      '<form class="jt-connect" hidden><input type="password" autocomplete="off" ' +
      'placeholder="display or service token"><button type="submit">Connect</button></form>' +
      '<div class="jt-banner" hidden></div>' +
      '<main class="jt-main"><section><div class="jt-instances"></div></section>' +
      '<section class="jt-side"><h2>Recent wins</h2><ol class="jt-wins"></ol></section></main>';
    const $ = (selector) => mount.querySelector(selector);
    $('.jt-title').textContent = config.title;
    const select = $('.jt-currency select');
    let chosen = config.currency;

    function setStatus(text, stateName) {
      const status = $('.jt-status');
      status.dataset.state = stateName;
      status.querySelector('span').textContent = text;
      mount.dataset.state = stateName;
    }

    function currencyList() {
      const known = new Set(Object.keys(state.multipliers || {}));
      for (const data of Object.values(state.instances)) known.add(data.currency);
      if (chosen) known.add(chosen);
      return Array.from(known).sort();
    }

    function renderCurrencies() {
      const list = currencyList();
      if (!chosen && list.length) {
        const first = Object.values(state.instances)[0];
        chosen = (state.currencies && state.currencies.base_currency) || (first && first.currency) || list[0];
      }
      const current = Array.from(select.options).map((o) => o.value).join(',');
      if (current !== list.join(',')) {
        select.textContent = '';
        for (const code of list) {
          const option = document.createElement('option');
          option.value = option.textContent = code;
          select.appendChild(option);
        }
      }
      if (chosen) select.value = chosen;
    }

    select.addEventListener('change', () => {
      chosen = select.value;
      renderAll();
    });

    function shown(amount, from, multipliers) {
      const decimals = state.currencies ? state.currencies.decimals : null;
      return money(amount, from, chosen || from, multipliers || state.multipliers, decimals);
    }

    // -- instances ----------------------------------------------------------------------------
    function card(id) {
      let element = mount.querySelector('[data-instance="' + CSS.escape(id) + '"]');
      if (!element) {
        element = document.createElement('article');
        element.className = 'jt-instance';
        element.dataset.instance = id;
        element.innerHTML = '<h3></h3><div class="jt-meta"></div><div class="jt-pots"></div>' +
          '<div class="jt-draw" hidden></div>';
        $('.jt-instances').appendChild(element);
      }
      return element;
    }

    function renderInstance(data) {
      const element = card(data.id);
      element.querySelector('h3').textContent = data.name || data.id;
      element.querySelector('.jt-meta').textContent =
        (data.jackpot_type === 'Raffle' ? 'Raffle' : 'Jackpot') +
        (data.status && data.status !== 'Active' ? ' · ' + data.status : '');
      element.dataset.status = data.status || '';
      element.hidden = data.status === 'Terminated';
      const pots = element.querySelector('.jt-pots');
      for (const pot of data.pots || []) {
        let row = pots.querySelector('[data-pot="' + CSS.escape(pot.id) + '"]');
        if (!row) {
          row = document.createElement('div');
          row.className = 'jt-pot';
          row.dataset.pot = pot.id;
          row.innerHTML = '<span class="name"></span><span class="value"></span>';
          pots.appendChild(row);
        }
        row.querySelector('.name').textContent = pot.name || pot.id;
        const value = row.querySelector('.value');
        const text = shown(pot.current_value, data.currency);
        if (value.dataset.value && value.dataset.value !== String(pot.current_value)) {
          value.classList.remove('changed');
          void value.offsetWidth; // restart the animation
          value.classList.add('changed');
        }
        value.textContent = text;
        value.dataset.value = String(pot.current_value);
      }
      renderDraw(data.id);
    }

    function nextDrawOf(data) {
      if (data.jackpot_type !== 'Raffle') return null;
      const raffle = data.raffle || {};
      const at = data.next_draw_at ?? raffle.next_draw_at ?? raffle.ends ?? null;
      if (at != null) return Number(at);
      return state.nextDraw[data.id] ?? (data.timestamp_end != null ? Number(data.timestamp_end) : null);
    }

    function renderDraw(id) {
      const data = state.instances[id];
      if (!data) return;
      const box = card(id).querySelector('.jt-draw');
      const at = nextDrawOf(data);
      box.hidden = at == null;
      if (at == null) return;
      const left = at - env.now();
      box.dataset.drawAt = String(at);
      box.textContent = left > 0 ? 'Next draw in ' + countdown(left) : 'Drawing now…';
    }

    function countdown(ms) {
      const total = Math.ceil(ms / 1000);
      const days = Math.floor(total / 86400);
      const pad = (n) => String(n).padStart(2, '0');
      const clock = pad(Math.floor((total % 86400) / 3600)) + ':' +
        pad(Math.floor((total % 3600) / 60)) + ':' + pad(total % 60);
      return (days ? days + 'd ' : '') + clock;
    }

    function tickClock() {
      for (const id of Object.keys(state.instances)) renderDraw(id);
      state.clockTimer = env.setTimeout(tickClock, 1000 - (env.now() % 1000));
    }

    // -- wins ---------------------------------------------------------------------------------
    function instanceName(id, fallback) {
      const data = state.instances[id];
      return (data && data.name) || fallback || id;
    }

    function potName(instanceId, potId) {
      const data = state.instances[instanceId];
      const pot = data && (data.pots || []).find((p) => p.id === potId);
      return (pot && pot.name) || potId;
    }

    function addWin(win, live) {
      const key = win.key;
      if (state.winKeys.has(key)) return false;
      state.winKeys.add(key);
      state.wins.push(win);
      state.wins.sort((a, b) => b.timestamp - a.timestamp);
      while (state.wins.length > MAX_WINS) state.winKeys.delete(state.wins.pop().key);
      renderWins();
      if (live) highlight(win);
      return true;
    }

    function winText(win) {
      return shown(win.amount, win.currency, win.multipliers);
    }

    function who(win) {
      return !win.player || win.player === MASKED ? 'A player' : win.player;
    }

    function where(win) {
      const name = instanceName(win.instance, win.instanceName);
      return win.raffle ? name + ' · raffle draw' : name + (win.pot ? ' · ' + potName(win.instance, win.pot) : '');
    }

    function renderWins() {
      const list = $('.jt-wins');
      list.textContent = '';
      for (const win of state.wins) {
        const item = document.createElement('li');
        item.dataset.kind = win.raffle ? 'raffle' : 'jackpot';
        item.innerHTML = '<span class="amount"></span><span class="who"></span>' +
          '<div class="when"></div>';
        item.querySelector('.amount').textContent = winText(win);
        item.querySelector('.who').textContent = ' ' + who(win) + ' won on ' + where(win);
        item.querySelector('.when').textContent = new Date(win.timestamp).toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
        list.appendChild(item);
      }
    }

    let bannerTimer = null;
    function highlight(win) {
      const banner = $('.jt-banner');
      banner.hidden = false;
      banner.textContent = '';
      const big = document.createElement('strong');
      big.textContent = winText(win);
      const line = document.createElement('span');
      line.textContent = (win.raffle ? 'Raffle win! ' : 'Jackpot! ') + who(win) + ' won on ' + where(win);
      banner.append(big, line);
      mount.dataset.win = 'shown';
      env.clearTimeout(bannerTimer);
      bannerTimer = env.setTimeout(() => {
        banner.hidden = true;
        delete mount.dataset.win;
      }, WIN_HIGHLIGHT_MS);
    }

    // A withheld win waits for a manager (it may be rejected): shown once approved.
    function jackpotWin(data, live) {
      if (data.currency_multipliers) state.multipliers = { ...state.multipliers, ...data.currency_multipliers };
      if (data.win_withheld) return;
      addWin({
        // The same for a live JackpotWinEvent and a snapshot's recent win (which alone has
        // a win_id), so a win seen both ways is shown once.
        key: ['j', data.instance_id, data.win_pot_id, data.timestamp, data.win_amount,
          data.brand_id, data.player_id].join('|'),
        instance: data.instance_id,
        instanceName: data.jackpot_name,
        pot: data.win_pot_id,
        player: data.player_id,
        amount: data.win_amount,
        currency: data.jackpot_currency || data.currency,
        multipliers: data.currency_multipliers,
        timestamp: Number(data.timestamp),
        raffle: false,
      }, live);
    }

    function raffleWin(data, live) {
      const winners = data.winners || [];
      winners.forEach((winner, index) => !winner.win_withheld && addWin({
        // the prize's place: a winner's index in the event, or its own `prize` when listed alone
        key: ['r', data.instance_id, data.round, winner.prize ?? index].join('|'),
        instance: data.instance_id,
        instanceName: data.jackpot_name,
        pot: null,
        player: winner.player_id,
        amount: winner.win_amount,
        currency: winner.currency || data.jackpot_currency,
        multipliers: data.currency_multipliers,
        timestamp: Number(data.timestamp),
        raffle: true,
      }, live));
    }

    function recentWins(data) {
      for (const win of data.recent_wins || []) {
        const item = { instance_id: data.id, jackpot_name: data.name, jackpot_currency: data.currency, ...win };
        if (item.winners) raffleWin(item, false);
        else if (item.round != null && item.win_pot_id == null) {
          raffleWin({ ...item, winners: [item] }, false);
        } else jackpotWin(item, false);
      }
    }

    function renderAll() {
      renderCurrencies();
      for (const data of Object.values(state.instances)) renderInstance(data);
      renderWins();
    }

    // -- messages -----------------------------------------------------------------------------
    function offsetOf(eventId) {
      const match = /^(.*):(\d+)$/.exec(String(eventId));
      return match ? { epoch: match[1], offset: BigInt(match[2]) } : null;
    }

    // A stream event already seen on this channel (two sockets overlap while a new token
    // takes over, and a replay may repeat what the old socket had delivered).
    function seen(message) {
      if (message.channel == null || message.event_id == null) return false;
      const last = offsetOf(state.positions[message.channel]);
      const next = offsetOf(message.event_id);
      return Boolean(last && next && last.epoch === next.epoch && next.offset <= last.offset &&
        message.event_type !== 'JackpotUpdateEvent');
    }

    function remember(message) {
      if (Object.prototype.hasOwnProperty.call(message, 'channel')) state.protocol = 'channels';
      else if (state.protocol === 'unknown' && message.event_type !== 'Authenticated') state.protocol = 'cursor';
      if (message.event_id == null) return;
      if (message.channel != null) {
        const last = offsetOf(state.positions[message.channel]);
        const next = offsetOf(message.event_id);
        if (!last || !next || last.epoch !== next.epoch || next.offset >= last.offset) {
          state.positions[message.channel] = message.event_id;
        }
      } else if (state.protocol === 'cursor') {
        state.cursor = message.event_id;
      }
    }

    function handle(message, socket) {
      if (!message || typeof message !== 'object') return;
      if (socket !== state.socket && socket !== state.opening) return;
      if (message.event_type === 'Ping') {
        socket.send(JSON.stringify({ Pong: {} }));
        state.pongs += 1;
        const now = env.now();
        if (state.lastPingAt != null) state.pingEveryMs = now - state.lastPingAt;
        state.lastPingAt = now;
        watchSilence(socket);
        return;
      }
      watchSilence(socket);
      if (message.event_type === 'Authenticated') {
        promote(socket);
        state.attempts = 0;
        setStatus('live', 'live');
        return;
      }
      if (seen(message)) return;
      const data = message.data || {};
      switch (message.event_type) {
        case 'ResumeFailed': // a fresh snapshot of the channel follows
          if (message.channel != null) delete state.positions[message.channel];
          else state.cursor = null;
          break;
        case 'JackpotUpdateEvent':
          state.instances[data.id] = data;
          recentWins(data);
          renderCurrencies();
          renderInstance(data);
          break;
        case 'JackpotWinEvent':
          jackpotWin(data, true);
          break;
        case 'RaffleWinEvent':
          if ((data.winners || []).length) raffleWin(data, true);
          break;
        case 'RaffleNoWinnersEvent': // an empty round: no win to show
          break;
        case 'WinDecisionEvent':
          if (data.decision === 'approved') {
            const instance = state.instances[data.instance_id] || {};
            jackpotWin({ ...data, win_withheld: false, jackpot_currency: instance.currency,
              win_id: 'w|' + data.instance_id + '|' + data.win_id }, true);
          }
          break;
        case 'RaffleRoundOpenedEvent':
          if (data.ends != null) {
            state.nextDraw[data.instance_id] = Number(data.ends);
            renderDraw(data.instance_id);
          }
          break;
        default:
          break;
      }
      remember(message);
    }

    // -- connection ---------------------------------------------------------------------------
    function authenticateFrame(token) {
      const frame = { token: token };
      if (state.protocol === 'channels' && Object.keys(state.positions).length) {
        frame.positions = { ...state.positions };
      } else if (state.protocol === 'cursor' && state.cursor) {
        frame.last_event_id = state.cursor;
      }
      return JSON.stringify({ Authenticate: frame });
    }

    function wsUrl() {
      const url = new URL('/events', config.server);
      url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
      return url.toString();
    }

    function open(token) {
      const socket = new env.WebSocket(wsUrl());
      socket.onopen = () => socket.send(authenticateFrame(token));
      socket.onmessage = (event) => handle(parseMessage(event.data), socket);
      socket.onclose = (event) => closed(socket, event);
      return socket;
    }

    function connect() {
      env.clearTimeout(state.retryTimer);
      state.retryPending = false;
      if (state.stopped || !state.token) return;
      if (!state.socket) setStatus(state.attempts ? 'reconnecting…' : 'connecting…', state.attempts ? 'reconnecting' : 'connecting');
      if (state.opening) { // a newer token replaces a takeover still under way
        state.opening.onclose = state.opening.onmessage = null;
        state.opening.close(1000);
        state.opening = null;
      }
      const socket = open(state.token);
      if (state.socket) state.opening = socket; // make before break: the old one stays
      else state.socket = socket;
    }

    function promote(socket) {
      if (socket === state.socket) return;
      const old = state.socket;
      state.socket = socket;
      state.opening = null;
      if (old) { old.onclose = null; old.onmessage = null; old.close(1000, 'token refreshed'); }
    }

    function closed(socket, event) {
      if (socket === state.opening) { // the new token's socket failed: the old one still runs
        state.opening = null;
        schedule(socket, event);
        return;
      }
      if (socket !== state.socket) return;
      state.socket = null;
      env.clearTimeout(state.silenceTimer);
      if (state.stopped) return;
      state.reconnects += 1;
      schedule(socket, event);
    }

    function schedule(socket, event) {
      const code = event && event.code;
      if (code === 4401 && !config.tokenUrl) {
        state.stopped = true;
        setStatus('token refused or expired (' + ((event && event.reason) || '4401') + ')', 'error');
        showConnectForm();
        return;
      }
      if (!state.socket) setStatus('reconnecting…', 'reconnecting');
      const delay = backoff();
      state.retryPending = true;
      state.retryTimer = env.setTimeout(() => {
        state.retryPending = false;
        if (code === 4401) refreshToken(true);
        else connect();
      }, delay);
    }

    // Exponential backoff with jitter, capped: 1 s, 2 s, 4 s ... 30 s, each between half the
    // step and the whole of it, so a restarted server is not hit by every screen at once.
    function backoff() {
      const step = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** state.attempts);
      state.attempts = Math.min(state.attempts + 1, 30);
      return Math.round(step / 2 + env.random() * (step / 2));
    }

    // A server that pings: a socket silent for a few ping intervals is dead (the network may
    // not say so for minutes); reconnect instead of showing stale values.
    function watchSilence(socket) {
      if (socket !== state.socket || state.pingEveryMs == null) return;
      env.clearTimeout(state.silenceTimer);
      state.silenceTimer = env.setTimeout(() => {
        if (socket !== state.socket) return;
        socket.onclose = null;
        socket.close(4000, 'silent');
        closed(socket, { code: 4408, reason: 'no heartbeat' });
      }, state.pingEveryMs * SILENCE_FACTOR);
    }

    // -- tokens -------------------------------------------------------------------------------
    async function refreshToken(reconnectNow) {
      env.clearTimeout(state.refreshTimer);
      if (!config.tokenUrl || state.stopped) return;
      let answer;
      try {
        const response = await env.fetch(config.tokenUrl, {
          method: 'POST',
          credentials: 'include',
          cache: 'no-store',
          headers: { Accept: 'application/json' },
        });
        if (!response.ok) throw new Error('token endpoint answered ' + response.status);
        answer = await response.json();
        if (!answer || typeof answer.token !== 'string') throw new Error('no token in the answer');
      } catch (error) {
        state.tokenFailures += 1;
        const wait = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(state.tokenFailures, 10));
        state.refreshTimer = env.setTimeout(() => refreshToken(reconnectNow || !state.socket), wait / 2 + env.random() * wait / 2);
        if (!state.socket) setStatus('waiting for a token…', 'reconnecting');
        return;
      }
      state.tokenFailures = 0;
      state.refreshes += 1;
      state.token = answer.token;
      if (answer.currencies) {
        state.currencies = answer.currencies;
        state.multipliers = { ...state.multipliers, ...answer.currencies.multipliers };
        renderAll();
      }
      const lifetimeMs = Number(answer.expires_in || 900) * 1000;
      state.tokenExpiresAt = env.now() + lifetimeMs;
      state.refreshTimer = env.setTimeout(() => refreshToken(false), lifetimeMs * REFRESH_AT);
      // A first socket, or a new one that takes over once authenticated; while a reconnect
      // waits out its backoff, that attempt will use the new token.
      if (!state.retryPending) connect();
    }

    function showConnectForm() {
      const form = $('.jt-connect');
      form.hidden = false;
      form.onsubmit = (event) => {
        event.preventDefault();
        const token = form.querySelector('input').value.trim();
        if (!token) return;
        state.token = token;
        state.stopped = false;
        state.attempts = 0;
        form.hidden = true;
        connect();
      };
    }

    renderCurrencies();
    tickClock();
    if (config.tokenUrl) { setStatus('connecting…', 'connecting'); refreshToken(true); }
    else if (config.token) connect();
    else { setStatus('not connected', 'idle'); showConnectForm(); }

    return {
      state: state,
      money: money,
      stop() {
        state.stopped = true;
        for (const timer of [state.retryTimer, state.refreshTimer, state.silenceTimer, state.clockTimer]) env.clearTimeout(timer);
        for (const socket of [state.socket, state.opening]) if (socket) { socket.onclose = null; socket.close(1000); }
      },
    };
  }

  // -- mount ------------------------------------------------------------------------------------
  function start() {
    const server = script && script.src ? new URL(script.src, location.href).origin : location.origin;
    if (!document.querySelector('link[data-jackpot-ticker-css]')) {
      const css = document.createElement('link');
      css.rel = 'stylesheet';
      css.href = new URL('/ticker/ticker.css', (script && script.dataset.server) || server).toString();
      css.dataset.jackpotTickerCss = '';
      document.head.appendChild(css);
    }
    const mounts = document.querySelectorAll('[data-jackpot-ticker]');
    window.jackpotTicker = Array.from(mounts).map((mount) => Ticker(mount))[0] || null;
  }

  window.JackpotTicker = { money: money, parseDecimal: parseDecimal };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
