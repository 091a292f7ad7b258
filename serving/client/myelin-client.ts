/**
 * A typed client for a Node program that drives a myelin daemon over its control API
 * (serving/daemon/control-api.ts): deploy, get, delete, refresh, logs, predict, and the daemon's events
 * as an rxjs `Observable`.
 *
 * Errors are coded `EngineError`s: 401 is `UnauthorizedError` (`ENG_UNAUTHORIZED`), 404 `NotFoundError`
 * (`ENG_NOT_FOUND`), 409 `ConflictError` (`ENG_CONFLICT`), an invalid configuration `ConfigError`
 * (`ENG_CONFIG_INVALID`, with every problem), a daemon that cannot be reached `ClientError`
 * (`ENG_DAEMON_UNREACHABLE`), any other HTTP error `ClientError` with the daemon's code (or
 * `ENG_HTTP_<status>`) and `status`. An aborted request rejects with the signal's `AbortError`.
 *
 * ## How `events$` resumes
 * The daemon keeps its event history in memory only (serving/daemon/event-history.ts): it does not
 * survive a restart, and within one daemon the events are kept in the order they were recorded, which
 * is not always the order of their times `t`. Resuming by time (`since` = the last event's `t`) could
 * therefore miss an event recorded after the drop with a slightly older `t`, and could not tell two
 * events of the same millisecond apart. So the stream resumes by id instead, which is exact:
 * - the daemon writes `id: <boot>-<seq>` before every event (`seq` counts the events it recorded; `boot`
 *   is new each time a daemon starts), and a live-only stream begins with the comment
 *   `: position <id>` (where it starts);
 * - after a dropped connection (the daemon restarting, the network) the client reconnects with
 *   back-off and sends `Last-Event-ID` with the last id it got (or the position when it got none; or,
 *   when it had asked for `since` and got nothing yet, the same `since` again);
 * - the daemon replays every retained event after that id; for an id of another boot (the daemon was
 *   restarted) every event the new daemon holds, all of which are newer than anything the old one sent.
 *   The client also drops any event whose id it has passed already.
 * What this cannot give back: events no history holds any more, i.e. those the old daemon recorded
 * after its control API closed while it was stopping (replicas draining), and events pushed out of the
 * history's 10,000 while the client was away. A daemon that writes no ids (older than this client) is
 * resumed with `since` = the last event's `t`, dropping events already seen at that millisecond.
 */
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { Observable } from 'rxjs';
import { ConfigError, EngineError, type ConfigProblem } from '../../core/errors.js';
import type { DeployProgressEvent, EngineEvent } from '../../core/events/engine-event.js';
import { explainInvalidEngineEvent } from '../../core/events/event-validator.js';
import { ConflictError, isLoopbackHost, NotFoundError } from '../daemon/control-api.js';
import type { ApiDetail, ApiSummary, DeployResponse, DeployResult } from '../daemon/daemon-service.js';
import { packProject } from '../daemon/project-bundle.js';
import { defaultStateDir } from '../daemon/state-store.js';

import type { TrafficSplitterView } from '../daemon/traffic-splitters.js';

export type { ApiDetail, ApiSummary, DeployResponse, DeployResult } from '../daemon/daemon-service.js';
export type { TrafficSplitterBackendView, TrafficSplitterView } from '../daemon/traffic-splitters.js';

/** A request to the daemon or an API that failed for a reason other than the ones `core/errors.ts` names. */
export class ClientError extends EngineError {
  /** The HTTP status of the answer, when there was one. */
  readonly status?: number;
  constructor(code: string, message: string, options?: ErrorOptions & { status?: number }) {
    super(code, message, options);
    this.status = options?.status;
  }
}

/** The daemon refused the token (401): none was found, or it is not the daemon's. */
export class UnauthorizedError extends ClientError {
  constructor(message: string) {
    super('ENG_UNAUTHORIZED', message, { status: 401 });
  }
}

/** `deploy(..., { wait: true })` saw an API reach `error`; the upload itself was accepted (`response`). */
export class ApiFailedError extends ClientError {
  constructor(
    readonly api: ApiSummary,
    /** What the daemon answered to the upload. */
    readonly response?: DeployResponse,
    /** The file's APIs as last seen. */
    readonly apis?: readonly ApiSummary[],
  ) {
    super('ENG_API_FAILED', `${api.name} is ${api.status}${api.message ? `: ${api.message}` : ''}`);
  }
}

/** `deploy(..., { wait: true })` gave up waiting (`ENG_DEPLOY_TIMEOUT`); the deploy goes on in the daemon. */
export class DeployTimeoutError extends ClientError {
  constructor(
    message: string,
    readonly timeoutMs: number,
    readonly response?: DeployResponse,
    readonly apis?: readonly ApiSummary[],
  ) {
    super('ENG_DEPLOY_TIMEOUT', message);
  }
}

/** The control API the client talks to when none is given and `MYELIN_URL` is not set. */
export const DEFAULT_CONTROL_URL = 'http://127.0.0.1:8889';

export interface MyelinClientOptions {
  /** The control API, e.g. `http://127.0.0.1:8889`; default `MYELIN_URL`, else http://127.0.0.1:8889. */
  readonly url?: string;
  /** Bearer token; else `MYELIN_TOKEN`; else `<stateDir>/token` when `url` is a loopback address. */
  readonly token?: string;
  /** The daemon's state folder, for its token (default: the daemon's default state folder). */
  readonly stateDir?: string;
}

/** What `deploy` reports while it works. */
export type DeployProgress =
  /** An API's status changed (while waiting). */
  | { readonly type: 'status'; readonly api: ApiSummary }
  /**
   * A line of the daemon's preparation (requirements.txt install, model download) while the upload is
   * answered; each line once, even the ones written before the client's event stream connected.
   */
  | { readonly type: 'output'; readonly event: DeployProgressEvent }
  /** The daemon accepted the upload (before `wait` begins). */
  | { readonly type: 'deployed'; readonly response: DeployResponse };

export interface DeployOptions {
  /** Wait until every API of the file is live and up to date (or one fails). Default false. */
  readonly wait?: boolean;
  /** Replace an update in progress. Default false. */
  readonly force?: boolean;
  readonly onProgress?: (p: DeployProgress) => void;
  /**
   * Report the daemon's preparation lines (`output`) to `onProgress`: it follows the event stream
   * while the upload is answered. Default true when `onProgress` is given.
   */
  readonly followOutput?: boolean;
  /** How long `wait` may take; default 10 minutes (`DeployTimeoutError` then; the deploy goes on). */
  readonly timeoutMs?: number;
  /** How often `wait` asks for the statuses; default 500 ms. */
  readonly pollMs?: number;
  readonly signal?: AbortSignal;
}

export interface DeployOutcome extends DeployResponse {
  /** With `wait`: the APIs of the file once live. */
  readonly apis?: readonly ApiSummary[];
}

export interface LogsOptions {
  /** Go on with new lines until the loop stops (`break`) or `signal` aborts. */
  readonly follow?: boolean;
  /** Only the last `tail` lines of each replica. */
  readonly tail?: number;
  readonly signal?: AbortSignal;
}

export interface PredictOptions {
  /** Added to the endpoint URL's query. */
  readonly query?: Readonly<Record<string, string>>;
  readonly headers?: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal;
}

export interface PredictResponse<T = unknown> {
  readonly status: number;
  /** The body parsed as JSON, or the text when it is not JSON. */
  readonly body: T;
  /** The body as it came. */
  readonly text: string;
  readonly headers: Headers;
}

export interface EventsOptions {
  /** Only this API's events. */
  readonly api?: string;
  /** Replay retained events with `t >= since` (ms since the epoch) first; default: live events only. */
  readonly since?: number;
  /** First delay before reconnecting (doubled each failed attempt); default 250 ms. */
  readonly reconnectDelayMs?: number;
  /** Longest delay between attempts; default 5 s. */
  readonly maxReconnectDelayMs?: number;
  /**
   * Reconnect after a dropped connection (default true). With false the stream errors when the daemon
   * cannot be reached or refuses it, and completes when the connection ends (the daemon stops): what
   * `myelin events --follow` does.
   */
  readonly reconnect?: boolean;
}

export interface EventHistoryOptions {
  /** Only this API's events. */
  readonly api?: string;
  /** Only events with `t >= since` (ms since the epoch); default: every retained event. */
  readonly since?: number;
  readonly signal?: AbortSignal;
}

interface ErrorPayload {
  readonly error?: string;
  readonly code?: string;
  readonly problems?: ConfigProblem[];
}

/** Drives one myelin daemon over its control API. */
export class MyelinClient {
  readonly url: string;
  constructor(private readonly options: MyelinClientOptions = {}) {
    this.url = (options.url ?? process.env.MYELIN_URL ?? DEFAULT_CONTROL_URL).replace(/\/+$/, '');
  }

  /**
   * Packs the project (the folder of `fileOrFolder`, or the folder itself with its `myelin.yaml`, else
   * `cortex.yaml`) as `myelin deploy` does and uploads it. The daemon validates the file: an invalid
   * one rejects with `ConfigError`.
   */
  async deploy(fileOrFolder: string, options: DeployOptions = {}): Promise<DeployOutcome> {
    const file = await configFileOf(resolve(fileOrFolder));
    const bundle = await packProject(dirname(file), basename(file));
    const onProgress = options.onProgress;
    const output = onProgress && options.followOutput !== false ? this.followOutput(Date.now(), (event) => onProgress({ type: 'output', event })) : undefined;
    let response: DeployResponse;
    try {
      response = await this.json<DeployResponse>('POST', '/v1/deploy', { bundle, force: options.force === true }, options.signal);
    } finally {
      await output?.stop();
    }
    onProgress?.({ type: 'deployed', response });
    if (!options.wait) return response;
    return { ...response, apis: await this.waitLive(response, options) };
  }

  /**
   * Delivers the `deploy.progress` events recorded from `sinceMs` on while an upload is answered: it
   * follows the event stream, and `stop()` then delivers from the daemon's retained events what the
   * stream had not (it may connect after the first lines), so each line arrives once.
   */
  private followOutput(sinceMs: number, deliver: (e: DeployProgressEvent) => void): { stop(): Promise<void> } {
    const keyOf = (e: DeployProgressEvent): string => `${e.api}\0${e.t}\0${e.stage}\0${e.line}`;
    const delivered = new Map<string, number>();
    const take = (e: EngineEvent): void => {
      if (e.type !== 'deploy.progress') return;
      delivered.set(keyOf(e), (delivered.get(keyOf(e)) ?? 0) + 1);
      deliver(e);
    };
    const sub = this.events$({ since: sinceMs, reconnect: false }).subscribe({ next: take, error: () => undefined });
    return {
      stop: async () => {
        sub.unsubscribe();
        let retained: EngineEvent[];
        try {
          retained = await this.eventHistory({ since: sinceMs });
        } catch {
          return;
        }
        const again = new Map<string, number>();
        for (const e of retained) {
          if (e.type !== 'deploy.progress') continue;
          const k = keyOf(e);
          const n = (again.get(k) ?? 0) + 1;
          again.set(k, n);
          if (n > (delivered.get(k) ?? 0)) take(e);
        }
      },
    };
  }

  private async waitLive(response: DeployResponse, options: DeployOptions): Promise<ApiSummary[]> {
    const names = response.results.map((r) => r.api);
    const timeoutMs = options.timeoutMs ?? 600_000;
    const deadline = Date.now() + timeoutMs;
    const last = new Map<string, string>();
    for (;;) {
      const mine = (await this.get(undefined, options.signal)).filter((a) => names.includes(a.name));
      let done = mine.length === names.length;
      for (const a of mine) {
        const key = JSON.stringify([a.status, a.upToDate, a.stale, a.requested, a.message]);
        if (last.get(a.name) !== key) {
          last.set(a.name, key);
          options.onProgress?.({ type: 'status', api: a });
        }
        // `compute unavailable` can pass (a rollout frees room as old replicas stop): only `error` ends the wait early.
        if (a.status === 'error') throw new ApiFailedError(a, response, mine);
        // An API at zero replicas (`min_replicas: 0`) is serving: its first request starts one.
        if ((a.status !== 'live' && a.status !== 'scaled to zero') || a.stale > 0) done = false;
      }
      if (done) return mine;
      if (Date.now() > deadline) throw new DeployTimeoutError(`gave up waiting for ${names.join(', ')} after ${timeoutMs} ms; the deploy goes on`, timeoutMs, response, mine);
      await sleep(options.pollMs ?? 500, options.signal);
    }
  }

  /** Every API (`myelin get`). */
  get(api?: undefined, signal?: AbortSignal): Promise<ApiSummary[]>;
  /** One API with its replicas, autoscaler and monitoring (`myelin get <api>`); `NotFoundError` when it does not exist. */
  get(api: string, signal?: AbortSignal): Promise<ApiDetail>;
  async get(api?: string, signal?: AbortSignal): Promise<ApiSummary[] | ApiDetail> {
    if (api !== undefined) return this.json<ApiDetail>('GET', apiPath(api), undefined, signal);
    return (await this.json<{ apis: ApiSummary[] }>('GET', '/v1/apis', undefined, signal)).apis;
  }

  /** Every API and every TrafficSplitter, in one request (what `myelin get` shows). */
  async list(signal?: AbortSignal): Promise<{ apis: ApiSummary[]; splitters: TrafficSplitterView[] }> {
    const r = await this.json<{ apis: ApiSummary[]; splitters?: TrafficSplitterView[] }>('GET', '/v1/apis', undefined, signal);
    return { apis: r.apis, splitters: r.splitters ?? [] };
  }

  /** A RealtimeAPI's detail, or a TrafficSplitter's (`kind: 'TrafficSplitter'`): whichever `name` is. */
  describe(name: string, signal?: AbortSignal): Promise<ApiDetail | TrafficSplitterView> {
    return this.json<ApiDetail | TrafficSplitterView>('GET', apiPath(name), undefined, signal);
  }

  /** Stops every replica of `api` and forgets it (a TrafficSplitter's name removes the splitter). */
  delete(api: string): Promise<{ deleted: string }> {
    return this.json('DELETE', apiPath(api));
  }

  /** Asks the daemon to stop gracefully: it drains and stops every replica, then exits. */
  shutdown(): Promise<unknown> {
    return this.json('POST', '/v1/shutdown');
  }

  /** The events the daemon retains (the last 10,000), oldest first, without following. */
  async eventHistory(options: EventHistoryOptions = {}): Promise<EngineEvent[]> {
    const q = new URLSearchParams({ since: String(options.since ?? 0), follow: 'false' });
    if (options.api !== undefined) q.set('api', options.api);
    return (await this.json<{ events: EngineEvent[] }>('GET', `/v1/events?${q}`, undefined, options.signal)).events;
  }

  /** A rolling restart of every replica (a new revision, same spec). */
  refresh(api: string, options: { readonly force?: boolean } = {}): Promise<DeployResult> {
    return this.json('POST', `${apiPath(api)}/refresh${options.force ? '?force=true' : ''}`);
  }

  /**
   * The replicas' output, a line at a time (each prefixed by its replica). With `follow` it goes on
   * until the loop stops or `signal` aborts; leaving the loop ends the request.
   */
  async *logs(api: string, options: LogsOptions = {}): AsyncGenerator<string, void, undefined> {
    const q = new URLSearchParams();
    if (options.follow) q.set('follow', '1');
    if (options.tail !== undefined) q.set('tail', String(options.tail));
    const abort = new AbortController();
    const stop = (): void => abort.abort(options.signal?.reason);
    options.signal?.addEventListener('abort', stop, { once: true });
    try {
      if (options.signal?.aborted) stop();
      const res = await this.request('GET', `${apiPath(api)}/logs?${q}`, undefined, abort.signal);
      try {
        yield* readLines(res);
      } catch (err) {
        // Our own abort (the loop left, or `signal`) ends the lines; anything else is a failure.
        if (!abort.signal.aborted) throw new ClientError('ENG_STREAM_FAILED', `the log stream of ${api} broke: ${(err as Error).message}`, { cause: err });
        if (options.signal?.aborted) throw err;
      }
    } finally {
      options.signal?.removeEventListener('abort', stop);
      abort.abort();
    }
  }

  /**
   * POSTs `payload` as JSON to `api`'s endpoint (found with `get(api)`) and returns the answer, whatever
   * its status: `body` is parsed JSON, or the text when it is not JSON.
   */
  async predict<T = unknown>(api: string, payload: unknown, options: PredictOptions = {}): Promise<PredictResponse<T>> {
    const detail = await this.get(api, options.signal);
    const url = new URL(detail.url);
    for (const [k, v] of Object.entries(options.query ?? {})) url.searchParams.set(k, v);
    let res: Response;
    try {
      res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...options.headers }, body: JSON.stringify(payload), signal: options.signal });
    } catch (err) {
      if (options.signal?.aborted) throw err;
      throw new ClientError('ENG_API_UNREACHABLE', `cannot reach ${api} at ${url.origin}${url.pathname} (${describeFetchError(err)})`, { cause: err });
    }
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: the text
    }
    return { status: res.status, body: body as T, text, headers: res.headers };
  }

  /**
   * The daemon's events (`GET /v1/events`, server-sent events), each checked against the event schema.
   * Each subscription opens its own stream, ended on unsubscribe. A dropped connection is retried with
   * back-off and resumed without loss or duplicates (see the file's comment). Errors on a 4xx answer
   * (e.g. `UnauthorizedError`) and on an event that fails the schema (`ClientError`
   * `ENG_EVENT_INVALID`); never completes otherwise.
   */
  events$(options: EventsOptions = {}): Observable<EngineEvent> {
    return new Observable<EngineEvent>((subscriber) => {
      const abort = new AbortController();
      const firstDelayMs = options.reconnectDelayMs ?? 250;
      const maxDelayMs = options.maxReconnectDelayMs ?? 5_000;
      let lastId: string | undefined;
      let lastT: number | undefined;
      /** For a daemon without ids: how often each event (as JSON) was delivered at `lastT`, and seen on this connection. */
      let deliveredAtLastT = new Map<string, number>();
      let onThisConnection = new Map<string, number>();
      const deliver = (msg: EventSourceMessage): void => {
        let e: unknown;
        try {
          e = JSON.parse(msg.data);
        } catch (err) {
          throw new ClientError('ENG_EVENT_INVALID', `the daemon sent an event that is not JSON: ${(err as Error).message}`, { cause: err });
        }
        const why = explainInvalidEngineEvent(e);
        if (why !== '') throw new ClientError('ENG_EVENT_INVALID', `the daemon sent an invalid event: ${why}`);
        const event = e as EngineEvent;
        if (msg.id !== undefined) {
          if (lastId !== undefined && !isAfter(msg.id, lastId)) return;
          lastId = msg.id;
        } else {
          const key = JSON.stringify(event);
          if (event.t === lastT) {
            const n = (onThisConnection.get(key) ?? 0) + 1;
            onThisConnection.set(key, n);
            if (n <= (deliveredAtLastT.get(key) ?? 0)) return;
            deliveredAtLastT.set(key, n);
          } else if (lastT === undefined || event.t > lastT) {
            lastT = event.t;
            deliveredAtLastT = new Map([[key, 1]]);
            onThisConnection = new Map([[key, 1]]);
          }
        }
        subscriber.next(event);
      };
      void (async () => {
        let delayMs = firstDelayMs;
        while (!abort.signal.aborted) {
          const q = new URLSearchParams();
          if (options.api !== undefined) q.set('api', options.api);
          const headers: Record<string, string> = { accept: 'text/event-stream' };
          if (lastId !== undefined) headers['last-event-id'] = lastId;
          else if (lastT !== undefined) q.set('since', String(lastT));
          else if (options.since !== undefined) q.set('since', String(options.since));
          onThisConnection = new Map();
          let res: Response | undefined;
          try {
            res = await this.request('GET', `/v1/events?${q}`, undefined, abort.signal, headers);
          } catch (err) {
            if (abort.signal.aborted) return;
            if (options.reconnect === false) {
              subscriber.error(err);
              return;
            }
            const status = (err as ClientError).status;
            // The daemon answered and refused (a wrong token, a bad request): retrying will not help.
            if (err instanceof EngineError && !(status === undefined || status >= 500 || status === 429)) {
              subscriber.error(err);
              return;
            }
          }
          if (res) {
            delayMs = firstDelayMs;
            const parser = createParser({
              onEvent: deliver,
              onComment: (c) => {
                const position = /^\s*position (\S+)\s*$/.exec(c)?.[1];
                if (position !== undefined && lastId === undefined && lastT === undefined && options.since === undefined) lastId = position;
              },
            });
            try {
              const decoder = new TextDecoder();
              for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) parser.feed(decoder.decode(chunk, { stream: true }));
            } catch (err) {
              if (abort.signal.aborted) return;
              if (err instanceof ClientError && err.code === 'ENG_EVENT_INVALID') {
                subscriber.error(err);
                return;
              }
              // The connection dropped (a daemon that stops closes it): reconnect below, or complete.
            }
            if (options.reconnect === false) {
              if (!abort.signal.aborted) subscriber.complete();
              return;
            }
          }
          if (abort.signal.aborted) return;
          await sleep(delayMs, abort.signal).catch(() => undefined);
          delayMs = Math.min(maxDelayMs, delayMs * 2);
        }
      })();
      return () => abort.abort();
    });
  }

  // ------------------------------------------------------------------------------------- HTTP

  /** Read each time: a daemon restarted on a fresh state folder has a new token. */
  private token(): Promise<string | undefined> {
    return controlToken(this.url, this.options);
  }

  /** Sends a request to the control API; an answer that is not 2xx rejects with a coded error. */
  private async request(method: string, path: string, body?: unknown, signal?: AbortSignal, extraHeaders: Record<string, string> = {}): Promise<Response> {
    const headers: Record<string, string> = { ...extraHeaders };
    const token = await this.token();
    if (token) headers.authorization = `Bearer ${token}`;
    // The control API accepts changes as JSON only.
    if (method !== 'GET' && method !== 'HEAD') headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(`${this.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
    } catch (err) {
      if (signal?.aborted) throw err;
      if ((err as { cause?: { code?: string } }).cause?.code === 'UND_ERR_HEADERS_TIMEOUT') {
        // fetch waits 5 minutes for an answer; the daemon goes on with the request meanwhile.
        throw new ClientError('ENG_DAEMON_TIMEOUT', `the myelin daemon at ${this.url} did not answer ${method} ${path.replace(/\?.*$/, '')} within 5 minutes (a long requirements.txt install or model download?); it goes on with it`, { cause: err });
      }
      throw new ClientError('ENG_DAEMON_UNREACHABLE', `cannot reach the myelin daemon at ${this.url} (${describeFetchError(err)})`, { cause: err });
    }
    if (!res.ok) throw await errorOf(res, `${method} ${path.replace(/\?.*$/, '')}`);
    return res;
  }

  private async json<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    return (await (await this.request(method, path, body, signal)).json()) as T;
  }
}

/** The coded error for a control API answer that is not 2xx. */
async function errorOf(res: Response, what: string): Promise<EngineError> {
  let payload: ErrorPayload = {};
  try {
    payload = (await res.json()) as ErrorPayload;
  } catch {
    // not JSON
  }
  const message = payload.error ?? `${what}: HTTP ${res.status}`;
  if (payload.problems && payload.problems.length > 0) return new ConfigError(payload.problems);
  if (res.status === 401) return new UnauthorizedError(message);
  if (res.status === 404 && (payload.code === undefined || payload.code === 'ENG_NOT_FOUND')) return new NotFoundError(message);
  if (res.status === 409 && (payload.code === undefined || payload.code === 'ENG_CONFLICT')) return new ConflictError(message);
  return new ClientError(payload.code ?? `ENG_HTTP_${res.status}`, message, { status: res.status });
}

/** True when SSE id `id` comes after `last`: a greater sequence number of the same boot, or another boot. */
function isAfter(id: string, last: string): boolean {
  const a = /^(.*)-(\d+)$/.exec(id);
  const b = /^(.*)-(\d+)$/.exec(last);
  if (!a || !b || a[1] !== b[1]) return id !== last;
  return Number(a[2]) > Number(b[2]);
}

async function configFileOf(path: string): Promise<string> {
  let isDir: boolean;
  try {
    isDir = (await stat(path)).isDirectory();
  } catch (err) {
    throw new ClientError('ENG_CONFIG_NOT_FOUND', `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  if (!isDir) return path;
  for (const name of ['myelin.yaml', 'cortex.yaml']) {
    const file = join(path, name);
    if (await stat(file).then(() => true, () => false)) return file;
  }
  throw new ClientError('ENG_CONFIG_NOT_FOUND', `neither myelin.yaml nor cortex.yaml is in ${path}`);
}

function apiPath(api: string): string {
  return `/v1/apis/${encodeURIComponent(api)}`;
}

function describeFetchError(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * The bearer token for the control API at `url`: `token`, else `$MYELIN_TOKEN`, else `<stateDir>/token`
 * (default state folder) when `url` is on loopback: the local daemon's token goes to the local daemon
 * only, never to another host. The CLI's client uses it too.
 */
export async function controlToken(url: string, o: { readonly token?: string; readonly stateDir?: string }): Promise<string | undefined> {
  if (o.token) return o.token;
  if (process.env.MYELIN_TOKEN) return process.env.MYELIN_TOKEN;
  if (!isLoopbackHost(new URL(url).hostname.replace(/^\[|\]$/g, ''))) return undefined;
  try {
    return (await readFile(join(o.stateDir ?? defaultStateDir(), 'token'), 'utf8')).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** A fetch body line by line (logs, server-sent events); the CLI reads its streams with it too. */
export async function* readLines(res: Response): AsyncGenerator<string, void, undefined> {
  if (!res.body) return;
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      yield buf.slice(0, i);
      buf = buf.slice(i + 1);
    }
  }
  buf += decoder.decode();
  if (buf) yield buf;
}
