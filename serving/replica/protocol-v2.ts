/**
 * The replica's Open Inference Protocol v2 REST routes (KServe / Triton), docs/protocol-v2.md:
 *
 * - GET `/v2/health/live`, `/v2/health/ready`, `/v2` (server metadata);
 * - GET `/v2/models/<name>[/versions/<v>]` (model metadata) and `…/ready`;
 * - POST `/v2/models/<name>[/versions/<v>]/infer`: JSON tensors, and Triton's binary tensor data
 *   extension (`Inference-Header-Content-Length`) for inputs and outputs.
 *
 * `<name>` is the API's name for a single-model API and a model's name for a multi-model one. Infer and
 * metadata take the replica's prediction path (admission under `max_replica_concurrency`, a slot,
 * `predictor.timeout`, worker threads, the response counters the autoscaler sees); the model runs
 * without predictor code (`withProtocolV2` in core/predictor/protocol-v2.ts). Readiness is answered
 * from the replica's state and the models it reports.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { PACKAGE_VERSION } from '../../adapters/fs/package-root.js';
import type { ApiSpec } from '../../core/config/api-spec.js';
import type { Logger } from '../../core/ports/logger.js';
import { dtypeOfDatatype, elementBytes, v2Payload, V2_DATATYPES, v2ServerMetadata, type V2Call, type V2RequestedOutput } from '../../core/predictor/protocol-v2.js';
import { formatShape, toTensorData, type TensorData, type TensorDtype, type TensorValues } from '../../core/predictor/tensor-data.js';
import { SlotCancelledError, type AdmissionQueue } from './admission-queue.js';
import type { PredictFailure, PredictorExecutor } from './predictor-executor.js';
import { ClientGoneError, RequestError, jsonValueLimit, parsePayload, readBody, type PayloadOptions } from './request-payload.js';

/** What the replica server lends its v2 routes: its state, admission, executor and response accounting. */
export interface ReplicaV2Host {
  readonly spec: ApiSpec;
  readonly log: Logger;
  readonly admission: AdmissionQueue;
  readonly executor: PredictorExecutor;
  readonly releaseSlot: () => void;
  /** `loading`, `ready`, `draining`, `failed`, `closed`. */
  state(): string;
  /** Ready and able to predict now. */
  serving(): boolean;
  requestId(req: IncomingMessage): string;
  /** A prediction response, counted in the replica's samples and metrics. */
  answer(res: ServerResponse, startMs: number, requestId: string, status: number, headers: Readonly<Record<string, string>>, body: string | Uint8Array, contentType?: string): void;
  answerError(res: ServerResponse, startMs: number, requestId: string, status: number, message: string, headers?: Readonly<Record<string, string>>): void;
  answerFailure(res: ServerResponse, startMs: number, requestId: string, failure: PredictFailure): void;
  /** A response that is not a prediction (health, readiness). */
  sendJson(req: IncomingMessage, res: ServerResponse, status: number, value: unknown, headers?: Readonly<Record<string, string>>): void;
}

/** A parsed `/v2/models/…` path. */
export interface V2ModelPath {
  readonly name: string;
  readonly version?: string;
  readonly action: 'metadata' | 'ready' | 'infer';
}

/**
 * `/v2/models/<name>[/versions/<v>][/ready|/infer]` → its parts (segments URL-decoded); undefined for
 * any other path. Throws `RequestError(400)` for a segment that is not valid percent-encoding.
 */
export function parseV2ModelPath(path: string): V2ModelPath | undefined {
  if (!path.startsWith('/v2/models/')) return undefined;
  const parts = path.slice('/v2/models/'.length).split('/');
  if (parts[parts.length - 1] === '') parts.pop();
  let action: V2ModelPath['action'] = 'metadata';
  const last = parts[parts.length - 1];
  if (parts.length > 1 && (last === 'ready' || last === 'infer')) {
    action = last;
    parts.pop();
  }
  if (parts.length !== 1 && !(parts.length === 3 && parts[1] === 'versions')) return undefined;
  const decode = (s: string): string => {
    try {
      return decodeURIComponent(s);
    } catch {
      throw new RequestError(400, `the path segment ${JSON.stringify(s)} is not valid percent-encoding`);
    }
  };
  const name = decode(parts[0]);
  if (name === '') return undefined;
  return parts.length === 3 ? { name, version: decode(parts[2]), action } : { name, action };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Nested JSON arrays → their leaves in row-major order (a flat array is returned as is). */
function flatten(data: unknown[]): unknown[] {
  if (!data.some(Array.isArray)) return data;
  const out: unknown[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) for (const x of v) walk(x);
    else out.push(v);
  };
  walk(data);
  return out;
}

/** Reads `n` fixed-size elements of `dtype` from little-endian bytes (copied: the body's offset may not be aligned). */
function fixedFromBytes(name: string, dtype: TensorDtype, bytes: Uint8Array, n: number): TensorValues {
  const size = elementBytes(dtype)!;
  if (bytes.byteLength !== n * size) {
    throw new RequestError(400, `input "${name}": binary_data_size is ${bytes.byteLength} bytes, but the shape holds ${n} ${dtype} values (${n * size} bytes)`);
  }
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  const b = copy.buffer;
  switch (dtype) {
    case 'bool':
      for (let i = 0; i < copy.length; i++) if (copy[i] > 1) throw new RequestError(400, `input "${name}": BOOL element ${i} is byte ${copy[i]}, expected 0 or 1`);
      return copy;
    case 'uint8': return copy;
    case 'int8': return new Int8Array(b);
    case 'int16': return new Int16Array(b);
    case 'uint16':
    case 'float16': return new Uint16Array(b);
    case 'int32': return new Int32Array(b);
    case 'uint32': return new Uint32Array(b);
    case 'float32': return new Float32Array(b);
    case 'int64': return new BigInt64Array(b);
    case 'uint64': return new BigUint64Array(b);
    case 'float64': return new Float64Array(b);
    case 'string': throw new Error('unreachable');
  }
}

/** BYTES elements: each a 4-byte little-endian length and that many bytes (decoded as UTF-8). */
function stringsFromBytes(name: string, bytes: Uint8Array, n: number): string[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: string[] = [];
  let o = 0;
  while (o < buf.length) {
    if (o + 4 > buf.length) throw new RequestError(400, `input "${name}": BYTES element ${out.length} has a truncated 4-byte length`);
    const len = buf.readUInt32LE(o);
    if (o + 4 + len > buf.length) throw new RequestError(400, `input "${name}": BYTES element ${out.length} says ${len} bytes, only ${buf.length - o - 4} remain`);
    out.push(buf.toString('utf8', o + 4, o + 4 + len));
    o += 4 + len;
  }
  if (out.length !== n) throw new RequestError(400, `input "${name}": the binary data holds ${out.length} BYTES elements, the shape ${n}`);
  return out;
}

/**
 * The infer request body (JSON, or JSON then binary tensors when `headerLength` is given) → the tensors
 * and requested outputs of a `V2Call`. Throws `RequestError(400)` naming the tensor for a bad name,
 * datatype, shape, data or binary size.
 */
export function parseInferRequest(body: Buffer, headerLength: string | undefined, options: PayloadOptions): Omit<V2Call, 'op' | 'name' | 'model' | 'version'> {
  let jsonEnd = body.length;
  if (headerLength !== undefined) {
    const n = Number(headerLength);
    if (!/^\d+$/.test(headerLength.trim()) || n > body.length) {
      throw new RequestError(400, `Inference-Header-Content-Length must be an integer between 0 and the body's ${body.length} bytes (got ${JSON.stringify(headerLength)})`);
    }
    jsonEnd = n;
  }
  const parsed = parsePayload(body.subarray(0, jsonEnd), 'application/json', options);
  if (!isRecord(parsed)) throw new RequestError(400, 'the inference request must be a JSON object with "inputs"');
  const { id, inputs, outputs, parameters } = parsed;
  if (id !== undefined && typeof id !== 'string') throw new RequestError(400, '"id" must be a string');
  if (parameters !== undefined && !isRecord(parameters)) throw new RequestError(400, '"parameters" must be an object');
  if (!Array.isArray(inputs) || inputs.length === 0) throw new RequestError(400, '"inputs" must be a non-empty list of tensors');
  const binaryOutput = parameters?.binary_data_output;
  if (binaryOutput !== undefined && typeof binaryOutput !== 'boolean') throw new RequestError(400, 'parameters.binary_data_output must be a boolean');
  let offset = jsonEnd;
  const tensors: TensorData[] = inputs.map((raw, i) => {
    if (!isRecord(raw)) throw new RequestError(400, `inputs[${i}] must be an object with name, shape, datatype and data`);
    const name = raw.name;
    if (typeof name !== 'string' || name === '') throw new RequestError(400, `inputs[${i}]: "name" must be a non-empty string`);
    const shape = raw.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
      throw new RequestError(400, `input "${name}": "shape" must be a list of non-negative integers (got ${JSON.stringify(shape)})`);
    }
    const dims = shape as number[];
    const datatype = raw.datatype;
    const dtype = typeof datatype === 'string' ? dtypeOfDatatype(datatype) : undefined;
    if (!dtype) throw new RequestError(400, `input "${name}": unknown datatype ${JSON.stringify(datatype)} (one of ${V2_DATATYPES.join(', ')})`);
    const params = raw.parameters;
    if (params !== undefined && !isRecord(params)) throw new RequestError(400, `input "${name}": "parameters" must be an object`);
    const n = dims.reduce((a, b) => a * b, 1);
    const size = params?.binary_data_size;
    if (size !== undefined) {
      if (!Number.isSafeInteger(size) || (size as number) < 0) throw new RequestError(400, `input "${name}": binary_data_size must be a non-negative integer`);
      if (headerLength === undefined) throw new RequestError(400, `input "${name}" has binary_data_size but the request has no Inference-Header-Content-Length header`);
      if (raw.data !== undefined) throw new RequestError(400, `input "${name}": give either "data" or parameters.binary_data_size, not both`);
      const end = offset + (size as number);
      if (end > body.length) throw new RequestError(400, `input "${name}": binary_data_size ${size as number} runs past the end of the body (${body.length - offset} bytes left)`);
      const bytes = body.subarray(offset, end);
      offset = end;
      const data = dtype === 'string' ? stringsFromBytes(name, bytes, n) : fixedFromBytes(name, dtype, bytes, n);
      return { name, dtype, shape: dims, data };
    }
    if (!Array.isArray(raw.data)) throw new RequestError(400, `input "${name}": "data" must be a list (row-major; nested lists are flattened)`);
    const flat = flatten(raw.data);
    try {
      return toTensorData({ name, dtype, shape: dims }, { data: flat, shape: dims });
    } catch (err) {
      const e = err as { status?: number; message?: string };
      if (e.status === 400) throw new RequestError(400, `${e.message ?? ''} (datatype ${datatype as string}, shape ${formatShape(dims)})`);
      throw err;
    }
  });
  if (offset !== body.length) throw new RequestError(400, `${body.length - offset} bytes of binary data after the last binary input are not claimed by any binary_data_size`);
  let wanted: V2RequestedOutput[] | undefined;
  if (outputs !== undefined) {
    if (!Array.isArray(outputs)) throw new RequestError(400, '"outputs" must be a list');
    wanted = outputs.map((o, i) => {
      if (!isRecord(o) || typeof o.name !== 'string') throw new RequestError(400, `outputs[${i}] must be an object with a "name"`);
      const p = o.parameters;
      if (p !== undefined && !isRecord(p)) throw new RequestError(400, `output "${o.name}": "parameters" must be an object`);
      if (p?.classification !== undefined) throw new RequestError(400, `output "${o.name}": the classification extension is not supported`);
      const b = p?.binary_data;
      if (b !== undefined && typeof b !== 'boolean') throw new RequestError(400, `output "${o.name}": parameters.binary_data must be a boolean`);
      return { name: o.name, binary: b ?? binaryOutput === true };
    });
  }
  return {
    ...(id !== undefined ? { id } : {}),
    inputs: tensors,
    ...(wanted ? { outputs: wanted } : {}),
    ...(binaryOutput !== undefined ? { binaryOutput } : {}),
  };
}

/** The replica's v2 routes; one per replica server, created on the first v2 request. */
export class ReplicaProtocolV2 {
  private readonly payloadOptions: PayloadOptions;
  private readonly multiModel: boolean;
  private readonly supported: boolean;

  constructor(private readonly host: ReplicaV2Host) {
    const p = host.spec.predictor;
    this.payloadOptions = { maxJsonDepth: 1000, maxJsonValues: jsonValueLimit(host.spec.networking.maxBodyBytes) };
    this.multiModel = p.models?.paths !== undefined || p.models?.dir !== undefined;
    // The model runs in the replica (onnxruntime-node, TF.js) for onnx and tensorflow, with or without
    // predictor code (TypeScript or the Python bridge); a PythonPredictor's or a TypeScript Predictor's models are theirs.
    this.supported = p.type === 'onnx' || p.type === 'tensorflow';
  }

  /** Answers a request whose path is `/v2` or starts with `/v2/`. */
  handle(req: IncomingMessage, res: ServerResponse, path: string): void {
    const h = this.host;
    const method = req.method ?? '';
    const get = method === 'GET' || method === 'HEAD';
    if (path === '/v2' || path === '/v2/') {
      if (!get) return h.sendJson(req, res, 405, { error: `method ${method} not allowed` }, { allow: 'GET, HEAD' });
      return h.sendJson(req, res, 200, v2ServerMetadata(PACKAGE_VERSION));
    }
    if (path === '/v2/health/live' || path === '/v2/health/ready') {
      if (!get) return h.sendJson(req, res, 405, { error: `method ${method} not allowed` }, { allow: 'GET, HEAD' });
      if (path === '/v2/health/live') {
        const live = h.state() !== 'failed';
        return h.sendJson(req, res, live ? 200 : 503, { live });
      }
      const ready = h.serving();
      return h.sendJson(req, res, ready ? 200 : 503, { ready });
    }
    let route: V2ModelPath | undefined;
    try {
      route = parseV2ModelPath(path);
    } catch (err) {
      return h.sendJson(req, res, 400, { error: (err as Error).message });
    }
    if (!route) return h.sendJson(req, res, 404, { error: `not found: ${path} is not an Open Inference Protocol v2 path` });
    const allowed = route.action === 'infer' ? 'POST' : 'GET, HEAD';
    if (route.action === 'infer' ? method !== 'POST' : !get) return h.sendJson(req, res, 405, { error: `method ${method} not allowed` }, { allow: allowed });
    if (!this.supported) {
      return h.sendJson(req, res, 501, {
        error: `API "${h.spec.name}" (predictor.type ${h.spec.predictor.typeAsWritten}) has no model the Open Inference Protocol can run: v2 serves onnx and tensorflow models`,
      });
    }
    let model: string | undefined;
    if (this.multiModel) model = route.name;
    else if (route.name !== h.spec.name) {
      return h.sendJson(req, res, 404, { error: `model "${route.name}" is not served here (this API serves one model, named "${h.spec.name}")` });
    }
    if (route.action === 'ready') return this.ready(req, res, route, model);
    void this.run(req, res, route, model);
  }

  /** Model readiness from the replica's state and the models its predictor reports (no slot taken). */
  private ready(req: IncomingMessage, res: ServerResponse, route: V2ModelPath, model: string | undefined): void {
    const h = this.host;
    const state = h.state();
    if (state === 'loading' || state === 'failed') return h.sendJson(req, res, 503, { name: route.name, ready: false }, { 'retry-after': '1' });
    const models = (h.executor.describe().models ?? []) as Array<{ name?: unknown; versions?: unknown }>;
    const entry = model === undefined ? models[0] : models.find((m) => m.name === model);
    if (!entry) {
      const names = models.map((m) => String(m.name)).join(', ');
      return h.sendJson(req, res, 404, { error: `model "${route.name}" is not served by API "${h.spec.name}" (models: ${names || 'none'})` });
    }
    if (route.version !== undefined) {
      const versions = Array.isArray(entry.versions) ? entry.versions.map(String) : [];
      const wanted = /^\d+$/.test(route.version) ? String(BigInt(route.version)) : route.version;
      if (!versions.includes(wanted)) {
        return h.sendJson(req, res, 404, { error: `model "${route.name}" has no version ${route.version} (versions: ${versions.join(', ') || 'none'})` });
      }
    }
    const ready = h.serving();
    h.sendJson(req, res, ready ? 200 : 503, { name: route.name, ready });
  }

  /** Infer and metadata: the prediction path of replica-server.ts with a v2 call as the payload. */
  private async run(req: IncomingMessage, res: ServerResponse, route: V2ModelPath, model: string | undefined): Promise<void> {
    const h = this.host;
    const startMs = performance.now();
    const requestId = h.requestId(req);
    const state = h.state();
    if (state !== 'ready' && state !== 'draining') {
      return h.answerError(res, startMs, requestId, 503, state === 'failed' ? 'the predictor failed to load' : 'the predictor is still loading', { 'retry-after': '1' });
    }
    if (!h.admission.tryEnter()) {
      return h.answerError(res, startMs, requestId, 503, `too many requests in flight (max_replica_concurrency is ${h.admission.maxInFlight})`, { 'retry-after': '1' });
    }
    let received = false;
    try {
      const body = route.action === 'infer' ? await readBody(req, h.spec.networking.maxBodyBytes) : undefined;
      h.admission.received();
      received = true;
      const where = { name: route.name, ...(model !== undefined ? { model } : {}), ...(route.version !== undefined ? { version: route.version } : {}) };
      let call: V2Call;
      if (body === undefined) call = { op: 'metadata', ...where };
      else {
        const header = req.headers['inference-header-content-length'];
        call = { op: 'infer', ...where, ...parseInferRequest(body, Array.isArray(header) ? header[0] : header, this.payloadOptions) };
      }
      if (!h.admission.tryAcquire()) await this.waitForSlot(res);
      const outcome = await h.executor.run({ requestId, payload: v2Payload(call), query: {}, headers: req.headers, debug: false }, h.releaseSlot);
      if (outcome.ok) {
        const r = outcome.response;
        h.answer(res, startMs, requestId, r.status, r.headers, r.body);
      } else h.answerFailure(res, startMs, requestId, outcome.failure);
    } catch (err) {
      if (err instanceof ClientGoneError || err instanceof SlotCancelledError) res.destroy();
      else if (err instanceof RequestError) h.answerError(res, startMs, requestId, err.status, err.message, err.closeConnection ? { connection: 'close' } : {});
      else {
        h.log.error({ requestId, err }, 'v2 request failed');
        h.answerError(res, startMs, requestId, 500, 'internal server error');
      }
    } finally {
      h.admission.leave(received);
    }
  }

  private async waitForSlot(res: ServerResponse): Promise<void> {
    const waiter = this.host.admission.enqueue();
    const onClose = (): void => waiter.cancel();
    res.once('close', onClose);
    try {
      await waiter.granted;
    } finally {
      res.off('close', onClose);
    }
  }
}
