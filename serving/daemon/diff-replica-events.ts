import type { ReplicaEvent } from '../../core/events/engine-event.js';
import type { ReplicaInfo } from '../../core/ports/orchestrator-target.js';

/** What changed between two replica lists (`OrchestratorTarget.replicas$`). */
export interface ReplicaDiff {
  /** `replica.*` events in the order they happened: replicas of `next` in its order, then those that left. */
  readonly events: readonly ReplicaEvent[];
  /** Replicas of `prev` that are not in `next` (whatever their last state), in `prev`'s order. */
  readonly gone: readonly ReplicaInfo[];
}

/**
 * The `replica.*` events that take `prev` to `next`, each stamped `now` (ms since the epoch). Pure.
 *
 * Per replica whose state changed (a new replica counts as changed from nothing):
 * - leaving `pending` (or appearing in any state but `pending`) → `replica.started`;
 * - then, by the new state: `ready` → `replica.ready`, `crashed` → `replica.crashed`, `stopped` →
 *   `replica.stopped` (`starting` and `terminating` add nothing more).
 * A replica that left the list without being seen `stopped` or `crashed` → `replica.stopped`.
 *
 * E.g. prev `[a pending]`, next `[a ready]` ⇒ `replica.started a`, `replica.ready a`.
 *
 * The reason of `replica.crashed` is the target's (`crashReason`), else told from how it ended:
 * `killed by SIGKILL`, `exit code 1`, or `exited unexpectedly`. Works for every target, since it
 * reads only the replica lists the port defines.
 */
export function diffReplicaEvents(prev: readonly ReplicaInfo[], next: readonly ReplicaInfo[], now: number): ReplicaDiff {
  const before = new Map(prev.map((r) => [r.id, r]));
  const events: ReplicaEvent[] = [];
  for (const r of next) {
    const was = before.get(r.id);
    before.delete(r.id);
    if (was?.state === r.state) continue;
    const base = { v: 1 as const, api: r.api, t: now, replica: r.id, revision: r.revision };
    if (r.state !== 'pending' && (!was || was.state === 'pending')) events.push({ ...base, type: 'replica.started' });
    if (r.state === 'ready') events.push({ ...base, type: 'replica.ready' });
    else if (r.state === 'crashed') events.push({ ...base, type: 'replica.crashed', exitCode: r.exitCode ?? null, signal: r.signal ?? null, reason: r.crashReason ?? howItEnded(r) });
    else if (r.state === 'stopped') events.push({ ...base, type: 'replica.stopped' });
  }
  const gone = [...before.values()];
  for (const r of gone) {
    if (r.state !== 'stopped' && r.state !== 'crashed') events.push({ v: 1, type: 'replica.stopped', api: r.api, t: now, replica: r.id, revision: r.revision });
  }
  return { events, gone };
}

function howItEnded(r: ReplicaInfo): string {
  if (r.signal) return `killed by ${r.signal}`;
  if (r.exitCode !== undefined && r.exitCode !== null) return `exit code ${r.exitCode}`;
  return 'exited unexpectedly';
}
