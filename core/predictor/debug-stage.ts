import type { Logger } from '../ports/logger.js';

/** The stages `?debug=true` logs (seed 000): the ones a backend does not have are simply not logged. */
export type DebugStage = 'raw sample' | 'pre_inference' | 'inference' | 'post_inference';

/** Longest string (characters) and typed array (elements) logged in full; longer ones are cut. */
const MAX_LOGGED_CHARS = 4096;
const MAX_LOGGED_ELEMENTS = 256;

/**
 * Logs one `?debug=true` stage at info level as `{ stage, value }` with message `debug stage`, on the
 * request's child logger (bound to `requestId`). Every backend logs its own stages through this, so
 * the log lines look the same whichever backend served the request. Bytes and long values are
 * summarized (`{ bytes: n }`, cut strings) so a large upload does not flood the log.
 */
export function logDebugStage(log: Logger, stage: DebugStage, value: unknown): void {
  log.info({ stage, value: summarizeForLog(value, 0) }, 'debug stage');
}

/** A log-friendly copy of `value`: bytes become `{ bytes, type }`, long strings and arrays are cut. */
export function summarizeForLog(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') {
    return value.length > MAX_LOGGED_CHARS ? `${value.slice(0, MAX_LOGGED_CHARS)}… (${value.length} chars)` : value;
  }
  if (value === null || typeof value !== 'object') return typeof value === 'bigint' ? `${value}n` : value;
  if (value instanceof Uint8Array) return { bytes: value.byteLength };
  if (value instanceof ArrayBuffer) return { bytes: value.byteLength };
  if (ArrayBuffer.isView(value)) {
    const a = value as unknown as ArrayLike<number | bigint>;
    const n = a.length;
    const head = Array.from({ length: Math.min(n, MAX_LOGGED_ELEMENTS) }, (_, i) => summarizeForLog(a[i], depth + 1));
    return n > MAX_LOGGED_ELEMENTS ? { type: value.constructor.name, length: n, head } : head;
  }
  if (depth > 32) return '…';
  if (Array.isArray(value)) {
    const head = value.slice(0, MAX_LOGGED_ELEMENTS).map((v) => summarizeForLog(v, depth + 1));
    return value.length > MAX_LOGGED_ELEMENTS ? { length: value.length, head } : head;
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = summarizeForLog(v, depth + 1);
  return out;
}
