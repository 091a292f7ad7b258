import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { filter, type Subscription } from 'rxjs';
import { ConfigError, EngineError } from '../../core/errors.js';
import type { DaemonService } from './daemon-service.js';
import { currentEventId, eventId, eventsAfter } from './event-history.js';
import type { ProjectBundle } from './project-bundle.js';
import { BUNDLE_MEDIA_TYPE, BundleError, checkBundle, MAX_PROJECT_BYTES } from './project-bundle.js';
import { RequirementsError } from './python-env-cache.js';
import { DashboardRoutes, dashboardSourceOf, type DashboardSource } from '../dashboard/dashboard-routes.js';
import { WhatIfError } from '../dashboard/what-if-error.js';

/** An API that does not exist (404 on the control API). */
export class NotFoundError extends EngineError {
  constructor(what: string) {
    super('ENG_NOT_FOUND', what);
  }
}

/** A request the daemon refuses as it stands (409), e.g. `iris is updating (override with --force)`. */
export class ConflictError extends EngineError {
  constructor(message: string) {
    super('ENG_CONFLICT', message);
  }
}

/** The deployed projects, for `GET /v1/projects/<id>?api=<name>` (the daemon). */
export interface ProjectSource {
  /** The bundle id of the project `api` runs now; undefined when it is not deployed. */
  deployedProject(api: string): string | undefined;
  /** True when `token` is `api`'s project token (`project-tokens.ts`), compared in constant time. */
  checkProjectToken(api: string, token: string): boolean;
  /** The encoded bundle (`encodeBundle`) of a deployed project; `NotFoundError` otherwise. */
  encodedProject(id: string): Promise<Buffer>;
}

export interface ControlApiOptions {
  readonly host: string;
  readonly port: number;
  readonly service: DaemonService;
  readonly log: Logger;
  /**
   * Required as `Authorization: Bearer <token>`. The daemon always sets it (loopback too: other local
   * users must not drive it); undefined is for embedding programs that guard access themselves.
   */
  readonly token?: string;
  /** Where the token is kept, named in the 401 message. */
  readonly tokenFile?: string;
  /** More Prometheus text served after the service's own on `GET /metrics` (the gateway's series). */
  readonly extraMetrics?: () => Promise<string>;
  /** Serves `GET /v1/projects/<id>?api=<name>` to pods; absent, that route is 404. */
  readonly projects?: ProjectSource;
  /** The recording the dashboard charts and re-runs (default: the service's, when it is the daemon). */
  readonly dashboard?: DashboardSource;
}

/** False when a request names an Origin other than the control API's own (a page elsewhere calling it). */
export function isSameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return req.headers['sec-fetch-site'] !== 'cross-site';
  return origin === `http://${req.headers.host ?? ''}`;
}

/** True when a Host header names a loopback host (with or without a port); absent counts as loopback (HTTP/1.0). */
export function isLoopbackHostHeader(host: string | undefined): boolean {
  if (host === undefined) return true;
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '');
  return isLoopbackHost(name.toLowerCase());
}

/** True for 127.0.0.0/8, ::1 and `localhost`. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Bytes a streaming response (logs, events) may hold for a slow client before it is disconnected. */
const MAX_STREAM_BUFFER_BYTES = 8 * 1024 * 1024;

// Upload JSON carries base64 (4/3 of the bytes) plus framing.
const MAX_DEPLOY_BODY = Math.ceil((MAX_PROJECT_BYTES * 4) / 3) + 1024 * 1024;

/**
 * The daemon's control API: HTTP + JSON on 127.0.0.1:8889 by default.
 * Routes: `GET /healthz`, `POST /v1/deploy`, `GET /v1/apis` (`{ apis, splitters }`), `GET|DELETE /v1/apis/<name>` (an API, or a TrafficSplitter with `kind`),
 * `POST /v1/apis/<name>/refresh`, `GET /v1/apis/<name>/logs?follow=1&tail=N` (text, streamed),
 * `GET /v1/events?api=&since=<ms>` (server-sent events with `id:` lines; `Last-Event-ID` resumes after that event), `GET /metrics` (Prometheus), `POST /v1/shutdown`,
 * `GET /v1/projects/<id>?api=<name>` (the encoded project bundle, for pods; the daemon token or the API's project token),
 * the dashboard: `GET /` and `/v1/dashboard/*` (serving/dashboard/dashboard-routes.ts; a session cookie opens the read-only routes).
 * A request with a foreign `Origin` is refused (403).
 * Errors are JSON `{ error, code, problems? }` with 400 (invalid config, a requirements.txt that cannot be installed), 401, 404, 409 or 500.
 */
export class ControlApi {
  private server?: Server;
  private readonly log: Logger;
  private readonly streams = new Set<Subscription>();
  private uploading = false;
  private readonly dashboard: DashboardRoutes;
  constructor(private readonly options: ControlApiOptions) {
    this.log = options.log.child({ component: 'daemon/control-api' });
    this.dashboard = new DashboardRoutes({ service: options.service, source: options.dashboard ?? dashboardSourceOf(options.service), token: options.token, log: options.log });
  }

  async start(): Promise<AddressInfo> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => this.fail(res, err));
    });
    server.keepAliveTimeout = 5_000;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address() as AddressInfo;
    this.log.info({ host: addr.address, port: addr.port, auth: this.options.token !== undefined }, 'control api listening');
    return addr;
  }

  async close(): Promise<void> {
    for (const s of this.streams) s.unsubscribe();
    this.streams.clear();
    const server = this.server;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private authorized(req: IncomingMessage): boolean {
    const token = this.options.token;
    if (token === undefined) return true;
    const header = req.headers.authorization ?? '';
    const m = /^Bearer (.+)$/.exec(header);
    if (!m) return false;
    const a = Buffer.from(m[1]);
    const b = Buffer.from(token);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://control');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (path === '/healthz') return this.json(res, 200, { ok: true });
    const projectRoute = /^\/v1\/projects\/([^/]+)$/.exec(path);
    if (projectRoute && this.options.projects && (method === 'GET' || method === 'HEAD')) return this.project(req, res, method, projectRoute[1], url, this.options.projects);
    if (!this.hostAllowed(req)) {
      // Bound to loopback (or without a token), a foreign Host is a DNS-rebinding page: refuse it before anything else.
      return this.refuseHost(req, res);
    }
    if (!isSameOrigin(req)) {
      // A page of another site (or a sandboxed one) never drives the daemon, whatever it holds.
      return this.json(res, 403, { error: `refusing Origin ${JSON.stringify(req.headers.origin ?? '')}: the control API answers its own origin only`, code: 'ENG_FORBIDDEN' });
    }
    // The dashboard page and its bundle (docs/dashboard.md): its own token/session check.
    if (await this.dashboard.page(req, res, url)) return;
    if (method !== 'GET' && method !== 'HEAD' && !/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
      // Browsers send text/plain or form POSTs cross-origin without asking: only JSON changes anything here.
      return this.json(res, 415, { error: 'requests that change anything must be sent as content-type: application/json', code: 'ENG_UNSUPPORTED_MEDIA_TYPE' });
    }
    // A dashboard session (cookie) may read and run what-ifs; changes keep needing the bearer token.
    if (!this.authorized(req) && !(DashboardRoutes.sessionRoute(method, path) && this.dashboard.hasSession(req))) {
      res.setHeader('www-authenticate', 'Bearer');
      return this.json(res, 401, { error: this.unauthorizedMessage(), code: 'ENG_UNAUTHORIZED' });
    }
    if (path.startsWith('/v1/dashboard/') && (await this.dashboard.api(req, res, url))) return;
    const svc = this.options.service;
    if (path === '/metrics' && method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
      const extra = this.options.extraMetrics ? `\n${await this.options.extraMetrics()}` : '';
      res.end((await svc.metrics()) + extra);
      return;
    }
    if (path === '/v1/deploy' && method === 'POST') {
      // One upload at a time: a project may be hundreds of MiB in memory while it is decoded.
      if (this.uploading) return this.json(res, 429, { error: 'another deploy is being uploaded; retry when it is done', code: 'ENG_BUSY' });
      this.uploading = true;
      try {
        const body = (await readJson(req, MAX_DEPLOY_BODY)) as { bundle?: ProjectBundle; force?: boolean };
        if (!body || typeof body !== 'object' || !body.bundle) {
          return this.json(res, 400, { error: 'expected { bundle: { configFile, files: [...] }, force? }', code: 'ENG_BAD_REQUEST' });
        }
        checkBundle(body.bundle);
        return this.json(res, 200, await svc.deploy(body.bundle, { force: body.force === true }));
      } finally {
        this.uploading = false;
      }
    }
    if (path === '/v1/apis' && method === 'GET') return this.json(res, 200, { apis: await svc.list(), splitters: (await svc.listSplitters?.()) ?? [] });
    if (path === '/v1/events' && method === 'GET') return this.sse(req, res, url);
    if (path === '/v1/shutdown' && method === 'POST') {
      this.json(res, 202, { ok: true });
      svc.shutdown();
      return;
    }
    const m = /^\/v1\/apis\/([a-z0-9-]{1,63})(\/(refresh|logs))?$/.exec(path);
    if (m) {
      const name = m[1];
      const sub = m[3];
      if (!sub && method === 'GET') return this.json(res, 200, (await svc.getSplitter?.(name)) ?? (await svc.get(name)));
      if (!sub && method === 'DELETE') {
        await svc.delete(name);
        return this.json(res, 200, { deleted: name });
      }
      if (sub === 'refresh' && method === 'POST') {
        return this.json(res, 200, await svc.refresh(name, { force: url.searchParams.get('force') === 'true' }));
      }
      if (sub === 'logs' && method === 'GET') return this.logs(req, res, name, url);
    }
    return this.json(res, 404, { error: `no route for ${method} ${path}`, code: 'ENG_NOT_FOUND' });
  }

  /**
   * `GET /v1/projects/<id>?api=<name>`: the encoded bundle `<name>` runs, for its pods' init container
   * (`myelin fetch-project`). Authorized by the daemon token or by `<name>`'s project token, which
   * grants this route and that API's current project only.
   *
   * The one route that may answer a non-loopback Host with a project token: pods reach the daemon by
   * an address of this machine or a cluster Service name, never `localhost`, and the daemon then listens
   * on that interface (`--host`). The foreign-Host refusal exists against DNS rebinding: a web page that
   * makes the browser send its requests here. Such a page cannot know a project token (an HMAC of the
   * daemon's secret), so a request bearing a valid one is not that attack; and what the token opens is
   * read-only, one API's project files, which its pods get anyway. Every other route, and this one with
   * the daemon token, keeps the refusal.
   */
  private async project(req: IncomingMessage, res: ServerResponse, method: string, id: string, url: URL, projects: ProjectSource): Promise<void> {
    const api = url.searchParams.get('api') ?? '';
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const byProjectToken = api !== '' && bearer !== undefined && projects.checkProjectToken(api, bearer);
    if (!byProjectToken && !this.hostAllowed(req)) return this.refuseHost(req, res);
    if (!byProjectToken && !this.authorized(req)) {
      res.setHeader('www-authenticate', 'Bearer');
      return this.json(res, 401, {
        error: api === '' ? this.unauthorizedMessage() : `missing or wrong bearer token for the project of ${api} (the daemon's token, or the project token the daemon gave ${api}'s pods as MYELIN_PROJECT_TOKEN)`,
        code: 'ENG_UNAUTHORIZED',
      });
    }
    if (api === '') return this.json(res, 400, { error: 'expected ?api=<name>: the API whose project this is', code: 'ENG_BAD_REQUEST' });
    const deployed = projects.deployedProject(api);
    if (deployed === undefined) return this.json(res, 404, { error: `api ${api} is not deployed`, code: 'ENG_NOT_FOUND' });
    if (deployed !== id) return this.json(res, 404, { error: `api ${api} does not run project ${id} (it runs ${deployed})`, code: 'ENG_NOT_FOUND' });
    const etag = `"${id}"`;
    // Content-addressed: the same id is the same bytes, so a pod that has them asks with If-None-Match.
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, { etag });
      res.end();
      return;
    }
    const bytes = await projects.encodedProject(id);
    res.writeHead(200, { 'content-type': BUNDLE_MEDIA_TYPE, 'content-length': bytes.length, etag, 'cache-control': 'private, immutable' });
    res.end(method === 'HEAD' ? undefined : bytes);
  }

  /** False for a foreign Host where the control API answers loopback names only (see `handle`). */
  private hostAllowed(req: IncomingMessage): boolean {
    return !((this.options.token === undefined || isLoopbackHost(this.options.host)) && !isLoopbackHostHeader(req.headers.host));
  }

  private refuseHost(req: IncomingMessage, res: ServerResponse): void {
    this.json(res, 403, { error: `refusing Host ${JSON.stringify(req.headers.host ?? '')}: the control API answers loopback names only`, code: 'ENG_FORBIDDEN' });
  }

  private unauthorizedMessage(): string {
    return `missing or wrong bearer token (the daemon's token is in ${this.options.tokenFile ?? '<state-dir>/token'}; the CLI reads it from there or from MYELIN_TOKEN)`;
  }

  private async logs(req: IncomingMessage, res: ServerResponse, name: string, url: URL): Promise<void> {
    const follow = ['1', 'true'].includes(url.searchParams.get('follow') ?? '');
    const tailParam = url.searchParams.get('tail');
    const tail = tailParam === null ? undefined : Math.max(0, Number.parseInt(tailParam, 10) || 0);
    const lines$ = this.options.service.logs$(name, { follow, tail });
    await this.stream(req, res, 'text/plain; charset=utf-8', (write, end, fail) =>
      lines$.subscribe({ next: (l) => write(`${l}\n`), complete: end, error: fail }),
    );
  }

  private async sse(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const api = url.searchParams.get('api') ?? undefined;
    const since = url.searchParams.get('since');
    const sinceMs = since === null ? undefined : Number(since);
    if (sinceMs !== undefined && !Number.isFinite(sinceMs)) {
      return this.json(res, 400, { error: `since must be milliseconds since the epoch (got ${JSON.stringify(since)})`, code: 'ENG_BAD_REQUEST' });
    }
    if (url.searchParams.get('follow') === 'false') {
      return this.json(res, 200, { events: this.options.service.recentEvents({ api, sinceMs: sinceMs ?? 0 }) });
    }
    // A reconnecting client (EventSource, serving/client) names the last event it got: everything the
    // history holds after it is replayed, whatever `since` says (an id of an earlier boot: all of it).
    const lastEventId = req.headers['last-event-id'];
    const after = typeof lastEventId === 'string' && lastEventId !== '' ? eventsAfter(lastEventId) : undefined;
    const events$ = after
      ? this.options.service.events$({ api, sinceMs: 0 }).pipe(filter(after))
      : this.options.service.events$({ api, sinceMs });
    await this.stream(req, res, 'text/event-stream', (write, end, fail) => {
      // A live-only stream says where it starts, so a client that drops it before any event resumes there.
      write(after === undefined && sinceMs === undefined ? `: myelin events\n: position ${currentEventId()}\n\n` : ': myelin events\n\n');
      const heartbeat = setInterval(() => write(': keep-alive\n\n'), 15_000);
      heartbeat.unref();
      const sub = events$.subscribe({
        next: (e) => {
          const id = eventId(e);
          write(`${id === undefined ? '' : `id: ${id}\n`}event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
        },
        complete: end,
        error: fail,
      });
      sub.add(() => clearInterval(heartbeat));
      return sub;
    });
  }

  /** Streams lines to the client until the source completes or the client goes away. */
  private async stream(
    req: IncomingMessage,
    res: ServerResponse,
    contentType: string,
    open: (write: (s: string) => void, end: () => void, fail: (err: unknown) => void) => Subscription,
  ): Promise<void> {
    // A name that does not exist must answer 404 before the stream starts: the service throws synchronously.
    let started = false;
    const start = (): void => {
      if (started) return;
      started = true;
      res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-cache', connection: 'keep-alive' });
      res.flushHeaders();
    };
    await new Promise<void>((resolve, reject) => {
      let sub: Subscription | undefined;
      let done = false;
      const finish = (): void => {
        done = true;
        if (sub) {
          sub.unsubscribe();
          this.streams.delete(sub);
        }
        resolve();
      };
      try {
        sub = open(
          (s) => {
            start();
            res.write(s);
            // A client that stops reading must not make the daemon buffer without bound.
            if (res.writableLength > MAX_STREAM_BUFFER_BYTES) {
              this.log.warn({ buffered: res.writableLength }, 'stream client is not reading; disconnecting it');
              res.destroy();
              finish();
            }
          },
          () => {
            start();
            res.end();
            finish();
          },
          (err) => {
            done = true;
            if (!started) {
              reject(err);
              return;
            }
            this.log.warn({ err }, 'stream failed');
            res.end();
            finish();
          },
        );
      } catch (err) {
        reject(err);
        return;
      }
      if (done) {
        // Completed or failed while subscribing (a finished history, an unknown API).
        sub.unsubscribe();
        return;
      }
      start();
      this.streams.add(sub);
      req.on('close', finish);
    });
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private fail(res: ServerResponse, err: unknown): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (err instanceof ConfigError) return this.json(res, 400, { error: err.message, code: err.code, problems: err.problems });
    if (err instanceof NotFoundError) return this.json(res, 404, { error: err.message, code: err.code });
    if (err instanceof ConflictError) return this.json(res, 409, { error: err.message, code: err.code });
    if (err instanceof BadRequestError) return this.json(res, err.status, { error: err.message, code: err.code });
    if (err instanceof WhatIfError) return this.json(res, 400, { error: err.message, code: err.code });
    if (err instanceof BundleError) return this.json(res, 400, { error: err.message, code: err.code });
    // The project's requirements.txt cannot be installed: the user's to fix, like an invalid config.
    if (err instanceof RequirementsError) return this.json(res, 400, { error: err.message, code: err.code });
    if (err instanceof EngineError) return this.json(res, 500, { error: err.message, code: err.code });
    this.log.error({ err }, 'control api request failed');
    this.json(res, 500, { error: 'internal error (see the daemon log)', code: 'ENG_INTERNAL' });
  }
}

class BadRequestError extends EngineError {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super('ENG_BAD_REQUEST', message);
  }
}

async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) throw new BadRequestError(413, `request body over ${limit} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > limit) throw new BadRequestError(413, `request body over ${limit} bytes`);
    chunks.push(c as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    throw new BadRequestError(400, `invalid JSON: ${(err as Error).message}`);
  }
}
