/**
 * Turns a model client (onnx or tensorflow) into a `LoadedPredictor`, in one of the three ways an API
 * can use a model (shared by both backends; pure: the backend passes in how to import a user file):
 *
 * 1. `predictor.path` set: the user's `ONNXPredictor` / `TensorFlowPredictor` class (named or default
 *    export) is constructed with `{ onnxClient | tensorflowClient, config, log }` and its
 *    `predict({ payload, query, headers })` answers.
 * 2. `predictor.requestHandler` set (legacy `kind: api` dialect): `pre_inference(sample, metadata)` →
 *    model → `post_inference(prediction, metadata)`; either function may be absent.
 * 3. Neither: the JSON payload goes to the model directly (`{ inputName: value }` or, for a single
 *    input, the value itself) and the outputs come back as JSON; `?model=` and `?version=` pick a
 *    model when the API serves several.
 *
 * With `debug` set on a request, the stages after the raw sample are logged under the request id
 * (`logDebugStage`: pre_inference, inference, post_inference); the replica logs the raw sample itself.
 */
import { HttpError, PredictorError } from '../errors.js';
import type { ApiSpec } from '../config/api-spec.js';
import type { Logger } from '../ports/logger.js';
import type { BackendPredictArgs, LoadedPredictor, ModelStats } from '../ports/predictor-backend.js';
import { logDebugStage } from './debug-stage.js';
import { isTensorModelClient, withProtocolV2 } from './protocol-v2.js';
import { constructUserPredictor, userPredictorAsLoaded } from './user-predictor.js';
import type { ModelClient, ModelMetadata, Predictor, QueryParams, RequestHandlerModule } from './predictor-contract.js';

/** A model client that also owns the loaded models. */
export interface OwnedModelClient extends ModelClient {
  /** Every model with its versions and signatures (for describe()). */
  allMetadata(): ModelMetadata[];
  /** Releases every loaded model. */
  close(): Promise<void>;
  /** Model cache counters (ManagedModelClient). */
  stats?(): ModelStats;
}

export interface ModelPredictorParts {
  readonly spec: ApiSpec;
  readonly client: OwnedModelClient;
  /** The predictor type as users see it (`onnx`, `tensorflow`). */
  readonly type: 'onnx' | 'tensorflow';
  /** The runtime in use, e.g. `onnxruntime-node 1.30.0` or `tfjs 4.22.0 (wasm)`. */
  readonly runtime: string;
  /** Imports a user file (`.ts`, `.js`, `.mjs`); the backend's dynamic import. Throws `PredictorError`. */
  readonly importFile: (absolutePath: string) => Promise<Record<string, unknown>>;
  readonly log: Logger;
}

const CLASS_NAME = { onnx: 'ONNXPredictor', tensorflow: 'TensorFlowPredictor' } as const;
const CLIENT_KEY = { onnx: 'onnxClient', tensorflow: 'tensorflowClient' } as const;

function loadError(message: string, cause?: unknown): PredictorError {
  return new PredictorError(message, { code: 'ENG_PREDICTOR_LOAD', cause });
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The first value of a query parameter (a repeated key gives several). */
function firstParam(query: QueryParams, key: string): string | undefined {
  const v = query[key];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * The predictor class of a loaded module: the named export `className`, else a default-exported class
 * (or a default export object holding `className`). Throws `PredictorError` listing the exports found.
 */
export function pickPredictorClass(mod: Record<string, unknown>, className: string, path: string): new (ctx: never) => Predictor {
  const def = mod.default as Record<string, unknown> | ((...a: unknown[]) => unknown) | undefined;
  const candidates = [mod[className], typeof def === 'function' ? def : def?.[className]];
  const found = candidates.find((c) => typeof c === 'function') as (new (ctx: never) => Predictor) | undefined;
  if (!found) {
    const names = Object.keys(mod).filter((k) => k !== '__esModule');
    throw loadError(`${path}: expected an exported class named ${className} (named or default export); found exports: ${names.length ? names.join(', ') : 'none'}`);
  }
  if (typeof (found.prototype as Partial<Predictor> | undefined)?.predict !== 'function') {
    throw loadError(`${path}: class ${found.name || className}: missing a predict({ payload, query, headers }) method`);
  }
  return found;
}

/**
 * `pre_inference` / `post_inference` of a request handler module (named exports, or properties of the
 * default export). Throws `PredictorError` when it has neither or one is not a function.
 */
export function pickRequestHandler(mod: Record<string, unknown>, path: string): RequestHandlerModule {
  const def = (typeof mod.default === 'object' && mod.default !== null ? mod.default : {}) as Record<string, unknown>;
  const pre = mod.pre_inference ?? def.pre_inference;
  const post = mod.post_inference ?? def.post_inference;
  for (const [name, fn] of [['pre_inference', pre], ['post_inference', post]] as const) {
    if (fn !== undefined && typeof fn !== 'function') throw loadError(`${path}: ${name} must be a function (got ${typeof fn})`);
  }
  if (pre === undefined && post === undefined) {
    const names = Object.keys(mod).filter((k) => k !== '__esModule');
    throw loadError(`${path}: a request handler exports pre_inference(sample, metadata) and/or post_inference(prediction, metadata); found exports: ${names.join(', ') || 'none'}`);
  }
  const handler: { pre_inference?: RequestHandlerModule['pre_inference']; post_inference?: RequestHandlerModule['post_inference'] } = {};
  if (pre) handler.pre_inference = pre as RequestHandlerModule['pre_inference'];
  if (post) handler.post_inference = post as RequestHandlerModule['post_inference'];
  return handler;
}

function directInput(payload: unknown): unknown {
  if (typeof payload === 'string' || payload instanceof Uint8Array || payload === undefined || payload === null) {
    const got = typeof payload === 'string' ? 'text' : payload instanceof Uint8Array ? 'raw bytes' : 'an empty body';
    throw new HttpError(400, `send the model input as JSON (Content-Type: application/json), e.g. {"<input name>": [[…]]}; got ${got}`);
  }
  return payload;
}

/**
 * Builds the `LoadedPredictor`. Throws `PredictorError` (code `ENG_PREDICTOR_LOAD`) when the predictor
 * or request-handler file cannot be used or the predictor's constructor (or `init()`) fails; the
 * client is closed in that case.
 */
export async function createModelPredictor(parts: ModelPredictorParts): Promise<LoadedPredictor> {
  const loaded = await createModelPredictorInner(parts);
  const client = parts.client;
  const out = client.stats ? { ...withMethods(loaded), modelStats: () => client.stats!() } : loaded;
  // Open Inference Protocol v2 calls run on the model client directly, skipping predictor code.
  return isTensorModelClient(client) ? withProtocolV2(out, client, parts.type) : out;
}

/** A copy of `loaded` whose methods stay bound to it (spreading an object keeps only own properties). */
function withMethods(loaded: LoadedPredictor): LoadedPredictor {
  return {
    predict: (a) => loaded.predict(a),
    ...(loaded.postPredict ? { postPredict: (a: Parameters<NonNullable<LoadedPredictor['postPredict']>>[0]) => loaded.postPredict!(a) } : {}),
    ...(loaded.predictBatch ? { predictBatch: (b: Parameters<NonNullable<LoadedPredictor['predictBatch']>>[0]) => loaded.predictBatch!(b) } : {}),
    describe: () => loaded.describe(),
    close: () => loaded.close(),
  };
}

async function createModelPredictorInner(parts: ModelPredictorParts): Promise<LoadedPredictor> {
  const { spec, client, type, runtime } = parts;
  const p = spec.predictor;
  const describeBase = (): Record<string, unknown> => ({ type, backend: runtime, models: client.allMetadata() });
  try {
    if (p.path !== undefined) return await classPredictor(parts, p.path, describeBase);
    if (p.requestHandler !== undefined) return await handlerPredictor(parts, p.requestHandler, describeBase);
  } catch (err) {
    await client.close().catch(() => undefined);
    throw err;
  }
  return {
    // Not an async function: the client's promise is handed on as it is (one microtask less per prediction).
    predict(args: BackendPredictArgs): Promise<unknown> {
      let out: Promise<unknown>;
      try {
        out = client.predict(directInput(args.payload), firstParam(args.query, 'model'), firstParam(args.query, 'version'));
      } catch (err) {
        return Promise.reject(err);
      }
      return args.debug ? out.then((o) => logInference(args, o)) : out;
    },
    describe: () => ({ ...describeBase(), predictor: 'none: the JSON payload goes to the model' }),
    close: () => client.close(),
  };
}

/** Logs a direct prediction's model output (`?debug=true`) and hands it on. */
function logInference(args: BackendPredictArgs, out: unknown): unknown {
  logDebugStage(args.log, 'inference', out);
  return out;
}

async function classPredictor(parts: ModelPredictorParts, path: string, describeBase: () => Record<string, unknown>): Promise<LoadedPredictor> {
  const { spec, client, type, log } = parts;
  const className = CLASS_NAME[type];
  const Cls = pickPredictorClass(await parts.importFile(path), className, path);
  const predictorLog = log.child({ component: 'predictor' });
  const ctx = { [CLIENT_KEY[type]]: client, config: structuredClone(spec.predictor.config) as Record<string, unknown>, log: predictorLog };
  const instance = await constructUserPredictor(Cls as never, ctx as never, { path, className }, loadError);
  return userPredictorAsLoaded(instance, () => ({ ...describeBase(), predictor: { path, class: Cls.name || className } }), () => client.close());
}

async function handlerPredictor(parts: ModelPredictorParts, path: string, describeBase: () => Record<string, unknown>): Promise<LoadedPredictor> {
  const { client } = parts;
  const handler = pickRequestHandler(await parts.importFile(path), path);
  const models = client.allMetadata();
  if (models.length !== 1) {
    throw loadError(`${path}: a request_handler works with exactly one model (found ${models.length}: ${models.map((m) => m.name).join(', ')})`);
  }
  const metadata = client.metadata();
  return {
    async predict(args: BackendPredictArgs): Promise<unknown> {
      const debug = args.debug;
      let sample: unknown = args.payload;
      if (handler.pre_inference) {
        sample = await handler.pre_inference(args.payload, metadata);
        if (debug) logDebugStage(args.log, 'pre_inference', sample);
      }
      const prediction = await client.predict(handler.pre_inference ? sample : directInput(sample));
      if (debug) logDebugStage(args.log, 'inference', prediction);
      if (!handler.post_inference) return prediction;
      const out = await handler.post_inference(prediction, metadata);
      if (debug) logDebugStage(args.log, 'post_inference', out);
      return out;
    },
    describe: () => ({
      ...describeBase(),
      requestHandler: { path, preInference: handler.pre_inference !== undefined, postInference: handler.post_inference !== undefined },
    }),
    close: () => client.close(),
  };
}
