import { readdir, stat } from 'node:fs/promises';
import { inject, injectable, optional } from 'inversify';
import type { ApiSpec } from '../../core/config/api-spec.js';
import { importUserModule } from '../../core/predictor/import-user-module.js';
import { PredictorError } from '../../core/errors.js';
import type { Logger } from '../../core/ports/logger.js';
import type { LoadedPredictor, PredictorBackendContribution, PredictorHost } from '../../core/ports/predictor-backend.js';
import { tensorBatchingOf, type TensorBatching } from '../../core/predictor/tensor-batcher.js';
import type { ModelRuntimeContribution } from '../../core/ports/model-runtime.js';
import { ModelProvider } from '../../core/ports/model-provider.js';
import { UserModuleImporter } from '../../core/ports/user-module-importer.js';
import { openModelClient, type ManagedModelClient } from '../../core/predictor/managed-model-client.js';
import { createModelPredictor } from '../../core/predictor/model-predictor.js';
import { ONNX_FORMAT } from '../../core/predictor/model-tree.js';
import { loadOnnxVersion } from './onnx-model-client.js';

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
  // No telemetry database under ~/.cache and no /tmp/mat-debug-<pid>.log (replica-entry.mjs sets it for
  // every thread of a replica process; this covers `myelin serve` and embedding).
  process.env.ORT_DISABLE_TELEMETRY ??= '1';
  ortModule ??= import('onnxruntime-node');
  return ortModule;
}

/** The `.onnx` file of a version's local copy: the path itself, or the one `*.onnx` in its folder (the layout was checked on listing). */
async function onnxFileIn(path: string, where: string): Promise<string> {
  if (!(await stat(path)).isDirectory()) return path;
  const files = (await readdir(path)).filter((n) => n.endsWith('.onnx')).sort();
  if (files.length !== 1) throw new PredictorError(`${where}: expected one .onnx file in ${path}, found ${files.length}`, { code: 'ENG_PREDICTOR_MODEL_LAYOUT' });
  return `${path}/${files[0]}`;
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

  constructor(
    @inject(UserModuleImporter) private readonly importer: UserModuleImporter,
    @inject(ModelProvider) @optional() private readonly provider?: ModelProvider,
  ) {}

  async load(spec: ApiSpec, log: Logger, host?: PredictorHost): Promise<LoadedPredictor> {
    const client = await this.loadClient(spec, log, tensorBatchingOf(spec.predictor.serverSideBatching, host, log));
    return createModelPredictor({ spec, client, type: 'onnx', runtime: client.runtime, importFile: (path) => importUserModule(this.importer, path, 'an onnx predictor or request handler'), log });
  }

  /** The API's models in onnxruntime-node sessions (also the `onnx_client` the Python bridge proxies to). */
  async loadClient(spec: ApiSpec, log: Logger, batching?: TensorBatching): Promise<ManagedModelClient> {
    const backendLog = log.child({ component: 'predictor-onnx/backend' });
    if (!this.provider) throw new PredictorError('no model store is configured in this process (ModelProvider is not bound)', { code: 'ENG_PREDICTOR_LOAD' });
    const ort = await loadOrt();
    const runtime = `onnxruntime-node ${ort.env.versions.node ?? ort.env.versions.common}`;
    const intraOpThreads = onnxIntraOpThreads(spec);
    backendLog.info({ runtime, intraOpThreads }, 'loading onnx models');
    return openModelClient({
      spec,
      provider: this.provider,
      format: ONNX_FORMAT,
      runtime,
      log: backendLog,
      loadVersion: async (path, where) => loadOnnxVersion(ort, await onnxFileIn(path, where), { intraOpThreads }, where, backendLog, batching),
    });
  }
}
