// @ts-check
import { clockTime, h } from './dom.js';

/** @typedef {import('./types.js').EngineEvent} EngineEvent */

/** Events kept in the page (oldest dropped first) and rows shown at most. */
const KEEP = 2000;
const SHOW = 200;

/** One line for people: what an event says beyond its type. */
/** @param {EngineEvent} e */
export function describeEvent(e) {
  const x = /** @type {Record<string, unknown>} */ (e);
  switch (e.type) {
    case 'scaling.decided':
      return `${x.from} → ${x.to}: ${x.reason}`;
    case 'replica.started':
    case 'replica.ready':
    case 'replica.stopped':
    case 'replica.crashed':
      return `${x.replica} (${x.revision})${x.reason ? `: ${x.reason}` : ''}${x.exitCode !== undefined && x.exitCode !== null ? ` exit ${x.exitCode}` : ''}`;
    case 'api.status':
      return `${x.status}${x.message ? `: ${x.message}` : ''}`;
    case 'rollout.progress':
      return `${x.revision}: ${x.updated}/${x.requested} updated, ${x.stale} stale`;
    case 'metrics.unavailable':
      return `holding ${x.replicas}: ${x.reason}`;
    case 'deploy.progress':
      return `${x.stage}: ${x.line}`;
    case 'model.download':
      return `${x.url} ${x.done ? 'done' : `${x.bytes}/${x.total} bytes`}`;
    case 'model.version':
      return `${x.model} ${x.version} ${x.change}`;
    default:
      return Object.entries(x)
        .filter(([k]) => !['v', 'type', 'api', 't'].includes(k))
        .map(([k, v]) => `${k} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
        .join(', ');
  }
}

/**
 * The event log: every event the page got (the replay of the last 15 minutes, then live), newest first,
 * filtered by type prefix, API and text. Rendering is coalesced to one per animation frame.
 */
export class EventLog {
  /** @param {HTMLTableSectionElement} tbody */
  constructor(tbody) {
    this.tbody = tbody;
    /** @type {EngineEvent[]} */ this.events = [];
    this.type = '';
    /** @type {string} api name, '' for all */ this.api = '';
    this.text = '';
    this.pending = 0;
  }

  /** @param {EngineEvent} e */
  add(e) {
    this.events.push(e);
    if (this.events.length > KEEP) this.events.splice(0, this.events.length - KEEP);
    this.schedule();
  }

  schedule() {
    if (this.pending) return;
    this.pending = requestAnimationFrame(() => {
      this.pending = 0;
      this.render();
    });
  }

  render() {
    const text = this.text.toLowerCase();
    const rows = [];
    for (let i = this.events.length - 1; i >= 0 && rows.length < SHOW; i--) {
      const e = this.events[i];
      if (this.type && !e.type.startsWith(this.type)) continue;
      if (this.api && e.api !== this.api) continue;
      const what = describeEvent(e);
      if (text && !`${e.api} ${e.type} ${what}`.toLowerCase().includes(text)) continue;
      rows.push(h('tr', { 'data-type': e.type }, [h('td', { class: 'mono' }, [clockTime(e.t)]), h('td', {}, [e.api]), h('td', { class: 'mono' }, [e.type]), h('td', {}, [what])]));
    }
    this.tbody.replaceChildren(...rows);
  }
}
