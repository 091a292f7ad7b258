import type { Logger } from 'pino';
import type { ApiSpec } from '../config/api-spec.js';
import type { PredictArgs } from '../predictor/predictor-contract.js';

/** One prediction as the replica hands it to a backend. */
export interface BackendPredictArgs extends PredictArgs {
  readonly requestId: string;
  /** `?debug=true`: log the value after each stage (pre_inference, inference, post_inference) under the request id; the replica logs the raw sample itself. */
  readonly debug: boolean;
  /** Child logger bound to the request id. */
  readonly log: Logger;
}

/**
 * A loaded predictor instance (one per worker). Created by the backend of `predictor.type`; may run in
 * the replica's main thread or in a worker thread, so everything crossing `predict` must be
 * structured-clonable (plain data, typed arrays, `PredictorResponse`).
 */
export interface LoadedPredictor {
  predict(args: BackendPredictArgs): Promise<unknown>;
  /** Runs after the response is sent (the user's `postPredict`, if any). */
  postPredict?(args: BackendPredictArgs & { readonly response: unknown }): Promise<void>;
  /** Shown in GET `/` (`model_metadata`) and logged at start: backend in use, models, signatures. */
  describe(): Record<string, unknown>;
  close(): Promise<void>;
}

/**
 * Supplies predictors for one `predictor.type` (SG 3). Registered by `plugins/predictor-<kind>/`'s module;
 * `kind` matches `predictor.type` (aliases e.g. `typescript`).
 * `load` throws `PredictorError` (or `ConfigError`) when the predictor file, class or model is unusable.
 */
export const PredictorBackendContribution = Symbol('PredictorBackendContribution');
export interface PredictorBackendContribution {
  readonly kind: string;
  readonly aliases?: readonly string[];
  load(spec: ApiSpec, log: Logger): Promise<LoadedPredictor>;
}
