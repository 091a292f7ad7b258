import type { BackendPredictArgs, LoadedPredictor } from '../ports/predictor-backend.js';
import { logDebugStage } from './debug-stage.js';
import type { Predictor } from './predictor-contract.js';

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
    async predict(args: BackendPredictArgs): Promise<unknown> {
      const value = await instance.predict({ payload: args.payload, query: args.query, headers: args.headers });
      if (args.debug) logDebugStage(args.log, 'inference', value);
      return value;
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
