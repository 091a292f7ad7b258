/** What the balancer needs to know about one replica. */
export interface Candidate {
  readonly outstanding: number;
  /** Requests in flight on its direct connections, as it last reported (direct connections). */
  readonly directInFlight: number;
  /** ms on the caller's clock; a replica that refused a connection is tried last until then. */
  readonly ejectedUntilMs: number;
}

/** No replica can take the request: `none` — there is no candidate left; `full` — all are at their limit. */
export const PICK_NONE = -1;
export const PICK_FULL = -2;

/**
 * Least outstanding requests first, ties broken round-robin (pure, SG 2.2).
 *
 * Scans `candidates` starting at `start` (the round-robin cursor) and returns the index of the one with
 * the fewest outstanding requests; among equals the first one met from `start` wins, so equal replicas
 * take turns. A candidate with `outstanding >= maxConcurrency` is full and skipped (Cortex's
 * `max_replica_concurrency`, enforced here instead of by each replica's nginx). Candidates listed in
 * `tried` (already failed for this request) are skipped. Ejected ones are used only when nothing else is
 * free. Returns `PICK_FULL` when every untried candidate is full, `PICK_NONE` when there is none.
 *
 * Example: outstanding [2, 0, 1, 0], start 2, max 10 ⇒ index 3 (first 0 met from 2); start 0 ⇒ 1.
 */
export function pickUpstream(
  candidates: readonly Candidate[],
  start: number,
  maxConcurrency: number,
  nowMs: number,
  tried: readonly Candidate[] | null,
): number {
  const n = candidates.length;
  let best = PICK_NONE;
  let bestLoad = Infinity;
  let ejected = PICK_NONE;
  let ejectedLoad = Infinity;
  let sawFull = false;
  for (let k = 0; k < n; k++) {
    const i = start + k < n ? start + k : start + k - n;
    const c = candidates[i];
    if (tried !== null && tried.includes(c)) continue;
    const load = c.outstanding + c.directInFlight;
    if (load >= maxConcurrency) {
      sawFull = true;
      continue;
    }
    if (c.ejectedUntilMs > nowMs) {
      if (load < ejectedLoad) {
        ejected = i;
        ejectedLoad = load;
      }
      continue;
    }
    if (load < bestLoad) {
      best = i;
      bestLoad = load;
      if (load === 0) break;
    }
  }
  if (best !== PICK_NONE) return best;
  if (ejected !== PICK_NONE) return ejected;
  return sawFull ? PICK_FULL : PICK_NONE;
}
