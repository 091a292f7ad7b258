// @ts-check
import { byId, clockTime, h, num, setAttr, setText } from './dom.js';

/** @typedef {import('./types.js').ApiDetail} ApiDetail */

/**
 * The selected API's panels: header, autoscaler, rollout, monitoring, replica table and last log lines.
 * Each is rewritten only when its content changed.
 */
export class DetailView {
  constructor() {
    this.title = byId('detail-h');
    this.status = byId('detail-status');
    this.url = byId('detail-url');
    this.autoscaler = byId('autoscaler');
    this.rolloutBar = byId('rollout-bar');
    this.rolloutText = byId('rollout-text');
    this.monitoring = byId('monitoring');
    this.replicas = /** @type {HTMLTableElement} */ (byId('replicas')).tBodies[0];
    this.logLines = byId('loglines');
    /** @type {Record<string, string>} */ this.keys = {};
    /** @type {Map<string, { tr: HTMLTableRowElement, cells: HTMLElement[] }>} */ this.replicaRows = new Map();
  }

  /**
   * @param {ApiDetail} d
   * @param {ReadonlyMap<string, { restarts: number, lastError?: string }>} crashes per replica id, from the events
   */
  render(d, crashes) {
    setText(this.title, d.name);
    setText(this.status, d.status);
    setAttr(this.status, 'data-status', d.status.replace(/\s+/g, '-'));
    setAttr(this.status, 'title', d.message ?? '');
    setText(this.url, d.url);
    const a = d.autoscaler;
    this.once('autoscaler', JSON.stringify(a), () => {
      const rows = [
        ['policy', a.policy],
        ['target', num(a.target, 2)],
        ['avg in flight', num(a.avgInFlight, 2)],
        ['raw', num(a.raw, 2)],
        ['recommendation', a.recommendation === null ? '–' : String(a.recommendation)],
        ['last tick', a.lastTick ? `${clockTime(a.lastTick.t)}: ${a.lastTick.reason}` : '–'],
      ];
      this.autoscaler.replaceChildren(...rows.flatMap(([k, v]) => [h('dt', {}, [k]), h('dd', {}, [v])]));
    });
    const pct = d.requested > 0 ? Math.min(100, Math.round((d.upToDate / d.requested) * 100)) : 0;
    this.rolloutBar.style.width = `${pct}%`;
    setText(this.rolloutText, `${d.revision}: ${d.upToDate} of ${d.requested} up to date${d.stale ? `, ${d.stale} stale` : ''}${d.failed ? `, ${d.failed} failed` : ''}`);
    this.once('monitoring', JSON.stringify(d.monitoring ?? null), () => this.renderMonitoring(d));
    this.renderReplicas(d, crashes);
    setText(this.logLines, d.lastLogLines.join('\n'));
  }

  /**
   * The replica table, keyed by replica id and updated in place: with 200 replicas a second's update
   * writes only the cells that changed.
   * @param {ApiDetail} d
   * @param {ReadonlyMap<string, { restarts: number, lastError?: string }>} crashes
   */
  renderReplicas(d, crashes) {
    const seen = new Set();
    let prev = /** @type {HTMLTableRowElement | null} */ (null);
    for (const r of d.replicas) {
      seen.add(r.id);
      let row = this.replicaRows.get(r.id);
      if (!row) {
        const cells = [h('td', { class: 'mono' }, [r.id]), h('td', { class: 'state' }), h('td', { class: 'mono' }), h('td', { class: 'num' }), h('td', { class: 'num' }), h('td')];
        row = { tr: /** @type {HTMLTableRowElement} */ (h('tr', { 'data-replica': r.id }, cells)), cells };
        this.replicaRows.set(r.id, row);
      }
      const want = prev ? prev.nextSibling : this.replicas.firstChild;
      if (want !== row.tr) this.replicas.insertBefore(row.tr, want);
      prev = row.tr;
      const c = crashes.get(r.id);
      setAttr(row.tr, 'data-state', r.state);
      setText(row.cells[1], r.state);
      setText(row.cells[2], r.revision);
      setText(row.cells[3], r.pid !== undefined ? String(r.pid) : '–');
      setText(row.cells[4], String(c?.restarts ?? 0));
      setText(row.cells[5], r.pendingReason ?? c?.lastError ?? '');
    }
    for (const [id, row] of this.replicaRows) {
      if (seen.has(id)) continue;
      row.tr.remove();
      this.replicaRows.delete(id);
    }
  }

  /** @param {ApiDetail} d */
  renderMonitoring(d) {
    const m = d.monitoring;
    if (!m) {
      this.monitoring.replaceChildren('not configured (monitoring.model_type)');
      return;
    }
    if (m.modelType === 'classification') {
      const entries = Object.entries(m.classes).sort((x, y) => y[1] - x[1]);
      const total = entries.reduce((s, [, n]) => s + n, 0);
      if (total === 0) {
        this.monitoring.replaceChildren('no predictions yet');
        return;
      }
      this.monitoring.replaceChildren(
        h('ul', { class: 'classes' }, entries.slice(0, 12).map(([k, n]) => {
          const bar = h('span', { class: 'cbar' });
          bar.style.width = `${Math.round((n / total) * 100)}%`;
          return h('li', {}, [h('span', { class: 'cname' }, [k]), h('span', { class: 'ctrack' }, [bar]), h('span', { class: 'num' }, [String(n)])]);
        })),
      );
      return;
    }
    this.monitoring.replaceChildren(`${m.count} values, min ${num(m.min, 3)}, max ${num(m.max, 3)}, mean ${num(m.avg, 3)}`);
  }

  /**
   * Runs `fn` when `key`'s content differs from the last time.
   * @param {string} name
   * @param {string} key
   * @param {() => void} fn
   */
  once(name, key, fn) {
    if (this.keys[name] === key) return;
    this.keys[name] = key;
    fn();
  }

  reset() {
    this.keys = {};
    for (const row of this.replicaRows.values()) row.tr.remove();
    this.replicaRows.clear();
  }
}
