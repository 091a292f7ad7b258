import type { ReplicaAddress, ReplicaInfo } from '../../core/ports/orchestrator-target.js';
import { PICK_FULL, PICK_NONE, pickUpstream } from './pick-upstream.js';
import { Upstream, addressKey, type UpstreamAgentOptions } from './upstream.js';

/** Cortex's default `max_replica_concurrency` (reference/cortex.md §3), used until the API's spec is known. */
export const DEFAULT_MAX_REPLICA_CONCURRENCY = 1024;

/** Outcome of `UpstreamPool.pick` when no replica was chosen. */
export type NoUpstream = 'none' | 'full';

/**
 * The ready replicas of one API and the balancing state over them (least outstanding, round-robin
 * ties, per-replica concurrency limit). Not thread-safe: used only on the event loop.
 */
export class UpstreamPool {
  readonly api: string;
  /** Ready replicas in the order the orchestrator listed them. */
  private ready: Upstream[] = [];
  private cursor = 0;
  private maxConcurrencyValue = DEFAULT_MAX_REPLICA_CONCURRENCY;
  private readonly agentOptions: UpstreamAgentOptions;

  constructor(api: string, agentOptions: UpstreamAgentOptions) {
    this.api = api;
    this.agentOptions = agentOptions;
  }

  /** Requests allowed on one replica at once (`autoscaling.maxReplicaConcurrency`). */
  get maxConcurrency(): number {
    return this.maxConcurrencyValue;
  }

  setMaxConcurrency(n: number): void {
    this.maxConcurrencyValue = n;
    for (const u of this.ready) u.agent.maxSockets = Math.max(n, 1);
  }

  /** The replicas that take new requests now. */
  upstreams(): readonly Upstream[] {
    return this.ready;
  }

  /**
   * Replaces the ready set with `replicas` (already filtered to this API's ready ones with an address).
   * Replicas that stay keep their counters and connections; new ones take traffic from the next request
   * on; those that left are retired at once and keep only the requests they already have.
   */
  update(replicas: readonly ReplicaInfo[]): void {
    const byId = new Map<string, Upstream>();
    for (const u of this.ready) byId.set(u.id, u);
    const next: Upstream[] = [];
    for (const r of replicas) {
      const address = r.address as ReplicaAddress;
      const old = byId.get(r.id);
      if (old !== undefined && old.key === addressKey(address)) {
        next.push(old);
        byId.delete(r.id);
      } else {
        next.push(
          new Upstream(r.id, this.api, address, {
            ...this.agentOptions,
            maxSockets: Math.max(this.maxConcurrencyValue, 1),
          }),
        );
      }
    }
    for (const gone of byId.values()) gone.retire();
    this.ready = next;
    if (this.cursor >= next.length) this.cursor = 0;
  }

  /**
   * Chooses the replica for the next attempt of a request; `tried` holds the replicas this request
   * already failed to connect to. Does not acquire: the caller calls `upstream.acquire()`.
   */
  pick(nowMs: number, tried: readonly Upstream[] | null): Upstream | NoUpstream {
    const ready = this.ready;
    if (ready.length === 0) return 'none';
    const i = pickUpstream(ready, this.cursor, this.maxConcurrencyValue, nowMs, tried);
    if (i === PICK_NONE) return 'none';
    if (i === PICK_FULL) return 'full';
    this.cursor = i + 1 === ready.length ? 0 : i + 1;
    return ready[i];
  }

  /**
   * The replica a new client connection is handed to (direct connections): fewest connections and
   * proxied requests together, ties round-robin, a recently refusing replica last. No limit applies
   * here: a connection is not a request, and the replica itself answers 503 past
   * `max_replica_concurrency` requests in flight.
   */
  pickForConnection(nowMs: number): Upstream | undefined {
    const ready = this.ready;
    const n = ready.length;
    let best: Upstream | undefined;
    let bestLoad = Infinity;
    let bestIndex = 0;
    for (let k = 0; k < n; k++) {
      const i = this.cursor + k < n ? this.cursor + k : this.cursor + k - n;
      const u = ready[i];
      const load = u.direct + u.outstanding + (u.ejectedUntilMs > nowMs ? 1e9 : 0);
      if (load < bestLoad) {
        best = u;
        bestLoad = load;
        bestIndex = i;
      }
    }
    if (best !== undefined) this.cursor = bestIndex + 1 === n ? 0 : bestIndex + 1;
    return best;
  }

  /** Whether `pick` would choose a replica now for a first attempt (one is ready and below max concurrency); moves no cursor. */
  hasCapacity(nowMs: number): boolean {
    const ready = this.ready;
    return ready.length > 0 && pickUpstream(ready, this.cursor, this.maxConcurrencyValue, nowMs, null) >= 0;
  }

  /** Retires every replica (the API was removed or the gateway closes). */
  clear(): void {
    for (const u of this.ready) u.retire();
    this.ready = [];
    this.cursor = 0;
  }
}
