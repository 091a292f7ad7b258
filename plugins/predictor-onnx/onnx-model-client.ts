import { basename } from 'node:path';
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { PredictorError } from '../../core/errors.js';
import type { Logger } from '../../core/ports/logger.js';
import { ModelCatalog, type CatalogModel } from '../../core/predictor/model-catalog.js';
import type { ModelFs, ModelLocation } from '../../core/predictor/model-layout.js';
import type { OwnedModelClient } from '../../core/predictor/model-predictor.js';
import type { ModelInput, ModelMetadata, ModelOutput, TensorSignature } from '../../core/predictor/predictor-contract.js';
import { bindInputs, toNested } from '../../core/predictor/tensor-data.js';

type Ort = typeof import('onnxruntime-node');

/** One loaded `.onnx` file. */
interface OnnxModel {
  readonly file: string;
  readonly session: InferenceSession;
  readonly inputs: readonly TensorSignature[];
  readonly outputs: readonly TensorSignature[];
  /** Outputs fetched on each run: the tensor ones (onnxruntime-node cannot return sequences or maps). */
  readonly fetches: readonly string[];
  /** Non-tensor outputs, left out of every run (e.g. skl2onnx's ZipMap `output_probability`). */
  readonly skippedOutputs: readonly string[];
}

export interface OnnxSessionSettings {
  /** Threads one `run` may use (onnxruntime `intraOpNumThreads`); 1 is fastest for small models. */
  readonly intraOpThreads: number;
}

function signatureOf(m: InferenceSession.ValueMetadata): TensorSignature | undefined {
  if (!m.isTensor) return undefined;
  return { name: m.name, dtype: m.type, shape: [...m.shape] };
}

/** The one `.onnx` file of a model version (the path itself when it is a file). */
async function onnxFileOf(fs: ModelFs, modelName: string, version: string, path: string): Promise<string> {
  if ((await fs.kind(path)) === 'file') return path;
  const files = (await fs.list(path)).filter((e) => e.kind === 'file' && e.name.endsWith('.onnx')).map((e) => e.name).sort();
  if (files.length === 1) return `${path}/${files[0]}`;
  const layout = `expected either\n  ${path}/<model>.onnx\nor versions\n  ${path}/1/<model>.onnx\n  ${path}/2/<model>.onnx`;
  throw new PredictorError(
    files.length === 0
      ? `model "${modelName}" version ${version}: no .onnx file in ${path}; ${layout}`
      : `model "${modelName}" version ${version}: ${path} holds ${files.length} .onnx files (${files.join(', ')}); put one model per folder; ${layout}`,
    { code: 'ENG_PREDICTOR_MODEL_LAYOUT' },
  );
}

/**
 * The `onnxClient` of ONNX predictors: every model and version of an API, each in its own
 * onnxruntime `InferenceSession`. `predict` binds the input to the model's input signature (shape,
 * dtype, dynamic dims; `HttpError(400)` when they do not match) and returns the tensor outputs as
 * plain nested arrays keyed by output name. Sessions run concurrently; nothing here is shared across
 * threads (a worker thread loads its own client).
 */
export class OnnxModelClient implements OwnedModelClient {
  private closed = false;

  private constructor(
    private readonly ort: Ort,
    private readonly catalog: ModelCatalog<OnnxModel>,
  ) {}

  /**
   * Loads every version of every model. Throws `PredictorError` naming the model, version and file
   * when a folder holds no (or several) `.onnx` files or onnxruntime cannot load one; sessions already
   * created are released first.
   */
  static async load(ort: Ort, locations: readonly ModelLocation[], fs: ModelFs, settings: OnnxSessionSettings, log: Logger): Promise<OnnxModelClient> {
    const options: InferenceSession.SessionOptions = {
      intraOpNumThreads: settings.intraOpThreads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    };
    const created: InferenceSession[] = [];
    try {
      const models: CatalogModel<OnnxModel>[] = [];
      for (const loc of locations) {
        const versions = [];
        for (const v of loc.versions) {
          const file = await onnxFileOf(fs, loc.name, v.version, v.path);
          let session: InferenceSession;
          try {
            session = await ort.InferenceSession.create(file, options);
          } catch (err) {
            throw new PredictorError(`model "${loc.name}" version ${v.version}: onnxruntime cannot load ${file}: ${(err as Error).message}`, {
              code: 'ENG_PREDICTOR_MODEL_INVALID',
              cause: err,
            });
          }
          created.push(session);
          const inputs: TensorSignature[] = [];
          for (const m of session.inputMetadata) {
            const s = signatureOf(m);
            if (!s) throw new PredictorError(`model "${loc.name}" version ${v.version}: input "${m.name}" is not a tensor; onnxruntime-node feeds tensors only`, { code: 'ENG_PREDICTOR_MODEL_INVALID' });
            inputs.push(s);
          }
          const outputs = session.outputMetadata.map(signatureOf).filter((s): s is TensorSignature => s !== undefined);
          const skippedOutputs = session.outputMetadata.filter((m) => !m.isTensor).map((m) => m.name);
          if (outputs.length === 0) throw new PredictorError(`model "${loc.name}" version ${v.version}: no tensor output`, { code: 'ENG_PREDICTOR_MODEL_INVALID' });
          if (skippedOutputs.length) log.warn({ model: loc.name, version: v.version, skippedOutputs }, 'non-tensor outputs are not returned');
          versions.push({ version: v.version, model: { file, session, inputs, outputs, fetches: outputs.map((o) => o.name), skippedOutputs } });
          log.info({ model: loc.name, version: v.version, file: basename(file), inputs, outputs: outputs.map((o) => o.name) }, 'onnx model loaded');
        }
        models.push({ name: loc.name, versions });
      }
      return new OnnxModelClient(ort, new ModelCatalog(models));
    } catch (err) {
      await Promise.allSettled(created.map((s) => s.release()));
      throw err;
    }
  }

  async predict(input: ModelInput, modelName?: string, version?: string | number): Promise<ModelOutput> {
    if (this.closed) throw new PredictorError('the onnx client is closed');
    const sel = this.catalog.select(modelName, version);
    const model = sel.model;
    const feeds: Record<string, Tensor> = {};
    for (const t of bindInputs(input, model.inputs)) {
      feeds[t.name] = new this.ort.Tensor(t.dtype as Tensor.Type, t.data as Tensor.DataType, t.shape);
    }
    let results: InferenceSession.ReturnType;
    try {
      results = await model.session.run(feeds, model.fetches as string[]);
    } catch (err) {
      throw new PredictorError(`model "${sel.name}" version ${sel.version}: onnxruntime run failed: ${(err as Error).message}`, {
        code: 'ENG_PREDICTOR_RUN',
        cause: err,
      });
    }
    const out: ModelOutput = {};
    for (const name of model.fetches) {
      const t = results[name] as Tensor;
      out[name] = toNested(t.data as ArrayLike<unknown>, t.dims, t.type);
      t.dispose();
    }
    return out;
  }

  metadata(modelName?: string, version?: string | number): ModelMetadata {
    const sel = this.catalog.select(modelName, version);
    const entry = this.catalog.models().find((m) => m.name === sel.name)!;
    return { name: sel.name, versions: entry.versions.map((v) => v.version), inputs: sel.model.inputs, outputs: sel.model.outputs };
  }

  allMetadata(): ModelMetadata[] {
    return this.catalog.models().map((m) => {
      const latest = m.versions[m.versions.length - 1].model;
      const md: ModelMetadata & { skippedOutputs?: readonly string[] } = {
        name: m.name,
        versions: m.versions.map((v) => v.version),
        inputs: latest.inputs,
        outputs: latest.outputs,
      };
      return latest.skippedOutputs.length ? { ...md, skippedOutputs: latest.skippedOutputs } : md;
    });
  }

  /** Releases every session; later `predict` calls throw `PredictorError`. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const sessions = this.catalog.models().flatMap((m) => m.versions.map((v) => v.model.session));
    await Promise.allSettled(sessions.map((s) => s.release()));
  }
}
