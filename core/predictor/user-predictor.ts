import { PredictorError } from '../errors.js';
import type { BackendPredictArgs, LoadedPredictor } from '../ports/predictor-backend.js';
import { logDebugStage } from './debug-stage.js';
import type { Predictor } from './predictor-contract.js';

/**
 * `LoadedPredictor.predictBatch` over a user class's `predictBatch(requests)`: hands it the batch as
 * Cortex's arguments (`{ payload, query, headers }` per request), checks that it returned a list with
 * one entry per request (else throws `PredictorError` `ENG_PREDICTOR_BATCH` naming the file and class,
 * which fails the whole batch), and logs the `inference` debug stage of each request that asked.
 * Throws `PredictorError` when the class has no `predictBatch`.
 */
export function userPredictBatch(
  instance: Predictor,
  where: { readonly path: string; readonly className: string },
): (batch: readonly BackendPredictArgs[]) => Promise<unknown[]> {
  const fn = instance.predictBatch;
  if (typeof fn !== 'function') {
    throw new PredictorError(`${where.path}: class ${where.className}: missing a predictBatch(requests) method`, { code: 'ENG_PREDICTOR_LOAD' });
  }
  return async (batch) => {
    const out: unknown = await fn.call(instance, batch.map((a) => ({ payload: a.payload, query: a.query, headers: a.headers })));
    if (!Array.isArray(out) || out.length !== batch.length) {
      const got = Array.isArray(out) ? `a list of ${out.length}` : out === null ? 'null' : typeof out;
      throw new PredictorError(
        `${where.path}: class ${where.className}: predictBatch got ${batch.length} requests and returned ${got}; it must return a list with one entry (an answer or an Error) per request, in order`,
        { code: 'ENG_PREDICTOR_BATCH' },
      );
    }
    batch.forEach((a, i) => {
      if (a.debug) logDebugStage(a.log, 'inference', out[i]);
    });
    return out;
  };
}

/**
 * Constructs a user's predictor class (then its optional async `init()`), turning a failure into
 * `fail(message, cause)` that names the file and class. `ctx` is what the constructor receives.
 */
export async function constructUserPredictor<C>(
  Cls: new (ctx: C) => Predictor,
  ctx: C,
  where: { readonly path: string; readonly className: string },
  fail: (message: string, cause: unknown) => Error,
): Promise<Predictor> {
  try {
    const instance = new Cls(ctx);
    if (typeof instance.init === 'function') await instance.init();
    return instance;
  } catch (err) {
    throw fail(`${where.path}: class ${Cls.name || where.className}: constructor failed: ${err instanceof Error ? err.message : String(err)}`, err);
  }
}

/** Logs a prediction (`?debug=true`) and hands it on. */
function logPrediction(args: BackendPredictArgs, value: unknown): unknown {
  logDebugStage(args.log, 'inference', value);
  return value;
}

/**
 * Serves a constructed user predictor (any backend): `predict` with Cortex's arguments and the
 * `inference` debug stage, `postPredict` when the class has one, and `close` that also runs
 * `onClose` (e.g. releasing a model client) whatever the user's `close` did.
 */
export function userPredictorAsLoaded(
  instance: Predictor,
  describe: () => Record<string, unknown>,
  onClose?: () => Promise<void>,
): LoadedPredictor {
  return {
    // Not an async function: the predictor's value (or promise) is handed on in one step, which saves a
    // microtask per prediction; a synchronous throw still becomes a rejection.
    predict(args: BackendPredictArgs): Promise<unknown> {
      let value: unknown;
      try {
        value = instance.predict({ payload: args.payload, query: args.query, headers: args.headers });
      } catch (err) {
        return Promise.reject(err);
      }
      const out = Promise.resolve(value);
      return args.debug ? out.then((v) => logPrediction(args, v)) : out;
    },
    postPredict:
      typeof instance.postPredict === 'function'
        ? async (args) => {
            await instance.postPredict!({ payload: args.payload, query: args.query, headers: args.headers, response: args.response });
          }
        : undefined,
    describe,
    async close(): Promise<void> {
      try {
        if (typeof instance.close === 'function') await instance.close();
      } finally {
        await onClose?.();
      }
    },
  };
}
