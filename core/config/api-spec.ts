/**
 * The resolved, typed API spec: what the config loader produces from either YAML dialect, with every
 * default filled in and every unit in the field name (durations in ms, CPU in millicores, memory in
 * bytes). Everything downstream (replica, autoscaler, orchestrators) reads only this, never raw YAML.
 */

/** Predictor types after alias resolution (`typescript` → `javascript`). */
export type PredictorType = 'python' | 'tensorflow' | 'onnx' | 'javascript';
export const PREDICTOR_TYPES: readonly PredictorType[] = ['python', 'tensorflow', 'onnx', 'javascript'];

/** Which YAML dialect the API was written in. */
export type ConfigDialect = 'realtime' | 'legacy';

/** Scaling policy kinds (issue #4). */
export type ScalingPolicyKind = 'cortex' | 'burst' | 'cpu';

/** An absolute count or a percentage of the desired replicas (`5`, `10%`). */
export type IntOrPercent =
  | { readonly kind: 'absolute'; readonly value: number }
  | { readonly kind: 'percent'; readonly value: number };

/** Resolves an `IntOrPercent` against `total`; `roundUp` as Kubernetes does for maxSurge (up) and maxUnavailable (down). */
export function resolveIntOrPercent(v: IntOrPercent, total: number, roundUp: boolean): number {
  if (v.kind === 'absolute') return v.value;
  const x = (v.value * total) / 100;
  return roundUp ? Math.ceil(x) : Math.floor(x);
}

/**
 * A model location. `path` is absolute for local models (resolved against the config file's folder)
 * or a URL (`s3://`, `gs://`, `https://`) kept as written.
 */
export interface ModelRef {
  readonly name: string;
  readonly path: string;
  readonly signatureKey?: string;
}

export interface ModelsSpec {
  /** Single model given as `models.path` (Cortex 0.25); the model is named `_cortex_default`. */
  readonly path?: string;
  readonly paths?: readonly ModelRef[];
  readonly dir?: string;
  readonly signatureKey?: string;
  /** Cortex's `cache_size`: versions kept in memory (per process), LRU. */
  readonly cacheSize?: number;
  /** Cortex's `disk_cache_size`: downloaded versions kept on local disk (per replica), LRU. */
  readonly diskCacheSize?: number;
  /** myelin extension `cache_bytes`: also at most this many bytes in memory (a version counts its size on disk). */
  readonly cacheBytes?: number;
  /** myelin extension `disk_cache_bytes`: also at most this many downloaded bytes on disk. */
  readonly diskCacheBytes?: number;
}

export interface ServerSideBatchingSpec {
  readonly maxBatchSize: number;
  readonly batchIntervalMs: number;
}

export interface PredictorSpec {
  readonly type: PredictorType;
  /** The type as written, when it was an alias (`typescript`). */
  readonly typeAsWritten: string;
  /** Absolute path of the predictor file; absent for onnx/tensorflow served without code. */
  readonly path?: string;
  /** Single model (RealtimeAPI `model_path`, legacy `model`): absolute path or URL. */
  readonly modelPath?: string;
  readonly models?: ModelsSpec;
  readonly signatureKey?: string;
  readonly serverSideBatching?: ServerSideBatchingSpec;
  readonly processesPerReplica: number;
  readonly threadsPerProcess: number;
  /** `predictor.config`, passed to the predictor's constructor (deep-copied per instance). */
  readonly config: Readonly<Record<string, unknown>>;
  /** Absolute; defaults to the config file's folder. */
  readonly pythonPath: string;
  readonly image?: string;
  readonly tensorflowServingImage?: string;
  readonly env: Readonly<Record<string, string>>;
  /** Legacy dialect `request_handler`: absolute path of a file exporting pre_inference/post_inference. */
  readonly requestHandler?: string;
  /** A predict call running longer than this is answered 504 (default 60 s). */
  readonly timeoutMs: number;
  /** Cortex 0.25 `predictor.log_level`, present only when written: the level of the predictor's own logs. */
  readonly logLevel?: 'debug' | 'info' | 'warning' | 'error';
}

/**
 * Cortex's port 8888: the default of `networking.local_port` and of the gateway's shared port (the
 * daemon's `--gateway-port`). An API whose `local_port` is this value is served on the shared port only.
 */
export const DEFAULT_GATEWAY_PORT = 8888;

export interface NetworkingSpec {
  /** Always starts with `/`; default `/<name>`. */
  readonly endpoint: string;
  /** Default `DEFAULT_GATEWAY_PORT` (8888). */
  readonly localPort: number;
  readonly apiGateway: 'public' | 'none';
  /** Request bodies larger than this are answered 413 (default 16 MiB); a JSON body may hold one value per 16 bytes of it. */
  readonly maxBodyBytes: number;
  /** myelin `networking.api_keys`: requests must carry a key of this secret (resolved by the daemon, never held in the spec). */
  readonly apiKeys?: ApiKeysSpec;
}

/**
 * `networking.api_keys: { secret: NAME }`: the NAME of the secret whose keys the gateway requires. The
 * keys themselves never appear in the configuration or the spec: the daemon reads them at deploy
 * (docs/configuration.md "API keys").
 */
export interface ApiKeysSpec {
  readonly secret: string;
}

export interface ComputeSpec {
  /** Default 200 (200m). */
  readonly cpuMillis: number;
  /** Null when not requested. */
  readonly memBytes: number | null;
  readonly gpu: number;
  readonly inf: number;
}

export interface MonitoringSpec {
  readonly modelType: 'classification' | 'regression';
  readonly key?: string;
}

export interface AutoscalingSpec {
  readonly policy: ScalingPolicyKind;
  readonly minReplicas: number;
  readonly maxReplicas: number;
  readonly initReplicas: number;
  readonly targetReplicaConcurrency: number;
  readonly maxReplicaConcurrency: number;
  readonly windowMs: number;
  readonly downscaleStabilizationPeriodMs: number;
  readonly upscaleStabilizationPeriodMs: number;
  readonly maxDownscaleFactor: number;
  readonly maxUpscaleFactor: number;
  readonly downscaleTolerance: number;
  readonly upscaleTolerance: number;
  /** How often the autoscaler decides: 10 s for cortex/cpu, 2 s for burst. */
  readonly tickMs: number;
  /** burst: averaging window of panic mode (default 10% of window, at least one tick). */
  readonly panicWindowMs: number;
  /** burst: panic when the panic window asks for at least this many times the current replicas (default 2). */
  readonly panicThreshold: number;
  /** cpu policy (legacy `target_cpu_utilization`), percent; present only for that policy. */
  readonly targetCpuUtilization?: number;
  /** myelin `max_held_requests`, scale to zero: requests the gateway holds while no replica is ready (default 1000); present only with `minReplicas` 0. */
  readonly maxHeldRequests?: number;
  /** myelin `hold_timeout`, scale to zero: a request held this long without a ready replica is answered 503, ms (default 60 s); present only with `minReplicas` 0. */
  readonly holdTimeoutMs?: number;
}

export interface UpdateStrategySpec {
  readonly maxSurge: IntOrPercent;
  readonly maxUnavailable: IntOrPercent;
}

export interface ApiSpec {
  readonly name: string;
  readonly kind: 'RealtimeAPI';
  readonly dialect: ConfigDialect;
  readonly predictor: PredictorSpec;
  readonly networking: NetworkingSpec;
  readonly compute: ComputeSpec;
  readonly monitoring?: MonitoringSpec;
  readonly autoscaling: AutoscalingSpec;
  readonly updateStrategy: UpdateStrategySpec;
  /** Absolute path of the file the API was read from. */
  readonly configFile: string;
  /** Absolute path of the project folder (the config file's folder); relative paths resolve here. */
  readonly projectDir: string;
}
