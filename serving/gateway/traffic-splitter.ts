import type { ApiKeyCheck } from './api-keys.js';

/** One backend of a splitter as the gateway sees it: a routed API's name and its weight (percent). */
export interface SplitBackend {
  readonly name: string;
  readonly weight: number;
}

/** What the gateway routes for a `kind: TrafficSplitter` (a `TrafficSplitterSpec` fits). */
export interface GatewaySplitterSpec {
  readonly name: string;
  readonly apis: readonly SplitBackend[];
  readonly networking: { readonly endpoint: string };
}

/** Requests a splitter sent to each backend since it was routed (for `myelin get`). */
export interface SplitterBackendStats {
  readonly name: string;
  readonly weight: number;
  /** Requests the splitter sent to this backend. */
  readonly requests: number;
  /** `requests` over every request the splitter sent; null before the first. */
  readonly share: number | null;
  /** The backend has a ready replica now (only ready backends take the splitter's requests). */
  readonly ready: boolean;
}

export interface SplitterStats {
  readonly name: string;
  readonly endpoint: string;
  readonly backends: readonly SplitterBackendStats[];
  /** Every request the splitter sent to a backend. */
  readonly requests: number;
  /** Requests refused with 401 (`networking.api_keys`). */
  readonly unauthorized: number;
}

/**
 * Smooth weighted round robin (nginx's `ngx_http_upstream_get_peer`), pure apart from its own state.
 *
 * Each pick adds every eligible backend's weight to its running `current`, chooses the largest
 * `current` (the first in list order among equals) and subtracts the eligible weights' total from it.
 * Over any `W` consecutive picks with the same eligible set (`W` = their weights' sum) each backend is
 * picked exactly `weight` times, spread out rather than in runs: 30/70 ⇒ over 10 picks 3 and 7, as
 * b a b b a b b b a b (never two a in a row); over 1000 picks exactly 300 and 700. A backend that is not
 * eligible (no ready replica) is skipped and keeps its `current`; weight 0 is never picked.
 */
export class SmoothWeightedRoundRobin {
  private readonly current: number[];

  constructor(private readonly weights: readonly number[]) {
    this.current = weights.map(() => 0);
  }

  /**
   * The index of the next backend among those `eligible(i)` accepts with a weight above 0, or -1 when
   * there is none (the state is then unchanged).
   */
  pick(eligible: (i: number) => boolean): number {
    const w = this.weights;
    const cur = this.current;
    let total = 0;
    let best = -1;
    for (let i = 0; i < w.length; i++) {
      if (w[i] <= 0 || !eligible(i)) continue;
      cur[i] += w[i];
      total += w[i];
      if (best === -1 || cur[i] > cur[best]) best = i;
    }
    if (best !== -1) cur[best] -= total;
    return best;
  }
}

const always = (): boolean => true;

/**
 * One routed TrafficSplitter: its backends, the SWRR state over them, its keys, and how many requests
 * each backend got through it. Not thread-safe: used on the event loop only.
 */
export class TrafficSplitterRoute {
  readonly name: string;
  readonly endpoint: string;
  readonly backends: readonly SplitBackend[];
  /** `networking.api_keys` of the splitter (not its backends'); null: open. */
  readonly keys: ApiKeyCheck | null;
  private readonly rr: SmoothWeightedRoundRobin;
  private readonly sent: number[];
  private total = 0;
  unauthorized = 0;

  constructor(spec: GatewaySplitterSpec, keys: ApiKeyCheck | null) {
    this.name = spec.name;
    this.endpoint = spec.networking.endpoint;
    this.backends = spec.apis.map((b) => ({ name: b.name, weight: b.weight }));
    this.keys = keys;
    this.rr = new SmoothWeightedRoundRobin(this.backends.map((b) => b.weight));
    this.sent = this.backends.map(() => 0);
  }

  /**
   * The backend the next request goes to: by weight over the backends `isReady` accepts; when none
   * is ready, by weight over all of them, so the backend's own handling answers (its 503, or a
   * request held while it scales from zero). Undefined only when no backend has a weight above 0.
   */
  pick(isReady: (api: string) => boolean): string | undefined {
    const b = this.backends;
    let i = this.rr.pick((k) => isReady(b[k].name));
    if (i === -1) i = this.rr.pick(always);
    if (i === -1) return undefined;
    this.sent[i]++;
    this.total++;
    return b[i].name;
  }

  /** The same weights and keys as `spec`/`keys` (a redeploy that changed nothing keeps the counters). */
  sameAs(spec: GatewaySplitterSpec, keys: readonly string[] | undefined, prevKeys: readonly string[] | undefined): boolean {
    if (spec.networking.endpoint !== this.endpoint || spec.apis.length !== this.backends.length) return false;
    if (!spec.apis.every((a, i) => a.name === this.backends[i].name && a.weight === this.backends[i].weight)) return false;
    const k1 = keys ?? [];
    const k2 = prevKeys ?? [];
    return k1.length === k2.length && k1.every((k, i) => k === k2[i]);
  }

  stats(isReady: (api: string) => boolean): SplitterStats {
    return {
      name: this.name,
      endpoint: this.endpoint,
      backends: this.backends.map((b, i) => ({
        name: b.name,
        weight: b.weight,
        requests: this.sent[i],
        share: this.total === 0 ? null : this.sent[i] / this.total,
        ready: isReady(b.name),
      })),
      requests: this.total,
      unauthorized: this.unauthorized,
    };
  }
}
