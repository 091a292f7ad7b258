/**
 * The `onnxClient` / `tensorflowClient` over live models (`ManagedModels`): each call leases its model
 * version for the length of the run (so eviction and live reload never pull it away mid-run), binds
 * the input to the version's signature (`HttpError(400)` on a mismatch) and runs it.
 */
import { HttpError, PredictorError } from '../errors.js';
import type { ModelStats } from '../ports/predictor-backend.js';
import type { TensorModelClient, TensorRun } from '../ports/model-runtime.js';
import type { RunnableModel } from './runnable-model.js';
import type { ApiSpec } from '../config/api-spec.js';
import type { Logger } from '../ports/logger.js';
import type { ModelProvider } from '../ports/model-provider.js';
import { ModelDirectory } from './model-directory.js';
import { ManagedModels } from './managed-models.js';
import type { ModelFormat } from './model-tree.js';
import type { ModelInput, ModelMetadata, ModelOutput } from './predictor-contract.js';
import { bindInputs, checkTensors, toNested, type TensorData } from './tensor-data.js';

export class ManagedModelClient implements TensorModelClient {
  private closed = false;

  constructor(
    private readonly models: ManagedModels<RunnableModel>,
    /** The runtime and its version, e.g. `onnxruntime-node 1.30.0`. */
    readonly runtime: string,
  ) {}

  async predict(input: ModelInput, modelName?: string, version?: string | number): Promise<ModelOutput> {
    // `run` inlined (one promise and one closure less per prediction: this is the onnx/tensorflow hot path).
    if (this.closed) throw new PredictorError('the model client is closed');
    const lease = this.models.acquireLoaded(modelName, version) ?? (await this.models.acquire(modelName, version));
    let outputs: TensorData[];
    try {
      const tensors = bindInputs(input, lease.model.inputs);
      try {
        outputs = await lease.model.run(tensors);
      } catch (err) {
        throw this.runError(lease.name, lease.version, err);
      }
    } finally {
      lease.release();
    }
    const out: ModelOutput = {};
    for (const t of outputs) out[t.name] = toNested(t.data, t.shape, t.dtype);
    return out;
  }

  runTensors(inputs: readonly TensorData[], modelName?: string, version?: string | number): Promise<TensorRun> {
    return this.run(modelName, version, (m) => checkTensors(inputs, m.inputs));
  }

  private async run(modelName: string | undefined, version: string | number | undefined, bind: (m: RunnableModel) => readonly TensorData[]): Promise<TensorRun> {
    if (this.closed) throw new PredictorError('the model client is closed');
    // In memory (the common case): no wait for `acquire`'s promise.
    const lease = this.models.acquireLoaded(modelName, version) ?? (await this.models.acquire(modelName, version));
    try {
      const tensors = bind(lease.model);
      try {
        return { model: lease.name, version: lease.version, outputs: await lease.model.run(tensors) };
      } catch (err) {
        throw this.runError(lease.name, lease.version, err);
      }
    } finally {
      lease.release();
    }
  }

  /** What a failed model run throws: `HttpError` and `PredictorError` as they are, anything else as `PredictorError` `ENG_PREDICTOR_RUN`. */
  private runError(model: string, version: string, err: unknown): unknown {
    if (err instanceof HttpError || err instanceof PredictorError) return err;
    return new PredictorError(`model "${model}" version ${version}: ${this.runtime} run failed: ${(err as Error)?.message ?? String(err)}`, {
      code: 'ENG_PREDICTOR_RUN',
      cause: err,
    });
  }

  /**
   * Signatures of a model version when it is in memory (the latest loaded version otherwise); a model
   * not loaded yet (model caching) shows no inputs or outputs. Throws `HttpError` for an unknown model.
   */
  metadata(modelName?: string, version?: string | number): ModelMetadata {
    const info = this.models.info();
    const sel = this.models.directory.resolve(modelName, version);
    const entry = info.find((m) => m.name === sel.name);
    const m = entry?.latest ?? this.models.anyLoaded(sel.name);
    return { name: sel.name, versions: entry?.versions.map((v) => v.version) ?? [], inputs: m?.inputs ?? [], outputs: m?.outputs ?? [] };
  }

  async describeModel(modelName?: string, version?: string | number): Promise<ModelMetadata> {
    const lease = await this.models.acquire(modelName, version);
    try {
      const entry = this.models.info().find((m) => m.name === lease.name);
      return { name: lease.name, versions: entry?.versions.map((v) => v.version) ?? [lease.version], inputs: lease.model.inputs, outputs: lease.model.outputs };
    } finally {
      lease.release();
    }
  }

  allMetadata(): ModelMetadata[] {
    return this.models.info().map((e) => {
      const m = e.latest ?? this.models.anyLoaded(e.name);
      return {
        name: e.name,
        versions: e.versions.map((v) => v.version),
        timestamps: e.versions.map((v) => v.timestamp),
        status: Object.fromEntries(e.versions.map((v) => [v.version, v.state])),
        inputs: m?.inputs ?? [],
        outputs: m?.outputs ?? [],
        ...(m?.info ?? {}),
      };
    });
  }

  stats(): ModelStats {
    return this.models.stats();
  }

  /** Unloads every version (those in use once their runs end); idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.models.close();
  }
}

export interface OpenModelClientOptions {
  readonly spec: ApiSpec;
  readonly provider: ModelProvider;
  readonly format: ModelFormat;
  /** Loads one version from its local path (folder or file); `where` names it in messages. */
  loadVersion(path: string, where: string, signatureKey: string | undefined): Promise<RunnableModel>;
  readonly runtime: string;
  readonly log: Logger;
}

/**
 * An API's models as a `ManagedModelClient`: lists them in their store (a wrong layout throws
 * `ModelStoreError` naming the URL), then loads them (every version at once, or on demand with
 * `cache_size`) through `loadVersion`.
 */
export async function openModelClient(o: OpenModelClientOptions): Promise<ManagedModelClient> {
  const models = o.spec.predictor.models;
  const directory = await ModelDirectory.open({
    predictor: o.spec.predictor,
    provider: o.provider,
    format: o.format,
    ...(models?.diskCacheSize !== undefined ? { diskCacheSize: models.diskCacheSize } : {}),
    ...(models?.diskCacheBytes !== undefined ? { diskCacheBytes: models.diskCacheBytes } : {}),
    log: o.log,
  });
  try {
    if (directory.models().length === 0) {
      throw new PredictorError(`predictor.type ${o.format.type} needs a model: set model_path or models (path, paths or dir)`, { code: 'ENG_PREDICTOR_NO_MODEL' });
    }
    const managed = await ManagedModels.open<RunnableModel>({
      directory,
      ...(models?.cacheSize !== undefined ? { cacheSize: models.cacheSize } : {}),
      ...(models?.cacheBytes !== undefined ? { cacheBytes: models.cacheBytes } : {}),
      log: o.log,
      load: (path, sel) => o.loadVersion(path, `model "${sel.name}" version ${sel.version}`, sel.entry.signatureKey),
      release: (m) => m.release(),
    });
    return new ManagedModelClient(managed, o.runtime);
  } catch (err) {
    directory.close();
    throw err;
  }
}
