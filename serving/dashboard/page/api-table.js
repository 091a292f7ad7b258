// @ts-check
import { h, num, setAttr, setText } from './dom.js';

/** @typedef {import('./types.js').ApiSummary} ApiSummary */

/** Seconds over which the request rates are averaged. */
export const RATE_SECONDS = 5;

/**
 * The API list: one keyed row per API, updated in place (only cells whose text changed are touched),
 * so a second's update of 50 APIs costs a few text writes and no layout of untouched rows.
 */
export class ApiTable {
  /**
   * @param {HTMLTableSectionElement} tbody
   * @param {HTMLElement} empty shown when no API is deployed
   * @param {(name: string) => void} onSelect
   */
  constructor(tbody, empty, onSelect) {
    this.tbody = tbody;
    this.empty = empty;
    this.onSelect = onSelect;
    /** @type {Map<string, { tr: HTMLTableRowElement, cells: HTMLElement[] }>} */
    this.rows = new Map();
    this.filter = '';
    /** @type {string | undefined} */
    this.selected = undefined;
  }

  /**
   * @param {readonly ApiSummary[]} apis sorted by name
   * @param {ReadonlyMap<string, { r2xx: number, r4xx: number, r5xx: number, latencyMs: number | null }>} rates per API, per second
   */
  render(apis, rates) {
    const seen = new Set();
    let prev = /** @type {HTMLTableRowElement | null} */ (null);
    for (const a of apis) {
      seen.add(a.name);
      let row = this.rows.get(a.name);
      if (!row) {
        row = this.row(a.name);
        this.rows.set(a.name, row);
      }
      // Keep DOM order = sorted order, moving only rows out of place.
      const want = prev ? prev.nextSibling : this.tbody.firstChild;
      if (want !== row.tr) this.tbody.insertBefore(row.tr, want);
      prev = row.tr;
      const r = rates.get(a.name);
      const c = row.cells;
      setText(c[1], a.status);
      setAttr(c[1], 'data-status', a.status.replace(/\s+/g, '-'));
      setAttr(c[1], 'title', a.message ?? '');
      setText(c[2], a.endpoint);
      setText(c[3], `${a.requested} / ${a.upToDate} / ${a.stale} / ${a.failed}`);
      setText(c[4], r ? num(r.r2xx) : '–');
      setText(c[5], r ? num(r.r4xx) : '–');
      setText(c[6], r ? num(r.r5xx) : '–');
      setText(c[7], r && r.latencyMs !== null ? num(r.latencyMs, 2) : num(a.requests.avgLatencyMs, 2));
      row.tr.hidden = this.filter !== '' && !a.name.includes(this.filter);
      const sel = a.name === this.selected;
      setAttr(row.tr, 'data-selected', String(sel));
      const button = /** @type {HTMLElement} */ (c[0].firstChild);
      if (sel) setAttr(button, 'aria-current', 'true');
      else if (button.hasAttribute('aria-current')) button.removeAttribute('aria-current');
    }
    for (const [name, row] of this.rows) {
      if (seen.has(name)) continue;
      row.tr.remove();
      this.rows.delete(name);
    }
    this.empty.hidden = apis.length > 0;
  }

  /** @param {string} name */
  row(name) {
    const button = h('button', { type: 'button', class: 'link', 'data-api': name }, [name]);
    button.addEventListener('click', () => this.onSelect(name));
    const cells = [h('td', {}, [button]), h('td', { class: 'status' }), h('td', { class: 'mono' }), h('td', { class: 'num' }), h('td', { class: 'num' }), h('td', { class: 'num' }), h('td', { class: 'num' }), h('td', { class: 'num' })];
    const tr = /** @type {HTMLTableRowElement} */ (h('tr', { 'data-api': name }, cells));
    tr.addEventListener('click', (e) => {
      if (e.target !== button) this.onSelect(name);
    });
    return { tr, cells };
  }
}
