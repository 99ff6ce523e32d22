// Market Manus dashboard: live chart over Server-Sent Events, history and backtests from the
// JSON API. No build step; lightweight-charts is loaded before this file as `LightweightCharts`.
'use strict';

(function () {
  const LWC = window.LightweightCharts;
  const params = new URLSearchParams(location.search);
  // The token the user opened the page with (never embedded by the server).
  let token = params.get('token') || sessionStorage.getItem('manus_token') || '';
  if (params.get('token')) sessionStorage.setItem('manus_token', token);

  const $ = (id) => document.getElementById(id);
  const INTERVALS = ['1m', '3m', '5m', '15m', '30m', '1h', '2h', '4h', '6h', '8h', '12h', '1d', '3d', '1w', '1M'];
  const state = { page: 'live', es: null, chart: null };
  window.manus = state; // for tests and curious users

  function withToken(url) {
    if (!token) return url;
    return url + (url.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(token);
  }
  async function api(path, query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query || {})) if (v !== undefined && v !== null && v !== '') q.set(k, v);
    const url = path + (q.toString() ? '?' + q : '');
    const headers = token ? { Authorization: 'Bearer ' + token } : {};
    const r = await fetch(url, { headers });
    let body = null;
    try { body = await r.json(); } catch (e) { body = null; }
    if (!r.ok) throw new Error((body && body.error) || ('HTTP ' + r.status));
    return body;
  }
  function setConn(s, text) { const c = $('conn'); c.dataset.state = s; c.textContent = text || s; }
  function fmtTime(ms) { return new Date(ms).toISOString().replace('T', ' ').slice(0, 16); }
  function fmtNum(x, d) {
    if (x === null || x === undefined || Number.isNaN(x)) return '–';
    const n = Number(x);
    if (d === undefined) d = Math.abs(n) >= 1000 ? 2 : Math.abs(n) >= 1 ? 4 : 6;
    return n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
  }
  function cell(tr, text, cls) {
    const td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }
  function chartOptions(el) {
    return {
      width: el.clientWidth || 800, height: el.clientHeight || 400,
      layout: { background: { type: 'solid', color: '#0f1419' }, textColor: '#c9d1d9' },
      grid: { vertLines: { color: '#1c2128' }, horzLines: { color: '#1c2128' } },
      timeScale: { timeVisible: true, secondsVisible: false, borderColor: '#30363d' },
      rightPriceScale: { borderColor: '#30363d' },
      crosshair: { mode: 0 },
    };
  }

  // ---- Pages -------------------------------------------------------------------------------
  function route() {
    const p = location.pathname.replace(/\/+$/, '');
    state.page = p === '/history' ? 'history' : p === '/backtests' ? 'backtests' : 'live';
    for (const s of document.querySelectorAll('.page')) s.hidden = s.id !== 'page-' + state.page;
    for (const a of document.querySelectorAll('nav a')) {
      a.classList.toggle('active', a.dataset.page === state.page);
      if (token) a.href = withToken(a.getAttribute('href').split('?')[0]);
    }
    if (state.page === 'live') initLive();
    else if (state.page === 'history') initHistory();
    else initBacktests();
  }

  // ---- Live --------------------------------------------------------------------------------
  // Streaming EMA and Bollinger over closed candles; the forming candle gets provisional values
  // from a copy, so each update costs O(period).
  class Overlay {
    constructor() { this.e20 = null; this.e50 = null; this.closes = []; }
    static ema(prev, x, n) { return prev === null ? x : prev + (2 / (n + 1)) * (x - prev); }
    values(close, commit) {
      const e20 = Overlay.ema(this.e20, close, 20), e50 = Overlay.ema(this.e50, close, 50);
      const w = this.closes.slice(-19); w.push(close);
      let bb = null;
      if (w.length === 20) {
        const m = w.reduce((a, b) => a + b, 0) / 20;
        const sd = Math.sqrt(w.reduce((a, b) => a + (b - m) * (b - m), 0) / 20);
        bb = { mid: m, up: m + 2 * sd, lo: m - 2 * sd };
      }
      if (commit) {
        this.e20 = e20; this.e50 = e50; this.closes.push(close);
        if (this.closes.length > 64) this.closes.splice(0, this.closes.length - 20);
      }
      return { e20, e50, bb };
    }
  }

  function buildChart() {
    const el = $('chart');
    if (state.chart) { state.chart.remove(); state.chart = null; }
    const chart = LWC.createChart(el, chartOptions(el));
    state.chart = chart;
    state.series = {
      candles: chart.addCandlestickSeries({ upColor: '#26a69a', downColor: '#ef5350', wickUpColor: '#26a69a', wickDownColor: '#ef5350', borderVisible: false }),
      e20: chart.addLineSeries({ color: '#f0b429', lineWidth: 1, priceLineVisible: false, lastValueVisible: false }),
      e50: chart.addLineSeries({ color: '#a371f7', lineWidth: 1, priceLineVisible: false, lastValueVisible: false }),
      up: chart.addLineSeries({ color: 'rgba(88,166,255,0.7)', lineWidth: 1, priceLineVisible: false, lastValueVisible: false }),
      mid: chart.addLineSeries({ color: 'rgba(88,166,255,0.35)', lineWidth: 1, lineStyle: 2, priceLineVisible: false, lastValueVisible: false }),
      lo: chart.addLineSeries({ color: 'rgba(88,166,255,0.7)', lineWidth: 1, priceLineVisible: false, lastValueVisible: false }),
    };
    new ResizeObserver(() => chart.applyOptions({ width: el.clientWidth })).observe(el);
  }

  function resetLive(snap) {
    buildChart();
    state.overlay = new Overlay();
    state.markers = [];
    state.candleCount = 0;
    state.lastTime = 0;
    state.lastClosedTime = 0;
    state.records = [];
    const s = state.series;
    const data = { candles: [], e20: [], e50: [], up: [], mid: [], lo: [] };
    for (const c of snap.candles) {
      const t = Math.floor(c.open_time / 1000);
      data.candles.push({ time: t, open: c.open, high: c.high, low: c.low, close: c.close });
      const v = state.overlay.values(c.close, true);
      pushOverlay(data, t, v);
      state.lastClosedTime = t;
    }
    for (const k of Object.keys(data)) s[k].setData(data[k]);
    state.candleCount = snap.candles.length;
    state.lastTime = state.lastClosedTime;
    if (snap.forming) onCandle({ candle: snap.forming, forming: true });
    for (const r of snap.records) onRecord(r, true);
    refreshMarkers();
    renderDecisions();
    if (snap.records.length) renderStrategies(snap.records[snap.records.length - 1]);
    if (snap.stats) renderStats(snap.stats);
    publishCounts();
  }
  function pushOverlay(data, t, v) {
    data.e20.push({ time: t, value: v.e20 });
    data.e50.push({ time: t, value: v.e50 });
    if (v.bb) { data.up.push({ time: t, value: v.bb.up }); data.mid.push({ time: t, value: v.bb.mid }); data.lo.push({ time: t, value: v.bb.lo }); }
  }
  function onCandle(msg) {
    const c = msg.candle, t = Math.floor(c.open_time / 1000);
    if (t < state.lastClosedTime || (!msg.forming && t === state.lastClosedTime)) return;
    const s = state.series;
    s.candles.update({ time: t, open: c.open, high: c.high, low: c.low, close: c.close });
    const v = state.overlay.values(c.close, !msg.forming);
    s.e20.update({ time: t, value: v.e20 });
    s.e50.update({ time: t, value: v.e50 });
    if (v.bb) { s.up.update({ time: t, value: v.bb.up }); s.mid.update({ time: t, value: v.bb.mid }); s.lo.update({ time: t, value: v.bb.lo }); }
    if (t > state.lastTime) { state.candleCount += 1; state.lastTime = t; }
    if (!msg.forming) state.lastClosedTime = t;
    const prev = state.lastPrice;
    state.lastPrice = c.close;
    $('f-price').textContent = fmtNum(c.close);
    const ch = c.close - c.open;
    $('f-change').textContent = (ch >= 0 ? '+' : '') + fmtNum(ch) + ' (' + (c.open ? (100 * ch / c.open).toFixed(2) : '0') + '%)';
    $('f-change').className = 'v ' + (ch > 0 ? 'BUY' : ch < 0 ? 'SELL' : 'HOLD');
    if (prev !== undefined) $('f-price').className = 'v ' + (c.close > prev ? 'BUY' : c.close < prev ? 'SELL' : '');
    publishCounts();
  }
  function onRecord(r, bulk) {
    state.records.push(r);
    if (state.records.length > 500) state.records.shift();
    if (r.confluence === 'BUY' || r.confluence === 'SELL') {
      const buy = r.confluence === 'BUY';
      state.markers.push({
        time: Math.floor(r.open_time / 1000), position: buy ? 'belowBar' : 'aboveBar',
        color: buy ? '#26a69a' : '#ef5350', shape: buy ? 'arrowUp' : 'arrowDown', text: r.confluence,
      });
      if (state.markers.length > 500) state.markers.shift();
      if (!bulk) refreshMarkers();
    }
    if (!bulk) { renderStrategies(r); renderDecisions(); publishCounts(); }
  }
  function refreshMarkers() {
    // Markers must be sorted and may not point past the last bar.
    const ms = state.markers.filter((m) => m.time <= state.lastTime).sort((a, b) => a.time - b.time);
    state.series.candles.setMarkers(ms);
    state.markerCount = ms.length;
  }
  function renderStrategies(r) {
    $('f-decision').textContent = r.confluence;
    $('f-decision').className = 'v ' + r.confluence;
    $('f-confidence').textContent = (100 * r.confidence).toFixed(0) + '%';
    $('strat-time').textContent = 'candle ' + fmtTime(r.open_time) + (r.backfilled ? ' (backfilled)' : '');
    const tb = $('strategies').tBodies[0];
    tb.textContent = '';
    const agreeing = new Set(r.agreeing || []);
    for (const [id, act] of Object.entries(r.signals || {})) {
      const tr = document.createElement('tr');
      cell(tr, id); cell(tr, act, act); cell(tr, agreeing.has(id) ? '✓' : '');
      tb.appendChild(tr);
    }
  }
  function renderDecisions() {
    const tb = $('decisions').tBodies[0];
    tb.textContent = '';
    const rows = state.records.filter((r) => r.confluence !== 'HOLD').slice(-15).reverse();
    for (const r of rows) {
      const tr = document.createElement('tr');
      cell(tr, fmtTime(r.open_time)); cell(tr, fmtNum(r.close)); cell(tr, r.confluence, r.confluence);
      cell(tr, (100 * r.confidence).toFixed(0) + '%');
      tb.appendChild(tr);
    }
  }
  function renderStats(st) {
    const f = (k) => (st[k] === undefined || st[k] === null ? '–' : String(st[k]));
    $('f-latency').textContent = f('latency_p50_us') + ' / ' + f('latency_p99_us') + ' µs';
    $('f-messages').textContent = f('messages_received') + ' / ' + f('messages_processed');
    $('f-malformed').textContent = f('malformed');
    $('f-reconnections').textContent = f('reconnections');
    $('f-backfilled').textContent = f('backfilled');
    $('f-connection').textContent = f('connection') + (st.stale ? ' (stale)' : '');
    // REST is failing: candles wait behind the gap, in order, and are not lost.
    const gaps = Number(st.gaps_pending || 0);
    $('fig-gap').hidden = gaps === 0;
    if (gaps > 0) {
      $('f-gap').textContent = gaps + ' streams · ' + f('held_candles') + ' held · ' +
        (Number(st.held_late_ms || 0) / 1000).toFixed(1) + ' s late';
    }
    if (st.store_written !== undefined) {
      $('fig-store').hidden = false;
      $('f-store').textContent = f('store_written') + ' / ' + f('store_lost');
      $('f-store').classList.toggle('bad', Number(st.store_lost) > 0);
    }
    const up = Number(st.uptime_s || 0);
    $('f-uptime').textContent = Math.floor(up / 3600) + 'h ' + Math.floor((up % 3600) / 60) + 'm ' + (up % 60) + 's';
  }
  function publishCounts() {
    const el = $('chart');
    el.dataset.candles = String(state.candleCount || 0);
    el.dataset.markers = String(state.markerCount || 0);
    el.dataset.lastTime = String(state.lastTime || 0);
    el.dataset.records = String(state.records ? state.records.length : 0);
  }

  function connect(symbol, interval) {
    if (state.es) state.es.close();
    setConn('connecting');
    const url = withToken('/api/events?symbol=' + encodeURIComponent(symbol) + '&interval=' + encodeURIComponent(interval));
    const es = new EventSource(url);
    state.es = es;
    es.addEventListener('snapshot', (e) => { setConn('live'); resetLive(JSON.parse(e.data)); });
    es.addEventListener('candle', (e) => onCandle(JSON.parse(e.data)));
    es.addEventListener('record', (e) => onRecord(JSON.parse(e.data), false));
    es.addEventListener('stats', (e) => renderStats(JSON.parse(e.data).stats || {}));
    // EventSource reconnects by itself; the server answers with a fresh snapshot.
    es.onerror = () => setConn('error', 'reconnecting…');
  }

  async function initLive() {
    let streams = [];
    try { streams = await api('/api/streams'); } catch (e) { setConn('error', e.message); $('live-note').textContent = e.message; return; }
    const sel = $('stream-select');
    sel.textContent = '';
    for (const s of streams) {
      const o = document.createElement('option');
      o.value = s.symbol + ' ' + s.interval;
      o.textContent = s.symbol + ' · ' + s.interval;
      sel.appendChild(o);
    }
    if (!streams.length) {
      $('live-note').textContent = 'No live stream in this process. Start one with "manus serve --demo" or a live run with the web flag; history is on the History page.';
      setTimeout(initLive, 3000); // a live source may start later
      return;
    }
    $('live-note').textContent = '';
    const want = (params.get('symbol') || '').toUpperCase() + ' ' + (params.get('interval') || '');
    sel.value = streams.some((s) => s.symbol + ' ' + s.interval === want) ? want : sel.options[0].value;
    sel.onchange = () => {
      const [sym, iv] = sel.value.split(' ');
      const u = new URL(location.href); u.searchParams.set('symbol', sym); u.searchParams.set('interval', iv);
      history.replaceState(null, '', u);
      connect(sym, iv);
    };
    const [sym, iv] = sel.value.split(' ');
    connect(sym, iv);
  }

  // ---- History -----------------------------------------------------------------------------
  function initHistory() {
    const ivSel = $('h-interval');
    if (ivSel.options.length === 1) for (const i of INTERVALS) { const o = document.createElement('option'); o.textContent = i; ivSel.appendChild(o); }
    $('h-symbol').value = params.get('symbol') || '';
    ivSel.value = params.get('interval') || '';
    $('h-decision').value = (params.get('decision') || '').toUpperCase();
    $('h-from').value = params.get('from') || '';
    $('h-to').value = params.get('to') || '';
    if (params.get('limit')) $('h-limit').value = params.get('limit');
    state.offset = Number(params.get('offset') || 0) || 0;
    $('history-filters').onsubmit = (e) => { e.preventDefault(); state.offset = 0; loadHistory(); };
    $('h-prev').onclick = () => { state.offset = Math.max(0, state.offset - Number($('h-limit').value)); loadHistory(); };
    $('h-next').onclick = () => { state.offset += Number($('h-limit').value); loadHistory(); };
    loadHistory();
  }
  function historyQuery() {
    return {
      symbol: $('h-symbol').value.trim(), interval: $('h-interval').value, decision: $('h-decision').value,
      from: $('h-from').value, to: $('h-to').value, limit: $('h-limit').value, offset: state.offset || '',
    };
  }
  async function loadHistory() {
    const q = historyQuery();
    const table = $('history-table');
    table.dataset.state = 'loading';
    const u = new URL(location.href);
    for (const [k, v] of Object.entries(q)) { if (v !== '' && v !== 0) u.searchParams.set(k, v); else u.searchParams.delete(k); }
    history.replaceState(null, '', u);
    const err = $('history-error');
    const tb = table.tBodies[0];
    try {
      const res = await api('/api/signals', q);
      err.hidden = true;
      tb.textContent = '';
      for (const r of res.items) {
        const tr = document.createElement('tr');
        // A candle filled in after a drop or a restart is marked, as in the live view.
        cell(tr, fmtTime(r.open_time) + (r.backfilled ? ' (backfilled)' : '')); cell(tr, r.exchange || ''); cell(tr, r.symbol); cell(tr, r.interval);
        cell(tr, fmtNum(r.close)); cell(tr, r.confluence, r.confluence);
        cell(tr, (100 * r.confidence).toFixed(0) + '%'); cell(tr, (r.agreeing || []).join(', '));
        tr.dataset.symbol = r.symbol; tr.dataset.decision = r.confluence; tr.dataset.openTime = String(r.open_time); tr.dataset.backfilled = r.backfilled ? 'true' : 'false';
        tb.appendChild(tr);
      }
      const from = res.items.length ? res.offset + 1 : 0;
      $('h-page').textContent = res.items.length ? 'rows ' + from + '–' + (res.offset + res.items.length) : 'no signals match';
      $('h-prev').disabled = res.offset === 0;
      $('h-next').disabled = !res.has_more;
      table.dataset.rows = String(res.items.length);
      table.dataset.state = 'loaded';
    } catch (e) {
      tb.textContent = '';
      err.textContent = e.message;
      err.hidden = false;
      table.dataset.rows = '0';
      table.dataset.state = 'error';
    }
  }

  // ---- Backtests ---------------------------------------------------------------------------
  function short(v) {
    if (v === null || v === undefined) return '';
    if (typeof v === 'number') return fmtNum(v, Number.isInteger(v) ? 0 : 2);
    if (typeof v === 'object') return Array.isArray(v) ? v.join(',') : JSON.stringify(v);
    return String(v);
  }
  function summary(obj, n) {
    if (!obj || typeof obj !== 'object') return short(obj);
    return Object.entries(obj).slice(0, n).map(([k, v]) => k + '=' + short(v)).join('  ');
  }
  async function initBacktests() {
    const err = $('bt-error');
    try {
      const res = await api('/api/backtests', { limit: 100 });
      const tb = $('bt-table').tBodies[0];
      tb.textContent = '';
      for (const r of res.items) {
        const tr = document.createElement('tr');
        tr.className = 'clickable';
        cell(tr, String(r.id)); cell(tr, fmtTime(r.created_at)); cell(tr, summary(r.params, 5)); cell(tr, summary(r.metrics, 5));
        tr.onclick = () => showBacktest(r.id);
        tb.appendChild(tr);
      }
      $('bt-table').dataset.rows = String(res.items.length);
      if (!res.items.length) { err.textContent = 'No backtest runs stored yet: run "manus backtest" with a store.'; err.hidden = false; }
      else if (params.get('id')) showBacktest(Number(params.get('id')));
    } catch (e) { err.textContent = e.message; err.hidden = false; }
  }
  function equityPoints(eq) {
    const arr = Array.isArray(eq) ? eq : (eq && Array.isArray(eq.points) ? eq.points : []);
    const out = [];
    let last = -Infinity;
    arr.forEach((p, i) => {
      let t, v;
      if (typeof p === 'number') { t = i * 60; v = p; }
      else if (Array.isArray(p)) { t = p[0]; v = p[1]; }
      else if (p && typeof p === 'object') { t = p.time ?? p.t ?? p.open_time ?? p.ts ?? i * 60; v = p.equity ?? p.value ?? p.balance ?? p.v; }
      if (typeof t !== 'number' || typeof v !== 'number') return;
      if (t > 1e11) t = Math.floor(t / 1000); // ms → s
      if (t <= last) return;
      last = t;
      out.push({ time: t, value: v });
    });
    return out;
  }
  async function showBacktest(id) {
    const err = $('bt-error');
    try {
      const r = await api('/api/backtests/' + encodeURIComponent(id));
      $('bt-detail').hidden = false;
      $('bt-title').textContent = 'Run #' + r.id + ' · ' + fmtTime(r.created_at);
      const m = $('bt-metrics'); m.textContent = '';
      for (const [k, v] of Object.entries(r.metrics || {})) {
        const d = document.createElement('div'); d.className = 'fig';
        const a = document.createElement('span'); a.className = 'k'; a.textContent = k;
        const b = document.createElement('span'); b.className = 'v'; b.textContent = short(v);
        d.append(a, b); m.appendChild(d);
      }
      const el = $('bt-equity');
      if (state.btChart) state.btChart.remove();
      state.btChart = LWC.createChart(el, chartOptions(el));
      state.btChart.addLineSeries({ color: '#58a6ff', lineWidth: 2 }).setData(equityPoints(r.equity));
      state.btChart.timeScale().fitContent();
      const trades = Array.isArray(r.trades) ? r.trades : [];
      const th = $('bt-trades').tHead, tb = $('bt-trades').tBodies[0];
      th.textContent = ''; tb.textContent = '';
      if (trades.length && typeof trades[0] === 'object') {
        const cols = Object.keys(trades[0]);
        const hr = document.createElement('tr');
        for (const c of cols) { const x = document.createElement('th'); x.textContent = c; hr.appendChild(x); }
        th.appendChild(hr);
        for (const t of trades.slice(0, 1000)) {
          const tr = document.createElement('tr');
          for (const c of cols) cell(tr, /time/.test(c) && typeof t[c] === 'number' && t[c] > 1e11 ? fmtTime(t[c]) : short(t[c]));
          tb.appendChild(tr);
        }
      }
    } catch (e) { err.textContent = e.message; err.hidden = false; }
  }

  route();
})();
