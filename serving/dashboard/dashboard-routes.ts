import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { ApiSpec } from '../../core/config/api-spec.js';
import type { DaemonService } from '../daemon/daemon-service.js';
import type { InFlightPoint } from '../daemon/in-flight-recording.js';
import { pageAssets } from './page-assets.js';
import { pageHtml, refusedHtml } from './page-html.js';
import { WhatIfError } from './what-if-error.js';
import type { ScalingPolicyRegistry } from '../../core/contribution/scaling-policy-registry.js';

/** What the dashboard reads beyond the `DaemonService`: the daemon's in-flight recording. */
export interface DashboardSource {
  recording(api: string, sinceMs?: number): { readonly spec: ApiSpec; readonly createdMs: number; readonly points: InFlightPoint[] };
  readonly recorder: { onDidRecord(listener: (points: ReadonlyMap<string, InFlightPoint>) => void): () => void };
}

/** The service as a `DashboardSource` when it is one (the daemon), else undefined. */
export function dashboardSourceOf(service: unknown): DashboardSource | undefined {
  const s = service as Partial<DashboardSource> | null;
  return s && typeof s.recording === 'function' && s.recorder && typeof s.recorder.onDidRecord === 'function' ? (s as DashboardSource) : undefined;
}

/** The session cookie's name. */
export const SESSION_COOKIE = 'myelin_session';

/** The cookie value of a dashboard session: HMAC-SHA256 of a constant under the daemon token (the token itself never goes in a cookie). */
export function sessionValue(token: string): string {
  return createHmac('sha256', token).update('myelin dashboard session v1').digest('base64url');
}

/** Longest what-if range, ms (the recording holds an hour). */
const MAX_WHAT_IF_MS = 60 * 60_000;

export interface DashboardRoutesOptions {
  readonly service: DaemonService;
  readonly source?: DashboardSource;
  /** The daemon token; undefined (an embedding program without auth) serves the page to anyone on loopback. */
  readonly token?: string;
  readonly log: Logger;
}

/**
 * The dashboard's routes on the control API (docs/dashboard.md):
 * - `GET /?token=<daemon token>`: sets the session cookie (HttpOnly, SameSite=Strict) and redirects to `/`;
 * - `GET /`: the page for a session, else 401 with a page that says how to get in;
 * - `GET /dashboard/app.js|app.css`: the bundle (public: it holds no data);
 * - `GET /v1/dashboard/recording?api=&since=<ms>`: the API's per-second recording and autoscaling;
 * - `GET /v1/dashboard/metrics?api=<focus>`: server-sent `metrics` events, one a second: every API's
 *   summary and last recorded point, and the focused API's detail;
 * - `POST /v1/dashboard/what-if` `{ api, sinceMs, set }`: the recording re-run with other autoscaling.
 * The control API checks Host and Origin and the session before calling `handle` for a `/v1/` route.
 */
export class DashboardRoutes {
  private policies?: ScalingPolicyRegistry;
  private readonly log: Logger;
  constructor(private readonly o: DashboardRoutesOptions) {
    this.log = o.log.child({ component: 'dashboard/routes' });
  }

  /** True when the request carries a valid session cookie. */
  hasSession(req: IncomingMessage): boolean {
    if (this.o.token === undefined) return true;
    const v = cookie(req, SESSION_COOKIE);
    if (v === undefined) return false;
    const a = Buffer.from(v);
    const b = Buffer.from(sessionValue(this.o.token));
    return a.length === b.length && timingSafeEqual(a, b);
  }

  /**
   * Routes a session may use: read-only views and the what-if (which changes nothing). Everything that
   * changes the daemon keeps needing the bearer token, so a session cannot deploy or delete.
   */
  static sessionRoute(method: string, path: string): boolean {
    if (method === 'GET') return path === '/v1/apis' || path === '/v1/events' || /^\/v1\/apis\/[a-z0-9-]{1,63}$/.test(path) || path === '/v1/dashboard/recording' || path === '/v1/dashboard/metrics';
    return method === 'POST' && path === '/v1/dashboard/what-if';
  }

  /** The page routes (`/`, `/dashboard/*`), before any bearer check; false when `path` is not one. */
  async page(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    const method = req.method ?? 'GET';
    const path = url.pathname;
    if (method !== 'GET' && method !== 'HEAD') return false;
    if (path === '/dashboard/app.js' || path === '/dashboard/app.css') {
      const assets = await pageAssets();
      const js = path.endsWith('.js');
      const body = js ? assets.js : assets.css;
      res.writeHead(200, {
        'content-type': js ? 'text/javascript; charset=utf-8' : 'text/css; charset=utf-8',
        'content-length': body.length,
        // Addressed by content hash (`?v=`): a new build is a new URL.
        'cache-control': url.searchParams.get('v') === assets.hash ? 'public, max-age=31536000, immutable' : 'no-cache',
        'x-content-type-options': 'nosniff',
      });
      res.end(method === 'HEAD' ? undefined : body);
      return true;
    }
    if (path !== '/' && path !== '/index.html') return false;
    const given = url.searchParams.get('token');
    const token = this.o.token;
    if (given !== null) {
      if (token !== undefined && !sameSecret(given, token)) {
        this.html(res, 401, refusedHtml('That token is not this daemon’s. Open the URL that `myelin up` or `myelin dashboard` prints.'));
        return true;
      }
      // The token leaves the address bar (and the history) at once: the cookie carries the session.
      res.writeHead(303, {
        location: '/',
        'set-cookie': `${SESSION_COOKIE}=${token === undefined ? 'open' : sessionValue(token)}; HttpOnly; SameSite=Strict; Path=/`,
        'cache-control': 'no-store',
        'referrer-policy': 'no-referrer',
      });
      res.end();
      return true;
    }
    if (!this.hasSession(req)) {
      this.html(res, 401, refusedHtml('This dashboard needs the daemon’s token. Open the URL that `myelin up` or `myelin dashboard` prints (http://127.0.0.1:8889/?token=…).'));
      return true;
    }
    const assets = await pageAssets();
    this.html(res, 200, pageHtml(assets.hash));
    return true;
  }

  /** The `/v1/dashboard/*` routes (authorized by the caller); false when `path` is not one. */
  async api(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    const method = req.method ?? 'GET';
    const path = url.pathname;
    if (path === '/v1/dashboard/recording' && method === 'GET') {
      const src = this.mustSource();
      const api = url.searchParams.get('api') ?? '';
      const since = Number(url.searchParams.get('since') ?? 0);
      if (!Number.isFinite(since)) throw new WhatIfError('since must be milliseconds since the epoch');
      const r = src.recording(api, since);
      json(res, 200, { api, autoscaling: r.spec.autoscaling, createdMs: r.createdMs, points: r.points });
      return true;
    }
    if (path === '/v1/dashboard/what-if' && method === 'POST') {
      const src = this.mustSource();
      const body = (await readSmallJson(req)) as { api?: unknown; sinceMs?: unknown; set?: unknown };
      if (typeof body.api !== 'string') throw new WhatIfError('expected { api, sinceMs, set: { window: "30s", … } }');
      const set: Record<string, string> = {};
      if (body.set !== undefined) {
        if (typeof body.set !== 'object' || body.set === null) throw new WhatIfError('set must be an object of field: value');
        for (const [k, v] of Object.entries(body.set)) {
          if (typeof v !== 'string' && typeof v !== 'number') throw new WhatIfError(`${k}: expected a string or a number`);
          if (String(v).trim() !== '') set[k] = String(v);
        }
      }
      const r = src.recording(body.api);
      // Ranges count back from the last recorded second (the daemon's clock, not this request's).
      const last = r.points.length > 0 ? r.points[r.points.length - 1].t : 0;
      const sinceMs = typeof body.sinceMs === 'number' && Number.isFinite(body.sinceMs) ? Math.max(body.sinceMs, last - MAX_WHAT_IF_MS) : last - 15 * 60_000;
      // Loaded on first use: the policies' modules are not part of every control API request.
      const { scalingPolicies, whatIf } = await import('./what-if.js');
      this.policies ??= scalingPolicies();
      const result = whatIf({ autoscaling: r.spec.autoscaling, createdMs: r.createdMs, points: r.points, sinceMs, set, policies: this.policies });
      json(res, 200, {
        api: body.api,
        sinceMs,
        autoscaling: result.autoscaling,
        startReplicas: result.startReplicas,
        ticks: result.ticks.map((t) => ({ t: t.atMs, avg: t.decision.avg, from: t.decision.current, replicas: t.decision.desired, reason: t.decision.reason })),
      });
      return true;
    }
    if (path === '/v1/dashboard/metrics' && method === 'GET') {
      this.metrics(req, res, url.searchParams.get('api') ?? undefined);
      return true;
    }
    return false;
  }

  private mustSource(): DashboardSource {
    if (!this.o.source) throw new WhatIfError('this control API has no in-flight recording');
    return this.o.source;
  }

  /** One `metrics` event a second (after each recorded second), until the client goes away. */
  private metrics(req: IncomingMessage, res: ServerResponse, focus: string | undefined): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.write(': myelin metrics\n\n');
    let busy = false;
    const send = async (points: ReadonlyMap<string, InFlightPoint> | undefined): Promise<void> => {
      if (busy || res.destroyed) return; // a slow client skips seconds rather than queueing them
      busy = true;
      try {
        const apis = await this.o.service.list();
        let detail: unknown = null;
        if (focus) detail = await this.o.service.get(focus).catch(() => null);
        const pts = points ? Object.fromEntries(points) : {};
        res.write(`event: metrics\ndata: ${JSON.stringify({ t: Date.now(), apis, points: pts, detail })}\n\n`);
      } catch (err) {
        this.log.warn({ err }, 'metrics stream update failed');
      } finally {
        busy = false;
      }
    };
    void send(undefined);
    let stop: () => void;
    if (this.o.source) stop = this.o.source.recorder.onDidRecord((p) => void send(p));
    else {
      const timer = setInterval(() => void send(undefined), 1000);
      stop = () => clearInterval(timer);
    }
    req.on('close', () => stop());
    res.on('close', () => stop());
  }

  private html(res: ServerResponse, status: number, body: string): void {
    res.writeHead(status, {
      'content-type': 'text/html; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      'cache-control': 'no-store',
      // Only this origin's script and styles; no frames (clickjacking), no referrer (the token).
      'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
      'x-frame-options': 'DENY',
      'referrer-policy': 'no-referrer',
      'x-content-type-options': 'nosniff',
    });
    res.end(body);
  }
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function cookie(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readSmallJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > 64 * 1024) throw new WhatIfError('request body over 64 KiB');
    chunks.push(c as Buffer);
  }
  try {
    const v = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    if (typeof v !== 'object' || v === null) throw new Error('not an object');
    return v;
  } catch (err) {
    throw new WhatIfError(`invalid JSON: ${(err as Error).message}`);
  }
}
