import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { performance } from 'node:perf_hooks';
import type { Clock } from '../../core/clock.js';
import type { ApiSpec } from '../../core/config/api-spec.js';
import type { MetricSample } from '../../core/metrics/metric-sample.js';
import type { Logger } from '../../core/ports/logger.js';
import type { MetricsTransport } from '../../core/ports/metrics-transport.js';
import { logDebugStage } from '../../core/predictor/debug-stage.js';
import { predictorRunsInPython } from '../../core/predictor/python-predictor.js';
import { SystemClock } from '../composition/system-clock.js';
import type { DirectRoute, DirectStatsMessage } from './direct-connection-protocol.js';
import { DirectConnections, doneOrTimeout } from './direct-connections.js';
import { AdmissionQueue, SlotCancelledError, type AdmissionCounts } from './admission-queue.js';
import { InFlightWindow } from './in-flight-window.js';
import { InThreadExecutor } from './in-thread-executor.js';
import { PredictionMonitor } from './prediction-monitor.js';
import { ReplicaProtocolV2 } from './protocol-v2.js';
import type { ExecutorEvents, PredictFailure, PredictTask, PredictorExecutor } from './predictor-executor.js';
import { builtinPredictorModules, normalizeModuleSpecifier } from './predictor-modules.js';
import { ReplicaMetrics } from './replica-metrics.js';
import { ReplicaSampler, cpuUtilization } from './replica-sampler.js';
import { ClientGoneError, RequestError, jsonValueLimit, parsePayload, parseQuery, readBody, type PayloadOptions } from './request-payload.js';
import { JSON_TYPE } from './response-encoding.js';
import { WorkerPoolExecutor } from './worker-pool-executor.js';

/** Where predictions run: `auto` picks in-thread for one instance per replica, worker threads for more. */
export type ExecutorChoice = 'auto' | 'in-thread' | 'worker-threads';

/** Defaults of `headersTimeoutMs` and `requestTimeoutMs` (the gateway's are the same). */
export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;

export interface ReplicaOptions {
  /** The resolved API spec this replica serves. */
  readonly spec: ApiSpec;
  readonly log: Logger;
  /** Loopback by default; the replica is meant to sit behind the gateway. */
  readonly host?: string;
  /** 0 (default) picks a free port; ignored when `socketPath` is set. */
  readonly port?: number;
  /** Serve on a unix socket instead of TCP. */
  readonly socketPath?: string;
  /** Metric samples are published here every `sampleIntervalMs`; none are published without one. */
  readonly transport?: MetricsTransport;
  readonly clock?: Clock;
  /** Unique within the API; default `<api>-<6 hex>`. */
  readonly replicaId?: string;
  /** The API revision the replica serves; default a hash of the spec. */
  readonly revision?: string;
  /** Metric sample interval (ms, default 1000). */
  readonly sampleIntervalMs?: number;
  /** How long `close()` waits for in-flight requests by default (ms, default 30 000). */
  readonly shutdownGraceMs?: number;
  /** Default `auto`: in-thread when `processesPerReplica` is 1 (docs/predictors.md has the numbers). */
  readonly executor?: ExecutorChoice;
  /** Predictor plugin modules (file URLs, paths, package names); default every built-in `plugins/predictor-*`. */
  readonly predictorModules?: readonly string[];
  /** Extra plugin modules loaded after `predictorModules` (e.g. an npm package adding a predictor type). */
  readonly extraPredictorModules?: readonly string[];
  /** Deepest JSON accepted (default 1000 levels); deeper bodies get 400. */
  readonly maxJsonDepth?: number;
  /** Worker threads: grace for a cancelled, timed-out prediction to give its slot back (ms, default 1000). */
  readonly hungWorkerGraceMs?: number;
  /** Idle keep-alive connections are closed after this (ms, default 65 000: longer than usual proxy idle timeouts). */
  readonly keepAliveTimeoutMs?: number;
  /** A connection whose request head has not fully arrived after this is closed (ms, default 10 000). */
  readonly headersTimeoutMs?: number;
  /**
   * A request whose head and body have not fully arrived after this is answered 408 and closed (ms,
   * default 60 000; 0 disables). A stalled upload is cut this way; it never counted in flight.
   */
  readonly requestTimeoutMs?: number;
  /** Called once when the replica fails for good (its predictors cannot load): the owner should stop it. */
  readonly onFatal?: (err: Error) => void;
  /** Direct connections (docs/gateway.md): where their stats go, every second while they change (the daemon, over IPC). */
  readonly reportDirect?: (message: DirectStatsMessage) => void;
}

export interface ReplicaAddress {
  readonly host?: string;
  readonly port?: number;
  readonly socketPath?: string;
  /** `http://host:port` for TCP; for a unix socket `http://localhost` (use `socketPath` in the client). */
  readonly url: string;
}

export type ReplicaState = 'loading' | 'ready' | 'draining' | 'failed' | 'closed';

/** A running replica (from `startReplica`). */
export interface Replica extends AsyncDisposable {
  readonly id: string;
  readonly revision: string;
  readonly address: ReplicaAddress;
  readonly executorMode: PredictorExecutor['mode'];
  /** Resolves when every predictor instance is constructed; rejects when one fails to load. */
  readonly ready: Promise<void>;
  state(): ReplicaState;
  counts(): AdmissionCounts;
  /**
   * Graceful stop: stops accepting connections, answers the requests already in flight (new requests on
   * open connections are still served, with `Connection: close`) for up to `graceMs`, then closes every
   * connection and the predictors (their `close()`), and publishes a last sample with `ready: false`.
   */
  close(options?: { readonly graceMs?: number }): Promise<void>;
  /**
   * Serves a client connection the daemon's gateway accepted and handed over (direct connections,
   * docs/gateway.md), `head` being the bytes the gateway already read from it. A replica that is not
   * ready or serving closes it.
   */
  adoptConnection(socket: Socket, head: Buffer, route: DirectRoute): void;
  /** Keeps at most `keep` direct connections; the others close after their next response or once idle. */
  shedDirect(keep: number): void;
  /** The gateway's routes changed: connections handed with an older route go back through it (direct-connections.ts). */
  revokeDirect(generation: number): void;
}

/** GET `/` message, as Cortex's. */
export const SUMMARY_MESSAGE = 'make a prediction by sending a post request to this endpoint with a json payload';
const REQUEST_ID = /^[\x21-\x7e]{1,200}$/;
const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});
const PREDICT_PATHS = new Set(['/', '/predict', '/predict/']);

/**
 * Cortex's listing of an API's models on GET `/` (`{ <name>: { versions, timestamps } }`, the single
 * model named `_cortex_default`), plus each version's `status` (`loaded`, `loading`, `not loaded`), from
 * the predictor's `describe().models`. Undefined when the predictor has no models.
 */
export function modelsSummary(models: unknown): Record<string, unknown> | undefined {
  if (!Array.isArray(models) || models.length === 0) return undefined;
  const out: Record<string, unknown> = {};
  for (const m of models as Array<Record<string, unknown>>) {
    if (typeof m?.name !== 'string') continue;
    out[m.name] = {
      versions: Array.isArray(m.versions) ? m.versions : [],
      ...(Array.isArray(m.timestamps) ? { timestamps: m.timestamps } : {}),
      ...(m.status && typeof m.status === 'object' ? { status: m.status } : {}),
    };
  }
  return out;
}

/**
 * Starts one replica: an HTTP server (node:http) on a loopback port or unix socket, serving the
 * predictor of `spec`. Resolves once listening; the predictor instances are constructed in the
 * background (`replica.ready`; until then predictions get 503 with Retry-After and `/healthz/ready` 503).
 *
 * Routes: POST `/predict` and `/` (predict); GET/HEAD `/` and `/predict` (summary with model metadata);
 * OPTIONS on those (CORS preflight); GET `/healthz/live`, `/healthz/ready`, `/metrics` (Prometheus).
 * Request rules and status codes: docs/predictors.md. Every response carries `x-request-id` (an
 * incoming printable one of at most 200 characters is kept; else `<process prefix>-<counter>`).
 */
export async function startReplica(options: ReplicaOptions): Promise<Replica> {
  const r = new ReplicaServer(options);
  await r.listen();
  return r;
}

class ReplicaServer implements Replica {
  readonly id: string;
  readonly revision: string;
  readonly executorMode: PredictorExecutor['mode'];
  readonly ready: Promise<void>;
  address!: ReplicaAddress;

  private current: ReplicaState = 'loading';
  private readonly spec: ApiSpec;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly server: Server;
  private readonly admission: AdmissionQueue;
  private readonly window: InFlightWindow;
  private readonly sampler: ReplicaSampler;
  private readonly metrics: ReplicaMetrics;
  private readonly monitor: PredictionMonitor | undefined;
  private readonly executor: PredictorExecutor;
  private readonly payloadOptions: PayloadOptions;
  private readonly maxBodyBytes: number;
  private readonly releaseSlot = (): void => this.admission.releaseSlot();
  private sampleTimer: NodeJS.Timeout | undefined;
  private cpuAtLastSample = process.cpuUsage();
  private monitoringWarned = false;
  private drained: (() => void) | undefined;
  private closing: Promise<void> | undefined;
  private v2: ReplicaProtocolV2 | undefined;
  private direct: DirectConnections | undefined;

  constructor(private readonly options: ReplicaOptions) {
    const spec = options.spec;
    this.spec = spec;
    this.clock = options.clock ?? new SystemClock();
    this.id = options.replicaId ?? `${spec.name}-${randomBytes(3).toString('hex')}`;
    this.revision = options.revision ?? createHash('sha256').update(JSON.stringify(spec)).digest('hex').slice(0, 12);
    this.log = options.log.child({ component: 'replica/server', api: spec.name, replica: this.id });
    this.maxBodyBytes = spec.networking.maxBodyBytes;
    this.payloadOptions = { maxJsonDepth: options.maxJsonDepth ?? 1000, maxJsonValues: jsonValueLimit(this.maxBodyBytes) };
    this.window = new InFlightWindow(this.clock.now());
    this.admission = new AdmissionQueue(spec.autoscaling.maxReplicaConcurrency, 0, (inFlight) => this.onInFlightChanged(inFlight));
    this.sampler = new ReplicaSampler({ api: spec.name, replica: this.id, revision: this.revision });
    this.metrics = new ReplicaMetrics({ api: spec.name, replica: this.id }, {
      counts: () => this.admission.counts(),
      isReady: () => this.serving(),
      modelStats: () => this.executor?.modelStats?.(),
    });
    this.monitor = spec.monitoring ? new PredictionMonitor(spec.monitoring) : undefined;

    const modules = [...(options.predictorModules ?? builtinPredictorModules()), ...(options.extraPredictorModules ?? [])].map(
      normalizeModuleSpecifier,
    );
    const events: ExecutorEvents = {
      onDidChangeCapacity: (capacity) => this.admission.setCapacity(capacity),
      onDidFail: (err) => this.fail(err),
      onDidRunBatch: (size) => this.metrics.recordBatch(size),
    };
    const choice = options.executor ?? 'auto';
    // A Python predictor runs its own worker processes (processes × threads): its bridge stays in this thread.
    const python = predictorRunsInPython(spec);
    const useWorkers = !python && (choice === 'worker-threads' || (choice === 'auto' && spec.predictor.processesPerReplica > 1));
    const executorLog = options.log.child({ api: spec.name, replica: this.id });
    this.executor = useWorkers
      ? new WorkerPoolExecutor({ spec, log: executorLog, moduleSpecifiers: modules, events, hungWorkerGraceMs: options.hungWorkerGraceMs })
      : new InThreadExecutor(spec, executorLog, modules, events);
    this.executorMode = this.executor.mode;

    this.server = createServer(this.serverOptions(), (req, res) => this.onRequest(req, res));
    this.server.on('clientError', this.onClientError);

    this.ready = this.load();
    // The owner may never await `ready` (it learns failures through onFatal and the logs).
    this.ready.catch(() => {});
  }

  state(): ReplicaState {
    return this.current;
  }

  counts(): AdmissionCounts {
    return this.admission.counts();
  }

  /** Ready and able to predict now: a predictor whose workers all died (being restarted) is not ready. */
  private serving(): boolean {
    return this.current === 'ready' && this.executor.capacity() > 0;
  }

  async listen(): Promise<void> {
    const { socketPath } = this.options;
    const host = this.options.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      const done = (): void => {
        this.server.off('error', reject);
        resolve();
      };
      if (socketPath) this.server.listen(socketPath, done);
      else this.server.listen(this.options.port ?? 0, host, done);
    });
    if (socketPath) this.address = { socketPath, url: 'http://localhost' };
    else {
      const a = this.server.address() as AddressInfo;
      const urlHost = a.family === 'IPv6' ? `[${a.address}]` : a.address;
      this.address = { host: a.address, port: a.port, url: `http://${urlHost}:${a.port}` };
    }
    const interval = this.options.sampleIntervalMs ?? 1000;
    this.sampleTimer = setInterval(() => this.publishSample(), interval);
    this.sampleTimer.unref();
    this.log.info({ address: this.address, executor: this.executorMode, revision: this.revision }, 'replica listening');
  }

  close(options: { readonly graceMs?: number } = {}): Promise<void> {
    this.closing ??= this.shutdown(options.graceMs ?? this.options.shutdownGraceMs ?? 30_000);
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close({ graceMs: 0 });
  }

  /** Options of the listener, and of the server of direct connections (whose keep-alive timeout is the gateway's). */
  private serverOptions(): ServerOptions {
    const requestTimeout = this.options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const headersTimeout = this.options.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS;
    return {
      keepAliveTimeout: this.options.keepAliveTimeoutMs ?? 65_000,
      // Node measures both from the start of each request, not of the connection: an idle keep-alive
      // connection is not cut by them. Node requires headersTimeout <= requestTimeout when it is on.
      headersTimeout: requestTimeout > 0 ? Math.min(headersTimeout, requestTimeout) : headersTimeout,
      requestTimeout,
      connectionsCheckingInterval: 1000,
    };
  }

  private readonly onClientError = (err: NodeJS.ErrnoException, socket: Duplex): void => {
    const timedOut = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    this.log.debug({ err: { code: err.code, message: err.message } }, timedOut ? 'request not received in time' : 'malformed HTTP request');
    // As Node itself would without this listener: answer when no response has started, then close.
    const started = (socket as unknown as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true;
    if (socket.writable && !started) {
      socket.end(`HTTP/1.1 ${timedOut ? '408 Request Timeout' : '400 Bad Request'}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    } else socket.destroy();
  };

  adoptConnection(socket: Socket, head: Buffer, route: DirectRoute): void {
    this.direct ??= new DirectConnections({
      handle: (req, res) => this.onRequest(req, res),
      serverOptions: this.serverOptions(),
      onClientError: this.onClientError,
      log: this.log,
      report: (m) => this.options.reportDirect?.(m),
    });
    if (this.current !== 'ready' && this.current !== 'draining') this.direct.reject(socket, route.api);
    else this.direct.adopt(socket, head, route);
  }

  shedDirect(keep: number): void {
    this.direct?.shed(keep);
  }

  revokeDirect(generation: number): void {
    this.direct?.revoke(generation);
  }

  private async load(): Promise<void> {
    const started = performance.now();
    try {
      await this.executor.start();
    } catch (err) {
      this.fail(err as Error);
      throw err;
    }
    if (this.current !== 'loading') return;
    this.admission.setCapacity(this.executor.capacity());
    this.current = 'ready';
    this.log.info({ loadMs: Math.round(performance.now() - started), capacity: this.executor.capacity() }, 'replica ready');
  }

  private fail(err: Error): void {
    if (this.current === 'failed' || this.current === 'closed') return;
    this.current = 'failed';
    this.log.error({ err }, 'replica failed: the predictor cannot be loaded');
    this.admission.rejectWaiters(new RequestError(503, 'the predictor failed; this replica is stopping'));
    this.options.onFatal?.(err);
  }

  private async shutdown(graceMs: number): Promise<void> {
    const wasReady = this.current === 'ready' || this.current === 'loading';
    if (wasReady) this.current = 'draining';
    this.log.info({ ...this.admission.counts(), graceMs, directConnections: this.direct?.connections ?? 0 }, 'replica draining');
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    // Direct connections are not cut while idle (a client may be writing its next request into one):
    // each closes after its next response, or once idle for a second (direct-connections.ts).
    const directDrained = this.direct?.drain(graceMs);
    if (this.admitted() > 0) await doneOrTimeout(graceMs, (done) => (this.drained = done));
    this.drained = undefined;
    if (this.admitted() > 0) this.log.warn(this.admission.counts(), 'grace period over; closing connections with requests in flight');
    await directDrained;
    this.server.closeAllConnections();
    await closed;
    if (this.sampleTimer) clearInterval(this.sampleTimer);
    this.current = 'closed';
    this.publishSample();
    try {
      await this.executor.close();
    } catch (err) {
      this.log.error({ err }, 'closing the predictor failed');
    }
    this.log.info({}, 'replica closed');
  }

  /** Requests admitted and not answered: in flight, or still sending their body (a drain waits for both). */
  private admitted(): number {
    const c = this.admission.counts();
    return c.inFlight + c.receiving;
  }

  private onInFlightChanged(inFlight: number): void {
    this.window.record(this.clock.now(), inFlight);
    if (this.drained && this.admitted() === 0) this.drained();
  }

  private publishSample(): void {
    const cpu = process.cpuUsage();
    const usedMicros = cpu.user - this.cpuAtLastSample.user + (cpu.system - this.cpuAtLastSample.system);
    this.cpuAtLastSample = cpu;
    const now = this.clock.now();
    const sample: MetricSample = this.sampler.take(now, this.window, {
      ready: this.serving(),
      monitoring: this.monitor?.cut(),
    });
    // Absent without a CPU request (`compute.cpu: null`): see `cpuUtilization`.
    const utilization = cpuUtilization(usedMicros, sample.intervalMs, this.spec.compute.cpuMillis);
    const withCpu: MetricSample = utilization === undefined ? sample : { ...sample, cpuUtilization: utilization };
    if (!this.options.transport) return;
    try {
      this.options.transport.publish(withCpu);
    } catch (err) {
      this.log.warn({ err }, 'metric sample not published');
    }
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (path.startsWith('/v2') && (path.length === 3 || path[3] === '/')) return this.protocolV2().handle(req, res, path);
    if (PREDICT_PATHS.has(path)) {
      const method = req.method;
      if (method === 'POST') {
        void this.predict(req, res, q === -1 ? '' : url.slice(q + 1));
        return;
      }
      if (method === 'GET' || method === 'HEAD') return this.summary(req, res);
      if (method === 'OPTIONS') return this.preflight(req, res);
      return this.sendJson(req, res, 405, { error: `method ${method} not allowed` }, { allow: 'GET, HEAD, POST, OPTIONS' });
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      const known = path === '/healthz/live' || path === '/healthz/ready' || path === '/metrics';
      return this.sendJson(req, res, known ? 405 : 404, { error: known ? `method ${req.method} not allowed` : 'not found' }, known ? { allow: 'GET, HEAD' } : {});
    }
    switch (path) {
      case '/healthz/live':
        return this.sendJson(req, res, this.current === 'failed' ? 503 : 200, { status: this.current === 'failed' ? 'failed' : 'live' });
      case '/healthz/ready':
        return this.sendJson(req, res, this.serving() ? 200 : 503, { status: this.current === 'ready' && !this.serving() ? 'no predictor worker alive' : this.current });
      case '/metrics':
        void this.metrics.registry.metrics().then(
          (text) => this.send(req, res, 200, { 'content-type': this.metrics.registry.contentType }, text),
          (err: unknown) => {
            this.log.error({ err }, 'metrics rendering failed');
            this.sendJson(req, res, 500, { error: 'internal server error' });
          },
        );
        return;
      default:
        return this.sendJson(req, res, 404, { error: 'not found' });
    }
  }

  private summary(req: IncomingMessage, res: ServerResponse): void {
    if (this.current === 'loading' || this.current === 'failed') {
      return this.sendJson(req, res, 503, { error: this.unavailableMessage() }, { 'retry-after': '1' });
    }
    const described = this.executor.describe();
    const models = modelsSummary(described.models);
    this.sendJson(req, res, 200, { message: SUMMARY_MESSAGE, model_metadata: described, ...(models ? { models } : {}) });
  }

  private preflight(req: IncomingMessage, res: ServerResponse): void {
    const asked = req.headers['access-control-request-headers'];
    this.send(req, res, 204, {
      'access-control-allow-origin': '*',
      'access-control-allow-methods': 'GET, HEAD, POST, OPTIONS',
      'access-control-allow-headers': typeof asked === 'string' && asked ? asked : '*',
      'access-control-max-age': '86400',
    }, '');
  }

  private unavailableMessage(): string {
    return this.current === 'failed' ? 'the predictor failed to load' : 'the predictor is still loading';
  }

  /** The prediction path: admission, body, payload, slot, predictor, response. */
  private async predict(req: IncomingMessage, res: ServerResponse, qs: string): Promise<void> {
    const startMs = performance.now();
    const requestId = requestIdOf(req);
    if (this.current !== 'ready' && this.current !== 'draining') {
      return this.answerError(res, startMs, requestId, 503, this.unavailableMessage(), { 'retry-after': '1' });
    }
    if (!this.admission.tryEnter()) {
      return this.answerError(res, startMs, requestId, 503, `too many requests in flight (max_replica_concurrency is ${this.admission.maxInFlight})`, {
        'retry-after': '1',
      });
    }
    let received = false;
    try {
      const body = await readBody(req, this.maxBodyBytes);
      // In flight (for autoscaling) from here on: a stalled upload holds a place, never a replica.
      this.admission.received();
      received = true;
      const query = parseQuery(qs);
      const parsed = parsePayload(body, req.headers['content-type'], this.payloadOptions);
      const payload = parsed instanceof Promise ? await parsed : parsed;
      const debug = query.debug === 'true';
      if (debug) logDebugStage(this.log.child({ requestId }), 'raw sample', payload);
      if (!this.admission.tryAcquire()) await this.waitForSlot(res);
      const task: PredictTask = { requestId, payload, query, headers: req.headers, debug, body };
      const outcome = await this.executor.run(task, this.releaseSlot);
      if (outcome.ok) {
        if (this.monitor && outcome.monitored !== undefined && !this.monitor.record(outcome.monitored)) this.warnMonitoring(requestId);
        const r = outcome.response;
        this.answer(res, startMs, requestId, r.status, r.headers, r.body);
      } else {
        this.answerFailure(res, startMs, requestId, outcome.failure);
      }
    } catch (err) {
      if (err instanceof ClientGoneError || err instanceof SlotCancelledError) {
        this.log.debug({ requestId }, 'client went away before its answer');
        res.destroy();
      } else if (err instanceof RequestError) {
        this.answerError(res, startMs, requestId, err.status, err.message, err.closeConnection ? { connection: 'close' } : {});
      } else {
        this.log.error({ requestId, err }, 'prediction request failed');
        this.answerError(res, startMs, requestId, 500, 'internal server error');
      }
    } finally {
      this.admission.leave(received);
    }
  }

  /** Queues for a slot; gives up (SlotCancelledError) when the client goes away while queued. */
  private async waitForSlot(res: ServerResponse): Promise<void> {
    const waiter = this.admission.enqueue();
    const onClose = (): void => waiter.cancel();
    res.once('close', onClose);
    try {
      await waiter.granted;
    } finally {
      res.off('close', onClose);
    }
  }

  private answerFailure(res: ServerResponse, startMs: number, requestId: string, f: PredictFailure): void {
    switch (f.kind) {
      case 'http':
        this.metrics.recordPredictorError('http');
        return this.answerError(res, startMs, requestId, f.status, f.message, f.headers);
      case 'exception':
        this.metrics.recordPredictorError('exception');
        this.log.error({ requestId, err: rebuildError(f) }, 'predictor failed');
        return this.answerError(res, startMs, requestId, 500, 'internal server error');
      case 'timeout':
        this.metrics.recordPredictorError('timeout');
        this.log.warn({ requestId, timeoutMs: f.timeoutMs }, 'prediction timed out');
        return this.answerError(res, startMs, requestId, 504, `prediction timed out after ${f.timeoutMs} ms`);
      case 'unavailable':
        this.metrics.recordPredictorError('unavailable');
        this.log.warn({ requestId, reason: f.message }, 'prediction lost with its worker');
        return this.answerError(res, startMs, requestId, 503, f.message, { 'retry-after': '1' });
    }
  }

  /** `{"error": message}` (plus `request_id` on 5xx) with the request's status accounting. */
  private answerError(res: ServerResponse, startMs: number, requestId: string, status: number, message: string, headers: Readonly<Record<string, string>> = NO_HEADERS): void {
    const body = JSON.stringify(status >= 500 ? { error: message, request_id: requestId } : { error: message });
    this.answer(res, startMs, requestId, status, headers, body, JSON_TYPE);
  }

  /**
   * Writes a prediction response and accounts for it. Headers go to `writeHead` as one flat array:
   * on this path an object spread (`{ ...headers, more }`) costs microseconds per request.
   * `contentType`, when given, replaces any content-type in `headers`.
   */
  private answer(
    res: ServerResponse,
    startMs: number,
    requestId: string,
    status: number,
    headers: Readonly<Record<string, string>>,
    body: string | Uint8Array,
    contentType?: string,
  ): void {
    if (res.headersSent || res.destroyed) return;
    const flat: string[] = [];
    for (const k in headers) {
      if (contentType !== undefined && k === 'content-type') continue;
      flat.push(k, headers[k]);
    }
    if (contentType !== undefined) flat.push('content-type', contentType);
    flat.push(
      'x-request-id',
      requestId,
      'access-control-allow-origin',
      '*',
      'content-length',
      String(typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength),
    );
    if (this.current === 'draining' || this.current === 'failed' || this.current === 'closed') flat.push('connection', 'close');
    try {
      res.writeHead(status, flat);
    } catch (err) {
      // Headers a predictor chose that HTTP cannot carry (bad characters): a predictor error.
      this.log.error({ requestId, err }, 'predictor response headers are invalid');
      this.metrics.recordPredictorError('exception');
      const fallback = JSON.stringify({ error: 'internal server error', request_id: requestId });
      status = 500;
      res.writeHead(500, ['content-type', JSON_TYPE, 'x-request-id', requestId, 'content-length', String(Buffer.byteLength(fallback))]);
      body = fallback;
    }
    res.end(body);
    const latencyMs = performance.now() - startMs;
    this.sampler.recordResponse(status, latencyMs);
    this.metrics.recordResponse(status, latencyMs);
  }

  /** Non-prediction responses (health, metrics, summary): not counted as predictions. */
  private sendJson(req: IncomingMessage, res: ServerResponse, status: number, value: unknown, headers: Readonly<Record<string, string>> = {}): void {
    this.send(req, res, status, Object.assign({}, headers, { 'content-type': JSON_TYPE }), JSON.stringify(value));
  }

  private send(req: IncomingMessage, res: ServerResponse, status: number, headers: Readonly<Record<string, string>>, body: string): void {
    const out: Record<string, string> = Object.assign({}, headers);
    out['x-request-id'] = requestIdOf(req);
    out['content-length'] = String(Buffer.byteLength(body));
    if (this.current === 'draining' || this.current === 'failed' || this.current === 'closed') out.connection = 'close';
    res.writeHead(status, out);
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  /** The Open Inference Protocol v2 routes (serving/replica/protocol-v2.ts), made on first use. */
  private protocolV2(): ReplicaProtocolV2 {
    this.v2 ??= new ReplicaProtocolV2({
      spec: this.spec,
      log: this.log,
      admission: this.admission,
      executor: this.executor,
      releaseSlot: this.releaseSlot,
      state: () => this.current,
      serving: () => this.serving(),
      requestId: requestIdOf,
      answer: (res, startMs, id, status, headers, body, contentType) => this.answer(res, startMs, id, status, headers, body, contentType),
      answerError: (res, startMs, id, status, message, headers) => this.answerError(res, startMs, id, status, message, headers),
      answerFailure: (res, startMs, id, failure) => this.answerFailure(res, startMs, id, failure),
      sendJson: (req, res, status, value, headers) => this.sendJson(req, res, status, value, headers),
    });
    return this.v2;
  }

  private warnMonitoring(requestId: string): void {
    if (this.monitoringWarned) return;
    this.monitoringWarned = true;
    this.log.warn(
      { requestId, monitoring: this.spec.monitoring },
      'prediction has no value prediction monitoring can use (classification: string or integer; regression: number; set monitoring.key for objects); warned once',
    );
  }
}

/**
 * Request ids made here: a random prefix per process and a counter, `<16 hex>-<base 36 count>`
 * (e.g. `3f9c…-1a`): unique across replicas in practice, and far cheaper than a UUID per request.
 */
const ID_PREFIX = randomBytes(8).toString('hex');
let idCounter = 0;

function requestIdOf(req: IncomingMessage): string {
  const incoming = req.headers['x-request-id'];
  if (typeof incoming === 'string' && REQUEST_ID.test(incoming)) return incoming;
  return `${ID_PREFIX}-${(++idCounter).toString(36)}`;
}

/** The predictor's exception as an Error again (it may come from a worker as plain data), for pino's err serializer. */
function rebuildError(f: { readonly name: string; readonly message: string; readonly stack?: string }): Error {
  const e = new Error(f.message);
  e.name = f.name;
  if (f.stack) e.stack = f.stack;
  return e;
}
