import { injectable } from 'inversify';
import type { ApiSpec } from '../../core/config/api-spec.js';
import { importUserModule } from '../../core/predictor/import-user-module.js';
import { PredictorError } from '../../core/errors.js';
import type { Logger } from '../../core/ports/logger.js';
import type { LoadedPredictor, PredictorBackendContribution } from '../../core/ports/predictor-backend.js';
import type { ModelRuntimeContribution } from '../../core/ports/model-runtime.js';
import type { CatalogModelClient } from '../../core/predictor/catalog-model-client.js';
import { locateModels } from '../../core/predictor/model-layout.js';
import { createModelPredictor } from '../../core/predictor/model-predictor.js';
import { nodeModelFs } from '../../core/predictor/node-model-fs.js';
import { loadOnnxClient } from './onnx-model-client.js';

/** Environment variable (process or `predictor.env`) that sets onnxruntime's intra-op threads per run; default 1. */
export const ONNX_THREADS_ENV = 'MYELIN_ONNX_INTRA_OP_THREADS';

/**
 * onnxruntime threads per `run`. One is the default: measured on the tiny models, more threads only add
 * synchronization (benchmarks/serving numbers in docs/predictors.md), and a replica gets its
 * parallelism from processes_per_replica × threads_per_process instead. Raise it for large models on
 * a replica that runs one request at a time.
 */
export function onnxIntraOpThreads(spec: ApiSpec, env: NodeJS.ProcessEnv = process.env): number {
  const raw = spec.predictor.env[ONNX_THREADS_ENV] ?? env[ONNX_THREADS_ENV];
  if (raw === undefined || raw === '') return 1;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new PredictorError(`${ONNX_THREADS_ENV} must be a non-negative integer (0 = onnxruntime's default), got "${raw}"`, { code: 'ENG_PREDICTOR_LOAD' });
  return n;
}

let ortModule: Promise<typeof import('onnxruntime-node')> | undefined;
/** onnxruntime-node, imported on first use (per thread) so that merely registering the plugin costs nothing. */
function loadOrt(): Promise<typeof import('onnxruntime-node')> {
  ortModule ??= import('onnxruntime-node');
  return ortModule;
}

function importUserFile(path: string): Promise<Record<string, unknown>> {
  return importUserModule(path, 'an onnx predictor or request handler');
}

/**
 * `predictor.type: onnx` (onnxruntime-node): loads every model and version of the API into
 * single-threaded sessions, then serves them through the user's `ONNXPredictor` (`predictor.path`),
 * the legacy `request_handler`, or directly (JSON in, outputs out). Safe to load in the main thread
 * and in worker threads alike (each load has its own sessions). `load` throws `PredictorError`.
 */
@injectable()
export class OnnxPredictorBackend implements PredictorBackendContribution, ModelRuntimeContribution {
  readonly kind = 'onnx';

  async load(spec: ApiSpec, log: Logger): Promise<LoadedPredictor> {
    const client = await this.loadClient(spec, log);
    return createModelPredictor({ spec, client, type: 'onnx', runtime: client.runtime, importFile: importUserFile, log });
  }

  /** The API's models in onnxruntime-node sessions (also the `onnx_client` the Python bridge proxies to). */
  async loadClient(spec: ApiSpec, log: Logger): Promise<CatalogModelClient> {
    const backendLog = log.child({ component: 'predictor-onnx/backend' });
    const locations = await locateModels(spec.predictor, nodeModelFs, { backend: 'onnx', isModelFile: (name) => name.endsWith('.onnx') });
    const ort = await loadOrt();
    const runtime = `onnxruntime-node ${ort.env.versions.node ?? ort.env.versions.common}`;
    const intraOpThreads = onnxIntraOpThreads(spec);
    backendLog.info({ runtime, intraOpThreads, models: locations.map((l) => ({ name: l.name, versions: l.versions.map((v) => v.version) })) }, 'loading onnx models');
    return loadOnnxClient(ort, locations, nodeModelFs, { intraOpThreads }, runtime, backendLog);
  }
}
