// @ts-check
import 'uplot/dist/uPlot.min.css';
import './app.css';
import { ApiTable, RATE_SECONDS } from './api-table.js';
import { ApiChart, CHART_SECONDS } from './chart.js';
import { DetailView } from './detail.js';
import { byId, clockTime, h, setText } from './dom.js';
import { EventLog } from './event-log.js';

/** @typedef {import('./types.js').ApiSummary} ApiSummary */
/** @typedef {import('./types.js').InFlightPoint} InFlightPoint */
/** @typedef {import('./types.js').MetricsMessage} MetricsMessage */
/** @typedef {import('./types.js').EngineEvent} EngineEvent */
/** @typedef {import('./types.js').Decision} Decision */
/** @typedef {import('./types.js').WhatIfResult} WhatIfResult */

/** Every event type the daemon sends (server-sent events are dispatched by name). */
const EVENT_TYPES = ['scaling.decided', 'replica.started', 'replica.ready', 'replica.stopped', 'replica.crashed', 'api.status', 'api.deployed', 'api.deleted', 'rollout.progress', 'metrics.unavailable', 'scaling.poke', 'deploy.progress', 'model.download', 'model.version'];

/**
 * Render timings the page keeps for anyone measuring it (benchmarks/dashboard-render.bench.ts): each
 * metrics message's handling (tables, detail) and each chart redraw, in ms, the last 1000 of each.
 */
/** @type {{ updates: number, totalMs: number, maxMs: number, lastMs: number, samples: number[], chartSamples: number[] }} */
const stats = { updates: 0, totalMs: 0, maxMs: 0, lastMs: 0, samples: [], chartSamples: [] };
/** @type {Record<string, unknown>} */ (/** @type {unknown} */ (window)).myelinStats = stats;

const conn = byId('conn');
const apiTable = new ApiTable(/** @type {HTMLTableElement} */ (byId('apis')).tBodies[0], byId('apis-empty'), (name) => select(name, true));
const chart = new ApiChart(byId('chart'), byId('tooltip'));
chart.onDraw = (/** @type {number} */ ms) => {
  stats.chartSamples.push(ms);
  if (stats.chartSamples.length > 1000) stats.chartSamples.shift();
};
const detail = new DetailView();
const log = new EventLog(/** @type {HTMLTableElement} */ (byId('events')).tBodies[0]);

/** @type {string | undefined} */
let selected = new URLSearchParams(location.hash.slice(1)).get('api') ?? undefined;
/** @type {ApiSummary[]} */
let apis = [];
/** Last points per API, for the request rates. @type {Map<string, InFlightPoint[]>} */
const recent = new Map();
/** Crashes per replica id, from the events. @type {Map<string, { restarts: number, lastError?: string }>} */
const crashes = new Map();
/** @type {EventSource | undefined} */
let metrics;
/** @type {EventSource | undefined} */
let events;
let loadSeq = 0;

// ---------------------------------------------------------------- selection

/**
 * @param {string} name
 * @param {boolean} [focus] move keyboard focus to the detail (a user's choice, not a page load)
 */
async function select(name, focus = false) {
  const changed = name !== selected || chart.xs.length === 0;
  selected = name;
  apiTable.selected = name;
  history.replaceState(null, '', `#api=${encodeURIComponent(name)}`);
  if (focus) byId('detail').focus({ preventScroll: false });
  if (!changed) return;
  detail.reset();
  setText(byId('detail-h'), name);
  chart.setWhatIf(null);
  setText(byId('whatif-out'), '');
  openMetrics();
  const seq = ++loadSeq;
  const since = Date.now() - CHART_SECONDS * 1000;
  const res = await fetch(`/v1/dashboard/recording?api=${encodeURIComponent(name)}&since=${since}`);
  if (seq !== loadSeq) return;
  if (res.ok) {
    const body = /** @type {{ points: InFlightPoint[] }} */ (await res.json());
    chart.setPoints(body.points);
  } else chart.setPoints([]);
  renderDecisions();
}

function decisionsOf(/** @type {string} */ name) {
  /** @type {Decision[]} */
  const out = [];
  for (const e of log.events) {
    if (e.type !== 'scaling.decided' || e.api !== name) continue;
    const x = /** @type {Record<string, unknown>} */ (e);
    out.push({ t: e.t, from: Number(x.from), to: Number(x.to), reason: String(x.reason), avgInFlight: Number(x.avgInFlight) });
  }
  return out;
}

let decisionsPending = 0;
function renderDecisions() {
  if (decisionsPending) return;
  decisionsPending = requestAnimationFrame(() => {
    decisionsPending = 0;
    if (!selected) return;
    const list = decisionsOf(selected);
    chart.setDecisions(list);
    const items = list.slice(-8).reverse().map((d) => h('li', {}, [h('span', { class: 'mono' }, [clockTime(d.t)]), ` ${d.from} → ${d.to}: `, d.reason]));
    byId('decisions').replaceChildren(...(items.length ? items : [h('li', { class: 'muted' }, ['no scaling decision in the last 15 minutes'])]));
  });
}

// ---------------------------------------------------------------- streams

function openMetrics() {
  metrics?.close();
  metrics = new EventSource(`/v1/dashboard/metrics${selected ? `?api=${encodeURIComponent(selected)}` : ''}`);
  metrics.addEventListener('open', () => setConn('live'));
  metrics.addEventListener('error', () => void checkSession());
  metrics.addEventListener('metrics', (m) => onMetrics(/** @type {MetricsMessage} */ (JSON.parse(/** @type {MessageEvent} */ (m).data))));
}

function openEvents() {
  events = new EventSource(`/v1/events?since=${Date.now() - CHART_SECONDS * 1000}`);
  for (const type of EVENT_TYPES) events.addEventListener(type, (m) => onEvent(/** @type {EngineEvent} */ (JSON.parse(/** @type {MessageEvent} */ (m).data))));
  events.addEventListener('error', () => void checkSession());
}

/** @param {string} s */
function setConn(s) {
  setText(conn, s);
  conn.dataset.state = s.startsWith('live') ? 'live' : 'down';
}

/** A stream dropped: a daemon that is gone reconnects by itself; a session it no longer knows does not. */
async function checkSession() {
  setConn('reconnecting…');
  try {
    const res = await fetch('/v1/apis');
    if (res.status === 401) {
      metrics?.close();
      events?.close();
      setConn('signed out: open the URL that `myelin up` or `myelin dashboard` prints');
    }
  } catch {
    // the daemon is down; EventSource retries
  }
}

/** @param {MetricsMessage} m */
function onMetrics(m) {
  const start = performance.now();
  apis = m.apis;
  for (const [name, p] of Object.entries(m.points)) {
    let r = recent.get(name);
    if (!r) recent.set(name, (r = []));
    r.push(p);
    if (r.length > RATE_SECONDS) r.shift();
  }
  for (const name of recent.keys()) if (!apis.some((a) => a.name === name)) recent.delete(name);
  apiTable.render(apis, rates());
  setText(byId('api-count'), `${apis.length} API${apis.length === 1 ? '' : 's'}`);
  setText(byId('clock'), `updated ${clockTime(m.t)}`);
  if (!selected && apis.length > 0) void select(apis[0].name);
  if (selected && m.detail && m.detail.name === selected) detail.render(m.detail, crashes);
  const p = selected ? m.points[selected] : undefined;
  if (p) chart.push(p);
  const ms = performance.now() - start;
  stats.updates++;
  stats.totalMs += ms;
  stats.maxMs = Math.max(stats.maxMs, ms);
  stats.lastMs = ms;
  stats.samples.push(ms);
  if (stats.samples.length > 1000) stats.samples.shift();
}

function rates() {
  /** @type {Map<string, { r2xx: number, r4xx: number, r5xx: number, latencyMs: number | null }>} */
  const out = new Map();
  for (const [name, pts] of recent) {
    let a = 0, b = 0, c = 0, lat = 0;
    for (const p of pts) {
      a += p['2xx'];
      b += p['4xx'];
      c += p['5xx'];
      lat += p.latencyMsSum;
    }
    const n = pts.length || 1;
    out.set(name, { r2xx: a / n, r4xx: b / n, r5xx: c / n, latencyMs: a + b + c > 0 ? lat / (a + b + c) : null });
  }
  return out;
}

/** @param {EngineEvent} e */
function onEvent(e) {
  log.add(e);
  if (e.type === 'replica.crashed') {
    const x = /** @type {Record<string, unknown>} */ (e);
    const id = String(x.replica);
    const c = crashes.get(id) ?? { restarts: 0 };
    crashes.set(id, { restarts: c.restarts + 1, lastError: typeof x.reason === 'string' ? x.reason : c.lastError });
  }
  if (e.type === 'scaling.decided' && e.api === selected) renderDecisions();
}

// ---------------------------------------------------------------- filters, what-if

byId('api-filter').addEventListener('input', (ev) => {
  apiTable.filter = /** @type {HTMLInputElement} */ (ev.target).value.trim();
  apiTable.render(apis, rates());
});
const evType = /** @type {HTMLSelectElement} */ (byId('ev-type'));
const evApi = /** @type {HTMLSelectElement} */ (byId('ev-api'));
const evText = /** @type {HTMLInputElement} */ (byId('ev-text'));
const applyLogFilter = () => {
  log.type = evType.value;
  log.api = evApi.value === '@selected' ? (selected ?? '') : evApi.value;
  log.text = evText.value.trim();
  log.schedule();
};
evType.addEventListener('change', applyLogFilter);
evApi.addEventListener('change', applyLogFilter);
evText.addEventListener('input', applyLogFilter);

const form = /** @type {HTMLFormElement} */ (byId('whatif'));
const out = byId('whatif-out');
form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  if (!selected) return;
  const data = new FormData(form);
  const minutes = Number(data.get('minutes') ?? 15);
  /** @type {Record<string, string>} */
  const set = {};
  for (const [k, v] of data.entries()) if (k !== 'minutes' && typeof v === 'string' && v.trim() !== '') set[k] = v.trim();
  setText(out, 'replaying…');
  const res = await fetch('/v1/dashboard/what-if', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ api: selected, sinceMs: Date.now() - minutes * 60_000, set }) });
  const body = await res.json();
  if (!res.ok) {
    chart.setWhatIf(null);
    setText(out, `error: ${body.error ?? res.status}`);
    return;
  }
  const r = /** @type {WhatIfResult} */ (body);
  chart.setWhatIf(r);
  const changes = r.ticks.filter((t) => t.replicas !== t.from);
  const peak = Math.max(r.startReplicas, ...r.ticks.map((t) => t.replicas));
  const recorded = Math.max(0, ...chart.replicas.map((x) => x ?? 0));
  const settings = Object.entries(set).map(([k, v]) => `${k}=${v}`).join(', ') || 'the same settings';
  setText(out, `what-if with ${settings}: ${changes.length} decision${changes.length === 1 ? '' : 's'}, peak ${peak} replica${peak === 1 ? '' : 's'} (recorded peak ${recorded}) over ${minutes} min`);
});
byId('whatif-clear').addEventListener('click', () => {
  chart.setWhatIf(null);
  setText(out, '');
});

window.addEventListener('hashchange', () => {
  const name = new URLSearchParams(location.hash.slice(1)).get('api');
  if (name && name !== selected) void select(name);
});

openEvents();
if (selected) void select(selected);
else openMetrics();
