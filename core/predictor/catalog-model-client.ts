/**
 * The `onnxClient` / `tensorflowClient` handed to predictors, independent of the runtime: it picks a
 * model by name and version (`ModelCatalog`), binds the request's input to the model's input
 * signature (`bindInputs`, `HttpError(400)` on a mismatch) and runs the backend's `RunnableModel`.
 */
import { HttpError, PredictorError } from '../errors.js';
import { ModelCatalog, type CatalogModel } from './model-catalog.js';
import type { OwnedModelClient } from './model-predictor.js';
import type { ModelInput, ModelMetadata, ModelOutput, TensorSignature } from './predictor-contract.js';
import type { TensorModelClient, TensorRun } from '../ports/model-runtime.js';
import { bindInputs, checkTensors, toNested, type TensorData } from './tensor-data.js';

/** One loaded model version, as a backend runs it. */
export interface RunnableModel {
  readonly inputs: readonly TensorSignature[];
  readonly outputs: readonly TensorSignature[];
  /** Extra facts shown in describe() for the latest version (format, skipped outputs, signature key…). */
  readonly info?: Readonly<Record<string, unknown>>;
  /** Runs the model on inputs already checked against `inputs`; one flat tensor per output, in `outputs` order. */
  run(inputs: readonly TensorData[]): Promise<TensorData[]>;
  release(): Promise<void>;
}

/**
 * A `ModelClient` over loaded models. Concurrent `predict` calls are allowed (the runtimes' sessions
 * are re-entrant); after `close()` they throw `PredictorError`.
 */
export class CatalogModelClient implements TensorModelClient {
  private readonly catalog: ModelCatalog<RunnableModel>;
  private closed = false;

  /** `runtime` names the backend in run-failure messages. Throws `PredictorError` on duplicate names. */
  constructor(
    models: readonly CatalogModel<RunnableModel>[],
    /** The runtime and its version, e.g. `onnxruntime-node 1.30.0`. */
    readonly runtime: string,
  ) {
    this.catalog = new ModelCatalog(models);
  }

  async predict(input: ModelInput, modelName?: string, version?: string | number): Promise<ModelOutput> {
    if (this.closed) throw new PredictorError('the model client is closed');
    const sel = this.catalog.select(modelName, version);
    const outputs = await this.runChecked(sel.name, sel.version, sel.model, bindInputs(input, sel.model.inputs));
    const out: ModelOutput = {};
    for (const t of outputs) out[t.name] = toNested(t.data, t.shape, t.dtype);
    return out;
  }

  async runTensors(inputs: readonly TensorData[], modelName?: string, version?: string | number): Promise<TensorRun> {
    if (this.closed) throw new PredictorError('the model client is closed');
    const sel = this.catalog.select(modelName, version);
    const outputs = await this.runChecked(sel.name, sel.version, sel.model, checkTensors(inputs, sel.model.inputs));
    return { model: sel.name, version: sel.version, outputs };
  }

  private async runChecked(name: string, version: string, model: RunnableModel, tensors: readonly TensorData[]): Promise<TensorData[]> {
    try {
      return await model.run(tensors);
    } catch (err) {
      if (err instanceof HttpError || err instanceof PredictorError) throw err;
      throw new PredictorError(`model "${name}" version ${version}: ${this.runtime} run failed: ${(err as Error)?.message ?? String(err)}`, {
        code: 'ENG_PREDICTOR_RUN',
        cause: err,
      });
    }
  }

  metadata(modelName?: string, version?: string | number): ModelMetadata {
    const sel = this.catalog.select(modelName, version);
    const entry = this.catalog.models().find((m) => m.name === sel.name)!;
    return { name: sel.name, versions: entry.versions.map((v) => v.version), inputs: sel.model.inputs, outputs: sel.model.outputs };
  }

  allMetadata(): ModelMetadata[] {
    return this.catalog.models().map((m) => {
      const latest = m.versions[m.versions.length - 1].model;
      return { name: m.name, versions: m.versions.map((v) => v.version), inputs: latest.inputs, outputs: latest.outputs, ...latest.info };
    });
  }

  /** Releases every model version; idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled(this.catalog.models().flatMap((m) => m.versions.map((v) => v.model.release())));
  }
}
