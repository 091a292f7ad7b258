/**
 * The engine event at the transport boundary: `config-schemas/event.schema.json` compiled by ajv (once,
 * on first use) and the UTF-8 JSON codec the NATS transport puts on the wire. Events are few (a handful
 * per scaling decision), so the compiled schema is the check; no hand-written fast path is needed.
 * Pure and synchronous; nothing here throws on bad input.
 */
import type { ValidateFunction } from 'ajv';
import eventSchema from '../../config-schemas/event.schema.json' with { type: 'json' };
import { formatSchemaErrors, newWireAjv, type DecodeResult } from '../metrics/metric-sample-validator.js';
import { MAX_EVENT_BYTES, type EngineEvent } from './engine-event.js';

export const EVENT_SCHEMA_ID: string = eventSchema.$id;

let compiled: ValidateFunction<EngineEvent> | undefined;

/** The event schema compiled by ajv (once). */
export function engineEventSchemaValidator(): ValidateFunction<EngineEvent> {
  compiled ??= newWireAjv().compile<EngineEvent>(eventSchema as object);
  return compiled;
}

/** True when `x` satisfies `event.schema.json` (v1). */
export function isEngineEvent(x: unknown): x is EngineEvent {
  return engineEventSchemaValidator()(x);
}

/** Why `x` is not a valid event (ajv's words), or `''` when it is one. */
export function explainInvalidEngineEvent(x: unknown): string {
  const v = engineEventSchemaValidator();
  return v(x) ? '' : formatSchemaErrors(v.errors);
}

/**
 * Checks an event about to be published in-process: the schema, and that its JSON stays within
 * `MAX_EVENT_BYTES` (so every transport accepts the same events). Returns `''` when it may go.
 */
export function checkOutgoingEvent(e: unknown): string {
  const why = explainInvalidEngineEvent(e);
  if (why !== '') return why;
  const bytes = Buffer.byteLength(JSON.stringify(e), 'utf8');
  return bytes > MAX_EVENT_BYTES ? `${bytes} bytes > ${MAX_EVENT_BYTES}` : '';
}

/** UTF-8 JSON bytes of an event. The caller validates first. */
export function encodeEngineEvent(e: EngineEvent): Uint8Array {
  return Buffer.from(JSON.stringify(e), 'utf8');
}

const utf8 = new TextDecoder();

/** Bytes off the wire → a valid event, or why not (oversized before parsing, malformed, invalid). Never throws. */
export function decodeEngineEvent(bytes: Uint8Array): DecodeResult<EngineEvent> {
  if (bytes.byteLength > MAX_EVENT_BYTES) {
    return { ok: false, reason: 'oversized', detail: `${bytes.byteLength} bytes > ${MAX_EVENT_BYTES}` };
  }
  let x: unknown;
  try {
    x = JSON.parse(utf8.decode(bytes));
  } catch (err) {
    return { ok: false, reason: 'malformed', detail: (err as Error).message };
  }
  const v = engineEventSchemaValidator();
  if (v(x)) return { ok: true, value: x };
  return { ok: false, reason: 'invalid', detail: formatSchemaErrors(v.errors) };
}
