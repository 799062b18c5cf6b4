// Live ticker: opens GET /events, shows every visible instance's pots and a feed of wins,
// and reconnects with last_event_id after a drop. No dependencies, no build step.
(function () {
  'use strict';
  const MAX_WINS = 20;
  const $ = (id) => document.getElementById(id);
  let socket = null;
  let lastEventId = null;
  let retryTimer = null;
  let stopped = false;

  function setStatus(text, state) {
    $('status').textContent = text;
    $('status').dataset.state = state;
  }

  function formatAmount(value, currency) {
    // Display only: amounts arrive as exact decimal strings or numbers.
    const digits = currency === 'JPY' ? 0 : 2;
    return Number(value).toLocaleString('en', {
      minimumFractionDigits: digits, maximumFractionDigits: digits,
    }) + ' ' + currency;
  }

  function converted(amount, from, to, multipliers) {
    // multipliers: 1 base unit = m units of each currency.
    if (!multipliers || !multipliers[from] || !multipliers[to]) return [amount, from];
    return [Number(amount) / Number(multipliers[from]) * Number(multipliers[to]), to];
  }

  function instanceCard(data) {
    let card = document.querySelector('[data-instance="' + CSS.escape(data.id) + '"]');
    if (!card) {
      card = document.createElement('article');
      card.className = 'instance';
      card.dataset.instance = data.id;
      card.innerHTML = '<h3></h3><div class="meta"></div><div class="pots"></div>';
      $('instances').appendChild(card);
    }
    return card;
  }

  function showUpdate(data) {
    const card = instanceCard(data);
    card.querySelector('h3').textContent = data.name || data.id;
    card.querySelector('.meta').textContent = data.jackpot_type + ' · ' + data.status;
    card.dataset.status = data.status;
    const pots = card.querySelector('.pots');
    for (const pot of data.pots) {
      let row = pots.querySelector('[data-pot="' + CSS.escape(pot.id) + '"]');
      if (!row) {
        row = document.createElement('div');
        row.className = 'pot';
        row.dataset.pot = pot.id;
        row.innerHTML = '<span class="name"></span><span class="value"></span>';
        pots.appendChild(row);
      }
      row.querySelector('.name').textContent = pot.name || pot.id;
      const value = row.querySelector('.value');
      const text = formatAmount(pot.current_value, data.currency);
      if (value.textContent && value.textContent !== text) {
        value.classList.remove('changed');
        void value.offsetWidth; // restart the animation
        value.classList.add('changed');
      }
      value.textContent = text;
      value.dataset.value = String(pot.current_value);
    }
  }

  function showWin(data) {
    const currency = $('currency').value;
    const [amount, shown] = converted(
      data.win_amount, data.jackpot_currency, currency, data.currency_multipliers);
    const item = document.createElement('li');
    item.innerHTML = '<span class="amount"></span> <span class="who"></span>' +
      '<div class="when"></div>';
    item.querySelector('.amount').textContent = formatAmount(amount, shown);
    item.querySelector('.who').textContent =
      'won by ' + data.player_id + ' on ' + (data.jackpot_name || data.instance_id) +
      ' (' + data.win_pot_id + ')';
    item.querySelector('.when').textContent = new Date(data.timestamp).toLocaleString();
    const wins = $('wins');
    wins.insertBefore(item, wins.firstChild);
    while (wins.children.length > MAX_WINS) wins.removeChild(wins.lastChild);
  }

  function handle(message) {
    if (message.event_id) lastEventId = message.event_id;
    switch (message.event_type) {
      case 'Authenticated': setStatus('live', 'live'); break;
      case 'ResumeFailed': $('instances').textContent = ''; break;
      case 'JackpotUpdateEvent': showUpdate(message.data); break;
      case 'JackpotWinEvent': showWin(message.data); break;
      default: break;
    }
  }

  function connect(token) {
    clearTimeout(retryTimer);
    stopped = false;
    if (socket) { socket.onclose = null; socket.close(); }
    const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
    socket = new WebSocket(scheme + location.host + '/events');
    setStatus('connecting…', 'connecting');
    socket.onopen = () => {
      const frame = { token: token };
      if (lastEventId) frame.last_event_id = lastEventId;
      socket.send(JSON.stringify({ Authenticate: frame }));
    };
    socket.onmessage = (event) => handle(JSON.parse(event.data));
    socket.onclose = (event) => {
      if (event.code === 4401) {
        stopped = true;
        setStatus('token refused or expired (' + (event.reason || '4401') + ')', 'error');
        return;
      }
      if (stopped) return;
      setStatus('reconnecting…', 'connecting');
      retryTimer = setTimeout(() => connect(token), 1000);
    };
  }

  $('connect').addEventListener('submit', (event) => {
    event.preventDefault();
    const token = $('token').value.trim();
    if (token) connect(token);
  });

  const fromHash = new URLSearchParams(location.hash.slice(1));
  if (fromHash.get('currency')) $('currency').value = fromHash.get('currency');
  if (fromHash.get('token')) {
    $('token').value = fromHash.get('token');
    connect(fromHash.get('token'));
  }
  window.jackpotTicker = { connect: connect, lastEventId: () => lastEventId };
})();
