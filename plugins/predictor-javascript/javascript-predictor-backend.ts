import { extname } from 'node:path';
import { inject, injectable, optional } from 'inversify';
import type { ApiSpec } from '../../core/config/api-spec.js';
import { importUserModule } from '../../core/predictor/import-user-module.js';
import { PredictorError } from '../../core/errors.js';
import { constructUserPredictor, userPredictBatch, userPredictorAsLoaded } from '../../core/predictor/user-predictor.js';
import type { PredictorClass } from '../../core/predictor/predictor-contract.js';
import type { LoadedPredictor, PredictorBackendContribution } from '../../core/ports/predictor-backend.js';
import type { Logger } from '../../core/ports/logger.js';
import { ModelProvider } from '../../core/ports/model-provider.js';
import { UserModuleImporter } from '../../core/ports/user-module-importer.js';
import { ManagedModels } from '../../core/predictor/managed-models.js';
import { ModelDirectory } from '../../core/predictor/model-directory.js';
import { modelFormatOf, modelSources } from '../../core/predictor/model-tree.js';
import type { Predictor } from '../../core/predictor/predictor-contract.js';
import { JavascriptModelClient } from './javascript-model-client.js';

/** File extensions a javascript predictor may have; `.ts`/`.mts`/`.cts` are compiled by tsx as they load. */
export const JAVASCRIPT_PREDICTOR_EXTENSIONS: readonly string[] = ['.ts', '.mts', '.cts', '.js', '.mjs', '.cjs'];

/**
 * `predictor.type: javascript` (alias `typescript`): loads a `.ts`/`.js`/`.mjs` file exporting a
 * `Predictor` class (named or default export), constructs it with `{ config, log }` (config deep-copied
 * per instance), awaits its optional `init()`, and calls `predict({ payload, query, headers })`.
 * TypeScript files load with no build step: the `UserModuleImporter` compiles them with tsx's `tsImport`.
 * `load` throws `PredictorError` (code `ENG_PREDICTOR_LOAD`) naming the file when it cannot be used.
 */
@injectable()
export class JavascriptPredictorBackend implements PredictorBackendContribution {
  readonly kind = 'javascript';
  readonly aliases = ['typescript'] as const;

  constructor(
    @inject(UserModuleImporter) private readonly importer: UserModuleImporter,
    @inject(ModelProvider) @optional() private readonly provider?: ModelProvider,
  ) {}

  async load(spec: ApiSpec, log: Logger): Promise<LoadedPredictor> {
    const path = spec.predictor.path;
    if (!path) throw loadError(`API "${spec.name}": predictor.path is required for predictor.type ${spec.predictor.typeAsWritten}`);
    if (!JAVASCRIPT_PREDICTOR_EXTENSIONS.includes(extname(path))) {
      throw loadError(`${path}: a ${spec.predictor.typeAsWritten} predictor must be one of ${JAVASCRIPT_PREDICTOR_EXTENSIONS.join(', ')}`);
    }
    const mod = await importUserModule(this.importer, path, 'a javascript/typescript predictor');
    const Cls = findPredictorClass(mod, path);
    const predictorLog = log.child({ component: 'predictor' });
    const className = Cls.name || 'Predictor';
    const batching = spec.predictor.serverSideBatching;
    // Checked on the class, before its constructor and init() run.
    if (batching && typeof (Cls.prototype as { predictBatch?: unknown }).predictBatch !== 'function') {
      throw loadError(
        `${path}: class ${className}: predictor.server_side_batching is set (max_batch_size ${batching.maxBatchSize}), so the class needs a predictBatch(requests) method: it gets a list of { payload, query, headers } and returns one result per request, in order (an Error entry fails that request alone)`,
      );
    }
    const config = structuredClone(spec.predictor.config) as Record<string, unknown>;
    if (modelSources(spec.predictor).kind === 'none') {
      const instance = await constructUserPredictor(Cls, { config, log: predictorLog }, { path, className }, loadError);
      const loaded = userPredictorAsLoaded(instance, () => ({ backend: 'javascript', type: spec.predictor.typeAsWritten, path, class: className }));
      return batching ? { ...loaded, predictBatch: userPredictBatch(instance, { path, className }) } : loaded;
    }
    return this.loadWithModels(spec, Cls, { path, className, config, log: predictorLog });
  }

  /**
   * A predictor with `predictor.models`: the class needs `loadModel(path)`; its instance gets
   * `ctx.modelClient` (JavascriptModelClient). Every version is loaded after `init()` unless
   * `cache_size` makes loads lazy.
   */
  private async loadWithModels(
    spec: ApiSpec,
    Cls: PredictorClass,
    o: { readonly path: string; readonly className: string; readonly config: Record<string, unknown>; readonly log: Logger },
  ): Promise<LoadedPredictor> {
    const { path, className } = o;
    if (typeof (Cls.prototype as { loadModel?: unknown }).loadModel !== 'function') {
      throw loadError(`${path}: class ${className}: predictor.models is set, so the class needs a loadModel(path) method that loads one model version from its local folder (or file)`);
    }
    if (!this.provider) throw loadError('no model store is configured in this process (ModelProvider is not bound)');
    const models = spec.predictor.models;
    const directory = await ModelDirectory.open({
      predictor: spec.predictor,
      provider: this.provider,
      format: modelFormatOf('javascript'),
      ...(models?.diskCacheSize !== undefined ? { diskCacheSize: models.diskCacheSize } : {}),
      ...(models?.diskCacheBytes !== undefined ? { diskCacheBytes: models.diskCacheBytes } : {}),
      log: o.log,
    });
    let instance: Predictor | undefined;
    let managed: ManagedModels<unknown> | undefined;
    try {
      managed = await ManagedModels.open<unknown>(
        {
          directory,
          ...(models?.cacheSize !== undefined ? { cacheSize: models.cacheSize } : {}),
          ...(models?.cacheBytes !== undefined ? { cacheBytes: models.cacheBytes } : {}),
          log: o.log,
          load: async (modelPath, sel) => {
            if (!instance) throw loadError(`${path}: class ${className}: getModel was called before the constructor returned; call it in init() or predict()`);
            try {
              return await instance.loadModel!(modelPath);
            } catch (err) {
              throw loadError(`${path}: class ${className}: loadModel failed for model "${sel.name}" version ${sel.version} (${modelPath}): ${err instanceof Error ? err.message : String(err)}`, err);
            }
          },
          release: async (m) => {
            await instance?.unloadModel?.(m);
          },
        },
        { deferLoad: true },
      );
      const mm = managed;
      const client = new JavascriptModelClient(() => mm);
      const ctx = { config: o.config, log: o.log, modelClient: client };
      // The instance is needed by loadModel: build it by hand so that init() can already call getModel.
      const built = await constructUserPredictorWith(Cls, ctx, (i) => (instance = i), { path, className });
      await mm.loadAll();
      const loaded = userPredictorAsLoaded(
        built,
        () => ({ backend: 'javascript', type: spec.predictor.typeAsWritten, path, class: className, models: describeModels(mm) }),
        () => mm.close(),
      );
      const batch = spec.predictor.serverSideBatching ? userPredictBatch(built, { path, className }) : undefined;
      return {
        ...loaded,
        predict: (args) => client.withinPrediction(() => loaded.predict(args)),
        ...(batch ? { predictBatch: (b: Parameters<typeof batch>[0]) => client.withinPrediction(() => batch(b)) } : {}),
        modelStats: () => mm.stats(),
      };
    } catch (err) {
      if (managed) await managed.close();
      else directory.close();
      throw err;
    }
  }
}

/** GET `/`'s view of the models: versions, Cortex's timestamps, and whether each is in memory. */
function describeModels(mm: ManagedModels<unknown>): Array<Record<string, unknown>> {
  return mm.info().map((m) => ({
    name: m.name,
    versions: m.versions.map((v) => v.version),
    timestamps: m.versions.map((v) => v.timestamp),
    status: Object.fromEntries(m.versions.map((v) => [v.version, v.state])),
  }));
}

/** `constructUserPredictor`, handing the instance to `bind` between its constructor and `init()`. */
async function constructUserPredictorWith(
  Cls: PredictorClass,
  ctx: ConstructorParameters<PredictorClass>[0],
  bind: (instance: Predictor) => void,
  where: { readonly path: string; readonly className: string },
): Promise<Predictor> {
  let instance: Predictor;
  try {
    instance = new Cls(ctx);
  } catch (err) {
    throw loadError(`${where.path}: class ${Cls.name || where.className}: constructor failed: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  bind(instance);
  try {
    if (typeof instance.init === 'function') await instance.init();
  } catch (err) {
    throw loadError(`${where.path}: class ${Cls.name || where.className}: init() failed: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  return instance;
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
