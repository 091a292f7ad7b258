import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import { TextDecoder } from 'node:util';
import type { FormFile, FormPayload, QueryParams } from '../../core/predictor/predictor-contract.js';

/** A request the replica refuses with `status` and `{"error": message}` (400, 413, 415). */
export class RequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** Close the connection after answering (the rest of the body was not read). */
    readonly closeConnection = false,
  ) {
    super(message);
    this.name = 'RequestError';
  }
}

/** The client went away before its request body arrived in full (nobody to answer). */
export class ClientGoneError extends Error {
  constructor() {
    super('client closed the connection before the request body was complete');
    this.name = 'ClientGoneError';
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * Reads the whole request body, refusing more than `maxBytes` with 413: at once from Content-Length,
 * else as soon as the count passes the limit (the rest is not read; the connection is closed after the
 * answer). Rejects with `ClientGoneError` when the client disconnects or the body is truncated.
 */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > maxBytes) {
    return Promise.reject(new RequestError(413, `request body of ${declared} bytes is larger than the limit of ${maxBytes} bytes (networking.max_body_size)`, true));
  }
  if (declared === '0') return Promise.resolve(EMPTY);
  const read = new BodyRead(req, maxBytes);
  (req as ReadingRequest)[BODY_READ] = read;
  req.on('data', onBodyData);
  req.on('end', onBodyEnd);
  req.on('error', onBodyGone);
  req.on('close', onBodyClose);
  return read.promise;
}

// The listeners are module-level functions reading their state from the request (`this`), so reading a
// body allocates no closures: this is the hot path of every prediction.
const BODY_READ = Symbol('myelin.bodyRead');
type ReadingRequest = IncomingMessage & { [BODY_READ]?: BodyRead };

class BodyRead {
  readonly chunks: Buffer[] = [];
  size = 0;
  done = false;
  resolve!: (body: Buffer) => void;
  reject!: (err: Error) => void;
  readonly promise: Promise<Buffer>;

  constructor(
    private readonly req: IncomingMessage,
    readonly maxBytes: number,
  ) {
    this.promise = new Promise<Buffer>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  finish(err: Error | null): void {
    if (this.done) return;
    this.done = true;
    // The listeners stay on the request (it is dropped after its answer) and do nothing from now on:
    // removing four listeners per request cost ~1 % of a micro-model replica's CPU (docs/performance.md).
    (this.req as ReadingRequest)[BODY_READ] = undefined;
    if (err) this.reject(err);
    else this.resolve(this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.size));
  }
}

function onBodyData(this: ReadingRequest, chunk: Buffer): void {
  const read = this[BODY_READ];
  if (read === undefined) return;
  read.size += chunk.length;
  if (read.size > read.maxBytes) {
    this.pause();
    read.finish(new RequestError(413, `request body is larger than the limit of ${read.maxBytes} bytes (networking.max_body_size)`, true));
    return;
  }
  read.chunks.push(chunk);
}

function onBodyEnd(this: ReadingRequest): void {
  this[BODY_READ]?.finish(null);
}

function onBodyGone(this: ReadingRequest): void {
  this[BODY_READ]?.finish(new ClientGoneError());
}

function onBodyClose(this: ReadingRequest): void {
  if (!this.complete) this[BODY_READ]?.finish(new ClientGoneError());
}

/** Parsed `Content-Type`: lower-cased media type and parameters. */
interface MediaType {
  readonly type: string;
  readonly params: Readonly<Record<string, string>>;
}

const NO_MEDIA_TYPE: MediaType = Object.freeze({ type: '', params: Object.freeze({}) });
// Clients send the same Content-Type over and over: the last one parsed is kept (a frozen result).
let lastHeader: string | undefined;
let lastMediaType: MediaType = NO_MEDIA_TYPE;

function parseMediaType(header: string | undefined): MediaType {
  if (!header) return NO_MEDIA_TYPE;
  if (header === lastHeader) return lastMediaType;
  const m = parseMediaTypeText(header);
  lastHeader = header;
  lastMediaType = Object.freeze({ type: m.type, params: Object.freeze(m.params) });
  return lastMediaType;
}

function parseMediaTypeText(header: string): MediaType {
  const semi = header.indexOf(';');
  if (semi === -1) return { type: header.trim().toLowerCase(), params: {} };
  const params: Record<string, string> = {};
  for (const part of header.slice(semi + 1).split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    let v = part.slice(eq + 1).trim();
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
    params[part.slice(0, eq).trim().toLowerCase()] = v;
  }
  return { type: header.slice(0, semi).trim().toLowerCase(), params };
}

export interface PayloadOptions {
  /** Deepest JSON nesting accepted (arrays + objects); deeper bodies are refused with 400. */
  readonly maxJsonDepth: number;
  /**
   * Most JSON values accepted (numbers, strings, arrays, objects… each counts one); more are refused
   * with 400. Default `jsonValueLimit` of no body limit: unbounded.
   */
  readonly maxJsonValues?: number;
}

/** Bytes of `networking.max_body_size` per JSON value allowed: 16 MiB (the default) ⇒ 1 048 576 values. */
export const BODY_BYTES_PER_JSON_VALUE = 16;

/**
 * The JSON value cap for a body limit (docs/predictors.md, "Request rules"): one value per 16 bytes of
 * `max_body_size`. Parsed JSON costs 30 to 90 bytes of heap per small value (an array of 4 numbers is
 * 5 values and ~100 bytes), and the onnx path then builds the tensors and the answer: the cap keeps a
 * body of tiny values (`[[0,0,0,0],…]`) from costing gigabytes.
 */
export function jsonValueLimit(maxBodyBytes: number): number {
  return Math.max(1024, Math.floor(maxBodyBytes / BODY_BYTES_PER_JSON_VALUE));
}

/**
 * The payload of a request by Content-Type (reference/cortex.md §4):
 * `application/json` (and `+json`) → parsed JSON; `text/plain` (charset param honoured, default
 * utf-8) → string; `application/x-www-form-urlencoded` and `multipart/form-data` → `FormPayload`;
 * anything else, or none → the raw bytes (`Uint8Array`). Refuses with `RequestError(400)` bad JSON,
 * JSON nested deeper than `maxJsonDepth`, bytes that are not valid in the declared charset and
 * malformed forms; `RequestError(415)` an unknown charset. Multipart parsing is asynchronous.
 */
export function parsePayload(body: Buffer, contentType: string | undefined, options: PayloadOptions): unknown {
  const { type, params } = parseMediaType(contentType);
  if (type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'))) {
    return parseJson(body, options.maxJsonDepth, options.maxJsonValues ?? Infinity);
  }
  if (type === 'text/plain') return decodeText(body, params.charset);
  if (type === 'application/x-www-form-urlencoded') return parseUrlEncoded(decodeText(body, params.charset));
  if (type === 'multipart/form-data') return parseMultipart(body, contentType!);
  return body;
}

/**
 * The body as UTF-8 text; `RequestError(400)` when it is not valid UTF-8. Decoding replaces invalid
 * sequences with U+FFFD, so only a body whose text contains U+FFFD needs the strict check (a legitimate
 * U+FFFD passes it): the common case costs one scan.
 */
function utf8Text(body: Buffer): string {
  const text = body.toString('utf8');
  if (text.includes('\uFFFD') && !isUtf8(body)) throw new RequestError(400, 'request body is not valid UTF-8');
  return text;
}

function parseJson(body: Buffer, maxDepth: number, maxValues: number): unknown {
  const text = utf8Text(body);
  // A body of n bytes nests at most n/2 deep and holds at most (n+1)/2 values: only longer ones need the scan.
  if (body.length > 2 * maxDepth || body.length >= 2 * maxValues) {
    const over = jsonLimitExceeded(body, maxDepth, maxValues);
    if (over === 'depth') throw new RequestError(400, `JSON nested deeper than ${maxDepth} levels (the limit)`);
    if (over === 'values') {
      throw new RequestError(400, `JSON holds more than ${maxValues} values (the limit: one per ${BODY_BYTES_PER_JSON_VALUE} bytes of networking.max_body_size); send fewer or raise max_body_size`);
    }
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new RequestError(400, `invalid JSON: ${(err as Error).message}`);
  }
}

/**
 * True when brackets nest deeper than `maxDepth` (strings and escapes skipped). Deep JSON parses in V8
 * but later overflows the stack in structured clone (worker threads) and JSON.stringify: refuse it early.
 */
export function jsonDepthExceeds(body: Uint8Array, maxDepth: number): boolean {
  return jsonLimitExceeded(body, maxDepth, Infinity) === 'depth';
}

/**
 * Which limit the JSON text breaks first, in one pass (strings and escapes skipped): `depth` when
 * brackets nest deeper than `maxDepth`, `values` when it holds more than `maxValues` values (the top
 * value, the first of each non-empty array or object, and one per comma), else undefined. Exact for
 * valid JSON; for invalid JSON, JSON.parse reports the error.
 */
export function jsonLimitExceeded(body: Uint8Array, maxDepth: number, maxValues: number): 'depth' | 'values' | undefined {
  let depth = 0;
  let values = 1;
  let opened = false;
  let inString = false;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
      continue;
    }
    if (opened && c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) {
      opened = false;
      if (c !== 0x5d && c !== 0x7d && ++values > maxValues) return 'values';
    }
    if (c === 0x22) inString = true;
    else if (c === 0x2c) {
      if (++values > maxValues) return 'values';
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) return 'depth';
      opened = true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return undefined;
}

function decodeText(body: Buffer, charset: string | undefined): string {
  const label = (charset ?? 'utf-8').toLowerCase();
  if (label === 'utf-8' || label === 'utf8') return utf8Text(body);
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(label, { fatal: true });
  } catch {
    throw new RequestError(415, `unsupported charset "${charset}"`);
  }
  try {
    return decoder.decode(body);
  } catch {
    throw new RequestError(400, `request body is not valid ${charset}`);
  }
}

function parseUrlEncoded(text: string): FormPayload {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of new URLSearchParams(text)) addField(out, k, v);
  return out;
}

async function parseMultipart(body: Buffer, contentType: string): Promise<FormPayload> {
  let form: FormData;
  try {
    form = await new Response(body, { headers: { 'content-type': contentType } }).formData();
  } catch (err) {
    throw new RequestError(400, `malformed multipart/form-data body: ${(err as Error).message}`);
  }
  const out: Record<string, string | FormFile | Array<string | FormFile>> = {};
  for (const [k, v] of form) {
    if (typeof v === 'string') addField(out, k, v);
    else addField(out, k, { filename: v.name, contentType: v.type || 'application/octet-stream', data: new Uint8Array(await v.arrayBuffer()) });
  }
  return out;
}

function addField<T>(out: Record<string, T | T[]>, k: string, v: T): void {
  const prev = out[k];
  if (prev === undefined) out[k] = v;
  else if (Array.isArray(prev)) prev.push(v);
  else out[k] = [prev, v];
}

const EMPTY_QUERY: QueryParams = Object.freeze({});

/** Query parameters; a repeated key gives an array. */
export function parseQuery(qs: string): QueryParams {
  if (qs === '') return EMPTY_QUERY;
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of new URLSearchParams(qs)) addField(out, k, v);
  return out;
}
