import { extname } from 'node:path';
import { injectable } from 'inversify';
import type { ApiSpec } from '../../core/config/api-spec.js';
import { importUserModule } from '../../core/predictor/import-user-module.js';
import { PredictorError } from '../../core/errors.js';
import { logDebugStage } from '../../core/predictor/debug-stage.js';
import type { Predictor, PredictorClass } from '../../core/predictor/predictor-contract.js';
import type { BackendPredictArgs, LoadedPredictor, PredictorBackendContribution } from '../../core/ports/predictor-backend.js';
import type { Logger } from '../../core/ports/logger.js';

/** File extensions a javascript predictor may have; `.ts`/`.mts`/`.cts` need tsx registered in the thread. */
export const JAVASCRIPT_PREDICTOR_EXTENSIONS: readonly string[] = ['.ts', '.mts', '.cts', '.js', '.mjs', '.cjs'];

/**
 * `predictor.type: javascript` (alias `typescript`): loads a `.ts`/`.js`/`.mjs` file exporting a
 * `Predictor` class (named or default export), constructs it with `{ config, log }` (config deep-copied
 * per instance), awaits its optional `init()`, and calls `predict({ payload, query, headers })`.
 * TypeScript files load with no build step because tsx is registered in every thread that loads
 * predictors (bin/myelin.mjs, the replica child entry and the predictor worker entry do it).
 * `load` throws `PredictorError` (code `ENG_PREDICTOR_LOAD`) naming the file when it cannot be used.
 */
@injectable()
export class JavascriptPredictorBackend implements PredictorBackendContribution {
  readonly kind = 'javascript';
  readonly aliases = ['typescript'] as const;

  async load(spec: ApiSpec, log: Logger): Promise<LoadedPredictor> {
    const path = spec.predictor.path;
    if (!path) throw loadError(`API "${spec.name}": predictor.path is required for predictor.type ${spec.predictor.typeAsWritten}`);
    if (!JAVASCRIPT_PREDICTOR_EXTENSIONS.includes(extname(path))) {
      throw loadError(`${path}: a ${spec.predictor.typeAsWritten} predictor must be one of ${JAVASCRIPT_PREDICTOR_EXTENSIONS.join(', ')}`);
    }
    const mod = await importPredictorFile(path);
    const Cls = findPredictorClass(mod, path);
    const predictorLog = log.child({ component: 'predictor' });
    let instance: Predictor;
    try {
      instance = new Cls({ config: structuredClone(spec.predictor.config) as Record<string, unknown>, log: predictorLog });
      if (typeof instance.init === 'function') await instance.init();
    } catch (err) {
      throw loadError(`${path}: class ${Cls.name || 'Predictor'}: constructor failed: ${messageOf(err)}`, err);
    }
    const className = Cls.name || 'Predictor';
    const hasPostPredict = typeof instance.postPredict === 'function';
    return {
      async predict(args: BackendPredictArgs): Promise<unknown> {
        const value = await instance.predict({ payload: args.payload, query: args.query, headers: args.headers });
        if (args.debug) logDebugStage(args.log, 'inference', value);
        return value;
      },
      postPredict: hasPostPredict
        ? async (args) => {
            await instance.postPredict!({ payload: args.payload, query: args.query, headers: args.headers, response: args.response });
          }
        : undefined,
      describe: () => ({ backend: 'javascript', type: spec.predictor.typeAsWritten, path, class: className }),
      async close(): Promise<void> {
        if (typeof instance.close === 'function') await instance.close();
      },
    };
  }
}

function importPredictorFile(path: string): Promise<Record<string, unknown>> {
  return importUserModule(path, 'a javascript/typescript predictor');
}

/** The `Predictor` class of a loaded module: a named export `Predictor`, else a default-exported class. */
function findPredictorClass(mod: Record<string, unknown>, path: string): PredictorClass {
  const def = mod.default as Record<string, unknown> | undefined;
  const candidates = [mod.Predictor, typeof def === 'function' ? def : def?.Predictor];
  const found = candidates.find((c) => typeof c === 'function');
  if (!found) {
    const names = Object.keys(mod).filter((k) => k !== '__esModule');
    throw loadError(
      `${path}: expected an exported class named Predictor (named or default export); found exports: ${names.length ? names.join(', ') : 'none'}`,
    );
  }
  const proto = (found as { prototype?: Record<string, unknown> }).prototype;
  if (!proto || typeof proto.predict !== 'function') {
    throw loadError(`${path}: class ${(found as { name?: string }).name || 'Predictor'}: missing a predict({ payload, query, headers }) method`);
  }
  return found as PredictorClass;
}

function loadError(message: string, cause?: unknown): PredictorError {
  return new PredictorError(message, { code: 'ENG_PREDICTOR_LOAD', cause });
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
