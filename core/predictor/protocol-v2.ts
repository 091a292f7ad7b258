/**
 * The model side of the Open Inference Protocol v2 (KServe / Triton REST data plane), pure: no I/O.
 *
 * The replica parses a v2 request into a `V2Call` (tensors already typed from their v2 `datatype`)
 * and sends it through its normal prediction path (admission, slots, timeouts, worker threads) as the
 * task payload, wrapped by `v2Payload`. `withProtocolV2` wraps an onnx or tensorflow `LoadedPredictor`
 * so that such a payload never reaches predictor code (KServe's v2 data plane skips pre/post
 * processing): it runs the tensors on the model client directly and answers the protocol's JSON, or
 * JSON followed by binary tensors (Triton's binary tensor data extension), as a `PredictorResponse`.
 */
import { HttpError, PredictorError } from '../errors.js';
import type { TensorModelClient } from '../ports/model-runtime.js';
import type { BackendPredictArgs, LoadedPredictor } from '../ports/predictor-backend.js';
import { predictorResponse, type ModelMetadata, type PredictorResponse, type TensorSignature } from './predictor-contract.js';
import { formatShape, fromHalfBits, type TensorData, type TensorDtype, type TensorValues } from './tensor-data.js';

/**
 * Server metadata of `GET /v2` (gateway and replica): the package's name and version, and the
 * protocol extensions implemented (Triton's names).
 */
export function v2ServerMetadata(version: string): { readonly name: 'myelin'; readonly version: string; readonly extensions: readonly string[] } {
  return { name: 'myelin', version, extensions: ['binary_tensor_data'] };
}

/** v2 datatype ↔ the engine's dtype (onnxruntime names). */
const TO_DTYPE: Readonly<Record<string, TensorDtype>> = {
  BOOL: 'bool',
  UINT8: 'uint8',
  UINT16: 'uint16',
  UINT32: 'uint32',
  UINT64: 'uint64',
  INT8: 'int8',
  INT16: 'int16',
  INT32: 'int32',
  INT64: 'int64',
  FP16: 'float16',
  FP32: 'float32',
  FP64: 'float64',
  BYTES: 'string',
};
const TO_DATATYPE: Readonly<Record<string, string>> = Object.fromEntries(Object.entries(TO_DTYPE).map(([k, v]) => [v, k]));

/** The v2 datatypes myelin reads and writes (all of the protocol's but BF16). */
export const V2_DATATYPES: readonly string[] = Object.keys(TO_DTYPE);

/** The engine dtype of a v2 datatype; undefined for one myelin does not handle (BF16, a typo). */
export function dtypeOfDatatype(datatype: string): TensorDtype | undefined {
  return TO_DTYPE[datatype];
}

/** The v2 datatype of an engine or TF.js dtype (`float32` → `FP32`); a dtype without one is upper-cased as is. */
export function datatypeOf(dtype: string): string {
  return TO_DATATYPE[dtype] ?? dtype.toUpperCase();
}

/** Bytes per element of a fixed-size datatype; undefined for BYTES. */
export function elementBytes(dtype: TensorDtype): number | undefined {
  switch (dtype) {
    case 'bool':
    case 'int8':
    case 'uint8':
      return 1;
    case 'int16':
    case 'uint16':
    case 'float16':
      return 2;
    case 'int32':
    case 'uint32':
    case 'float32':
      return 4;
    case 'int64':
    case 'uint64':
    case 'float64':
      return 8;
    case 'string':
      return undefined;
  }
}

/** A v2 metadata shape: every dynamic or unknown dimension (a name, null, negative) is -1. */
export function v2Shape(shape: ReadonlyArray<number | string | null>): number[] {
  return shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1));
}

/** One requested output: its name and whether it goes back as binary data. */
export interface V2RequestedOutput {
  readonly name: string;
  readonly binary: boolean;
}

/** A v2 request as the replica parsed it (plain data: it may cross to a worker thread). */
export interface V2Call {
  readonly op: 'infer' | 'metadata';
  /** The model name as the client wrote it (echoed as `name` / `model_name`). */
  readonly name: string;
  /** The model to resolve in the API's model client; absent for the single model of an API. */
  readonly model?: string;
  /** Digits, or absent for the latest. */
  readonly version?: string;
  /** The request's `id`, echoed. */
  readonly id?: string;
  /** infer: the input tensors, typed from their v2 datatype, in request order. */
  readonly inputs?: readonly TensorData[];
  /** infer: the outputs asked for; absent means every output, binary when `binaryOutput`. */
  readonly outputs?: readonly V2RequestedOutput[];
  /** infer: `parameters.binary_data_output` of the request. */
  readonly binaryOutput?: boolean;
}

const CALL_KEY = '__myelinV2Call';
const TAG_KEY = '__myelinV2Tag';

/**
 * The task payload carrying `call`. The tag is a `BigUint64Array`, which no request body parser
 * produces (JSON, text, forms and raw bytes give plain values, strings and `Uint8Array`s) and which
 * survives the structured clone to a worker thread: a client cannot forge a v2 call through the
 * Cortex-style predict route.
 */
export function v2Payload(call: V2Call): Record<string, unknown> {
  return { [CALL_KEY]: call, [TAG_KEY]: new BigUint64Array(1) };
}

/** The `V2Call` of a task payload made by `v2Payload`, else undefined. */
export function v2CallOf(payload: unknown): V2Call | undefined {
  if (typeof payload !== 'object' || payload === null) return undefined;
  const p = payload as Record<string, unknown>;
  return p[TAG_KEY] instanceof BigUint64Array ? (p[CALL_KEY] as V2Call) : undefined;
}

/** The v2 `platform` of a model (Triton's names where they exist). */
function platformOf(type: 'onnx' | 'tensorflow', info: Readonly<Record<string, unknown>> | undefined): string {
  if (type === 'onnx') return 'onnxruntime_onnx';
  const format = info?.format;
  if (format === 'saved-model') return 'tensorflow_savedmodel';
  if (format === 'graph-model') return 'tensorflowjs_graph';
  return 'tensorflowjs_layers';
}

function bad(message: string): HttpError {
  return new HttpError(400, message);
}

/**
 * Checks the request's tensors against the model's inputs: every input given once, no unknown one,
 * the model's datatype, a shape that fits (dynamic dimensions match any size), as many values as the
 * shape holds. Returns them in signature order; throws `HttpError(400)` naming the tensor.
 */
export function checkV2Inputs(tensors: readonly TensorData[], signatures: readonly TensorSignature[]): TensorData[] {
  const names = signatures.map((s) => s.name);
  const byName = new Map<string, TensorData>();
  for (const t of tensors) {
    if (!names.includes(t.name)) throw bad(`unknown input "${t.name}" (the model's inputs: ${names.join(', ')})`);
    if (byName.has(t.name)) throw bad(`input "${t.name}" is given twice`);
    byName.set(t.name, t);
  }
  return signatures.map((sig) => {
    const t = byName.get(sig.name);
    if (!t) throw bad(`input "${sig.name}" is missing (the model's inputs: ${names.join(', ')})`);
    if (t.dtype !== sig.dtype) throw bad(`input "${sig.name}": datatype ${datatypeOf(t.dtype)} does not match the model's ${datatypeOf(sig.dtype)}`);
    const want = sig.shape;
    // An empty signature shape is "unknown" (onnxruntime reports undefined shapes as []): anything fits.
    const fits = want.length === 0 || (want.length === t.shape.length && want.every((d, i) => typeof d !== 'number' || d < 0 || d === t.shape[i]));
    if (!fits) throw bad(`input "${sig.name}": shape ${formatShape(t.shape)} does not fit the model's ${formatShape(v2Shape(want))}`);
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== n) throw bad(`input "${sig.name}": shape ${formatShape(t.shape)} holds ${n} values, got ${t.data.length}`);
    return t;
  });
}

/** JSON text of a flat output: int64 digits exact (JSON numbers have no size limit), bools as true/false, float16 as numbers. */
function jsonData(t: TensorData): string {
  const d = t.data as ArrayLike<unknown>;
  if (t.dtype === 'string') return JSON.stringify(Array.from(d as string[]));
  const parts = new Array<string>(d.length);
  for (let i = 0; i < d.length; i++) {
    const v = d[i];
    if (typeof v === 'bigint') parts[i] = v.toString();
    else if (t.dtype === 'bool') parts[i] = v ? 'true' : 'false';
    else if (t.dtype === 'float16' && typeof v === 'number' && d instanceof Uint16Array) parts[i] = JSON.stringify(fromHalfBits(v));
    else parts[i] = typeof v === 'number' && Number.isFinite(v) ? String(v) : JSON.stringify(v ?? null);
  }
  return `[${parts.join(',')}]`;
}

/** Binary form of a flat output: little-endian elements without padding; BYTES as 4-byte length + bytes each. */
export function tensorBytes(dtype: TensorDtype, data: TensorValues): Uint8Array {
  if (dtype === 'string') {
    const parts = (data as string[]).map((s) => Buffer.from(String(s), 'utf8'));
    const out = Buffer.alloc(parts.reduce((n, p) => n + 4 + p.length, 0));
    let o = 0;
    for (const p of parts) {
      out.writeUInt32LE(p.length, o);
      p.copy(out, o + 4);
      o += 4 + p.length;
    }
    return out;
  }
  const view = data as Exclude<TensorValues, string[]>;
  // A typed array's bytes are the platform's order: little-endian on every platform Node ships for.
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/**
 * The v2 inference response of a run: JSON, or JSON followed by the binary outputs with
 * `Inference-Header-Content-Length` giving the JSON's length. Throws `HttpError(400)` for a requested
 * output the model does not have.
 */
export function encodeInferResponse(call: V2Call, version: string, outputs: readonly TensorData[]): PredictorResponse {
  const byName = new Map(outputs.map((o) => [o.name, o]));
  const wanted: readonly V2RequestedOutput[] = call.outputs ?? outputs.map((o) => ({ name: o.name, binary: call.binaryOutput === true }));
  const parts: string[] = [];
  const blobs: Uint8Array[] = [];
  for (const w of wanted) {
    const t = byName.get(w.name);
    if (!t) throw bad(`unknown output "${w.name}" (the model's outputs: ${outputs.map((o) => o.name).join(', ')})`);
    const head = `{"name":${JSON.stringify(t.name)},"datatype":${JSON.stringify(datatypeOf(t.dtype))},"shape":${JSON.stringify([...t.shape])}`;
    if (w.binary) {
      const bytes = tensorBytes(t.dtype, t.data);
      blobs.push(bytes);
      parts.push(`${head},"parameters":{"binary_data_size":${bytes.byteLength}}}`);
    } else parts.push(`${head},"data":${jsonData(t)}}`);
  }
  const id = call.id !== undefined ? `,"id":${JSON.stringify(call.id)}` : '';
  const json = `{"model_name":${JSON.stringify(call.name)},"model_version":${JSON.stringify(version)}${id},"outputs":[${parts.join(',')}]}`;
  if (blobs.length === 0) return predictorResponse({ status: 200, headers: { 'content-type': 'application/json' }, body: json });
  const head = Buffer.from(json, 'utf8');
  const body = Buffer.concat([head, ...blobs]);
  return predictorResponse({
    status: 200,
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(head.byteLength) },
    body: new Uint8Array(body.buffer, body.byteOffset, body.byteLength),
  });
}

/** The v2 model metadata of a version's signatures. */
export function modelMetadataBody(call: V2Call, type: 'onnx' | 'tensorflow', meta: ModelMetadata, info?: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const tensor = (s: TensorSignature): Record<string, unknown> => ({ name: s.name, datatype: datatypeOf(s.dtype), shape: v2Shape(s.shape) });
  return {
    name: call.name,
    versions: [...meta.versions],
    platform: platformOf(type, info),
    inputs: meta.inputs.map(tensor),
    outputs: meta.outputs.map(tensor),
  };
}

/** Runs one v2 call on `client`. Throws `HttpError` (400 bad tensors, 404 unknown model or version) or `PredictorError`. */
export async function runV2Call(client: TensorModelClient, type: 'onnx' | 'tensorflow', call: V2Call): Promise<PredictorResponse> {
  if (call.op === 'metadata') {
    const meta = client.describeModel ? await client.describeModel(call.model, call.version) : client.metadata(call.model, call.version);
    const info = client.allMetadata().find((m) => m.name === meta.name) as (ModelMetadata & Record<string, unknown>) | undefined;
    return predictorResponse({ status: 200, headers: { 'content-type': 'application/json' }, body: modelMetadataBody(call, type, meta, info) });
  }
  const inputs = call.inputs ?? [];
  let signatures: readonly TensorSignature[] | undefined;
  // Check against the version's own signatures first, for messages in v2 terms (runTensors checks again).
  if (client.describeModel) signatures = (await client.describeModel(call.model, call.version)).inputs;
  const checked = signatures ? checkV2Inputs(inputs, signatures) : inputs;
  const run = await client.runTensors(checked, call.model, call.version);
  return encodeInferResponse(call, run.version, run.outputs);
}

/** Whether `client` can run raw tensors (the onnx and tensorflow model clients can). */
export function isTensorModelClient(client: unknown): client is TensorModelClient {
  return typeof (client as Partial<TensorModelClient> | null)?.runTensors === 'function';
}

/**
 * `loaded` answering v2 calls (payloads made by `v2Payload`) on `client` directly, without predictor
 * code; every other prediction goes to `loaded` unchanged. Under request batching (`predictBatch`), v2
 * calls of a batch run on their own and the rest go to `loaded.predictBatch`, each keeping its place.
 * Optional members of `loaded` stay absent when it has none.
 */
export function withProtocolV2(loaded: LoadedPredictor, client: TensorModelClient, type: 'onnx' | 'tensorflow'): LoadedPredictor {
  const run = (call: V2Call): Promise<unknown> => runV2Call(client, type, call);
  const out: LoadedPredictor = {
    predict: (args: BackendPredictArgs) => {
      const call = v2CallOf(args.payload);
      return call ? run(call) : loaded.predict(args);
    },
    describe: () => loaded.describe(),
    close: () => loaded.close(),
  };
  if (loaded.predictBatch) {
    const inner = loaded.predictBatch.bind(loaded);
    out.predictBatch = async (batch) => {
      const rest = batch.filter((a) => v2CallOf(a.payload) === undefined);
      const restResults = rest.length > 0 ? await inner(rest) : [];
      if (restResults.length !== rest.length) {
        throw new PredictorError(`predictBatch got ${rest.length} requests and returned ${restResults.length} results; it must return one entry per request, in order`, { code: 'ENG_PREDICTOR_BATCH' });
      }
      let k = 0;
      return Promise.all(
        batch.map(async (a) => {
          const call = v2CallOf(a.payload);
          if (!call) return restResults[k++];
          try {
            return await run(call);
          } catch (err) {
            return err instanceof Error ? err : new Error(String(err));
          }
        }),
      );
    };
  }
  if (loaded.postPredict) {
    const post = loaded.postPredict.bind(loaded);
    out.postPredict = async (args) => {
      if (v2CallOf(args.payload) === undefined) await post(args);
    };
  }
  if (loaded.modelStats) out.modelStats = loaded.modelStats.bind(loaded);
  if (loaded.capacity) out.capacity = loaded.capacity.bind(loaded);
  return out;
}
