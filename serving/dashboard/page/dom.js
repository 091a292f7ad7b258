// @ts-check
/** Small DOM helpers: the page has no framework, and these keep its updates to the nodes that change. */

/**
 * An element by id; throws when the page frame (page-html.ts) has no such element.
 * @template {HTMLElement} T
 * @param {string} id
 * @returns {T}
 */
export function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return /** @type {T} */ (el);
}

/**
 * A new element with attributes (`class`, `aria-*`, …) and children (nodes or text).
 * @param {string} tag
 * @param {Record<string, string>} [attrs]
 * @param {(Node | string)[]} [children]
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, children = []) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  for (const c of children) el.append(c);
  return el;
}

/**
 * Sets a node's text only when it differs (no style recalculation for a value that did not change).
 * @param {Node} el
 * @param {string} s
 */
export function setText(el, s) {
  if (el.textContent !== s) el.textContent = s;
}

/**
 * Sets an attribute only when it differs.
 * @param {Element} el
 * @param {string} name
 * @param {string} value
 */
export function setAttr(el, name, value) {
  if (el.getAttribute(name) !== value) el.setAttribute(name, value);
}

/** @param {number} ms */
export function clockTime(ms) {
  const d = new Date(ms);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}:${String(d.getSeconds()).padStart(2, '0')}`;
}

/**
 * A number for a table cell: `–` for none, else at most `digits` decimals.
 * @param {number | null | undefined} x
 * @param {number} [digits]
 */
export function num(x, digits = 1) {
  if (x === null || x === undefined || !Number.isFinite(x)) return '–';
  return String(Number(x.toFixed(digits)));
}
