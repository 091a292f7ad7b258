/**
 * `kind: TrafficSplitter` (Cortex 0.19+): one endpoint whose requests are split over RealtimeAPIs by
 * weight. This file holds its resolved spec and the checks of one splitter item (weights, repeated
 * APIs, endpoint); the loader (load-api-specs.ts) runs the file-wide ones (unique names and
 * endpoints across kinds, a splitter over a splitter), the daemon those that need what is deployed
 * (an API that is neither in the file nor deployed, name and endpoint clashes with deployed APIs).
 */
import type { ApiKeysSpec } from './api-spec.js';
import type { ApiView } from './api-view.js';
import { canonicalEndpoint, type ProblemReport } from './resolve-api.js';

/** One backend of a splitter: a RealtimeAPI and its share of the requests in percent. */
export interface TrafficSplitterBackend {
  readonly name: string;
  /** 0..100; the weights of one splitter sum to 100. */
  readonly weight: number;
}

/** The resolved, typed TrafficSplitter (what the loader returns beside the `ApiSpec`s). */
export interface TrafficSplitterSpec {
  readonly name: string;
  readonly kind: 'TrafficSplitter';
  /** In file order. */
  readonly apis: readonly TrafficSplitterBackend[];
  readonly networking: {
    /** Always starts with `/`; default `/<name>`. Served on the gateway's shared port only. */
    readonly endpoint: string;
    /** `networking.api_keys`: the splitter's own keys (the backends' keys do not apply through it). */
    readonly apiKeys?: ApiKeysSpec;
  };
  /** Absolute path of the file it was read from. */
  readonly configFile: string;
  readonly projectDir: string;
}

/** The weights of a splitter's APIs must sum to this (percent). */
export const TRAFFIC_SPLITTER_TOTAL_WEIGHT = 100;

/**
 * Resolves one splitter item (already checked against its schema) and reports the problems of the
 * item itself: the weights' sum (`apis`, in Cortex's words: "expected weights to sum to 100 but found
 * 90"), an API listed twice (`apis[i].name`, at the second one), the endpoint's syntax, and the fields
 * accepted without effect. The result is meaningful only when no error was reported.
 */
export function resolveTrafficSplitter(
  view: ApiView,
  index: number,
  ctx: { readonly configFile: string; readonly projectDir: string },
  report: ProblemReport,
): TrafficSplitterSpec {
  const rawName = view.get(['name']);
  const name = typeof rawName === 'string' ? rawName : `api-${index}`;
  const apis: TrafficSplitterBackend[] = [];
  const rawApis = view.raw(['apis']);
  let sumKnown = view.usable(['apis']);
  if (Array.isArray(rawApis) && view.intact(['apis'])) {
    const first = new Map<string, number>();
    rawApis.forEach((_entry: unknown, i: number) => {
      const n = view.get(['apis', i, 'name']);
      const w = view.get(['apis', i, 'weight']);
      if (typeof w !== 'number') sumKnown = false;
      if (typeof n !== 'string') return;
      const prev = first.get(n);
      if (prev !== undefined) {
        report.error(['apis', i, 'name'], `api ${JSON.stringify(n)} is listed more than once (also apis[${prev}]); each API may appear once in a TrafficSplitter`);
        return;
      }
      first.set(n, i);
      apis.push({ name: n, weight: typeof w === 'number' ? w : 0 });
    });
    if (sumKnown) {
      const total = rawApis.reduce((acc: number, _e: unknown, i: number) => acc + (view.get(['apis', i, 'weight']) as number), 0);
      if (total !== TRAFFIC_SPLITTER_TOTAL_WEIGHT) report.error(['apis'], `expected weights to sum to ${TRAFFIC_SPLITTER_TOTAL_WEIGHT} but found ${total}`);
    }
  }

  let endpoint = `/${name}`;
  const written = view.get(['networking', 'endpoint']);
  if (typeof written === 'string') {
    const e = canonicalEndpoint(written);
    if (e.ok) endpoint = e.value;
    else report.error(['networking', 'endpoint'], e.message);
  }
  if (view.written(['networking', 'api_gateway'])) {
    report.warning(['networking', 'api_gateway'], 'has no effect: myelin has no API Gateway; the TrafficSplitter is served by the myelin gateway');
  }
  const secret = view.get(['networking', 'api_keys', 'secret']);
  return {
    name,
    kind: 'TrafficSplitter',
    apis,
    networking: { endpoint, ...(typeof secret === 'string' ? { apiKeys: { secret } } : {}) },
    configFile: ctx.configFile,
    projectDir: ctx.projectDir,
  };
}
