import type { ApiSpec } from '../config/api-spec.js';
import type { Logger } from './logger.js';
import type { OwnedModelClient } from '../predictor/model-predictor.js';
import type { ModelMetadata } from '../predictor/predictor-contract.js';
import type { TensorData } from '../predictor/tensor-data.js';

/** What one raw model run produced: the model and version picked, and the outputs as flat tensors. */
export interface TensorRun {
  readonly model: string;
  readonly version: string;
  readonly outputs: readonly TensorData[];
}

/**
 * A model client that also runs flat tensors as they are (no JSON conversion): what the Python bridge
 * proxies `onnx_client.predict` / `tensorflow_client.predict` to once Python has shaped the input.
 */
export interface TensorModelClient extends OwnedModelClient {
  /**
   * Runs `inputs` (already shaped and typed by the caller) on a model version. Throws `HttpError(400)`
   * naming the input when a name, dtype or shape does not match the signature, `PredictorError` when
   * the model or version does not exist or the runtime fails.
   */
  runTensors(inputs: readonly TensorData[], modelName?: string, version?: string | number): Promise<TensorRun>;
  /** A version's signatures, loading it first when it is not in memory (model caching). Throws `HttpError` 400/404. */
  describeModel?(modelName?: string, version?: string | number): Promise<ModelMetadata>;
}

/**
 * Loads an API's models into a runtime that lives in the replica (onnxruntime-node, TF.js), for
 * predictors whose code runs elsewhere (the Python bridge). `kind` is the model format: `onnx` or
 * `tensorflow`. `loadClient` throws `PredictorError` on a bad layout or an unloadable model.
 */
export const ModelRuntimeContribution = Symbol('ModelRuntimeContribution');
export interface ModelRuntimeContribution {
  readonly kind: string;
  readonly aliases?: readonly string[];
  loadClient(spec: ApiSpec, log: Logger): Promise<TensorModelClient>;
}
