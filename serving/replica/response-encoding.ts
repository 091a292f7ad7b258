import { isPredictorResponse } from '../../core/predictor/predictor-contract.js';

/** A prediction turned into what goes on the wire; plain data, so it crosses a worker boundary cheaply. */
export interface EncodedResponse {
  readonly status: number;
  /** Lower-cased header names. Always has `content-type`. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string | Uint8Array;
}

/** A prediction that cannot be sent (not JSON-serializable): a predictor error, answered 500. */
export class ResponseEncodingError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ResponseEncodingError';
  }
}

export const JSON_TYPE = 'application/json';
export const TEXT_TYPE = 'text/plain; charset=utf-8';
export const BYTES_TYPE = 'application/octet-stream';

/**
 * Encodes what `predict` returned (reference/cortex.md §4): bytes (`Uint8Array`/`Buffer`/`ArrayBuffer`)
 * → application/octet-stream; a string → text/plain; a `predictorResponse({ status, headers, body })`
 * → its status and headers, its body by the same rules (its own content-type wins); other typed arrays
 * → a JSON array; anything else → JSON (`undefined` → `null`). Throws `ResponseEncodingError` when the
 * value cannot be serialized (BigInt, cycles, a function).
 */
export function encodePrediction(value: unknown): EncodedResponse {
  if (isPredictorResponse(value)) {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(value.headers ?? {})) headers[k.toLowerCase()] = String(v);
    const inner = encodeBody(value.body);
    if (headers['content-type'] === undefined) headers['content-type'] = inner.contentType;
    const status = Number(value.status);
    if (!Number.isInteger(status) || status < 100 || status > 599) {
      throw new ResponseEncodingError(`predictorResponse status must be an integer in [100, 599] (got ${String(value.status)})`);
    }
    return { status, headers, body: inner.body };
  }
  const { contentType, body } = encodeBody(value);
  return { status: 200, headers: headersFor(contentType), body };
}

// One frozen headers object per content type, not one per response (nothing mutates them; a worker
// thread's copy is a plain object again).
const JSON_HEADERS: Readonly<Record<string, string>> = Object.freeze({ 'content-type': JSON_TYPE });
const TEXT_HEADERS: Readonly<Record<string, string>> = Object.freeze({ 'content-type': TEXT_TYPE });
const BYTES_HEADERS: Readonly<Record<string, string>> = Object.freeze({ 'content-type': BYTES_TYPE });
function headersFor(contentType: string): Readonly<Record<string, string>> {
  return contentType === JSON_TYPE ? JSON_HEADERS : contentType === TEXT_TYPE ? TEXT_HEADERS : BYTES_HEADERS;
}

function encodeBody(value: unknown): { contentType: string; body: string | Uint8Array } {
  if (typeof value === 'string') return { contentType: TEXT_TYPE, body: value };
  if (value instanceof Uint8Array) return { contentType: BYTES_TYPE, body: value };
  if (value instanceof ArrayBuffer) return { contentType: BYTES_TYPE, body: new Uint8Array(value) };
  if (ArrayBuffer.isView(value)) value = typedArrayToArray(value);
  if (value === undefined) return { contentType: JSON_TYPE, body: 'null' };
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (err) {
    throw new ResponseEncodingError(`the prediction is not JSON-serializable: ${(err as Error).message}`, { cause: err });
  }
  if (json === undefined) throw new ResponseEncodingError(`the prediction is not JSON-serializable (a ${typeof value})`);
  return { contentType: JSON_TYPE, body: json };
}

function typedArrayToArray(view: ArrayBufferView): unknown[] {
  if (view instanceof DataView) return Array.from(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
  const a = Array.from(view as unknown as ArrayLike<number | bigint>);
  // BigInt64Array values become numbers when exact, else strings (JSON has no bigint).
  return a.map((x) => (typeof x === 'bigint' ? (Number.isSafeInteger(Number(x)) ? Number(x) : String(x)) : x));
}
