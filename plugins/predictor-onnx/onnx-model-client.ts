import { basename } from 'node:path';
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { PredictorError } from '../../core/errors.js';
import type { Logger } from '../../core/ports/logger.js';
import type { RunnableModel } from '../../core/predictor/runnable-model.js';
import type { TensorSignature } from '../../core/predictor/predictor-contract.js';
import { withTensorBatching, type TensorBatching } from '../../core/predictor/tensor-batcher.js';
import type { TensorData, TensorDtype, TensorValues } from '../../core/predictor/tensor-data.js';

type Ort = typeof import('onnxruntime-node');

export interface OnnxSessionSettings {
  /** Threads one `run` may use (onnxruntime `intraOpNumThreads`); 1 is fastest for small models. */
  readonly intraOpThreads: number;
}

function signatureOf(m: InferenceSession.ValueMetadata): TensorSignature | undefined {
  if (!m.isTensor) return undefined;
  return { name: m.name, dtype: m.type, shape: [...m.shape] };
}

/**
 * One `.onnx` file in its own `InferenceSession`. Only tensor outputs are fetched: onnxruntime-node
 * cannot return sequences or maps (e.g. skl2onnx's ZipMap `output_probability`; convert with
 * `zipmap=False`), so those are listed as `skippedOutputs` in describe().
 */
class OnnxModel implements RunnableModel {
  readonly info: Readonly<Record<string, unknown>>;
  private readonly fetches: string[];

  constructor(
    private readonly ort: Ort,
    private readonly session: InferenceSession,
    readonly inputs: readonly TensorSignature[],
    readonly outputs: readonly TensorSignature[],
    skippedOutputs: readonly string[],
  ) {
    this.fetches = outputs.map((o) => o.name);
    this.info = skippedOutputs.length ? { skippedOutputs } : {};
  }

  async run(inputs: readonly TensorData[]): Promise<TensorData[]> {
    const feeds: Record<string, Tensor> = {};
    for (const t of inputs) feeds[t.name] = new this.ort.Tensor(t.dtype as Tensor.Type, t.data as Tensor.DataType, t.shape);
    const results = await this.session.run(feeds, this.fetches);
    return this.fetches.map((name) => {
      const t = results[name] as Tensor;
      return { name, dtype: t.type as TensorDtype, shape: t.dims, data: t.data as TensorValues };
    });
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

/** onnxruntime session options of every model version. */
export function onnxSessionOptions(settings: OnnxSessionSettings): InferenceSession.SessionOptions {
  return {
    intraOpNumThreads: settings.intraOpThreads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  };
}

/**
 * One model version (`file`, a `.onnx` file) in its own onnxruntime session. `where` names it in
 * messages (`model "iris" version 2`). Throws `PredictorError` when onnxruntime cannot load it, an
 * input is not a tensor, or it has no tensor output. With `batching` (server_side_batching), the model
 * batches concurrent runs (`withTensorBatching`); one without a usable batch dimension throws
 * `PredictorError` `ENG_PREDICTOR_LOAD` naming the input and its shape.
 */
export async function loadOnnxVersion(ort: Ort, file: string, settings: OnnxSessionSettings, where: string, log: Logger, batching?: TensorBatching): Promise<RunnableModel> {
  let session: InferenceSession;
  try {
    session = await ort.InferenceSession.create(file, onnxSessionOptions(settings));
  } catch (err) {
    throw new PredictorError(`${where}: onnxruntime cannot load ${file}: ${(err as Error).message}`, { code: 'ENG_PREDICTOR_MODEL_INVALID', cause: err });
  }
  const inputs: TensorSignature[] = [];
  for (const m of session.inputMetadata) {
    const s = signatureOf(m);
    if (!s) {
      await session.release();
      throw new PredictorError(`${where}: input "${m.name}" is not a tensor; onnxruntime-node feeds tensors only`, { code: 'ENG_PREDICTOR_MODEL_INVALID' });
    }
    inputs.push(s);
  }
  const outputs = session.outputMetadata.map(signatureOf).filter((s): s is TensorSignature => s !== undefined);
  const skipped = session.outputMetadata.filter((m) => !m.isTensor).map((m) => m.name);
  if (outputs.length === 0) {
    await session.release();
    throw new PredictorError(`${where}: no tensor output`, { code: 'ENG_PREDICTOR_MODEL_INVALID' });
  }
  if (skipped.length) log.warn({ where, skippedOutputs: skipped }, 'non-tensor outputs are not returned');
  log.info({ where, file: basename(file), inputs, outputs: outputs.map((o) => o.name) }, 'onnx model loaded');
  const model = new OnnxModel(ort, session, inputs, outputs, skipped);
  try {
    return withTensorBatching(model, batching, where);
  } catch (err) {
    await session.release();
    throw err;
  }
}
