/**
 * The gateway's Open Inference Protocol v2 routes (docs/protocol-v2.md). The gateway answers
 * `/v2/health/live`, `/v2/health/ready` and `/v2` (server metadata) itself, and forwards every
 * `/v2/models/<name>/…` request, path unchanged, to a replica of the API that serves `<name>` through
 * the normal forwarding path (least outstanding, `max_replica_concurrency`, retries, in-flight
 * counters), where serving/replica/protocol-v2.ts answers it.
 *
 * `<name>` is an API's name for a single-model API, or a model's name for a multi-model API
 * (`models.paths` names it in the spec; for `models.dir` the names live in the store, so a name no spec
 * lists goes to the one routed `models.dir` API, whose replica answers 404 when it does not serve it).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PACKAGE_VERSION } from '../../adapters/fs/package-root.js';
import { v2ServerMetadata } from '../../core/predictor/protocol-v2.js';
import type { GatewayApiSpec } from './gateway.js';
import { forwardRequest, sendJsonError, type ForwardContext } from './forward-request.js';
import { sendUnauthorized } from './api-keys.js';
import { declaredContentLength } from './proxy-headers.js';

const SERVER_METADATA = JSON.stringify(v2ServerMetadata(PACKAGE_VERSION));

/** A routed API as the gateway holds it (its `ApiEntry`). */
export interface V2RoutedApi {
  readonly spec: GatewayApiSpec;
  readonly ctx: ForwardContext;
  /** `networking.api_keys`, checked as on the API's own endpoint; null or absent: open. */
  readonly keys?: { check(rawHeaders: readonly string[]): 'ok' | 'missing' | 'wrong' } | null;
}

/** The fields of a full `ApiSpec` read here (the gateway's own type does not carry them). */
interface ModelFields {
  readonly predictor?: { readonly type?: string; readonly models?: { readonly paths?: ReadonlyArray<{ readonly name: string }>; readonly dir?: string } };
  readonly autoscaling?: { readonly minReplicas?: number };
}

function modelFields(spec: GatewayApiSpec): ModelFields {
  return spec as unknown as ModelFields;
}

/** v2 serves the onnx and tensorflow types; a spec without a predictor (a bare gateway spec) is assumed to. */
function servesV2(spec: GatewayApiSpec): boolean {
  const type = modelFields(spec).predictor?.type;
  return type === undefined || type === 'onnx' || type === 'tensorflow';
}

function sendJson(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** The API serving model `name`, or why there is none. */
export function resolveV2Api<T extends V2RoutedApi>(apis: Iterable<T>, name: string): { readonly api: T } | { readonly error: string; readonly status: number } {
  const all = [...new Map([...apis].map((a) => [a.spec.name, a])).values()];
  const multi = (a: T): boolean => {
    const m = modelFields(a.spec).predictor?.models;
    return m?.paths !== undefined || m?.dir !== undefined;
  };
  const byApiName = all.find((a) => a.spec.name === name && !multi(a));
  if (byApiName) return { api: byApiName };
  const byModel = all.filter((a) => modelFields(a.spec).predictor?.models?.paths?.some((p) => p.name === name));
  if (byModel.length === 1) return { api: byModel[0] };
  if (byModel.length > 1) {
    return { status: 400, error: `model "${name}" is served by several APIs (${byModel.map((a) => a.spec.name).join(', ')}); rename one of them in models.paths` };
  }
  // The multi-model API itself: its replica answers which models it serves.
  const multiApi = all.find((a) => a.spec.name === name);
  if (multiApi) return { api: multiApi };
  const dirApis = all.filter((a) => modelFields(a.spec).predictor?.models?.dir !== undefined);
  if (dirApis.length === 1) return { api: dirApis[0] };
  const known = all.flatMap((a) => (multi(a) ? (modelFields(a.spec).predictor?.models?.paths ?? []).map((p) => p.name) : [a.spec.name]));
  const dirNote = dirApis.length > 1 ? `; the models of the models.dir APIs ${dirApis.map((a) => a.spec.name).join(', ')} cannot be told apart here: list them in models.paths` : '';
  return { status: 404, error: `model "${name}" is not served here (models: ${known.sort().join(', ') || 'none'})${dirNote}` };
}

/**
 * The v2 routes of one gateway. `readyUpstreams(api)` is the number of replicas of `api` taking
 * requests now; `restoring()` is true while the daemon re-routes its stored APIs.
 */
export class GatewayProtocolV2 {
  constructor(
    private readonly readyUpstreams: (api: string) => number,
    private readonly restoring: () => boolean,
  ) {}

  /**
   * Answers or forwards a request whose path starts with `/v2` and matches no API endpoint; returns
   * false (nothing answered) for a path that is not a v2 one (`/v2x`). `apis` are the APIs of the
   * listener the request arrived on.
   */
  handle(apis: Iterable<V2RoutedApi>, req: IncomingMessage, res: ServerResponse, path: string, query: string, startMs: number): boolean {
    if (path.length > 3 && path[3] !== '/') return false;
    const method = req.method ?? '';
    const get = method === 'GET' || method === 'HEAD';
    if (path === '/v2' || path === '/v2/' || path === '/v2/health/live' || path === '/v2/health/ready') {
      if (!get) {
        res.setHeader('allow', 'GET, HEAD');
        sendJsonError(res, 405, `method ${method} not allowed on ${path}`);
        return true;
      }
      if (path === '/v2/health/live') sendJson(res, 200, '{"live":true}');
      else if (path === '/v2/health/ready') {
        const ready = this.serverReady(apis);
        sendJson(res, ready ? 200 : 503, JSON.stringify({ ready }));
      } else sendJson(res, 200, SERVER_METADATA);
      return true;
    }
    if (!path.startsWith('/v2/models/')) {
      sendJsonError(res, 404, `not found: ${path} is not an Open Inference Protocol v2 path`);
      return true;
    }
    const segment = path.slice('/v2/models/'.length).split('/')[0];
    let name: string;
    try {
      name = decodeURIComponent(segment);
    } catch {
      sendJsonError(res, 400, `the path segment ${JSON.stringify(segment)} is not valid percent-encoding`);
      return true;
    }
    const found = resolveV2Api(apis, name);
    if ('error' in found) {
      if (this.restoring()) sendJsonError(res, 503, 'myelin is starting; retry', 1);
      else sendJsonError(res, found.status, found.error);
      return true;
    }
    const entry = found.api;
    if (entry.keys) {
      const outcome = entry.keys.check(req.rawHeaders);
      if (outcome !== 'ok') {
        sendUnauthorized(res, entry.spec.name, outcome);
        entry.ctx.stats.record(401, performance.now() - startMs);
        return true;
      }
    }
    const declared = declaredContentLength(req.rawHeaders);
    if (declared > entry.spec.networking.maxBodyBytes) {
      res.setHeader('connection', 'close');
      sendJsonError(res, 413, `request body of ${declared} bytes exceeds ${entry.spec.networking.maxBodyBytes} bytes`);
      entry.ctx.stats.record(413, performance.now() - startMs);
      return true;
    }
    forwardRequest(entry.ctx, req, res, path + query, startMs, Boolean(entry.keys));
    return true;
  }

  /**
   * Ready when no restore is under way and every routed API that serves v2 and may not be at zero
   * replicas (`min_replicas` above 0) has a replica taking requests.
   */
  private serverReady(apis: Iterable<V2RoutedApi>): boolean {
    if (this.restoring()) return false;
    for (const a of apis) {
      if (!servesV2(a.spec) || modelFields(a.spec).autoscaling?.minReplicas === 0) continue;
      if (this.readyUpstreams(a.spec.name) === 0) return false;
    }
    return true;
  }
}
