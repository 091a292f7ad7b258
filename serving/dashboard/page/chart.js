// @ts-check
import uPlot from 'uplot';
import { clockTime, h } from './dom.js';

/** @typedef {import('./types.js').InFlightPoint} InFlightPoint */
/** @typedef {import('./types.js').Decision} Decision */
/** @typedef {import('./types.js').WhatIfResult} WhatIfResult */

/** Seconds the chart shows: the last 15 minutes, one point a second. */
export const CHART_SECONDS = 15 * 60;
const HEIGHT = 260;

/**
 * One API's time chart (uPlot): total in flight, target × replicas, the replica count as a step line,
 * and a what-if replica curve when one was run. Decisions are buttons over the plot at (time, new
 * count): hovering or focusing one shows its reason in the tooltip, so they are keyboard reachable.
 */
export class ApiChart {
  /**
   * @param {HTMLElement} el fixed-size container
   * @param {HTMLElement} tooltip
   */
  constructor(el, tooltip) {
    this.el = el;
    this.tooltip = tooltip;
    /** @type {number[]} */ this.xs = [];
    /** @type {(number | null)[]} */ this.inFlight = [];
    /** @type {(number | null)[]} */ this.capacity = [];
    /** @type {(number | null)[]} */ this.replicas = [];
    /** @type {Decision[]} */ this.decisions = [];
    /** @type {WhatIfResult | null} */ this.whatIf = null;
    this.markers = h('div', { class: 'markers' });
    /** @type {number} */ this.pending = 0;
    /** Called with each redraw's duration, ms (the page's render statistics). @type {((ms: number) => void) | undefined} */
    this.onDraw = undefined;
    const opts = /** @type {uPlot.Options} */ ({
      width: Math.max(280, el.clientWidth),
      height: HEIGHT,
      legend: { show: true, live: true },
      cursor: { drag: { x: false, y: false } },
      scales: {
        x: { time: true },
        y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] },
        r: { range: (_u, _min, max) => [0, Math.max(2, Math.ceil(max) + 1)] },
      },
      axes: [
        { stroke: '#555' },
        { label: 'in flight', stroke: '#555', size: 50 },
        { label: 'replicas', scale: 'r', side: 1, stroke: '#555', grid: { show: false }, size: 45, incrs: [1, 2, 5, 10, 20, 50, 100] },
      ],
      series: [
        {},
        { label: 'in flight', stroke: '#2563eb', width: 1.5, points: { show: false } },
        { label: 'target × replicas', stroke: '#6b7280', width: 1, dash: [6, 4], points: { show: false } },
        { label: 'replicas', scale: 'r', stroke: '#ea580c', width: 2, paths: uPlot.paths.stepped?.({ align: 1 }), points: { show: false } },
        { label: 'what-if replicas', scale: 'r', stroke: '#9333ea', width: 2, dash: [4, 3], paths: uPlot.paths.stepped?.({ align: 1 }), points: { show: false }, show: true },
      ],
      hooks: { draw: [() => this.placeMarkers()] },
    });
    this.u = new uPlot(opts, this.data(), el);
    this.u.over.append(this.markers);
    new ResizeObserver(() => {
      const w = Math.max(280, this.el.clientWidth);
      if (w !== this.u.width) this.u.setSize({ width: w, height: HEIGHT });
    }).observe(el);
  }

  /** @returns {uPlot.AlignedData} */
  data() {
    return [this.xs, this.inFlight, this.capacity, this.replicas, this.whatIfSeries()];
  }

  /** @param {readonly InFlightPoint[]} points oldest first */
  setPoints(points) {
    this.xs = [];
    this.inFlight = [];
    this.capacity = [];
    this.replicas = [];
    for (const p of points) this.push(p, false);
    this.trim();
    this.redraw();
  }

  /**
   * @param {InFlightPoint} p
   * @param {boolean} [draw]
   */
  push(p, draw = true) {
    const x = p.t / 1000;
    const last = this.xs[this.xs.length - 1];
    if (last !== undefined && x <= last) return;
    this.xs.push(x);
    this.inFlight.push(p.inFlight);
    this.capacity.push(p.target * p.replicas);
    this.replicas.push(p.replicas);
    if (draw) {
      this.trim();
      this.redraw();
    }
  }

  trim() {
    const last = this.xs[this.xs.length - 1];
    if (last === undefined) return;
    let i = 0;
    while (i < this.xs.length && this.xs[i] < last - CHART_SECONDS) i++;
    if (i === 0) return;
    this.xs.splice(0, i);
    this.inFlight.splice(0, i);
    this.capacity.splice(0, i);
    this.replicas.splice(0, i);
  }

  /** @param {readonly Decision[]} decisions */
  setDecisions(decisions) {
    this.decisions = [...decisions];
    this.redraw();
  }

  /** @param {WhatIfResult | null} r */
  setWhatIf(r) {
    this.whatIf = r;
    this.redraw();
  }

  /** The what-if replica count at each x (the count of the last tick at or before it), null outside its range. */
  whatIfSeries() {
    const r = this.whatIf;
    if (!r) return this.xs.map(() => null);
    const out = [];
    let k = -1;
    let cur = r.startReplicas;
    for (const x of this.xs) {
      const ms = x * 1000;
      if (ms < r.sinceMs) {
        out.push(null);
        continue;
      }
      while (k + 1 < r.ticks.length && r.ticks[k + 1].t <= ms) {
        k++;
        cur = r.ticks[k].replicas;
      }
      out.push(cur);
    }
    return out;
  }

  /** Coalesces redraws to one per animation frame. */
  redraw() {
    if (this.pending) return;
    this.pending = requestAnimationFrame(() => {
      this.pending = 0;
      const t0 = performance.now();
      this.u.setData(this.data());
      this.onDraw?.(performance.now() - t0);
    });
  }

  placeMarkers() {
    const u = this.u;
    const first = this.xs[0];
    const last = this.xs[this.xs.length - 1];
    const shown = first === undefined ? [] : this.decisions.filter((d) => d.t / 1000 >= first && d.t / 1000 <= last + 1);
    // Reuse the buttons in place: a marker that stays keeps its focus.
    while (this.markers.children.length > shown.length) this.markers.lastElementChild?.remove();
    while (this.markers.children.length < shown.length) {
      const b = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', class: 'marker' }));
      b.addEventListener('mouseenter', () => this.showTip(b));
      b.addEventListener('focus', () => this.showTip(b));
      b.addEventListener('mouseleave', () => this.hideTip());
      b.addEventListener('blur', () => this.hideTip());
      this.markers.append(b);
    }
    shown.forEach((d, i) => {
      const b = /** @type {HTMLButtonElement} */ (this.markers.children[i]);
      const left = u.valToPos(d.t / 1000, 'x');
      const top = u.valToPos(d.to, 'r');
      b.style.transform = `translate(${Math.round(left - 6)}px, ${Math.round(top - 6)}px)`;
      const label = `${clockTime(d.t)}: ${d.from} → ${d.to} replicas. ${d.reason}`;
      if (b.dataset.label !== label) {
        b.dataset.label = label;
        b.setAttribute('aria-label', label);
        b.textContent = d.to > d.from ? '▲' : '▼';
        b.classList.toggle('down', d.to < d.from);
      }
    });
  }

  /** @param {HTMLButtonElement} b */
  showTip(b) {
    this.tooltip.textContent = b.dataset.label ?? '';
    this.tooltip.hidden = false;
    const box = this.el.getBoundingClientRect();
    const m = b.getBoundingClientRect();
    const left = Math.min(Math.max(0, m.left - box.left - 40), Math.max(0, box.width - 280));
    this.tooltip.style.transform = `translate(${Math.round(left)}px, ${Math.round(m.bottom - box.top + 6)}px)`;
  }

  hideTip() {
    this.tooltip.hidden = true;
  }
}
