import { createHash } from 'node:crypto';
import type { ApiSpec } from '../../core/config/api-spec.js';
import type { TrafficSplitterBackend, TrafficSplitterSpec } from '../../core/config/traffic-splitter.js';
import type { DataPath } from '../../core/config/yaml-source.js';
import type { ConfigProblem } from '../../core/errors.js';
import type { ApiStatusCode } from './daemon-service.js';

/** What the daemon keeps of a deployed TrafficSplitter (`<state>/splitters/<name>.json`): the spec itself, so it needs no project folder. */
export interface StoredSplitter {
  readonly spec: TrafficSplitterSpec;
  /** The config file as the deploy named it (for messages). */
  readonly configFile: string;
  readonly revision: string;
  /** ms since the epoch of the deploy that last changed it. */
  readonly lastUpdated: number;
  readonly created: number;
}

/** One backend in `myelin get`: its weight, whether it takes the splitter's requests now, and what it got. */
export interface TrafficSplitterBackendView {
  readonly name: string;
  readonly weight: number;
  /** The backend API's own status (`not deployed` when it is not, e.g. not restored). */
  readonly status: ApiStatusCode | 'not deployed';
  /** It has a ready replica: only ready backends take the splitter's requests. */
  readonly ready: boolean;
  /** Requests the splitter sent to it since the daemon started. */
  readonly requests: number;
  /** `requests` over all the splitter sent (0..1); null before the first request. */
  readonly share: number | null;
}

/** A TrafficSplitter as the control API lists and shows it (`GET /v1/apis`, `GET /v1/apis/<name>`). */
export interface TrafficSplitterView {
  readonly kind: 'TrafficSplitter';
  readonly name: string;
  /** `live` while a backend with a weight above 0 is ready; else `unavailable`. */
  readonly status: 'live' | 'unavailable';
  readonly endpoint: string;
  readonly url: string;
  readonly revision: string;
  readonly lastUpdated: number;
  readonly created: number;
  /** The secret's name when the splitter has `networking.api_keys` (never a key). */
  readonly apiKeysSecret?: string;
  /** Requests sent to a backend, and requests refused 401 for a missing or wrong key, since the daemon started. */
  readonly requests: number;
  readonly unauthorized: number;
  readonly apis: readonly TrafficSplitterBackendView[];
}

/** Revision of a splitter: a hash of what it routes (endpoint, backends and weights, secret name). */
export function splitterRevision(spec: TrafficSplitterSpec): string {
  const h = createHash('sha256');
  h.update(JSON.stringify([spec.networking.endpoint, spec.apis, spec.networking.apiKeys?.secret ?? null]));
  return h.digest('hex').slice(0, 10);
}

/** The same backends with the same weights, in the same order. */
export function sameWeights(a: readonly TrafficSplitterBackend[], b: readonly TrafficSplitterBackend[]): boolean {
  return a.length === b.length && a.every((x, i) => x.name === b[i].name && x.weight === b[i].weight);
}

export interface SplitterCheckInput {
  readonly splitters: readonly TrafficSplitterSpec[];
  /** The RealtimeAPIs of the same file. */
  readonly fileApis: readonly ApiSpec[];
  readonly deployedApis: ReadonlyMap<string, ApiSpec>;
  readonly deployedSplitters: ReadonlyMap<string, TrafficSplitterSpec>;
  /** Endpoint → name of the deployed API or splitter serving it. */
  readonly endpointOwners: ReadonlyMap<string, string>;
  /** A problem of item `name` at `path` (located in the deploy's file). */
  readonly problem: (name: string, path: DataPath, message: string) => ConfigProblem;
}

/**
 * The deploy-time checks of a file's TrafficSplitters against what is deployed (the loader did the
 * file's own): every API a splitter names is a RealtimeAPI of the file or a deployed one; a splitter
 * does not take the name of a deployed RealtimeAPI, nor a RealtimeAPI of the file the name of a deployed
 * splitter; its endpoint is free; a splitter over an API with `networking.api_keys` has keys itself (its
 * endpoint would otherwise open that API to anyone), also when the keys are added to a deployed
 * splitter's API.
 */
export function checkSplitters(i: SplitterCheckInput): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const fileApis = new Map(i.fileApis.map((s) => [s.name, s]));
  const fileSplitters = new Set(i.splitters.map((s) => s.name));
  for (const api of i.fileApis) {
    if (i.deployedSplitters.has(api.name)) {
      out.push(i.problem(api.name, ['name'], `${api.name} is deployed as a TrafficSplitter; delete it before deploying a RealtimeAPI of that name`));
    }
    if (api.networking.apiKeys === undefined) continue;
    // Keys added to an API that a deployed splitter without keys serves would be bypassed through it.
    const open = [...i.deployedSplitters.values()].filter((s) => !fileSplitters.has(s.name) && s.networking.apiKeys === undefined && s.apis.some((b) => b.name === api.name));
    if (open.length > 0) {
      out.push(
        i.problem(
          api.name,
          ['networking', 'api_keys'],
          `TrafficSplitter ${open.map((s) => s.name).join(', ')} serves ${api.name} without API keys; give ${open.length === 1 ? 'it' : 'them'} networking.api_keys first, or ${api.name}'s keys could be bypassed`,
        ),
      );
    }
  }
  for (const s of i.splitters) {
    if (i.deployedApis.has(s.name) && !fileApis.has(s.name)) {
      out.push(i.problem(s.name, ['name'], `${s.name} is deployed as a RealtimeAPI; delete it before deploying a TrafficSplitter of that name`));
    }
    const owner = i.endpointOwners.get(s.networking.endpoint);
    if (owner !== undefined && owner !== s.name) out.push(i.problem(s.name, ['networking', 'endpoint'], `endpoint is already being used by ${owner}`));
    s.apis.forEach((b, k) => {
      const backend = fileApis.get(b.name) ?? i.deployedApis.get(b.name);
      if (backend === undefined) {
        const why = i.deployedSplitters.has(b.name) ? 'it is a TrafficSplitter' : 'it is neither a RealtimeAPI of this file nor a deployed one';
        out.push(i.problem(s.name, ['apis', k, 'name'], `api ${b.name} was not found or is not a RealtimeAPI (${why})`));
        return;
      }
      if (backend.networking.apiKeys !== undefined && s.networking.apiKeys === undefined) {
        out.push(
          i.problem(
            s.name,
            ['apis', k, 'name'],
            `${b.name} requires an API key (networking.api_keys); give this TrafficSplitter networking.api_keys too, or its endpoint would serve ${b.name} without one`,
          ),
        );
      }
    });
  }
  return out;
}
