import { randomBytes } from 'node:crypto';
import { readdir, readFile, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Logger } from 'pino';
import type { Observable, Subscription } from 'rxjs';
import type { ApiSpec } from '../../core/config/api-spec.js';
import type { Clock } from '../../core/clock.js';
import { ConfigError, EngineError, type ConfigProblem } from '../../core/errors.js';
import type { EngineEvent } from '../../core/events/engine-event.js';
import type { MetricSample } from '../../core/metrics/metric-sample.js';
import type { EventBus } from '../../core/ports/event-bus.js';
import type { MetricsTransport } from '../../core/ports/metrics-transport.js';
import type { ModelDownloadProgress, ModelProvider } from '../../core/ports/model-provider.js';
import type { ApiDeployment, OrchestratorTarget, ReplicaInfo } from '../../core/ports/orchestrator-target.js';
import type { ApiAutoscaler, AutoscalerFactory, AutoscalerTickView } from './api-autoscaler.js';
import { apiDetail, apiSummary, emptyMonitoring, mergeMonitoring, unrestoredDetail, unrestoredSummary, type ApiSummaryInput, type RequestCounters } from './api-views.js';
import { ConflictError, NotFoundError, type ProjectSource } from './control-api.js';
import { DaemonMetrics } from './daemon-metrics.js';
import type { ApiDetail, ApiSummary, DaemonService, DeployResponse, DeployResult, MonitoringView } from './daemon-service.js';
import { diffReplicaEvents } from './diff-replica-events.js';
import { diffStatusEvents, NO_STATUS, type StatusMemory } from './diff-status-events.js';
import { EventHistory } from './event-history.js';
import { InFlightRecorder } from './in-flight-recorder.js';
import type { InFlightPoint } from './in-flight-recording.js';
import { checkOnnxBatching, describeDownload, discoverApiModels, FieldLocator, formatByteSize, prefetchModels, type DiscoveredModels } from './model-preparation.js';
import { projectId as projectIdOf, readEncodedProject, storeEncodedBundle, unpackProject, type ProjectBundle } from './project-bundle.js';
import { isProjectToken, projectToken } from './project-tokens.js';
import { preparePython, type PreparedPython } from './python-dependencies.js';
import type { PythonEnvCache } from './python-env-cache.js';
import { revisionOf, specIdOf } from './revision.js';
import { ApiKeySecretError, resolveApiKeySecret } from './api-key-secrets.js';
import type { TrafficSplitterSpec } from '../../core/config/traffic-splitter.js';
import { DEFAULT_GATEWAY_PORT } from '../../core/config/api-spec.js';
import { fieldText } from '../../core/config/load-api-specs.js';
import type { DataPath } from '../../core/config/yaml-source.js';
import type { SplitterStats } from '../gateway/traffic-splitter.js';
import { checkSplitters, sameWeights, splitterRevision, type StoredSplitter, type TrafficSplitterView } from './traffic-splitters.js';
import type { StateStore, StoredApi } from './state-store.js';

/** What the daemon needs from the gateway: routes in, URLs out. */
export interface DaemonGateway {
  /** `access.apiKeys`: the keys of the API's `networking.api_keys` secret, required of every request. */
  upsertApi(spec: ApiSpec, access?: { readonly apiKeys?: readonly string[] }): Promise<void>;
  /** Routes a TrafficSplitter over routed APIs (absent: TrafficSplitters are refused at deploy). */
  upsertSplitter?(spec: TrafficSplitterSpec, access?: { readonly apiKeys?: readonly string[] }): Promise<void>;
  removeSplitter?(name: string): Promise<void>;
  /** What a routed splitter sent to each backend, and which backends are ready. */
  splitterStats?(name: string): SplitterStats | undefined;
  removeApi(name: string): Promise<void>;
  /** The URL clients call for this API, e.g. http://127.0.0.1:8888/iris. */
  urlFor(spec: { readonly networking: Pick<ApiSpec['networking'], 'endpoint' | 'localPort'> }): string;
}

/** Loads every API of a config file (core/config loader). Throws ConfigError. */
export type SpecLoader = (file: string) => Promise<{ readonly specs: readonly ApiSpec[]; readonly splitters?: readonly TrafficSplitterSpec[]; readonly warnings: readonly ConfigProblem[] }>;

export interface DaemonDeps {
  readonly store: StateStore;
  readonly orchestrator: OrchestratorTarget;
  readonly gateway: DaemonGateway;
  readonly metrics: MetricsTransport;
  readonly events: EventBus;
  readonly autoscalers: AutoscalerFactory;
  readonly loadSpecs: SpecLoader;
  /** Predictor types a replica can serve (the installed predictor plugins); others are refused at deploy. */
  readonly servedPredictorTypes: readonly string[];
  /**
   * Virtualenvs for the `requirements.txt` of projects whose APIs run Python. Absent where replicas
   * do not run on this machine (Kubernetes): such a file is then a deploy warning.
   */
  readonly pythonEnvs?: PythonEnvCache;
  /**
   * Lists the models of each API at deploy (a missing object, a refused bucket, a wrong layout or an
   * unknown scheme refuses the deploy) and, with `prefetchModels`, downloads them into the machine
   * cache its replicas read. Absent: models are not looked at before the replicas start.
   */
  readonly models?: ModelProvider;
  /** Download every version into the machine cache at deploy (true where replicas run on this machine). */
  readonly prefetchModels?: boolean;
  readonly clock: Clock;
  readonly log: Logger;
  /** Called when a client asks the daemon to stop (`myelin down`). */
  readonly onShutdown: () => void;
  /**
   * Keys the per-API project tokens (`project-tokens.ts`): the control API's token. Default: the
   * store's `token()`, which is what `runDaemon` gives the control API.
   */
  readonly projectSecret?: string;
  /** Where `networking.api_keys` secrets are looked up after `<state>/secrets/<NAME>` (default `process.env`). */
  readonly env?: NodeJS.ProcessEnv;
}

/** Everything the daemon knows about one deployed API. */
interface ApiState {
  spec: ApiSpec;
  stored: StoredApi;
  specId: string;
  autoscaler: ApiAutoscaler;
  lastTick: AutoscalerTickView | null;
  lastDecision: { t: number; from: number; to: number; reason: string } | null;
  /** The last `api.status` and `rollout.progress` published. */
  published: StatusMemory;
  requests: RequestCounters;
  monitoring?: MonitoringView;
  subs: Subscription;
  metricsUnavailable: boolean;
}

/**
 * The local control plane: keeps deployed APIs in the state folder, runs one autoscaler per API,
 * applies its decisions to the orchestrator, routes the gateway, and turns everything that happens
 * into events (EventBus + bounded history for the control API).
 */
export class Daemon implements DaemonService, ProjectSource {
  private readonly apis = new Map<string, ApiState>();
  /** Stored APIs that could not be restored at start: listed with status `error` until redeployed or deleted. */
  private readonly unrestored = new Map<string, { readonly stored: StoredApi; readonly reason: string }>();
  private readonly history = new EventHistory();
  /** Deployed TrafficSplitters by name (traffic-splitters.ts). */
  private readonly splitters = new Map<string, StoredSplitter>();
  private readonly log: Logger;
  private readonly subs: Subscription[] = [];
  private replicas: readonly ReplicaInfo[] = [];
  private readonly prometheus = new DaemonMetrics();
  /** Serializes deploy/delete/refresh so two clients never interleave on one API. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Aborts background model downloads (restored APIs) on close. */
  private readonly closing = new AbortController();
  private readonly background = new Set<Promise<void>>();
  /** Keys the project tokens; set in `start()` before any API is installed. */
  private projectSecret = '';

  /** Each API's per-second total in flight (the dashboard, what-if, `myelin simulate --since`). */
  readonly recorder: InFlightRecorder;

  constructor(private readonly deps: DaemonDeps) {
    this.log = deps.log.child({ component: 'daemon/daemon' });
    this.recorder = new InFlightRecorder({
      store: deps.store,
      clock: deps.clock,
      log: deps.log,
      apis: () => [...this.apis.values()].map((a) => ({ name: a.spec.name, replicas: a.stored.replicas, target: a.spec.autoscaling.targetReplicaConcurrency })),
    });
  }

  /** `api`'s recording since `sinceMs` with the autoscaling it runs and when it was created; `NotFoundError` when not deployed. */
  recording(api: string, sinceMs = 0): { readonly spec: ApiSpec; readonly createdMs: number; readonly points: InFlightPoint[] } {
    const a = this.mustGet(api);
    return { spec: a.spec, createdMs: a.stored.created, points: this.recorder.points(api, sinceMs) };
  }

  /** Starts following replicas, samples and events, then restores every stored API. */
  async start(): Promise<void> {
    await this.deps.store.init();
    this.projectSecret = this.deps.projectSecret ?? (await this.deps.store.token());
    this.subs.push(
      this.deps.orchestrator.replicas$().subscribe((list) => this.onReplicas(list)),
      this.deps.metrics.samples$().subscribe({ next: (s) => this.onSample(s), error: (err) => this.log.error({ err }, 'metrics transport failed') }),
    );
    // What replicas report about themselves (model downloads, live-reload changes), checked and
    // attributed by the orchestrator: published like the daemon's own events.
    const replicaEvents = this.deps.orchestrator.events$?.();
    if (replicaEvents) this.subs.push(replicaEvents.subscribe({ next: (e) => this.emit(e), error: (err) => this.log.error({ err }, 'replica events failed') }));
    for (const stored of await this.deps.store.listApis()) {
      try {
        const loaded = await this.deps.loadSpecs(join(stored.projectDir, stored.configFile));
        const spec = loaded.specs.find((s) => s.name === stored.name);
        // The stored project is not changed after its deploy: a loader that reads the file differently
        // now (another version) or a hand-edited state folder gets here.
        if (!spec) throw new EngineError('ENG_API_NOT_IN_CONFIG', `${stored.name} is no longer in ${stored.configFile}`);
        // The same interpreter as at deploy: its virtualenv is found in the cache (re-installed if it was removed).
        const [prepared] = (await this.preparePython([spec], stored.projectDir)).specs;
        await this.install(prepared, stored, await this.deps.store.getAutoscalerState(stored.name));
        this.log.info({ api: stored.name, revision: stored.revision, replicas: stored.replicas }, 'api restored');
        // Models are not a reason to leave an API down after a restart (the store may be unreachable
        // for a moment, the cache may hold them): they are fetched in the background, as the replicas would.
        this.prefetchInBackground(prepared, stored);
      } catch (err) {
        const reason = `could not restore it: ${err instanceof Error ? err.message : String(err)}`;
        this.log.error({ err, api: stored.name }, 'could not restore api');
        // Kept and shown, never dropped silently: a redeploy or a delete clears it.
        this.unrestored.set(stored.name, { stored, reason });
        this.emit({ v: 1, type: 'api.status', api: stored.name, t: this.deps.clock.now(), status: 'error', message: reason });
      }
    }
    await this.restoreSplitters();
    await this.recorder.start(this.apis.keys());
    await this.collectProjects();
  }

  /** Removes uploaded project folders no API refers to (rejected deploys, replaced revisions, deleted APIs). */
  private async collectProjects(): Promise<void> {
    const used = new Set([...this.apis.values()].map((a) => a.stored.projectDir));
    for (const u of this.unrestored.values()) used.add(u.stored.projectDir);
    let names: string[];
    try {
      names = await readdir(this.deps.store.projectsDir);
    } catch {
      return;
    }
    for (const n of names) {
      const dir = join(this.deps.store.projectsDir, n);
      // `<id>.bundle` (the encoded upload pods download) lives and goes with its folder `<id>`.
      if (used.has(dir) || (n.endsWith('.bundle') && used.has(dir.slice(0, -'.bundle'.length)))) continue;
      try {
        await rm(dir, { recursive: true, force: true });
      } catch (err) {
        this.log.warn({ err, dir }, 'could not remove an unused project folder');
      }
    }
  }

  async close(): Promise<void> {
    this.deps.pythonEnvs?.close();
    this.closing.abort(new Error('the daemon is stopping'));
    await Promise.all(this.background);
    for (const s of this.subs) s.unsubscribe();
    await this.recorder.close();
    for (const a of this.apis.values()) {
      await this.persistAutoscaler(a);
      a.autoscaler.close();
      a.subs.unsubscribe();
    }
    this.history.complete();
  }

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Every event goes to the EventBus (NATS subscribers, other tools) and into the daemon's own bounded
   * history, which serves the control API: so `myelin events` works even while NATS is down.
   */
  private emit(e: EngineEvent): void {
    this.history.record(e);
    this.deps.events.publish(e);
  }

  // ---------------------------------------------------------------- deploy / delete / refresh

  deploy(bundle: ProjectBundle, options: { readonly force: boolean }): Promise<DeployResponse> {
    return this.serialize(async () => {
      try {
        return await this.deployNow(bundle, options);
      } finally {
        await this.collectProjects();
      }
    });
  }

  private async deployNow(bundle: ProjectBundle, options: { readonly force: boolean }): Promise<DeployResponse> {
    const projectDir = await unpackProject(this.deps.store.projectsDir, bundle);
    // The upload as pods download it (GET /v1/projects/<id>), beside its folder; collected with it.
    await storeEncodedBundle(this.deps.store.projectsDir, bundle);
    // Stored as loaded: a config in a subfolder of the project is found again after a restart.
    const configFile = bundle.configFile;
    // Paths in the uploaded config resolve inside the unpacked project; errors name the user's file.
    const { specs, warnings, splitters = [] } = await this.deps.loadSpecs(join(projectDir, bundle.configFile));
    const projectId = projectIdOf(bundle);
    const taken = this.endpointOwners();
    const problems: ConfigProblem[] = [];
    const configText = await readFile(join(projectDir, bundle.configFile), 'utf8').catch(() => undefined);
    const locator = new FieldLocator(configText);
    const problem = (api: string, field: string, message: string): ConfigProblem => {
      const at = locator.of(api, field.split('.'));
      return { file: bundle.configFile, line: at.line, col: at.col, api, field, message, severity: 'error' };
    };
    for (const spec of specs) {
      // Every API is reachable on the shared gateway port, so an endpoint belongs to one API whatever its local_port.
      const owner = taken.get(spec.networking.endpoint);
      if (owner && owner !== spec.name) problems.push(problem(spec.name, 'networking.endpoint', `endpoint is already being used by ${owner}`));
      if (!this.deps.servedPredictorTypes.includes(spec.predictor.type)) {
        problems.push(problem(spec.name, 'predictor.type', `${spec.predictor.typeAsWritten} predictors cannot be served here yet (available: ${this.deps.servedPredictorTypes.join(', ')})`));
      }
      // Compute the machine can never give is refused now, not waited on (Cortex's deploy check).
      for (const p of this.deps.orchestrator.impossibleCompute?.(spec) ?? []) problems.push(problem(spec.name, p.field, p.message));
      const secretProblem = await this.apiKeySecretProblem(spec.networking.apiKeys?.secret);
      if (secretProblem !== undefined) problems.push(problem(spec.name, 'networking.api_keys.secret', secretProblem));
      const cur = this.apis.get(spec.name);
      if (cur && !options.force && this.isUpdating(cur)) {
        throw new ConflictError(`${spec.name} is updating (override with --force)`);
      }
    }
    problems.push(...(await this.checkSplitterDeploy(specs, splitters, taken, locator, bundle.configFile)));
    if (problems.length > 0) throw new ConfigError(problems);
    // Before any API changes: a model that cannot be found or used, or a requirements.txt that cannot
    // be installed, refuses the whole deploy. Models are listed first (quick), downloaded last.
    const discovered = await this.discoverModels(specs, bundle.configFile, configText);
    const prepared = await this.preparePython(specs, projectDir);
    await this.prefetch(prepared.specs, discovered, bundle.configFile, configText);
    // With the models on disk: a model without a batch dimension for server_side_batching refuses the deploy here, not in a crash loop.
    if (this.deps.models && this.deps.prefetchModels) {
      await checkOnnxBatching({ specs: prepared.specs, discovered, provider: this.deps.models, configFile: bundle.configFile, ...(configText !== undefined ? { configText } : {}) });
    }
    const results: DeployResult[] = [];
    for (const spec of prepared.specs) results.push(await this.upsert(spec, projectDir, configFile, projectId));
    // After their APIs: a splitter's backends are routed when it is.
    const splitResults: DeployResult[] = [];
    for (const split of splitters) splitResults.push(await this.upsertSplitter(split, configFile));
    return { results, ...(splitResults.length > 0 ? { splitters: splitResults } : {}), warnings: [...warnings, ...prepared.warnings] };
  }

  /** requirements.txt of APIs that run Python (python-dependencies.ts); its output becomes `deploy.progress` events. */
  private preparePython(specs: readonly ApiSpec[], projectDir: string): Promise<PreparedPython> {
    return preparePython({
      specs,
      projectDir,
      envs: this.deps.pythonEnvs,
      onLine: (api, line) => {
        this.log.info({ api, stage: 'requirements', line }, 'requirements.txt');
        // Bounded so that one very long line cannot exceed the event size limit.
        const text = line.length > MAX_PROGRESS_LINE ? `${line.slice(0, MAX_PROGRESS_LINE)}…` : line;
        this.emit({ v: 1, type: 'deploy.progress', api, t: this.deps.clock.now(), stage: 'requirements', line: text });
      },
    });
  }

  /** Each API's models as their stores list them (model-preparation.ts); ConfigError when one cannot be used. */
  private async discoverModels(specs: readonly ApiSpec[], configFile: string, configText: string | undefined): Promise<DiscoveredModels> {
    if (!this.deps.models) return new Map();
    return discoverApiModels({ specs, provider: this.deps.models, configFile, ...(configText !== undefined ? { configText } : {}) });
  }

  /**
   * Downloads the deploy's remote model versions into the machine cache (where replicas run on this
   * machine): progress becomes `model.download` events and `deploy.progress` lines (stage `models`).
   */
  private async prefetch(specs: readonly ApiSpec[], discovered: DiscoveredModels, configFile: string, configText?: string, signal?: AbortSignal): Promise<void> {
    if (!this.deps.models || !this.deps.prefetchModels) return;
    const result = await prefetchModels({
      specs,
      discovered,
      provider: this.deps.models,
      configFile,
      ...(configText !== undefined ? { configText } : {}),
      now: () => this.deps.clock.now(),
      onProgress: (api, p) => this.onModelDownload(api, p),
      onCached: (api, url, bytes) => this.progressLine(api, `${url}: in the machine's model cache already (${formatByteSize(bytes)})`),
      ...(signal ? { signal } : {}),
    });
    if (result.downloaded + result.cached > 0) this.log.info({ downloaded: result.downloaded, cached: result.cached }, 'models ready in the machine cache');
  }

  private onModelDownload(api: string, p: ModelDownloadProgress): void {
    const rate = Math.round(p.rateBytesPerSec);
    this.log.info({ api, url: p.url, bytes: p.bytes, total: p.total, rateBytesPerSec: rate, done: p.done }, 'model download');
    this.emit({ v: 1, type: 'model.download', api, t: this.deps.clock.now(), url: p.url, bytes: p.bytes, total: p.total, rateBytesPerSec: rate, done: p.done });
    this.progressLine(api, describeDownload(p));
  }

  private progressLine(api: string, line: string): void {
    const text = line.length > MAX_PROGRESS_LINE ? `${line.slice(0, MAX_PROGRESS_LINE)}…` : line;
    this.emit({ v: 1, type: 'deploy.progress', api, t: this.deps.clock.now(), stage: 'models', line: text });
  }

  /** A restored API's models, discovered and downloaded without holding up the restore; failures are logged. */
  private prefetchInBackground(spec: ApiSpec, stored: StoredApi): void {
    if (!this.deps.models || !this.deps.prefetchModels) return;
    const run = (async () => {
      try {
        const discovered = await this.discoverModels([spec], stored.configFile, undefined);
        await this.prefetch([spec], discovered, stored.configFile, undefined, this.closing.signal);
      } catch (err) {
        if (this.closing.signal.aborted) return;
        this.log.warn({ err, api: spec.name }, 'could not prefetch the models of a restored api; its replicas download them');
      }
    })();
    this.background.add(run);
    void run.finally(() => this.background.delete(run));
  }

  private endpointOwners(): Map<string, string> {
    const m = new Map<string, string>();
    for (const a of this.apis.values()) m.set(a.spec.networking.endpoint, a.spec.name);
    for (const s of this.splitters.values()) m.set(s.spec.networking.endpoint, s.spec.name);
    return m;
  }

  private isUpdating(a: ApiState): boolean {
    const s = this.deps.orchestrator.status(a.spec.name);
    return !!s && s.upToDate < a.spec.autoscaling.minReplicas && !s.crashLooping && !s.computeUnavailable;
  }

  private async upsert(spec: ApiSpec, projectDir: string, configFile: string, projectId: string): Promise<DeployResult> {
    const now = this.deps.clock.now();
    const cur = this.apis.get(spec.name);
    const url = this.deps.gateway.urlFor(spec);
    if (!cur) {
      this.unrestored.delete(spec.name);
      const nonce = randomBytes(4).toString('hex');
      const revision = revisionOf(spec, projectId, nonce);
      const stored: StoredApi = { name: spec.name, projectDir, configFile, projectId, deploymentNonce: nonce, revision, replicas: spec.autoscaling.initReplicas, lastUpdated: now, created: now };
      // The route first: a port or endpoint the gateway cannot take rejects the deploy before anything starts.
      await this.route(spec, configFile);
      await this.deps.store.putApi(stored);
      this.emit({ v: 1, type: 'api.deployed', api: spec.name, t: now, revision, action: 'created' });
      await this.install(spec, stored, undefined, true);
      return { api: spec.name, action: 'created', revision, endpoint: spec.networking.endpoint, message: `creating ${spec.name} (RealtimeAPI) at ${url}` };
    }
    const revision = revisionOf(spec, projectId, cur.stored.deploymentNonce);
    const specId = specIdOf(spec, revision);
    if (revision === cur.stored.revision && specId === cur.specId) {
      return { api: spec.name, action: 'up to date', revision, endpoint: spec.networking.endpoint, message: `${spec.name} is up to date` };
    }
    // An update keeps the current count, clamped to the new bounds (reference/cortex.md §2.4).
    const replicas = clamp(cur.stored.replicas, spec.autoscaling.minReplicas, spec.autoscaling.maxReplicas);
    const changedRevision = revision !== cur.stored.revision;
    const stored: StoredApi = { ...cur.stored, projectDir, configFile, projectId, revision, replicas, lastUpdated: changedRevision ? now : cur.stored.lastUpdated };
    // A new route that cannot be taken leaves the API serving as it was (the gateway keeps the old route).
    await this.route(spec, configFile);
    await this.deps.store.putApi(stored);
    cur.spec = spec;
    cur.stored = stored;
    cur.specId = specId;
    cur.autoscaler.reconfigure(spec);
    cur.autoscaler.setReplicas(replicas);
    await this.deps.orchestrator.apply(this.deployment(spec, revision, replicas, projectDir));
    this.emit({ v: 1, type: 'api.deployed', api: spec.name, t: now, revision, action: changedRevision ? 'updated' : 'reconfigured' });
    return changedRevision
      ? { api: spec.name, action: 'updated', revision, endpoint: spec.networking.endpoint, message: `updating ${spec.name} (RealtimeAPI): rolling to revision ${revision}` }
      : { api: spec.name, action: 'reconfigured', revision, endpoint: spec.networking.endpoint, message: `updating ${spec.name} (RealtimeAPI): autoscaling/networking applied without restarting replicas` };
  }

  /**
   * Routes the API in the gateway. A port or endpoint it cannot take is a config problem of the deploy
   * (`ConfigError`, 400 at the control API) in `configFile` (the name the deploy gave, as the other
   * problems of a deploy have it), at the field's line in the API's own copy of the file
   * (`spec.configFile`): `networking.local_port` or `networking.endpoint` where written, else the
   * API's entry (its `name:` for an endpoint, which it derives from). Other errors pass unchanged.
   */
  private async route(spec: ApiSpec, configFile: string): Promise<void> {
    const apiKeys = await this.apiKeys(spec.name, spec.networking.apiKeys?.secret, configFile, spec.configFile);
    try {
      await this.deps.gateway.upsertApi(spec, apiKeys === undefined ? undefined : { apiKeys });
    } catch (err) {
      if (err instanceof EngineError && (err.code === 'ENG_GATEWAY_LISTEN' || err.code === 'ENG_GATEWAY_ENDPOINT_TAKEN')) {
        const listen = err.code === 'ENG_GATEWAY_LISTEN';
        const field = listen ? 'networking.local_port' : 'networking.endpoint';
        const locator = new FieldLocator(await readFile(spec.configFile, 'utf8').catch(() => undefined));
        const networking = locator.item(spec.name)?.item.networking;
        const endpointWritten = networking !== null && typeof networking === 'object' && 'endpoint' in networking;
        const at = locator.of(spec.name, listen || endpointWritten ? field.split('.') : ['name']);
        throw new ConfigError([{ file: configFile, line: at.line, col: at.col, api: spec.name, field, message: err.message, severity: 'error' }], { cause: err });
      }
      throw err;
    }
  }

  /** Why the secret of `networking.api_keys` cannot be used (not set, empty, …), or undefined when it can. */
  private async apiKeySecretProblem(secret: string | undefined): Promise<string | undefined> {
    if (secret === undefined) return undefined;
    try {
      await resolveApiKeySecret(secret, this.deps.store.secretsDir, this.deps.env ?? process.env);
      return undefined;
    } catch (err) {
      if (err instanceof ApiKeySecretError) return err.message;
      return `cannot read secret ${secret}: ${err instanceof Error ? err.message : String(err)}`;
    }
  }

  /**
   * The keys of secret `secret` for the gateway (undefined without `networking.api_keys`). A secret
   * that cannot be used is a `ConfigError` at `networking.api_keys.secret` of `name` in `configFile`,
   * located in the API's own copy of the file `specFile`. The keys are never logged.
   */
  private async apiKeys(name: string, secret: string | undefined, configFile: string, specFile: string): Promise<readonly string[] | undefined> {
    if (secret === undefined) return undefined;
    try {
      const resolved = await resolveApiKeySecret(secret, this.deps.store.secretsDir, this.deps.env ?? process.env);
      this.log.info({ api: name, secret, source: resolved.source, keys: resolved.keys.length }, 'api keys loaded');
      return resolved.keys;
    } catch (err) {
      const message = err instanceof ApiKeySecretError ? err.message : `cannot read secret ${secret}: ${err instanceof Error ? err.message : String(err)}`;
      const at = new FieldLocator(await readFile(specFile, 'utf8').catch(() => undefined)).of(name, ['networking', 'api_keys', 'secret']);
      throw new ConfigError([{ file: configFile, line: at.line, col: at.col, api: name, field: 'networking.api_keys.secret', message, severity: 'error' }], { cause: err });
    }
  }

  /**
   * What the orchestrator is given for an API: with the stored project it runs (its bundle id, the
   * last segment of the project folder) and the token its pods download it with.
   */
  private deployment(spec: ApiSpec, revision: string, replicas: number, projectDir: string): ApiDeployment {
    return { spec, revision, replicas, project: { id: basename(projectDir), token: projectToken(this.projectSecret, spec.name) } };
  }

  // ---------------------------------------------------------------- projects for pods (ProjectSource)

  deployedProject(api: string): string | undefined {
    const a = this.apis.get(api);
    return a ? basename(a.stored.projectDir) : undefined;
  }

  checkProjectToken(api: string, presented: string): boolean {
    return this.projectSecret !== '' && isProjectToken(this.projectSecret, api, presented);
  }

  encodedProject(id: string): Promise<Buffer> {
    // Any deployed API with that project tells the config file (for a project stored before `.bundle` files).
    const a = [...this.apis.values()].find((x) => basename(x.stored.projectDir) === id);
    if (!a) return Promise.reject(new NotFoundError(`project ${id} is not deployed`));
    return readEncodedProject(this.deps.store.projectsDir, id, a.stored.configFile).catch((err: unknown) => {
      // Replaced and collected between the lookup and the read.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`project ${id} is not deployed`);
      throw err;
    });
  }

  /** Starts serving an API: gateway route (unless `routed`), autoscaler, replicas. */
  private async install(spec: ApiSpec, stored: StoredApi, restoredState: unknown, routed = false): Promise<void> {
    if (!routed) await this.route(spec, stored.configFile);
    const replicas = clamp(stored.replicas, spec.autoscaling.minReplicas, spec.autoscaling.maxReplicas);
    const autoscaler = this.deps.autoscalers.create(spec, { replicas, restoredState });
    const state: ApiState = {
      spec,
      stored: { ...stored, replicas },
      specId: specIdOf(spec, stored.revision),
      autoscaler,
      lastTick: null,
      lastDecision: null,
      published: NO_STATUS,
      requests: { '2xx': 0, '4xx': 0, '5xx': 0, latencyMsSum: 0 },
      monitoring: spec.monitoring ? emptyMonitoring(spec.monitoring.modelType) : undefined,
      subs: autoscaler.ticks$.subscribe({
        next: (tick) => void this.onTick(spec.name, tick),
        error: (err) => this.log.error({ err, api: spec.name }, 'autoscaler failed'),
      }),
      metricsUnavailable: false,
    };
    this.apis.set(spec.name, state);
    this.prometheus.addApi(spec.name);
    await this.deps.orchestrator.apply(this.deployment(spec, stored.revision, replicas, stored.projectDir));
    this.updateStatus(state);
  }

  delete(name: string): Promise<void> {
    return this.serialize(async () => {
      if (this.splitters.has(name)) return this.deleteSplitter(name);
      // Cortex refuses it too: the splitter's endpoint would send a share of its requests nowhere.
      const users = [...this.splitters.values()].filter((x) => x.spec.apis.some((b) => b.name === name)).map((x) => x.spec.name);
      if (users.length > 0) {
        throw new ConflictError(
          `cannot delete ${name}: it is used by ${users.length === 1 ? 'TrafficSplitter' : 'TrafficSplitters'} ${users.join(', ')} (delete ${users.length === 1 ? 'it' : 'them'} first, or deploy ${users.length === 1 ? 'it' : 'them'} without ${name})`,
        );
      }
      if (this.unrestored.delete(name)) {
        await this.deps.store.deleteApi(name);
        await this.collectProjects();
        this.emit({ v: 1, type: 'api.deleted', api: name, t: this.deps.clock.now() });
        return;
      }
      const a = this.mustGet(name);
      a.subs.unsubscribe();
      a.autoscaler.close();
      this.apis.delete(name);
      this.recorder.forget(name);
      await this.deps.gateway.removeApi(name);
      await this.deps.orchestrator.remove(name);
      await this.deps.store.deleteApi(name);
      this.prometheus.removeApi(name);
      this.emit({ v: 1, type: 'api.deleted', api: name, t: this.deps.clock.now() });
      await this.collectProjects();
    });
  }

  // ---------------------------------------------------------------- traffic splitters

  /** The deploy checks of a file's TrafficSplitters against what is deployed (traffic-splitters.ts), and their secrets. */
  private async checkSplitterDeploy(
    specs: readonly ApiSpec[],
    splitters: readonly TrafficSplitterSpec[],
    taken: ReadonlyMap<string, string>,
    locator: FieldLocator,
    configFile: string,
  ): Promise<ConfigProblem[]> {
    const at = (name: string, path: DataPath, message: string): ConfigProblem => {
      const p = locator.of(name, path);
      return { file: configFile, line: p.line, col: p.col, api: name, field: fieldText(path), message, severity: 'error' };
    };
    const deployedApis = new Map([...this.apis.values()].map((a) => [a.spec.name, a.spec]));
    const deployedSplitters = new Map([...this.splitters.values()].map((x) => [x.spec.name, x.spec]));
    const problems = checkSplitters({ splitters, fileApis: specs, deployedApis, deployedSplitters, endpointOwners: taken, problem: at });
    for (const split of splitters) {
      if (!this.deps.gateway.upsertSplitter) problems.push(at(split.name, ['kind'], 'this daemon\'s gateway cannot route TrafficSplitters'));
      const secretProblem = await this.apiKeySecretProblem(split.networking.apiKeys?.secret);
      if (secretProblem !== undefined) problems.push(at(split.name, ['networking', 'api_keys', 'secret'], secretProblem));
    }
    return problems;
  }

  /** Routes a splitter (with its keys), stores it, and publishes `splitter.weights` when its weights are new. */
  private async upsertSplitter(spec: TrafficSplitterSpec, configFile: string): Promise<DeployResult> {
    const now = this.deps.clock.now();
    const cur = this.splitters.get(spec.name);
    const revision = splitterRevision(spec);
    const url = this.deps.gateway.urlFor({ networking: { endpoint: spec.networking.endpoint, localPort: DEFAULT_GATEWAY_PORT } });
    const base = { api: spec.name, revision, endpoint: spec.networking.endpoint };
    await this.routeSplitter(spec, configFile);
    if (cur && cur.revision === revision) return { ...base, action: 'up to date', message: `${spec.name} is up to date` };
    const stored: StoredSplitter = { spec, configFile, revision, lastUpdated: now, created: cur?.created ?? now };
    await this.deps.store.putSplitter(stored);
    this.splitters.set(spec.name, stored);
    if (!cur || !sameWeights(cur.spec.apis, spec.apis)) {
      this.emit({ v: 1, type: 'splitter.weights', api: spec.name, t: now, endpoint: spec.networking.endpoint, weights: spec.apis, previous: cur ? cur.spec.apis : null });
    }
    this.log.info({ splitter: spec.name, revision, backends: spec.apis.map((b) => `${b.name}:${b.weight}`).join(' ') }, cur ? 'traffic splitter updated' : 'traffic splitter created');
    const split = spec.apis.map((b) => `${b.name} ${b.weight}%`).join(', ');
    return cur
      ? { ...base, action: 'updated', message: `updating ${spec.name} (TrafficSplitter): ${split}` }
      : { ...base, action: 'created', message: `creating ${spec.name} (TrafficSplitter) at ${url}: ${split}` };
  }

  private async routeSplitter(spec: TrafficSplitterSpec, configFile: string): Promise<void> {
    const upsert = this.deps.gateway.upsertSplitter;
    if (!upsert) throw new EngineError('ENG_SPLITTER_UNSUPPORTED', 'this daemon\'s gateway cannot route TrafficSplitters');
    const apiKeys = await this.apiKeys(spec.name, spec.networking.apiKeys?.secret, configFile, spec.configFile);
    await upsert.call(this.deps.gateway, spec, apiKeys === undefined ? undefined : { apiKeys });
  }

  private async deleteSplitter(name: string): Promise<void> {
    await this.deps.gateway.removeSplitter?.(name);
    await this.deps.store.deleteSplitter(name);
    this.splitters.delete(name);
    this.log.info({ splitter: name }, 'traffic splitter deleted');
    this.emit({ v: 1, type: 'api.deleted', api: name, t: this.deps.clock.now() });
  }

  /** Routes every stored splitter again at start (after the APIs); one that cannot be routed is logged and kept stored. */
  private async restoreSplitters(): Promise<void> {
    for (const stored of await this.deps.store.listSplitters()) {
      this.splitters.set(stored.spec.name, stored);
      try {
        await this.routeSplitter(stored.spec, stored.configFile);
        this.log.info({ splitter: stored.spec.name, revision: stored.revision }, 'traffic splitter restored');
      } catch (err) {
        this.log.error({ err, splitter: stored.spec.name }, 'could not restore traffic splitter');
      }
    }
  }

  /** `myelin get` of a splitter: its backends with their weights, readiness and the requests each got. */
  private splitterView(x: StoredSplitter): TrafficSplitterView {
    const stats = this.deps.gateway.splitterStats?.(x.spec.name);
    const apis = x.spec.apis.map((b, i) => {
      const got = stats?.backends[i];
      const a = this.apis.get(b.name);
      return {
        name: b.name,
        weight: b.weight,
        status: a ? this.summary(a).status : this.unrestored.has(b.name) ? ('error' as const) : ('not deployed' as const),
        ready: got?.ready ?? false,
        requests: got?.requests ?? 0,
        share: got?.share ?? null,
      };
    });
    return {
      kind: 'TrafficSplitter',
      name: x.spec.name,
      status: apis.some((b) => b.weight > 0 && b.ready) ? 'live' : 'unavailable',
      endpoint: x.spec.networking.endpoint,
      url: this.deps.gateway.urlFor({ networking: { endpoint: x.spec.networking.endpoint, localPort: DEFAULT_GATEWAY_PORT } }),
      revision: x.revision,
      lastUpdated: x.lastUpdated,
      created: x.created,
      ...(x.spec.networking.apiKeys ? { apiKeysSecret: x.spec.networking.apiKeys.secret } : {}),
      requests: stats?.requests ?? 0,
      unauthorized: stats?.unauthorized ?? 0,
      apis,
    };
  }

  async listSplitters(): Promise<readonly TrafficSplitterView[]> {
    return [...this.splitters.values()].map((x) => this.splitterView(x)).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** The splitter named `name`, or undefined when there is none (it may be an API). */
  async getSplitter(name: string): Promise<TrafficSplitterView | undefined> {
    const x = this.splitters.get(name);
    return x ? this.splitterView(x) : undefined;
  }

  refresh(name: string, options: { readonly force: boolean }): Promise<DeployResult> {
    return this.serialize(async () => {
      const a = this.mustGet(name);
      if (!options.force && this.isUpdating(a)) throw new ConflictError(`${name} is updating (override with --force)`);
      const nonce = randomBytes(4).toString('hex');
      const revision = revisionOf(a.spec, a.stored.projectId, nonce);
      const now = this.deps.clock.now();
      a.stored = { ...a.stored, deploymentNonce: nonce, revision, lastUpdated: now };
      a.specId = specIdOf(a.spec, revision);
      await this.deps.store.putApi(a.stored);
      await this.deps.orchestrator.apply(this.deployment(a.spec, revision, a.stored.replicas, a.stored.projectDir));
      return { api: name, action: 'updated', revision, endpoint: a.spec.networking.endpoint, message: `restarting ${name}: rolling to revision ${revision}` };
    });
  }

  // ---------------------------------------------------------------- autoscaling

  private async onTick(name: string, tick: AutoscalerTickView): Promise<void> {
    const a = this.apis.get(name);
    if (!a) return;
    a.lastTick = tick;
    this.prometheus.recordTick(name, tick, a.spec.autoscaling.targetReplicaConcurrency);
    // At zero no replica reports by design (scaled to zero is not an outage).
    if (!tick.metricsAvailable && !a.metricsUnavailable && tick.from > 0) {
      this.emit({ v: 1, type: 'metrics.unavailable', api: name, t: tick.t, replicas: tick.from, reason: tick.reason });
    }
    a.metricsUnavailable = !tick.metricsAvailable;
    // Applied through the same queue as deploy/delete/refresh, so a decision never interleaves with them.
    await this.serialize(async () => {
      if (this.apis.get(name) !== a) return; // deleted or replaced meanwhile
      if (tick.to !== tick.from && tick.to !== a.stored.replicas) await this.applyDecision(a, tick);
      // The history is saved every tick, so a crash loses at most one tick of stabilization memory.
      await this.persistAutoscaler(a);
    });
  }

  /**
   * The gateway holds `held` requests for `api` and no replica is ready (scaled to zero, or still
   * starting): a `scaling.poke` event, and the autoscaler decides now (a rise is applied as any
   * decision, through `onTick`). Unknown APIs are ignored.
   */
  poke(api: string, held: number): void {
    const a = this.apis.get(api);
    if (!a) return;
    this.emit({ v: 1, type: 'scaling.poke', api, t: this.deps.clock.now(), held, replicas: a.stored.replicas });
    this.log.info({ api, held, replicas: a.stored.replicas }, 'poked by held requests');
    a.autoscaler.poke?.(held);
  }

  private async applyDecision(a: ApiState, tick: AutoscalerTickView): Promise<void> {
    const name = a.spec.name;
    const from = a.stored.replicas;
    a.lastDecision = { t: tick.t, from, to: tick.to, reason: tick.reason };
    a.stored = { ...a.stored, replicas: tick.to };
    this.emit({
      v: 1,
      type: 'scaling.decided',
      api: name,
      t: tick.t,
      from,
      to: tick.to,
      policy: tick.policy,
      avgInFlight: tick.avgInFlight ?? 0,
      target: a.spec.autoscaling.targetReplicaConcurrency,
      raw: tick.raw ?? 0,
      recommendation: tick.recommendation ?? tick.to,
      reason: tick.reason,
    });
    this.log.info({ api: name, from, to: tick.to, reason: tick.reason }, 'autoscaling event');
    try {
      await this.deps.orchestrator.scale(name, tick.to);
      await this.deps.store.putApi(a.stored);
    } catch (err) {
      this.log.error({ err, api: name }, 'could not apply scaling decision');
    }
  }

  private async persistAutoscaler(a: ApiState): Promise<void> {
    try {
      await this.deps.store.putAutoscalerState(a.spec.name, a.autoscaler.state());
    } catch (err) {
      this.log.warn({ err, api: a.spec.name }, 'could not persist autoscaler state');
    }
  }

  private onSample(s: MetricSample): void {
    const a = this.apis.get(s.api);
    if (!a) return;
    this.recorder.observe(s);
    this.prometheus.recordSample(s);
    a.requests['2xx'] += s.requests['2xx'];
    a.requests['4xx'] += s.requests['4xx'];
    a.requests['5xx'] += s.requests['5xx'];
    a.requests.latencyMsSum += s.latencyMsSum;
    if (s.monitoring && a.monitoring) a.monitoring = mergeMonitoring(a.monitoring, s.monitoring);
  }

  // ---------------------------------------------------------------- replicas → events, status

  /**
   * The port's replica list and status counts are the one source of `replica.*`, `api.status` and
   * `rollout.progress`, for every target (Kubernetes has no crash or rollout stream of its own).
   */
  private onReplicas(list: readonly ReplicaInfo[]): void {
    const { events, gone } = diffReplicaEvents(this.replicas, list, this.deps.clock.now());
    for (const e of events) this.emit(e);
    for (const r of gone) this.prometheus.forgetReplica(r.api, r.id);
    this.replicas = list;
    for (const a of this.apis.values()) this.updateStatus(a);
  }

  private updateStatus(a: ApiState): void {
    const rs = this.deps.orchestrator.status(a.spec.name);
    this.prometheus.recordReplicas(a.spec.name, a.stored.replicas, rs);
    const input = { api: a.spec.name, revision: a.stored.revision, minReplicas: a.spec.autoscaling.minReplicas, replicas: rs };
    const { events, memory } = diffStatusEvents(a.published, input, this.deps.clock.now());
    a.published = memory;
    for (const e of events) this.emit(e);
  }

  // ---------------------------------------------------------------- queries

  private mustGet(name: string): ApiState {
    const a = this.apis.get(name);
    if (!a) throw new NotFoundError(`api ${name} is not deployed`);
    return a;
  }

  private summary(a: ApiState): ApiSummary {
    return apiSummary(this.viewInput(a));
  }

  private viewInput(a: ApiState): ApiSummaryInput {
    return { spec: a.spec, stored: a.stored, replicaStatus: this.deps.orchestrator.status(a.spec.name), requests: a.requests, url: this.deps.gateway.urlFor(a.spec) };
  }

  async list(): Promise<readonly ApiSummary[]> {
    const unrestored = [...this.unrestored.values()].map((u) => unrestoredSummary(u.stored, u.reason));
    const all = [...[...this.apis.values()].map((a) => this.summary(a)), ...unrestored];
    return all.sort((x, y) => x.name.localeCompare(y.name));
  }

  async get(name: string): Promise<ApiDetail> {
    const u = this.unrestored.get(name);
    if (u) return unrestoredDetail(u.stored, u.reason);
    const a = this.mustGet(name);
    return apiDetail({ ...this.viewInput(a), replicas: this.replicas, lastTick: a.lastTick, lastDecision: a.lastDecision, ...(a.monitoring ? { monitoring: a.monitoring } : {}) });
  }

  logs$(name: string, options: { readonly follow: boolean; readonly tail?: number }): Observable<string> {
    this.mustGet(name);
    return this.deps.orchestrator.logs$(name, options);
  }

  events$(options: { readonly api?: string; readonly sinceMs?: number }): Observable<EngineEvent> {
    // An API that is not deployed yet is not an error: it may be deployed while the client listens.
    return this.history.follow(options.sinceMs, options.api);
  }

  recentEvents(options: { readonly api?: string; readonly sinceMs: number }): readonly EngineEvent[] {
    return this.history.since(options.sinceMs, options.api);
  }

  metrics(): Promise<string> {
    return this.prometheus.text();
  }

  shutdown(): void {
    this.deps.onShutdown();
  }
}

/** Longest line of tool output carried by a `deploy.progress` event (the daemon log has it whole). */
const MAX_PROGRESS_LINE = 2000;

function clamp(n: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, n));
}
