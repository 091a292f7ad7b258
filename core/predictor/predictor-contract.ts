/**
 * What user predictor files implement, in TypeScript (Cortex's predictor interface). Exported from the
 * package: `import type { Predictor, ONNXPredictor, TensorFlowPredictor, PredictorContext } from 'myelin'`.
 *
 * A predictor file exports one class with the expected name:
 * - `Predictor` for `predictor.type: javascript` (alias `typescript`), constructed with `{ config, log }`;
 * - `ONNXPredictor` for `onnx`, constructed with `{ onnxClient, config, log }`;
 * - `TensorFlowPredictor` for `tensorflow`, constructed with `{ tensorflowClient, config, log }`.
 * The class may be the default export or a named export. `predict` may be sync or async.
 */
import type { Logger } from 'pino';

/** Query parameters: a repeated key gives an array, as node's URLSearchParams would list it. */
export type QueryParams = Readonly<Record<string, string | string[]>>;
export type RequestHeaders = Readonly<Record<string, string | string[] | undefined>>;

/**
 * The parsed request body, by Content-Type (reference/cortex.md §4):
 * `application/json` → parsed JSON; `text/plain` → string; `application/x-www-form-urlencoded` and
 * `multipart/form-data` → `FormPayload`; anything else → the raw bytes as a `Uint8Array`.
 */
export type Payload = unknown;

/** A form field value: a string, or an uploaded file. */
export interface FormFile {
  readonly filename: string;
  readonly contentType: string;
  readonly data: Uint8Array;
}
export type FormPayload = Readonly<Record<string, string | FormFile | Array<string | FormFile>>>;

export interface PredictArgs {
  readonly payload: Payload;
  readonly query: QueryParams;
  readonly headers: RequestHeaders;
}

export interface PostPredictArgs extends PredictArgs {
  /** What `predict` returned. */
  readonly response: unknown;
}

/**
 * A full response, passed through as is (Cortex's Starlette `Response`): return
 * `predictorResponse({ status: 201, headers: { 'x-model': 'v2' }, body: 'ok' })` from `predict`.
 * `body` follows the same rules as a plain return value (bytes, string, else JSON).
 */
export interface PredictorResponse {
  readonly [PREDICTOR_RESPONSE]: true;
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: unknown;
  /**
   * The value prediction monitoring watches, when the predictor has already encoded `body` (the Python
   * bridge answers with bytes and extracts it on its side). Absent: monitoring looks into `body`.
   */
  readonly monitored?: string | number | null;
}
/** Marks a `PredictorResponse`; a plain string key so it survives a worker-thread boundary (structured clone). */
export const PREDICTOR_RESPONSE = '__myelinResponse' as const;

export function predictorResponse(r: { status?: number; headers?: Record<string, string>; body?: unknown }): PredictorResponse {
  return { [PREDICTOR_RESPONSE]: true, status: r.status ?? 200, headers: r.headers ?? {}, body: r.body ?? null };
}

export function isPredictorResponse(x: unknown): x is PredictorResponse {
  return typeof x === 'object' && x !== null && (x as Record<string, unknown>)[PREDICTOR_RESPONSE] === true;
}

export interface PredictorContext {
  /** `predictor.config` from the API spec, deep-copied for this instance. */
  readonly config: Record<string, unknown>;
  /** A pino child logger bound to the API and replica. */
  readonly log: Logger;
  /**
   * With `predictor.models` (TypeScript predictors): the models of the API, loaded by the class's
   * `loadModel(path)` (Cortex's `python_client`). Absent when the API has no models.
   */
  readonly modelClient?: PredictorModelClient;
}

/** `ctx.modelClient` of a TypeScript predictor with `predictor.models`. */
export interface PredictorModelClient {
  /**
   * What `loadModel(path)` returned for a model version (loaded on first use with `cache_size`, else
   * at start). With one model (`models.path`) the name is ignored; with `paths` or `dir` it is
   * required. `modelVersion`: digits or `latest` (default). Rejects with `HttpError` 400/404 naming the
   * models or versions that exist. A model a prediction got stays in memory until that prediction ends.
   */
  getModel<M = unknown>(modelName?: string | null, modelVersion?: string | number | null): Promise<M>;
  /** The models and versions the store has now (live reload keeps it current). */
  listModels(): Array<{ name: string; versions: string[] }>;
}

/** `predictor.type: javascript | typescript`. */
export interface Predictor {
  /**
   * Optional async set-up (download or read a model, warm up): awaited after the constructor, before
   * the replica reports ready. JavaScript constructors cannot await, so this is where async work goes.
   */
  init?(): void | Promise<void>;
  predict(args: PredictArgs): unknown | Promise<unknown>;
  /**
   * With `predictor.models`: turns one version's local copy (its folder, or the model file itself)
   * into whatever `ctx.modelClient.getModel` should return. Required when the API has models.
   */
  loadModel?(path: string): unknown | Promise<unknown>;
  /** Called when a version `loadModel` made leaves memory (evicted or removed from the store), to free it. */
  unloadModel?(model: unknown): void | Promise<void>;
  /**
   * Server-side batching (`predictor.server_side_batching`): required when it is configured, unused
   * otherwise. Receives the requests gathered into one batch (up to `max_batch_size`, in arrival
   * order) and returns one entry per request, in the same order: the answer (any value `predict`
   * could return), or an `Error` (e.g. `HttpError`) that fails that request alone. Throwing, or a list
   * of the wrong length, fails every request of the batch (500). `predict` still serves a replica
   * without batching.
   */
  predictBatch?(requests: PredictArgs[]): unknown[] | Promise<unknown[]>;
  /** Runs after the response was sent; its errors are logged, never sent. */
  postPredict?(args: PostPredictArgs): void | Promise<void>;
  close?(): void | Promise<void>;
}
export type PredictorClass = new (ctx: PredictorContext) => Predictor;

/** Model input: nested arrays, a typed array, or `{ inputName: value }` for several inputs. */
export type ModelInput = unknown;
/** Model outputs as plain (nested) arrays, keyed by output name. */
export type ModelOutput = Record<string, unknown>;

/** The model client handed to ONNX and TensorFlow predictors (`onnx_client` / `tensorflow_client`). */
export interface ModelClient {
  /**
   * Runs the model. `modelName` picks one of several models (required when the API serves more than
   * one); `version` is a number or `latest` (default). Throws `HttpError(400)` naming the input, the
   * expected and the received shape or dtype when the input does not match the model's signature.
   */
  predict(input: ModelInput, modelName?: string, version?: string | number): Promise<ModelOutput>;
  /** Input and output signatures of a model (name → dtype and shape; -1 or a name for dynamic dims). */
  metadata(modelName?: string, version?: string | number): ModelMetadata;
}

export interface TensorSignature {
  readonly name: string;
  readonly dtype: string;
  readonly shape: ReadonlyArray<number | string>;
}
export interface ModelMetadata {
  readonly name: string;
  readonly versions: readonly string[];
  readonly inputs: readonly TensorSignature[];
  readonly outputs: readonly TensorSignature[];
  /** Per version, seconds since the epoch of its last change in the store (Cortex's `timestamps`), when known. */
  readonly timestamps?: readonly number[];
  /** Per version: `loaded`, `loading` or `not loaded` in this replica, when known. */
  readonly status?: Readonly<Record<string, string>>;
}

export interface ONNXPredictorContext extends PredictorContext {
  readonly onnxClient: ModelClient;
}
/** `predictor.type: onnx` with a `path`. */
export type ONNXPredictor = Predictor;
export type ONNXPredictorClass = new (ctx: ONNXPredictorContext) => ONNXPredictor;

export interface TensorFlowPredictorContext extends PredictorContext {
  readonly tensorflowClient: ModelClient;
}
/** `predictor.type: tensorflow` with a `path`. */
export type TensorFlowPredictor = Predictor;
export type TensorFlowPredictorClass = new (ctx: TensorFlowPredictorContext) => TensorFlowPredictor;

/**
 * Legacy dialect `request_handler` file: optional `pre_inference(sample, metadata)` and
 * `post_inference(prediction, metadata)` exports around the onnx or tensorflow model.
 */
export interface RequestHandlerModule {
  pre_inference?(sample: unknown, metadata: ModelMetadata): unknown | Promise<unknown>;
  post_inference?(prediction: unknown, metadata: ModelMetadata): unknown | Promise<unknown>;
}
