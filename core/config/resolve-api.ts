/**
 * Turns one API (an `ApiView`, already checked against its schema) into a resolved `ApiSpec`: applies
 * every default, parses quantities into numbers with units in their names, resolves paths against the
 * configuration file's folder, and runs the cross-field checks of Cortex (reference/cortex.md §10)
 * plus myelin's own. Problems go to `report`; the result is only meaningful when no error was reported.
 */
import { fileURLToPath } from 'node:url';
import { isAbsolute, normalize, relative, resolve, sep } from 'node:path';
import type {
  ApiSpec,
  AutoscalingSpec,
  ComputeSpec,
  IntOrPercent,
  ModelRef,
  ModelsSpec,
  MonitoringSpec,
  NetworkingSpec,
  PredictorSpec,
  PredictorType,
  ScalingPolicyKind,
  ServerSideBatchingSpec,
  UpdateStrategySpec,
} from './api-spec.js';
import { DEFAULT_GATEWAY_PORT } from './api-spec.js';
import type { ApiView } from './api-view.js';
import type { FileProbe } from '../ports/project-file-system.js';
import {
  describeValue,
  formatCpu,
  formatDuration,
  formatMemory,
  parseCpu,
  parseDuration,
  parseIntOrPercent,
  parseMemory,
  type ParseResult,
} from './quantities.js';
import type { DataPath } from './yaml-source.js';

/** Where the replicas will run; decides which fields are reported as having no effect. */
export type DeployTarget = 'local' | 'kubernetes';

export interface ResolveContext {
  /** Absolute path of the configuration file. */
  readonly configFile: string;
  /** Absolute folder of the configuration file; relative paths resolve against it. */
  readonly configDir: string;
  /** Absolute project folder; no path may leave it. */
  readonly projectDir: string;
  /** Checks that local paths exist; without one, only their syntax and containment are checked. */
  readonly probe?: FileProbe;
  readonly target: DeployTarget;
}

/** Receives the problems of one API, with paths in RealtimeAPI-model terms (the caller maps them to the source). */
export interface ProblemReport {
  error(path: DataPath, message: string): void;
  warning(path: DataPath, message: string): void;
}

/** Defaults that are not Cortex's (myelin additions) or that the code needs by name. */
export const DEFAULTS = {
  processesPerReplica: 1,
  threadsPerProcess: 1,
  timeoutMs: 60_000,
  localPort: DEFAULT_GATEWAY_PORT,
  maxBodyBytes: 16 * 2 ** 20,
  cpuMillis: 200,
  minCpuMillis: 20,
  minMemBytes: 20 * 2 ** 20,
  minReplicas: 1,
  maxReplicas: 100,
  maxReplicaConcurrency: 1024,
  windowMs: 60_000,
  downscaleStabilizationPeriodMs: 300_000,
  upscaleStabilizationPeriodMs: 60_000,
  maxDownscaleFactor: 0.75,
  maxUpscaleFactor: 1.5,
  downscaleTolerance: 0.05,
  upscaleTolerance: 0.05,
  tickMs: { cortex: 10_000, cpu: 10_000, burst: 2_000 } as Readonly<Record<ScalingPolicyKind, number>>,
  minTickMs: 1_000,
  panicWindowFraction: 0.1,
  panicThreshold: 2,
  targetCpuUtilization: 80,
  maxHeldRequests: 1000,
  holdTimeoutMs: 60_000,
  maxSurge: { kind: 'percent', value: 25 } as IntOrPercent,
  maxUnavailable: { kind: 'percent', value: 25 } as IntOrPercent,
} as const;

/** Model names Cortex reserved (the name of a single unnamed model). */
const RESERVED_MODEL_NAME = '_cortex_default';
/** Environment variable prefixes the engine uses itself. */
export const RESERVED_ENV_PREFIXES = ['CORTEX_', 'MYELIN_'] as const;

const JS_EXTENSIONS = ['.ts', '.mts', '.cts', '.js', '.mjs', '.cjs'];
const PREDICTOR_EXTENSIONS: Readonly<Record<PredictorType, readonly string[]>> = {
  python: ['.py', '.pickle'],
  javascript: JS_EXTENSIONS,
  onnx: ['.py', ...JS_EXTENSIONS],
  tensorflow: ['.py', ...JS_EXTENSIONS],
};
const REQUEST_HANDLER_EXTENSIONS = ['.py', ...JS_EXTENSIONS];

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * Resolves one API. `index` is its position in the file (for names when `name` is unusable).
 * Returns the spec (meaningful only when `report` got no error).
 */
export function resolveApi(view: ApiView, index: number, ctx: ResolveContext, report: ProblemReport): ApiSpec {
  const r = new Resolver(view, ctx, report);
  return r.resolve(index);
}

class Resolver {
  constructor(
    private readonly v: ApiView,
    private readonly ctx: ResolveContext,
    private readonly report: ProblemReport,
  ) {}

  resolve(index: number): ApiSpec {
    const rawName = this.v.get(['name']);
    const name = typeof rawName === 'string' ? rawName : `api-${index}`;
    const typeAsWritten = this.str(['predictor', 'type']) ?? 'python';
    const type: PredictorType = typeAsWritten === 'typescript' ? 'javascript' : (typeAsWritten as PredictorType);
    const predictor = this.predictor(type, typeAsWritten);
    const compute = this.compute(type, predictor.processesPerReplica);
    const autoscaling = this.autoscaling(predictor, compute);
    return {
      name,
      kind: 'RealtimeAPI',
      dialect: this.v.dialect,
      predictor,
      networking: this.networking(name),
      compute,
      ...this.monitoring(),
      autoscaling,
      updateStrategy: this.updateStrategy(),
      configFile: this.ctx.configFile,
      projectDir: this.ctx.projectDir,
    };
  }

  // ---------------------------------------------------------------- predictor

  private predictor(type: PredictorType, typeAsWritten: string): PredictorSpec {
    const p = ['predictor'];
    const processes = this.int([...p, 'processes_per_replica'], DEFAULTS.processesPerReplica);
    const threads = this.int([...p, 'threads_per_process'], DEFAULTS.threadsPerProcess);

    const pathWritten = this.str([...p, 'path']);
    // With an unknown type (already reported) the file's extension cannot be judged.
    const typeKnown = this.v.get([...p, 'type']) !== undefined;
    const path =
      pathWritten === undefined
        ? undefined
        : this.localPath([...p, 'path'], pathWritten, 'file', 'predictor file', typeKnown ? PREDICTOR_EXTENSIONS[type] : undefined, `for the ${typeAsWritten} predictor type`);

    const modelPathWritten = this.str([...p, 'model_path']);
    const modelPath = modelPathWritten === undefined ? undefined : this.modelLocation([...p, 'model_path'], modelPathWritten);
    const models = this.models(type, processes);
    this.checkOneModelSource(type, typeAsWritten, models !== undefined);

    const serverSideBatching = this.batching(processes, threads);

    const pythonPathWritten = this.str([...p, 'python_path']);
    const pythonPath =
      pythonPathWritten === undefined ? this.ctx.configDir : this.localPath([...p, 'python_path'], pythonPathWritten, 'directory', 'python_path folder') ?? this.ctx.configDir;
    const usesPython = type === 'python' || (pathWritten ?? '').endsWith('.py') || (this.str([...p, 'request_handler']) ?? '').endsWith('.py');
    if (pythonPathWritten !== undefined && !usesPython) {
      this.report.warning([...p, 'python_path'], `has no effect: the ${typeAsWritten} predictor runs no Python code (only python predictors and .py predictor files use it)`);
    }

    const image = this.str([...p, 'image']);
    if (this.v.written([...p, 'image']) && this.v.usable([...p, 'image'])) {
      this.report.warning([...p, 'image'], 'has no effect: myelin runs every predictor in its own replica runtime, not in a Cortex image');
    }
    const tensorflowServingImage = this.str([...p, 'tensorflow_serving_image']);
    if (this.v.written([...p, 'tensorflow_serving_image']) && this.v.usable([...p, 'tensorflow_serving_image'])) {
      this.report.warning([...p, 'tensorflow_serving_image'], 'has no effect: myelin serves TensorFlow models itself, without TensorFlow Serving');
    }

    const requestHandlerWritten = this.str([...p, 'request_handler']);
    const requestHandler =
      requestHandlerWritten === undefined
        ? undefined
        : this.localPath([...p, 'request_handler'], requestHandlerWritten, 'file', 'request handler file', REQUEST_HANDLER_EXTENSIONS, '');

    const signatureKey = this.str([...p, 'signature_key']);
    if (signatureKey !== undefined && type === 'onnx' && this.v.dialect === 'legacy') {
      this.report.warning([...p, 'signature_key'], 'has no effect for onnx models (signature defs are a TensorFlow concept)');
    }

    if (this.v.written([...p, 'shm_size']) && this.v.usable([...p, 'shm_size'])) {
      this.report.warning([...p, 'shm_size'], 'has no effect: myelin replicas are not containers with a /dev/shm to size');
    }
    const logLevel = this.str([...p, 'log_level']) as PredictorSpec['logLevel'];

    const timeoutMs = this.duration([...p, 'timeout'], DEFAULTS.timeoutMs);
    if (this.v.get([...p, 'timeout']) !== undefined && timeoutMs <= 0) this.report.error([...p, 'timeout'], `must be greater than 0 (got ${describeValue(this.v.get([...p, 'timeout']))})`);

    return {
      type,
      typeAsWritten,
      ...(path !== undefined ? { path } : {}),
      ...(modelPath !== undefined ? { modelPath } : {}),
      ...(models !== undefined ? { models } : {}),
      ...(signatureKey !== undefined ? { signatureKey } : {}),
      ...(serverSideBatching !== undefined ? { serverSideBatching } : {}),
      processesPerReplica: processes,
      threadsPerProcess: threads,
      config: this.config(),
      pythonPath,
      ...(image !== undefined ? { image } : {}),
      ...(tensorflowServingImage !== undefined ? { tensorflowServingImage } : {}),
      env: this.env(),
      ...(requestHandler !== undefined ? { requestHandler } : {}),
      timeoutMs,
      ...(logLevel !== undefined ? { logLevel } : {}),
    };
  }

  /** Exactly one of model_path / models where the type needs a model, at most one otherwise. */
  private checkOneModelSource(type: PredictorType, typeAsWritten: string, hasModels: boolean): void {
    const p = ['predictor'];
    const hasModelPath = this.v.written([...p, 'model_path']);
    const modelsWritten = isObj(this.v.raw([...p, 'models'])) && this.v.intact([...p, 'models']);
    const reloadingWritten = isObj(this.v.raw([...p, 'multi_model_reloading'])) && this.v.intact([...p, 'multi_model_reloading']);
    if (modelsWritten && reloadingWritten) {
      this.report.error([...p, 'multi_model_reloading'], 'please specify only one of "models" or "multi_model_reloading" (Cortex 0.25\'s name for the same field)');
    }
    const anyModels = modelsWritten || reloadingWritten || hasModels;
    const modelField = this.v.dialect === 'legacy' ? 'model' : 'model_path';
    if (hasModelPath && anyModels) {
      this.report.error(
        [...p, reloadingWritten && !modelsWritten ? 'multi_model_reloading' : 'models'],
        `please specify only one of the following fields "model_path" or "${reloadingWritten && !modelsWritten ? 'multi_model_reloading' : 'models'}"`,
      );
    } else if (!hasModelPath && !anyModels && (type === 'tensorflow' || type === 'onnx')) {
      if (this.v.intact([...p, 'models']) && this.v.intact([...p, 'multi_model_reloading']) && this.v.usable([...p, 'type'])) {
        this.report.error(
          this.v.dialect === 'legacy' ? [...p, 'model_path'] : p,
          this.v.dialect === 'legacy' ? 'must be defined' : `either "${modelField}" or "models" must be defined for the ${typeAsWritten} predictor type`,
        );
      }
    }
  }

  private models(type: PredictorType, processes: number): ModelsSpec | undefined {
    const present = (k: string): boolean => isObj(this.v.raw(['predictor', k])) && this.v.intact(['predictor', k]);
    const key = present('models') ? 'models' : present('multi_model_reloading') ? 'multi_model_reloading' : undefined;
    if (key === undefined) return undefined;
    const m = ['predictor', key];
    // Read field by field: a problem in one entry must not hide the others'.
    const whole = this.v.raw(m);
    if (!isObj(whole)) return undefined;
    // fromEntries makes own properties even of a `__proto__` key (plain assignment would set the prototype).
    const raw: Obj = Object.fromEntries(Object.entries(whole).filter(([k]) => (k === 'paths' ? this.v.intact([...m, k]) : this.v.usable([...m, k]))));
    const given = (['path', 'paths', 'dir'] as const).filter((k) => raw[k] !== undefined && raw[k] !== null);
    if (given.length > 1) {
      this.report.error([...m, given[1]], 'please specify only one of the following fields "path", "paths", or "dir"');
    } else if (given.length === 0) {
      this.report.error(m, 'please specify one of the following fields "path", "paths", or "dir"');
    }
    const out: {
      path?: string;
      paths?: ModelRef[];
      dir?: string;
      signatureKey?: string;
      cacheSize?: number;
      diskCacheSize?: number;
      cacheBytes?: number;
      diskCacheBytes?: number;
    } = {};
    if (typeof raw.path === 'string') out.path = this.modelLocation([...m, 'path'], raw.path);
    if (typeof raw.dir === 'string') out.dir = this.modelLocation([...m, 'dir'], raw.dir, 'directory');
    if (Array.isArray(raw.paths)) {
      const refs: ModelRef[] = [];
      const firstIndex = new Map<string, number>();
      raw.paths.forEach((entry: unknown, i: number) => {
        if (!isObj(entry)) return;
        const at = [...m, 'paths', i];
        if (!this.v.usable(at)) return;
        const name = String(entry.name);
        if (name === RESERVED_MODEL_NAME) this.report.error([...at, 'name'], `"${RESERVED_MODEL_NAME}" is a reserved name; please choose another model name`);
        const prev = firstIndex.get(name);
        if (prev !== undefined) this.report.error([...at, 'name'], `cannot have multiple models with the same name (${name}; also used by paths[${prev}])`);
        else firstIndex.set(name, i);
        const hasModelPath = typeof entry.model_path === 'string';
        const hasPath = typeof entry.path === 'string';
        if (hasModelPath && hasPath) this.report.error([...at, 'path'], 'please specify only one of "model_path" or "path" (Cortex 0.25\'s name for the same field)');
        if (!hasModelPath && !hasPath) this.report.error([...at, 'model_path'], 'must be defined');
        const written = hasModelPath ? (entry.model_path as string) : hasPath ? (entry.path as string) : undefined;
        const location = written === undefined ? undefined : this.modelLocation([...at, hasModelPath ? 'model_path' : 'path'], written);
        if (type === 'onnx' && typeof entry.signature_key === 'string') {
          this.report.warning([...at, 'signature_key'], 'has no effect for onnx models (signature defs are a TensorFlow concept)');
        }
        refs.push({
          name,
          path: location ?? written ?? '',
          ...(typeof entry.signature_key === 'string' ? { signatureKey: entry.signature_key } : {}),
        });
      });
      out.paths = refs;
    }
    if (typeof raw.signature_key === 'string') {
      out.signatureKey = raw.signature_key;
      if (type === 'onnx') this.report.warning([...m, 'signature_key'], 'has no effect for onnx models (signature defs are a TensorFlow concept)');
    }
    const cache = typeof raw.cache_size === 'number' ? raw.cache_size : undefined;
    const disk = typeof raw.disk_cache_size === 'number' ? raw.disk_cache_size : undefined;
    if ((cache === undefined) !== (disk === undefined)) {
      this.report.error([...m, cache === undefined ? 'disk_cache_size' : 'cache_size'], 'please specify both "cache_size" and "disk_cache_size" or neither of them');
    } else if (cache !== undefined && disk !== undefined) {
      if (cache > disk) this.report.error([...m, 'cache_size'], `cache_size (${cache}) cannot be greater than disk_cache_size (${disk})`);
      // Cortex required processes_per_replica 1 here because its model tree lived in one process.
      // myelin's disk copy is per machine (lock-coordinated) and each process keeps its own
      // cache_size in memory, so any process count works (docs/models.md, "Caches").
      out.cacheSize = cache;
      out.diskCacheSize = disk;
    }
    for (const [field, needs, key] of [
      ['cache_bytes', 'cache_size', 'cacheBytes'],
      ['disk_cache_bytes', 'disk_cache_size', 'diskCacheBytes'],
    ] as const) {
      if (raw[field] === undefined || raw[field] === null) continue;
      const bytes = this.memory([...m, field]);
      if (bytes === undefined) continue;
      if (raw[needs] === undefined) this.report.error([...m, field], `needs "${needs}" (a byte limit is added to the count limit, not used instead of it)`);
      else if (bytes <= 0) this.report.error([...m, field], 'must be greater than 0');
      else out[key] = bytes;
    }
    void type;
    void processes;
    return out;
  }

  private batching(processes: number, threads: number): ServerSideBatchingSpec | undefined {
    const b = ['predictor', 'server_side_batching'];
    const maxBatchSize = this.v.get([...b, 'max_batch_size']);
    const interval = this.v.get([...b, 'batch_interval']);
    if (typeof maxBatchSize !== 'number' || interval === undefined) return undefined;
    const batchIntervalMs = this.duration([...b, 'batch_interval'], 0);
    if (this.v.usable([...b, 'batch_interval']) && batchIntervalMs <= 0) {
      this.report.error([...b, 'batch_interval'], `must be greater than 0 (got ${describeValue(interval)})`);
    }
    const type = this.v.get(['predictor', 'type']);
    const inf = this.v.get(['compute', 'inf']);
    if (type === 'python' && this.v.usable(['predictor', 'threads_per_process'])) {
      // Cortex 0.25's DynamicBatcher: each request of a batch waits in its own thread.
      if (threads !== maxBatchSize) {
        this.report.error(
          [...b, 'max_batch_size'],
          `threads_per_process (${threads}) must be equal to max_batch_size (${maxBatchSize}) when using server side batching with the python predictor`,
        );
      }
    } else if (typeof inf === 'number' && inf > 0) {
      if (maxBatchSize > threads) {
        this.report.error([...b, 'max_batch_size'], `max_batch_size (${maxBatchSize}) must be less than or equal to threads_per_process (${threads}) when using Inferentia`);
      }
    } else if (this.v.usable(['predictor', 'processes_per_replica']) && this.v.usable(['predictor', 'threads_per_process']) && maxBatchSize > processes * threads) {
      this.report.error(
        [...b, 'max_batch_size'],
        `max_batch_size (${maxBatchSize}) must be less than or equal to processes_per_replica * threads_per_process (${processes} * ${threads} = ${processes * threads})`,
      );
    }
    return { maxBatchSize, batchIntervalMs };
  }

  private config(): Readonly<Record<string, unknown>> {
    const c = this.v.get(['predictor', 'config']);
    return isObj(c) ? deepFreezeCopy(c) : Object.freeze({});
  }

  private env(): Readonly<Record<string, string>> {
    // Walked key by key, so one bad variable does not hide the others' problems.
    const e = this.v.usable(['predictor', 'env']) ? this.v.get(['predictor', 'env']) : this.v.raw(['predictor', 'env']);
    const entries: [string, string][] = [];
    if (!isObj(e)) return Object.freeze({});
    for (const [k, value] of Object.entries(e)) {
      const reserved = RESERVED_ENV_PREFIXES.find((prefix) => k.startsWith(prefix));
      if (reserved) {
        this.report.error(['predictor', 'env', k], `environment variables starting with ${reserved} are reserved`);
        continue;
      }
      if (!this.v.usable(['predictor', 'env', k])) continue;
      if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') entries.push([k, String(value)]);
    }
    // fromEntries keeps a variable named `__proto__` as an own property.
    return Object.freeze(Object.fromEntries(entries));
  }

  // ---------------------------------------------------------------- networking, compute, monitoring

  private networking(name: string): NetworkingSpec {
    const n = ['networking'];
    let endpoint = `/${name}`;
    const written = this.str([...n, 'endpoint']);
    if (written !== undefined) {
      const e = canonicalEndpoint(written);
      if (e.ok) endpoint = e.value;
      else this.report.error([...n, 'endpoint'], e.message);
    }
    if (this.v.written([...n, 'api_gateway'])) {
      this.report.warning([...n, 'api_gateway'], 'has no effect: myelin has no API Gateway; the API is served by the myelin gateway');
    }
    const maxBody = this.memory([...n, 'max_body_size']);
    if (maxBody === 0) this.report.error([...n, 'max_body_size'], 'must be greater than 0 (got 0)');
    const secret = this.str([...n, 'api_keys', 'secret']);
    return {
      endpoint,
      localPort: this.int([...n, 'local_port'], DEFAULTS.localPort),
      apiGateway: (this.str([...n, 'api_gateway']) as 'public' | 'none' | undefined) ?? 'public',
      maxBodyBytes: maxBody ?? DEFAULTS.maxBodyBytes,
      ...(secret !== undefined ? { apiKeys: { secret } } : {}),
    };
  }

  private compute(type: PredictorType, processes: number): ComputeSpec {
    const c = ['compute'];
    let cpuMillis: number = DEFAULTS.cpuMillis;
    if (this.v.written([...c, 'cpu']) && this.v.usable([...c, 'cpu'])) {
      const raw = this.v.get([...c, 'cpu']);
      if (raw === undefined) cpuMillis = 0; // `cpu: null` (or empty): no CPU reserved
      else {
        const r = this.parsed([...c, 'cpu'], parseCpu);
        if (r !== undefined) {
          if (r < DEFAULTS.minCpuMillis) this.report.error([...c, 'cpu'], `must be at least 20m (got ${describeValue(raw)})`);
          cpuMillis = r;
        }
      }
    }
    const memBytes = this.memory([...c, 'mem']) ?? null;
    if (memBytes !== null && memBytes < DEFAULTS.minMemBytes) {
      this.report.error([...c, 'mem'], `must be at least 20Mi (got ${describeValue(this.v.get([...c, 'mem']))})`);
    }
    const gpu = this.int([...c, 'gpu'], 0);
    const inf = this.int([...c, 'inf'], 0);
    if (inf > 0) {
      if (gpu > 0) this.report.error([...c, 'inf'], `cannot request both gpu and inf (gpu: ${gpu}, inf: ${inf})`);
      if (type === 'onnx') this.report.error([...c, 'inf'], 'Inferentia is not supported for the onnx predictor type');
      const cores = 4 * inf;
      if (cores % processes !== 0) {
        this.report.error(['predictor', 'processes_per_replica'], `processes_per_replica (${processes}) must evenly divide the number of NeuronCores (4 * inf = ${cores})`);
      }
      if (this.ctx.target === 'local') {
        this.report.warning([...c, 'inf'], 'has no effect when replicas run as local processes (Inferentia needs --target kubernetes)');
      }
    }
    return { cpuMillis, memBytes, gpu, inf };
  }

  private monitoring(): { monitoring?: MonitoringSpec } {
    const modelType = this.str(['monitoring', 'model_type']);
    if (modelType !== 'classification' && modelType !== 'regression') return {};
    const key = this.str(['monitoring', 'key']);
    return { monitoring: { modelType, ...(key !== undefined ? { key } : {}) } };
  }

  // ---------------------------------------------------------------- autoscaling, update strategy

  private autoscaling(predictor: PredictorSpec, compute: ComputeSpec): AutoscalingSpec {
    const a = ['autoscaling'];
    const policy = (this.str([...a, 'policy']) as ScalingPolicyKind | undefined) ?? 'cortex';
    const minReplicas = this.int([...a, 'min_replicas'], DEFAULTS.minReplicas);
    const maxReplicas = this.int([...a, 'max_replicas'], DEFAULTS.maxReplicas);
    const initWritten = this.v.get([...a, 'init_replicas']) !== undefined;
    // Scale to zero still starts one replica at deploy (Knative's initial scale 1), so a broken
    // predictor shows at deploy, not at the first request; `init_replicas: 0` starts at zero.
    const initReplicas = this.int([...a, 'init_replicas'], Math.max(1, minReplicas));
    const ok = (...fields: string[]): boolean => fields.every((f) => this.v.usable([...a, f]));

    if (ok('min_replicas', 'max_replicas') && minReplicas > maxReplicas) {
      this.report.error([...a, 'min_replicas'], `cannot be greater than max_replicas (${minReplicas} > ${maxReplicas})`);
    }
    if (initWritten && ok('init_replicas', 'min_replicas') && initReplicas < minReplicas) {
      this.report.error([...a, 'init_replicas'], `cannot be less than min_replicas (${initReplicas} < ${minReplicas})`);
    }
    if (initWritten && ok('init_replicas', 'max_replicas') && initReplicas > maxReplicas) {
      this.report.error([...a, 'init_replicas'], `cannot be greater than max_replicas (${initReplicas} > ${maxReplicas})`);
    }

    const pt = predictor.processesPerReplica * predictor.threadsPerProcess;
    const targetWritten = this.v.get([...a, 'target_replica_concurrency']) !== undefined;
    const target = this.num([...a, 'target_replica_concurrency'], pt);
    const maxConcurrency = this.int([...a, 'max_replica_concurrency'], DEFAULTS.maxReplicaConcurrency);
    if (ok('target_replica_concurrency', 'max_replica_concurrency') && target > maxConcurrency) {
      if (targetWritten) {
        this.report.error([...a, 'target_replica_concurrency'], `target_replica_concurrency (${target}) cannot be greater than max_replica_concurrency (${maxConcurrency})`);
      } else if (this.v.usable(['predictor', 'processes_per_replica']) && this.v.usable(['predictor', 'threads_per_process'])) {
        this.report.error(
          [...a, this.v.written([...a, 'max_replica_concurrency']) ? 'max_replica_concurrency' : 'target_replica_concurrency'],
          `target_replica_concurrency (${target}, the default: processes_per_replica * threads_per_process = ${predictor.processesPerReplica} * ${predictor.threadsPerProcess}) cannot be greater than max_replica_concurrency (${maxConcurrency})`,
        );
      }
    }

    const tickWritten = this.v.get([...a, 'tick']) !== undefined;
    const tickMs = this.duration([...a, 'tick'], DEFAULTS.tickMs[policy] ?? DEFAULTS.tickMs.cortex);
    if (tickWritten && ok('tick') && tickMs < DEFAULTS.minTickMs) {
      this.report.error([...a, 'tick'], `must be at least 1s, the metric sampling interval (got ${formatDuration(tickMs)})`);
    }
    const windowMs = this.duration([...a, 'window'], DEFAULTS.windowMs);
    if (ok('window', 'tick') && tickMs >= DEFAULTS.minTickMs) {
      const tickNote = tickWritten ? '' : ` (the default for the ${policy} policy)`;
      if (windowMs < tickMs) {
        this.report.error([...a, 'window'], `must be at least the tick, ${formatDuration(tickMs)}${tickNote} (got ${formatDuration(windowMs)})`);
      } else if (windowMs % tickMs !== 0) {
        this.report.error([...a, 'window'], `${formatDuration(windowMs)} is not a multiple of the tick, ${formatDuration(tickMs)}${tickNote}`);
      }
    }

    const panicWritten = this.v.get([...a, 'panic_window']) !== undefined;
    const defaultPanic = Math.max(tickMs, Math.round(windowMs * DEFAULTS.panicWindowFraction));
    const panicWindowMs = this.duration([...a, 'panic_window'], defaultPanic);
    if (panicWritten && ok('panic_window', 'tick') && panicWindowMs < tickMs) {
      this.report.error([...a, 'panic_window'], `must be at least one tick, ${formatDuration(tickMs)} (got ${formatDuration(panicWindowMs)})`);
    }
    if (panicWritten && ok('panic_window', 'window') && panicWindowMs > windowMs) {
      this.report.error([...a, 'panic_window'], `cannot be greater than window (${formatDuration(panicWindowMs)} > ${formatDuration(windowMs)})`);
    }
    const panicThreshold = this.num([...a, 'panic_threshold'], DEFAULTS.panicThreshold);
    if (policy !== 'burst') {
      for (const f of ['panic_window', 'panic_threshold']) {
        if (this.v.written([...a, f])) this.report.warning([...a, f], `has no effect with the ${policy} policy (only the burst policy has a panic mode)`);
      }
    }

    const cpuTargetWritten = this.v.get([...a, 'target_cpu_utilization']) !== undefined;
    const targetCpu = this.int([...a, 'target_cpu_utilization'], DEFAULTS.targetCpuUtilization);
    if (policy !== 'cpu' && this.v.written([...a, 'target_cpu_utilization'])) {
      this.report.warning([...a, 'target_cpu_utilization'], `has no effect with the ${policy} policy (only the cpu policy uses it)`);
    }
    if (policy === 'cpu' && compute.cpuMillis === 0) {
      this.report.error(['compute', 'cpu'], 'the cpu scaling policy needs a CPU request: utilization is measured against it (got null)');
    }
    void cpuTargetWritten;
    const maxHeld = this.int([...a, 'max_held_requests'], DEFAULTS.maxHeldRequests);
    const holdTimeoutMs = this.duration([...a, 'hold_timeout'], DEFAULTS.holdTimeoutMs);
    if (minReplicas !== 0) {
      for (const f of ['max_held_requests', 'hold_timeout']) {
        if (this.v.written([...a, f])) this.report.warning([...a, f], 'has no effect unless min_replicas is 0 (requests are held only for an API that can scale to zero)');
      }
    }

    return {
      policy,
      minReplicas,
      maxReplicas,
      initReplicas,
      targetReplicaConcurrency: target,
      maxReplicaConcurrency: maxConcurrency,
      windowMs,
      downscaleStabilizationPeriodMs: this.duration([...a, 'downscale_stabilization_period'], DEFAULTS.downscaleStabilizationPeriodMs),
      upscaleStabilizationPeriodMs: this.duration([...a, 'upscale_stabilization_period'], DEFAULTS.upscaleStabilizationPeriodMs),
      maxDownscaleFactor: this.num([...a, 'max_downscale_factor'], DEFAULTS.maxDownscaleFactor),
      maxUpscaleFactor: this.num([...a, 'max_upscale_factor'], DEFAULTS.maxUpscaleFactor),
      downscaleTolerance: this.num([...a, 'downscale_tolerance'], DEFAULTS.downscaleTolerance),
      upscaleTolerance: this.num([...a, 'upscale_tolerance'], DEFAULTS.upscaleTolerance),
      tickMs,
      panicWindowMs,
      panicThreshold,
      ...(policy === 'cpu' ? { targetCpuUtilization: targetCpu } : {}),
      ...(minReplicas === 0 ? { maxHeldRequests: maxHeld, holdTimeoutMs } : {}),
    };
  }

  private updateStrategy(): UpdateStrategySpec {
    const u = ['update_strategy'];
    const maxSurge = this.parsed([...u, 'max_surge'], parseIntOrPercent) ?? DEFAULTS.maxSurge;
    const maxUnavailable = this.parsed([...u, 'max_unavailable'], parseIntOrPercent) ?? DEFAULTS.maxUnavailable;
    const usable = this.v.usable([...u, 'max_surge']) && this.v.usable([...u, 'max_unavailable']);
    if (usable && maxSurge.value === 0 && maxUnavailable.value === 0) {
      this.report.error(
        [...u, this.v.written([...u, 'max_unavailable']) ? 'max_unavailable' : 'max_surge'],
        'max_surge and max_unavailable cannot both be zero',
      );
    }
    return { maxSurge, maxUnavailable };
  }

  // ---------------------------------------------------------------- paths

  /**
   * Resolves a local path against the configuration file's folder; reports it when it leaves the
   * project folder, does not exist, is the wrong kind, or has the wrong extension.
   */
  private localPath(
    path: DataPath,
    written: string,
    expect: 'file' | 'directory' | 'any',
    what: string,
    extensions?: readonly string[],
    extensionContext = '',
  ): string | undefined {
    const abs = isAbsolute(written) ? normalize(written) : resolve(this.ctx.configDir, written);
    if (!isInside(this.ctx.projectDir, abs)) {
      this.report.error(path, `${describeValue(written)} is outside the project folder ${this.ctx.projectDir} (paths are relative to the configuration file's folder and must stay inside the project)`);
      return undefined;
    }
    if (extensions && expect === 'file' && !extensions.some((e) => abs.toLowerCase().endsWith(e))) {
      this.report.error(path, `${describeValue(written)} must be a ${joinOr(extensions)} file${extensionContext ? ` ${extensionContext}` : ''}`);
      return undefined;
    }
    const probe = this.ctx.probe;
    if (!probe) return abs;
    const kind = probe.kind(abs);
    if (kind === 'missing') {
      this.report.error(path, `${what} ${describeValue(written)} does not exist (looked for ${abs})`);
      return undefined;
    }
    if (expect === 'file' && kind !== 'file') {
      this.report.error(path, `${describeValue(written)} is a ${kind === 'directory' ? 'directory' : 'special file'}; expected a ${what}`);
      return undefined;
    }
    if (expect === 'directory' && kind !== 'directory') {
      this.report.error(path, `${describeValue(written)} is not a directory; expected a ${what}`);
      return undefined;
    }
    const real = probe.realpath?.(abs);
    const realProject = probe.realpath?.(this.ctx.projectDir) ?? this.ctx.projectDir;
    if (real !== undefined && !isInside(realProject, real)) {
      this.report.error(path, `${describeValue(written)} leads outside the project folder through a symbolic link (to ${real})`);
      return undefined;
    }
    return abs;
  }

  /** A model location: a local path (checked like any path) or an s3://, gs://, https:// or http:// URL (syntax only). */
  private modelLocation(path: DataPath, written: string, expect: 'any' | 'directory' = 'any'): string | undefined {
    const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(written)?.[1]?.toLowerCase();
    if (scheme === undefined) return this.localPath(path, written, expect, expect === 'directory' ? 'model directory' : 'model path');
    const problem = checkModelUrl(scheme, written);
    if (problem === 'file') {
      let local: string;
      try {
        local = fileURLToPath(written);
      } catch {
        this.report.error(path, `invalid file URL ${describeValue(written)}`);
        return undefined;
      }
      return this.localPath(path, local, expect, expect === 'directory' ? 'model directory' : 'model path');
    }
    if (problem !== undefined) {
      this.report.error(path, problem);
      return undefined;
    }
    return written;
  }

  // ---------------------------------------------------------------- typed reads with defaults

  private str(path: DataPath): string | undefined {
    const v = this.v.get(path);
    return typeof v === 'string' ? v : undefined;
  }

  private num(path: DataPath, def: number): number {
    const v = this.v.get(path);
    return typeof v === 'number' && Number.isFinite(v) ? v : def;
  }

  private int(path: DataPath, def: number): number {
    const v = this.v.get(path);
    return typeof v === 'number' && Number.isSafeInteger(v) ? v : def;
  }

  private duration(path: DataPath, def: number): number {
    return this.parsed(path, parseDuration) ?? def;
  }

  private memory(path: DataPath): number | undefined {
    return this.parsed(path, parseMemory);
  }

  /** Parses the value at `path` (when present and usable); a parser's refusal is reported there. */
  private parsed<T>(path: DataPath, parse: (v: unknown) => ParseResult<T>): T | undefined {
    const v = this.v.get(path);
    if (v === undefined) return undefined;
    const r = parse(v);
    if (r.ok) return r.value;
    this.report.error(path, r.message);
    return undefined;
  }
}

/** `/iris`, `iris`, `/iris/` → `/iris`; refuses characters a URL path segment should not carry. */
export function canonicalEndpoint(written: string): ParseResult<string> {
  let e = written.startsWith('/') ? written : `/${written}`;
  while (e.length > 1 && e.endsWith('/')) e = e.slice(0, -1);
  const segments = e === '/' ? [] : e.slice(1).split('/');
  for (const s of segments) {
    if (!/^[A-Za-z0-9._~-]+$/.test(s) || s === '.' || s === '..') {
      return {
        ok: false,
        message: `invalid endpoint (got ${describeValue(written)}, must be a URL path of letters, digits, "-", "_", "." and "~" separated by "/", e.g. "/iris-classifier")`,
      };
    }
  }
  if (segments[0] === 'v2') {
    return { ok: false, message: `invalid endpoint (got ${describeValue(written)}): paths under /v2 are reserved for the Open Inference Protocol (/v2/models/<name>/infer)` };
  }
  return { ok: true, value: e };
}

/** Returns a problem message for a model URL, `'file'` for a file:// URL, or undefined when it is well-formed. */
function checkModelUrl(scheme: string, url: string): string | undefined | 'file' {
  switch (scheme) {
    case 's3':
    case 'gs': {
      const m = /^[A-Za-z0-9]+:\/\/([^/]*)(\/.*)?$/.exec(url);
      const bucket = m?.[1] ?? '';
      const maxLen = scheme === 's3' ? 63 : 222;
      if (bucket.length < 3 || bucket.length > maxLen || !/^[a-z0-9][a-z0-9._-]*[a-z0-9]$/.test(bucket) || bucket.includes('..')) {
        return `invalid ${scheme.toUpperCase()} path ${describeValue(url)} (must be ${scheme}://<bucket>/<key>, the bucket name 3-${maxLen} lower case letters, numbers, dots and dashes)`;
      }
      if (/\s/.test(url)) return `invalid ${scheme.toUpperCase()} path ${describeValue(url)} (contains whitespace)`;
      return undefined;
    }
    case 'https':
    case 'http': {
      let parsed: URL;
      try {
        parsed = new URL(url);
      } catch {
        return `invalid URL ${describeValue(url)}`;
      }
      if (parsed.hostname === '') return `invalid URL ${describeValue(url)} (no host)`;
      return undefined;
    }
    case 'file':
      return 'file';
    default:
      return `unsupported model location ${describeValue(url)} (must be a local path, or an s3://, gs://, https:// or http:// URL)`;
  }
}

/** `child` is `parent` or inside it (both absolute and normalized). */
export function isInside(parent: string, child: string): boolean {
  const rel = relative(parent, child);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

function joinOr(words: readonly string[]): string {
  if (words.length <= 1) return words.join('');
  return `${words.slice(0, -1).join(', ')} or ${words[words.length - 1]}`;
}

/** A deep copy of plain YAML data, frozen at every level (iterative: the depth is bounded by the parser anyway). */
function deepFreezeCopy<T>(value: T): T {
  const copy = structuredClone(value);
  const stack: unknown[] = [copy];
  while (stack.length > 0) {
    const v = stack.pop();
    if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
      Object.freeze(v);
      for (const child of Object.values(v as object)) stack.push(child);
    }
  }
  return copy;
}

/** Formats a spec's compute for one table cell: `cpu 200m, mem 1Gi, gpu 1`. */
export function formatCompute(c: ComputeSpec): string {
  const parts = [`cpu ${c.cpuMillis === 0 ? '-' : formatCpu(c.cpuMillis)}`];
  if (c.memBytes !== null) parts.push(`mem ${formatMemory(c.memBytes)}`);
  if (c.gpu > 0) parts.push(`gpu ${c.gpu}`);
  if (c.inf > 0) parts.push(`inf ${c.inf}`);
  return parts.join(', ');
}
