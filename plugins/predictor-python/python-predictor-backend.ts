import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inject, injectable, optional } from 'inversify';
import type { ApiSpec } from '../../core/config/api-spec.js';
import { ModelRuntimeRegistry } from '../../core/contribution/model-runtime-registry.js';
import { PredictorError } from '../../core/errors.js';
import type { Logger } from '../../core/ports/logger.js';
import { ModelProvider } from '../../core/ports/model-provider.js';
import type { TensorModelClient } from '../../core/ports/model-runtime.js';
import type { LoadedPredictor, PredictorBackendContribution, PredictorHost } from '../../core/ports/predictor-backend.js';
import { ModelDirectory } from '../../core/predictor/model-directory.js';
import { withProtocolV2 } from '../../core/predictor/protocol-v2.js';
import { predictorRunsInPython, pythonInterpreter } from '../../core/predictor/python-predictor.js';
import { BRIDGE_PROTOCOL } from './bridge-protocol.js';
import { PythonWorkerPool } from './python-worker-pool.js';

/** What the bridge runs: a predictor class of one of Cortex's three types, or a legacy request handler. */
type BridgeKind = 'python' | 'onnx' | 'tensorflow' | 'handler';

function loadError(message: string, cause?: unknown): PredictorError {
  return new PredictorError(message, { code: 'ENG_PREDICTOR_LOAD', cause });
}

/**
 * `KEY=VALUE` lines of a project's `.env` (Cortex applied it to the API's environment): `#` comments
 * and blank lines skipped, `export ` prefixes and matching quotes removed. Absent file: `{}`.
 */
export function readDotEnv(file: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return {};
  }
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim().replace(/^export\s+/, '');
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    let value = line.slice(eq + 1).trim();
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.at(-1) === value[0]) value = value.slice(1, -1);
    out[line.slice(0, eq).trim()] = value;
  }
  return out;
}

/**
 * The Python bridge (`predictor.type: python`, and `.py` files of the onnx and tensorflow types,
 * including the legacy `request_handler: handler.py`): Cortex predictors run unchanged in
 * `processes_per_replica` Python processes with `threads_per_process` threads each, while the replica
 * keeps HTTP, admission, metrics and the models (onnxruntime-node or TF.js, proxied to Python's
 * `onnx_client` / `tensorflow_client`). The interpreter is `MYELIN_PYTHON` (`predictor.env` or the
 * process), default `python3`. `load` throws `PredictorError` with the Python traceback's last lines
 * when the predictor cannot start.
 */
@injectable()
export class PythonPredictorBackend implements PredictorBackendContribution {
  readonly kind = 'python';
  readonly runsOwnWorkers = true;

  /** `provider` lists and fetches a PythonPredictor's models (`python_client`); needed only when it has models. */
  constructor(
    @inject(ModelRuntimeRegistry) private readonly runtimes: ModelRuntimeRegistry,
    @inject(ModelProvider) @optional() private readonly provider?: ModelProvider,
  ) {}

  claims(spec: ApiSpec): boolean {
    return predictorRunsInPython(spec);
  }

  async load(spec: ApiSpec, log: Logger, host?: PredictorHost): Promise<LoadedPredictor> {
    const p = spec.predictor;
    const kind: BridgeKind = p.type === 'python' ? 'python' : p.path !== undefined ? (p.type as 'onnx' | 'tensorflow') : 'handler';
    const path = kind === 'handler' ? p.requestHandler : p.path;
    if (!path) throw loadError(`API "${spec.name}": predictor.path is required for predictor.type ${p.typeAsWritten}`);
    if (!path.endsWith('.py')) {
      throw loadError(`${path}: the Python bridge runs .py files${path.endsWith('.pickle') ? " (Cortex's pickled predictors are not supported: write the class in a .py file)" : ''}`);
    }
    const bridgeLog = log.child({ component: 'predictor-python/backend' });

    let client: TensorModelClient | undefined;
    let directory: ModelDirectory | undefined;
    if (kind === 'python') {
      if (p.modelPath !== undefined || p.models !== undefined) {
        if (!this.provider) throw loadError('no model store is configured in this process (ModelProvider is not bound)');
        try {
          directory = await ModelDirectory.open({
            predictor: p,
            provider: this.provider,
            ...(p.models?.diskCacheSize !== undefined ? { diskCacheSize: p.models.diskCacheSize } : {}),
            ...(p.models?.diskCacheBytes !== undefined ? { diskCacheBytes: p.models.diskCacheBytes } : {}),
            log: log.child({ component: 'predictor-python/models' }),
          });
        } catch (err) {
          throw loadError(`API "${spec.name}": ${(err as Error).message}`, err);
        }
      }
    } else {
      client = await this.runtimes.get(p.type).loadClient(spec, log);
    }
    const models = client?.allMetadata().map((m) => ({ name: m.name, versions: m.versions, inputs: m.inputs, outputs: m.outputs }));
    if (kind === 'handler' && models?.length !== 1) {
      await client?.close();
      throw loadError(`${path}: a request_handler works with exactly one model (found ${models?.length ?? 0})`);
    }
    const python = pythonInterpreter(spec);
    const init = {
      kind,
      path,
      api: spec.name,
      project_dir: spec.projectDir,
      python_path: p.pythonPath,
      config: p.config,
      threads: p.threadsPerProcess,
      log_level: p.logLevel ?? null,
      monitoring: spec.monitoring ? { model_type: spec.monitoring.modelType, key: spec.monitoring.key ?? null } : null,
      model_format: p.type,
      ...(models ? { models } : {}),
      // python_client: the models stay in the replica's ModelDirectory; Python asks for them.
      ...(directory ? { python_client: { cache_size: p.models?.cacheSize ?? null, cache_bytes: p.models?.cacheBytes ?? null } } : {}),
    };
    // The environment Cortex gave predictors: the project's .env, then predictor.env on top.
    const env: NodeJS.ProcessEnv = { ...process.env, ...readDotEnv(join(spec.projectDir, '.env')), ...p.env, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' };
    bridgeLog.info({ python, kind, path, processes: p.processesPerReplica, threads: p.threadsPerProcess }, 'starting python workers');
    try {
      const pool = await PythonWorkerPool.start({
        processes: p.processesPerReplica,
        threadsPerProcess: p.threadsPerProcess,
        python,
        init,
        cwd: spec.projectDir,
        env,
        log,
        client,
        ...(directory ? { models: directory } : {}),
        ...(kind === 'python' && p.serverSideBatching ? { batching: true } : {}),
        host,
        describe: {
          type: p.typeAsWritten,
          backend: `python bridge (protocol ${BRIDGE_PROTOCOL})`,
          python,
          predictor: kind === 'handler' ? { requestHandler: path } : { path, class: { python: 'PythonPredictor', onnx: 'ONNXPredictor', tensorflow: 'TensorFlowPredictor' }[kind] },
          processes: p.processesPerReplica,
          threadsPerProcess: p.threadsPerProcess,
          ...(client ? { runtime: (client as { runtime?: string }).runtime, models: client.allMetadata() } : {}),
        },
      });
      // Open Inference Protocol v2 calls run on the replica's model client, never in Python (docs/protocol-v2.md).
      return client ? withProtocolV2(pool, client, p.type as 'onnx' | 'tensorflow') : pool;
    } catch (err) {
      await client?.close();
      directory?.close();
      throw err;
    }
  }
}
