import { extname } from 'node:path';
import { injectable } from 'inversify';
import type { ApiSpec } from '../../core/config/api-spec.js';
import { importUserModule } from '../../core/predictor/import-user-module.js';
import { PredictorError } from '../../core/errors.js';
import { constructUserPredictor, userPredictorAsLoaded } from '../../core/predictor/user-predictor.js';
import type { PredictorClass } from '../../core/predictor/predictor-contract.js';
import type { LoadedPredictor, PredictorBackendContribution } from '../../core/ports/predictor-backend.js';
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
    const className = Cls.name || 'Predictor';
    const instance = await constructUserPredictor(Cls, { config: structuredClone(spec.predictor.config) as Record<string, unknown>, log: predictorLog }, { path, className }, loadError);
    return userPredictorAsLoaded(instance, () => ({ backend: 'javascript', type: spec.predictor.typeAsWritten, path, class: className }));
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
